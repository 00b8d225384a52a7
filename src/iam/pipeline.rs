//! What a SageMaker pipeline needs of its roles, read from its generated definition: the
//! pipeline role starts each step's job, passes the execution role, registers packages,
//! reads property files and records experiments; the execution role reads every input and
//! writes every output (S3 and the bucket key), writes job logs and pulls the job images.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::iam::requirements::Requirement;
use crate::iam::resolve::{Resolver, placeholder};
use crate::render::RenderedStack;

/// The requirements of every `AWS::SageMaker::Pipeline` in the stacks.
pub fn requirements(resolver: &Resolver) -> Vec<Requirement> {
    let mut out = Vec::new();
    for stack in resolver.stacks {
        for (logical_id, resource) in &stack.template.resources {
            if resource.resource_type != "AWS::SageMaker::Pipeline" {
                continue;
            }
            let Some(definition) = definition(resolver, stack, resource) else {
                continue;
            };
            let role = resource
                .properties
                .get("RoleArn")
                .map(|role| resolver.string(stack, role))
                .unwrap_or_default();
            let name = resource
                .properties
                .get("PipelineName")
                .map(|name| resolver.string(stack, name))
                .unwrap_or_else(|| placeholder(&stack.spec.id, logical_id));
            let mut pipeline = Pipeline {
                resolver,
                stack,
                definition: &definition,
                pipeline_role: role,
                name,
                model_roles: BTreeMap::new(),
                out: &mut out,
            };
            pipeline.derive();
        }
    }
    out
}

/// The definition JSON, inline or from the asset apply uploads.
fn definition(
    resolver: &Resolver,
    stack: &RenderedStack,
    resource: &crate::template::Resource,
) -> Option<Value> {
    let definition = resource.properties.get("PipelineDefinition")?;
    let text = match (
        definition.get("PipelineDefinitionBody"),
        definition.get("PipelineDefinitionS3Location"),
    ) {
        (Some(body), _) => resolver.string(stack, body),
        (None, Some(location)) => {
            let key = location.get("Key").map(|key| resolver.string(stack, key))?;
            stack
                .assets
                .iter()
                .find(|asset| asset.key == key)?
                .body
                .to_string()
        }
        _ => return None,
    };
    serde_json::from_str(&text).ok()
}

struct Pipeline<'a, 'r> {
    resolver: &'a Resolver<'r>,
    stack: &'a RenderedStack,
    definition: &'a Value,
    pipeline_role: String,
    name: String,
    /// Each model step's execution role, for the transform steps that use the model.
    model_roles: BTreeMap<String, String>,
    out: &'a mut Vec<Requirement>,
}

