//! The plan computed from rendered stacks and a deployed state built in memory (no AWS), and
//! what users see of it: snapshots of the text, Markdown and JSON views.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{edit, project_copy, repo};
use mlops_infra::aws::{DeployedStack, StackStatus};
use mlops_infra::plan::{Deployed, Plan, Replacement, ResourceAction, StackAction, plan};
use mlops_infra::render::{RenderedStack, render};

fn rendered(
    project: &Path,
    environment: &str,
) -> (mlops_infra::config::Environment, Vec<RenderedStack>) {
    let environment = mlops_infra::config::load(project, environment).expect("valid");
    let stacks = render(project, &environment).expect("renders");
    (environment, stacks)
}

/// Every stack deployed as `stacks` renders, with outputs standing in for real values, and
/// the assets of the current rendering already uploaded.
fn deployed(stacks: &[RenderedStack]) -> Deployed {
    let mut deployed = Deployed::default();
    let (_, current) = rendered(&repo(), "staging");
    deployed.assets_present = current
        .iter()
        .flat_map(|stack| &stack.assets)
        .map(|asset| asset.uri())
        .collect();
    let outputs = |stack: &RenderedStack| -> BTreeMap<String, String> {
        stack
            .template
            .outputs
            .keys()
            .map(|name| (name.clone(), format!("{}-{name}", stack.spec.id)))
            .collect()
    };
    let all_outputs: BTreeMap<String, BTreeMap<String, String>> = stacks
        .iter()
        .map(|stack| (stack.spec.id.clone(), outputs(stack)))
        .collect();
    for stack in stacks {
        // As DescribeStacks reports them: inputs with their upstream values, others with
        // their defaults.
        let defaults = stack
            .template
            .parameters
            .iter()
            .filter_map(|(name, parameter)| {
                let default = parameter.get("Default")?.as_str()?;
                Some((name.clone(), default.to_string()))
            });
        let parameters = defaults
            .chain(stack.inputs.iter().map(|input| {
                (
                    input.parameter.clone(),
                    all_outputs[&input.stack][&input.output].clone(),
                )
            }))
            .collect();
        deployed.stacks.insert(
            stack.spec.name.clone(),
            DeployedStack {
                name: stack.spec.name.clone(),
                id: format!(
                    "arn:aws:cloudformation:eu-west-1:222222222222:stack/{}/1",
                    stack.spec.name
                ),
                status: StackStatus::new("UPDATE_COMPLETE"),
                status_reason: None,
                parameters,
                tags: stack_tags(),
                outputs: all_outputs[&stack.spec.id].clone(),
                termination_protection: false,
                last_updated: Some("2026-11-01T00:00:00Z".into()),
                role_arn: stack.deploy_role.clone(),
                template_body: stack.body.clone(),
                last_operation_id: None,
                detailed_status: None,
            },
        );
    }
    deployed
}

fn stack_tags() -> BTreeMap<String, String> {
    [
        ("project", "mlops-images"),
        ("environment", "staging"),
        ("owner", "ml-platform"),
        ("application", "image-recognition"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect()
}

/// Deployed: an older staging (another data bucket name, smaller training instances, a role
/// with one permission fewer); rendered: the repository's staging.
fn changed_plan() -> Plan {
    let before = project_copy();
    edit(
        before.path(),
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\nsagemaker:\n  training_instance_type: ml.g5.2xlarge\n",
    );
    edit(
        before.path(),
        "environments/staging.yaml",
        "storage:\n",
        "storage:\n  data_bucket_name: mlops-images-staging-images\n",
    );
    edit(
        before.path(),
        "templates/iam.yaml.tera",
        "Action: [kms:Decrypt, kms:Encrypt, kms:GenerateDataKey, kms:DescribeKey]",
        "Action: [kms:Decrypt, kms:GenerateDataKey, kms:DescribeKey]",
    );
    let (_, old) = rendered(before.path(), "staging");
    let (environment, new) = rendered(&repo(), "staging");
    plan(&environment, &new, &deployed(&old))
}

#[test]
fn unchanged_deployment_plans_no_changes() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let plan = plan(&environment, &stacks, &deployed(&stacks));
    assert!(
        !plan.has_changes(),
        "{}",
        mlops_infra::plan_view::text(&plan, false)
    );
    assert!(
        plan.stacks
            .iter()
            .all(|stack| stack.parameters.iter().all(|p| p.value.is_some()))
    );
}

#[test]
fn nothing_deployed_plans_creates_in_launch_order() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let plan = plan(&environment, &stacks, &Deployed::default());
    assert!(
        plan.stacks
            .iter()
            .all(|stack| stack.action == StackAction::Create)
    );
    let order: Vec<&str> = plan.stacks.iter().map(|stack| stack.id.as_str()).collect();
    assert_eq!(&order[..2], ["storage", "iam"]);
    let monitoring = plan.stack("monitoring").expect("monitoring");
    assert_eq!(
        monitoring.deploy_role.as_deref(),
        Some("arn:aws:iam::222222222222:role/mlops-images/mlops-images-staging-cloudformation")
    );
    assert_eq!(plan.stack("storage").expect("storage").deploy_role, None);
    let iam = plan.stack("iam").expect("iam");
    assert!(
        iam.parameters
            .iter()
            .all(|parameter| parameter.value.is_none()),
        "inputs are known only after storage applies"
    );
    assert_eq!(iam.capabilities, vec!["CAPABILITY_NAMED_IAM"]);
}

