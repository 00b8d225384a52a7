//! Executing a change set: resource events, new physical ids for added and replaced resources,
//! cleanups, rollbacks after an injected failure, and the stack's state afterwards.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::{AwsError, AwsResult, ChangeSetStatus, ResourceChange};

use super::State;
use super::change_sets::{Execution, StoredChangeSet};
use super::controls::InjectedFailure;
use super::events::Clock;
use super::intrinsics::Scope;
use super::stacks::{DeployedResource, Stack};

impl State {
    pub(super) fn execute_change_set(&mut self, id: &str) -> AwsResult<()> {
        let change_set = self
            .change_sets
            .iter()
            .find(|change_set| change_set.id == id)
            .cloned()
            .ok_or(AwsError::NotFound)?;
        let refuse = |status: &str| {
            AwsError::Validation(format!(
                "ChangeSet [{id}] cannot be executed in its current {status}"
            ))
        };
        match (&change_set.status, change_set.execution) {
            (ChangeSetStatus::Ready, Execution::Available) => {}
            (ChangeSetStatus::Ready, Execution::Complete) => {
                return Err(refuse("execution status of [EXECUTE_COMPLETE]"));
            }
            (ChangeSetStatus::Ready, Execution::Failed) => {
                return Err(refuse("execution status of [EXECUTE_FAILED]"));
            }
            _ => return Err(refuse("status of [FAILED]")),
        }
        if self.is_obsolete(&change_set) {
            return Err(refuse("execution status of [OBSOLETE]"));
        }
        let exports = self.exports(&change_set.stack_name);
        let failure = self.failures.remove(&change_set.stack_name);
        let State { stacks, clock, .. } = self;
        let stack = stacks
            .get_mut(&change_set.stack_name)
            .ok_or(AwsError::NotFound)?;
        if change_set.role_arn.is_some() {
            stack.role_arn = change_set.role_arn.clone();
        }
        // Each execution is an operation; its events start with the one recorded next.
        // Named from the stack and its version, so the clock (and every time stamp) stays as it was.
        stack.operation = Some((
            format!(
                "op-{}-{}",
                stack.id.rsplit('/').next().unwrap_or_default(),
                stack.version
            ),
            stack.events.len(),
        ));
        let succeeded = execute(stack, &change_set, &exports, failure, clock)?;
        stack.version += 1;
        let stack_id = stack.id.clone();
        if succeeded && change_set.revert_drift {
            self.revert_drift(&change_set.stack_name);
        }
        // CloudFormation deletes a stack's other change sets once one runs.
        self.change_sets
            .retain(|other| other.id == change_set.id || other.stack_id != stack_id);
        if let Some(executed) = self.change_sets.iter_mut().find(|other| other.id == id) {
            executed.execution = if succeeded {
                Execution::Complete
            } else {
                Execution::Failed
            };
        }
        Ok(())
    }
}

