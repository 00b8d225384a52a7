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
//! Not modelled: asynchronous progress (nothing is ever seen `*_IN_PROGRESS` unless a test sets
//! it), drift, nested stacks, transforms, `Fn::Cidr`, and the enforcement of stack policies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::resource_types;
use crate::template::{Function, Node, Resource, Template};

use super::{
    AwsError, AwsResult, ChangeSet, ChangeSetKind, ChangeSetRequest, ChangeSetStatus,
    CloudFormation, DeployedStack, ResourceChange, StackEvent, StackStatus, TemplateSource,
    not_executable, template_url,
};

/// The fake's region.
pub const REGION: &str = "us-east-1";
/// The fake's account.
pub const ACCOUNT_ID: &str = "123456789012";

const STACK_TYPE: &str = "AWS::CloudFormation::Stack";
const INLINE_TEMPLATE_LIMIT: usize = 51_200;
const URL_TEMPLATE_LIMIT: usize = 1_000_000;
/// 2024-01-01T00:00:00Z: the fake clock starts here and advances a second per event.
const EPOCH: u64 = 1_704_067_200;

/// Statuses from which a stack accepts an UPDATE change set.
const UPDATABLE: [&str; 5] = [
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
];

/// Stack-level statuses that begin an operation (rollbacks and cleanups continue one).
const OPERATION_STARTS: [&str; 5] = [
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
    "REVIEW_IN_PROGRESS",
];

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
    /// Buckets that exist outside any stack (kept by a destroy, made by hand).
    loose_buckets: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct InjectedFailure {
    logical_id: String,
    reason: String,
}

#[derive(Debug, Clone)]
struct Stack {
    name: String,
    id: String,
    status: String,
    status_reason: Option<String>,
    template_body: String,
    template: Option<Template>,
    parameters: BTreeMap<String, String>,
    no_echo: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    exports: BTreeMap<String, String>,
    termination_protection: bool,
    policy: Option<String>,
    last_updated: Option<String>,
    /// The service role CloudFormation acts as; kept until an operation names another.
    role_arn: Option<String>,
    resources: IndexMap<String, DeployedResource>,
    /// Oldest first.
    events: Vec<StackEvent>,
    /// Bumped by every operation; a change set made at another version is obsolete.
    version: u64,
}

#[derive(Debug, Clone)]
struct DeployedResource {
    resource_type: String,
    physical_id: String,
    /// `Properties` and `Metadata` with parameters resolved and references to other resources
    /// left as written: what the next change set compares against.
    resolved: Value,
}

#[derive(Debug, Clone)]
struct StoredChangeSet {
    id: String,
    name: String,
    stack_name: String,
    stack_id: String,
    template_body: String,
    template: Template,
    parameters: BTreeMap<String, String>,
    no_echo: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    role_arn: Option<String>,
    status: ChangeSetStatus,
    execution: Execution,
    changes: Vec<ResourceChange>,
    stack_version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Execution {
    Available,
    Unavailable,
    Complete,
    Failed,
}

impl FakeCloudFormation {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable state behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

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

    /// The stack as `describe_stack` would return it, without recording a call.
    /// A bucket that exists outside any stack, as one a destroy kept.
    pub fn add_loose_bucket(&self, name: &str) {
        self.lock().loose_buckets.insert(name.to_string());
    }

    /// Credentials of this account (STS GetCallerIdentity), for the account guard.
    pub fn set_caller_account(&self, account: &str) {
        self.lock().caller_account = Some(account.to_string());
    }

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

impl CloudFormation for FakeCloudFormation {
    async fn describe_stack(&self, name: &str) -> AwsResult<Option<DeployedStack>> {
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
        if deployed.status.is_review() {
            // The real adapter reads no template for a stack that has none yet.
            deployed.template_body = String::new();
        } else {
            state.call("GetTemplate")?;
        }
        Ok(Some(deployed))
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

    async fn bucket_exists(&self, bucket: &str) -> AwsResult<bool> {
        Ok(self.lock().loose_buckets.contains(bucket))
    }

    async fn object_exists(&self, bucket: &str, key: &str) -> AwsResult<bool> {
        let mut state = self.lock();
        state.call("HeadObject")?;
        Ok(state
            .uploads
            .contains_key(&template_url(bucket, REGION, key)))
    }

    async fn upload_template(&self, bucket: &str, key: &str, body: &str) -> AwsResult<String> {
        let mut state = self.lock();
        state.call("PutObject")?;
        let url = template_url(bucket, REGION, key);
        state.uploads.insert(url.clone(), body.to_string());
        Ok(url)
    }
}

/// A live stack by name or id.
fn find_live<'a>(stacks: &'a mut BTreeMap<String, Stack>, name: &str) -> Option<&'a mut Stack> {
    if stacks.contains_key(name) {
        return stacks.get_mut(name);
    }
    stacks.values_mut().find(|stack| stack.id == name)
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