#[test]
fn new_step_code_is_listed_once_as_uploads() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let mut state = deployed(&stacks);
    let code: Vec<String> = stacks
        .iter()
        .flat_map(|stack| &stack.assets)
        .map(|asset| asset.uri())
        .filter(|uri| uri.contains("/code/"))
        .collect();
    assert!(
        code.iter().any(|uri| uri.ends_with("/evaluate.py")),
        "{code:?}"
    );
    for uri in &code {
        state.assets_present.remove(uri);
    }
    // Unchanged stacks upload nothing even when their assets are missing.
    let unchanged = plan(&environment, &stacks, &state);
    assert!(
        unchanged
            .stacks
            .iter()
            .all(|stack| stack.uploads.is_empty())
    );

    let none = plan(&environment, &stacks, &Deployed::default());
    let uploads: Vec<&String> = none
        .stacks
        .iter()
        .flat_map(|stack| &stack.uploads)
        .filter(|uri| uri.contains("/code/"))
        .collect();
    let mut unique: Vec<&String> = code.iter().collect();
    unique.sort();
    unique.dedup();
    let mut listed = uploads.clone();
    listed.sort();
    assert_eq!(listed, unique, "each new file listed exactly once");
    let first_pipeline = none
        .stacks
        .iter()
        .find(|stack| stack.id.starts_with("pipeline-"))
        .expect("a pipeline stack");
    assert_eq!(first_pipeline.uploads.len(), unique.len());
    let text = mlops_infra::plan_view::text(&none, false);
    assert!(
        text.contains(&format!("    uploads {}", unique[0])),
        "{text}"
    );
}

fn resolved(arn: Option<&str>, source: &str) -> mlops_infra::release::serving::Resolved {
    mlops_infra::release::serving::Resolved {
        arn: arn.map(str::to_string),
        source: source.to_string(),
    }
}

const PACKAGE: &str =
    "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-trees/1";

#[test]
fn a_newly_approved_package_switches_the_endpoint() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let mut state = deployed(&stacks);
    state.serving.insert(
        "trees".into(),
        resolved(Some(PACKAGE), "latest-approved: version 1"),
    );
    let plan = plan(&environment, &stacks, &state);
    let changed: Vec<&str> = plan
        .stacks
        .iter()
        .filter(|stack| stack.action != StackAction::NoChange)
        .map(|stack| stack.id.as_str())
        .collect();
    // The router in front of `plants` names each model's package too.
    assert_eq!(changed, ["endpoint-trees", "router-plants"]);
    let text = mlops_infra::plan_view::text(&plan, false);
    assert!(
        text.contains(&format!(
            "    parameter ModelPackageArn: (empty) → {PACKAGE} ← latest-approved: version 1"
        )),
        "{text}"
    );
}

