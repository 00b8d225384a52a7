//! What a change sets off beyond the resources whose own properties change: a replaced
//! resource gets a new name or id, so every resource that refers to it (`Ref`, `GetAtt`,
//! `Sub`) is updated too, as the endpoint is when its configuration is replaced. And what the
//! changes mean in plain words for a reviewer: traffic shifting on a live endpoint, data left
//! behind by a replacement.

use super::{Replacement, ResourceAction, ResourcePlan};
use crate::template::{Function, Node, Resource, Template};

/// Adds, until nothing more follows, each resource that refers to a replaced one (or one
/// added in its place), with a note saying why it changes. A resource the change set says
/// "may" be replaced is settled the same way: replaced when a create-only property refers to
/// a replaced resource.
pub fn follow_replacements(resources: &mut Vec<ResourcePlan>, template: &Template) {
    loop {
        let replaced: Vec<String> = resources
            .iter()
            .filter(|plan| plan.replacement != Replacement::No)
            .map(|plan| plan.logical_id.clone())
            .collect();
        let mut changed = false;
        for plan in resources
            .iter_mut()
            .filter(|plan| plan.replacement == Replacement::Conditional)
        {
            let Some(resource) = template.resources.get(&plan.logical_id) else {
                continue;
            };
            if let Some((cause, replaced_by)) = knock_on(resource, &replaced)
                && !replaced_by.is_empty()
            {
                plan.notes.push(note(&cause, &replaced_by));
                plan.replacement = Replacement::Yes;
                plan.replaced_by = replaced_by;
                changed = true;
            }
        }
        for (logical_id, resource) in &template.resources {
            if resources.iter().any(|plan| &plan.logical_id == logical_id) {
                continue;
            }
            let Some((cause, replaced_by)) = knock_on(resource, &replaced) else {
                continue;
            };
            resources.push(ResourcePlan {
                logical_id: logical_id.clone(),
                moved_from: None,
                resource_type: resource.resource_type.clone(),
                action: ResourceAction::Modify,
                replacement: if replaced_by.is_empty() {
                    Replacement::No
                } else {
                    Replacement::Yes
                },
                notes: vec![note(&cause, &replaced_by)],
                replaced_by,
                dangerous: false,
                changes: Vec::new(),
                steps: Vec::new(),
                broadening: None,
            });
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

/// The first replaced resource `resource` refers to, and its create-only properties that
/// refer to one (whose change replaces `resource` too).
fn knock_on(resource: &Resource, replaced: &[String]) -> Option<(String, Vec<String>)> {
    let create_only = crate::resource_types::lookup(&resource.resource_type)
        .map(|facts| facts.create_only)
        .unwrap_or_default();
    let mut cause = None;
    let mut replaced_by = Vec::new();
    for (property, value) in &resource.properties {
        let mut referenced = Vec::new();
        references(value, &mut referenced);
        if let Some(id) = referenced.iter().find(|id| replaced.contains(id)) {
            cause.get_or_insert_with(|| id.clone());
            let top = |path: &&str| path.split('.').next() == Some(property.as_str());
            if create_only.iter().any(top) {
                replaced_by.push(property.clone());
            }
        }
    }
    cause.map(|cause| (cause, replaced_by))
}

fn note(cause: &str, replaced_by: &[String]) -> String {
    if replaced_by.is_empty() {
        format!("updated because {cause}, which it refers to, is replaced (new name or id)")
    } else {
        format!(
            "replaced because {cause}, which its {} names, is replaced (new name or id)",
            replaced_by.join(", ")
        )
    }
}

/// Plain-word notes on the changes that matter most to a reviewer.
pub fn explain(resources: &mut [ResourcePlan], template: &Template) {
    for plan in resources.iter_mut() {
        let resource = template.resources.get(&plan.logical_id);
        if plan.resource_type == "AWS::SageMaker::Endpoint" && plan.action == ResourceAction::Modify
        {
            let blue_green = resource
                .and_then(|resource| resource.properties.get("DeploymentConfig"))
                .and_then(|config| config.get("BlueGreenUpdatePolicy"))
                .is_some();
            plan.notes.push(if blue_green {
                "the live endpoint switches to the new configuration blue/green: SageMaker starts the new fleet, shifts traffic to it, and rolls back if the alarms fire while it bakes".to_string()
            } else {
                "the live endpoint switches to the new configuration in place".to_string()
            });
        }
        if plan.dangerous && plan.action == ResourceAction::Modify {
            let retained = resource.is_some_and(|resource| {
                resource.update_replace_policy.as_deref() == Some("Retain")
            });
            plan.notes.push(if retained {
                format!(
                    "a new, empty {} is created; the old one and its data are kept (UpdateReplacePolicy: Retain), not moved",
                    plan.resource_type
                )
            } else {
                format!(
                    "a new, empty {} is created and the old one is deleted with its data",
                    plan.resource_type
                )
            });
        }
    }
}

/// The logical IDs a value refers to.
fn references(node: &Node, out: &mut Vec<String>) {
    match node {
        Node::List(items) => items.iter().for_each(|item| references(item, out)),
        Node::Map(map) => map.values().for_each(|value| references(value, out)),
        Node::Intrinsic(intrinsic) => {
            match intrinsic.function {
                Function::Ref => {
                    if let Some(name) = intrinsic.argument.as_str() {
                        out.push(name.to_string());
                    }
                }
                Function::GetAtt => {
                    if let Node::List(parts) = &intrinsic.argument
                        && let Some(name) = parts.first().and_then(Node::as_str)
                    {
                        out.push(name.to_string());
                    }
                }
                Function::Sub => {
                    let text = match &intrinsic.argument {
                        Node::String(text) => Some(text.as_str()),
                        Node::List(parts) => parts.first().and_then(Node::as_str),
                        _ => None,
                    };
                    let mut rest = text.unwrap_or_default();
                    while let Some(start) = rest.find("${") {
                        let Some(end) = rest[start..].find('}') else {
                            break;
                        };
                        let name = &rest[start + 2..start + end];
                        out.push(name.split('.').next().unwrap_or(name).to_string());
                        rest = &rest[start + end + 1..];
                    }
                }
                _ => {}
            }
            references(&intrinsic.argument, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::parse(
            "Resources:
  Model:
    Type: AWS::SageMaker::Model
    Properties: {ExecutionRoleArn: r}
  Config:
    Type: AWS::SageMaker::EndpointConfig
    Properties:
      ProductionVariants: [{ModelName: !GetAtt Model.ModelName}]
  Endpoint:
    Type: AWS::SageMaker::Endpoint
    Properties:
      EndpointConfigName: !GetAtt Config.EndpointConfigName
      DeploymentConfig: {BlueGreenUpdatePolicy: {}}
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {AlarmName: a}
",
        )
        .expect("template")
    }

    /// A resource the change set says is replaced because of `property`.
    fn replaced(logical_id: &str, resource_type: &str, property: &str) -> ResourcePlan {
        ResourcePlan {
            logical_id: logical_id.into(),
            moved_from: None,
            resource_type: resource_type.into(),
            action: ResourceAction::Modify,
            replacement: Replacement::Yes,
            replaced_by: vec![property.into()],
            dangerous: false,
            changes: Vec::new(),
            steps: Vec::new(),
            broadening: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_replaced_model_updates_its_config_and_the_live_endpoint() {
        let template = template();
        let mut resources = vec![replaced(
            "Model",
            "AWS::SageMaker::Model",
            "PrimaryContainer",
        )];
        follow_replacements(&mut resources, &template);
        explain(&mut resources, &template);
        let ids: Vec<&str> = resources.iter().map(|r| r.logical_id.as_str()).collect();
        // The config names the model in a create-only property, so it is replaced too, and
        // the endpoint that names the config switches. The alarm refers to neither.
        assert_eq!(ids, ["Model", "Config", "Endpoint"]);
        assert_eq!(resources[1].replacement, Replacement::Yes);
        assert_eq!(resources[1].replaced_by, ["ProductionVariants"]);
        assert_eq!(
            resources[1].notes,
            [
                "replaced because Model, which its ProductionVariants names, is replaced (new name or id)"
            ]
        );
        assert_eq!(resources[2].replacement, Replacement::No);
        assert!(
            resources[2]
                .notes
                .iter()
                .any(|note| note.contains("blue/green"))
        );
    }

    #[test]
    fn a_config_that_may_be_replaced_is_when_it_names_a_replaced_model() {
        let template = template();
        let mut config = replaced("Config", "AWS::SageMaker::EndpointConfig", "x");
        config.replacement = Replacement::Conditional;
        config.replaced_by.clear();
        let mut resources = vec![
            replaced("Model", "AWS::SageMaker::Model", "PrimaryContainer"),
            config,
        ];
        follow_replacements(&mut resources, &template);
        assert_eq!(resources[1].replacement, Replacement::Yes);
        assert_eq!(resources[1].replaced_by, ["ProductionVariants"]);
        assert_eq!(resources.len(), 3, "and the endpoint follows");
    }

    #[test]
    fn a_replaced_config_switches_the_endpoint_blue_green() {
        let template = template();
        let mut resources = vec![replaced(
            "Config",
            "AWS::SageMaker::EndpointConfig",
            "ProductionVariants",
        )];
        follow_replacements(&mut resources, &template);
        explain(&mut resources, &template);
        let endpoint = resources
            .iter()
            .find(|r| r.logical_id == "Endpoint")
            .expect("the endpoint follows");
        assert!(
            endpoint
                .notes
                .iter()
                .any(|note| note.contains("blue/green"))
        );
    }
}
