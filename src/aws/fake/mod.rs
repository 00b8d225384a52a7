//! An in-memory CloudFormation for the core's tests, following the real service's semantics
//! (not the local emulator's), with every operation finishing at once.
//!
//! What it models: stacks by name with ARN-shaped ids; CREATE change sets that leave a
//! `REVIEW_IN_PROGRESS` stack behind; change sets computed by comparing resolved resource
//! properties (parameters substituted), with `Replacement` from the resource schemas'
//! create-only properties; "didn't contain changes" when template, parameters and tags equal the
//! deployed ones; execution with resource and stack events, outputs evaluated from the template;
//! rollbacks; termination protection; stack policies; template uploads. Tests inject failures
//! (`fail_next_execute`), odd states (`set_status`) and throttling (`throttle_next`), and read
//! back what was called (`calls`: the API operations the real adapter would send, e.g.
//! `DescribeStacks` then `GetTemplate` for one `describe_stack`).
//!
//! Drift is what a test says was changed by hand (`drift_resource`): detections find it,
//! drift-aware change sets put it back. Each execution is an operation whose events
//! `DescribeEvents` answers; change sets get the validation results a test sets.
//!
//! Not modelled: asynchronous progress (nothing is ever seen `*_IN_PROGRESS` unless a test sets
//! it), nested stacks, transforms, `Fn::Cidr`, and the enforcement of stack policies.
//!
//! The files, one concern each: `controls.rs` (what tests set up and read back),
//! `stacks.rs` (stack records, deletion), `events.rs` (stack events, the clock),
//! `template_checks.rs` (reading and checking a template), `change_sets.rs` (creating,
//! describing and deleting change sets), `resource_changes.rs` (the diff behind a change set),
//! `execution.rs` (running a change set, rollbacks), `refactor.rs` (stack refactoring), `drift.rs` (drift, validation results,
//! operation events) and `intrinsics.rs` (conditions, intrinsic functions, outputs and
//! exports).

mod change_sets;
mod controls;
mod drift;
mod events;
mod execution;
#[cfg(test)]
mod fixtures;
mod intrinsics;
mod refactor;
mod resource_changes;
mod stacks;
mod template_checks;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use super::{
    AwsError, AwsResult, ChangeSet, ChangeSetRequest, CloudFormation, DeployedStack, StackEvent,
    template_url,
};
use change_sets::StoredChangeSet;
use controls::InjectedFailure;
use events::{Clock, OPERATION_STARTS, STACK_TYPE};
use stacks::{Stack, find_live};

/// The fake's region.
pub const REGION: &str = "us-east-1";
/// The fake's account.
pub const ACCOUNT_ID: &str = "123456789012";

/// The in-memory CloudFormation. Every method takes `&self`; state sits behind a mutex that is
/// never held across an await, so it works from current-thread and multi-thread runtimes.
#[derive(Debug, Default)]
pub struct FakeCloudFormation {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Live stacks by name.
    stacks: BTreeMap<String, Stack>,
    /// Deleted stacks, still found by id.
    deleted: Vec<Stack>,
    /// In creation order.
    change_sets: Vec<StoredChangeSet>,
    /// Template bodies by the URL `upload_template` returned.
    uploads: BTreeMap<String, String>,
    calls: Vec<String>,
    throttle: usize,
    failures: BTreeMap<String, InjectedFailure>,
    clock: Clock,
    /// The account the credentials are for; `None`: unknown, as with mocked clients.
    caller_account: Option<String>,
    /// Named resources that exist outside any stack (kept by a destroy, made by hand).
    pub(super) loose: BTreeSet<crate::plan::Named>,
    /// By stack: the rollback triggers of each change set created, in order.
    pub(super) rollbacks: Vec<(String, crate::aws::Rollback)>,
    pub(super) drift: drift::DriftState,
    /// By stack: describes left in which a just-executed stack still shows `*_IN_PROGRESS`
    /// with detailed status `CONFIGURATION_COMPLETE` (resources configured, stabilising).
    pub(super) settling: BTreeMap<String, (usize, usize)>,
    /// Stack refactors, in creation order.
    refactors: Vec<refactor::StoredRefactor>,
}

impl FakeCloudFormation {
    pub fn new() -> Self {
        Self::default()
    }