    fn template_body(&self, source: &TemplateSource) -> AwsResult<String> {
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

    /// Exports of every live stack but `except`.
    fn exports(&self, except: &str) -> BTreeMap<String, String> {
        self.stacks
            .values()
            .filter(|stack| stack.name != except)
            .flat_map(|stack| stack.exports.clone())
            .collect()
    }

    fn create_change_set(&mut self, request: &ChangeSetRequest) -> AwsResult<String> {
        let validation = |message: String| AwsError::Validation(message);
        check_change_set_name(&request.change_set_name).map_err(validation)?;
        let body = self.template_body(&request.template)?;
        let template = Template::parse(&body)
            .map_err(|error| validation(format!("Template format error: {error}")))?;
        check_template(&template).map_err(validation)?;
        check_capabilities(&template, &request.capabilities).map_err(validation)?;
        let (parameters, no_echo) =
            effective_parameters(&template, &request.parameters).map_err(validation)?;

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
            let mut stack = Stack {
                name: name.to_string(),
                id: stack_id.clone(),
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
            };
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
        });
        Ok(id)
    }

    fn describe_change_set(&self, id: &str) -> AwsResult<ChangeSet> {
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

    fn is_obsolete(&self, change_set: &StoredChangeSet) -> bool {
        self.stacks
            .get(&change_set.stack_name)
            .is_none_or(|stack| stack.version != change_set.stack_version)
    }

    fn delete_change_set(&mut self, id: &str) -> AwsResult<()> {
        let before = self.change_sets.len();
        self.change_sets.retain(|change_set| change_set.id != id);
        if self.change_sets.len() == before {
            return Err(AwsError::NotFound);
        }
        Ok(())
    }

    fn execute_change_set(&mut self, id: &str) -> AwsResult<()> {
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
        let succeeded = execute(stack, &change_set, &exports, failure, clock)?;
        stack.version += 1;
        let stack_id = stack.id.clone();
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

    fn delete_stack(&mut self, name: &str) -> AwsResult<()> {
        let State { stacks, clock, .. } = self;
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

impl StoredChangeSet {
    /// Listed by ListChangeSets: not yet executed. An executed change set is still described
    /// by its id.
    fn is_active(&self) -> bool {
        matches!(
            self.execution,
            Execution::Available | Execution::Unavailable
        )
    }
}

impl Stack {
    fn deployed(&self) -> DeployedStack {
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
        }
    }

    fn record(
        &mut self,
        clock: &mut Clock,
        logical_id: &str,
        resource_type: &str,
        status: &str,
        reason: Option<&str>,
    ) {
        let id = uuid(clock.unique());
        self.events.push(StackEvent {
            id,
            timestamp: clock.now(),
            logical_id: logical_id.to_string(),
            resource_type: resource_type.to_string(),
            status: status.to_string(),
            reason: reason.map(str::to_string),
        });
    }

    /// A stack-level event, which also sets the stack's status.
    fn record_stack(&mut self, clock: &mut Clock, status: &str, reason: Option<&str>) {
        let name = self.name.clone();
        self.record(clock, &name, STACK_TYPE, status, reason);
        self.status = status.to_string();
        self.status_reason = reason.map(str::to_string);
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

/// A change set's resource changes against a deployed stack: Add, Remove, and Modify where the
/// resolved properties differ, with `Replacement` from the create-only properties; resources
/// that refer to a replaced one follow (`Conditional` when a create-only property refers to it);
/// a tag change modifies every taggable resource.
fn resource_changes(
    stack: &Stack,
    resolved: &IndexMap<String, (String, Value)>,
    tags_changed: bool,
) -> Vec<ResourceChange> {
    let mut changes: BTreeMap<String, ResourceChange> = BTreeMap::new();
    for (logical_id, (resource_type, new)) in resolved {
        let Some(old) = stack.resources.get(logical_id) else {
            changes.insert(
                logical_id.clone(),
                ResourceChange {
                    logical_id: logical_id.clone(),
                    resource_type: resource_type.clone(),
                    action: "Add".into(),
                    replacement: None,
                },
            );
            continue;
        };
        let replacement = if old.resource_type != *resource_type {
            "True"
        } else if old.resolved != *new {
            if create_only_changed(resource_type, &old.resolved, new) {
                "True"
            } else {
                "False"
            }
        } else {
            continue;
        };
        changes.insert(
            logical_id.clone(),
            ResourceChange {
                logical_id: logical_id.clone(),
                resource_type: resource_type.clone(),
                action: "Modify".into(),
                replacement: Some(replacement.into()),
            },
        );
    }

    // Dependents of replaced resources: their references resolve to new physical ids.
    loop {
        let replaced: BTreeSet<String> = changes
            .values()
            .filter(|change| {
                change.action == "Modify"
                    && matches!(change.replacement.as_deref(), Some("True" | "Conditional"))
            })
            .map(|change| change.logical_id.clone())
            .collect();
        let mut added = false;
        for (logical_id, (resource_type, new)) in resolved {
            if changes.contains_key(logical_id) || !stack.resources.contains_key(logical_id) {
                continue;
            }
            let mut referenced = BTreeSet::new();
            value_references(new, &mut referenced);
            if referenced.is_disjoint(&replaced) {
                continue;
            }
            let create_only = resource_types::lookup(resource_type)
                .map(|schema| schema.create_only)
                .unwrap_or_default();
            let conditional = create_only.iter().any(|path| {
                let mut found = BTreeSet::new();
                if let Some(value) = value_at(new, path) {
                    value_references(value, &mut found);
                }
                !found.is_disjoint(&replaced)
            });
            changes.insert(
                logical_id.clone(),
                ResourceChange {
                    logical_id: logical_id.clone(),
                    resource_type: resource_type.clone(),
                    action: "Modify".into(),
                    replacement: Some(if conditional { "Conditional" } else { "False" }.into()),
                },
            );
            added = true;
        }
        if !added {
            break;
        }
    }

    if tags_changed {
        for (logical_id, (resource_type, _)) in resolved {
            let taggable = resource_types::lookup(resource_type)
                .is_some_and(|schema| schema.properties.contains(&"Tags"));
            if taggable
                && stack.resources.contains_key(logical_id)
                && !changes.contains_key(logical_id)
            {
                changes.insert(
                    logical_id.clone(),
                    ResourceChange {
                        logical_id: logical_id.clone(),
                        resource_type: resource_type.clone(),
                        action: "Modify".into(),
                        replacement: Some("False".into()),
                    },
                );
            }
        }
    }

    // In template order, removals last.
    let mut ordered: Vec<ResourceChange> = resolved
        .keys()
        .filter_map(|logical_id| changes.remove(logical_id))
        .collect();
    for (logical_id, old) in &stack.resources {
        if !resolved.contains_key(logical_id) {
            ordered.push(ResourceChange {
                logical_id: logical_id.clone(),
                resource_type: old.resource_type.clone(),
                action: "Remove".into(),
                replacement: None,
            });
        }
    }
    ordered
}

fn create_only_changed(resource_type: &str, old: &Value, new: &Value) -> bool {
    let Some(schema) = resource_types::lookup(resource_type) else {
        return false;
    };
    schema
        .create_only
        .iter()
        .any(|path| value_at(old, path) != value_at(new, path))
}

/// The value at a schema property path (`Name`, `Endpoint.Address`) under `Properties`.
fn value_at<'a>(resolved: &'a Value, path: &str) -> Option<&'a Value> {
    let mut value = resolved.get("Properties")?;
    for key in path.split('.') {
        value = value.get(key)?;
    }
    Some(value)
}

/// Logical IDs a resolved value still refers to: `Ref`, `Fn::GetAtt` and `${X}` in `Fn::Sub`.
fn value_references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Array(items) => {
            for item in items {
                value_references(item, found);
            }
        }
        Value::Object(object) => {
            if object.len() == 1 {
                if let Some(Value::String(name)) = object.get("Ref") {
                    found.insert(name.clone());
                }
                if let Some(Value::Array(parts)) = object.get("Fn::GetAtt")
                    && let Some(Value::String(name)) = parts.first()
                {
                    found.insert(name.clone());
                }
                if let Some(sub) = object.get("Fn::Sub") {
                    let text = match sub {
                        Value::Array(parts) => parts.first().and_then(Value::as_str),
                        other => other.as_str(),
                    };
                    for variable in sub_variables(text.unwrap_or_default()) {
                        let name = variable.split('.').next().unwrap_or_default();
                        found.insert(name.to_string());
                    }
                }
            }
            for item in object.values() {
                value_references(item, found);
            }
        }
        _ => {}
    }
}

/// `${Name}` variables of a `Fn::Sub` string (`${!Literal}` excluded).
fn sub_variables(text: &str) -> Vec<String> {
    let mut variables = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        let variable = &after[..end];
        if !variable.starts_with('!') {
            variables.push(variable.trim().to_string());
        }
        rest = &after[end + 1..];
    }
    variables
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

/// What CloudFormation checks when it reads a template: resources exist, their types exist,
/// and every reference resolves.
fn check_template(template: &Template) -> Result<(), String> {
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

fn check_capabilities(template: &Template, capabilities: &[String]) -> Result<(), String> {
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
fn effective_parameters(
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

/// A scalar as CloudFormation passes it around: text. Lists join with commas.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Evaluates template values for one stack.
#[derive(Clone, Copy)]
struct Scope<'a> {
    template: &'a Template,
    parameters: &'a BTreeMap<String, String>,
    stack_name: &'a str,
    stack_id: &'a str,
    exports: &'a BTreeMap<String, String>,
    /// Physical ids by logical id. `None` leaves references to resources as written, for
    /// comparing properties before anything is deployed.
    physical_ids: Option<&'a BTreeMap<String, String>>,
}

/// A stack's evaluated outputs, and the exports among them.
struct Outputs {
    values: BTreeMap<String, String>,
    exports: BTreeMap<String, String>,
}

/// `None` is `AWS::NoValue`: the property is dropped.
type Evaluated = Result<Option<Value>, String>;

impl Scope<'_> {
    /// Every resource whose condition holds, by logical ID, with its type and resolved
    /// `Properties` and `Metadata`.
    fn resources(&self) -> Result<IndexMap<String, (String, Value)>, String> {
        let mut resolved = IndexMap::new();
        for (logical_id, resource) in &self.template.resources {
            if !self.holds(resource.condition.as_deref())? {
                continue;
            }
            resolved.insert(
                logical_id.clone(),
                (resource.resource_type.clone(), self.resource(resource)?),
            );
        }
        Ok(resolved)
    }

    fn resource(&self, resource: &Resource) -> Result<Value, String> {
        let mut properties = Map::new();
        for (key, node) in &resource.properties {
            if let Some(value) = self.evaluate(node)? {
                properties.insert(key.clone(), value);
            }
        }
        let mut object = Map::new();
        object.insert("Properties".into(), Value::Object(properties));
        if let Some(metadata) = resource.attributes.get("Metadata") {
            object.insert("Metadata".into(), metadata.to_json());
        }
        Ok(Value::Object(object))
    }

    /// Outputs whose condition holds, and the exports among them.
    fn outputs(&self) -> Result<Outputs, String> {
        let mut outputs = BTreeMap::new();
        let mut exports = BTreeMap::new();
        for (name, output) in &self.template.outputs {
            let condition = output.get("Condition").and_then(Node::as_str);
            if !self.holds(condition)? {
                continue;
            }
            let value = match output.get("Value") {
                Some(node) => self.evaluate(node)?.map(|value| scalar_text(&value)),
                None => return Err(format!("Template format error: Output {name} is malformed")),
            }
            .unwrap_or_default();
            if let Some(export) = output.get("Export").and_then(|export| export.get("Name")) {
                let export = self.evaluate(export)?.map(|value| scalar_text(&value));
                exports.insert(export.unwrap_or_default(), value.clone());
            }
            outputs.insert(name.clone(), value);
        }
        Ok(Outputs {
            values: outputs,
            exports,
        })
    }

    fn holds(&self, condition: Option<&str>) -> Result<bool, String> {
        match condition {
            None => Ok(true),
            Some(name) => self.condition(name, 0),
        }
    }

    fn condition(&self, name: &str, depth: usize) -> Result<bool, String> {
        if depth > 32 {
            return Err(format!("Template error: circular condition {name}"));
        }
        let node = self.template.conditions.get(name).ok_or_else(|| {
            format!("Template format error: Unresolved condition dependencies [{name}]")
        })?;
        self.truth(node, depth + 1)
    }

    fn truth(&self, node: &Node, depth: usize) -> Result<bool, String> {
        let Node::Intrinsic(intrinsic) = node else {
            return match node {
                Node::Bool(flag) => Ok(*flag),
                _ => Err("Template error: a condition must be a condition function".into()),
            };
        };
        let items = match &intrinsic.argument {
            Node::List(items) => items.as_slice(),
            _ => &[],
        };
        match intrinsic.function {
            Function::Equals => match items {
                [left, right] => {
                    let left = self.evaluate(left)?.map(|value| scalar_text(&value));
                    let right = self.evaluate(right)?.map(|value| scalar_text(&value));
                    Ok(left == right)
                }
                _ => Err("Template error: Fn::Equals takes two values".into()),
            },
            Function::And => {
                for item in items {
                    if !self.truth(item, depth + 1)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Function::Or => {
                for item in items {
                    if self.truth(item, depth + 1)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Function::Not => match items {
                [item] => Ok(!self.truth(item, depth + 1)?),
                _ => Err("Template error: Fn::Not takes one condition".into()),
            },
            Function::Condition => match intrinsic.argument.as_str() {
                Some(name) => self.condition(name, depth + 1),
                None => Err("Template error: Condition takes a name".into()),
            },
            other => Err(format!(
                "Template error: {} is not a condition function",
                other.key()
            )),
        }
    }

    fn evaluate(&self, node: &Node) -> Evaluated {
        Ok(Some(match node {
            Node::Null | Node::Bool(_) | Node::Number(_) | Node::String(_) => node.to_json(),
            Node::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(value) = self.evaluate(item)? {
                        values.push(value);
                    }
                }
                Value::Array(values)
            }
            Node::Map(map) => {
                let mut object = Map::new();
                for (key, item) in map {
                    if let Some(value) = self.evaluate(item)? {
                        object.insert(key.clone(), value);
                    }
                }
                Value::Object(object)
            }
            Node::Intrinsic(intrinsic) => {
                return self.intrinsic(intrinsic.function, &intrinsic.argument);
            }
        }))
    }

    fn intrinsic(&self, function: Function, argument: &Node) -> Evaluated {
        let items = match argument {
            Node::List(items) => items.as_slice(),
            _ => &[],
        };
        match function {
            Function::Ref => match argument.as_str() {
                Some(name) => self.reference(name),
                None => Err("Template error: Ref takes a name".into()),
            },
            Function::GetAtt => {
                let (resource, attribute) = match argument {
                    Node::String(text) => (text.as_str(), ""),
                    _ => match items {
                        [Node::String(resource), Node::String(attribute)] => {
                            (resource.as_str(), attribute.as_str())
                        }
                        _ => {
                            return Err(
                                "Template error: Fn::GetAtt takes [resource, attribute]".into()
                            );
                        }
                    },
                };
                self.attribute(resource, attribute).map(Some)
            }
            Function::Sub => self.substitute(argument).map(Some),
            Function::If => match items {
                [Node::String(condition), then, otherwise] => {
                    if self.condition(condition, 0)? {
                        self.evaluate(then)
                    } else {
                        self.evaluate(otherwise)
                    }
                }
                _ => Err("Template error: Fn::If takes [condition, value, value]".into()),
            },
            Function::Join => match items {
                [delimiter, list] => {
                    let delimiter = self.text(delimiter)?;
                    let list = self.evaluate(list)?.unwrap_or(Value::Array(Vec::new()));
                    if is_symbolic(&list) {
                        return Ok(Some(symbolic(
                            function,
                            Value::Array(vec![Value::String(delimiter), list]),
                        )));
                    }
                    match list {
                        Value::Array(values) => Ok(Some(Value::String(
                            values
                                .iter()
                                .map(scalar_text)
                                .collect::<Vec<_>>()
                                .join(&delimiter),
                        ))),
                        _ => Err("Template error: Fn::Join takes a list".into()),
                    }
                }
                _ => Err("Template error: Fn::Join takes [delimiter, list]".into()),
            },
            Function::Select => match items {
                [index, list] => {
                    let index = self.text(index)?;
                    let list = self.evaluate(list)?.unwrap_or(Value::Array(Vec::new()));
                    if is_symbolic(&list) {
                        return Ok(Some(symbolic(
                            function,
                            Value::Array(vec![Value::String(index), list]),
                        )));
                    }
                    let position: usize = index.parse().map_err(|_| {
                        format!("Template error: Fn::Select index {index} is not a number")
                    })?;
                    match list {
                        Value::Array(values) => values.get(position).cloned().map(Some).ok_or_else(|| {
                            format!("Template error: Fn::Select cannot select nonexistent value at index {position}")
                        }),
                        _ => Err("Template error: Fn::Select takes a list".into()),
                    }
                }
                _ => Err("Template error: Fn::Select takes [index, list]".into()),
            },
            Function::Split => match items {
                [delimiter, source] => {
                    let delimiter = self.text(delimiter)?;
                    let source = self.evaluate(source)?.unwrap_or(Value::Null);
                    if is_symbolic(&source) {
                        return Ok(Some(symbolic(
                            function,
                            Value::Array(vec![Value::String(delimiter), source]),
                        )));
                    }
                    Ok(Some(Value::Array(
                        scalar_text(&source)
                            .split(delimiter.as_str())
                            .map(|part| Value::String(part.to_string()))
                            .collect(),
                    )))
                }
                _ => Err("Template error: Fn::Split takes [delimiter, string]".into()),
            },
            Function::FindInMap => {
                match items {
                    [map, first, second] => {
                        let (map, first, second) =
                            (self.text(map)?, self.text(first)?, self.text(second)?);
                        self.template
                        .mappings
                        .get(&map)
                        .and_then(|mapping| mapping.get(&first))
                        .and_then(|entry| entry.get(&second))
                        .map(Node::to_json)
                        .map(Some)
                        .ok_or_else(|| {
                            format!("Template error: Unable to get mapping for {map}::{first}::{second}")
                        })
                    }
                    _ => Err("Template error: Fn::FindInMap takes [map, key, key]".into()),
                }
            }
            Function::ImportValue => {
                let name = self.text(argument)?;
                self.exports
                    .get(&name)
                    .map(|value| Some(Value::String(value.clone())))
                    .ok_or_else(|| format!("No export named {name} found."))
            }
            Function::Base64 => {
                let value = self.evaluate(argument)?.unwrap_or(Value::Null);
                if is_symbolic(&value) {
                    return Ok(Some(symbolic(function, value)));
                }
                Ok(Some(Value::String(base64(scalar_text(&value).as_bytes()))))
            }
            Function::GetAZs => Ok(Some(Value::Array(
                ["a", "b", "c"]
                    .iter()
                    .map(|zone| Value::String(format!("{REGION}{zone}")))
                    .collect(),
            ))),
            Function::ToJsonString => {
                let value = self.evaluate(argument)?.unwrap_or(Value::Null);
                if is_symbolic(&value) {
                    return Ok(Some(symbolic(function, value)));
                }
                Ok(Some(Value::String(value.to_string())))
            }
            Function::Length => {
                let value = self.evaluate(argument)?.unwrap_or(Value::Null);
                match value {
                    Value::Array(values) => Ok(Some(Value::from(values.len()))),
                    other if is_symbolic(&other) => Ok(Some(symbolic(function, other))),
                    _ => Err("Template error: Fn::Length takes a list".into()),
                }
            }
            Function::Equals
            | Function::And
            | Function::Or
            | Function::Not
            | Function::Condition => Ok(Some(Value::Bool(
                self.truth(&Node::intrinsic(function, argument.clone()), 0)?,
            ))),
            Function::Cidr | Function::Transform => Err(format!(
                "{} is not supported by the fake CloudFormation",
                function.key()
            )),
        }
    }

    /// A value that must come out as text (a delimiter, a map key).
    fn text(&self, node: &Node) -> Result<String, String> {
        let value = self.evaluate(node)?.unwrap_or(Value::Null);
        if is_symbolic(&value) {
            return Err(
                "Template error: this value must be known before resources are created".into(),
            );
        }
        Ok(scalar_text(&value))
    }

    fn reference(&self, name: &str) -> Evaluated {
        if let Some(declaration) = self.template.parameters.get(name) {
            let value = self.parameters.get(name).cloned().unwrap_or_default();
            let list = declaration
                .get("Type")
                .and_then(Node::as_str)
                .is_some_and(|kind| kind == "CommaDelimitedList" || kind.starts_with("List<"));
            return Ok(Some(if list {
                Value::Array(
                    value
                        .split(',')
                        .map(|item| Value::String(item.trim().to_string()))
                        .collect(),
                )
            } else {
                Value::String(value)
            }));
        }
        let pseudo = match name {
            "AWS::Region" => Some(REGION.to_string()),
            "AWS::AccountId" => Some(ACCOUNT_ID.to_string()),
            "AWS::StackName" => Some(self.stack_name.to_string()),
            "AWS::StackId" => Some(self.stack_id.to_string()),
            "AWS::Partition" => Some("aws".to_string()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
            "AWS::NoValue" => return Ok(None),
            "AWS::NotificationARNs" => return Ok(Some(Value::Array(Vec::new()))),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Some(Value::String(value)));
        }
        if !self.template.resources.contains_key(name) {
            return Err(format!(
                "Template format error: Unresolved resource dependencies [{name}] in the Resources block of the template"
            ));
        }
        Ok(Some(match self.physical_ids {
            None => symbolic(Function::Ref, Value::String(name.to_string())),
            Some(ids) => Value::String(ids.get(name).cloned().ok_or_else(|| {
                format!("Template error: resource {name} is not created (its condition is false)")
            })?),
        }))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<Value, String> {
        if !self.template.resources.contains_key(resource) {
            return Err(format!(
                "Template error: instance of Fn::GetAtt references undefined resource {resource}"
            ));
        }
        Ok(match self.physical_ids {
            None => symbolic(
                Function::GetAtt,
                Value::Array(vec![
                    Value::String(resource.to_string()),
                    Value::String(attribute.to_string()),
                ]),
            ),
            Some(_) => Value::String(format!(
                "arn:aws:fake:::{}/{resource}/{attribute}",
                self.stack_name
            )),
        })
    }

    /// `Fn::Sub`: parameters, pseudo parameters and local variables are substituted; with
    /// physical ids, resources and attributes too. Otherwise the result keeps `${Resource}`
    /// and stays a `Fn::Sub`.
    fn substitute(&self, argument: &Node) -> Result<Value, String> {
        let (text, locals) = match argument {
            Node::String(text) => (text.as_str(), None),
            Node::List(parts) => match parts.as_slice() {
                [Node::String(text), Node::Map(locals)] => (text.as_str(), Some(locals)),
                [Node::String(text)] => (text.as_str(), None),
                _ => return Err("Template error: Fn::Sub takes a string or [string, map]".into()),
            },
            _ => return Err("Template error: Fn::Sub takes a string or [string, map]".into()),
        };
        let mut local_values = BTreeMap::new();
        let mut symbolic_locals = Map::new();
        for (name, node) in locals.into_iter().flatten() {
            let value = self.evaluate(node)?.unwrap_or(Value::Null);
            if is_symbolic(&value) {
                symbolic_locals.insert(name.clone(), value);
            } else {
                local_values.insert(name.clone(), scalar_text(&value));
            }
        }
        let mut output = String::new();
        let mut kept = false;
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                output.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let variable = after[..end].trim();
            rest = &after[end + 1..];
            if let Some(literal) = variable.strip_prefix('!') {
                output.push_str("${");
                output.push_str(literal);
                output.push('}');
                continue;
            }
            if let Some(value) = local_values.get(variable) {
                output.push_str(value);
                continue;
            }
            let value = if symbolic_locals.contains_key(variable) {
                None
            } else {
                match variable.split_once('.') {
                    Some((resource, attribute)) => Some(self.attribute(resource, attribute)?),
                    None => self.reference(variable)?,
                }
            };
            match value {
                Some(value) if !is_symbolic(&value) => output.push_str(&scalar_text(&value)),
                _ => {
                    kept = true;
                    output.push_str("${");
                    output.push_str(variable);
                    output.push('}');
                }
            }
        }
        output.push_str(rest);
        if !kept {
            return Ok(Value::String(output));
        }
        let argument = if symbolic_locals.is_empty() {
            Value::String(output)
        } else {
            Value::Array(vec![Value::String(output), Value::Object(symbolic_locals)])
        };
        Ok(symbolic(Function::Sub, argument))
    }
}

fn symbolic(function: Function, argument: Value) -> Value {
    let mut object = Map::new();
    object.insert(function.key(), argument);
    Value::Object(object)
}

/// Whether a value still holds an unresolved intrinsic (a reference to a resource).
fn is_symbolic(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(is_symbolic),
        Value::Object(object) => {
            (object.len() == 1
                && object
                    .keys()
                    .all(|key| key == "Ref" || key.starts_with("Fn::")))
                || object.values().any(is_symbolic)
        }
        _ => false,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut output = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (triple >> (18 - 6 * position)) & 0x3f;
                output.push(char::from(ALPHABET[index as usize]));
            } else {
                output.push('=');
            }
        }
    }
    output
}

/// A deterministic clock and id source: every reading advances it.
#[derive(Debug, Default)]
struct Clock {
    sequence: u64,
}

impl Clock {
    fn next(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// RFC 3339, a second after the previous reading.
    fn now(&mut self) -> String {
        rfc3339(EPOCH + self.next())
    }

    /// 64 bits that look random (splitmix64 of the sequence).
    fn unique(&mut self) -> u64 {
        let mut value = self.next().wrapping_add(0x9e37_79b9_7f4a_7c15);
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }
}

fn uuid(bits: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        bits >> 32,
        (bits >> 16) & 0xffff,
        bits & 0xfff,
        (bits >> 20) & 0xfff,
        bits & 0xffff_ffff_ffff
    )
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

fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let time = seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3_600,
        time % 3_600 / 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "\
Parameters:
  DisplayName:
    Type: String
    Default: alerts
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Ref DisplayName
Outputs:
  TopicArn:
    Value: !Ref Topic
  TopicName:
    Value: !GetAtt Topic.TopicName
  Described:
    Value: !Sub '${AWS::StackName}-${DisplayName}'
";

