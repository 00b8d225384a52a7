//! Dependents start when a stack is configured: in an environment that is not protected, a
//! stack's dependents start once CloudFormation reports it `CONFIGURATION_COMPLETE` (its
//! outputs there), while it still stabilises; a protected environment, or `apply.
//! start_dependents_at: complete`, waits for `*_COMPLETE`.

mod common;

use common::capture::capture;
use common::{edit, project_copy};
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::commands::deploy;
use mlops_infra::error::ExitStatus;

/// The lines of the apply's progress, and where the first line containing each text is.
fn position(stderr: &str, text: &str) -> usize {
    stderr
        .lines()
        .position(|line| line.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?}:\n{stderr}"))
}

async fn apply_staging(project: &std::path::Path) -> String {
    let (fake, platform) = (FakeCloudFormation::new(), FakePlatform::new("222222222222"));
    // Storage is seen configured, still stabilising, on its next three reads.
    fake.settle_slowly("mlops-images-staging-storage", 3);
    let args = common::apply_args("staging");
    let applied = capture("apply", async |output, context| {
        deploy::apply(&fake, &platform, project, &args, output, context).await
    })
    .await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    applied.stderr
}

#[tokio::test(flavor = "current_thread")]
async fn dependents_start_while_a_configured_stack_stabilises() {
    let project = project_copy();
    let stderr = apply_staging(project.path()).await;
    let configured = position(
        &stderr,
        "mlops-images-staging-storage: configured (CONFIGURATION_COMPLETE): its dependents start while it stabilises",
    );
    let iam_starts = position(&stderr, "mlops-images-staging-iam: starting");
    let storage_done = position(&stderr, "mlops-images-staging-storage: done");
    assert!(
        configured < iam_starts && iam_starts < storage_done,
        "iam starts after storage is configured and before it completes:\n{stderr}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn complete_waits_for_the_stack() {
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\napply:\n  start_dependents_at: complete\n",
    );
    let stderr = apply_staging(project.path()).await;
    assert!(
        !stderr.contains("configured (CONFIGURATION_COMPLETE)"),
        "{stderr}"
    );
    assert!(
        position(&stderr, "mlops-images-staging-storage: done")
            < position(&stderr, "mlops-images-staging-iam: starting"),
        "{stderr}"
    );
}
