//! Change sets: creating one (the template read and checked, the stack it reviews), describing,
//! deleting, and when one is obsolete or already executed.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::{
    AwsError, AwsResult, ChangeSet, ChangeSetKind, ChangeSetRequest, ChangeSetStatus,
    ResourceChange, not_executable,
};
use crate::template::Template;

use super::events::uuid;
use super::intrinsics::Scope;
use super::resource_changes::resource_changes;
use super::stacks::Stack;
use super::template_checks::{check_capabilities, check_template, effective_parameters};
use super::{ACCOUNT_ID, REGION, State};

/// Statuses from which a stack accepts an UPDATE change set.
const UPDATABLE: [&str; 5] = [
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
];

#[derive(Debug, Clone)]
pub(super) struct StoredChangeSet {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) stack_name: String,
    pub(super) stack_id: String,
    pub(super) template_body: String,
    pub(super) template: Template,
    pub(super) parameters: BTreeMap<String, String>,
    pub(super) no_echo: BTreeSet<String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) role_arn: Option<String>,
    pub(super) status: ChangeSetStatus,
    pub(super) execution: Execution,
    pub(super) changes: Vec<ResourceChange>,
    pub(super) stack_version: u64,
    /// A drift-aware change set (`DeploymentMode: REVERT_DRIFT`).
    pub(super) revert_drift: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Execution {
    Available,
    Unavailable,
    Complete,
    Failed,
}

impl StoredChangeSet {
    /// Listed by ListChangeSets: not yet executed. An executed change set is still described
    /// by its id.
    pub(super) fn is_active(&self) -> bool {
        matches!(
            self.execution,
            Execution::Available | Execution::Unavailable
        )
    }
}

