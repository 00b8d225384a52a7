//! The one boundary to AWS: a small trait speaking the tool's own types. `sdk.rs` implements
//! it with aws-sdk-rust; `fake/` is an in-memory CloudFormation that follows the real
//! service's semantics, for the core's tests. Nothing outside this folder imports SDK types.

pub mod call_log;
pub mod calls;
pub mod fake;
pub mod fake_platform;
pub mod fake_review;
pub mod platform;
pub mod review_store;
pub mod sdk;
pub mod sdk_platform;
mod sdk_review;
mod signed_http;

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

/// A deployed stack, as `DescribeStacks` and `GetTemplate` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedStack {
    pub name: String,
    pub id: String,
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub termination_protection: bool,
    /// Last creation or update time (RFC 3339): with the id and status, what makes a saved
    /// plan stale.
    pub last_updated: Option<String>,
    /// The service role CloudFormation acts as for this stack (`None`: the caller's identity).
    pub role_arn: Option<String>,
    pub template_body: String,
    /// The id of the stack's latest operation (`LastOperations`), for its events
    /// (`DescribeEvents`); `None` where CloudFormation does not report it.
    #[serde(default)]
    pub last_operation_id: Option<String>,
    /// `CONFIGURATION_COMPLETE` while the resources are configured but still stabilising.
    #[serde(default)]
    pub detailed_status: Option<String>,
}

impl DeployedStack {
    /// What a saved plan records to notice that the stack changed since.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}",
            self.id,
            self.status.0,
            self.last_updated.as_deref().unwrap_or("-")
        )
    }
}

/// A CloudFormation stack status (`CREATE_COMPLETE`, `UPDATE_ROLLBACK_FAILED`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StackStatus(pub String);

impl StackStatus {
    pub fn new(status: &str) -> Self {
        StackStatus(status.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Another operation is running on the stack.
    pub fn is_in_progress(&self) -> bool {
        self.0.ends_with("_IN_PROGRESS") && self.0 != "REVIEW_IN_PROGRESS"
    }

    /// Settled: a new operation may start.
    pub fn is_complete(&self) -> bool {
        self.0.ends_with("_COMPLETE") || self.0.ends_with("_FAILED")
    }

    /// A first create that failed and rolled back: the stack can only be deleted.
    pub fn needs_recreate(&self) -> bool {
        self.0 == "ROLLBACK_COMPLETE"
    }

    /// Created by a CREATE change set that was never executed: the stack holds nothing.
    pub fn is_review(&self) -> bool {
        self.0 == "REVIEW_IN_PROGRESS"
    }

    /// An update whose rollback failed: needs ContinueUpdateRollback before anything else.
    pub fn needs_continue_rollback(&self) -> bool {
        self.0 == "UPDATE_ROLLBACK_FAILED"
    }

    /// The operation that just finished failed (the stack may still be usable).
    pub fn is_failure(&self) -> bool {
        self.0.ends_with("_FAILED") || self.0.contains("ROLLBACK")
    }
}

/// Where CloudFormation reads a template from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplateSource {
    Body(String),
    /// An S3 HTTPS URL, for bodies over 51,200 bytes.
    Url(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeSetKind {
    Create,
    Update,
}

/// Everything `CreateChangeSet` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    pub kind: ChangeSetKind,
    pub template: TemplateSource,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub capabilities: Vec<String>,
    pub role_arn: Option<String>,
    pub description: String,
    /// Alarms CloudFormation watches during the change and for a while after; one firing
    /// rolls the whole stack operation back.
    pub rollback: Option<Rollback>,
    /// A drift-aware change set (`DeploymentMode: REVERT_DRIFT`): resources changed outside
    /// CloudFormation are put back to the template, and a rollback restores what was there.
    pub revert_drift: bool,
}

/// CloudFormation rollback triggers: CloudWatch alarms (which must exist) and the minutes
/// they are watched after the resources are deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    pub alarm_arns: Vec<String>,
    pub monitoring_minutes: u32,
}

/// A described change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    pub id: String,
    pub status: ChangeSetStatus,
    pub changes: Vec<ResourceChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetStatus {
    /// Still being computed.
    Pending,
    Ready,
    /// CloudFormation found nothing to change ("didn't contain changes").
    NoChanges,
    Failed(String),
}

/// One resource in a change set: the authoritative action and replacement flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub logical_id: String,
    pub resource_type: String,
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    /// `True`, `False` or `Conditional` when CloudFormation says; `None` when it does not.
    pub replacement: Option<String>,
}

/// A resource whose actual configuration differs from its template (drift detection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDrift {
    pub logical_id: String,
    pub resource_type: String,
    /// `MODIFIED` or `DELETED`.
    pub status: String,
    pub differences: Vec<PropertyDifference>,
}

