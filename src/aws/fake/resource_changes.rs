//! The diff behind a change set: resource changes against a deployed stack, `Replacement`
//! from create-only properties, and the references that make dependents of a replaced
//! resource follow.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::Value;

use crate::aws::ResourceChange;
use crate::resource_types;

use super::stacks::Stack;

/// A change set's resource changes against a deployed stack: Add, Remove, and Modify where the
/// resolved properties differ, with `Replacement` from the create-only properties; resources
/// that refer to a replaced one follow (`Conditional` when a create-only property refers to it);
/// a tag change modifies every taggable resource.
pub(super) fn resource_changes(
    stack: &Stack,
    resolved: &IndexMap<String, (String, Value)>,
    tags_changed: bool,
) -> Vec<ResourceChange> {
    let mut changes: BTreeMap<String, ResourceChange> = BTreeMap::new();
    for (logical_id, (resource_type, new)) in resolved {
        let Some(old) = stack.resources.get(logical_id) else {
            changes.insert(
                logical_id.clone(),
                ResourceChange {
                    logical_id: logical_id.clone(),
                    resource_type: resource_type.clone(),
                    action: "Add".into(),
                    replacement: None,
                },
            );
            continue;
        };
        let replacement = if old.resource_type != *resource_type {
            "True"
        } else if old.resolved != *new {
            if create_only_changed(resource_type, &old.resolved, new) {
                "True"
            } else {
                "False"
            }
        } else {
            continue;
        };
        changes.insert(
            logical_id.clone(),
            ResourceChange {
                logical_id: logical_id.clone(),
                resource_type: resource_type.clone(),
                action: "Modify".into(),
                replacement: Some(replacement.into()),
            },
        );
    }

    // Dependents of replaced resources: their references resolve to new physical ids.
    loop {
        let replaced: BTreeSet<String> = changes
            .values()
            .filter(|change| {
                change.action == "Modify"
                    && matches!(change.replacement.as_deref(), Some("True" | "Conditional"))
            })
            .map(|change| change.logical_id.clone())
            .collect();
        let mut added = false;
        for (logical_id, (resource_type, new)) in resolved {
            if changes.contains_key(logical_id) || !stack.resources.contains_key(logical_id) {
                continue;
            }
            let mut referenced = BTreeSet::new();
            value_references(new, &mut referenced);
            if referenced.is_disjoint(&replaced) {
                continue;
            }
            let create_only = resource_types::lookup(resource_type)
                .map(|schema| schema.create_only)
                .unwrap_or_default();
            let conditional = create_only.iter().any(|path| {
                let mut found = BTreeSet::new();
                if let Some(value) = value_at(new, path) {
                    value_references(value, &mut found);
                }
                !found.is_disjoint(&replaced)
            });
            changes.insert(
                logical_id.clone(),
                ResourceChange {
                    logical_id: logical_id.clone(),
                    resource_type: resource_type.clone(),
                    action: "Modify".into(),
                    replacement: Some(if conditional { "Conditional" } else { "False" }.into()),
                },
            );
            added = true;
        }
        if !added {
            break;
        }
    }

    if tags_changed {
        for (logical_id, (resource_type, _)) in resolved {
            let taggable = resource_types::lookup(resource_type)
                .is_some_and(|schema| schema.properties.contains(&"Tags"));
            if taggable
                && stack.resources.contains_key(logical_id)
                && !changes.contains_key(logical_id)
            {
                changes.insert(
                    logical_id.clone(),
                    ResourceChange {
                        logical_id: logical_id.clone(),
                        resource_type: resource_type.clone(),
                        action: "Modify".into(),
                        replacement: Some("False".into()),
                    },
                );
            }
        }
    }

    // In template order, removals last.
    let mut ordered: Vec<ResourceChange> = resolved
        .keys()
        .filter_map(|logical_id| changes.remove(logical_id))
        .collect();
    for (logical_id, old) in &stack.resources {
        if !resolved.contains_key(logical_id) {
            ordered.push(ResourceChange {
                logical_id: logical_id.clone(),
                resource_type: old.resource_type.clone(),
                action: "Remove".into(),
                replacement: None,
            });
        }
    }
    ordered
}

fn create_only_changed(resource_type: &str, old: &Value, new: &Value) -> bool {
    let Some(schema) = resource_types::lookup(resource_type) else {
        return false;
    };
    schema
        .create_only
        .iter()
        .any(|path| value_at(old, path) != value_at(new, path))
}

/// The value at a schema property path (`Name`, `Endpoint.Address`) under `Properties`.
fn value_at<'a>(resolved: &'a Value, path: &str) -> Option<&'a Value> {
    let mut value = resolved.get("Properties")?;
    for key in path.split('.') {
        value = value.get(key)?;
    }
    Some(value)
}

