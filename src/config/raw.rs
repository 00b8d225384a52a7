//! The raw serde mirror of an environment file: every key optional, unknown keys rejected.
//!
//! Each file (an environment and the bases it extends) parses into this shape on its own, so an
//! unknown key or a wrong type is reported against the file and line that holds it. Nothing
//! outside `config` reads these types: `environment.rs` turns them into an `Environment`.

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    /// Name of a shared base file (`_common` for `environments/_common.yaml`); `config::load`
    /// follows it before this struct is read, so only its presence here matters.
    #[allow(dead_code)]
    pub extends: Option<String>,
    pub project: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub protected: Option<bool>,
    pub tags: Option<IndexMap<String, String>>,
    pub storage: Option<RawStorage>,
    pub iam: Option<RawIam>,
    pub sagemaker: Option<RawSageMaker>,
    pub models: Option<Vec<RawModel>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub data_bucket_name: Option<String>,
    pub artifacts_bucket_name: Option<String>,
    pub access_logs_bucket_name: Option<String>,
    pub noncurrent_version_expiration_days: Option<u32>,
    pub access_log_expiration_days: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIam {
    pub role_path: Option<String>,
    pub permissions_boundary_arn: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSageMaker {
    pub processing_instance_type: Option<String>,
    pub training_instance_type: Option<String>,
    pub endpoint_instance_type: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: Option<String>,
    pub description: Option<String>,
    /// For a child model: the parent model that routes images to it.
    pub parent: Option<String>,
    /// For a child model: the parent's route (sub-group) this model serves.
    pub subgroup: Option<String>,
    /// For a parent model: the sub-groups it routes images to.
    pub routes: Option<Vec<String>>,
    pub processing_instance_type: Option<String>,
    pub training_instance_type: Option<String>,
    pub endpoint_instance_type: Option<String>,
}
