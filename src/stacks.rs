//! Which stacks an environment has, and which template renders each.

use serde::Serialize;

use crate::config::Environment;

/// Stacks every environment has: (stack id, template file in `templates/`).
const SHARED: &[(&str, &str)] = &[
    ("storage", "storage.yaml.tera"),
    ("iam", "iam.yaml.tera"),
    ("monitoring", "monitoring.yaml.tera"),
    ("api", "api.yaml.tera"),
    ("ci", "ci.yaml.tera"),
    ("retrain", "retrain.yaml.tera"),
];

/// The stack that creates the CloudFormation service role, and that role's name suffix.
/// Every stack outside the role's own bootstrap (this stack and the stacks it consumes) is
/// deployed through the role, so CI needs only to manage stacks and pass that role.
pub const DEPLOY_ROLE_STACK: &str = "iam";
pub const DEPLOY_ROLE: &str = "cloudformation";

/// Stacks earlier layouts had and this one does not: `plan` reads them when deployed, and
/// apply moves the resources a current stack declares out of them (CloudFormation stack
/// refactoring), then deletes what is left empty. `registry` held every model package group;
/// each group now lives in its model's pipeline stack, so no shared stack grows with models.
pub const RETIRED: &[&str] = &["registry"];

/// Whether the environment has a shared stack; most always do.
fn has_stack(environment: &Environment, id: &str) -> bool {
    match id {
        "ci" => environment.ci.is_some(),
        "retrain" => environment.pipeline.retrain_on_new_data,
        _ => true,
    }
}

/// Stacks each model has, named `<id>-<model>`.
const PER_MODEL: &[(&str, &str)] = &[
    ("pipeline", "pipeline.yaml.tera"),
    ("endpoint", "endpoint.yaml.tera"),
];

/// The per-model stack whose template receives the generated pipeline definition.
const PIPELINE_STACK: &str = "pipeline";

/// One stack of an environment, before rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackSpec {
    /// Short id, unique in the environment: `storage`, `pipeline-plants`.
    pub id: String,
    /// CloudFormation stack name: `<project>-<environment>-<id>`.
    pub name: String,
    /// Template file, relative to `templates/`.
    pub template: String,
    /// The model a per-model stack is for.
    pub model: Option<String>,
    /// Its template gets `pipeline_definition`, the model's generated pipeline (JSON).
    pub pipeline_definition: bool,
    /// The project folder of the function code its template deploys (`router`, `retrain`): shipped as
    /// a content-addressed ZIP package.
    pub function: Option<String>,
    /// Its template gets `monitoring_definition`, the model's monitoring pipeline (JSON).
    pub monitoring_definition: bool,
}

/// The per-model stack whose template receives the monitoring pipeline definition.
const MONITORING_STACK: &str = "endpoint";

/// The stack in front of each parent model: `POST /identify` through its children.
const ROUTER: (&str, &str) = ("router", "router.yaml.tera");
/// The project folder holding the router function's code.
pub const ROUTER_CODE: &str = "router";

pub fn stacks(environment: &Environment) -> Vec<StackSpec> {
    let prefix = environment.prefix();
    let shared = SHARED
        .iter()
        .filter(|(id, _)| has_stack(environment, id))
        .map(|(id, template)| StackSpec {
            id: id.to_string(),
            name: format!("{prefix}-{id}"),
            template: template.to_string(),
            model: None,
            pipeline_definition: false,
            function: (*id == "retrain").then(|| crate::retrain::CODE.to_string()),
            monitoring_definition: false,
        });
    let prefix = &prefix;
    let per_model = PER_MODEL.iter().flat_map(|(id, template)| {
        environment.models.iter().map(move |model| StackSpec {
            id: format!("{id}-{}", model.name),
            name: format!("{prefix}-{id}-{}", model.name),
            template: template.to_string(),
            model: Some(model.name.clone()),
            pipeline_definition: *id == PIPELINE_STACK,
            function: None,
            monitoring_definition: *id == MONITORING_STACK,
        })
    });
    let routers = environment
        .models
        .iter()
        .filter(|model| !model.routes.is_empty())
        .map(|parent| StackSpec {
            id: format!("{}-{}", ROUTER.0, parent.name),
            name: format!("{prefix}-{}-{}", ROUTER.0, parent.name),
            template: ROUTER.1.to_string(),
            model: Some(parent.name.clone()),
            pipeline_definition: false,
            function: Some(ROUTER_CODE.to_string()),
            monitoring_definition: false,
        });
    shared.chain(per_model).chain(routers).collect()
}
