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
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
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
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitoring {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_emails: Option<Vec<String>>,
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
}
