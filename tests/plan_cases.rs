//! What a reviewer reads for each kind of change, in the three formats `plan` writes (text,
//! Markdown for a pull request, JSON for tools): the staging environment applied to the
//! in-memory CloudFormation, one typical edit, then `plan` as a person runs it. The JSON
//! snapshot keeps the changed stacks with their template bodies replaced by their size.

mod common;

use std::path::Path;

use common::capture::{Captured as Run, capture};
use common::{edit, project_copy};
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::{FakePlatform, approve};
use mlops_infra::cli::{PlanArgs, PlanFormat};
use mlops_infra::commands::deploy;
use mlops_infra::error::ExitStatus;

const STAGING: &str = "222222222222";

/// Staging as deployed: applied from `project` with `trees` serving an approved package.
struct Deployed {
    fake: FakeCloudFormation,
    platform: FakePlatform,
    project: tempfile::TempDir,
}

async fn deployed() -> Deployed {
    let (fake, platform, project) = (
        FakeCloudFormation::new(),
        FakePlatform::new(STAGING),
        project_copy(),
    );
    let package = platform.register("mlops-images-staging-trees", None);
    approve(&platform, &package).await;
    let args = common::apply_args("staging");
    let applied = capture("apply", async |output, context| {
        deploy::apply(&fake, &platform, project.path(), &args, output, context).await
    })
    .await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    Deployed {
        fake,
        platform,
        project,
    }
}

async fn plan(deployed: &Deployed, format: PlanFormat) -> Run {
    plan_at(
        &deployed.fake,
        &deployed.platform,
        deployed.project.path(),
        format,
    )
    .await
}

async fn plan_at(
    fake: &FakeCloudFormation,
    platform: &FakePlatform,
    project: &Path,
    format: PlanFormat,
) -> Run {
    let args = PlanArgs {
        environment: "staging".into(),
        output: format,
        detailed_exitcode: true,
        stacks: Vec::new(),
        out: None,
        refresh: false,
        revert_drift: false,
    };
    capture("plan", async |output, context| {
        deploy::plan(fake, platform, project, &args, output, context).await
    })
    .await
}

/// The JSON plan with unchanged stacks left out, and template and asset bodies as their size.
fn changed_stacks_json(stdout: &str) -> serde_json::Value {
    let size = |value: &serde_json::Value| -> serde_json::Value {
        format!("<{} bytes>", value.as_str().map_or(0, str::len)).into()
    };
    let mut document: serde_json::Value = serde_json::from_str(stdout).expect("a JSON plan");
    let stacks = document["stacks"].as_array_mut().expect("stacks");
    stacks.retain(|stack| stack["action"] != "no_change");
    for stack in stacks {
        stack["template_body"] = size(&stack["template_body"]);
        for asset in stack["assets"].as_array_mut().into_iter().flatten() {
            asset["body"] = size(&asset["body"]);
        }
    }
    document
}

/// Plans in the three formats and snapshots each as `<case>_text`, `<case>_markdown` and
/// `<case>_json`; returns the text plan for the case's own checks.
async fn snapshot_plans(
    case: &str,
    fake: &FakeCloudFormation,
    platform: &FakePlatform,
    project: &Path,
) -> String {
    let text = plan_at(fake, platform, project, PlanFormat::Text).await;
    let markdown = plan_at(fake, platform, project, PlanFormat::Markdown).await;
    let json = plan_at(fake, platform, project, PlanFormat::Json).await;
    for run in [&text, &markdown, &json] {
        assert_ne!(run.status, ExitStatus::Failure, "{}", run.stderr);
    }
    insta::assert_snapshot!(format!("{case}_text"), text.stdout);
    insta::assert_snapshot!(format!("{case}_markdown"), markdown.stdout);
    insta::assert_json_snapshot!(format!("{case}_json"), changed_stacks_json(&json.stdout));
    text.stdout
}

