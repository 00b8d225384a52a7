//! The IAM facts the analysis reads, compiled in: what CloudFormation's handlers need
//! (`data/cloudformation-handler-permissions.tsv`, from the resource provider schemas), which
//! resources each IAM action can be scoped to (`data/iam-actions.tsv`, from the Service
//! Authorization Reference) and the reviewed rules that apply them to the platform's
//! resources (`data/cloudformation-handler-rules.tsv`). `scripts/update-iam-data` regenerates
//! the first two.

use std::collections::HashMap;
use std::sync::OnceLock;

const HANDLER_PERMISSIONS: &str = include_str!("../../data/cloudformation-handler-permissions.tsv");
const ACTIONS: &str = include_str!("../../data/iam-actions.tsv");
const RULES: &str = include_str!("../../data/cloudformation-handler-rules.tsv");

/// The handlers CloudFormation calls in stack operations.
pub const HANDLERS: [&str; 4] = ["create", "read", "update", "delete"];

/// An IAM resource type an action can be scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedTo {
    /// `sagemaker:endpoint-config`, lowercase.
    pub resource_type: String,
    pub required: bool,
}

/// When a handler calls a permission that the schema lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needed {
    /// Only when the property is set.
    WhenSet(&'static str),
    /// Only when the property has this value.
    WhenEquals(&'static str, &'static str),
    /// Never, for this platform.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excuse {
    pub permission: &'static str,
    pub needed: Needed,
    pub reason: &'static str,
}

/// An IAM resource type with an ARN template (`${Partition}`, `${Property}`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArnRule {
    pub resource_type: &'static str,
    pub template: &'static str,
}

#[derive(Default)]
pub struct Facts {
    /// `type handler` → permissions.
    handlers: HashMap<String, Vec<&'static str>>,
    /// lowercase `service:action` → its resource types.
    actions: HashMap<String, Vec<ScopedTo>>,
    /// lowercase `service:resource-type` → ARN format.
    arn_formats: HashMap<String, &'static str>,
    own_arns: HashMap<&'static str, ArnRule>,
    /// `type lowercase-permission` → the ARNs it is checked on.
    targets: HashMap<String, Vec<ArnRule>>,
    excuses: HashMap<&'static str, Vec<Excuse>>,
}

pub fn facts() -> &'static Facts {
    static FACTS: OnceLock<Facts> = OnceLock::new();
    FACTS.get_or_init(|| Facts::parse(HANDLER_PERMISSIONS, ACTIONS, RULES))
}

fn rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('\t').collect())
}

fn arn_rule(value: &'static str) -> Option<ArnRule> {
    let (resource_type, template) = value.split_once(' ')?;
    Some(ArnRule {
        resource_type,
        template: template.trim(),
    })
}

impl Facts {
    fn parse(handlers: &'static str, actions: &'static str, rules: &'static str) -> Facts {
        let mut facts = Facts::default();
        for row in rows(handlers) {
            if let [type_name, handler, permissions, ..] = row[..] {
                facts.handlers.insert(
                    format!("{type_name} {handler}"),
                    permissions.split(',').filter(|p| !p.is_empty()).collect(),
                );
            }
        }
        for row in rows(actions) {
            let [name, value, ..] = row[..] else {
                continue;
            };
            if let Some(resource_type) = name.strip_prefix('@') {
                facts
                    .arn_formats
                    .insert(resource_type.to_lowercase(), value);
                continue;
            }
            let service = name.split(':').next().unwrap_or_default();
            let scoped = value
                .split(',')
                .filter(|item| !item.is_empty())
                .map(|item| ScopedTo {
                    resource_type: format!("{service}:{}", item.trim_end_matches('!'))
                        .to_lowercase(),
                    required: item.ends_with('!'),
                })
                .collect();
            facts.actions.insert(name.to_lowercase(), scoped);
        }
        for row in rows(rules) {
            let [kind, type_name, permission, value, reason, ..] = row[..] else {
                continue;
            };
            match kind {
                "arn" => {
                    if let Some(rule) = arn_rule(value) {
                        facts.own_arns.insert(type_name, rule);
                    }
                }
                "target" => {
                    if let Some(rule) = arn_rule(value) {
                        facts
                            .targets
                            .entry(format!("{type_name} {}", permission.to_lowercase()))
                            .or_default()
                            .push(rule);
                    }
                }
                "excuse" => {
                    let needed = match value.split_once('=') {
                        _ if value == "never" => Needed::Never,
                        Some((property, wanted)) => Needed::WhenEquals(property, wanted),
                        None => Needed::WhenSet(value),
                    };
                    facts.excuses.entry(type_name).or_default().push(Excuse {
                        permission,
                        needed,
                        reason,
                    });
                }
                "handler" => {
                    facts.handlers.insert(
                        format!("{type_name} {permission}"),
                        value.split(',').filter(|p| !p.is_empty()).collect(),
                    );
                }
                _ => {}
            }
        }
        facts
    }

    /// The permissions one handler of a type needs, as its schema lists them.
    pub fn handler(&self, type_name: &str, handler: &str) -> &[&'static str] {
        self.handlers
            .get(&format!("{type_name} {handler}"))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether the data knows the type's handlers at all.
    pub fn knows_type(&self, type_name: &str) -> bool {
        HANDLERS
            .iter()
            .any(|handler| !self.handler(type_name, handler).is_empty())
    }

    /// The resource types an action can be scoped to; `None` for an unknown action.
    pub fn action(&self, action: &str) -> Option<&[ScopedTo]> {
        self.actions
            .get(&action.to_lowercase())
            .map(|scoped| scoped.as_slice())
    }

    pub fn own_arn(&self, type_name: &str) -> Option<ArnRule> {
        self.own_arns.get(type_name).copied()
    }

    pub fn targets(&self, type_name: &str, permission: &str) -> &[ArnRule] {
        self.targets
            .get(&format!("{type_name} {}", permission.to_lowercase()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn excuses(&self, type_name: &str) -> &[Excuse] {
        self.excuses
            .get(type_name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The ARN format of an IAM resource type (`sagemaker:endpoint`).
    pub fn arn_format(&self, resource_type: &str) -> Option<&'static str> {
        self.arn_formats.get(&resource_type.to_lowercase()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_handlers_and_actions() {
        let facts = facts();
        assert!(
            facts
                .handler("AWS::SageMaker::ModelPackageGroup", "create")
                .contains(&"sagemaker:GetModelPackageGroupPolicy")
        );
        let create_endpoint = facts.action("sagemaker:createendpoint").expect("known");
        assert!(
            create_endpoint.iter().any(|scoped| scoped.resource_type
                == "sagemaker:endpoint-config"
                && scoped.required)
        );
        assert_eq!(facts.action("kms:CreateKey").map(<[_]>::len), Some(0));
        assert!(
            facts
                .action("apigateway:GET")
                .expect("known")
                .iter()
                .any(|scoped| scoped.resource_type == "apigateway:restapi")
        );
        assert!(facts.action("s3:REST.PUT.OBJECT").is_none());
        assert_eq!(
            facts.arn_format("sagemaker:endpoint"),
            Some("arn:${Partition}:sagemaker:${Region}:${Account}:endpoint/${EndpointName}")
        );
    }
}
