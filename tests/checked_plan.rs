//! `plan` and `apply` check the environment offline while they read what is deployed: a check
//! that fails is what they report, whatever the reads found, and nothing is changed; with the
//! checks passed, what the reads found is reported as before.

mod common;

use common::capture::capture;
use common::{apply_args, copy_tree, project_copy, repo};
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::cli::{PlanArgs, PlanFormat};
use mlops_infra::commands::deploy;
use mlops_infra::error::ExitStatus;

const STAGING: &str = "222222222222";
const OTHER: &str = "333333333333";

fn plan_args() -> PlanArgs {
    PlanArgs {
        environment: "staging".into(),
        output: PlanFormat::Text,
        detailed_exitcode: false,
        stacks: Vec::new(),
        out: None,
        refresh: false,
        revert_drift: false,
    }
}

/// The shipped project with a template referring to a resource it does not define (a check's
/// error, found only once rendered).
fn broken_project() -> tempfile::TempDir {
    let project = project_copy();
    copy_tree(
        &repo().join("tests/broken/dangling-ref/templates"),
        &project.path().join("templates"),
    );
    project
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_check_is_what_plan_and_apply_report_whatever_the_reads_found() {
    // The reads stop at the account check: another account's credentials.
    let fake = FakeCloudFormation::new();
    fake.set_caller_account(OTHER);
    let platform = FakePlatform::new(STAGING);
    let project = broken_project();
    let (plan_args, apply_args) = (plan_args(), apply_args("staging"));
    let plan = capture("plan", async |output, context| {
        deploy::plan(
            &fake,
            &platform,
            project.path(),
            &plan_args,
            output,
            context,
        )
        .await
    })
    .await;
    let apply = capture("apply", async |output, context| {
        deploy::apply(
            &fake,
            &platform,
            project.path(),
            &apply_args,
            output,
            context,
        )
        .await
    })
    .await;
    for run in [&plan, &apply] {
        assert_eq!(run.status, ExitStatus::Failure, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("parameter or resource `MissingKey` is not defined"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("fix the problems listed above, then run the command again"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains(OTHER), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_check_stops_apply_before_it_changes_anything() {
    let fake = FakeCloudFormation::new();
    let platform = FakePlatform::new(STAGING);
    let project = broken_project();
    let args = apply_args("staging");
    let apply = capture("apply", async |output, context| {
        deploy::apply(&fake, &platform, project.path(), &args, output, context).await
    })
    .await;
    assert_eq!(apply.status, ExitStatus::Failure, "{}", apply.stderr);
    assert!(
        apply
            .stderr
            .contains("parameter or resource `MissingKey` is not defined"),
        "{}",
        apply.stderr
    );
    // The reads ran beside the checks; nothing else did.
    let calls = fake.calls();
    assert!(
        calls.iter().any(|call| call == "DescribeStacks"),
        "{calls:?}"
    );
    let changes: Vec<&String> = calls
        .iter()
        .filter(|call| !call.starts_with("Describe") && !call.starts_with("Get"))
        .filter(|call| !call.starts_with("List") && !call.starts_with("Head"))
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn with_the_checks_passed_the_reads_are_reported() {
    let fake = FakeCloudFormation::new();
    fake.set_caller_account(OTHER);
    let platform = FakePlatform::new(STAGING);
    let args = plan_args();
    let plan = capture("plan", async |output, context| {
        deploy::plan(&fake, &platform, &repo(), &args, output, context).await
    })
    .await;
    assert_eq!(plan.status, ExitStatus::Failure, "{}", plan.stderr);
    assert!(plan.stderr.contains(OTHER), "{}", plan.stderr);
    assert!(
        !plan.stderr.contains("fix the problems listed above"),
        "{}",
        plan.stderr
    );
}