/// Logical IDs a resolved value still refers to: `Ref`, `Fn::GetAtt` and `${X}` in `Fn::Sub`.
fn value_references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Array(items) => {
            for item in items {
                value_references(item, found);
            }
        }
        Value::Object(object) => {
            if object.len() == 1 {
                if let Some(Value::String(name)) = object.get("Ref") {
                    found.insert(name.clone());
                }
                if let Some(Value::Array(parts)) = object.get("Fn::GetAtt")
                    && let Some(Value::String(name)) = parts.first()
                {
                    found.insert(name.clone());
                }
                if let Some(sub) = object.get("Fn::Sub") {
                    let text = match sub {
                        Value::Array(parts) => parts.first().and_then(Value::as_str),
                        other => other.as_str(),
                    };
                    for variable in sub_variables(text.unwrap_or_default()) {
                        let name = variable.split('.').next().unwrap_or_default();
                        found.insert(name.to_string());
                    }
                }
            }
            for item in object.values() {
                value_references(item, found);
            }
        }
        _ => {}
    }
}

/// `${Name}` variables of a `Fn::Sub` string (`${!Literal}` excluded).
pub(super) fn sub_variables(text: &str) -> Vec<String> {
    let mut variables = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        let variable = &after[..end];
        if !variable.starts_with('!') {
            variables.push(variable.trim().to_string());
        }
        rest = &after[end + 1..];
    }
    variables
}

#[cfg(test)]
mod tests {
    use crate::aws::fake::FakeCloudFormation;
    use crate::aws::fake::fixtures::*;
    use crate::aws::{AwsError, ChangeSetKind, ChangeSetRequest, ChangeSetStatus, CloudFormation};

    use super::*;

    #[tokio::test]
    async fn a_changed_create_only_property_replaces_and_dependents_follow() {
        let fake = FakeCloudFormation::new();
        fake.deploy("app", NAMED, &map(&[("Name", "first")]), &BTreeMap::new())
            .expect("deploy");
        let before = fake.events("app").len();

        let in_place = fake
            .create_change_set(&ChangeSetRequest {
                tags: BTreeMap::new(),
                ..request(
                    "app",
                    "display",
                    ChangeSetKind::Update,
                    NAMED,
                    &[("Name", "first"), ("DisplayName", "other")],
                )
            })
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&in_place).await.expect("describe");
        assert_eq!(
            changes(&described),
            vec![change("Topic", "Modify", Some("False"))]
        );

        let renamed = fake
            .create_change_set(&ChangeSetRequest {
                tags: BTreeMap::new(),
                ..request(
                    "app",
                    "rename",
                    ChangeSetKind::Update,
                    NAMED,
                    &[("Name", "second")],
                )
            })
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&renamed).await.expect("describe");
        assert_eq!(
            changes(&described),
            vec![
                change("Topic", "Modify", Some("True")),
                change("Policy", "Modify", Some("False")),
                change("Pointer", "Modify", Some("Conditional")),
            ]
        );

        let before_replacement = fake.stack("app").expect("stack").outputs["TopicArn"].clone();
        fake.execute_change_set(&renamed).await.expect("execute");
        // Executing one change set deletes the stack's others; the executed one is no longer
        // listed, but is still described.
        assert!(fake.change_sets("app").is_empty());
        assert!(matches!(
            fake.describe_change_set(&renamed).await.map(|set| set.status),
            Ok(ChangeSetStatus::Failed(reason)) if reason.contains("already been executed")
        ));
        assert_eq!(
            fake.describe_change_set(&in_place).await,
            Err(AwsError::NotFound)
        );
        let events = fake.events("app");
        let new_events: Vec<(&str, &str)> = events[..events.len() - before]
            .iter()
            .rev()
            .map(|event| (event.logical_id.as_str(), event.status.as_str()))
            .collect();
        assert_eq!(
            new_events,
            vec![
                ("app", "UPDATE_IN_PROGRESS"),
                ("Topic", "UPDATE_IN_PROGRESS"),
                ("Topic", "UPDATE_COMPLETE"),
                ("Policy", "UPDATE_IN_PROGRESS"),
                ("Policy", "UPDATE_COMPLETE"),
                ("Pointer", "UPDATE_IN_PROGRESS"),
                ("Pointer", "UPDATE_COMPLETE"),
                ("app", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
                ("Pointer", "DELETE_IN_PROGRESS"),
                ("Pointer", "DELETE_COMPLETE"),
                ("Topic", "DELETE_IN_PROGRESS"),
                ("Topic", "DELETE_COMPLETE"),
                ("app", "UPDATE_COMPLETE"),
            ]
        );
        let replaced = fake.stack("app").expect("stack");
        assert_eq!(replaced.status.as_str(), "UPDATE_COMPLETE");
        // A replacement is a new physical resource.
        assert_ne!(replaced.outputs["TopicArn"], before_replacement);
    }

    #[tokio::test]
    async fn removed_and_added_resources_are_listed() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
        let body = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n";
        let id = fake
            .create_change_set(&request("app", "swap", ChangeSetKind::Update, body, &[]))
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&id).await.expect("describe");
        assert_eq!(
            changes(&described),
            vec![
                change("Queue", "Add", None),
                change("Topic", "Remove", None)
            ]
        );
        fake.execute_change_set(&id).await.expect("execute");
        let stack = fake.stack("app").expect("stack");
        assert!(stack.outputs.is_empty());
        assert_eq!(stack.parameters, BTreeMap::new());
    }
}
