//! What a policy change grants that was not granted before: new actions, resources and
//! principals in `Allow` statements, for IAM roles and policies and resource policies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Grants present after a change and absent before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadening {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub principals: Vec<String>,
}

impl Broadening {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.resources.is_empty() && self.principals.is_empty()
    }
}

/// Resource types whose properties hold policy documents, and where.
pub fn policy_properties(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "AWS::IAM::Role" => &["AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns"],
        "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => &["PolicyDocument"],
        "AWS::S3::BucketPolicy" | "AWS::SNS::TopicPolicy" => &["PolicyDocument"],
        "AWS::KMS::Key" => &["KeyPolicy"],
        "AWS::SageMaker::ModelPackageGroup" => &["ModelPackageGroupPolicy"],
        "AWS::ApiGateway::RestApi" => &["Policy"],
        "AWS::Logs::LogGroup" => &["ResourcePolicyDocument"],
        _ => &[],
    }
}

#[derive(Default)]
struct Grants {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    principals: BTreeSet<String>,
}

/// Compares the policy-bearing properties of a resource before and after.
pub fn broadening(resource_type: &str, before: &Value, after: &Value) -> Broadening {
    let collect = |properties: &Value| {
        let mut grants = Grants::default();
        for key in policy_properties(resource_type) {
            if let Some(value) = properties.get(key) {
                if *key == "ManagedPolicyArns" {
                    for arn in as_list(value) {
                        grants
                            .actions
                            .insert(format!("managed policy {}", text(arn)));
                    }
                } else {
                    collect_statements(value, &mut grants);
                }
            }
        }
        grants
    };
    let (old, new) = (collect(before), collect(after));
    Broadening {
        actions: new.actions.difference(&old.actions).cloned().collect(),
        resources: new.resources.difference(&old.resources).cloned().collect(),
        principals: new
            .principals
            .difference(&old.principals)
            .cloned()
            .collect(),
    }
}

/// Every `Allow` statement under `value` (a document, or a list of inline policies).
fn collect_statements(value: &Value, grants: &mut Grants) {
    match value {
        Value::Object(map) => {
            if let Some(statements) = map.get("Statement") {
                for statement in as_list(statements) {
                    if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                        continue;
                    }
                    for action in statement.get("Action").map(as_list).unwrap_or_default() {
                        grants.actions.insert(text(action));
                    }
                    for resource in statement.get("Resource").map(as_list).unwrap_or_default() {
                        grants.resources.insert(text(resource));
                    }
                    if let Some(principal) = statement.get("Principal") {
                        collect_principals(principal, grants);
                    }
                }
            } else {
                for child in map.values() {
                    collect_statements(child, grants);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_statements(item, grants)),
        // A policy given as JSON text (a model package group's, an API's).
        Value::String(text) => {
            if let Ok(document) = serde_json::from_str::<Value>(text) {
                collect_statements(&document, grants);
            }
        }
        _ => {}
    }
}

fn collect_principals(principal: &Value, grants: &mut Grants) {
    match principal {
        Value::Object(map) => {
            for (kind, values) in map {
                for value in as_list(values) {
                    grants.principals.insert(format!("{kind}: {}", text(value)));
                }
            }
        }
        other => {
            grants.principals.insert(text(other));
        }
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// A string as itself; an intrinsic as its compact JSON.
/// A value as a reviewer reads it: `!Sub` text and `!Ref`/`!GetAtt` targets rather than
/// their JSON form (`{"Fn::Sub":"arn:${AWS::Partition}:iam::333333333333:root"}` →
/// `arn:${AWS::Partition}:iam::333333333333:root`).
fn text(value: &Value) -> String {
    if let Some(text) = value.as_str() {
        return text.to_string();
    }
    if let Some(map) = value.as_object()
        && map.len() == 1
    {
        match map.iter().next() {
            Some((key, Value::String(inner))) if key == "Fn::Sub" => return inner.clone(),
            Some((key, Value::Array(parts))) if key == "Fn::Sub" => {
                if let Some(inner) = parts.first().and_then(Value::as_str) {
                    return inner.to_string();
                }
            }
            Some((key, Value::String(name))) if key == "Ref" => return format!("(Ref {name})"),
            Some((key, Value::Array(parts))) if key == "Fn::GetAtt" => {
                let parts: Vec<String> = parts.iter().map(text).collect();
                return format!("(GetAtt {})", parts.join("."));
            }
            _ => {}
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_model_package_group_policy_grant_reads_plainly() {
        let before = json!({"ModelPackageGroupName": "g"});
        let after = json!({"ModelPackageGroupName": "g", "ModelPackageGroupPolicy": {"Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::333333333333:root"}},
            "Action": ["sagemaker:DescribeModelPackage"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package/g/*"}}]}});
        let broadening = broadening("AWS::SageMaker::ModelPackageGroup", &before, &after);
        assert_eq!(
            broadening.principals,
            ["AWS: arn:${AWS::Partition}:iam::333333333333:root"]
        );
        assert_eq!(broadening.actions, ["sagemaker:DescribeModelPackage"]);
        assert_eq!(
            broadening.resources,
            ["arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package/g/*"]
        );
    }

    #[test]
    fn finds_new_actions_resources_and_principals() {
        let before = json!({"Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:a"}]}}]});
        let after = json!({"Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:a", "arn:b"]},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}}],
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}});
        let broadening = broadening("AWS::IAM::Role", &before, &after);
        assert_eq!(broadening.actions, vec!["s3:PutObject", "sts:AssumeRole"]);
        assert_eq!(broadening.resources, vec!["arn:b"]);
        assert_eq!(broadening.principals, vec!["Service: events.amazonaws.com"]);
    }

    #[test]
    fn narrowing_is_not_broadening() {
        let before = json!({"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": ["a", "b"], "Resource": "*"}]}});
        let after = json!({"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "*"}]}});
        assert!(broadening("AWS::IAM::Policy", &before, &after).is_empty());
    }
}
