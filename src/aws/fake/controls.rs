//! What tests do beside the trait: inject a failure, an odd status or throttling, add loose
//! named resources and a caller account, read back stacks, change sets, calls, events and uploads,
//! and `deploy` a starting point without recording calls.

use std::collections::BTreeMap;

use crate::aws::{
    AwsError, AwsResult, ChangeSetKind, ChangeSetRequest, ChangeSetStatus, DeployedStack,
    StackEvent, TemplateSource,
};

use super::stacks::{Stack, find_live};
use super::{FakeCloudFormation, State};

#[derive(Debug, Clone)]
pub(super) struct InjectedFailure {
    pub(super) logical_id: String,
    pub(super) reason: String,
}

impl FakeCloudFormation {
    /// Makes the next execution of a change set on `stack` fail at `logical_id` with `reason`:
    /// a first create rolls back to `ROLLBACK_COMPLETE`, an update to
    /// `UPDATE_ROLLBACK_COMPLETE`, and the resource's `CREATE_FAILED`/`UPDATE_FAILED` event
    /// carries the reason.
    pub fn fail_next_execute(&self, stack: &str, logical_id: &str, reason: &str) {
        self.lock().failures.insert(
            stack.to_string(),
            InjectedFailure {
                logical_id: logical_id.to_string(),
                reason: reason.to_string(),
            },
        );
    }

    /// Puts a stack into `status` (`UPDATE_IN_PROGRESS`, `UPDATE_ROLLBACK_FAILED` …), with a
    /// stack event, as if an operation outside the test had done it. Change sets made before
    /// become obsolete.
    /// After its next execution, `stack` is seen configured but still stabilising
    /// (`*_IN_PROGRESS`, `CONFIGURATION_COMPLETE`) by the next `describes` DescribeStacks.
    pub fn settle_slowly(&self, stack: &str, describes: usize) {
        self.lock()
            .settling
            .insert(stack.to_string(), (describes, describes));
    }

    pub fn set_status(&self, stack: &str, status: &str) -> AwsResult<()> {
        let mut state = self.lock();
        let State { stacks, clock, .. } = &mut *state;
        let stack = find_live(stacks, stack).ok_or(AwsError::NotFound)?;
        stack.record_stack(clock, status, None);
        stack.version += 1;
        Ok(())
    }

    /// The next `calls` API calls answer `Throttled`.
    pub fn throttle_next(&self, calls: usize) {
        self.lock().throttle = calls;
    }

    /// The rollback triggers the change sets of `stack` were created with, in order.
    pub fn rollbacks(&self, stack: &str) -> Vec<crate::aws::Rollback> {
        self.lock()
            .rollbacks
            .iter()
            .filter(|(name, _)| name == stack)
            .map(|(_, rollback)| rollback.clone())
            .collect()
    }

    /// A named resource that exists outside any stack, as one a destroy kept.
    pub fn add_loose(&self, resource_type: &str, name: &str) {
        self.lock().loose.insert(crate::plan::Named {
            resource_type: resource_type.to_string(),
            name: name.to_string(),
        });
    }

    /// Credentials of this account (STS GetCallerIdentity), for the account guard.
    pub fn set_caller_account(&self, account: &str) {
        self.lock().caller_account = Some(account.to_string());
    }

    /// The stack as `describe_stack` would return it, without recording a call.
    pub fn stack(&self, name: &str) -> Option<DeployedStack> {
        let state = self.lock();
        state
            .stacks
            .get(name)
            .or_else(|| state.deleted.iter().rev().find(|stack| stack.id == name))
            .map(Stack::deployed)
    }

    /// Names of the change sets attached to a stack and not executed (what `list_change_sets`
    /// lists).
    pub fn change_sets(&self, stack: &str) -> Vec<String> {
        let state = self.lock();
        state
            .change_sets
            .iter()
            .filter(|change_set| change_set.stack_name == stack || change_set.stack_id == stack)
            .filter(|change_set| change_set.is_active())
            .map(|change_set| change_set.name.clone())
            .collect()
    }

    /// The API operations called so far, in order (`DescribeStacks`, `GetTemplate`,
    /// `CreateChangeSet` …), as the real adapter would send them, throttled ones included.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// The policy last set on a stack.
    pub fn stack_policy(&self, stack: &str) -> Option<String> {
        let state = self.lock();
        state
            .stacks
            .get(stack)
            .and_then(|stack| stack.policy.clone())
    }

    /// Every event of a stack, newest first (`stack_events` stops at the last operation's start).
    pub fn events(&self, stack: &str) -> Vec<StackEvent> {
        let state = self.lock();
        state
            .stacks
            .get(stack)
            .or_else(|| state.deleted.iter().rev().find(|found| found.id == stack))
            .map(|stack| stack.events.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The body uploaded to `url` by `upload_template`.
    pub fn uploaded(&self, url: &str) -> Option<String> {
        self.lock().uploads.get(url).cloned()
    }

    /// Creates or updates a stack through a change set and executes it, recording no calls:
    /// for tests that start from something deployed. A failure injected for the stack applies.
    pub fn deploy(
        &self,
        name: &str,
        template_body: &str,
        parameters: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<DeployedStack> {
        let mut state = self.lock();
        let exists = state
            .stacks
            .get(name)
            .is_some_and(|stack| stack.status != "REVIEW_IN_PROGRESS");
        let sequence = state.clock.next();
        let request = ChangeSetRequest {
            stack_name: name.to_string(),
            change_set_name: format!("deploy-{sequence}"),
            kind: if exists {
                ChangeSetKind::Update
            } else {
                ChangeSetKind::Create
            },
            template: TemplateSource::Body(template_body.to_string()),
            parameters: parameters.clone(),
            tags: tags.clone(),
            capabilities: vec![
                "CAPABILITY_NAMED_IAM".into(),
                "CAPABILITY_AUTO_EXPAND".into(),
            ],
            role_arn: None,
            description: String::new(),
            rollback: None,
            revert_drift: false,
        };
        let id = state.create_change_set(&request)?;
        let status = state.describe_change_set(&id)?.status;
        if status == ChangeSetStatus::Ready {
            state.execute_change_set(&id)?;
        } else {
            state.delete_change_set(&id)?;
        }
        state
            .stacks
            .get(name)
            .map(Stack::deployed)
            .ok_or(AwsError::NotFound)
    }
}
