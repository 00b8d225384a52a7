//! What CloudFormation checks when it reads a template: its source and size, resources and
//! their types, references, capabilities and parameters.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::{AwsError, AwsResult, TemplateSource};
use crate::resource_types;
use crate::template::{Function, Node, Template};

use super::State;
use super::intrinsics::scalar_text;
use super::resource_changes::sub_variables;

const INLINE_TEMPLATE_LIMIT: usize = 51_200;
const URL_TEMPLATE_LIMIT: usize = 1_000_000;

/// IAM resource types that need `CAPABILITY_IAM`, with the property that names one (and so
/// needs `CAPABILITY_NAMED_IAM`).
const IAM_TYPES: [(&str, Option<&str>); 8] = [
    ("AWS::IAM::Role", Some("RoleName")),
    ("AWS::IAM::ManagedPolicy", Some("ManagedPolicyName")),
    ("AWS::IAM::Policy", None),
    ("AWS::IAM::User", Some("UserName")),
    ("AWS::IAM::Group", Some("GroupName")),
    ("AWS::IAM::InstanceProfile", Some("InstanceProfileName")),
    ("AWS::IAM::AccessKey", None),
    ("AWS::IAM::UserToGroupAddition", None),
];

impl State {
    pub(super) fn template_body(&self, source: &TemplateSource) -> AwsResult<String> {
        match source {
            TemplateSource::Body(body) => {
                if body.len() > INLINE_TEMPLATE_LIMIT {
                    return Err(AwsError::Validation(format!(
                        "1 validation error detected: Value at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to {INLINE_TEMPLATE_LIMIT}"
                    )));
                }
                Ok(body.clone())
            }
            TemplateSource::Url(url) => {
                if !url.starts_with("https://") || !url.contains(".amazonaws.com") {
                    return Err(AwsError::Validation(
                        "TemplateURL must be a supported URL.".into(),
                    ));
                }
                let body = self.uploads.get(url).ok_or_else(|| {
                    AwsError::Validation(format!("S3 error: the object at {url} does not exist"))
                })?;
                if body.len() > URL_TEMPLATE_LIMIT {
                    return Err(AwsError::Validation(format!(
                        "Template may not exceed {URL_TEMPLATE_LIMIT} bytes in size."
                    )));
                }
                Ok(body.clone())
            }
        }
    }
}

