//! Plan and apply on today's CloudFormation, on the in-memory CloudFormation: drift found by
//! `plan --refresh` and `status --drift` and put back by `apply --revert-drift`, a change
//! set's pre-deployment validation results in the plan and in a failed apply, and a failed
//! operation's root cause read from its own events (`DescribeEvents`).

mod common;

use std::path::Path;

use common::capture::{Captured as Run, capture};
use common::{edit, project_copy};
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::aws::{PropertyDifference, ResourceDrift, Validation};
use mlops_infra::cli::{ApplyArgs, PlanArgs, PlanFormat, StatusArgs};
use mlops_infra::commands::deploy;
use mlops_infra::error::ExitStatus;

const STAGING: &str = "222222222222";
const ENDPOINT_TREES: &str = "mlops-images-staging-endpoint-trees";
const STORAGE: &str = "mlops-images-staging-storage";

fn apply_args(revert_drift: bool) -> ApplyArgs {
    ApplyArgs {
        revert_drift,
        ..common::apply_args("staging")
    }
}

async fn apply(
    fake: &FakeCloudFormation,
    platform: &FakePlatform,
    project: &Path,
    revert: bool,
) -> Run {
    let args = apply_args(revert);
    capture("apply", async |output, context| {
        deploy::apply(fake, platform, project, &args, output, context).await
    })
    .await
}

async fn plan(
    fake: &FakeCloudFormation,
    platform: &FakePlatform,
    project: &Path,
    refresh: bool,
    revert_drift: bool,
    format: PlanFormat,
) -> Run {
    let args = PlanArgs {
        environment: "staging".into(),
        output: format,
        detailed_exitcode: true,
        stacks: Vec::new(),
        out: None,
        refresh,
        revert_drift,
    };
    capture("plan", async |output, context| {
        deploy::plan(fake, platform, project, &args, output, context).await
    })
    .await
}

/// Staging applied; the trees endpoint's autoscaling maximum raised by hand from 2 to 10.
async fn drifted() -> (FakeCloudFormation, FakePlatform, tempfile::TempDir) {
    let (fake, platform, project) = (
        FakeCloudFormation::new(),
        FakePlatform::new(STAGING),
        project_copy(),
    );
    // The trees endpoint serves an approved package, so it has its autoscaling.
    let package = platform.register("mlops-images-staging-trees", None);
    mlops_infra::aws::fake_platform::approve(&platform, &package).await;
    let applied = apply(&fake, &platform, project.path(), false).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    fake.drift_resource(
        ENDPOINT_TREES,
        ResourceDrift {
            logical_id: "ScalableTarget".into(),
            resource_type: "AWS::ApplicationAutoScaling::ScalableTarget".into(),
            status: "MODIFIED".into(),
            differences: vec![PropertyDifference {
                path: "/MaxCapacity".into(),
                expected: Some("2".into()),
                actual: Some("10".into()),
                kind: "NOT_EQUAL".into(),
            }],
        },
    );
    (fake, platform, project)
}

#[tokio::test(flavor = "current_thread")]
async fn plan_refresh_shows_drift_beside_the_planned_changes() {
    let (fake, platform, project) = drifted().await;
    let unrefreshed = plan(
        &fake,
        &platform,
        project.path(),
        false,
        false,
        PlanFormat::Text,
    )
    .await;
    assert!(
        !unrefreshed.stdout.contains("drift"),
        "{}",
        unrefreshed.stdout
    );
    assert!(!fake.calls().iter().any(|call| call == "DetectStackDrift"));

    let refreshed = plan(
        &fake,
        &platform,
        project.path(),
        true,
        false,
        PlanFormat::Text,
    )
    .await;
    assert_eq!(
        refreshed.status,
        ExitStatus::Success,
        "{}",
        refreshed.stderr
    );
    insta::assert_snapshot!("plan_refresh_drift_text", refreshed.stdout);
    assert!(refreshed.stdout.contains(
        "~ drift: ScalableTarget MaxCapacity was changed outside CloudFormation to 10; untouched by this apply (template: 2; `--revert-drift` puts it back)"
    ));
    assert!(refreshed.stdout.contains(
        "Drift: 1 resource(s) in 1 stack(s) changed outside CloudFormation; `apply --revert-drift` puts them back."
    ));
    let markdown = plan(
        &fake,
        &platform,
        project.path(),
        true,
        false,
        PlanFormat::Markdown,
    )
    .await;
    insta::assert_snapshot!("plan_refresh_drift_markdown", markdown.stdout);
    let json = plan(
        &fake,
        &platform,
        project.path(),
        true,
        false,
        PlanFormat::Json,
    )
    .await;
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let stack = document["stacks"]
        .as_array()
        .and_then(|stacks| stacks.iter().find(|stack| stack["name"] == ENDPOINT_TREES))
        .expect("the endpoint stack");
    assert_eq!(
        stack["drift"],
        serde_json::json!([{"logical_id": "ScalableTarget",
            "resource_type": "AWS::ApplicationAutoScaling::ScalableTarget", "status": "MODIFIED",
            "differences": [{"path": "/MaxCapacity", "expected": "2", "actual": "10", "kind": "NOT_EQUAL"}],
            "touched": false}])
    );
    assert_eq!(document["drift_checked"], true);
}