    /// `DescribeStacks`, and `GetTemplate` too when `with_template`.
    fn describe(&self, name: &str, with_template: bool) -> AwsResult<Option<DeployedStack>> {
        let mut state = self.lock();
        state.call("DescribeStacks")?;
        let Some(stack) = state
            .stacks
            .get(name)
            .or_else(|| state.deleted.iter().rev().find(|stack| stack.id == name))
            .cloned()
        else {
            return Ok(None);
        };
        let mut deployed = stack.deployed();
        if let Some((left, _)) = state.settling.get_mut(name)
            && *left > 0
            && deployed.status.0.ends_with("_COMPLETE")
        {
            *left -= 1;
            deployed.status = crate::aws::StackStatus::new(
                &deployed.status.0.replace("_COMPLETE", "_IN_PROGRESS"),
            );
            deployed.detailed_status = Some("CONFIGURATION_COMPLETE".into());
        }
        if deployed.status.is_review() || !with_template {
            // The real adapter reads no template for a stack that has none yet.
            deployed.template_body = String::new();
        } else {
            state.call("GetTemplate")?;
        }
        Ok(Some(deployed))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable state behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CloudFormation for FakeCloudFormation {
    async fn describe_stack(&self, name: &str) -> AwsResult<Option<DeployedStack>> {
        self.describe(name, true)
    }

    async fn stack_state(&self, name: &str) -> AwsResult<Option<DeployedStack>> {
        self.describe(name, false)
    }

    async fn create_change_set(&self, request: &ChangeSetRequest) -> AwsResult<String> {
        let mut state = self.lock();
        state.call("CreateChangeSet")?;
        state.create_change_set(request)
    }

    async fn describe_change_set(&self, id: &str) -> AwsResult<ChangeSet> {
        let mut state = self.lock();
        state.call("DescribeChangeSet")?;
        state.describe_change_set(id)
    }

    async fn execute_change_set(&self, id: &str) -> AwsResult<()> {
        let mut state = self.lock();
        state.call("ExecuteChangeSet")?;
        state.execute_change_set(id)
    }

    async fn delete_change_set(&self, id: &str) -> AwsResult<()> {
        let mut state = self.lock();
        state.call("DeleteChangeSet")?;
        state.delete_change_set(id)
    }

    /// The change sets' ids, oldest first.
    async fn list_change_sets(&self, stack: &str) -> AwsResult<Vec<String>> {
        let mut state = self.lock();
        state.call("ListChangeSets")?;
        let stack = find_live(&mut state.stacks, stack)
            .map(|stack| stack.id.clone())
            .ok_or(AwsError::NotFound)?;
        Ok(state
            .change_sets
            .iter()
            .filter(|change_set| change_set.stack_id == stack && change_set.is_active())
            .map(|change_set| change_set.id.clone())
            .collect())
    }

    /// Newest first, back to (and including) the stack-level event that started the most
    /// recent operation, as the real adapter reads them.
    async fn stack_events(&self, stack: &str) -> AwsResult<Vec<StackEvent>> {
        let mut state = self.lock();
        state.call("DescribeStackEvents")?;
        let State {
            stacks, deleted, ..
        } = &mut *state;
        let stack = match find_live(stacks, stack) {
            Some(stack) => &*stack,
            None => deleted
                .iter()
                .rev()
                .find(|found| found.id == stack)
                .ok_or(AwsError::NotFound)?,
        };
        let mut events = Vec::new();
        for event in stack.events.iter().rev() {
            events.push(event.clone());
            if event.resource_type == STACK_TYPE
                && event.logical_id == stack.name
                && OPERATION_STARTS.contains(&event.status.as_str())
            {
                break;
            }
        }
        Ok(events)
    }

    async fn detect_drift(&self, stack: &str) -> AwsResult<String> {
        let mut state = self.lock();
        state.call("DetectStackDrift")?;
        state.detect_drift(stack)
    }

    async fn drift_detection(&self, id: &str) -> AwsResult<crate::aws::DriftDetection> {
        let mut state = self.lock();
        state.call("DescribeStackDriftDetectionStatus")?;
        state.drift_detection(id)
    }

    async fn resource_drifts(&self, stack: &str) -> AwsResult<Vec<crate::aws::ResourceDrift>> {
        let mut state = self.lock();
        state.call("DescribeStackResourceDrifts")?;
        state.resource_drifts(stack)
    }

    async fn operation_events(
        &self,
        source: &crate::aws::EventSource,
        failed_only: bool,
    ) -> AwsResult<Vec<crate::aws::OperationEvent>> {
        let mut state = self.lock();
        state.call("DescribeEvents")?;
        state.operation_events(source, failed_only)
    }

    async fn create_stack_refactor(
        &self,
        request: &crate::aws::RefactorRequest,
    ) -> AwsResult<String> {
        let mut state = self.lock();
        state.call("CreateStackRefactor")?;
        state.create_stack_refactor(request)
    }

    async fn stack_refactor(&self, id: &str) -> AwsResult<crate::aws::RefactorState> {
        let mut state = self.lock();
        state.call("DescribeStackRefactor")?;
        state.stack_refactor(id)
    }

    async fn execute_stack_refactor(&self, id: &str) -> AwsResult<()> {
        let mut state = self.lock();
        state.call("ExecuteStackRefactor")?;
        state.execute_stack_refactor(id)
    }

    async fn delete_stack(&self, stack: &str) -> AwsResult<()> {
        let mut state = self.lock();
        state.call("DeleteStack")?;
        state.delete_stack(stack)
    }

    async fn set_termination_protection(&self, stack: &str, enabled: bool) -> AwsResult<()> {
        let mut state = self.lock();
        state.call("UpdateTerminationProtection")?;
        let stack = find_live(&mut state.stacks, stack).ok_or(AwsError::NotFound)?;
        stack.termination_protection = enabled;
        Ok(())
    }

    async fn set_stack_policy(&self, stack: &str, policy: &str) -> AwsResult<()> {
        let mut state = self.lock();
        state.call("SetStackPolicy")?;
        if let Err(error) = serde_json::from_str::<Value>(policy) {
            return Err(AwsError::Validation(format!(
                "the stack policy is not valid JSON: {error}"
            )));
        }
        let stack = find_live(&mut state.stacks, stack).ok_or(AwsError::NotFound)?;
        stack.policy = Some(policy.to_string());
        Ok(())
    }

    async fn caller_account(&self) -> AwsResult<Option<String>> {
        Ok(self.lock().caller_account.clone())
    }

    async fn named_resource_exists(&self, resource: &crate::plan::Named) -> AwsResult<bool> {
        Ok(self.lock().loose.contains(resource))
    }

    async fn object_exists(&self, bucket: &str, key: &str) -> AwsResult<bool> {
        let mut state = self.lock();
        state.call("HeadObject")?;
        Ok(state
            .uploads
            .contains_key(&template_url(bucket, REGION, key)))
    }

    async fn read_object(&self, bucket: &str, key: &str) -> AwsResult<Option<Vec<u8>>> {
        let mut state = self.lock();
        state.call("GetObject")?;
        Ok(state
            .uploads
            .get(&template_url(bucket, REGION, key))
            .map(|body| body.clone().into_bytes()))
    }

    async fn upload_template(&self, bucket: &str, key: &str, body: &[u8]) -> AwsResult<String> {
        let mut state = self.lock();
        state.call("PutObject")?;
        let url = template_url(bucket, REGION, key);
        state
            .uploads
            .insert(url.clone(), String::from_utf8_lossy(body).into_owned());
        Ok(url)
    }
}

impl State {
    /// Records an API call; answers `Throttled` while throttling is on.
    fn call(&mut self, operation: &str) -> AwsResult<()> {
        self.calls.push(operation.to_string());
        if self.throttle > 0 {
            self.throttle -= 1;
            return Err(AwsError::Throttled("Rate exceeded".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[tokio::test]
    async fn throttling_answers_the_next_calls() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
        fake.throttle_next(2);
        assert!(matches!(
            fake.describe_stack("app").await,
            Err(AwsError::Throttled(_))
        ));
        let throttled = fake.stack_events("app").await;
        assert!(matches!(&throttled, Err(error) if error.is_transient()));
        assert!(
            fake.describe_stack("app")
                .await
                .expect("describe")
                .is_some()
        );
        assert_eq!(
            fake.calls(),
            vec![
                "DescribeStacks",
                "DescribeStackEvents",
                "DescribeStacks",
                "GetTemplate"
            ]
        );
    }

    #[tokio::test]
    async fn stack_policies_are_stored() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
        let policy = r#"{"Statement":[{"Effect":"Deny","Action":"Update:Replace","Principal":"*","Resource":"*"}]}"#;
        fake.set_stack_policy("app", policy)
            .await
            .expect("set policy");
        assert_eq!(fake.stack_policy("app").as_deref(), Some(policy));
        assert!(matches!(
            fake.set_stack_policy("app", "{not json").await,
            Err(AwsError::Validation(_))
        ));
        assert_eq!(
            fake.set_stack_policy("missing", policy).await,
            Err(AwsError::NotFound)
        );
    }
}