/// What CloudFormation checks when it reads a template: resources exist, their types exist,
/// and every reference resolves.
pub(super) fn check_template(template: &Template) -> Result<(), String> {
    if template.resources.is_empty() {
        return Err("Template format error: At least one Resources member must be defined.".into());
    }
    let unknown: Vec<&str> = template
        .resources
        .values()
        .map(|resource| resource.resource_type.as_str())
        .filter(|resource_type| {
            resource_types::lookup(resource_type).is_none()
                && !resource_types::is_custom(resource_type)
                && !resource_type.starts_with("AWS::CloudFormation::")
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Template format error: Unrecognized resource types: [{}]",
            unknown.join(", ")
        ));
    }
    let known = |name: &str| {
        template.parameters.contains_key(name)
            || template.resources.contains_key(name)
            || name.starts_with("AWS::")
    };
    let mut unresolved = BTreeSet::new();
    for resource in template.resources.values() {
        let mut references = Vec::new();
        for node in resource
            .properties
            .values()
            .chain(resource.attributes.values())
        {
            node_references(node, &mut references);
        }
        for dependency in &resource.depends_on {
            if !template.resources.contains_key(dependency) {
                unresolved.insert(dependency.clone());
            }
        }
        for (name, resource_only) in references {
            let ok = if resource_only {
                template.resources.contains_key(&name)
            } else {
                known(&name)
            };
            if !ok {
                unresolved.insert(name);
            }
        }
    }
    if !unresolved.is_empty() {
        return Err(format!(
            "Template format error: Unresolved resource dependencies [{}] in the Resources block of the template",
            unresolved.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut references = Vec::new();
    for output in template.outputs.values() {
        node_references(output, &mut references);
    }
    let unresolved: BTreeSet<String> = references
        .into_iter()
        .filter(|(name, resource_only)| {
            if *resource_only {
                !template.resources.contains_key(name)
            } else {
                !known(name)
            }
        })
        .map(|(name, _)| name)
        .collect();
    if !unresolved.is_empty() {
        return Err(format!(
            "Template format error: Unresolved resource dependencies [{}] in the Outputs block of the template",
            unresolved.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// Names a template value refers to, each with whether only a resource will do (`GetAtt`,
/// `${X.Attribute}`).
fn node_references(node: &Node, found: &mut Vec<(String, bool)>) {
    match node {
        Node::List(items) => {
            for item in items {
                node_references(item, found);
            }
        }
        Node::Map(map) => {
            for item in map.values() {
                node_references(item, found);
            }
        }
        Node::Intrinsic(intrinsic) => match (intrinsic.function, &intrinsic.argument) {
            (Function::Ref, Node::String(name)) => found.push((name.clone(), false)),
            (Function::GetAtt, Node::List(parts)) => {
                if let Some(Node::String(name)) = parts.first() {
                    found.push((name.clone(), true));
                }
            }
            (Function::GetAtt, Node::String(name)) => found.push((name.clone(), true)),
            (Function::Sub, argument) => {
                let (text, locals) = match argument {
                    Node::List(parts) => (
                        parts.first().and_then(Node::as_str),
                        parts.get(1).and_then(Node::as_map),
                    ),
                    other => (other.as_str(), None),
                };
                for variable in sub_variables(text.unwrap_or_default()) {
                    if locals.is_some_and(|locals| locals.contains_key(&variable)) {
                        continue;
                    }
                    match variable.split_once('.') {
                        Some((name, _)) => found.push((name.to_string(), true)),
                        None => found.push((variable, false)),
                    }
                }
                if let Some(locals) = locals {
                    for local in locals.values() {
                        node_references(local, found);
                    }
                }
            }
            (_, argument) => node_references(argument, found),
        },
        _ => {}
    }
}

pub(super) fn check_capabilities(
    template: &Template,
    capabilities: &[String],
) -> Result<(), String> {
    let mut needed: Option<&str> = None;
    for resource in template.resources.values() {
        for (resource_type, name_property) in IAM_TYPES {
            if resource.resource_type != resource_type {
                continue;
            }
            if name_property.is_some_and(|property| resource.properties.contains_key(property)) {
                needed = Some("CAPABILITY_NAMED_IAM");
            } else if needed.is_none() {
                needed = Some("CAPABILITY_IAM");
            }
        }
    }
    let granted = |capability: &str| capabilities.iter().any(|given| given == capability);
    match needed {
        Some("CAPABILITY_IAM") if granted("CAPABILITY_IAM") || granted("CAPABILITY_NAMED_IAM") => {
            Ok(())
        }
        Some("CAPABILITY_NAMED_IAM") if granted("CAPABILITY_NAMED_IAM") => Ok(()),
        Some(capability) => Err(format!("Requires capabilities : [{capability}]")),
        None => Ok(()),
    }
}

/// The template's parameters with defaults applied and the given values checked, and the
/// names of those declared `NoEcho`.
pub(super) fn effective_parameters(
    template: &Template,
    given: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, BTreeSet<String>), String> {
    let unknown: Vec<&str> = given
        .keys()
        .filter(|name| !template.parameters.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Parameters: [{}] do not exist in the template",
            unknown.join(", ")
        ));
    }
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    let mut no_echo = BTreeSet::new();
    for (name, declaration) in &template.parameters {
        let value = given.get(name).cloned().or_else(|| {
            declaration
                .get("Default")
                .map(|default| scalar_text(&default.to_json()))
        });
        let Some(value) = value else {
            missing.push(name.as_str());
            continue;
        };
        if let Some(Node::List(allowed)) = declaration.get("AllowedValues") {
            let allowed: Vec<String> = allowed
                .iter()
                .map(|item| scalar_text(&item.to_json()))
                .collect();
            if !allowed.contains(&value) {
                return Err(format!("Parameter '{name}' must be one of AllowedValues"));
            }
        }
        let hidden = match declaration.get("NoEcho") {
            Some(Node::Bool(flag)) => *flag,
            Some(Node::String(text)) => text.eq_ignore_ascii_case("true"),
            _ => false,
        };
        if hidden {
            no_echo.insert(name.clone());
        }
        values.insert(name.clone(), value);
    }
    if !missing.is_empty() {
        return Err(format!(
            "Parameters: [{}] must have values",
            missing.join(", ")
        ));
    }
    Ok((values, no_echo))
}

#[cfg(test)]
mod tests {
    use crate::aws::fake::FakeCloudFormation;
    use crate::aws::fake::fixtures::*;
    use crate::aws::{AwsError, AwsResult, ChangeSetKind, CloudFormation, TemplateSource};

    #[tokio::test]
    async fn templates_are_checked_as_cloudformation_checks_them() {
        let fake = FakeCloudFormation::new();
        let create = |body: &str, parameters: &[(&str, &str)]| {
            request("app", "plan", ChangeSetKind::Create, body, parameters)
        };
        let error = |result: AwsResult<String>| match result {
            Err(AwsError::Validation(message)) => message,
            other => format!("not a validation error: {other:?}"),
        };
        assert_eq!(
            error(
                fake.create_change_set(&create(TOPIC, &[("Unknown", "x")]))
                    .await
            ),
            "Parameters: [Unknown] do not exist in the template"
        );
        assert_eq!(
            error(fake.create_change_set(&create(NAMED, &[])).await),
            "Parameters: [Name] must have values"
        );
        let dangling = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      KmsMasterKeyId: !Ref Key\n";
        assert_eq!(
            error(fake.create_change_set(&create(dangling, &[])).await),
            "Template format error: Unresolved resource dependencies [Key] in the Resources block of the template"
        );
        let role = "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: app\n      AssumeRolePolicyDocument: {}\n";
        assert_eq!(
            error(fake.create_change_set(&create(role, &[])).await),
            "Requires capabilities : [CAPABILITY_NAMED_IAM]"
        );
        let mut granted = create(role, &[]);
        granted.capabilities = vec!["CAPABILITY_NAMED_IAM".into()];
        assert!(fake.create_change_set(&granted).await.is_ok());
        let mut bad_name = create(TOPIC, &[]);
        bad_name.change_set_name = "1plan".into();
        assert!(error(fake.create_change_set(&bad_name).await).contains("changeSetName"));
        // Nothing invalid left a stack behind; only the valid request made one.
        assert_eq!(fake.change_sets("app"), vec!["plan"]);
    }

    #[tokio::test]
    async fn uploaded_templates_are_read_by_url() {
        let fake = FakeCloudFormation::new();
        let url = fake
            .upload_template("templates-bucket", "dev/app.yaml", TOPIC.as_bytes())
            .await
            .expect("upload");
        assert_eq!(
            url,
            "https://templates-bucket.s3.us-east-1.amazonaws.com/dev/app.yaml"
        );
        let mut by_url = request("app", "plan", ChangeSetKind::Create, "", &[]);
        by_url.template = TemplateSource::Url(url.clone());
        let id = fake.create_change_set(&by_url).await.expect("create");
        fake.execute_change_set(&id).await.expect("execute");
        assert_eq!(fake.stack("app").expect("stack").template_body, TOPIC);
        by_url.template = TemplateSource::Url(
            "https://templates-bucket.s3.us-east-1.amazonaws.com/missing".into(),
        );
        by_url.change_set_name = "other".into();
        assert!(matches!(
            fake.create_change_set(&by_url).await,
            Err(AwsError::Validation(message)) if message.starts_with("S3 error")
        ));
    }
}