#[tokio::test(flavor = "current_thread")]
async fn a_drifted_resource_the_plan_touches_is_a_warning() {
    let (fake, platform, project) = drifted().await;
    edit(
        project.path(),
        "environments/staging.yaml",
        "  max_instances: 2\n",
        "  max_instances: 3\n",
    );
    let refreshed = plan(
        &fake,
        &platform,
        project.path(),
        true,
        false,
        PlanFormat::Text,
    )
    .await;
    assert_eq!(
        refreshed.status,
        ExitStatus::Changes,
        "{}",
        refreshed.stderr
    );
    assert!(refreshed.stdout.contains(
        "! drift: ScalableTarget MaxCapacity was changed outside CloudFormation to 10; warning: this apply updates ScalableTarget and writes the template's 2 over it (`--revert-drift` to do so for all drift)"
    ), "{}", refreshed.stdout);
}

#[tokio::test(flavor = "current_thread")]
async fn apply_revert_drift_puts_back_what_was_changed_by_hand() {
    let (fake, platform, project) = drifted().await;
    let preview = plan(
        &fake,
        &platform,
        project.path(),
        false,
        true,
        PlanFormat::Text,
    )
    .await;
    assert_eq!(preview.status, ExitStatus::Changes, "{}", preview.stderr);
    assert!(preview.stdout.contains(&format!(
        "~ {ENDPOINT_TREES} (update)\n    puts back 1 resource(s) changed outside CloudFormation (--revert-drift)"
    )), "{}", preview.stdout);
    assert!(preview.stdout.contains(
        "~ drift: ScalableTarget MaxCapacity was changed outside CloudFormation to 10; this apply puts it back to 2"
    ), "{}", preview.stdout);

    let applied = apply(&fake, &platform, project.path(), true).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    assert_eq!(fake.reverted(), [ENDPOINT_TREES]);
    let after = plan(
        &fake,
        &platform,
        project.path(),
        true,
        false,
        PlanFormat::Text,
    )
    .await;
    assert_eq!(after.status, ExitStatus::Success, "{}", after.stdout);
    assert!(
        after
            .stdout
            .contains("Drift: none; every deployed resource matches its template.")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn status_drift_lists_each_drifted_property() {
    let (fake, _platform, project) = drifted().await;
    let args = StatusArgs {
        environment: "staging".into(),
        drift: true,
    };
    let status = capture("status", async |output, context| {
        deploy::status(&fake, project.path(), &args, output, context).await
    })
    .await;
    assert_eq!(status.status, ExitStatus::Success, "{}", status.stderr);
    insta::assert_snapshot!("status_drift", common::seen(&status.stdout, project.path()));
    assert!(status.stdout.contains("DRIFTED (1)"));
    assert!(
        status
            .stdout
            .contains("  MaxCapacity: 2 (template) → 10 (actual)")
    );
}

fn validation(name: &str, mode: &str, reason: &str) -> Validation {
    Validation {
        name: name.into(),
        status: "FAILED".into(),
        reason: Some(reason.into()),
        path: Some("/Resources/DataBucket/Properties/BucketName".into()),
        mode: mode.into(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_plan_shows_validation_results_and_a_failed_one_stops_the_apply() {
    let (fake, platform, project) = (
        FakeCloudFormation::new(),
        FakePlatform::new(STAGING),
        project_copy(),
    );
    let applied = apply(&fake, &platform, project.path(), false).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    edit(
        project.path(),
        "environments/staging.yaml",
        "  noncurrent_version_expiration_days: 30\n",
        "  noncurrent_version_expiration_days: 31\n",
    );
    fake.set_validations(
        STORAGE,
        vec![validation(
            "ResourceExistenceCheck",
            "WARN",
            "a bucket of this name exists in another stack",
        )],
    );
    let planned = plan(
        &fake,
        &platform,
        project.path(),
        false,
        false,
        PlanFormat::Text,
    )
    .await;
    assert!(planned.stdout.contains(
        "! validation warning: ResourceExistenceCheck at /Resources/DataBucket/Properties/BucketName: a bucket of this name exists in another stack"
    ), "{}", planned.stdout);

    fake.set_validations(
        STORAGE,
        vec![validation(
            "ResourceExistenceCheck",
            "FAIL",
            "Resource of type 'AWS::S3::Bucket' with identifier 'mlops-images-staging-data-222222222222' already exists.",
        )],
    );
    let failed = apply(&fake, &platform, project.path(), false).await;
    assert_eq!(failed.status, ExitStatus::Failure);
    assert!(failed.stderr.contains(
        "the change set failed validation: ResourceExistenceCheck at /Resources/DataBucket/Properties/BucketName: Resource of type 'AWS::S3::Bucket' with identifier 'mlops-images-staging-data-222222222222' already exists."
    ), "{}", failed.stderr);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_apply_names_its_root_cause_from_the_operations_events() {
    let (fake, platform, project) = (
        FakeCloudFormation::new(),
        FakePlatform::new(STAGING),
        project_copy(),
    );
    fake.fail_next_execute(
        "mlops-images-staging-iam",
        "CodeBuildRole",
        "Role limit exceeded",
    );
    let failed = apply(&fake, &platform, project.path(), false).await;
    assert_eq!(failed.status, ExitStatus::Failure);
    assert!(
        fake.calls().iter().any(|call| call == "DescribeEvents"),
        "the failure is read from the operation's events"
    );
    assert!(
        failed.stderr.contains("CodeBuildRole: Role limit exceeded"),
        "{}",
        failed.stderr
    );
}
