//! Structural diff of two template values: the property paths that differ, with before and
//! after, instead of a text diff of the whole document.

use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::template::join_path;

/// One difference at a property path. `before` is `None` for an addition, `after` for a
/// removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    pub path: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Differences between `before` and `after`, descending into maps and equally long lists so
/// each change is reported at the deepest path where the two part. Template values are
/// compared in their JSON form (`Node::to_json`), pipeline definitions as parsed JSON.
pub fn diff(path: &str, before: &Value, after: &Value, changes: &mut Vec<PropertyChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                let child = join_path(path, key);
                match new.get(key) {
                    Some(other) => diff(&child, value, other, changes),
                    None => changes.push(PropertyChange {
                        path: child,
                        before: Some(value.clone()),
                        after: None,
                    }),
                }
            }
            for (key, value) in new {
                if !old.contains_key(key) {
                    changes.push(PropertyChange {
                        path: join_path(path, key),
                        before: None,
                        after: Some(value.clone()),
                    });
                }
            }
        }
        (Value::Array(old), Value::Array(new)) if old.len() == new.len() => {
            for (index, (value, other)) in old.iter().zip(new).enumerate() {
                diff(&format!("{path}[{index}]"), value, other, changes);
            }
        }
        // Items added or removed: each one, at its index in the list that has it.
        (Value::Array(old), Value::Array(new)) => {
            for (index, value) in old.iter().enumerate() {
                if !new.contains(value) {
                    changes.push(PropertyChange {
                        path: format!("{path}[{index}]"),
                        before: Some(value.clone()),
                        after: None,
                    });
                }
            }
            for (index, value) in new.iter().enumerate() {
                if !old.contains(value) {
                    changes.push(PropertyChange {
                        path: format!("{path}[{index}]"),
                        before: None,
                        after: Some(value.clone()),
                    });
                }
            }
        }
        // A JSON document held in a string (a dashboard body, a policy as text): its inside.
        (Value::String(old), Value::String(new))
            if let (Some(old), Some(new)) = (json_document(old), json_document(new)) =>
        {
            diff(&format!("{path} (JSON)"), &old, &new, changes);
        }
        _ => changes.push(PropertyChange {
            path: path.to_string(),
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

/// A string that holds a JSON object or array, parsed.
fn json_document(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The top-level property a change path starts with: `BucketEncryption` for
/// `BucketEncryption.ServerSideEncryptionConfiguration[0]`.
pub fn top_level(path: &str) -> &str {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    &path[..end]
}

/// Whether `path` is, or lies under, the schema property path `property`
/// (`Endpoint.Address`, `ProductionVariants`).
pub fn is_under(path: &str, property: &str) -> bool {
    path == property
        || path
            .strip_prefix(property)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Node, Template};

    fn properties(yaml: &str) -> Value {
        let template = Template::parse(&format!(
            "Resources:\n  R:\n    Type: AWS::S3::Bucket\n    Properties:\n{yaml}"
        ))
        .expect("template");
        Node::Map(template.resources["R"].properties.clone()).to_json()
    }

    #[test]
    fn reports_the_deepest_differing_paths() {
        let before =
            properties("      BucketName: a\n      Tags: [{Key: k, Value: v1}]\n      Old: 1\n");
        let after =
            properties("      BucketName: a\n      Tags: [{Key: k, Value: v2}]\n      New: 2\n");
        let mut changes = Vec::new();
        diff("", &before, &after, &mut changes);
        let paths: Vec<_> = changes.iter().map(|change| change.path.as_str()).collect();
        assert_eq!(paths, vec!["Tags[0].Value", "Old", "New"]);
        assert_eq!(changes[0].before, Some(serde_json::json!("v1")));
        assert_eq!(changes[0].after, Some(serde_json::json!("v2")));
        assert_eq!(changes[1].after, None);
        assert_eq!(changes[2].before, None);
    }

    #[test]
    fn items_added_to_or_removed_from_a_list_are_named() {
        let before = properties("      Items: [a, b, d]\n");
        let after = properties("      Items: [a, c, d, e]\n");
        let mut changes = Vec::new();
        diff("", &before, &after, &mut changes);
        let shown: Vec<_> = changes
            .iter()
            .map(|change| {
                (
                    change.path.as_str(),
                    change.before.clone(),
                    change.after.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ("Items[1]", Some(serde_json::json!("b")), None),
                ("Items[1]", None, Some(serde_json::json!("c"))),
                ("Items[3]", None, Some(serde_json::json!("e"))),
            ]
        );
    }

    #[test]
    fn a_json_document_in_a_string_is_diffed_inside() {
        let before =
            properties("      Body: '{\"widgets\": [{\"x\": 0, \"title\": \"Errors\"}]}'\n");
        let after =
            properties("      Body: '{\"widgets\": [{\"x\": 0, \"title\": \"5xx errors\"}]}'\n");
        let mut changes = Vec::new();
        diff("", &before, &after, &mut changes);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "Body (JSON).widgets[0].title");
        assert_eq!(changes[0].after, Some(serde_json::json!("5xx errors")));
    }

    #[test]
    fn paths_match_schema_properties() {
        assert_eq!(top_level("BucketEncryption.Rules[0]"), "BucketEncryption");
        assert!(is_under(
            "ProductionVariants[0].InstanceType",
            "ProductionVariants"
        ));
        assert!(is_under("Endpoint.Address", "Endpoint.Address"));
        assert!(!is_under("BucketNameSuffix", "BucketName"));
    }
}
