//! The self-deploy build's steps (`scripts/ci-build`, which buildspec.yml runs) against the
//! local AWS: a first build plans and applies, keeping the plan; a second finds nothing to do.

mod common;

use std::process::Command;

use common::{LocalAws, project_copy, repo};

const REGION: &str = "eu-west-1";

fn ci_build(
    aws: &LocalAws,
    project: &std::path::Path,
    artifacts: &std::path::Path,
) -> (i32, String, String) {
    let output = Command::new(repo().join("scripts/ci-build"))
        .arg("infrastructure")
        .envs(aws.environment(REGION))
        .env("MLOPS_ENVIRONMENT", "staging")
        .env("MLOPS_INFRA", env!("CARGO_BIN_EXE_mlops-infra"))
        .env("MLOPS_PROJECT_DIR", project)
        .env("MLOPS_ARTIFACTS_DIR", artifacts)
        .output()
        .expect("scripts/ci-build runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_build_plans_keeps_the_plan_and_applies_it() {
    let aws = LocalAws::start("222222222222");
    let project = project_copy();
    let artifacts = tempfile::tempdir().expect("artifacts");

    let (code, stdout, stderr) = ci_build(&aws, project.path(), artifacts.path());
    assert_eq!(code, 0, "first build:\n{stdout}\n{stderr}");
    let plan = std::fs::read_to_string(artifacts.path().join("plan.md")).expect("plan.md kept");
    assert!(
        plan.starts_with("### mlops-infra plan: `staging`"),
        "{plan}"
    );
    assert!(
        plan.contains("**14 to create, 0 to update, 0 unchanged**"),
        "{plan}"
    );
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.path().join("plan.json")).expect("plan.json kept"),
    )
    .expect("a saved plan");
    assert_eq!(saved["environment"], "staging");
    assert!(stderr.contains("==> apply the reviewed plan"), "{stderr}");
    let summary = stderr
        .rsplit_once("summary:")
        .map_or("", |(_, summary)| summary);
    assert_eq!(
        summary.matches("done (CREATE_COMPLETE)").count(),
        14,
        "{stderr}"
    );

    let (code, _, stderr) = ci_build(&aws, project.path(), artifacts.path());
    assert_eq!(code, 0, "second build:\n{stderr}");
    assert!(
        stderr.contains("==> no changes: nothing to apply"),
        "{stderr}"
    );
    assert!(!stderr.contains("apply the reviewed plan"), "{stderr}");
}