impl State {
    pub(super) fn create_change_set(&mut self, request: &ChangeSetRequest) -> AwsResult<String> {
        let validation = |message: String| AwsError::Validation(message);
        check_change_set_name(&request.change_set_name).map_err(validation)?;
        let body = self.template_body(&request.template)?;
        let template = Template::parse(&body)
            .map_err(|error| validation(format!("Template format error: {error}")))?;
        check_template(&template).map_err(validation)?;
        check_capabilities(&template, &request.capabilities).map_err(validation)?;
        let (parameters, no_echo) =
            effective_parameters(&template, &request.parameters).map_err(validation)?;
        if let Some(rollback) = &request.rollback {
            // CloudFormation's limit; the alarms themselves are not checked here.
            if rollback.monitoring_minutes > 180 {
                return Err(validation(
                    "MonitoringTimeInMinutes must be at most 180".to_string(),
                ));
            }
            self.rollbacks
                .push((request.stack_name.clone(), rollback.clone()));
        }

        let name = request.stack_name.as_str();
        let existing = self.stacks.get(name);
        match (request.kind, existing) {
            (ChangeSetKind::Create, Some(stack)) if stack.status != "REVIEW_IN_PROGRESS" => {
                return Err(validation(format!(
                    "Stack [{name}] already exists and cannot be created again with the changeSet [{}].",
                    request.change_set_name
                )));
            }
            (ChangeSetKind::Update, None) => {
                return Err(validation(format!("Stack [{name}] does not exist")));
            }
            (ChangeSetKind::Update, Some(stack)) if !UPDATABLE.contains(&stack.status.as_str()) => {
                return Err(validation(format!(
                    "Stack:{} is in {} state and can not be updated.",
                    stack.id, stack.status
                )));
            }
            _ => {}
        }
        if let Some(stack) = existing
            && self.change_sets.iter().any(|change_set| {
                change_set.stack_id == stack.id && change_set.name == request.change_set_name
            })
        {
            return Err(validation(format!(
                "ChangeSet [{}] already exists",
                request.change_set_name
            )));
        }

        let exports = self.exports(name);
        let stack_id = match existing {
            Some(stack) => stack.id.clone(),
            None => format!(
                "arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{name}/{}",
                uuid(self.clock.unique())
            ),
        };
        let scope = Scope {
            template: &template,
            parameters: &parameters,
            stack_name: name,
            stack_id: &stack_id,
            exports: &exports,
            physical_ids: None,
        };
        let resolved = scope.resources().map_err(validation)?;
        scope.outputs().map_err(validation)?;

        let deployed = existing.filter(|stack| stack.status != "REVIEW_IN_PROGRESS");
        let (status, execution, changes) = match deployed {
            None => (
                ChangeSetStatus::Ready,
                Execution::Available,
                resolved
                    .iter()
                    .map(|(id, (resource_type, _))| ResourceChange {
                        logical_id: id.clone(),
                        resource_type: resource_type.clone(),
                        action: "Add".into(),
                        replacement: None,
                    })
                    .collect(),
            ),
            Some(stack)
                if request.revert_drift
                    && stack.template.as_ref() == Some(&template)
                    && stack.parameters == parameters
                    && stack.tags == request.tags
                    && self
                        .drift
                        .actual
                        .get(&stack.name)
                        .is_some_and(|drift| !drift.is_empty()) =>
            {
                (
                    ChangeSetStatus::Ready,
                    Execution::Available,
                    self.drift.actual[&stack.name]
                        .iter()
                        .map(|drift| ResourceChange {
                            logical_id: drift.logical_id.clone(),
                            resource_type: drift.resource_type.clone(),
                            action: "Modify".into(),
                            replacement: Some("False".into()),
                        })
                        .collect(),
                )
            }
            Some(stack)
                if stack.template.as_ref() == Some(&template)
                    && stack.parameters == parameters
                    && stack.tags == request.tags =>
            {
                (
                    ChangeSetStatus::NoChanges,
                    Execution::Unavailable,
                    Vec::new(),
                )
            }
            Some(stack) => (
                ChangeSetStatus::Ready,
                Execution::Available,
                resource_changes(stack, &resolved, stack.tags != request.tags),
            ),
        };

        if existing.is_none() {
            let mut stack = Stack::empty(name, &stack_id);
            stack.record_stack(
                &mut self.clock,
                "REVIEW_IN_PROGRESS",
                Some("User Initiated"),
            );
            stack.status_reason = None;
            self.stacks.insert(name.to_string(), stack);
        }
        let stack_version = self.stacks.get(name).map_or(0, |stack| stack.version);
        let id = format!(
            "arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:changeSet/{}/{}",
            request.change_set_name,
            uuid(self.clock.unique())
        );
        self.change_sets.push(StoredChangeSet {
            id: id.clone(),
            name: request.change_set_name.clone(),
            stack_name: name.to_string(),
            stack_id,
            template_body: body,
            template,
            parameters,
            no_echo,
            tags: request.tags.clone(),
            role_arn: request.role_arn.clone(),
            status,
            execution,
            changes,
            stack_version,
            revert_drift: request.revert_drift,
        });
        self.record_validations(name, &id);
        // A failed validation in FAIL mode fails the change set, as CloudFormation's early
        // validation does; the details are in DescribeEvents.
        let failing: Vec<String> = self
            .drift
            .change_set_validations
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|validation| validation.status == "FAILED" && validation.mode == "FAIL")
            .map(|validation| validation.name.clone())
            .collect();
        if !failing.is_empty()
            && let Some(stored) = self.change_sets.iter_mut().find(|stored| stored.id == id)
        {
            stored.status = ChangeSetStatus::Failed(format!(
                "The following hook(s)/validation failed: [{}]. To troubleshoot Early Validation errors, use the DescribeEvents API for detailed failure information.",
                failing.join(", ")
            ));
            stored.execution = Execution::Unavailable;
        }
        Ok(id)
    }

    pub(super) fn describe_change_set(&self, id: &str) -> AwsResult<ChangeSet> {
        let change_set = self
            .change_sets
            .iter()
            .find(|change_set| change_set.id == id)
            .ok_or(AwsError::NotFound)?;
        let status = match (&change_set.status, change_set.execution) {
            (ChangeSetStatus::Ready, Execution::Available) if self.is_obsolete(change_set) => {
                ChangeSetStatus::Failed(not_executable("OBSOLETE"))
            }
            (ChangeSetStatus::Ready, Execution::Complete) => {
                ChangeSetStatus::Failed(not_executable("EXECUTE_COMPLETE"))
            }
            (ChangeSetStatus::Ready, Execution::Failed) => {
                ChangeSetStatus::Failed(not_executable("EXECUTE_FAILED"))
            }
            (status, _) => status.clone(),
        };
        Ok(ChangeSet {
            id: change_set.id.clone(),
            status,
            changes: change_set.changes.clone(),
        })
    }

    pub(super) fn is_obsolete(&self, change_set: &StoredChangeSet) -> bool {
        self.stacks
            .get(&change_set.stack_name)
            .is_none_or(|stack| stack.version != change_set.stack_version)
    }

    pub(super) fn delete_change_set(&mut self, id: &str) -> AwsResult<()> {
        let before = self.change_sets.len();
        self.change_sets.retain(|change_set| change_set.id != id);
        if self.change_sets.len() == before {
            return Err(AwsError::NotFound);
        }
        Ok(())
    }
}

