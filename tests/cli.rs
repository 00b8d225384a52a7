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
    insta::assert_snapshot!("error_usage", bogus.stderr);
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

#[test]
fn an_endpoint_that_refuses_connections_fails_at_once_in_one_sentence() {
    let refused = common::run_with(
        &repo(),
        &["status", "staging"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    insta::assert_snapshot!(
        "error_endpoint_refuses_connections",
        common::seen(&refused.stderr, &repo())
    );
    assert!(
        refused
            .stderr
            .contains("cannot reach the AWS endpoint (connection refused)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("AWS_ENDPOINT_URL is http://127.0.0.1:1: is the local AWS running?"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("DispatchFailure"),
        "{}",
        refused.stderr
    );
}

#[test]
fn no_credentials_at_all_says_where_credentials_come_from() {
    let home = tempfile::tempdir().expect("home");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlops-infra"))
        .args(["-C", &repo().to_string_lossy(), "status", "staging"])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    insta::assert_snapshot!("error_no_credentials", common::seen(&stderr, &repo()));
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");
    assert!(stderr.contains("set AWS_PROFILE"), "{stderr}");
    assert!(!stderr.contains("DispatchFailure"), "{stderr}");
}

#[test]
fn verbose_shows_each_api_call_and_very_verbose_each_attempt() {
    let aws = common::LocalAws::start("222222222222");
    let environment = aws.environment("eu-west-1");
    let verbose = common::run_with(&repo(), &["-v", "status", "staging"], &environment);
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    let calls: Vec<&str> = verbose
        .stderr
        .lines()
        .filter(|line| line.starts_with("[aws] "))
        .collect();
    assert!(
        calls
            .iter()
            .any(|line| line.contains("GetCallerIdentity 200 ") && line.ends_with(" ms")),
        "{}",
        verbose.stderr
    );
    assert!(
        calls
            .iter()
            .any(|line| line.contains("DescribeStacks 400 ")),
        "a stack that does not exist is a 400 from CloudFormation:\n{}",
        verbose.stderr
    );
    assert!(!verbose.stderr.contains("attempt:"), "{}", verbose.stderr);
    let very = common::run_with(&repo(), &["-vv", "status", "staging"], &environment);
    assert!(very.stderr.contains("[aws]   attempt: "), "{}", very.stderr);
    let quiet = common::run_with(&repo(), &["status", "staging"], &environment);
    assert!(!quiet.stderr.contains("[aws]"), "{}", quiet.stderr);
}

#[test]
fn keys_in_the_environment_overriding_a_profile_are_called_out() {
    let project = common::project_copy();
    common::edit(
        project.path(),
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\nprofile: staging-admin\n",
    );
    let run = common::run_with(
        project.path(),
        &["status", "staging"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    insta::assert_snapshot!(
        "warning_keys_override_profile",
        common::seen(&run.stderr, project.path())
    );
    assert!(
        run.stderr.contains(
            "warning: using AWS_ACCESS_KEY_ID from the process environment, not `profile: staging-admin` of environments/staging.yaml"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn color_always_colours_status_words_and_never_leaves_them_plain() {
    use mlops_infra::view::status_cell;
    let green = status_cell("CREATE_COMPLETE", 16, true);
    assert!(green.starts_with("\u{1b}[32m"), "{green:?}");
    assert!(status_cell("UPDATE_ROLLBACK_COMPLETE", 26, true).starts_with("\u{1b}[31m"));
    assert!(status_cell("PendingManualApproval", 22, true).starts_with("\u{1b}[33m"));
    assert!(status_cell("problem", 8, true).starts_with("\u{1b}[31m"));
    assert_eq!(status_cell("ok", 8, false), "ok      ");
    // Padding happens inside the colour, so columns still line up.
    let plain = status_cell("Approved", 12, false);
    assert_eq!(plain.chars().count(), 12);
}