impl Pipeline<'_, '_> {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.resolver.partition(),
            self.resolver.environment.region,
            self.resolver.environment.account_id
        )
    }

    fn need(&mut self, role: &str, action: &str, resource: String, step: &str) {
        self.need_with(role, action, resource, step, BTreeMap::new());
    }

    fn need_with(
        &mut self,
        role: &str,
        action: &str,
        resource: String,
        step: &str,
        context: BTreeMap<String, String>,
    ) {
        self.out.push(Requirement {
            role_arn: role.to_string(),
            action: action.to_string(),
            resource,
            context,
            needed_by: format!("{}: pipeline step {step}", self.stack.spec.id),
        });
    }

    fn derive(&mut self) {
        let pipeline_role = self.pipeline_role.clone();
        let pipeline_name = self.name.to_lowercase();
        if self.definition.get("PipelineExperimentConfig").is_some() {
            let experiment = self.arn("sagemaker", &format!("experiment/{pipeline_name}"));
            let trial = self.arn("sagemaker", "experiment-trial/⟨execution⟩");
            let component = self.arn("sagemaker", "experiment-trial-component/⟨job⟩");
            for action in ["sagemaker:CreateExperiment", "sagemaker:DescribeExperiment"] {
                self.need(&pipeline_role, action, experiment.clone(), "(experiment)");
            }
            for action in ["sagemaker:CreateTrial", "sagemaker:DescribeTrial"] {
                self.need(&pipeline_role, action, trial.clone(), "(experiment)");
            }
            for action in [
                "sagemaker:CreateTrialComponent",
                "sagemaker:DescribeTrialComponent",
                "sagemaker:UpdateTrialComponent",
            ] {
                self.need(&pipeline_role, action, component.clone(), "(experiment)");
            }
            self.need(
                &pipeline_role,
                "sagemaker:AssociateTrialComponent",
                trial,
                "(experiment)",
            );
        }
        let steps = self
            .definition
            .get("Steps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for step in &steps {
            let name = step.get("Name").and_then(Value::as_str).unwrap_or("?");
            let kind = step.get("Type").and_then(Value::as_str).unwrap_or_default();
            let arguments = step.get("Arguments").cloned().unwrap_or(Value::Null);
            match kind {
                "Processing" => self.processing(name, &arguments, step),
                "Training" => self.training(name, &arguments),
                "Tuning" => self.tuning(name, &arguments),
                "Model" => self.model(name, &arguments),
                "Transform" => self.transform(name, &arguments),
                "RegisterModel" => self.register(name, &arguments),
                _ => {}
            }
        }
    }

    fn job(&mut self, step: &str, kind: &str, actions: &[&str]) {
        let role = self.pipeline_role.clone();
        let arn = self.arn("sagemaker", &format!("{kind}/⟨{step}⟩"));
        for action in actions {
            self.need(&role, action, arn.clone(), step);
        }
        self.need(&role, "sagemaker:AddTags", arn, step);
    }

    fn pass(&mut self, step: &str, execution_role: &str) {
        let role = self.pipeline_role.clone();
        let context = BTreeMap::from([(
            "iam:PassedToService".to_string(),
            "sagemaker.amazonaws.com".to_string(),
        )]);
        self.need_with(
            &role,
            "iam:PassRole",
            execution_role.to_string(),
            step,
            context,
        );
    }

    /// The execution role runs the job: logs and image pulls.
    fn runtime(&mut self, step: &str, role: &str, log_group: &str, image: Option<&str>) {
        let logs = self.arn("logs", &format!("log-group:/aws/sagemaker/{log_group}"));
        self.need(role, "logs:CreateLogGroup", logs.clone(), step);
        for action in [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ] {
            self.need(role, action, format!("{logs}:log-stream:⟨job⟩"), step);
        }
        if let Some(repository) = image.and_then(|image| self.repository(image)) {
            self.need(role, "ecr:GetAuthorizationToken", "*".to_string(), step);
            for action in [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ] {
                self.need(role, action, repository.clone(), step);
            }
        }
    }

    /// `123.dkr.ecr.eu-west-1.amazonaws.com/repo:tag` → the repository's ARN.
    fn repository(&self, image: &str) -> Option<String> {
        let (host, path) = image.split_once('/')?;
        let mut parts = host.split('.');
        let account = parts.next()?;
        let region = parts.nth(2)?;
        let repository = path.split([':', '@']).next()?;
        Some(format!(
            "arn:{}:ecr:{region}:{account}:repository/{repository}",
            self.resolver.partition()
        ))
    }

    fn read(&mut self, step: &str, role: &str, uri: &Value) {
        self.s3(step, role, uri, false);
    }

    fn write(&mut self, step: &str, role: &str, uri: &Value) {
        self.s3(step, role, uri, true);
    }

    /// S3 access under a URI (its static prefix): objects, the bucket listing, and the key.
    fn s3(&mut self, step: &str, role: &str, uri: &Value, write: bool) {
        let text = self.text(uri);
        let Some(rest) = text.strip_prefix("s3://") else {
            return;
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains('*') {
            return;
        }
        let partition = self.resolver.partition();
        let objects = format!(
            "arn:{partition}:s3:::{bucket}/{}*",
            key.trim_end_matches('*')
        );
        let actions: &[&str] = if write {
            &["s3:PutObject", "s3:AbortMultipartUpload"]
        } else {
            &["s3:GetObject"]
        };
        for action in actions {
            self.need(role, action, objects.clone(), step);
        }
        self.need(
            role,
            "s3:ListBucket",
            format!("arn:{partition}:s3:::{bucket}"),
            step,
        );
        if self.own_bucket(bucket)
            && let Some(key_arn) = self.resolver.bucket_key()
        {
            let action = if write {
                "kms:GenerateDataKey"
            } else {
                "kms:Decrypt"
            };
            self.need(role, action, key_arn, step);
        }
    }

    fn own_bucket(&self, bucket: &str) -> bool {
        let storage = &self.resolver.environment.storage;
        bucket == storage.data_bucket_name || bucket == storage.artifacts_bucket_name
    }

    /// A definition value as text: parameters by their default, anything known only at run
    /// time as `*`.
    fn text(&self, value: &Value) -> String {
        match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Object(map) => {
                if let Some(Value::String(path)) = map.get("Get") {
                    if let Some(name) = path.strip_prefix("Parameters.") {
                        return self.parameter_default(name).unwrap_or_else(|| "*".into());
                    }
                    return "*".into();
                }
                if let Some(join) = map.get("Std:Join") {
                    let separator = join.get("On").and_then(Value::as_str).unwrap_or_default();
                    let values = join
                        .get("Values")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    return values
                        .iter()
                        .map(|value| self.text(value))
                        .collect::<Vec<_>>()
                        .join(separator);
                }
                "*".into()
            }
            _ => "*".into(),
        }
    }

    fn parameter_default(&self, name: &str) -> Option<String> {
        self.definition
            .get("Parameters")?
            .as_array()?
            .iter()
            .find(|parameter| parameter.get("Name").and_then(Value::as_str) == Some(name))?
            .get("DefaultValue")
            .map(|value| self.text(value))
    }

    fn role_of(&self, arguments: &Value, key: &str) -> Option<String> {
        arguments.get(key).map(|role| self.text(role))
    }

    fn processing(&mut self, step: &str, arguments: &Value, definition: &Value) {
        self.job(
            step,
            "processing-job",
            &[
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
            ],
        );
        let Some(role) = self.role_of(arguments, "RoleArn") else {
            return;
        };
        self.pass(step, &role);
        let image = arguments
            .pointer("/AppSpecification/ImageUri")
            .map(|image| self.text(image));
        self.runtime(step, &role, "ProcessingJobs", image.as_deref());
        for input in array(arguments.pointer("/ProcessingInputs")) {
            if let Some(uri) = input.pointer("/S3Input/S3Uri") {
                self.read(step, &role, uri);
            }
        }
        let outputs = array(arguments.pointer("/ProcessingOutputConfig/Outputs"));
        for output in &outputs {
            if let Some(uri) = output.pointer("/S3Output/S3Uri") {
                self.write(step, &role, uri);
            }
        }
        // The pipeline service reads property files (the evaluation report) as its role.
        let pipeline_role = self.pipeline_role.clone();
        for file in array(definition.get("PropertyFiles")) {
            let wanted = file.get("OutputName").and_then(Value::as_str);
            if let Some(uri) = outputs
                .iter()
                .find(|output| output.get("OutputName").and_then(Value::as_str) == wanted)
                .and_then(|output| output.pointer("/S3Output/S3Uri"))
            {
                self.read(step, &pipeline_role, uri);
            }
        }
    }

    fn training_job(&mut self, step: &str, arguments: &Value) {
        let Some(role) = self.role_of(arguments, "RoleArn") else {
            return;
        };
        self.pass(step, &role);
        let image = arguments
            .pointer("/AlgorithmSpecification/TrainingImage")
            .map(|image| self.text(image));
        self.runtime(step, &role, "TrainingJobs", image.as_deref());
        for channel in array(arguments.get("InputDataConfig")) {
            if let Some(uri) = channel.pointer("/DataSource/S3DataSource/S3Uri") {
                self.read(step, &role, uri);
            }
        }
        if let Some(uri) = arguments.pointer("/OutputDataConfig/S3OutputPath") {
            self.write(step, &role, uri);
        }
    }

    fn training(&mut self, step: &str, arguments: &Value) {
        self.job(
            step,
            "training-job",
            &[
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
            ],
        );
        self.training_job(step, arguments);
    }

    fn tuning(&mut self, step: &str, arguments: &Value) {
        self.job(
            step,
            "hyper-parameter-tuning-job",
            &[
                "sagemaker:CreateHyperParameterTuningJob",
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            ],
        );
        let mut definitions: Vec<Value> = array(arguments.get("TrainingJobDefinitions"));
        definitions.extend(arguments.get("TrainingJobDefinition").cloned());
        for definition in &definitions {
            self.training_job(step, definition);
        }
    }

    fn model(&mut self, step: &str, arguments: &Value) {
        self.job(
            step,
            "model",
            &["sagemaker:CreateModel", "sagemaker:DescribeModel"],
        );
        let Some(role) = self.role_of(arguments, "ExecutionRoleArn") else {
            return;
        };
        self.pass(step, &role);
        let image = arguments
            .pointer("/PrimaryContainer/Image")
            .map(|image| self.text(image));
        self.runtime(step, &role, "TransformJobs", image.as_deref());
        if let Some(uri) = arguments.pointer("/PrimaryContainer/ModelDataUrl") {
            self.read(step, &role, uri);
        }
        // The transform job of a later step runs as this model's role.
        self.model_roles.insert(step.to_string(), role);
    }

    fn transform(&mut self, step: &str, arguments: &Value) {
        self.job(
            step,
            "transform-job",
            &[
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
            ],
        );
        // The job runs as the role of the model it names (a step's output).
        let role = arguments
            .pointer("/ModelName/Get")
            .and_then(Value::as_str)
            .and_then(|path| path.strip_prefix("Steps."))
            .and_then(|rest| rest.split('.').next())
            .and_then(|model_step| self.model_roles.get(model_step).cloned());
        let Some(role) = role else {
            return;
        };
        if let Some(uri) = arguments.pointer("/TransformInput/DataSource/S3DataSource/S3Uri") {
            self.read(step, &role, uri);
        }
        if let Some(uri) = arguments.pointer("/TransformOutput/S3OutputPath") {
            self.write(step, &role, uri);
        }
    }

    fn register(&mut self, step: &str, arguments: &Value) {
        let role = self.pipeline_role.clone();
        let Some(group) = arguments
            .get("ModelPackageGroupName")
            .map(|group| self.text(group).to_lowercase())
        else {
            return;
        };
        let package = self.arn("sagemaker", &format!("model-package/{group}/⟨version⟩"));
        let group_arn = self.arn("sagemaker", &format!("model-package-group/{group}"));
        self.need(&role, "sagemaker:CreateModelPackage", package.clone(), step);
        self.need(&role, "sagemaker:AddTags", package, step);
        self.need(
            &role,
            "sagemaker:DescribeModelPackageGroup",
            group_arn,
            step,
        );
    }
}

fn array(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}
