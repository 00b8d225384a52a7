//! The real `Platform`: SageMaker (registry, endpoints, pipelines), SageMaker Runtime, SSM,
//! CodeBuild, CloudWatch Logs, IAM, STS and S3 through aws-sdk-rust. Errors go through the
//! same classification as CloudFormation's (`sdk::classify`).

use aws_config::SdkConfig;
use aws_sdk_sagemaker::types as sm;

use super::call_log::CallLog;
use super::platform::{
    Build, BuildPhase, Decision, EndpointState, Identity, LogPage, LogStream, ModelPackage,
    PipelineExecution, Platform, Simulation,
};
use super::sdk::{classify, client, rfc3339, s3_client_logged};
use super::{AwsError, AwsResult};

/// The release flow's clients, sharing one configuration.
#[derive(Debug, Clone)]
pub struct SdkPlatform {
    pub(super) sagemaker: aws_sdk_sagemaker::Client,
    runtime: aws_sdk_sagemakerruntime::Client,
    ssm: aws_sdk_ssm::Client,
    codebuild: aws_sdk_codebuild::Client,
    pub(super) logs: aws_sdk_cloudwatchlogs::Client,
    iam: aws_sdk_iam::Client,
    pub(super) sts: aws_sdk_sts::Client,
    pub(super) s3: aws_sdk_s3::Client,
    /// For requests to the platform's own APIs, signed with the same credentials.
    config: SdkConfig,
}

impl SdkPlatform {
    pub fn from_config(config: &SdkConfig) -> Self {
        Self::from_config_logged(config, None)
    }

    /// The same, every call written to `log` (`-v`).
    pub fn from_config_logged(config: &SdkConfig, log: Option<&CallLog>) -> Self {
        SdkPlatform {
            sagemaker: client!(aws_sdk_sagemaker, config, log),
            runtime: client!(aws_sdk_sagemakerruntime, config, log),
            ssm: client!(aws_sdk_ssm, config, log),
            codebuild: client!(aws_sdk_codebuild, config, log),
            logs: client!(aws_sdk_cloudwatchlogs, config, log),
            iam: client!(aws_sdk_iam, config, log),
            sts: client!(aws_sdk_sts, config, log),
            s3: s3_client_logged(config, log),
            config: config.clone(),
        }
    }
}

/// SageMaker answers a missing endpoint, pipeline or package with a ValidationException
/// ("Could not find …", "… does not exist").
fn sagemaker_missing(error: AwsError) -> AwsError {
    match error {
        AwsError::Validation(message) | AwsError::Other(message)
            if message.contains("Could not find")
                || message.contains("does not exist")
                || message.contains("not found") =>
        {
            AwsError::NotFound
        }
        other => other,
    }
}

/// The `s3://` URI of a package's classes.json, from its customer metadata.
pub(super) fn classes_uri(
    metadata: Option<&std::collections::HashMap<String, String>>,
) -> Option<String> {
    metadata
        .and_then(|properties| properties.get(crate::pipeline::generate::CLASSES_METADATA))
        .cloned()
}

fn found<T>(result: AwsResult<T>) -> AwsResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AwsError::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

fn time(time: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    time.and_then(rfc3339)
}

/// A package from the fields ListModelPackages and DescribeModelPackage share.
fn package(
    arn: &str,
    group: &str,
    version: Option<i32>,
    approval: Option<&sm::ModelApprovalStatus>,
    created: Option<&aws_smithy_types::DateTime>,
) -> ModelPackage {
    ModelPackage {
        arn: arn.to_string(),
        group: group.to_string(),
        version: version
            .and_then(|version| u64::try_from(version).ok())
            .unwrap_or_default(),
        approval: approval
            .map(|status| status.as_str().to_string())
            .unwrap_or_default(),
        created: time(created),
        approval_description: None,
        metrics_uri: None,
        classes_uri: None,
    }
}

fn split_s3_uri(uri: &str) -> AwsResult<(&str, &str)> {
    uri.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| AwsError::Validation(format!("`{uri}` is not an s3://bucket/key URI")))
}

