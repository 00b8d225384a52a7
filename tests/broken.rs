//! The broken-input corpus: each folder under tests/broken/ overlays files onto a copy of the
//! shipped project and runs the command in its `args` file. Every case must exit 1, print each
//! line of its `expect` file (the file, and line where there is one), and never panic.

mod common;

use std::path::Path;

use common::{Run, copy_tree, project_copy, repo, run};

#[test]
fn every_broken_input_fails_clearly() {
    let corpus = repo().join("tests/broken");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("tests/broken exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let result = run_case(case);
        let expect = std::fs::read_to_string(case.join("expect")).expect("expect file");
        let mut problems = Vec::new();
        if result.code != 1 {
            problems.push(format!("exit code {} (want 1)", result.code));
        }
        if result.stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        for wanted in expect.lines().filter(|line| !line.trim().is_empty()) {
            if !result.stderr.contains(wanted) {
                problems.push(format!("stderr lacks `{wanted}`"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{name}: {}\n--- stderr:\n{}",
                problems.join("; "),
                result.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs one case's command in a copy of the project with the case's files laid over it; the
/// project's temporary path reads `[project]` in the output.
fn run_case(case: &Path) -> Run {
    let project = project_copy();
    for folder in ["environments", "templates"] {
        if case.join(folder).is_dir() {
            copy_tree(&case.join(folder), &project.path().join(folder));
        }
    }
    let args = std::fs::read_to_string(case.join("args")).expect("args file");
    let args: Vec<&str> = args.split_whitespace().collect();
    let mut result = run(project.path(), &args);
    let path = project.path().display().to_string();
    result.stderr = result.stderr.replace(&path, "[project]");
    result
}

/// Values AWS refuses only in the middle of an apply or a pipeline run: the whole message a
/// person reads, hint included, is kept as a snapshot.
const AWS_REFUSED_CASES: [&str; 4] = [
    "schedule-rate-unit-number",
    "schedule-cron-without-question-mark",
    "training-instance-type-unknown",
    "tuning-max-jobs-too-many",
];

#[test]
fn values_aws_would_refuse_are_explained_with_a_fix() {
    for name in AWS_REFUSED_CASES {
        let result = run_case(&repo().join("tests/broken").join(name));
        assert_eq!(result.code, 1, "{name}: {}", result.stderr);
        insta::assert_snapshot!(name, result.stderr);
    }
}
