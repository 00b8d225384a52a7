//! Typed `Arguments` of the job steps the generator writes: Processing (CreateProcessingJob),
//! Training (CreateTrainingJob), Tuning (CreateHyperParameterTuningJob), RegisterModel
//! (CreateModelPackage) and Fail. Only the fields the generator sets are typed; every other
//! field of the request lands in `extra`, so a definition written by anyone else round-trips.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expression::Argument;

/// Fields a model does not type, kept in their original order.
pub type Extra = IndexMap<String, Value>;

/// String-valued maps such as `Environment` or `HyperParameters`.
pub type StringMap = IndexMap<String, Argument<String>>;

impl<T: Default> Default for Argument<T> {
    fn default() -> Self {
        Argument::Literal(T::default())
    }
}

// ---- Processing (CreateProcessingJob) ----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingArguments {
    pub processing_resources: ProcessingResources,
    pub app_specification: AppSpecification,
    pub role_arn: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_inputs: Option<Vec<ProcessingInput>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_output_config: Option<ProcessingOutputConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<StringMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_condition: Option<StoppingCondition>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingResources {
    pub cluster_config: ClusterConfig,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterConfig {
    pub instance_count: Argument<u32>,
    pub instance_type: Argument<String>,
    #[serde(rename = "VolumeSizeInGB")]
    pub volume_size_in_gb: Argument<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppSpecification {
    pub image_uri: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_entrypoint: Option<Vec<Argument<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_arguments: Option<Vec<Argument<String>>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingInput {
    pub input_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_managed: Option<Argument<bool>>,
    #[serde(rename = "S3Input", skip_serializing_if = "Option::is_none")]
    pub s3_input: Option<S3Input>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Input {
    #[serde(rename = "S3Uri")]
    pub s3_uri: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_path: Option<Argument<String>>,
    #[serde(rename = "S3DataType")]
    pub s3_data_type: Argument<String>,
    #[serde(rename = "S3InputMode", skip_serializing_if = "Option::is_none")]
    pub s3_input_mode: Option<Argument<String>>,
    #[serde(
        rename = "S3DataDistributionType",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_data_distribution_type: Option<Argument<String>>,
    #[serde(rename = "S3CompressionType", skip_serializing_if = "Option::is_none")]
    pub s3_compression_type: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingOutputConfig {
    pub outputs: Vec<ProcessingOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessingOutput {
    pub output_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_managed: Option<Argument<bool>>,
    #[serde(rename = "S3Output", skip_serializing_if = "Option::is_none")]
    pub s3_output: Option<S3Output>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Output {
    #[serde(rename = "S3Uri")]
    pub s3_uri: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_path: Option<Argument<String>>,
    #[serde(rename = "S3UploadMode")]
    pub s3_upload_mode: Argument<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoppingCondition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runtime_in_seconds: Option<Argument<u32>>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Training (CreateTrainingJob) ----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrainingArguments {
    pub algorithm_specification: AlgorithmSpecification,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hyper_parameters: Option<StringMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_data_config: Option<Vec<Channel>>,
    pub output_data_config: OutputDataConfig,
    pub resource_config: ResourceConfig,
    pub role_arn: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_condition: Option<StoppingCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlgorithmSpecification {
    /// Absent when the job names a marketplace `AlgorithmName` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_image: Option<Argument<String>>,
    pub training_input_mode: Argument<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An input channel of a training job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Channel {
    pub channel_name: String,
    pub data_source: DataSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Argument<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_mode: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataSource {
    #[serde(rename = "S3DataSource", skip_serializing_if = "Option::is_none")]
    pub s3_data_source: Option<S3DataSource>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3DataSource {
    #[serde(rename = "S3DataType")]
    pub s3_data_type: Argument<String>,
    #[serde(rename = "S3Uri")]
    pub s3_uri: Argument<String>,
    #[serde(
        rename = "S3DataDistributionType",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_data_distribution_type: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputDataConfig {
    #[serde(rename = "S3OutputPath")]
    pub s3_output_path: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceConfig {
    /// Absent when the job uses heterogeneous `InstanceGroups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<Argument<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<Argument<String>>,
    #[serde(rename = "VolumeSizeInGB")]
    pub volume_size_in_gb: Argument<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Tuning (CreateHyperParameterTuningJob) ----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TuningArguments {
    pub hyper_parameter_tuning_job_config: TuningJobConfig,
    /// Absent when the job uses several `TrainingJobDefinitions` (kept in `extra`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_job_definition: Option<TrainingJobDefinition>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TuningJobConfig {
    pub strategy: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hyper_parameter_tuning_job_objective: Option<TuningObjective>,
    pub resource_limits: ResourceLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_ranges: Option<ParameterRanges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_job_early_stopping_type: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TuningObjective {
    /// `Maximize` or `Minimize`.
    #[serde(rename = "Type")]
    pub objective_type: Argument<String>,
    pub metric_name: Argument<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_training_jobs: Option<Argument<u32>>,
    pub max_parallel_training_jobs: Argument<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterRanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuous_parameter_ranges: Option<Vec<NumericRange>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer_parameter_ranges: Option<Vec<NumericRange>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categorical_parameter_ranges: Option<Vec<CategoricalRange>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A continuous or integer range; the API takes the bounds as strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NumericRange {
    pub name: String,
    pub min_value: Argument<String>,
    pub max_value: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_type: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CategoricalRange {
    pub name: String,
    pub values: Vec<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrainingJobDefinition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_hyper_parameters: Option<StringMap>,
    pub algorithm_specification: AlgorithmSpecification,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_data_config: Option<Vec<Channel>>,
    pub output_data_config: OutputDataConfig,
    /// Absent when `HyperParameterTuningResourceConfig` is used instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_config: Option<ResourceConfig>,
    pub role_arn: Argument<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_condition: Option<StoppingCondition>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- RegisterModel (CreateModelPackage) ----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterModelArguments {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_package_group_name: Option<Argument<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_specification: Option<InferenceSpecification>,
    /// `PendingManualApproval`, `Approved` or `Rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_approval_status: Option<Argument<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_metrics: Option<ModelMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_metadata_properties: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InferenceSpecification {
    pub containers: Vec<ModelContainer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_content_types: Option<Vec<Argument<String>>>,
    #[serde(
        rename = "SupportedResponseMIMETypes",
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_response_mime_types: Option<Vec<Argument<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_realtime_inference_instance_types: Option<Vec<Argument<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_transform_instance_types: Option<Vec<Argument<String>>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModelContainer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Argument<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_data_url: Option<Argument<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModelMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_quality: Option<ModelQuality>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModelQuality {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<MetricsSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<MetricsSource>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricsSource {
    pub content_type: Argument<String>,
    #[serde(rename = "S3Uri")]
    pub s3_uri: Argument<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Fail ----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailArguments {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<Argument<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn untyped_request_fields_survive_a_round_trip() {
        let arguments = json!({
            "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File",
                "EnableSageMakerMetricsTimeSeries": true},
            "OutputDataConfig": {"S3OutputPath": "s3://b/"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "CheckpointConfig": {"S3Uri": "s3://b/checkpoints/"},
            "DebugHookConfig": {"CollectionConfigurations": []}
        });
        let typed: TrainingArguments = serde_json::from_value(arguments.clone()).expect("parses");
        assert_eq!(typed.extra.len(), 2);
        assert_eq!(typed.algorithm_specification.extra.len(), 1);
        assert_eq!(serde_json::to_value(&typed).expect("serializes"), arguments);
    }

    #[test]
    fn integers_stay_integers() {
        let config =
            json!({"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30});
        let typed: ClusterConfig = serde_json::from_value(config.clone()).expect("parses");
        assert_eq!(typed.volume_size_in_gb, Argument::Literal(30));
        assert_eq!(serde_json::to_value(&typed).expect("serializes"), config);
    }
}