impl Platform for SdkPlatform {
    async fn model_packages(&self, group: &str) -> AwsResult<Vec<ModelPackage>> {
        let mut packages = Vec::new();
        let mut pages = self
            .sagemaker
            .list_model_packages()
            .model_package_group_name(group)
            .sort_by(sm::ModelPackageSortBy::CreationTime)
            .sort_order(sm::SortOrder::Descending)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page.map_err(classify).map_err(sagemaker_missing) {
                Ok(page) => page,
                Err(AwsError::NotFound) => return Ok(Vec::new()),
                Err(error) => return Err(error),
            };
            for summary in page.model_package_summary_list() {
                packages.push(package(
                    summary.model_package_arn().unwrap_or_default(),
                    group,
                    summary.model_package_version(),
                    summary.model_approval_status(),
                    summary.creation_time(),
                ));
            }
        }
        packages.sort_by_key(|package| std::cmp::Reverse(package.version));
        Ok(packages)
    }

    async fn model_package(&self, arn: &str) -> AwsResult<Option<ModelPackage>> {
        let described = self
            .sagemaker
            .describe_model_package()
            .model_package_name(arn)
            .send()
            .await
            .map_err(classify)
            .map_err(sagemaker_missing);
        Ok(found(described)?.map(|described| ModelPackage {
            approval_description: described.approval_description().map(str::to_string),
            classes_uri: classes_uri(described.customer_metadata_properties()),
            metrics_uri: described
                .model_metrics()
                .and_then(|metrics| metrics.model_quality())
                .and_then(|quality| quality.statistics())
                .and_then(|statistics| statistics.s3_uri())
                .map(str::to_string),
            ..package(
                described.model_package_arn().unwrap_or(arn),
                described.model_package_group_name().unwrap_or_default(),
                described.model_package_version(),
                described.model_approval_status(),
                described.creation_time(),
            )
        }))
    }

    async fn set_approval(&self, arn: &str, approval: &str, description: &str) -> AwsResult<()> {
        self.sagemaker
            .update_model_package()
            .model_package_arn(arn)
            .model_approval_status(sm::ModelApprovalStatus::from(approval))
            .approval_description(description)
            .send()
            .await
            .map_err(classify)
            .map_err(sagemaker_missing)?;
        Ok(())
    }

    async fn read_object(&self, uri: &str) -> AwsResult<Option<String>> {
        let (bucket, key) = split_s3_uri(uri)?;
        let object = match self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)
        {
            Ok(object) => object,
            Err(AwsError::NotFound) => return Ok(None),
            Err(error) => return Err(error),
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|error| AwsError::Transport(format!("reading {uri}: {error}")))?;
        Ok(Some(
            String::from_utf8_lossy(&bytes.into_bytes()).into_owned(),
        ))
    }

    async fn parameter(&self, name: &str) -> AwsResult<Option<String>> {
        let got = self
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(classify);
        Ok(found(got)?.and_then(|output| {
            output
                .parameter()
                .and_then(|parameter| parameter.value())
                .map(str::to_string)
        }))
    }

    async fn put_parameter(&self, name: &str, value: &str) -> AwsResult<()> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn endpoint(&self, name: &str) -> AwsResult<Option<EndpointState>> {
        let described = self
            .sagemaker
            .describe_endpoint()
            .endpoint_name(name)
            .send()
            .await
            .map_err(classify)
            .map_err(sagemaker_missing);
        Ok(found(described)?.map(|endpoint| EndpointState {
            status: endpoint
                .endpoint_status()
                .map(|status| status.as_str().to_string())
                .unwrap_or_default(),
            failure_reason: endpoint.failure_reason().map(str::to_string),
        }))
    }

    async fn post_signed(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> AwsResult<(u16, Vec<u8>)> {
        super::signed_http::post(&self.config, "execute-api", url, content_type, body).await
    }

    async fn invoke_endpoint(
        &self,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> AwsResult<Vec<u8>> {
        let output = self
            .runtime
            .invoke_endpoint()
            .endpoint_name(name)
            .content_type(content_type)
            .accept("application/json")
            .body(aws_smithy_types::Blob::new(body.to_vec()))
            .send()
            .await
            .map_err(classify)?;
        Ok(output
            .body()
            .map(|body| body.as_ref().to_vec())
            .unwrap_or_default())
    }

    async fn start_pipeline(
        &self,
        pipeline: &str,
        parameters: &[(String, String)],
    ) -> AwsResult<String> {
        let mut request = self
            .sagemaker
            .start_pipeline_execution()
            .pipeline_name(pipeline);
        for (name, value) in parameters {
            request = request
                .pipeline_parameters(sm::Parameter::builder().name(name).value(value).build());
        }
        let output = request
            .send()
            .await
            .map_err(classify)
            .map_err(sagemaker_missing)?;
        Ok(output
            .pipeline_execution_arn()
            .unwrap_or_default()
            .to_string())
    }

    async fn pipeline_executions(
        &self,
        pipeline: &str,
        max: i32,
    ) -> AwsResult<Vec<PipelineExecution>> {
        let output = self
            .sagemaker
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .sort_by(sm::SortPipelineExecutionsBy::CreationTime)
            .sort_order(sm::SortOrder::Descending)
            .max_results(max)
            .send()
            .await
            .map_err(classify)
            .map_err(sagemaker_missing)?;
        Ok(output
            .pipeline_execution_summaries()
            .iter()
            .map(|summary| PipelineExecution {
                arn: summary
                    .pipeline_execution_arn()
                    .unwrap_or_default()
                    .to_string(),
                status: summary
                    .pipeline_execution_status()
                    .map(|status| status.as_str().to_string())
                    .unwrap_or_default(),
                started: time(summary.start_time()),
                failure_reason: summary
                    .pipeline_execution_failure_reason()
                    .map(str::to_string),
            })
            .collect())
    }

    async fn start_build(
        &self,
        project: &str,
        variables: &[(String, String)],
    ) -> AwsResult<String> {
        let mut request = self.codebuild.start_build().project_name(project);
        for (name, value) in variables {
            request = request.environment_variables_override(
                aws_sdk_codebuild::types::EnvironmentVariable::builder()
                    .name(name)
                    .value(value)
                    .r#type(aws_sdk_codebuild::types::EnvironmentVariableType::Plaintext)
                    .build()
                    .map_err(|error| AwsError::Validation(error.to_string()))?,
            );
        }
        let output = request.send().await.map_err(classify)?;
        output
            .build_value()
            .and_then(|build| build.id())
            .map(str::to_string)
            .ok_or_else(|| AwsError::Other("StartBuild returned no build id".into()))
    }

    async fn build(&self, id: &str) -> AwsResult<Build> {
        let output = self
            .codebuild
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .map_err(classify)?;
        let build = output.builds().first().ok_or(AwsError::NotFound)?;
        Ok(Build {
            id: id.to_string(),
            status: build
                .build_status()
                .map(|status| status.as_str().to_string())
                .unwrap_or_default(),
            phases: build
                .phases()
                .iter()
                .map(|phase| BuildPhase {
                    name: phase
                        .phase_type()
                        .map(|phase| phase.as_str().to_string())
                        .unwrap_or_default(),
                    status: phase
                        .phase_status()
                        .map(|status| status.as_str().to_string()),
                    seconds: phase.duration_in_seconds(),
                })
                .collect(),
            log: build.logs().and_then(|logs| {
                Some(LogStream {
                    group: logs.group_name()?.to_string(),
                    stream: logs.stream_name()?.to_string(),
                })
            }),
        })
    }

    async fn log_events(&self, stream: &LogStream, token: Option<&str>) -> AwsResult<LogPage> {
        let mut request = self
            .logs
            .get_log_events()
            .log_group_name(&stream.group)
            .log_stream_name(&stream.stream)
            .start_from_head(true);
        if let Some(token) = token {
            request = request.next_token(token);
        }
        let output = match request.send().await.map_err(classify) {
            Ok(output) => output,
            // The stream appears a little after the build starts.
            Err(AwsError::NotFound) => {
                return Ok(LogPage {
                    lines: Vec::new(),
                    next: token.map(str::to_string),
                });
            }
            Err(error) => return Err(error),
        };
        Ok(LogPage {
            lines: output
                .events()
                .iter()
                .filter_map(|event| event.message())
                .map(|message| message.trim_end().to_string())
                .collect(),
            next: output.next_forward_token().map(str::to_string),
        })
    }

    async fn caller(&self) -> AwsResult<Identity> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(classify)?;
        Ok(Identity {
            account: identity.account().unwrap_or_default().to_string(),
            arn: identity.arn().unwrap_or_default().to_string(),
        })
    }

    async fn role_arn(&self, name: &str) -> AwsResult<Option<String>> {
        let role = self
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(classify);
        Ok(found(role)?.and_then(|output| output.role().map(|role| role.arn().to_string())))
    }

    async fn simulate(&self, principal: &str, simulation: &Simulation) -> AwsResult<Vec<Decision>> {
        let context: Vec<aws_sdk_iam::types::ContextEntry> = simulation
            .context
            .iter()
            .map(|(key, value)| {
                aws_sdk_iam::types::ContextEntry::builder()
                    .context_key_name(key)
                    .context_key_values(value)
                    .context_key_type(aws_sdk_iam::types::ContextKeyTypeEnum::String)
                    .build()
            })
            .collect();
        let mut decisions = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = self
                .iam
                .simulate_principal_policy()
                .policy_source_arn(principal)
                .set_action_names(Some(simulation.actions.clone()))
                .set_resource_arns(
                    (!simulation.resources.is_empty()).then(|| simulation.resources.clone()),
                )
                .set_context_entries(Some(context.clone()))
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(classify)?;
            decisions.extend(output.evaluation_results().iter().map(|result| Decision {
                action: result.eval_action_name().to_string(),
                resource: result.eval_resource_name().unwrap_or("*").to_string(),
                decision: result.eval_decision().as_str().to_string(),
            }));
            if !output.is_truncated() {
                break;
            }
            marker = output.marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(decisions)
    }
}
