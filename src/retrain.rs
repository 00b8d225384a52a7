//! The retrain function's configuration (`RETRAIN_CONFIG`, read by `retrain/handler.py`):
//! where new images arrive, where each model's count of them is kept, and when a model's
//! pipeline starts (a batch of new images, or a quiet period after the last). Built from the
//! environment as a typed value and written into the `retrain` stack as JSON; its size does not
//! grow with the number of models (a model's pipeline is `<pipeline_prefix><model>`).

use serde::Serialize;

use crate::config::Environment;

/// The variable the handler reads.
pub const VARIABLE: &str = "RETRAIN_CONFIG";
/// The project folder holding the function's code.
pub const CODE: &str = "retrain";
/// How often the function looks for models whose quiet period has passed.
pub const TICK: &str = "rate(1 minute)";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrainConfig {
    pub bucket: String,
    pub raw_prefix: String,
    pub state_prefix: String,
    /// A model's pipeline is this followed by the model's name.
    pub pipeline_prefix: String,
    pub batch_size: u32,
    pub quiet_minutes: u32,
    /// CloudWatch namespace of the metric lines.
    pub namespace: String,
    pub environment: String,
}

pub fn config(environment: &Environment) -> RetrainConfig {
    RetrainConfig {
        bucket: environment.storage.data_bucket_name.clone(),
        raw_prefix: environment.pipeline.raw_prefix.clone(),
        state_prefix: crate::config::RETRAIN_STATE_PREFIX.to_string(),
        pipeline_prefix: format!("{}-", environment.prefix()),
        batch_size: environment.review.retrain_batch_size,
        quiet_minutes: environment.review.retrain_quiet_minutes,
        namespace: format!("{}/{}/retrain", environment.project, environment.name),
        environment: environment.name.clone(),
    }
}

impl RetrainConfig {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_pipeline_is_the_prefix_and_its_name() {
        let environment =
            crate::config::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "staging")
                .expect("staging loads");
        let config = config(&environment);
        for model in &environment.models {
            assert_eq!(
                format!("{}{}", config.pipeline_prefix, model.name),
                model.pipeline_name
            );
        }
        assert_eq!(config.raw_prefix, "raw/");
        assert_eq!(config.state_prefix, "retrain/state/");
        assert!(config.to_json().len() < 1024);
    }
}
