//! What a policy change grants that was not granted before: new actions, resources and
//! principals in `Allow` statements, for IAM roles and policies and resource policies, and
//! the new grants as rows of principal, actions and resources a reviewer reads.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Grants present after a change and absent before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadening {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub principals: Vec<String>,
    /// Statement by statement: who newly gets which actions on which resources.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// One `Allow` statement's new part: each listed principal may now take each listed action on
/// each listed resource, where before at least one of those combinations was not allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub principals: Vec<String>,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

impl Broadening {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.resources.is_empty() && self.principals.is_empty()
    }

    /// Replaces `${Name}` and `(Ref Name)` with known values (the pseudo parameters
    /// `AWS::Partition`, `AWS::AccountId`, `AWS::Region`, `AWS::URLSuffix` and the stack's
    /// planned parameters), so a reviewer reads ARNs rather than template text.
    pub fn resolve(&mut self, values: &BTreeMap<String, String>) {
        let resolve_all = |items: &mut Vec<String>| {
            for item in items.iter_mut() {
                *item = super::resolve::substitute(item, values);
            }
            let mut seen = BTreeSet::new();
            items.retain(|item| seen.insert(item.clone()));
        };
        resolve_all(&mut self.actions);
        resolve_all(&mut self.resources);
        resolve_all(&mut self.principals);
        for grant in &mut self.grants {
            resolve_all(&mut grant.principals);
            resolve_all(&mut grant.actions);
            resolve_all(&mut grant.resources);
        }
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

/// An `Allow` statement as lists of principals, actions and resources.
#[derive(Default)]
struct Statement {
    principals: Vec<String>,
    actions: Vec<String>,
    resources: Vec<String>,
}

type Triple = (String, String, String);

impl Statement {
    fn triples(&self) -> impl Iterator<Item = Triple> + '_ {
        self.principals.iter().flat_map(move |principal| {
            self.actions.iter().flat_map(move |action| {
                self.resources
                    .iter()
                    .map(move |resource| (principal.clone(), action.clone(), resource.clone()))
            })
        })
    }
}

