//! The command line's own contract: usage errors exit 64, never 2 (which
//! `plan --detailed-exitcode` reserves for "changes present"); help is an answer, not an error.

mod common;

use common::{repo, run};

#[test]
fn a_usage_error_exits_64_not_the_changes_present_code() {
    let bogus = run(
        &repo(),
        &["plan", "staging", "--detailed-exitcode", "--bogus"],
    );
    assert_eq!(bogus.code, 64, "{}", bogus.stderr);
    assert!(bogus.stderr.contains("--bogus"), "{}", bogus.stderr);
    let missing = run(&repo(), &["apply"]);
    assert_eq!(missing.code, 64, "{}", missing.stderr);
}

#[test]
fn help_and_version_exit_0() {
    let help = run(&repo(), &["plan", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(
        help.stdout.contains("--detailed-exitcode"),
        "{}",
        help.stdout
    );
    assert_eq!(run(&repo(), &["--version"]).code, 0);
}

#[test]
fn completions_cover_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = run(&repo(), &["completions", shell]);
        assert_eq!(script.code, 0, "{shell}: {}", script.stderr);
        for command in ["plan", "apply", "promote", "doctor", "completions"] {
            assert!(script.stdout.contains(command), "{shell} lacks {command}");
        }
    }
}

#[test]
fn global_options_are_listed_apart() {
    let help = run(&repo(), &["apply", "--help"]);
    let (own, global) = help
        .stdout
        .split_once("Global options:")
        .expect("a Global options heading");
    assert!(own.contains("--allow-replace"), "{own}");
    assert!(
        global.contains("--project-dir") && global.contains("--color"),
        "{global}"
    );
    assert!(!own.contains("--project-dir"), "{own}");
}