    /// A named topic (create-only `TopicName`), a policy on it and a parameter named after it.
    const NAMED: &str = "\
Parameters:
  Name:
    Type: String
  DisplayName:
    Type: String
    Default: alerts
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Ref Name
      DisplayName: !Ref DisplayName
  Policy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Topic]
      PolicyDocument: {Version: '2012-10-17', Statement: []}
  Pointer:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/topics/${Topic.TopicName}'
      Type: String
      Value: topic
Outputs:
  TopicArn:
    Value: !Ref Topic
";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn request(
        stack: &str,
        change_set: &str,
        kind: ChangeSetKind,
        body: &str,
        parameters: &[(&str, &str)],
    ) -> ChangeSetRequest {
        ChangeSetRequest {
            stack_name: stack.into(),
            change_set_name: change_set.into(),
            kind,
            template: TemplateSource::Body(body.into()),
            parameters: map(parameters),
            tags: map(&[("project", "mlops")]),
            capabilities: Vec::new(),
            role_arn: None,
            description: "test".into(),
        }
    }

    fn change(
        logical_id: &str,
        action: &str,
        replacement: Option<&str>,
    ) -> (String, String, Option<String>) {
        (
            logical_id.to_string(),
            action.to_string(),
            replacement.map(str::to_string),
        )
    }

    fn changes(change_set: &ChangeSet) -> Vec<(String, String, Option<String>)> {
        change_set
            .changes
            .iter()
            .map(|change| {
                (
                    change.logical_id.clone(),
                    change.action.clone(),
                    change.replacement.clone(),
                )
            })
            .collect()
    }

    fn deploy_topic(fake: &FakeCloudFormation, stack: &str) -> DeployedStack {
        fake.deploy(
            stack,
            TOPIC,
            &BTreeMap::new(),
            &map(&[("project", "mlops")]),
        )
        .expect("deploy")
    }

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
    async fn a_changed_create_only_property_replaces_and_dependents_follow() {
        let fake = FakeCloudFormation::new();
        fake.deploy("app", NAMED, &map(&[("Name", "first")]), &BTreeMap::new())
            .expect("deploy");
        let before = fake.events("app").len();

        let in_place = fake
            .create_change_set(&ChangeSetRequest {
                tags: BTreeMap::new(),
                ..request(
                    "app",
                    "display",
                    ChangeSetKind::Update,
                    NAMED,
                    &[("Name", "first"), ("DisplayName", "other")],
                )
            })
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&in_place).await.expect("describe");
        assert_eq!(
            changes(&described),
            vec![change("Topic", "Modify", Some("False"))]
        );

        let renamed = fake
            .create_change_set(&ChangeSetRequest {
                tags: BTreeMap::new(),
                ..request(
                    "app",
                    "rename",
                    ChangeSetKind::Update,
                    NAMED,
                    &[("Name", "second")],
                )
            })
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&renamed).await.expect("describe");
        assert_eq!(
            changes(&described),
            vec![
                change("Topic", "Modify", Some("True")),
                change("Policy", "Modify", Some("False")),
                change("Pointer", "Modify", Some("Conditional")),
            ]
        );

        let before_replacement = fake.stack("app").expect("stack").outputs["TopicArn"].clone();
        fake.execute_change_set(&renamed).await.expect("execute");
        // Executing one change set deletes the stack's others; the executed one is no longer
        // listed, but is still described.
        assert!(fake.change_sets("app").is_empty());
        assert!(matches!(
            fake.describe_change_set(&renamed).await.map(|set| set.status),
            Ok(ChangeSetStatus::Failed(reason)) if reason.contains("already been executed")
        ));
        assert_eq!(
            fake.describe_change_set(&in_place).await,
            Err(AwsError::NotFound)
        );
        let events = fake.events("app");
        let new_events: Vec<(&str, &str)> = events[..events.len() - before]
            .iter()
            .rev()
            .map(|event| (event.logical_id.as_str(), event.status.as_str()))
            .collect();
        assert_eq!(
            new_events,
            vec![
                ("app", "UPDATE_IN_PROGRESS"),
                ("Topic", "UPDATE_IN_PROGRESS"),
                ("Topic", "UPDATE_COMPLETE"),
                ("Policy", "UPDATE_IN_PROGRESS"),
                ("Policy", "UPDATE_COMPLETE"),
                ("Pointer", "UPDATE_IN_PROGRESS"),
                ("Pointer", "UPDATE_COMPLETE"),
                ("app", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
                ("Pointer", "DELETE_IN_PROGRESS"),
                ("Pointer", "DELETE_COMPLETE"),
                ("Topic", "DELETE_IN_PROGRESS"),
                ("Topic", "DELETE_COMPLETE"),
                ("app", "UPDATE_COMPLETE"),
            ]
        );
        let replaced = fake.stack("app").expect("stack");
        assert_eq!(replaced.status.as_str(), "UPDATE_COMPLETE");
        // A replacement is a new physical resource.
        assert_ne!(replaced.outputs["TopicArn"], before_replacement);
    }

    #[tokio::test]
    async fn removed_and_added_resources_are_listed() {
        let fake = FakeCloudFormation::new();
        deploy_topic(&fake, "app");
        let body = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n";
        let id = fake
            .create_change_set(&request("app", "swap", ChangeSetKind::Update, body, &[]))
            .await
            .expect("create change set");
        let described = fake.describe_change_set(&id).await.expect("describe");
        assert_eq!(
            changes(&described),
            vec![
                change("Queue", "Add", None),
                change("Topic", "Remove", None)
            ]
        );
        fake.execute_change_set(&id).await.expect("execute");
        let stack = fake.stack("app").expect("stack");
        assert!(stack.outputs.is_empty());
        assert_eq!(stack.parameters, BTreeMap::new());
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
            .upload_template("templates-bucket", "dev/app.yaml", TOPIC)
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

    #[tokio::test]
    async fn conditions_and_intrinsics_shape_outputs() {
        let fake = FakeCloudFormation::new();
        let body = "\
Parameters:
  Environment:
    Type: String
    AllowedValues: [dev, prod]
Conditions:
  IsProd: !Equals [!Ref Environment, prod]
Mappings:
  Sizes:
    dev: {Count: 1}
    prod: {Count: 3}
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Extra:
    Type: AWS::SNS::Topic
    Condition: IsProd
Outputs:
  Count:
    Value: !FindInMap [Sizes, !Ref Environment, Count]
  Mode:
    Value: !If [IsProd, production, development]
  Joined:
    Value: !Join ['/', [!Ref 'AWS::Region', !Select [1, !Split [',', 'a,b,c']]]]
  Extra:
    Condition: IsProd
    Value: !Ref Extra
  Exported:
    Value: !Sub '${Topic}'
    Export:
      Name: !Sub '${AWS::StackName}-topic'
";
        let stack = fake
            .deploy(
                "app",
                body,
                &map(&[("Environment", "dev")]),
                &BTreeMap::new(),
            )
            .expect("deploy");
        assert_eq!(stack.outputs["Count"], "1");
        assert_eq!(stack.outputs["Mode"], "development");
        assert_eq!(stack.outputs["Joined"], "us-east-1/b");
        assert!(!stack.outputs.contains_key("Extra"));
        assert!(stack.outputs["Exported"].starts_with("app-Topic-"));
        let importer = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  Imported:\n    Value: !ImportValue app-topic\n";
        let imported = fake
            .deploy("other", importer, &BTreeMap::new(), &BTreeMap::new())
            .expect("deploy importer");
        assert_eq!(imported.outputs["Imported"], stack.outputs["Exported"]);
        assert!(matches!(
            fake.deploy("app", body, &map(&[("Environment", "qa")]), &BTreeMap::new()),
            Err(AwsError::Validation(message)) if message.contains("AllowedValues")
        ));
    }

    #[test]
    fn the_clock_writes_rfc3339() {
        assert_eq!(rfc3339(EPOCH), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(EPOCH + 60 * 86_400 + 3_661), "2024-03-01T01:01:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn base64_encodes_with_padding() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