/// One property of a drifted resource: where, what the template says, what is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyDifference {
    /// `/MaxCapacity`, `/Environment/Variables/ROUTER_CONFIG`.
    pub path: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    pub kind: String,
}

/// Where a drift detection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftDetection {
    Running,
    Complete,
    /// Finished without checking everything (a resource could not be read).
    Failed(String),
}

/// Whose events `operation_events` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    /// One stack operation (`LastOperations`).
    Operation(String),
    /// A change set's creation: its pre-deployment validation.
    ChangeSet(String),
}

/// An event of one operation (`DescribeEvents`): progress, a provisioning or validation
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationEvent {
    /// `STACK_EVENT`, `PROGRESS_EVENT`, `VALIDATION_ERROR`, `PROVISIONING_ERROR`,
    /// `HOOK_INVOCATION_ERROR`.
    pub event_type: String,
    pub timestamp: String,
    pub logical_id: Option<String>,
    pub resource_type: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub validation: Option<Validation>,
}

/// A pre-deployment validation's result on a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub name: String,
    /// `FAILED` or `SKIPPED`.
    pub status: String,
    pub reason: Option<String>,
    /// The property it is about, when it names one.
    pub path: Option<String>,
    /// `FAIL` (the change set fails) or `WARN`.
    pub mode: String,
}

/// A stack event, for progress and failure reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackEvent {
    pub id: String,
    pub timestamp: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// A stack refactor to create (`CreateStackRefactor`): resources move between stacks, kept as
/// they are, under new logical ids where mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefactorRequest {
    pub description: String,
    /// Every stack involved (at most 5) with its template after the move.
    pub stacks: Vec<(String, TemplateSource)>,
    /// (source stack, source logical id, destination stack, destination logical id).
    pub mappings: Vec<(String, String, String, String)>,
    /// A destination stack that does not exist yet is created, holding what moves in.
    pub enable_stack_creation: bool,
}

/// Where a stack refactor is (`DescribeStackRefactor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefactorState {
    /// Being created or validated, or executing.
    Running,
    /// Created and validated: it may be executed.
    Ready,
    /// Executed.
    Complete,
    /// Creation or execution failed (the reason CloudFormation gives).
    Failed(String),
}

/// Failures, typed so the core decides what to do without reading error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("not found")]
    NotFound,
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("{0}")]
    Validation(String),
    #[error("connection failed: {0}")]
    Transport(String),
    /// Nothing listens where the requests go (connection refused, unknown host): retrying
    /// does not help.
    #[error("cannot reach the AWS endpoint ({0})")]
    Unreachable(String),
    /// The credential chain found nothing to sign with.
    #[error("no AWS credentials found")]
    NoCredentials,
    /// The endpoint does not answer this API (an older partition, or an emulator without
    /// it): callers fall back to an older one.
    #[error("{0} is not available here")]
    Unsupported(&'static str),
    #[error("{0}")]
    Other(String),
}

impl AwsError {
    /// Worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(self, AwsError::Throttled(_) | AwsError::Transport(_))
    }
}

pub type AwsResult<T> = Result<T, AwsError>;