fn check_change_set_name(name: &str) -> Result<(), String> {
    let mut characters = name.chars();
    let valid = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '-')
        && name.len() <= 128;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "1 validation error detected: Value '{name}' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*"
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::aws::fake::FakeCloudFormation;
    use crate::aws::fake::fixtures::*;
    use crate::aws::{CloudFormation, StackStatus};

    use super::*;

    #[tokio::test]
    async fn a_create_change_set_reviews_then_creates_the_stack() {
        let fake = FakeCloudFormation::new();
        assert_eq!(fake.describe_stack("app").await, Ok(None));
        let id = fake
            .create_change_set(&request("app", "plan-1", ChangeSetKind::Create, TOPIC, &[]))
            .await
            .expect("create change set");
        assert!(id.starts_with("arn:aws:cloudformation:us-east-1:123456789012:changeSet/plan-1/"));

        let review = fake
            .describe_stack("app")
            .await
            .expect("describe")
            .expect("stack");
        assert_eq!(review.status.as_str(), "REVIEW_IN_PROGRESS");
        assert!(
            review
                .id
                .starts_with("arn:aws:cloudformation:us-east-1:123456789012:stack/app/")
        );
        assert_eq!(review.template_body, "");

        let described = fake
            .describe_change_set(&id)
            .await
            .expect("describe change set");
        assert_eq!(described.status, ChangeSetStatus::Ready);
        assert_eq!(changes(&described), vec![change("Topic", "Add", None)]);
        assert_eq!(fake.list_change_sets("app").await, Ok(vec![id.clone()]));

        fake.execute_change_set(&id).await.expect("execute");
        let stack = fake
            .describe_stack("app")
            .await
            .expect("describe")
            .expect("stack");
        assert_eq!(stack.status.as_str(), "CREATE_COMPLETE");
        assert_eq!(stack.id, review.id);
        assert_eq!(stack.template_body, TOPIC);
        assert_eq!(stack.parameters, map(&[("DisplayName", "alerts")]));
        assert_eq!(stack.tags, map(&[("project", "mlops")]));
        assert!(
            stack.outputs["TopicArn"].starts_with("app-Topic-"),
            "{:?}",
            stack.outputs
        );
        assert_eq!(
            stack.outputs["TopicName"],
            "arn:aws:fake:::app/Topic/TopicName"
        );
        assert_eq!(stack.outputs["Described"], "app-alerts");
        assert!(stack.last_updated.is_some());

        let events = fake.stack_events("app").await.expect("events");
        let statuses: Vec<(&str, &str)> = events
            .iter()
            .map(|event| (event.logical_id.as_str(), event.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("app", "CREATE_COMPLETE"),
                ("Topic", "CREATE_COMPLETE"),
                ("Topic", "CREATE_IN_PROGRESS"),
                ("app", "CREATE_IN_PROGRESS"),
            ]
        );
        assert!(
            events
                .windows(2)
                .all(|pair| pair[0].timestamp > pair[1].timestamp)
        );
        assert_eq!(
            fake.calls(),
            vec![
                "DescribeStacks",
                "CreateChangeSet",
                "DescribeStacks",
                "DescribeChangeSet",
                "ListChangeSets",
                "ExecuteChangeSet",
                "DescribeStacks",
                "GetTemplate",
                "DescribeStackEvents",
            ]
        );
    }

    #[tokio::test]
    async fn deleting_a_create_change_set_leaves_the_empty_review_stack() {
        let fake = FakeCloudFormation::new();
        let id = fake
            .create_change_set(&request("app", "plan-1", ChangeSetKind::Create, TOPIC, &[]))
            .await
            .expect("create change set");
        fake.delete_change_set(&id)
            .await
            .expect("delete change set");
        assert!(fake.change_sets("app").is_empty());
        assert_eq!(
            fake.stack("app").map(|stack| stack.status),
            Some(StackStatus::new("REVIEW_IN_PROGRESS"))
        );
        assert_eq!(fake.describe_change_set(&id).await, Err(AwsError::NotFound));
        assert_eq!(fake.delete_change_set(&id).await, Err(AwsError::NotFound));
        // A later CREATE change set reuses the review stack.
        let again = fake
            .create_change_set(&request("app", "plan-2", ChangeSetKind::Create, TOPIC, &[]))
            .await
            .expect("create again");
        fake.execute_change_set(&again).await.expect("execute");
        assert_eq!(
            fake.stack("app").map(|stack| stack.status),
            Some(StackStatus::new("CREATE_COMPLETE"))
        );
    }

    #[tokio::test]
    async fn an_unchanged_template_gives_no_changes() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
        let id = fake
            .create_change_set(&request("app", "same", ChangeSetKind::Update, TOPIC, &[]))
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&id).await.expect("describe");
        assert_eq!(described.status, ChangeSetStatus::NoChanges);
        assert!(described.changes.is_empty());
        assert!(matches!(
            fake.execute_change_set(&id).await,
            Err(AwsError::Validation(message)) if message.contains("[FAILED]")
        ));
        // The default passed explicitly is the same parameter value.
        let explicit = fake
            .create_change_set(&request(
                "app",
                "explicit",
                ChangeSetKind::Update,
                TOPIC,
                &[("DisplayName", "alerts")],
            ))
            .await
            .expect("create change set");
        assert_eq!(
            fake.describe_change_set(&explicit)
                .await
                .map(|set| set.status),
            Ok(ChangeSetStatus::NoChanges)
        );
        // A tag change alone is a change: taggable resources are modified.
        let mut retag = request("app", "retag", ChangeSetKind::Update, TOPIC, &[]);
        retag.tags = map(&[("project", "other")]);
        let retag = fake.create_change_set(&retag).await.expect("retag");
        let described = fake.describe_change_set(&retag).await.expect("describe");
        assert_eq!(described.status, ChangeSetStatus::Ready);
        assert_eq!(
            changes(&described),
            vec![change("Topic", "Modify", Some("False"))]
        );
    }

    #[tokio::test]
    async fn an_update_change_set_needs_an_existing_updatable_stack() {
        let fake = FakeCloudFormation::new();
        assert_eq!(
            fake.create_change_set(&request("app", "plan", ChangeSetKind::Update, TOPIC, &[]))
                .await,
            Err(AwsError::Validation("Stack [app] does not exist".into()))
        );
        assert!(fake.stack("app").is_none());
        deploy_topic(&fake, "app");
        assert!(matches!(
            fake.create_change_set(&request("app", "plan", ChangeSetKind::Create, TOPIC, &[]))
                .await,
            Err(AwsError::Validation(message)) if message.contains("already exists")
        ));
        fake.set_status("app", "UPDATE_IN_PROGRESS")
            .expect("set status");
        assert!(matches!(
            fake.create_change_set(&request("app", "plan", ChangeSetKind::Update, TOPIC, &[]))
                .await,
            Err(AwsError::Validation(message))
                if message.contains("is in UPDATE_IN_PROGRESS state and can not be updated")
        ));
    }

    #[tokio::test]
    async fn a_change_set_made_before_the_stack_changed_cannot_run() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
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
        fake.set_status("app", "UPDATE_ROLLBACK_COMPLETE")
            .expect("set status");
        assert!(matches!(
            fake.describe_change_set(&id).await.map(|set| set.status),
            Ok(ChangeSetStatus::Failed(reason)) if reason.contains("obsolete")
        ));
        assert!(matches!(
            fake.execute_change_set(&id).await,
            Err(AwsError::Validation(message)) if message.contains("[OBSOLETE]")
        ));
        assert_eq!(
            fake.execute_change_set("arn:aws:cloudformation:us-east-1:123456789012:changeSet/x/y")
                .await,
            Err(AwsError::NotFound)
        );
    }
}
