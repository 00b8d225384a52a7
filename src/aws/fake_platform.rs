//! An in-memory `Platform` for the core's tests: a model registry with SageMaker's version
//! numbering and approval states, endpoints that answer with configured bodies (and delays),
//! SSM parameters, pipelines, builds that run through CodeBuild's phases, and an identity
//! with a simulated policy. Tests arrange state with the `add_*`/`set_*` methods and read
//! back what the core wrote.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::platform::{
    APPROVED, Build, BuildPhase, Decision, EndpointState, Identity, LogPage, LogStream,
    ModelPackage, PENDING, PipelineExecution, Platform, Simulation,
};
use super::{AwsError, AwsResult};

const REGION: &str = "eu-west-1";

/// Name/value pairs: pipeline parameters, build environment variables.
type Variables = Vec<(String, String)>;

#[derive(Debug, Default)]
struct State {
    account: String,
    packages: Vec<ModelPackage>,
    objects: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
    endpoints: BTreeMap<String, FakeEndpoint>,
    pipelines: BTreeMap<String, Vec<(PipelineExecution, Variables)>>,
    builds: Vec<(Build, String, Variables)>,
    roles: Vec<String>,
    denied: Vec<String>,
    denied_to_roles: Vec<(String, String)>,
    simulator_missing: bool,
    invocations: Vec<(String, String, usize)>,
    /// By URL: the status and body a signed POST there answers.
    apis: BTreeMap<String, (u16, Vec<u8>)>,
    /// Signed POSTs made: URL, content type, body length.
    posts: Vec<(String, String, usize)>,
    clock: u64,
}

