//! The raw serde mirror of an environment file: every key optional, unknown keys rejected.
//!
//! Each file (an environment and the bases it extends) parses into this shape on its own, so an
//! unknown key or a wrong type is reported against the file and line that holds it; the parsed
//! files are serialized back (unset keys left out) to be merged. Nothing
//! outside `config` reads these types: `environment.rs` turns them into an `Environment`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    /// Name of a shared base file (`_common` for `environments/_common.yaml`); `config::load`
    /// follows it before this struct is read, so only its presence here matters.
    #[allow(dead_code)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// AWS profile the commands use for this environment; unset: the standard credential chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<IndexMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<RawStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam: Option<RawIam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sagemaker: Option<RawSageMaker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<RawModel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<RawMonitoring>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<RawPipeline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<RawApi>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<RawCi>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<RawAcceptance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<RawRegistry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<RawRouter>,
    /// Human review of the photos the router was unsure of, and the retraining it feeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<RawReview>,
    /// How `apply` schedules dependent stacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<RawApply>,
}

/// How `apply` schedules dependent stacks.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApply {
    /// `configuration_complete` or `complete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_dependents_at: Option<String>,
}

/// Human review and the debounced new-data trigger.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawReview {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrain_batch_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrain_quiet_minutes: Option<u32>,
}

/// The router in front of a parent model and its children (`POST /identify`).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouter {
    /// Answers whose top-1 confidence (parent or child) is below this are flagged
    /// `low_confidence`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_confidence_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_burst_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_image_bytes: Option<u32>,
}

/// The model registry's sharing with other accounts.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// Accounts whose endpoints may serve this environment's packages (promotion targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_with_accounts: Option<Vec<String>>,
}

/// What `mlops-infra test` checks on each endpoint.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcceptance {
    /// Folder of sample images, relative to the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_milliseconds: Option<u32>,
}

/// Which model package an endpoint serves: `latest-approved`, `promoted`, or a version number.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RawServing {
    Version(u64),
    Named(String),
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// EventBridge schedule expression (`rate(7 days)`, `cron(...)`); unset: no schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrain_on_new_data: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_image_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_formats: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<RawSplit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuning: Option<RawTuning>,
    /// No longer set by hand (the pipeline reads it from the data); kept to say so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_training_samples: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing: Option<RawProcessing>,
    /// Path of the accuracy in the evaluation report, read by the registration condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_path: Option<String>,
}

/// The data steps' processing jobs.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcessing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_size_gb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runtime_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTuning {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_jobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_jobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective_metric: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<IndexMap<String, RawRange>>,
}

/// A hyperparameter range: `min`/`max` (with `integer` and `scaling`), or `values`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// API Gateway's CloudWatch role is one per account and region; set false where another
    /// stack already manages it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manage_account_logging_role: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_burst_limit: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCi {
    /// `github`, `codecommit` or `codeconnections`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// GitHub/GitLab/Bitbucket HTTPS URL, or the CodeCommit repository name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// CodeConnections connection ARN (provider `codeconnections`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_arn: Option<String>,
    /// Deploy on every push to the branch; false leaves builds to `mlops-infra ci run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_on_push: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// The package every endpoint serves unless its model says otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<RawServing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    /// Autoscaling bounds; both unset means no autoscaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_invocations_per_instance: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_alarm_milliseconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_alarm_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_capture_percentage: Option<u32>,
    /// In protected environments, minutes CloudFormation watches the endpoint's alarms after
    /// an update before it keeps it (rollback triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_monitoring_minutes: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitoring {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_emails: Option<Vec<String>>,
    /// When each endpoint's monitoring job runs (EventBridge schedule expression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Hours of captured traffic each run reports on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<u32>,
    /// Alarm when the class-drift PSI reaches this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_alarm_psi: Option<f64>,
    /// Alarm when the mean top-1 confidence falls below this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_alarm_below: Option<f64>,
    /// Alarm when the share of low-confidence answers rises above this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_confidence_alarm_above: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts_bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_logs_bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log_expiration_days: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_boundary_arn: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSageMaker {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_instance_type: Option<String>,
    /// Processing image; defaults to SageMaker's scikit-learn image for the region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_image_uri: Option<String>,
    /// Training image; defaults to the built-in image-classification algorithm for the region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_image_uri: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For a child model: the parent model that routes images to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For a child model: the parent's route (sub-group) this model serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subgroup: Option<String>,
    /// For a parent model: the sub-groups it routes images to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_instance_type: Option<String>,
    /// Overrides `pipeline.accuracy_threshold` for this model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_threshold: Option<f64>,
    /// Number of classes the model tells apart; a parent defaults to its number of routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<u32>,
    /// Overrides `endpoint.serving` for this model's endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<RawServing>,
}