/// Compares the policy-bearing properties of `owner` (a logical ID) before and after.
pub fn broadening(owner: &str, resource_type: &str, before: &Value, after: &Value) -> Broadening {
    let (old, new) = (
        statements(owner, resource_type, before),
        statements(owner, resource_type, after),
    );
    let granted: BTreeSet<Triple> = old.iter().flat_map(Statement::triples).collect();
    let collect = |statements: &[Statement], pick: fn(&Statement) -> &Vec<String>| {
        statements
            .iter()
            .flat_map(|statement| pick(statement).iter().cloned())
            .collect::<BTreeSet<String>>()
    };
    let difference = |pick: fn(&Statement) -> &Vec<String>| -> Vec<String> {
        collect(&new, pick)
            .difference(&collect(&old, pick))
            .cloned()
            .collect()
    };
    let mut grants: Vec<Grant> = Vec::new();
    for statement in &new {
        let fresh: Vec<Triple> = statement
            .triples()
            .filter(|triple| !granted.contains(triple))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let keep = |items: &Vec<String>, index: fn(&Triple) -> &String| -> Vec<String> {
            items
                .iter()
                .filter(|item| fresh.iter().any(|triple| index(triple) == *item))
                .cloned()
                .collect()
        };
        let grant = Grant {
            principals: keep(&statement.principals, |t| &t.0),
            actions: keep(&statement.actions, |t| &t.1),
            resources: keep(&statement.resources, |t| &t.2),
        };
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    Broadening {
        actions: difference(|s| &s.actions),
        resources: difference(|s| &s.resources),
        principals: difference(|s| &s.principals),
        grants,
    }
}

/// Every `Allow` statement in the policy-bearing properties. Identity policies have no
/// `Principal`: the role or policy holding them is the principal. A trust policy's resource
/// is the role; a resource policy without `Resource` applies to its holder.
fn statements(owner: &str, resource_type: &str, properties: &Value) -> Vec<Statement> {
    let mut found = Vec::new();
    for key in policy_properties(resource_type) {
        let Some(value) = properties.get(key) else {
            continue;
        };
        let holder =
            if *key == "AssumeRolePolicyDocument" || !resource_type.starts_with("AWS::IAM::") {
                None
            } else {
                Some(identity(owner, resource_type, properties))
            };
        if *key == "ManagedPolicyArns" {
            found.push(Statement {
                principals: vec![identity(owner, resource_type, properties)],
                actions: as_list(value)
                    .into_iter()
                    .map(|arn| format!("managed policy {}", text(arn)))
                    .collect(),
                resources: vec!["(what the policy names)".into()],
            });
        } else {
            collect_statements(value, &mut found);
        }
        for statement in found.iter_mut() {
            if statement.principals.is_empty() {
                statement.principals.push(
                    holder
                        .clone()
                        .unwrap_or_else(|| format!("(anyone {owner} trusts)")),
                );
            }
            if statement.resources.is_empty() {
                statement.resources.push(format!("{owner} itself"));
            }
        }
    }
    found
}

/// Who holds an identity policy: the role, or the roles a policy is attached to.
fn identity(owner: &str, resource_type: &str, properties: &Value) -> String {
    if resource_type == "AWS::IAM::Role" {
        return format!("role {owner}");
    }
    let roles: Vec<String> = properties
        .get("Roles")
        .map(as_list)
        .unwrap_or_default()
        .into_iter()
        .map(text)
        .collect();
    if roles.is_empty() {
        format!("holders of {owner}")
    } else {
        format!("role {}", roles.join(", role "))
    }
}

/// Every `Allow` statement under `value` (a document, or a list of inline policies).
fn collect_statements(value: &Value, found: &mut Vec<Statement>) {
    match value {
        Value::Object(map) => {
            if let Some(statements) = map.get("Statement") {
                for statement in as_list(statements) {
                    if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                        continue;
                    }
                    let list = |key: &str| -> Vec<String> {
                        statement
                            .get(key)
                            .map(as_list)
                            .unwrap_or_default()
                            .into_iter()
                            .map(text)
                            .collect()
                    };
                    let mut principals = Vec::new();
                    if let Some(principal) = statement.get("Principal") {
                        collect_principals(principal, &mut principals);
                    }
                    found.push(Statement {
                        principals,
                        actions: list("Action"),
                        resources: list("Resource"),
                    });
                }
            } else {
                for child in map.values() {
                    collect_statements(child, found);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_statements(item, found)),
        // A policy given as JSON text (a model package group's, an API's).
        Value::String(text) => {
            if let Ok(document) = serde_json::from_str::<Value>(text) {
                collect_statements(&document, found);
            }
        }
        _ => {}
    }
}

fn collect_principals(principal: &Value, principals: &mut Vec<String>) {
    match principal {
        Value::Object(map) => {
            for (kind, values) in map {
                for value in as_list(values) {
                    principals.push(format!("{kind}: {}", text(value)));
                }
            }
        }
        other => principals.push(text(other)),
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}
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
        let broadening = broadening(
            "Group",
            "AWS::SageMaker::ModelPackageGroup",
            &before,
            &after,
        );
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
        let broadening = broadening("Role", "AWS::IAM::Role", &before, &after);
        assert_eq!(broadening.actions, vec!["s3:PutObject", "sts:AssumeRole"]);
        assert_eq!(broadening.resources, vec!["Role itself", "arn:b"]);
        assert_eq!(broadening.principals, vec!["Service: events.amazonaws.com"]);
    }

    #[test]
    fn new_grants_read_as_rows_of_principal_actions_and_resources() {
        let before = json!({"Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:a", "arn:b"]}]}}]});
        let after = json!({"Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:a", "arn:b"]},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:b"}]}}],
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}});
        let broadening = broadening("Role", "AWS::IAM::Role", &before, &after);
        assert_eq!(
            broadening.grants,
            [
                Grant {
                    principals: vec!["Service: events.amazonaws.com".into()],
                    actions: vec!["sts:AssumeRole".into()],
                    resources: vec!["Role itself".into()],
                },
                Grant {
                    principals: vec!["role Role".into()],
                    actions: vec!["s3:PutObject".into()],
                    resources: vec!["arn:a".into(), "arn:b".into()],
                },
            ],
            "a statement granting nothing new is left out"
        );
    }

    #[test]
    fn pseudo_parameters_and_known_parameters_resolve() {
        let mut values = crate::plan::resolve::pseudo_parameters("222222222222", "cn-north-1");
        values.insert("Bucket".into(), "images".into());
        let mut broadening = Broadening {
            principals: vec!["AWS: arn:${AWS::Partition}:iam::${AWS::AccountId}:root".into()],
            resources: vec![
                "arn:${AWS::Partition}:s3:::${Bucket}/*".into(),
                "(Ref Bucket)".into(),
                "${Unknown}".into(),
            ],
            ..Broadening::default()
        };
        broadening.resolve(&values);
        assert_eq!(
            broadening.principals,
            ["AWS: arn:aws-cn:iam::222222222222:root"]
        );
        assert_eq!(
            broadening.resources,
            ["arn:aws-cn:s3:::images/*", "images", "${Unknown}"]
        );
    }

    #[test]
    fn narrowing_is_not_broadening() {
        let before = json!({"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": ["a", "b"], "Resource": "*"}]}});
        let after = json!({"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "a", "Resource": "*"}]}});
        assert!(broadening("Policy", "AWS::IAM::Policy", &before, &after).is_empty());
    }
}
