//! Properties of the rendered platform that must hold in every environment: encryption,
//! blocked public access, TLS-only buckets, key rotation, no wildcard IAM actions, retained
//! data — and that adding a child model adds exactly its own stacks and resources.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{ENVIRONMENTS, project_copy, repo};
use mlops_infra::render::{RenderedStack, render};
use mlops_infra::template::{Function, Node};

fn rendered(project: &Path, environment: &str) -> Vec<RenderedStack> {
    let environment = mlops_infra::config::load(project, environment).expect("valid environment");
    render(project, &environment).expect("renders")
}

fn each_resource(mut check: impl FnMut(&str, &str, &mlops_infra::template::Resource)) {
    for environment in ENVIRONMENTS {
        for stack in rendered(&repo(), environment) {
            for (id, resource) in &stack.template.resources {
                check(&format!("{environment}/{}", stack.spec.id), id, resource);
            }
        }
    }
}

fn is_true(node: Option<&Node>) -> bool {
    matches!(node, Some(Node::Bool(true)))
}

#[test]
fn buckets_are_encrypted_private_and_retained() {
    let mut buckets = 0;
    each_resource(|stack, id, resource| {
        if resource.resource_type != "AWS::S3::Bucket" {
            return;
        }
        buckets += 1;
        let properties = &resource.properties;
        assert!(
            properties.contains_key("BucketEncryption"),
            "{stack} {id} is not encrypted"
        );
        let block = properties
            .get("PublicAccessBlockConfiguration")
            .unwrap_or_else(|| panic!("{stack} {id} has no public access block"));
        for key in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert!(is_true(block.get(key)), "{stack} {id}: {key} is not true");
        }
        assert_eq!(
            resource.deletion_policy.as_deref(),
            Some("Retain"),
            "{stack} {id}"
        );
        assert_eq!(
            resource.update_replace_policy.as_deref(),
            Some("Retain"),
            "{stack} {id}"
        );
    });
    assert!(
        buckets >= 9,
        "expected three buckets per environment, saw {buckets}"
    );
}

#[test]
fn every_bucket_has_a_tls_only_policy() {
    for environment in ENVIRONMENTS {
        for stack in rendered(&repo(), environment) {
            let template = &stack.template;
            for (id, resource) in &template.resources {
                if resource.resource_type != "AWS::S3::Bucket" {
                    continue;
                }
                let denies_plain_http = template.resources.values().any(|policy| {
                    policy.resource_type == "AWS::S3::BucketPolicy"
                        && policy.properties.get("Bucket")
                            == Some(&Node::intrinsic(Function::Ref, Node::String(id.clone())))
                        && statements(policy.properties.get("PolicyDocument"))
                            .iter()
                            .any(|statement| {
                                statement.get("Effect").and_then(Node::as_str) == Some("Deny")
                                    && statement
                                        .get("Condition")
                                        .and_then(|condition| condition.get("Bool"))
                                        .and_then(|bool| bool.get("aws:SecureTransport"))
                                        .and_then(Node::as_str)
                                        == Some("false")
                            })
                });
                assert!(
                    denies_plain_http,
                    "{environment}/{} bucket {id} accepts plain HTTP",
                    stack.spec.id
                );
            }
        }
    }
}

