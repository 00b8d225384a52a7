//! The real `CloudFormation`: aws-sdk-rust calls, and the one place that reads CloudFormation's
//! error codes and messages and turns them into typed outcomes.
//!
//! Retries of throttled and transient calls are the SDK's standard retry strategy (configured
//! in `from_environment`); nothing here loops on errors. The only loops follow `NextToken`.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use super::call_log::CallLog;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::primitives::{DateTime, DateTimeFormat};
use aws_sdk_cloudformation::types as cfn;

use super::{
    AwsError, AwsResult, ChangeSet, ChangeSetKind, ChangeSetRequest, ChangeSetStatus,
    CloudFormation, DeployedStack, DriftDetection, EventSource, OperationEvent, PropertyDifference,
    RefactorRequest, RefactorState, ResourceChange, ResourceDrift, StackEvent, StackStatus,
    TemplateSource, Validation, not_executable, template_url,
};

/// Attempts per call, the first included, before a throttled or transient error is returned.
pub const MAX_ATTEMPTS: u32 = 5;

/// The standard configuration chain (environment variables, profiles, SSO,
/// `AWS_ENDPOINT_URL`, instance roles …) with the SDK's standard retries; `region` overrides
/// the configured region and `profile` the profile (`AWS_PROFILE`).
pub async fn load_config(region: Option<&str>, profile: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// An S3 client for `config`: path-style addressing against a local endpoint
/// (`http://127.0.0.1:PORT` has no per-bucket host names).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    s3_client_logged(config, None)
}

pub fn s3_client_logged(config: &SdkConfig, log: Option<&CallLog>) -> aws_sdk_s3::Client {
    let mut s3 = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        s3 = s3.force_path_style(true);
    }
    if let Some(log) = log {
        s3 = s3.interceptor(log.clone());
    }
    aws_sdk_s3::Client::from_conf(s3.build())
}

/// CloudFormation and S3 clients sharing one configuration.
#[derive(Debug, Clone)]
pub struct SdkCloudFormation {
    cloudformation: aws_sdk_cloudformation::Client,
    s3: aws_sdk_s3::Client,
    /// For the account guard; `None` where the caller cannot be asked (mocked clients).
    sts: Option<aws_sdk_sts::Client>,
    /// For kept model package groups and log groups; `None` with mocked clients.
    sagemaker: Option<aws_sdk_sagemaker::Client>,
    logs: Option<aws_sdk_cloudwatchlogs::Client>,
}

/// A client of an SDK crate from `config`, carrying the call log when there is one.
macro_rules! client {
    ($krate:ident, $config:expr, $log:expr) => {{
        let mut builder = $krate::config::Builder::from($config);
        if let Some(log) = $log {
            builder = builder.interceptor(log.clone());
        }
        $krate::Client::from_conf(builder.build())
    }};
}
pub(crate) use client;

impl SdkCloudFormation {
    /// Clients from the standard configuration chain (see `load_config`).
    pub async fn from_environment(region: Option<&str>, profile: Option<&str>) -> Self {
        Self::from_config(&load_config(region, profile).await)
    }

    /// Clients from a loaded configuration (the tests point one at the local emulator).
    pub fn from_config(config: &SdkConfig) -> Self {
        Self::from_config_logged(config, None)
    }

    /// The same, every call written to `log` (`-v`).
    pub fn from_config_logged(config: &SdkConfig, log: Option<&CallLog>) -> Self {
        let mut sts = aws_sdk_sts::config::Builder::from(config)
            // The account guard's call comes first: one attempt, so an endpoint that refuses
            // connections (the local AWS not started) fails at once instead of after backoff.
            .retry_config(RetryConfig::standard().with_max_attempts(1));
        if let Some(log) = log {
            sts = sts.interceptor(log.clone());
        }
        SdkCloudFormation {
            cloudformation: client!(aws_sdk_cloudformation, config, log),
            s3: s3_client_logged(config, log),
            sts: Some(aws_sdk_sts::Client::from_conf(sts.build())),
            sagemaker: Some(client!(aws_sdk_sagemaker, config, log)),
            logs: Some(client!(aws_sdk_cloudwatchlogs, config, log)),
        }
    }

