//! The router function's configuration (`ROUTER_CONFIG`, read by `router/handler.py`), built
//! from the environment as a typed value and written into the router stack as JSON. Each
//! model's package is the stack parameter the plan fills (`${TreesPackageArn}`, substituted
//! by `!Sub`; empty while the model serves nothing).

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::{Environment, Model};

/// Lambda's limit on a function's environment variables, names and values together.
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const MAX_ENVIRONMENT_BYTES: usize = 4096;
/// The variable the handler reads.
pub const VARIABLE: &str = "ROUTER_CONFIG";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterConfig {
    pub parent: Target,
    /// By sub-group (a class name of the parent), the child serving it.
    pub routes: IndexMap<String, Target>,
    pub low_confidence_threshold: f64,
    pub max_image_bytes: u32,
    pub timeout_seconds: u32,
    /// CloudWatch namespace of the metric lines.
    pub namespace: String,
    pub environment: String,
    /// Where low-confidence photos are kept for people to review (`mlops-infra review`).
    pub review: ReviewTarget,
}

/// The data bucket's prefix the router keeps a parent's low-confidence photos under.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewTarget {
    pub bucket: String,
    pub prefix: String,
}

/// A model as the router calls it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub model: String,
    pub endpoint: String,
    /// `${<Model>PackageArn}`: the served package, filled in by the stack.
    pub package: String,
}

/// The children of `parent`, by the route (sub-group) each serves, in `routes` order.
pub fn routes<'a>(environment: &'a Environment, parent: &Model) -> Vec<(&'a str, &'a Model)> {
    environment
        .models
        .iter()
        .filter(|child| child.parent.as_deref() == Some(parent.name.as_str()))
        .filter_map(|child| Some((child.subgroup.as_deref()?, child)))
        .collect()
}

pub fn config(environment: &Environment, parent: &Model) -> RouterConfig {
    let target = |model: &Model| Target {
        model: model.name.clone(),
        endpoint: model.endpoint_name.clone(),
        package: format!("${{{}}}", crate::render::package_parameter(&model.name)),
    };
    let router = &environment.router;
    RouterConfig {
        parent: target(parent),
        routes: routes(environment, parent)
            .into_iter()
            .map(|(route, child)| (route.to_string(), target(child)))
            .collect(),
        low_confidence_threshold: router.low_confidence_threshold,
        max_image_bytes: router.max_image_bytes,
        timeout_seconds: router.timeout_seconds,
        namespace: format!("{}/{}/router", environment.project, environment.name),
        environment: environment.name.clone(),
        review: ReviewTarget {
            bucket: environment.storage.data_bucket_name.clone(),
            prefix: environment.review.pending_prefix(&parent.name),
        },
    }
}

impl RouterConfig {
    /// The JSON the stack substitutes the packages into.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The longest the variable can be once the packages are in: each placeholder replaced by
    /// a package ARN of the longest form (`arn:aws-us-gov:sagemaker:<region>:<account>:
    /// model-package/<group>/<version>`).
    pub fn largest_size(&self) -> usize {
        let targets = std::iter::once(&self.parent).chain(self.routes.values());
        let growth: usize = targets
            .map(|target| {
                let arn = format!(
                    "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:model-package/{}/99999",
                    target.endpoint
                );
                arn.len().saturating_sub(target.package.len())
            })
            .sum();
        VARIABLE.len() + self.to_json().len() + growth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staging() -> Environment {
        crate::config::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "staging")
            .expect("staging loads")
    }

    #[test]
    fn the_configuration_names_each_route_and_the_package_parameters() {
        let environment = staging();
        let parent = environment.model("plants").expect("plants");
        let config = config(&environment, parent);
        let document: serde_json::Value = serde_json::from_str(&config.to_json()).expect("json");
        assert_eq!(
            document["parent"],
            serde_json::json!({"model": "plants", "endpoint": "mlops-images-staging-plants",
                               "package": "${PlantsPackageArn}"})
        );
        let routes: Vec<&str> = config.routes.keys().map(String::as_str).collect();
        assert_eq!(routes, ["trees", "flowers", "grasses"]);
        assert_eq!(config.routes["trees"].package, "${TreesPackageArn}");
        assert_eq!(document["namespace"], "mlops-images/staging/router");
        assert_eq!(
            document["review"],
            serde_json::json!({"bucket": environment.storage.data_bucket_name,
                               "prefix": "review/pending/plants/"})
        );
        assert!(config.largest_size() < MAX_ENVIRONMENT_BYTES);
    }

    #[test]
    fn the_size_counts_the_packages_as_filled_in() {
        let environment = staging();
        let parent = environment.model("plants").expect("plants");
        let mut config = config(&environment, parent);
        let empty = config.to_json().len() + VARIABLE.len();
        assert!(config.largest_size() > empty + 4 * 60);
        for index in 0..40 {
            let mut child = config.routes["trees"].clone();
            child.endpoint = format!("mlops-images-staging-species-{index:02}");
            config.routes.insert(format!("group-{index:02}"), child);
        }
        assert!(config.largest_size() > MAX_ENVIRONMENT_BYTES);
    }
}