#[test]
fn an_endpoint_keeps_its_package_when_nothing_newer_resolves() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let mut state = deployed(&stacks);
    let name = "mlops-images-staging-endpoint-trees";
    state
        .stacks
        .get_mut(name)
        .expect("endpoint stack")
        .parameters
        .insert("ModelPackageArn".into(), PACKAGE.into());
    state.serving.insert(
        "trees".into(),
        resolved(None, "latest-approved: no approved package yet"),
    );
    let plan = plan(&environment, &stacks, &state);
    assert!(
        !plan.has_changes(),
        "{}",
        mlops_infra::plan_view::text(&plan, false)
    );
    let parameter = plan
        .stack("endpoint-trees")
        .and_then(|stack| {
            stack
                .parameters
                .iter()
                .find(|p| p.name == "ModelPackageArn")
        })
        .expect("ModelPackageArn planned");
    assert_eq!(parameter.value.as_deref(), Some(PACKAGE));
    assert_eq!(
        parameter.from_registry.as_deref(),
        Some("latest-approved: no approved package yet; keeps the package it serves")
    );
}

#[test]
fn bucket_rename_is_a_dangerous_replacement() {
    let plan = changed_plan();
    let storage = plan.stack("storage").expect("storage");
    let bucket = storage
        .resources
        .iter()
        .find(|r| r.logical_id == "DataBucket")
        .expect("bucket change");
    assert_eq!(bucket.action, ResourceAction::Modify);
    assert_eq!(bucket.replacement, Replacement::Yes);
    assert_eq!(bucket.replaced_by, vec!["BucketName"]);
    assert!(bucket.dangerous);
    assert_eq!(plan.dangerous().count(), 1);
}

#[test]
fn pipeline_changes_show_step_by_step() {
    let plan = changed_plan();
    let pipeline = plan.stack("pipeline-plants").expect("pipeline");
    let resource = pipeline
        .resources
        .iter()
        .find(|r| r.logical_id == "Pipeline")
        .expect("pipeline change");
    assert_eq!(resource.replacement, Replacement::No);
    let steps: Vec<(&str, &str)> = resource
        .steps
        .iter()
        .map(|step| (step.name.as_str(), step.action.as_str()))
        .collect();
    assert!(
        steps.contains(&("Parameters.TrainingInstanceType", "modify")),
        "{steps:?}"
    );
}

#[test]
fn broadened_iam_permissions_are_called_out() {
    let plan = changed_plan();
    let iam = plan.stack("iam").expect("iam");
    let role = iam
        .resources
        .iter()
        .find(|r| r.logical_id == "SageMakerExecutionRole")
        .expect("role change");
    let broadening = role.broadening.as_ref().expect("broadening");
    assert_eq!(broadening.actions, vec!["kms:Encrypt"]);
}

#[test]
fn views_of_a_changed_plan() {
    let plan = changed_plan();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo().join("tests/snapshots"));
    settings.bind(|| {
        insta::assert_snapshot!("plan_text", mlops_infra::plan_view::text(&plan, false));
        insta::assert_snapshot!("plan_markdown", mlops_infra::plan_view::markdown(&plan));
        let storage = plan.stack("storage").expect("storage");
        let json: serde_json::Value =
            serde_json::from_str(&mlops_infra::plan_view::json(&plan)).expect("json");
        let mut stack = json["stacks"]
            .as_array()
            .expect("stacks")
            .iter()
            .find(|s| s["id"] == "storage")
            .expect("storage")
            .clone();
        stack["template_body"] =
            serde_json::Value::String(format!("<{} bytes>", storage.template_body.len()));
        insta::assert_json_snapshot!("plan_json_storage", stack);
    });
}

#[test]
fn saved_plans_round_trip() {
    let plan = changed_plan();
    let text = mlops_infra::plan_view::json(&plan);
    let again: Plan = serde_json::from_str(&text).expect("parses");
    assert_eq!(again, plan);
}

#[test]
fn the_json_plan_carries_totals() {
    let plan = changed_plan();
    let document: serde_json::Value =
        serde_json::from_str(&mlops_infra::plan_view::json(&plan)).expect("json");
    assert_eq!(
        document["totals"],
        serde_json::json!({
            "stacks": {"create": 0, "update": 8, "unchanged": 7, "blocked": 0},
            "resources": {"add": 0, "change": 9, "replace": 2, "remove": 0},
            "dangerous": 1,
            "broadened": 1,
        })
    );
}