    /// Clients built elsewhere (aws-smithy-mocks in the tests).
    pub fn from_clients(
        cloudformation: aws_sdk_cloudformation::Client,
        s3: aws_sdk_s3::Client,
    ) -> Self {
        SdkCloudFormation {
            cloudformation,
            s3,
            sts: None,
            sagemaker: None,
            logs: None,
        }
    }

    async fn get_template(&self, stack: &str) -> AwsResult<String> {
        let output = self
            .cloudformation
            .get_template()
            .stack_name(stack)
            .template_stage(cfn::TemplateStage::Original)
            .send()
            .await
            .map_err(classify)?;
        // YAML comes back as sent; JSON too (as text), which the template model also reads.
        Ok(output.template_body().unwrap_or_default().to_string())
    }
}

impl CloudFormation for SdkCloudFormation {
    async fn caller_account(&self) -> AwsResult<Option<String>> {
        let Some(sts) = &self.sts else {
            return Ok(None);
        };
        let identity = sts.get_caller_identity().send().await.map_err(classify)?;
        Ok(identity.account().map(str::to_string))
    }

    async fn describe_stack(&self, name: &str) -> AwsResult<Option<DeployedStack>> {
        // The state first, then the template: the template is then never older than the
        // state (what the record of deployed templates relies on), and a stack that is not
        // there costs one call. A plan reads most templates from that record, not from here.
        let Some(mut deployed) = self.stack_state(name).await? else {
            return Ok(None);
        };
        // A stack that only holds an unexecuted CREATE change set has no template yet.
        if !deployed.status.is_review() {
            deployed.template_body = match self.get_template(name).await {
                Ok(body) => body,
                // Deleted between the two calls.
                Err(AwsError::NotFound) => return Ok(None),
                Err(error) => return Err(error),
            };
        }
        Ok(Some(deployed))
    }

