//! The release flow's side of the AWS boundary: the model registry, endpoints, pipelines,
//! builds, records (SSM parameters) and identity, in the tool's own types. `sdk_platform.rs`
//! implements it with aws-sdk-rust; `fake_platform.rs` in memory, for the core's tests.

use std::future::Future;

use serde::{Deserialize, Serialize};

use super::AwsResult;

/// A model package's approval status, as SageMaker spells it.
pub const APPROVED: &str = "Approved";
pub const REJECTED: &str = "Rejected";
pub const PENDING: &str = "PendingManualApproval";

/// A version in a model package group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPackage {
    pub arn: String,
    pub group: String,
    pub version: u64,
    /// `Approved`, `Rejected` or `PendingManualApproval`.
    pub approval: String,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    /// Why it was approved or rejected.
    pub approval_description: Option<String>,
    /// `s3://` URI of the evaluation report registered as its model-quality statistics.
    pub metrics_uri: Option<String>,
    /// `s3://` URI of its classes.json (customer metadata `classes`): the class names in
    /// class-index order.
    #[serde(default)]
    pub classes_uri: Option<String>,
}

impl ModelPackage {
    pub fn is_approved(&self) -> bool {
        self.approval == APPROVED
    }
}

/// A SageMaker endpoint's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointState {
    /// `InService`, `Creating`, `Updating`, `Failed`, …
    pub status: String,
    pub failure_reason: Option<String>,
}

/// One run of a SageMaker pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineExecution {
    pub arn: String,
    /// `Executing`, `Succeeded`, `Failed`, `Stopping`, `Stopped`.
    pub status: String,
    /// Start time, RFC 3339.
    pub started: Option<String>,
    pub failure_reason: Option<String>,
}

/// A CodeBuild build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub id: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `STOPPED`, `TIMED_OUT`.
    pub status: String,
    pub phases: Vec<BuildPhase>,
    /// Where the build's log goes, once CodeBuild knows.
    pub log: Option<LogStream>,
}

impl Build {
    pub fn is_finished(&self) -> bool {
        self.status != "IN_PROGRESS"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPhase {
    /// `SUBMITTED`, `PROVISIONING`, `INSTALL`, `BUILD`, …
    pub name: String,
    /// `SUCCEEDED`, `FAILED`, …; `None` while it runs.
    pub status: Option<String>,
    pub seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    pub group: String,
    pub stream: String,
}

/// Log lines from a position, and the token to read on from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    pub lines: Vec<String>,
    pub next: Option<String>,
}

/// Who the credentials are (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

/// Actions to simulate on resources (none: `*`), with condition keys the request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub context: Vec<(String, String)>,
}

impl Simulation {
    pub fn actions(actions: &[String]) -> Simulation {
        Simulation {
            actions: actions.to_vec(),
            resources: Vec::new(),
            context: Vec::new(),
        }
    }
}

/// One action's verdict on one resource from IAM's policy simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: String,
    /// The resource simulated (`*` when none was given).
    pub resource: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: String,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.decision == "allowed"
    }
}

/// The release flow's AWS operations.
pub trait Platform {
    /// Every package of a group, newest version first; empty when the group does not exist.
    fn model_packages(&self, group: &str) -> impl Future<Output = AwsResult<Vec<ModelPackage>>>;
    /// `None` when no package has that ARN.
    fn model_package(&self, arn: &str) -> impl Future<Output = AwsResult<Option<ModelPackage>>>;
    fn set_approval(
        &self,
        arn: &str,
        approval: &str,
        description: &str,
    ) -> impl Future<Output = AwsResult<()>>;
    /// An S3 object's text (`s3://bucket/key`); `None` when it does not exist.
    fn read_object(&self, uri: &str) -> impl Future<Output = AwsResult<Option<String>>>;

    /// An SSM parameter's value; `None` when it does not exist.
    fn parameter(&self, name: &str) -> impl Future<Output = AwsResult<Option<String>>>;
    /// Creates or overwrites a String parameter.
    fn put_parameter(&self, name: &str, value: &str) -> impl Future<Output = AwsResult<()>>;

    /// `None` when no endpoint has that name.
    fn endpoint(&self, name: &str) -> impl Future<Output = AwsResult<Option<EndpointState>>>;
    /// The response body of one real-time inference request.
    /// A SigV4-signed `POST` (service `execute-api`) to an API the platform deploys, as an app
    /// sends it; the answer's status and body.
    fn post_signed(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> impl Future<Output = AwsResult<(u16, Vec<u8>)>>;

    fn invoke_endpoint(
        &self,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> impl Future<Output = AwsResult<Vec<u8>>>;

    /// Starts a run with these parameter values; returns its ARN.
    fn start_pipeline(
        &self,
        pipeline: &str,
        parameters: &[(String, String)],
    ) -> impl Future<Output = AwsResult<String>>;
    /// The newest runs first, at most `max`.
    fn pipeline_executions(
        &self,
        pipeline: &str,
        max: i32,
    ) -> impl Future<Output = AwsResult<Vec<PipelineExecution>>>;

    /// Starts a build with these environment variables; returns its id.
    fn start_build(
        &self,
        project: &str,
        variables: &[(String, String)],
    ) -> impl Future<Output = AwsResult<String>>;
    fn build(&self, id: &str) -> impl Future<Output = AwsResult<Build>>;
    /// Log lines after `token` (from the start when `None`).
    fn log_events(
        &self,
        stream: &LogStream,
        token: Option<&str>,
    ) -> impl Future<Output = AwsResult<LogPage>>;

    fn caller(&self) -> impl Future<Output = AwsResult<Identity>>;
    /// The ARN of the IAM role of that name (with its path); `None` when it does not exist.
    fn role_arn(&self, name: &str) -> impl Future<Output = AwsResult<Option<String>>>;
    /// IAM SimulatePrincipalPolicy for `principal` on `actions` (all resources).
    /// IAM's policy simulator for a principal (SimulatePrincipalPolicy): each simulation's
    /// actions on each of its resources.
    fn simulate(
        &self,
        principal: &str,
        simulation: &Simulation,
    ) -> impl Future<Output = AwsResult<Vec<Decision>>>;
}
