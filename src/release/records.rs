//! What the release flow records on an environment, as SSM String parameters holding JSON:
//! the last acceptance test of each endpoint (`/<project>/<env>/acceptance/<model>`) and the
//! package promoted to it (`/<project>/<env>/promoted/<model>`). `promote` requires the first
//! on the source environment and writes the second on the target, which `serving: promoted`
//! reads when planning.

use serde::{Deserialize, Serialize};

use crate::config::Environment;

/// The SSM parameter holding `model`'s last acceptance test on `environment`.
pub fn acceptance_parameter(environment: &Environment, model: &str) -> String {
    format!(
        "/{}/{}/acceptance/{model}",
        environment.project, environment.name
    )
}

/// The SSM parameter holding the package promoted to `model`'s endpoint on `environment`.
pub fn promotion_parameter(environment: &Environment, model: &str) -> String {
    format!(
        "/{}/{}/promoted/{model}",
        environment.project, environment.name
    )
}

/// One endpoint's acceptance test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceRecord {
    pub endpoint: String,
    /// The package the endpoint served when tested (its stack's `ModelPackageArn`).
    pub package_arn: String,
    pub passed: bool,
    /// RFC 3339.
    pub tested_at: String,
    pub samples: usize,
    pub slowest_milliseconds: u64,
    pub max_latency_milliseconds: u32,
    /// The first failures, for the record; `test`'s output lists all.
    pub failures: Vec<String>,
}

/// A package promoted to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRecord {
    pub package_arn: String,
    pub version: u64,
    /// The environment whose acceptance test it passed.
    pub from: String,
    /// RFC 3339.
    pub promoted_at: String,
}

/// Records are small JSON documents; an SSM String parameter holds up to 4 KB.
pub fn to_json<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// Parses a record, with an error that names the parameter.
pub fn from_json<T: for<'de> Deserialize<'de>>(parameter: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text)
        .map_err(|error| format!("SSM parameter {parameter} does not hold a valid record: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_name_the_parameter() {
        let record = PromotionRecord {
            package_arn: "arn:aws:sagemaker:eu-west-1:1:model-package/g/3".into(),
            version: 3,
            from: "staging".into(),
            promoted_at: "2026-11-25T10:00:00Z".into(),
        };
        let text = to_json(&record);
        assert_eq!(from_json::<PromotionRecord>("/p", &text), Ok(record));
        let error = from_json::<PromotionRecord>("/p/prod/promoted/trees", "{}").unwrap_err();
        assert!(
            error.starts_with("SSM parameter /p/prod/promoted/trees does not hold"),
            "{error}"
        );
    }
}