    async fn stack_state(&self, name: &str) -> AwsResult<Option<DeployedStack>> {
        let output = match self
            .cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(classify)
        {
            Ok(output) => output,
            Err(AwsError::NotFound) => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(output.stacks().first().map(deployed_stack))
    }

    async fn create_change_set(&self, request: &ChangeSetRequest) -> AwsResult<String> {
        let kind = match request.kind {
            ChangeSetKind::Create => cfn::ChangeSetType::Create,
            ChangeSetKind::Update => cfn::ChangeSetType::Update,
        };
        let mut call = self
            .cloudformation
            .create_change_set()
            .stack_name(&request.stack_name)
            .change_set_name(&request.change_set_name)
            .change_set_type(kind)
            .set_role_arn(request.role_arn.clone())
            // Sent even when empty: the request states the stack's whole tag set.
            .set_tags(Some(
                request
                    .tags
                    .iter()
                    .map(|(key, value)| cfn::Tag::builder().key(key).value(value).build())
                    .collect(),
            ));
        call = match &request.template {
            TemplateSource::Body(body) => call.template_body(body),
            TemplateSource::Url(url) => call.template_url(url),
        };
        for (key, value) in &request.parameters {
            call = call.parameters(
                cfn::Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build(),
            );
        }
        for capability in &request.capabilities {
            call = call.capabilities(cfn::Capability::from(capability.as_str()));
        }
        if !request.description.is_empty() {
            call = call.description(&request.description);
        }
        if request.revert_drift {
            call = call.deployment_mode(cfn::DeploymentMode::RevertDrift);
        }
        if let Some(rollback) = &request.rollback {
            let triggers = rollback
                .alarm_arns
                .iter()
                .map(|arn| {
                    cfn::RollbackTrigger::builder()
                        .arn(arn)
                        .r#type("AWS::CloudWatch::Alarm")
                        .build()
                })
                .collect();
            call = call.rollback_configuration(
                cfn::RollbackConfiguration::builder()
                    .set_rollback_triggers(Some(triggers))
                    .monitoring_time_in_minutes(rollback.monitoring_minutes as i32)
                    .build(),
            );
        }
        match call.send().await.map_err(classify) {
            Ok(output) => output
                .id()
                .map(str::to_string)
                .ok_or_else(|| AwsError::Other("CreateChangeSet returned no change set id".into())),
            // An UPDATE change set for a stack that does not exist is a mistake in the request,
            // not an absent result.
            Err(AwsError::NotFound) => Err(AwsError::Validation(format!(
                "Stack [{}] does not exist",
                request.stack_name
            ))),
            Err(error) => Err(error),
        }
    }

    async fn describe_change_set(&self, id: &str) -> AwsResult<ChangeSet> {
        let mut changes = Vec::new();
        let mut next_token: Option<String> = None;
        let mut first: Option<(String, ChangeSetStatus)> = None;
        loop {
            let output = self
                .cloudformation
                .describe_change_set()
                .change_set_name(id)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(classify)?;
            if first.is_none() {
                let status = change_set_status(
                    output.status().map(cfn::ChangeSetStatus::as_str),
                    output.execution_status().map(cfn::ExecutionStatus::as_str),
                    output.status_reason(),
                );
                let change_set_id = output.change_set_id().unwrap_or(id).to_string();
                first = Some((change_set_id, status));
            }
            changes.extend(
                output
                    .changes()
                    .iter()
                    .filter_map(cfn::Change::resource_change)
                    .map(resource_change),
            );
            // The change list is final only once the change set is computed.
            let pending = matches!(first, Some((_, ChangeSetStatus::Pending)));
            match output.next_token() {
                Some(token) if !token.is_empty() && !pending => next_token = Some(token.into()),
                _ => break,
            }
        }
        let (id, status) = first.unwrap_or_else(|| (id.to_string(), ChangeSetStatus::Pending));
        Ok(ChangeSet {
            id,
            status,
            changes,
        })
    }

    async fn execute_change_set(&self, id: &str) -> AwsResult<()> {
        self.cloudformation
            .execute_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_change_set(&self, id: &str) -> AwsResult<()> {
        self.cloudformation
            .delete_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The change sets' ids (ARNs), oldest first as CloudFormation lists them.
    async fn list_change_sets(&self, stack: &str) -> AwsResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let output = self
                .cloudformation
                .list_change_sets()
                .stack_name(stack)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(classify)?;
            ids.extend(
                output
                    .summaries()
                    .iter()
                    // CloudFormation lists only this stack's; some emulators list every stack's.
                    .filter(|summary| {
                        summary.stack_name().is_none_or(|name| name == stack)
                            || summary.stack_id() == Some(stack)
                    })
                    .filter_map(|summary| summary.change_set_id().map(str::to_string)),
            );
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.into()),
                _ => break,
            }
        }
        Ok(ids)
    }

    /// Newest first, back to (and including) the stack-level event that started the most recent
    /// operation: a long-lived stack has thousands of events and callers want the last
    /// operation's, so later pages are not read.
    async fn stack_events(&self, stack: &str) -> AwsResult<Vec<StackEvent>> {
        let mut events = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let output = self
                .cloudformation
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(classify)?;
            for event in output.stack_events() {
                events.push(stack_event(event));
                if starts_operation(event) {
                    return Ok(events);
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.into()),
                _ => return Ok(events),
            }
        }
    }

    async fn detect_drift(&self, stack: &str) -> AwsResult<String> {
        let output = self
            .cloudformation
            .detect_stack_drift()
            .stack_name(stack)
            .send()
            .await
            .map_err(classify)
            .map_err(|error| unsupported(error, "DetectStackDrift"))?;
        Ok(output
            .stack_drift_detection_id()
            .unwrap_or_default()
            .to_string())
    }

    async fn drift_detection(&self, id: &str) -> AwsResult<DriftDetection> {
        let output = self
            .cloudformation
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(id)
            .send()
            .await
            .map_err(classify)
            .map_err(|error| unsupported(error, "DescribeStackDriftDetectionStatus"))?;
        Ok(match output.detection_status() {
            Some(cfn::StackDriftDetectionStatus::DetectionInProgress) | None => {
                DriftDetection::Running
            }
            Some(cfn::StackDriftDetectionStatus::DetectionComplete) => DriftDetection::Complete,
            Some(other) => DriftDetection::Failed(
                output
                    .detection_status_reason()
                    .unwrap_or(other.as_str())
                    .to_string(),
            ),
        })
    }

    async fn resource_drifts(&self, stack: &str) -> AwsResult<Vec<ResourceDrift>> {
        let mut drifts = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let output = self
                .cloudformation
                .describe_stack_resource_drifts()
                .stack_name(stack)
                .stack_resource_drift_status_filters(cfn::StackResourceDriftStatus::Modified)
                .stack_resource_drift_status_filters(cfn::StackResourceDriftStatus::Deleted)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(classify)
                .map_err(|error| unsupported(error, "DescribeStackResourceDrifts"))?;
            drifts.extend(output.stack_resource_drifts().iter().map(resource_drift));
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.into()),
                _ => return Ok(drifts),
            }
        }
    }

    async fn operation_events(
        &self,
        source: &EventSource,
        failed_only: bool,
    ) -> AwsResult<Vec<OperationEvent>> {
        let mut events = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let mut call = self
                .cloudformation
                .describe_events()
                .set_next_token(next_token.take());
            call = match source {
                EventSource::Operation(id) => call.operation_id(id),
                EventSource::ChangeSet(id) => call.change_set_name(id),
            };
            if failed_only {
                call = call.filters(cfn::EventFilter::builder().failed_events(true).build());
            }
            let output = call
                .send()
                .await
                .map_err(classify)
                .map_err(|error| unsupported(error, "DescribeEvents"))?;
            events.extend(output.operation_events().iter().map(operation_event));
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.into()),
                _ => break,
            }
        }
        // Oldest first, whatever order the pages came in.
        events.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        Ok(events)
    }

    async fn create_stack_refactor(&self, request: &RefactorRequest) -> AwsResult<String> {
        let mut call = self
            .cloudformation
            .create_stack_refactor()
            .description(&request.description)
            .enable_stack_creation(request.enable_stack_creation);
        for (name, template) in &request.stacks {
            let definition = cfn::StackDefinition::builder().stack_name(name);
            call = call.stack_definitions(
                match template {
                    TemplateSource::Body(body) => definition.template_body(body),
                    TemplateSource::Url(url) => definition.template_url(url),
                }
                .build(),
            );
        }
        for (from_stack, from_id, to_stack, to_id) in &request.mappings {
            let location = |stack: &str, id: &str| {
                cfn::ResourceLocation::builder()
                    .stack_name(stack)
                    .logical_resource_id(id)
                    .build()
            };
            call = call.resource_mappings(
                cfn::ResourceMapping::builder()
                    .source(location(from_stack, from_id))
                    .destination(location(to_stack, to_id))
                    .build(),
            );
        }
        let output = call.send().await.map_err(classify)?;
        Ok(output.stack_refactor_id().unwrap_or_default().to_string())
    }

    async fn stack_refactor(&self, id: &str) -> AwsResult<RefactorState> {
        let output = self
            .cloudformation
            .describe_stack_refactor()
            .stack_refactor_id(id)
            .send()
            .await
            .map_err(classify)?;
        let reason = |reason: Option<&str>, fallback: &str| {
            reason
                .filter(|text| !text.is_empty())
                .unwrap_or(fallback)
                .to_string()
        };
        Ok(match (output.status(), output.execution_status()) {
            (Some(cfn::StackRefactorStatus::CreateFailed), _) => RefactorState::Failed(reason(
                output.status_reason(),
                "creating the stack refactor failed",
            )),
            (Some(cfn::StackRefactorStatus::CreateInProgress), _) => RefactorState::Running,
            (_, Some(cfn::StackRefactorExecutionStatus::ExecuteComplete)) => {
                RefactorState::Complete
            }
            (_, Some(cfn::StackRefactorExecutionStatus::Available)) => RefactorState::Ready,
            (
                _,
                Some(
                    cfn::StackRefactorExecutionStatus::ExecuteInProgress
                    | cfn::StackRefactorExecutionStatus::RollbackInProgress,
                ),
            ) => RefactorState::Running,
            (status, execution) => RefactorState::Failed(reason(
                output.execution_status_reason().or(output.status_reason()),
                &format!(
                    "the stack refactor is {} ({})",
                    execution.map_or("?", |value| value.as_str()),
                    status.map_or("?", |value| value.as_str())
                ),
            )),
        })
    }

    async fn execute_stack_refactor(&self, id: &str) -> AwsResult<()> {
        self.cloudformation
            .execute_stack_refactor()
            .stack_refactor_id(id)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_stack(&self, stack: &str) -> AwsResult<()> {
        self.cloudformation
            .delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn set_termination_protection(&self, stack: &str, enabled: bool) -> AwsResult<()> {
        self.cloudformation
            .update_termination_protection()
            .stack_name(stack)
            .enable_termination_protection(enabled)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn set_stack_policy(&self, stack: &str, policy: &str) -> AwsResult<()> {
        self.cloudformation
            .set_stack_policy()
            .stack_name(stack)
            .stack_policy_body(policy)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// PutObject with the bucket's default encryption; the URL is the virtual-hosted S3 URL
    /// CloudFormation reads. The local emulator (moto) resolves that URL from its own S3 store
    /// by the first host label, so the same URL serves it when `AWS_ENDPOINT_URL` is set.
    async fn named_resource_exists(&self, resource: &crate::plan::Named) -> AwsResult<bool> {
        let name = resource.name.as_str();
        let answer = match resource.resource_type.as_str() {
            "AWS::S3::Bucket" => self
                .s3
                .head_bucket()
                .bucket(name)
                .send()
                .await
                .map(|_| true)
                .map_err(classify),
            "AWS::SageMaker::ModelPackageGroup" => match &self.sagemaker {
                Some(sagemaker) => sagemaker
                    .describe_model_package_group()
                    .model_package_group_name(name)
                    .send()
                    .await
                    .map(|_| true)
                    .map_err(|error| missing_as_not_found(classify(error))),
                None => Ok(false),
            },
            "AWS::Logs::LogGroup" => match &self.logs {
                Some(logs) => logs
                    .describe_log_groups()
                    .log_group_name_prefix(name)
                    .send()
                    .await
                    .map(|output| {
                        output
                            .log_groups()
                            .iter()
                            .any(|group| group.log_group_name() == Some(name))
                    })
                    .map_err(classify),
                None => Ok(false),
            },
            _ => Ok(false),
        };
        match answer {
            Ok(found) => Ok(found),
            // Absent; or refused (another account's bucket, a role without the read): not
            // one this environment kept.
            Err(AwsError::NotFound | AwsError::AccessDenied(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn object_exists(&self, bucket: &str, key: &str) -> AwsResult<bool> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(error) => match classify(error) {
                AwsError::NotFound => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn read_object(&self, bucket: &str, key: &str) -> AwsResult<Option<Vec<u8>>> {
        let output = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => output,
            // Before the storage stack has created the bucket, there is nothing to read.
            Err(error) if error.code() == Some("NoSuchBucket") => return Ok(None),
            Err(error) => {
                return match classify(error) {
                    AwsError::NotFound => Ok(None),
                    other => Err(other),
                };
            }
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| AwsError::Other(format!("s3://{bucket}/{key}: {error}")))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn upload_template(&self, bucket: &str, key: &str, body: &[u8]) -> AwsResult<String> {
        let region = self
            .s3
            .config()
            .region()
            .map(|region| region.as_ref().to_string())
            .ok_or_else(|| {
                AwsError::Other("no AWS region configured for the template upload".into())
            })?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type(key))
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|error| match classify(error) {
                AwsError::Validation(message) => {
                    AwsError::Validation(format!("s3://{bucket}/{key}: {message}"))
                }
                AwsError::Other(message) => {
                    AwsError::Other(format!("s3://{bucket}/{key}: {message}"))
                }
                other => other,
            })?;
        Ok(template_url(bucket, &region, key))
    }
}

fn deployed_stack(stack: &cfn::Stack) -> DeployedStack {
    let parameters = stack
        .parameters()
        .iter()
        .filter_map(|parameter| {
            Some((
                parameter.parameter_key()?.to_string(),
                parameter.parameter_value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    let tags = stack
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
        .collect();
    let outputs: BTreeMap<String, String> = stack
        .outputs()
        .iter()
        .filter_map(|output| {
            Some((
                output.output_key()?.to_string(),
                output.output_value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    DeployedStack {
        name: stack.stack_name().unwrap_or_default().to_string(),
        id: stack.stack_id().unwrap_or_default().to_string(),
        status: StackStatus::new(stack.stack_status().map_or("", cfn::StackStatus::as_str)),
        status_reason: stack.stack_status_reason().map(str::to_string),
        parameters,
        tags,
        outputs,
        termination_protection: stack.enable_termination_protection().unwrap_or(false),
        last_updated: stack
            .last_updated_time()
            .or(stack.creation_time())
            .and_then(rfc3339),
        role_arn: stack.role_arn().map(str::to_string),
        template_body: String::new(),
        // A rollback continues the operation that failed, whose events tell why.
        last_operation_id: stack
            .last_operations()
            .iter()
            .find(|entry| entry.operation_type() != Some(&cfn::OperationType::Rollback))
            .and_then(|entry| entry.operation_id())
            .map(str::to_string),
        detailed_status: stack
            .detailed_status()
            .map(|status| status.as_str().to_string()),
    }
}

/// An API this endpoint does not know: CloudFormation's Query protocol answers an unknown
/// action `InvalidAction` (an emulator may answer HTTP 500 or 501 without a code).
fn unsupported(error: AwsError, api: &'static str) -> AwsError {
    match &error {
        AwsError::Other(message)
            if message.contains("InvalidAction")
                || message.contains("HTTP 500 without an error code")
                || message.contains("HTTP 501") =>
        {
            AwsError::Unsupported(api)
        }
        AwsError::Validation(message) if message.contains("InvalidAction") => {
            AwsError::Unsupported(api)
        }
        _ => error,
    }
}

fn resource_drift(drift: &cfn::StackResourceDrift) -> ResourceDrift {
    ResourceDrift {
        logical_id: drift.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: drift.resource_type().unwrap_or_default().to_string(),
        status: drift
            .stack_resource_drift_status()
            .map_or("", cfn::StackResourceDriftStatus::as_str)
            .to_string(),
        differences: drift
            .property_differences()
            .iter()
            .map(|difference| PropertyDifference {
                path: difference.property_path().unwrap_or_default().to_string(),
                expected: difference.expected_value().map(str::to_string),
                actual: difference.actual_value().map(str::to_string),
                kind: difference
                    .difference_type()
                    .map_or("", cfn::DifferenceType::as_str)
                    .to_string(),
            })
            .collect(),
    }
}

fn operation_event(event: &cfn::OperationEvent) -> OperationEvent {
    let validation = event.validation_name().map(|name| Validation {
        name: name.to_string(),
        status: event
            .validation_status()
            .map_or("", cfn::ValidationStatus::as_str)
            .to_string(),
        reason: event.validation_status_reason().map(str::to_string),
        path: event.validation_path().map(str::to_string),
        mode: event
            .validation_failure_mode()
            .map_or("FAIL", cfn::HookFailureMode::as_str)
            .to_string(),
    });
    OperationEvent {
        event_type: event
            .event_type()
            .map_or("", cfn::EventType::as_str)
            .to_string(),
        timestamp: event.timestamp().and_then(rfc3339).unwrap_or_default(),
        logical_id: event.logical_resource_id().map(str::to_string),
        resource_type: event.resource_type().map(str::to_string),
        status: event
            .resource_status()
            .map(|status| status.as_str().to_string()),
        reason: event.resource_status_reason().map(str::to_string),
        validation,
    }
}

pub(super) fn rfc3339(time: &DateTime) -> Option<String> {
    time.fmt(DateTimeFormat::DateTime).ok()
}

/// What CloudFormation says when a change set would change nothing: on CreateChangeSet's
/// change set ("The submitted information didn't contain changes. Submit different information
/// to create a change set.") and on UpdateStack ("No updates are to be performed.").
fn means_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// A change set's status, execution status and reason as one typed outcome.
fn change_set_status(
    status: Option<&str>,
    execution: Option<&str>,
    reason: Option<&str>,
) -> ChangeSetStatus {
    let reason = reason.unwrap_or_default();
    match status.unwrap_or_default() {
        "FAILED" if means_no_changes(reason) => ChangeSetStatus::NoChanges,
        "FAILED" => ChangeSetStatus::Failed(if reason.is_empty() {
            "the change set failed without a reason".into()
        } else {
            reason.to_string()
        }),
        "CREATE_PENDING" | "CREATE_IN_PROGRESS" => ChangeSetStatus::Pending,
        "CREATE_COMPLETE" => match execution.unwrap_or("AVAILABLE") {
            "AVAILABLE" => ChangeSetStatus::Ready,
            // Briefly, while the stack finishes another operation.
            "UNAVAILABLE" => ChangeSetStatus::Pending,
            other => ChangeSetStatus::Failed(not_executable(other)),
        },
        other => ChangeSetStatus::Failed(format!("the change set is {other}")),
    }
}

fn resource_change(change: &cfn::ResourceChange) -> ResourceChange {
    ResourceChange {
        logical_id: change.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: change.resource_type().unwrap_or_default().to_string(),
        action: change
            .action()
            .map_or("", cfn::ChangeAction::as_str)
            .to_string(),
        replacement: change
            .replacement()
            .map(|replacement| replacement.as_str().to_string()),
    }
}

fn stack_event(event: &cfn::StackEvent) -> StackEvent {
    StackEvent {
        id: event.event_id().unwrap_or_default().to_string(),
        timestamp: event.timestamp().and_then(rfc3339).unwrap_or_default(),
        logical_id: event.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: event.resource_type().unwrap_or_default().to_string(),
        status: event
            .resource_status()
            .map_or("", cfn::ResourceStatus::as_str)
            .to_string(),
        reason: event.resource_status_reason().map(str::to_string),
    }
}

/// The stack-level event that begins an operation (create, update, delete, import, or the
/// review of a CREATE change set). Rollbacks and cleanups continue an operation.
fn starts_operation(event: &cfn::StackEvent) -> bool {
    let stack_level = event.resource_type() == Some("AWS::CloudFormation::Stack")
        && event.physical_resource_id().is_some()
        && event.physical_resource_id() == event.stack_id();
    stack_level
        && matches!(
            event.resource_status().map(cfn::ResourceStatus::as_str),
            Some(
                "CREATE_IN_PROGRESS"
                    | "UPDATE_IN_PROGRESS"
                    | "DELETE_IN_PROGRESS"
                    | "IMPORT_IN_PROGRESS"
                    | "REVIEW_IN_PROGRESS"
            )
        )
}

/// The Content-Type of an uploaded template or asset, by its key's extension.
fn content_type(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, extension)| extension) {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "text/yaml",
        Some("py") => "text/x-python",
        Some("zip") => "application/zip",
        _ => "text/plain",
    }
}

/// Maps an SDK error to a typed outcome. The one place error codes and messages are read.
pub(super) fn classify<E>(error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            classify_service(error.code(), error.message(), status)
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            AwsError::Transport(DisplayErrorContext(&error).to_string())
        }
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            let text = DisplayErrorContext(&error).to_string();
            match unreachable_reason(&text) {
                Some(reason) => AwsError::Unreachable(reason.to_string()),
                None => AwsError::Transport(text),
            }
        }
        // Other dispatch failures happen before anything is sent: no credentials, no region,
        // a bad endpoint. Retrying does not help.
        _ => {
            let text = DisplayErrorContext(&error).to_string();
            if text.contains("no providers in chain provided credentials")
                || text.contains("failed to load credentials")
            {
                AwsError::NoCredentials
            } else {
                AwsError::Other(text)
            }
        }
    }
}

/// Why a connection could not be made at all, from the connector's error text; `None` for
/// failures worth retrying (a reset, a timeout).
fn unreachable_reason(text: &str) -> Option<&'static str> {
    if text.contains("Connection refused") {
        Some("connection refused")
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        Some("unknown host")
    } else {
        None
    }
}

fn classify_service(code: Option<&str>, message: Option<&str>, status: u16) -> AwsError {
    let message = message.unwrap_or_default().to_string();
    match code.unwrap_or_default() {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "SlowDown" => AwsError::Throttled(message),
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId" => AwsError::AccessDenied(message),
        // HeadObject's 404 carries no body; the SDK names it `NotFound`.
        "ChangeSetNotFound"
        | "ChangeSetNotFoundException"
        | "StackNotFoundException"
        | "NotFound"
        | "NoSuchKey"
        // SSM, IAM and SageMaker's names for a missing thing.
        | "ParameterNotFound"
        | "NoSuchEntity"
        | "NoSuchEntityException"
        | "ResourceNotFound"
        | "ResourceNotFoundException" => AwsError::NotFound,
        "" if status == 404 => AwsError::NotFound,
        "ValidationError" if names_missing_stack(&message) => AwsError::NotFound,
        "ValidationError"
        | "InvalidChangeSetStatus"
        | "InsufficientCapabilitiesException"
        | "AlreadyExistsException"
        | "TokenAlreadyExistsException"
        | "NoSuchBucket"
        | "InvalidBucketName" => AwsError::Validation(message),
        "" => AwsError::Other(if message.is_empty() {
            format!("HTTP {status} without an error code")
        } else {
            format!("HTTP {status}: {message}")
        }),
        code if message.is_empty() => AwsError::Other(code.to_string()),
        code => AwsError::Other(format!("{code}: {message}")),
    }
}

/// SageMaker answers a missing model package group with a ValidationException ("… does not
/// exist").
fn missing_as_not_found(error: AwsError) -> AwsError {
    match error {
        AwsError::Validation(message) | AwsError::Other(message)
            if message.contains("does not exist") || message.contains("Could not find") =>
        {
            AwsError::NotFound
        }
        other => other,
    }
}

/// "Stack with id X does not exist" (DescribeStacks, GetTemplate) and "Stack [X] does not
/// exist" (DescribeStackEvents, ListChangeSets, CreateChangeSet of type UPDATE …).
fn names_missing_stack(message: &str) -> bool {
    let message = message.trim_end_matches('.');
    message.starts_with("Stack") && message.ends_with("does not exist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_stack_messages_are_not_found() {
        for message in [
            "Stack with id mlops-dev-storage does not exist",
            "Stack [mlops-dev-storage] does not exist",
            "Stack:arn:aws:cloudformation:us-east-1:1:stack/x/y does not exist.",
        ] {
            assert_eq!(
                classify_service(Some("ValidationError"), Some(message), 400),
                AwsError::NotFound,
                "{message}"
            );
        }
        assert_eq!(
            classify_service(
                Some("ValidationError"),
                Some("Parameters: [Bucket] do not exist in the template"),
                400
            ),
            AwsError::Validation("Parameters: [Bucket] do not exist in the template".into())
        );
    }

    #[test]
    fn change_set_statuses_map_to_outcomes() {
        let no_changes = "The submitted information didn't contain changes. Submit different information to create a change set.";
        assert_eq!(
            change_set_status(Some("FAILED"), Some("UNAVAILABLE"), Some(no_changes)),
            ChangeSetStatus::NoChanges
        );
        assert_eq!(
            change_set_status(
                Some("FAILED"),
                None,
                Some("No updates are to be performed.")
            ),
            ChangeSetStatus::NoChanges
        );
        assert_eq!(
            change_set_status(Some("FAILED"), None, Some("Template format error")),
            ChangeSetStatus::Failed("Template format error".into())
        );
        assert_eq!(
            change_set_status(Some("CREATE_PENDING"), None, None),
            ChangeSetStatus::Pending
        );
        assert_eq!(
            change_set_status(Some("CREATE_COMPLETE"), Some("AVAILABLE"), None),
            ChangeSetStatus::Ready
        );
        assert!(matches!(
            change_set_status(Some("CREATE_COMPLETE"), Some("OBSOLETE"), None),
            ChangeSetStatus::Failed(reason) if reason.contains("obsolete")
        ));
    }
}