/// The CloudFormation (and S3 upload) operations the tool needs.
pub trait CloudFormation {
    /// The stack and its template, or `None` when no stack has that name.
    fn describe_stack(&self, name: &str) -> impl Future<Output = AwsResult<Option<DeployedStack>>>;
    /// The stack without its template (`template_body` empty): its status, parameters,
    /// outputs and tags, for waiting on it and reading its outputs. One call where
    /// `describe_stack` makes two (`DescribeStacks` without `GetTemplate`).
    fn stack_state(&self, name: &str) -> impl Future<Output = AwsResult<Option<DeployedStack>>> {
        async move {
            Ok(self.describe_stack(name).await?.map(|mut stack| {
                stack.template_body.clear();
                stack
            }))
        }
    }
    fn create_change_set(
        &self,
        request: &ChangeSetRequest,
    ) -> impl Future<Output = AwsResult<String>>;
    fn describe_change_set(&self, id: &str) -> impl Future<Output = AwsResult<ChangeSet>>;
    fn execute_change_set(&self, id: &str) -> impl Future<Output = AwsResult<()>>;
    fn delete_change_set(&self, id: &str) -> impl Future<Output = AwsResult<()>>;
    /// Change sets still attached to a stack (left over from an interrupted run).
    fn list_change_sets(&self, stack: &str) -> impl Future<Output = AwsResult<Vec<String>>>;
    /// Newest first.
    fn stack_events(&self, stack: &str) -> impl Future<Output = AwsResult<Vec<StackEvent>>>;
    fn delete_stack(&self, stack: &str) -> impl Future<Output = AwsResult<()>>;
    fn set_termination_protection(
        &self,
        stack: &str,
        enabled: bool,
    ) -> impl Future<Output = AwsResult<()>>;
    fn set_stack_policy(&self, stack: &str, policy: &str) -> impl Future<Output = AwsResult<()>>;
    /// The account the credentials belong to (STS GetCallerIdentity), for the account guard;
    /// `None` when it cannot be known.
    fn caller_account(&self) -> impl Future<Output = AwsResult<Option<String>>> {
        async { Ok(None) }
    }
    /// Whether a bucket, model package group or log group of that name exists and is ours
    /// (S3 HeadBucket, SageMaker DescribeModelPackageGroup, CloudWatch Logs
    /// DescribeLogGroups): one a stack is about to create was kept by an earlier destroy
    /// (DeletionPolicy: Retain) or made by hand. A refusal counts as "not ours".
    fn named_resource_exists(
        &self,
        resource: &crate::plan::Named,
    ) -> impl Future<Output = AwsResult<bool>> {
        let _ = resource;
        async { Ok(false) }
    }
    /// Starts drift detection on a stack (`DetectStackDrift`); the detection's id.
    fn detect_drift(&self, stack: &str) -> impl Future<Output = AwsResult<String>> {
        let _ = stack;
        async { Err(AwsError::Unsupported("DetectStackDrift")) }
    }
    /// Where a drift detection is (`DescribeStackDriftDetectionStatus`).
    fn drift_detection(&self, id: &str) -> impl Future<Output = AwsResult<DriftDetection>> {
        let _ = id;
        async { Err(AwsError::Unsupported("DescribeStackDriftDetectionStatus")) }
    }
    /// The drifted resources (modified or deleted) of the stack's latest detection
    /// (`DescribeStackResourceDrifts`).
    fn resource_drifts(&self, stack: &str) -> impl Future<Output = AwsResult<Vec<ResourceDrift>>> {
        let _ = stack;
        async { Err(AwsError::Unsupported("DescribeStackResourceDrifts")) }
    }
    /// An operation's or a change set's events, oldest first (`DescribeEvents`); only the
    /// failed ones when `failed_only`.
    fn operation_events(
        &self,
        source: &EventSource,
        failed_only: bool,
    ) -> impl Future<Output = AwsResult<Vec<OperationEvent>>> {
        let _ = (source, failed_only);
        async { Err(AwsError::Unsupported("DescribeEvents")) }
    }
    /// Creates a stack refactor (`CreateStackRefactor`); its id.
    fn create_stack_refactor(
        &self,
        request: &RefactorRequest,
    ) -> impl Future<Output = AwsResult<String>> {
        let _ = request;
        async { Err(AwsError::Unsupported("CreateStackRefactor")) }
    }
    /// Where a stack refactor is (`DescribeStackRefactor`).
    fn stack_refactor(&self, id: &str) -> impl Future<Output = AwsResult<RefactorState>> {
        let _ = id;
        async { Err(AwsError::Unsupported("DescribeStackRefactor")) }
    }
    /// Executes a validated stack refactor (`ExecuteStackRefactor`).
    fn execute_stack_refactor(&self, id: &str) -> impl Future<Output = AwsResult<()>> {
        let _ = id;
        async { Err(AwsError::Unsupported("ExecuteStackRefactor")) }
    }
    /// Whether an object exists (S3 HeadObject): content-addressed assets already uploaded
    /// are not sent again.
    fn object_exists(&self, bucket: &str, key: &str) -> impl Future<Output = AwsResult<bool>>;
    /// An object's bytes (S3 GetObject); `None` when there is no such object or bucket.
    fn read_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = AwsResult<Option<Vec<u8>>>>;
    /// Uploads a template body or an asset (text, or a function's ZIP package) to S3; returns
    /// its HTTPS URL.
    fn upload_template(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> impl Future<Output = AwsResult<String>>;
}

/// The HTTPS URL CloudFormation reads an uploaded template from: virtual-hosted style,
/// `https://<bucket>.s3.<region>.amazonaws.com/<key>`, the key percent-encoded except `/`.
pub fn template_url(bucket: &str, region: &str, key: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let mut path = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("https://{bucket}.s3.{region}.{domain}/{path}")
}

/// Why a computed change set cannot run, by its execution status.
pub(crate) fn not_executable(execution: &str) -> String {
    match execution {
        "OBSOLETE" => "the change set is obsolete: the stack changed after it was created".into(),
        "EXECUTE_COMPLETE" | "EXECUTE_IN_PROGRESS" => {
            "the change set has already been executed".into()
        }
        "EXECUTE_FAILED" => "the change set's execution failed".into(),
        other => format!("the change set cannot be executed ({other})"),
    }
}
