//! The roles the templates define, with their inline policies parsed into `Policy` values
//! (intrinsics resolved by the `Resolver`), and what cannot be read offline noted.

use crate::iam::policy::{Condition, Effect, Patterns, Policy, Statement};
use crate::iam::resolve::Resolver;
use crate::render::RenderedStack;
use crate::template::Node;

#[derive(Debug, Clone)]
pub struct Role {
    /// The stack defining it, and its logical ID there.
    pub stack: String,
    pub logical_id: String,
    pub arn: String,
    pub policies: Vec<Policy>,
    /// A boundary given inline (tests); templates name one by ARN, which is unreadable.
    pub boundary: Option<Policy>,
    pub unreadable_boundary: Option<String>,
    /// Managed policy ARNs: AWS's own cannot be read offline.
    pub managed_policies: Vec<String>,
}

/// Every `AWS::IAM::Role` of every stack.
pub fn roles(resolver: &Resolver) -> Vec<Role> {
    let mut roles = Vec::new();
    for stack in resolver.stacks {
        for (logical_id, resource) in &stack.template.resources {
            // A managed policy attached to nothing in the templates is for people (the
            // reviewers' policy): checked as a principal of its own.
            if resource.resource_type == "AWS::IAM::ManagedPolicy"
                && !["Roles", "Users", "Groups"]
                    .iter()
                    .any(|key| resource.properties.contains_key(*key))
            {
                roles.push(Role {
                    stack: stack.spec.id.clone(),
                    logical_id: logical_id.clone(),
                    arn: resolver.arn(stack, logical_id, resource),
                    policies: vec![policy(
                        resolver,
                        stack,
                        &Node::Map(resource.properties.clone()),
                    )],
                    boundary: None,
                    unreadable_boundary: None,
                    managed_policies: Vec::new(),
                });
                continue;
            }
            if resource.resource_type != "AWS::IAM::Role" {
                continue;
            }
            let policies = resource
                .properties
                .get("Policies")
                .map(|node| match node {
                    Node::List(items) => items
                        .iter()
                        .map(|item| policy(resolver, stack, item))
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            roles.push(Role {
                stack: stack.spec.id.clone(),
                logical_id: logical_id.clone(),
                arn: resolver.arn(stack, logical_id, resource),
                policies,
                boundary: None,
                unreadable_boundary: resource
                    .properties
                    .get("PermissionsBoundary")
                    .map(|node| resolver.string(stack, node)),
                managed_policies: resource
                    .properties
                    .get("ManagedPolicyArns")
                    .map(|node| resolver.strings(stack, node))
                    .unwrap_or_default(),
            });
        }
    }
    roles
}

/// One entry of a role's `Policies`.
fn policy(resolver: &Resolver, stack: &RenderedStack, node: &Node) -> Policy {
    let name = node
        .get("PolicyName")
        .map(|name| resolver.string(stack, name))
        .unwrap_or_default();
    let statements = match node.get("PolicyDocument").and_then(|d| d.get("Statement")) {
        Some(Node::List(items)) => items
            .iter()
            .map(|item| statement(resolver, stack, item))
            .collect(),
        Some(single @ Node::Map(_)) => vec![statement(resolver, stack, single)],
        _ => Vec::new(),
    };
    Policy { name, statements }
}

/// Parses one policy statement; a document without an action or resource matches nothing.
pub fn statement(resolver: &Resolver, stack: &RenderedStack, node: &Node) -> Statement {
    let strings = |key: &str| node.get(key).map(|value| resolver.strings(stack, value));
    let patterns = |only: &str, not: &str| match (strings(only), strings(not)) {
        (Some(values), _) => Patterns::Only(values),
        (None, Some(values)) => Patterns::Not(values),
        (None, None) => Patterns::Only(Vec::new()),
    };
    let effect = match node.get("Effect").and_then(Node::as_str) {
        Some("Deny") => Effect::Deny,
        _ => Effect::Allow,
    };
    let mut conditions = Vec::new();
    if let Some(Node::Map(operators)) = node.get("Condition") {
        for (operator, keys) in operators {
            if let Node::Map(keys) = keys {
                for (key, values) in keys {
                    conditions.push(Condition {
                        operator: operator.clone(),
                        key: key.clone(),
                        values: resolver.strings(stack, values),
                    });
                }
            }
        }
    }
    Statement {
        sid: node.get("Sid").and_then(Node::as_str).map(str::to_string),
        effect,
        actions: patterns("Action", "NotAction"),
        resources: patterns("Resource", "NotResource"),
        conditions,
    }
}