async fn snapshot_deployed(case: &str, deployed: &Deployed) -> String {
    snapshot_plans(
        case,
        &deployed.fake,
        &deployed.platform,
        deployed.project.path(),
    )
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_to_do() {
    let deployed = deployed().await;
    let text = snapshot_deployed("unchanged", &deployed).await;
    assert!(text.contains("15 unchanged"), "{text}");
    assert_eq!(
        plan(&deployed, PlanFormat::Text).await.status,
        ExitStatus::Success
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_instance_type_change_replaces_the_configuration_and_switches_the_endpoint() {
    let deployed = deployed().await;
    edit(
        deployed.project.path(),
        "environments/staging.yaml",
        "endpoint:\n",
        "sagemaker:\n  endpoint_instance_type: ml.c5.xlarge\nendpoint:\n",
    );
    let text = snapshot_deployed("endpoint_instance_type", &deployed).await;
    assert!(text.contains("blue/green"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_newly_approved_package_replaces_model_and_configuration() {
    let deployed = deployed().await;
    let newer = deployed
        .platform
        .register("mlops-images-staging-trees", None);
    approve(&deployed.platform, &newer).await;
    let text = snapshot_deployed("new_package", &deployed).await;
    assert!(text.contains("latest-approved: version 2"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_child_model_shows_list_items_and_json_text_changed() {
    let deployed = deployed().await;
    let project = deployed.project.path();
    edit(
        project,
        "environments/staging.yaml",
        "routes: [trees, flowers, grasses]",
        "routes: [trees, flowers, grasses, ferns]",
    );
    edit(
        project,
        "environments/staging.yaml",
        "endpoint:\n",
        "  - name: ferns\n    parent: plants\n    subgroup: ferns\n    num_classes: 12\nendpoint:\n",
    );
    let text = snapshot_deployed("new_child_model", &deployed).await;
    assert!(
        !text.contains(" characters)"),
        "no value cut short:\n{text}"
    );
    assert!(
        text.contains("ContainerArguments[21] (--num-classes): \"3\" → \"4\""),
        "a container argument is named by its flag:\n{text}"
    );
    assert!(
        text.contains(
            "EventPattern.detail.ModelPackageGroupName[4]: (none) → \"mlops-images-staging-ferns\""
        ),
        "a list item added:\n{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_processing_change_shows_step_by_step() {
    let deployed = deployed().await;
    edit(
        deployed.project.path(),
        "environments/staging.yaml",
        "    instance_count: 2\n",
        "    instance_count: 3\n",
    );
    let text = snapshot_deployed("processing_instances", &deployed).await;
    assert_eq!(
        text.matches("step Preprocess (modify)\n            Arguments.ProcessingResources.ClusterConfig.InstanceCount: 2 → 3").count(),
        4,
        "each pipeline's sharded steps:\n{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn sharing_with_another_account_is_a_table_of_new_grants() {
    let deployed = deployed().await;
    edit(
        deployed.project.path(),
        "environments/staging.yaml",
        "share_with_accounts: [\"333333333333\"]",
        "share_with_accounts: [\"333333333333\", \"444444444444\"]",
    );
    let text = snapshot_deployed("new_grant", &deployed).await;
    assert!(
        text.contains("AWS: arn:aws:iam::444444444444:root"),
        "{text}"
    );
    assert!(
        !text.contains("${AWS::"),
        "pseudo parameters resolved:\n{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_bucket_rename_says_the_old_bucket_is_kept() {
    let deployed = deployed().await;
    edit(
        deployed.project.path(),
        "environments/staging.yaml",
        "storage:\n",
        "storage:\n  data_bucket_name: mlops-images-staging-photos\n",
    );
    let text = snapshot_deployed("bucket_rename", &deployed).await;
    assert!(text.contains("DANGEROUS"), "{text}");
    assert!(
        text.contains("kept (UpdateReplacePolicy: Retain), not moved"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn resources_kept_by_a_destroy_are_named_with_how_to_adopt_them() {
    let (fake, platform) = (FakeCloudFormation::new(), FakePlatform::new(STAGING));
    for (resource_type, name) in [
        ("AWS::S3::Bucket", "mlops-images-staging-data-222222222222"),
        (
            "AWS::SageMaker::ModelPackageGroup",
            "mlops-images-staging-trees",
        ),
        (
            "AWS::Logs::LogGroup",
            "/aws/apigateway/mlops-images-staging-pipelines",
        ),
    ] {
        fake.add_loose(resource_type, name);
    }
    let project = project_copy();
    let text = snapshot_plans("kept_resources", &fake, &platform, project.path()).await;
    for noun in ["bucket", "model package group", "log group"] {
        assert!(
            text.contains(&format!("{noun} ")) && text.contains("already exists outside any stack"),
            "{noun}:\n{text}"
        );
    }
    assert_eq!(
        text.matches("already exists outside any stack").count(),
        3,
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_parent_whose_classes_and_routes_disagree_is_refused_with_the_difference() {
    let deployed = deployed().await;
    let parent = deployed
        .platform
        .register("mlops-images-staging-plants", None);
    deployed
        .platform
        .set_classes(&parent, &["flowers", "ferns", "trees"]);
    approve(&deployed.platform, &parent).await;
    let refused = plan(&deployed, PlanFormat::Text).await;
    assert_eq!(refused.status, ExitStatus::Failure);
    insta::assert_snapshot!("error_classes_and_routes_disagree", refused.stderr);

    // Trained on exactly the routed sub-groups (in another order): the router is planned.
    let matching = deployed
        .platform
        .register("mlops-images-staging-plants", None);
    deployed
        .platform
        .set_classes(&matching, &["trees", "grasses", "flowers"]);
    approve(&deployed.platform, &matching).await;
    let planned = plan(&deployed, PlanFormat::Text).await;
    assert_eq!(planned.status, ExitStatus::Changes, "{}", planned.stderr);
    assert!(
        planned
            .stdout
            .contains("parameter PlantsPackageArn: (empty) → arn:aws:sagemaker:"),
        "{}",
        planned.stdout
    );
}