fn statements(document: Option<&Node>) -> Vec<&Node> {
    match document.and_then(|document| document.get("Statement")) {
        Some(Node::List(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    }
}

#[test]
fn kms_keys_rotate() {
    let mut keys = 0;
    each_resource(|stack, id, resource| {
        if resource.resource_type == "AWS::KMS::Key" {
            keys += 1;
            assert!(
                is_true(resource.properties.get("EnableKeyRotation")),
                "{stack} {id} does not rotate"
            );
        }
    });
    assert!(keys >= 3);
}

#[test]
fn iam_policies_grant_no_wildcard_actions() {
    let mut checked = 0;
    each_resource(|stack, id, resource| {
        let mut documents = Vec::new();
        match resource.resource_type.as_str() {
            "AWS::IAM::Role" => {
                if let Some(Node::List(policies)) = resource.properties.get("Policies") {
                    documents.extend(
                        policies
                            .iter()
                            .filter_map(|policy| policy.get("PolicyDocument")),
                    );
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                documents.extend(resource.properties.get("PolicyDocument"))
            }
            _ => return,
        }
        for document in documents {
            for statement in statements(Some(document)) {
                checked += 1;
                let actions = match statement.get("Action") {
                    Some(Node::List(items)) => items.iter().filter_map(Node::as_str).collect(),
                    Some(Node::String(action)) => vec![action.as_str()],
                    _ => Vec::new(),
                };
                assert!(
                    !actions
                        .iter()
                        .any(|action| *action == "*" || action.ends_with(":*")),
                    "{stack} {id} grants {actions:?}"
                );
                if actions.contains(&"iam:PassRole") {
                    assert_ne!(
                        statement.get("Resource").and_then(Node::as_str),
                        Some("*"),
                        "{stack} {id} passes any role"
                    );
                    assert!(
                        statement.get("Condition").is_some(),
                        "{stack} {id} passes roles to any service"
                    );
                }
            }
        }
    });
    assert!(checked > 10, "only {checked} statements checked");
}

#[test]
fn model_package_groups_are_retained() {
    let mut groups = 0;
    each_resource(|stack, id, resource| {
        if resource.resource_type == "AWS::SageMaker::ModelPackageGroup" {
            groups += 1;
            assert_eq!(
                resource.deletion_policy.as_deref(),
                Some("Retain"),
                "{stack} {id}"
            );
        }
    });
    assert_eq!(groups, 3 + 4 + 4);
}

#[test]
fn adding_a_child_model_adds_exactly_its_stacks_and_resources() {
    let project = project_copy();
    let before = rendered(project.path(), "staging");
    let path = project.path().join("environments/staging.yaml");
    let text = std::fs::read_to_string(&path).expect("staging.yaml");
    let text = text
        .replace(
            "routes: [trees, flowers, grasses]",
            "routes: [trees, flowers, grasses, shrubs]",
        )
        .replacen(
            "models:\n",
            "models:\n  - name: shrubs\n    parent: plants\n    subgroup: shrubs\n    num_classes: 12\n",
            1,
        );
    std::fs::write(&path, text).expect("write");
    let after = rendered(project.path(), "staging");

    let ids = |stacks: &[RenderedStack]| {
        stacks
            .iter()
            .map(|stack| stack.spec.id.clone())
            .collect::<BTreeSet<_>>()
    };
    let added_stacks: Vec<_> = ids(&after).difference(&ids(&before)).cloned().collect();
    assert_eq!(added_stacks, vec!["endpoint-shrubs", "pipeline-shrubs"]);
    assert!(ids(&before).is_subset(&ids(&after)));

    let resources = |stacks: &[RenderedStack]| {
        stacks
            .iter()
            .flat_map(|stack| {
                stack
                    .template
                    .resources
                    .keys()
                    .map(move |id| format!("{}/{id}", stack.spec.id))
            })
            .collect::<BTreeSet<_>>()
    };
    let added: BTreeSet<_> = resources(&after)
        .difference(&resources(&before))
        .cloned()
        .collect();
    let removed: BTreeSet<_> = resources(&before)
        .difference(&resources(&after))
        .cloned()
        .collect();
    let deployment = |stacks: &[RenderedStack]| {
        resources(stacks)
            .into_iter()
            .find(|id| id.starts_with("api/Deployment"))
            .expect("an API deployment")
    };
    let endpoint = after
        .iter()
        .find(|stack| stack.spec.id == "endpoint-shrubs")
        .expect("new stack");
    let pipeline = after
        .iter()
        .find(|stack| stack.spec.id == "pipeline-shrubs")
        .expect("new stack");
    let mut expected: BTreeSet<String> = [endpoint, pipeline]
        .iter()
        .flat_map(|stack| {
            stack
                .template
                .resources
                .keys()
                .map(move |id| format!("{}/{id}", stack.spec.id))
        })
        .collect();
    // One API path serves every model: a new model adds no API resource, and its model
    // package group is in its pipeline stack.
    // An API deployment is immutable: a new set of methods means a new deployment.
    expected.insert(deployment(&after));
    assert_eq!(added, expected);
    assert_eq!(removed, BTreeSet::from([deployment(&before)]));
}

#[test]
fn every_rendered_pipeline_resolves_and_runs_the_steps_in_order() {
    use mlops_infra::pipeline::{PipelineDefinition, check::check, steps_by_name};
    let (mut pipelines, mut monitors) = (0, 0);
    each_resource(|stack, id, resource| {
        if resource.resource_type != "AWS::SageMaker::Pipeline" {
            return;
        }
        pipelines += 1;
        let body = resource
            .properties
            .get("PipelineDefinition")
            .and_then(|definition| definition.get("PipelineDefinitionBody"))
            .and_then(Node::as_str)
            .unwrap_or_else(|| panic!("{stack} {id} has no inline definition"));
        let definition = PipelineDefinition::from_json_str(body).expect("parses");
        assert_eq!(check(&definition), vec![], "{stack} {id}");
        let names: Vec<String> = steps_by_name(&definition).keys().cloned().collect();
        if id == "MonitoringPipeline" {
            assert_eq!(names, ["Monitor"], "{stack}");
            monitors += 1;
            return;
        }
        for step in [
            "DataQuality",
            "Preprocess",
            "Tune",
            "Train",
            "Evaluate",
            "CheckAccuracy",
            "Register",
            "AccuracyBelowThreshold",
        ] {
            assert!(
                names.iter().any(|name| name == step),
                "{stack}: no step {step} in {names:?}"
            );
        }
    });
    // Every model has a training pipeline, and its endpoint a monitoring one.
    assert_eq!(pipelines, 2 * (3 + 4 + 4));
    assert_eq!(monitors, 3 + 4 + 4);
}