/// Runs a change set against its stack. `Ok(false)` when an injected failure rolled it back.
fn execute(
    stack: &mut Stack,
    change_set: &StoredChangeSet,
    exports: &BTreeMap<String, String>,
    failure: Option<InjectedFailure>,
    clock: &mut Clock,
) -> AwsResult<bool> {
    let creating = stack.status == "REVIEW_IN_PROGRESS";
    let template = &change_set.template;
    let replaced: BTreeSet<&str> = change_set
        .changes
        .iter()
        .filter(|change| {
            change.action == "Modify"
                && matches!(change.replacement.as_deref(), Some("True" | "Conditional"))
        })
        .map(|change| change.logical_id.as_str())
        .collect();

    // The state after success, computed first: evaluation errors leave the stack untouched.
    let mut physical_ids: BTreeMap<String, String> = stack
        .resources
        .iter()
        .map(|(id, resource)| (id.clone(), resource.physical_id.clone()))
        .collect();
    for change in &change_set.changes {
        match change.action.as_str() {
            "Add" => {
                physical_ids.insert(
                    change.logical_id.clone(),
                    physical_id(&stack.name, &change.logical_id, clock),
                );
            }
            "Modify" if replaced.contains(change.logical_id.as_str()) => {
                physical_ids.insert(
                    change.logical_id.clone(),
                    physical_id(&stack.name, &change.logical_id, clock),
                );
            }
            "Remove" => {
                physical_ids.remove(&change.logical_id);
            }
            _ => {}
        }
    }
    let unresolved = Scope {
        template,
        parameters: &change_set.parameters,
        stack_name: &stack.name,
        stack_id: &stack.id,
        exports,
        physical_ids: None,
    };
    let resolved = unresolved.resources().map_err(AwsError::Validation)?;
    // A bucket, model package group or log group is known by the name it is given: its
    // `Ref` is that name, as on AWS.
    for (logical_id, (resource_type, value)) in &resolved {
        let name = crate::plan::NAMED_TYPES
            .iter()
            .find(|(named, _, _)| named == resource_type)
            .and_then(|(_, property, _)| value["Properties"][property].as_str());
        if let Some(name) = name
            && physical_ids.contains_key(logical_id)
        {
            physical_ids.insert(logical_id.clone(), name.to_string());
        }
    }
    let deployed_scope = Scope {
        physical_ids: Some(&physical_ids),
        ..unresolved
    };
    let outputs = deployed_scope.outputs().map_err(AwsError::Validation)?;

    let start = if creating {
        "CREATE_IN_PROGRESS"
    } else {
        "UPDATE_IN_PROGRESS"
    };
    stack.record_stack(clock, start, Some("User Initiated"));
    stack.last_updated = stack.events.last().map(|event| event.timestamp.clone());

    let deployed_types: BTreeMap<String, String> = stack
        .resources
        .iter()
        .map(|(id, resource)| (id.clone(), resource.resource_type.clone()))
        .collect();
    let resource_type = |logical_id: &str| -> String {
        template
            .resources
            .get(logical_id)
            .map(|resource| resource.resource_type.clone())
            .or_else(|| deployed_types.get(logical_id).cloned())
            .unwrap_or_else(|| "AWS::CloudFormation::CustomResource".into())
    };

    let mut done: Vec<&ResourceChange> = Vec::new();
    let mut failed: Option<(String, String, &'static str)> = None;
    for change in change_set
        .changes
        .iter()
        .filter(|change| change.action != "Remove")
    {
        let (in_progress, complete, failed_status) = if change.action == "Add" {
            ("CREATE_IN_PROGRESS", "CREATE_COMPLETE", "CREATE_FAILED")
        } else {
            ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED")
        };
        let reason = replaced
            .contains(change.logical_id.as_str())
            .then_some("Requested update requires the creation of a new physical resource; hence creating one.");
        stack.record(
            clock,
            &change.logical_id,
            &change.resource_type,
            in_progress,
            reason,
        );
        if let Some(injected) = failure
            .as_ref()
            .filter(|injected| injected.logical_id == change.logical_id)
        {
            stack.record(
                clock,
                &change.logical_id,
                &change.resource_type,
                failed_status,
                Some(&injected.reason),
            );
            failed = Some((
                change.logical_id.clone(),
                change.resource_type.clone(),
                failed_status,
            ));
            break;
        }
        stack.record(
            clock,
            &change.logical_id,
            &change.resource_type,
            complete,
            None,
        );
        done.push(change);
    }
    // A failure injected for a resource the change set does not touch still fails the run.
    if failed.is_none()
        && let Some(injected) = &failure
    {
        let logical_id = injected.logical_id.as_str();
        let resource_type = resource_type(logical_id);
        let (in_progress, failed_status) = if deployed_types.contains_key(logical_id) {
            ("UPDATE_IN_PROGRESS", "UPDATE_FAILED")
        } else {
            ("CREATE_IN_PROGRESS", "CREATE_FAILED")
        };
        stack.record(clock, logical_id, &resource_type, in_progress, None);
        stack.record(
            clock,
            logical_id,
            &resource_type,
            failed_status,
            Some(&injected.reason),
        );
        failed = Some((logical_id.to_string(), resource_type, failed_status));
    }

    if let Some((logical_id, failed_type, failed_status)) = failed {
        let verb = if failed_status == "CREATE_FAILED" {
            "create"
        } else {
            "update"
        };
        let reason = format!("The following resource(s) failed to {verb}: [{logical_id}]. ");
        if creating {
            stack.record_stack(
                clock,
                "ROLLBACK_IN_PROGRESS",
                Some(&format!("{reason}Rollback requested by user.")),
            );
            stack.record(clock, &logical_id, &failed_type, "DELETE_COMPLETE", None);
            for change in done.iter().rev() {
                stack.record(
                    clock,
                    &change.logical_id,
                    &change.resource_type,
                    "DELETE_IN_PROGRESS",
                    None,
                );
                stack.record(
                    clock,
                    &change.logical_id,
                    &change.resource_type,
                    "DELETE_COMPLETE",
                    None,
                );
            }
            stack.record_stack(clock, "ROLLBACK_COMPLETE", None);
            // GetTemplate and DescribeStacks show what the failed create was given.
            stack.template_body = change_set.template_body.clone();
            stack.template = Some(change_set.template.clone());
            stack.parameters = change_set.parameters.clone();
            stack.no_echo = change_set.no_echo.clone();
            stack.tags = change_set.tags.clone();
        } else {
            stack.record_stack(clock, "UPDATE_ROLLBACK_IN_PROGRESS", Some(&reason));
            for change in done.iter().rev().filter(|change| change.action == "Modify") {
                stack.record(
                    clock,
                    &change.logical_id,
                    &change.resource_type,
                    "UPDATE_IN_PROGRESS",
                    None,
                );
                stack.record(
                    clock,
                    &change.logical_id,
                    &change.resource_type,
                    "UPDATE_COMPLETE",
                    None,
                );
            }
            stack.record_stack(clock, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", None);
            let created = done
                .iter()
                .filter(|change| {
                    change.action == "Add" || replaced.contains(change.logical_id.as_str())
                })
                .map(|change| (change.logical_id.clone(), change.resource_type.clone()));
            let failed_new = (failed_status == "CREATE_FAILED")
                .then(|| (logical_id.clone(), failed_type.clone()));
            for (created_id, created_type) in created.chain(failed_new) {
                stack.record(
                    clock,
                    &created_id,
                    &created_type,
                    "DELETE_IN_PROGRESS",
                    None,
                );
                stack.record(clock, &created_id, &created_type, "DELETE_COMPLETE", None);
            }
            stack.record_stack(clock, "UPDATE_ROLLBACK_COMPLETE", None);
        }
        return Ok(false);
    }

    let removed: Vec<&ResourceChange> = change_set
        .changes
        .iter()
        .filter(|change| change.action == "Remove")
        .collect();
    if !creating && (!removed.is_empty() || !replaced.is_empty()) {
        stack.record_stack(clock, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", None);
        let old_template = stack.template.clone();
        let policy = |logical_id: &str, replaced: bool| -> Option<String> {
            let resource = old_template.as_ref()?.resources.get(logical_id)?;
            if replaced {
                resource.update_replace_policy.clone()
            } else {
                resource.deletion_policy.clone()
            }
        };
        // Old copies of replaced resources and removed ones go in reverse order, dependents
        // before what they depend on.
        let cleanups = change_set.changes.iter().rev().filter_map(|change| {
            let replacement = replaced.contains(change.logical_id.as_str());
            (replacement || change.action == "Remove").then(|| {
                (
                    change.logical_id.clone(),
                    change.resource_type.clone(),
                    replacement,
                )
            })
        });
        for (logical_id, cleanup_type, replacement) in cleanups {
            if policy(&logical_id, replacement).as_deref() == Some("Retain") {
                stack.record(clock, &logical_id, &cleanup_type, "DELETE_SKIPPED", None);
            } else {
                stack.record(
                    clock,
                    &logical_id,
                    &cleanup_type,
                    "DELETE_IN_PROGRESS",
                    None,
                );
                stack.record(clock, &logical_id, &cleanup_type, "DELETE_COMPLETE", None);
            }
        }
    }
    stack.record_stack(
        clock,
        if creating {
            "CREATE_COMPLETE"
        } else {
            "UPDATE_COMPLETE"
        },
        None,
    );
    stack.template_body = change_set.template_body.clone();
    stack.template = Some(change_set.template.clone());
    stack.parameters = change_set.parameters.clone();
    stack.no_echo = change_set.no_echo.clone();
    stack.tags = change_set.tags.clone();
    stack.outputs = outputs.values;
    stack.exports = outputs.exports;
    stack.resources = resolved
        .into_iter()
        .filter_map(|(logical_id, (resource_type, resolved))| {
            let physical_id = physical_ids.get(&logical_id)?.clone();
            Some((
                logical_id,
                DeployedResource {
                    resource_type,
                    physical_id,
                    resolved,
                },
            ))
        })
        .collect();
    Ok(true)
}

/// `<stack>-<LogicalId>-<13 characters>`, as CloudFormation names unnamed resources.
fn physical_id(stack: &str, logical_id: &str, clock: &mut Clock) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bits = clock.unique();
    let mut suffix = String::with_capacity(13);
    for _ in 0..13 {
        suffix.push(char::from(ALPHABET[(bits % 36) as usize]));
        bits /= 36;
        if bits == 0 {
            bits = clock.unique();
        }
    }
    format!("{stack}-{logical_id}-{suffix}")
}

#[cfg(test)]
mod tests {
    use crate::aws::fake::FakeCloudFormation;
    use crate::aws::fake::fixtures::*;
    use crate::aws::{ChangeSetKind, ChangeSetStatus, CloudFormation, StackStatus};

    #[tokio::test]
    async fn a_failed_first_create_rolls_back_and_can_be_deleted() {
        let fake = FakeCloudFormation::new();
        fake.fail_next_execute(
            "app",
            "Topic",
            "Resource handler returned message: \"boom\"",
        );
        let id = fake
            .create_change_set(&request("app", "plan", ChangeSetKind::Create, TOPIC, &[]))
            .await
            .expect("create change set");
        fake.execute_change_set(&id).await.expect("execute");
        let stack = fake.stack("app").expect("stack");
        assert_eq!(stack.status.as_str(), "ROLLBACK_COMPLETE");
        assert!(stack.status.needs_recreate());
        assert!(stack.outputs.is_empty());
        let events = fake.stack_events("app").await.expect("events");
        let failed = events
            .iter()
            .find(|event| event.status == "CREATE_FAILED")
            .expect("CREATE_FAILED event");
        assert_eq!(failed.logical_id, "Topic");
        assert_eq!(
            failed.reason.as_deref(),
            Some("Resource handler returned message: \"boom\"")
        );
        assert_eq!(events[0].status, "ROLLBACK_COMPLETE");
        assert!(events.iter().any(|event| {
            event.status == "ROLLBACK_IN_PROGRESS"
                && event
                    .reason
                    .as_deref()
                    .is_some_and(|reason| reason.contains("failed to create: [Topic]"))
        }));
        assert!(matches!(
            fake.describe_change_set(&id).await.map(|set| set.status),
            Ok(ChangeSetStatus::Failed(_))
        ));

        fake.delete_stack("app").await.expect("delete");
        assert_eq!(fake.describe_stack("app").await, Ok(None));
        assert!(fake.change_sets("app").is_empty());
        // The failure was used up: the next create succeeds.
        deploy_topic(&fake, "app");
        assert_eq!(
            fake.stack("app").map(|stack| stack.status),
            Some(StackStatus::new("CREATE_COMPLETE"))
        );
    }

    #[tokio::test]
    async fn a_failed_update_rolls_back_to_the_deployed_state() {
        let fake = FakeCloudFormation::new();
        let deployed = deploy_topic(&fake, "app");
        fake.fail_next_execute("app", "Topic", "Invalid parameter: DisplayName");
        let id = fake
            .create_change_set(&request(
                "app",
                "plan",
                ChangeSetKind::Update,
                TOPIC,
                &[("DisplayName", "other")],
            ))
            .await
            .expect("create change set");
        fake.execute_change_set(&id).await.expect("execute");
        let stack = fake.stack("app").expect("stack");
        assert_eq!(stack.status.as_str(), "UPDATE_ROLLBACK_COMPLETE");
        assert_eq!(stack.parameters, deployed.parameters);
        assert_eq!(stack.outputs, deployed.outputs);
        assert_ne!(stack.fingerprint(), deployed.fingerprint());

        let events = fake.stack_events("app").await.expect("events");
        assert_eq!(events[0].status, "UPDATE_ROLLBACK_COMPLETE");
        let last = events.last().expect("events");
        assert_eq!(
            (last.logical_id.as_str(), last.status.as_str()),
            ("app", "UPDATE_IN_PROGRESS")
        );
        let failed = events
            .iter()
            .find(|event| event.status == "UPDATE_FAILED")
            .expect("UPDATE_FAILED event");
        assert_eq!(
            failed.reason.as_deref(),
            Some("Invalid parameter: DisplayName")
        );
        // stack_events stops at the operation's start; the full history is older.
        assert!(fake.events("app").len() > events.len());
    }
}
