//! Stack records: what a stack holds, how DescribeStacks shows it, finding a live one, the
//! exports it offers, and deleting it (termination protection, retained resources).

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::Value;

use crate::aws::{AwsError, AwsResult, DeployedStack, StackEvent, StackStatus};
use crate::template::Template;

use super::State;

#[derive(Debug, Clone)]
pub(super) struct Stack {
    pub(super) name: String,
    pub(super) id: String,
    pub(super) status: String,
    pub(super) status_reason: Option<String>,
    pub(super) template_body: String,
    pub(super) template: Option<Template>,
    pub(super) parameters: BTreeMap<String, String>,
    pub(super) no_echo: BTreeSet<String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) outputs: BTreeMap<String, String>,
    pub(super) exports: BTreeMap<String, String>,
    pub(super) termination_protection: bool,
    pub(super) policy: Option<String>,
    pub(super) last_updated: Option<String>,
    /// The service role CloudFormation acts as; kept until an operation names another.
    pub(super) role_arn: Option<String>,
    pub(super) resources: IndexMap<String, DeployedResource>,
    /// Oldest first.
    pub(super) events: Vec<StackEvent>,
    /// Bumped by every operation; a change set made at another version is obsolete.
    pub(super) version: u64,
    /// The latest operation's id and where its events start in `events`.
    pub(super) operation: Option<(String, usize)>,
}

#[derive(Debug, Clone)]
pub(super) struct DeployedResource {
    pub(super) resource_type: String,
    pub(super) physical_id: String,
    /// `Properties` and `Metadata` with parameters resolved and references to other resources
    /// left as written: what the next change set compares against.
    pub(super) resolved: Value,
}

/// A live stack by name or id.
pub(super) fn find_live<'a>(
    stacks: &'a mut BTreeMap<String, Stack>,
    name: &str,
) -> Option<&'a mut Stack> {
    if stacks.contains_key(name) {
        return stacks.get_mut(name);
    }
    stacks.values_mut().find(|stack| stack.id == name)
}

impl Stack {
    /// A stack record with nothing in it yet.
    pub(super) fn empty(name: &str, id: &str) -> Stack {
        Stack {
            name: name.to_string(),
            id: id.to_string(),
            status: String::new(),
            status_reason: None,
            template_body: String::new(),
            template: None,
            parameters: BTreeMap::new(),
            no_echo: BTreeSet::new(),
            tags: BTreeMap::new(),
            outputs: BTreeMap::new(),
            exports: BTreeMap::new(),
            termination_protection: false,
            policy: None,
            last_updated: None,
            role_arn: None,
            resources: IndexMap::new(),
            events: Vec::new(),
            version: 0,
            operation: None,
        }
    }

    pub(super) fn deployed(&self) -> DeployedStack {
        DeployedStack {
            name: self.name.clone(),
            id: self.id.clone(),
            status: StackStatus::new(&self.status),
            status_reason: self.status_reason.clone(),
            parameters: self
                .parameters
                .iter()
                .map(|(key, value)| {
                    let shown = if self.no_echo.contains(key) {
                        "****".to_string()
                    } else {
                        value.clone()
                    };
                    (key.clone(), shown)
                })
                .collect(),
            tags: self.tags.clone(),
            outputs: self.outputs.clone(),
            termination_protection: self.termination_protection,
            last_updated: self.last_updated.clone(),
            role_arn: self.role_arn.clone(),
            template_body: self.template_body.clone(),
            last_operation_id: self.operation.as_ref().map(|(id, _)| id.clone()),
            detailed_status: None,
        }
    }
}

impl State {
    /// Exports of every live stack but `except`.
    pub(super) fn exports(&self, except: &str) -> BTreeMap<String, String> {
        self.stacks
            .values()
            .filter(|stack| stack.name != except)
            .flat_map(|stack| stack.exports.clone())
            .collect()
    }

    pub(super) fn delete_stack(&mut self, name: &str) -> AwsResult<()> {
        let State {
            stacks,
            clock,
            loose,
            ..
        } = self;
        // Deleting a stack that does not exist succeeds, as on AWS.
        let Some(stack) = find_live(stacks, name) else {
            return Ok(());
        };
        if stack.termination_protection {
            return Err(AwsError::Validation(format!(
                "Stack [{}] cannot be deleted while TerminationProtection is enabled",
                stack.name
            )));
        }
        if StackStatus::new(&stack.status).is_in_progress() {
            return Err(AwsError::Validation(format!(
                "Stack [{}] cannot be deleted while in status {}",
                stack.name, stack.status
            )));
        }
        stack.record_stack(clock, "DELETE_IN_PROGRESS", Some("User Initiated"));
        let resources: Vec<(String, DeployedResource)> = stack
            .resources
            .iter()
            .rev()
            .map(|(id, resource)| (id.clone(), resource.clone()))
            .collect();
        for (logical_id, resource) in resources {
            let retained = stack
                .template
                .as_ref()
                .and_then(|template| template.resources.get(&logical_id))
                .and_then(|resource| resource.deletion_policy.as_deref())
                == Some("Retain");
            if retained {
                // What a destroy keeps goes on existing outside any stack, under its name.
                let name_property = crate::plan::NAMED_TYPES
                    .iter()
                    .find(|(resource_type, _, _)| *resource_type == resource.resource_type)
                    .map(|(_, property, _)| *property);
                if let Some(property) = name_property {
                    let name = resource.resolved["Properties"][property]
                        .as_str()
                        .unwrap_or(&resource.physical_id);
                    loose.insert(crate::plan::Named {
                        resource_type: resource.resource_type.clone(),
                        name: name.to_string(),
                    });
                }
                stack.record(
                    clock,
                    &logical_id,
                    &resource.resource_type,
                    "DELETE_SKIPPED",
                    None,
                );
            } else {
                stack.record(
                    clock,
                    &logical_id,
                    &resource.resource_type,
                    "DELETE_IN_PROGRESS",
                    None,
                );
                stack.record(
                    clock,
                    &logical_id,
                    &resource.resource_type,
                    "DELETE_COMPLETE",
                    None,
                );
            }
        }
        stack.record_stack(clock, "DELETE_COMPLETE", None);
        stack.resources.clear();
        stack.outputs.clear();
        stack.exports.clear();
        stack.version += 1;
        let name = stack.name.clone();
        let id = stack.id.clone();
        if let Some(stack) = self.stacks.remove(&name) {
            self.deleted.push(stack);
        }
        self.change_sets
            .retain(|change_set| change_set.stack_id != id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::aws::CloudFormation;
    use crate::aws::fake::FakeCloudFormation;
    use crate::aws::fake::fixtures::*;

    use super::*;

    #[tokio::test]
    async fn termination_protection_prevents_deletion() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
        fake.set_termination_protection("app", true)
            .await
            .expect("protect");
        assert!(fake.stack("app").expect("stack").termination_protection);
        assert_eq!(
            fake.delete_stack("app").await,
            Err(AwsError::Validation(
                "Stack [app] cannot be deleted while TerminationProtection is enabled".into()
            ))
        );
        assert!(fake.stack("app").is_some());
        fake.set_termination_protection("app", false)
            .await
            .expect("unprotect");
        fake.delete_stack("app").await.expect("delete");
        assert!(fake.stack("app").is_none());
        // Deleting what does not exist succeeds, as on AWS.
        assert_eq!(fake.delete_stack("app").await, Ok(()));
        assert_eq!(
            fake.set_termination_protection("app", true).await,
            Err(AwsError::NotFound)
        );
    }
}