#[derive(Debug, Clone)]
struct FakeEndpoint {
    status: String,
    response: Vec<u8>,
    delay: Duration,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FakePlatform {
    state: Mutex<State>,
}

impl FakePlatform {
    pub fn new(account: &str) -> Self {
        FakePlatform {
            state: Mutex::new(State {
                account: account.to_string(),
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a package in `group` (versions count from 1 per group), pending approval;
    /// returns its ARN. `metrics` becomes its evaluation report.
    pub fn register(&self, group: &str, metrics: Option<&str>) -> String {
        let mut state = self.lock();
        state.clock += 1;
        let version = state.packages.iter().filter(|p| p.group == group).count() as u64 + 1;
        let arn = format!(
            "arn:aws:sagemaker:{REGION}:{}:model-package/{group}/{version}",
            state.account
        );
        let metrics_uri = metrics.map(|report| {
            let uri = format!("s3://artifacts/{group}/{version}/evaluation.json");
            state.objects.insert(uri.clone(), report.to_string());
            uri
        });
        let created = format!("2026-11-{:02}T00:00:00Z", state.clock.min(28));
        state.packages.push(ModelPackage {
            arn: arn.clone(),
            group: group.to_string(),
            version,
            approval: PENDING.to_string(),
            created: Some(created),
            approval_description: None,
            metrics_uri,
            classes_uri: None,
        });
        arn
    }

    /// What a signed POST to `url` answers.
    pub fn set_api(&self, url: &str, status: u16, body: &str) {
        self.lock()
            .apis
            .insert(url.to_string(), (status, body.as_bytes().to_vec()));
    }

    /// The signed POSTs made: URL, content type, body length.
    pub fn posts(&self) -> Vec<(String, String, usize)> {
        self.lock().posts.clone()
    }

    /// An object at `uri` (`s3://bucket/key`), as a job wrote it.
    pub fn put_object(&self, uri: &str, body: &str) {
        self.lock()
            .objects
            .insert(uri.to_string(), body.to_string());
    }

    /// Records `classes` as the package's classes.json (customer metadata `classes`).
    pub fn set_classes(&self, arn: &str, classes: &[&str]) {
        let mut state = self.lock();
        let uri = format!("s3://artifacts/{}/classes.json", arn.replace(':', "_"));
        let body = serde_json::to_string(classes).unwrap_or_default();
        state.objects.insert(uri.clone(), body);
        if let Some(package) = state.packages.iter_mut().find(|package| package.arn == arn) {
            package.classes_uri = Some(uri);
        }
    }

    pub fn approval(&self, arn: &str) -> Option<String> {
        let state = self.lock();
        state
            .packages
            .iter()
            .find(|package| package.arn == arn)
            .map(|package| package.approval.clone())
    }

    /// An endpoint in `status` answering every request with `response` after `delay`.
    pub fn set_endpoint(&self, name: &str, status: &str, response: &str, delay: Duration) {
        self.lock().endpoints.insert(
            name.to_string(),
            FakeEndpoint {
                status: status.to_string(),
                response: response.as_bytes().to_vec(),
                delay,
            },
        );
    }

    /// `(endpoint, content type, body length)` of every invocation.
    pub fn invocations(&self) -> Vec<(String, String, usize)> {
        self.lock().invocations.clone()
    }

    pub fn parameters(&self) -> BTreeMap<String, String> {
        self.lock().parameters.clone()
    }

    pub fn set_parameter(&self, name: &str, value: &str) {
        self.lock()
            .parameters
            .insert(name.to_string(), value.to_string());
    }

    /// A pipeline that can be started.
    pub fn add_pipeline(&self, name: &str) {
        self.lock().pipelines.entry(name.to_string()).or_default();
    }

    /// The parameters each run of `pipeline` was started with, oldest first.
    pub fn pipeline_runs(&self, pipeline: &str) -> Vec<Vec<(String, String)>> {
        self.lock()
            .pipelines
            .get(pipeline)
            .map(|runs| {
                runs.iter()
                    .map(|(_, parameters)| parameters.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An IAM role that exists.
    pub fn add_role(&self, name: &str) {
        self.lock().roles.push(name.to_string());
    }

    /// Actions every principal's policy denies.
    pub fn deny(&self, action: &str) {
        self.lock().denied.push(action.to_string());
    }

    /// An action one role's policy denies.
    pub fn deny_to_role(&self, role: &str, action: &str) {
        self.lock()
            .denied_to_roles
            .push((role.to_string(), action.to_string()));
    }

    /// The policy simulator answers as on the local AWS: not implemented.
    pub fn without_simulator(&self) {
        self.lock().simulator_missing = true;
    }

    /// The projects and variables of the builds started, oldest first.
    pub fn builds_started(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.lock()
            .builds
            .iter()
            .map(|(_, project, variables)| (project.clone(), variables.clone()))
            .collect()
    }
}

/// The phases a finished CodeBuild build reports, in order.
const PHASES: [&str; 9] = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "COMPLETED",
];

impl Platform for FakePlatform {
    async fn model_packages(&self, group: &str) -> AwsResult<Vec<ModelPackage>> {
        let state = self.lock();
        let mut packages: Vec<ModelPackage> = state
            .packages
            .iter()
            .filter(|package| package.group == group)
            .map(|package| ModelPackage {
                // ListModelPackages' summaries carry neither of these.
                approval_description: None,
                metrics_uri: None,
                classes_uri: None,
                ..package.clone()
            })
            .collect();
        packages.sort_by_key(|package| std::cmp::Reverse(package.version));
        Ok(packages)
    }

    async fn model_package(&self, arn: &str) -> AwsResult<Option<ModelPackage>> {
        Ok(self
            .lock()
            .packages
            .iter()
            .find(|package| package.arn == arn)
            .cloned())
    }

    async fn set_approval(&self, arn: &str, approval: &str, description: &str) -> AwsResult<()> {
        let mut state = self.lock();
        let package = state
            .packages
            .iter_mut()
            .find(|package| package.arn == arn)
            .ok_or(AwsError::NotFound)?;
        package.approval = approval.to_string();
        package.approval_description = Some(description.to_string());
        Ok(())
    }

    async fn read_object(&self, uri: &str) -> AwsResult<Option<String>> {
        Ok(self.lock().objects.get(uri).cloned())
    }

    async fn parameter(&self, name: &str) -> AwsResult<Option<String>> {
        Ok(self.lock().parameters.get(name).cloned())
    }

    async fn put_parameter(&self, name: &str, value: &str) -> AwsResult<()> {
        self.set_parameter(name, value);
        Ok(())
    }

    async fn endpoint(&self, name: &str) -> AwsResult<Option<EndpointState>> {
        Ok(self
            .lock()
            .endpoints
            .get(name)
            .map(|endpoint| EndpointState {
                status: endpoint.status.clone(),
                failure_reason: None,
            }))
    }

    async fn post_signed(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> AwsResult<(u16, Vec<u8>)> {
        let mut state = self.lock();
        state
            .posts
            .push((url.to_string(), content_type.to_string(), body.len()));
        state
            .apis
            .get(url)
            .cloned()
            .ok_or_else(|| AwsError::Unreachable(format!("{url}: no such API")))
    }

    async fn invoke_endpoint(
        &self,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> AwsResult<Vec<u8>> {
        let endpoint = {
            let mut state = self.lock();
            state
                .invocations
                .push((name.to_string(), content_type.to_string(), body.len()));
            state.endpoints.get(name).cloned().ok_or_else(|| {
                AwsError::Validation(format!("Endpoint {name} of account not found."))
            })?
        };
        if endpoint.status != "InService" {
            return Err(AwsError::Validation(format!(
                "Endpoint {name} is not in service ({})",
                endpoint.status
            )));
        }
        tokio::time::sleep(endpoint.delay).await;
        Ok(endpoint.response)
    }

    async fn start_pipeline(
        &self,
        pipeline: &str,
        parameters: &[(String, String)],
    ) -> AwsResult<String> {
        let mut state = self.lock();
        let account = state.account.clone();
        let runs = state
            .pipelines
            .get_mut(pipeline)
            .ok_or_else(|| AwsError::Validation(format!("Pipeline {pipeline} does not exist")))?;
        let arn = format!(
            "arn:aws:sagemaker:{REGION}:{account}:pipeline/{pipeline}/execution/run{}",
            runs.len() + 1
        );
        runs.push((
            PipelineExecution {
                arn: arn.clone(),
                status: "Executing".into(),
                started: Some("2026-11-25T00:00:00Z".into()),
                failure_reason: None,
            },
            parameters.to_vec(),
        ));
        Ok(arn)
    }

    async fn pipeline_executions(
        &self,
        pipeline: &str,
        max: i32,
    ) -> AwsResult<Vec<PipelineExecution>> {
        let state = self.lock();
        let runs = state
            .pipelines
            .get(pipeline)
            .ok_or_else(|| AwsError::Validation(format!("Pipeline {pipeline} does not exist")))?;
        Ok(runs
            .iter()
            .rev()
            .take(usize::try_from(max).unwrap_or_default())
            .map(|(run, _)| run.clone())
            .collect())
    }

    /// A build fails when one of its variables is `fail`; otherwise it succeeds.
    async fn start_build(
        &self,
        project: &str,
        variables: &[(String, String)],
    ) -> AwsResult<String> {
        let mut state = self.lock();
        let id = format!("{project}:build-{}", state.builds.len() + 1);
        let fails = variables.iter().any(|(_, value)| value == "fail");
        state.builds.push((
            Build {
                id: id.clone(),
                status: if fails { "FAILED" } else { "SUCCEEDED" }.to_string(),
                phases: PHASES
                    .iter()
                    .map(|name| BuildPhase {
                        name: (*name).to_string(),
                        status: (*name != "COMPLETED").then(|| {
                            if fails && *name == "BUILD" {
                                "FAILED".to_string()
                            } else {
                                "SUCCEEDED".to_string()
                            }
                        }),
                        seconds: Some(1),
                    })
                    .collect(),
                log: Some(LogStream {
                    group: format!("/aws/codebuild/{project}"),
                    stream: id.clone(),
                }),
            },
            project.to_string(),
            variables.to_vec(),
        ));
        Ok(id)
    }

    async fn build(&self, id: &str) -> AwsResult<Build> {
        self.lock()
            .builds
            .iter()
            .find(|(build, _, _)| build.id == id)
            .map(|(build, _, _)| build.clone())
            .ok_or(AwsError::NotFound)
    }

    async fn log_events(&self, stream: &LogStream, token: Option<&str>) -> AwsResult<LogPage> {
        // One page of lines, then the same token again: no more lines.
        if token.is_some() {
            return Ok(LogPage {
                lines: Vec::new(),
                next: token.map(str::to_string),
            });
        }
        Ok(LogPage {
            lines: vec![
                format!("[Container] running {}", stream.stream),
                "[Container] Phase complete: BUILD".to_string(),
            ],
            next: Some("end".into()),
        })
    }

    async fn caller(&self) -> AwsResult<Identity> {
        let state = self.lock();
        Ok(Identity {
            account: state.account.clone(),
            arn: format!("arn:aws:iam::{}:role/deployer", state.account),
        })
    }

    async fn role_arn(&self, name: &str) -> AwsResult<Option<String>> {
        let state = self.lock();
        Ok(state
            .roles
            .iter()
            .any(|role| role == name)
            .then(|| format!("arn:aws:iam::{}:role/{name}", state.account)))
    }

    async fn simulate(&self, principal: &str, simulation: &Simulation) -> AwsResult<Vec<Decision>> {
        let state = self.lock();
        if state.simulator_missing {
            return Err(AwsError::Other(
                "SimulatePrincipalPolicy is not implemented here".into(),
            ));
        }
        let role = principal.rsplit('/').next().unwrap_or(principal);
        let resources = if simulation.resources.is_empty() {
            vec!["*".to_string()]
        } else {
            simulation.resources.clone()
        };
        let mut decisions = Vec::new();
        for action in &simulation.actions {
            for resource in &resources {
                let denied = state.denied.contains(action)
                    || state
                        .denied_to_roles
                        .iter()
                        .any(|(name, denied)| name == role && denied == action);
                decisions.push(Decision {
                    action: action.clone(),
                    resource: resource.clone(),
                    decision: if denied { "implicitDeny" } else { "allowed" }.to_string(),
                });
            }
        }
        Ok(decisions)
    }
}

/// Approves through the trait, as `mlops-infra approve` does; for arranging tests.
pub async fn approve(platform: &FakePlatform, arn: &str) {
    let _ = platform.set_approval(arn, APPROVED, "approved").await;
}
