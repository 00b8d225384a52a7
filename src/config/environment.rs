//! The validated `Environment`: defaults applied, names checked, ready for rendering.

use indexmap::IndexMap;
use serde::Serialize;

use super::instance_types::{self, InstanceUse};
use super::names;
use super::platform::{self, Acceptance, Api, Ci, Endpoint, Monitoring, Pipeline, Serving};
use super::raw::{RawEnvironment, RawModel};

/// Longest project name: it is part of every stack, bucket and SageMaker name.
pub const MAX_PROJECT_LENGTH: usize = 24;
/// Longest environment name (the file stem), for the same reason.
pub const MAX_ENVIRONMENT_LENGTH: usize = 16;
const MAX_MODEL_LENGTH: usize = 24;

const DEFAULT_PROCESSING_INSTANCE_TYPE: &str = "ml.m5.xlarge";
const DEFAULT_TRAINING_INSTANCE_TYPE: &str = "ml.g5.xlarge";
const DEFAULT_ENDPOINT_INSTANCE_TYPE: &str = "ml.m5.large";
const DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS: u32 = 90;
const DEFAULT_ACCESS_LOG_EXPIRATION_DAYS: u32 = 365;

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// The environment's name: its file stem (`staging` for `environments/staging.yaml`).
    pub name: String,
    pub project: String,
    pub account_id: String,
    pub region: String,
    /// Protected environments ask before applying and refuse dangerous changes.
    pub protected: bool,
    /// Tags for every stack and taggable resource, `project` and `environment` included.
    pub tags: IndexMap<String, String>,
    pub storage: Storage,
    pub iam: Iam,
    pub models: Vec<Model>,
    pub images: Images,
    pub endpoint: Endpoint,
    pub monitoring: Monitoring,
    pub pipeline: Pipeline,
    pub api: Api,
    /// The CodeBuild projects; an environment without a `ci` section has none.
    pub ci: Option<Ci>,
    /// AWS profile for this environment's commands; `None`: the standard credential chain.
    pub profile: Option<String>,
    pub acceptance: Acceptance,
    /// Accounts whose endpoints may serve this environment's model packages: the registry,
    /// the artifacts bucket and the key grant them read access.
    pub share_with_accounts: Vec<String>,
    /// The function behind `POST /identify`, one per parent model.
    pub router: super::router::Router,
    /// Human review of low-confidence photos and the retraining their labels start.
    pub review: super::review::Review,
    /// When `apply` starts a stack's dependents.
    pub apply: super::apply::Apply,
}

/// Container images of the pipeline's jobs.
#[derive(Debug, Clone, Serialize)]
pub struct Images {
    pub processing: String,
    pub training: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Storage {
    pub data_bucket_name: String,
    pub artifacts_bucket_name: String,
    pub access_logs_bucket_name: String,
    pub noncurrent_version_expiration_days: u32,
    pub access_log_expiration_days: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Iam {
    pub role_path: String,
    pub permissions_boundary_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub name: String,
    pub description: String,
    pub parent: Option<String>,
    pub subgroup: Option<String>,
    pub routes: Vec<String>,
    pub pipeline_name: String,
    pub model_package_group_name: String,
    pub endpoint_name: String,
    pub processing_instance_type: String,
    pub training_instance_type: String,
    pub endpoint_instance_type: String,
    /// The evaluation accuracy a trained model needs to be registered.
    pub accuracy_threshold: f64,
    pub num_classes: u32,
    /// Which package the model's endpoint serves.
    pub serving: Serving,
}

impl Environment {
    /// `<project>-<environment>`: the prefix of every name the environment creates.
    pub fn prefix(&self) -> String {
        format!("{}-{}", self.project, self.name)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|model| model.name == name)
    }
}

/// A problem found while validating, by key path; `config::load` locates it in the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub(super) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Turns the merged raw configuration into an `Environment`, reporting every problem.
pub(super) fn validate(name: &str, raw: RawEnvironment) -> Result<Environment, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut required = |key: &str, value: Option<String>, example: &str| {
        value.unwrap_or_else(|| {
            problems.push(
                Problem::new(key, format!("missing required key `{key}`")).hint(format!(
                    "add `{key}: {example}` to this file or to the base it extends"
                )),
            );
            String::new()
        })
    };
    let project = required("project", raw.project, "mlops-images");
    let account_id = required("account_id", raw.account_id, "\"123456789012\"");
    let region = required("region", raw.region, "eu-west-1");

    if !project.is_empty()
        && let Err(why) = names::check_identifier(&project, MAX_PROJECT_LENGTH)
    {
        problems.push(Problem::new(
            "project",
            format!("project name `{project}` {why}"),
        ));
    }
    if !account_id.is_empty()
        && let Err(why) = names::check_account_id(&account_id)
    {
        problems.push(
            Problem::new("account_id", format!("account id `{account_id}` {why}"))
                .hint("quote it so YAML keeps leading zeros: account_id: \"012345678901\""),
        );
    }
    if !region.is_empty()
        && let Err(why) = names::check_region(&region)
    {
        problems.push(Problem::new("region", format!("region `{region}` {why}")));
    }

    let mut tags = IndexMap::new();
    tags.insert("project".to_string(), project.clone());
    tags.insert("environment".to_string(), name.to_string());
    for (key, value) in raw.tags.unwrap_or_default() {
        let path = format!("tags.{key}");
        if key.is_empty() || key.len() > 128 || key.to_ascii_lowercase().starts_with("aws:") {
            problems.push(
                Problem::new(&path, format!("tag key `{key}` is not allowed"))
                    .hint("tag keys are 1 to 128 characters and must not start with `aws:`"),
            );
        } else if value.len() > 256 {
            problems.push(Problem::new(
                &path,
                "tag value is longer than 256 characters",
            ));
        } else if key == "project" || key == "environment" {
            problems.push(
                Problem::new(&path, format!("tag `{key}` is set by mlops-infra"))
                    .hint("remove it: every resource is tagged with its project and environment"),
            );
        }
        tags.insert(key, value);
    }

    let prefix = format!("{project}-{name}");
    let raw_storage = raw.storage.unwrap_or_default();
    let mut bucket = |key: &str, value: Option<String>, purpose: &str| {
        let bucket = value.unwrap_or_else(|| format!("{prefix}-{purpose}-{account_id}"));
        if let Err(why) = names::check_bucket_name(&bucket) {
            problems.push(
                Problem::new(
                    format!("storage.{key}"),
                    format!("bucket name `{bucket}` {why}"),
                )
                .hint(format!(
                    "set a valid name with `storage.{key}`, or shorten the project name"
                )),
            );
        }
        bucket
    };
    let storage = Storage {
        data_bucket_name: bucket("data_bucket_name", raw_storage.data_bucket_name, "data"),
        artifacts_bucket_name: bucket(
            "artifacts_bucket_name",
            raw_storage.artifacts_bucket_name,
            "artifacts",
        ),
        access_logs_bucket_name: bucket(
            "access_logs_bucket_name",
            raw_storage.access_logs_bucket_name,
            "access-logs",
        ),
        noncurrent_version_expiration_days: raw_storage
            .noncurrent_version_expiration_days
            .unwrap_or(DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS),
        access_log_expiration_days: raw_storage
            .access_log_expiration_days
            .unwrap_or(DEFAULT_ACCESS_LOG_EXPIRATION_DAYS),
    };
    for (key, days) in [
        (
            "noncurrent_version_expiration_days",
            storage.noncurrent_version_expiration_days,
        ),
        (
            "access_log_expiration_days",
            storage.access_log_expiration_days,
        ),
    ] {
        if days == 0 {
            problems.push(
                Problem::new(format!("storage.{key}"), "must be at least 1 day")
                    .hint("S3 lifecycle expirations count whole days from 1"),
            );
        }
    }

    let raw_iam = raw.iam.unwrap_or_default();
    let role_path = raw_iam.role_path.unwrap_or_else(|| format!("/{project}/"));
    if !(role_path.starts_with('/') && role_path.ends_with('/') && role_path.len() <= 512) {
        problems.push(
            Problem::new(
                "iam.role_path",
                format!("role path `{role_path}` is not valid"),
            )
            .hint("IAM paths start and end with `/`, e.g. `/mlops/`"),
        );
    }
    if let Some(arn) = &raw_iam.permissions_boundary_arn
        && !(arn.starts_with("arn:aws") && arn.contains(":iam::") && arn.contains(":policy/"))
    {
        problems.push(
            Problem::new(
                "iam.permissions_boundary_arn",
                format!("`{arn}` is not an IAM policy ARN"),
            )
            .hint("use the form arn:aws:iam::123456789012:policy/boundary-name"),
        );
    }
    let iam = Iam {
        role_path,
        permissions_boundary_arn: raw_iam.permissions_boundary_arn,
    };

    let sagemaker = raw.sagemaker.unwrap_or_default();
    let defaults = InstanceDefaults {
        processing: sagemaker
            .processing_instance_type
            .unwrap_or_else(|| DEFAULT_PROCESSING_INSTANCE_TYPE.into()),
        training: sagemaker
            .training_instance_type
            .unwrap_or_else(|| DEFAULT_TRAINING_INSTANCE_TYPE.into()),
        endpoint: sagemaker
            .endpoint_instance_type
            .unwrap_or_else(|| DEFAULT_ENDPOINT_INSTANCE_TYPE.into()),
    };
    for (key, value, instance_use) in [
        (
            "processing_instance_type",
            &defaults.processing,
            InstanceUse::Processing,
        ),
        (
            "training_instance_type",
            &defaults.training,
            InstanceUse::Training,
        ),
        (
            "endpoint_instance_type",
            &defaults.endpoint,
            InstanceUse::Endpoint,
        ),
    ] {
        check_instance_type(
            &format!("sagemaker.{key}"),
            value,
            instance_use,
            &mut problems,
        );
    }

    let endpoint = platform::validate_endpoint(raw.endpoint.unwrap_or_default(), &mut problems);
    let monitoring =
        platform::validate_monitoring(raw.monitoring.unwrap_or_default(), &mut problems);
    let pipeline = platform::validate_pipeline(raw.pipeline.unwrap_or_default(), &mut problems);
    let api = platform::validate_api(raw.api.unwrap_or_default(), &mut problems);
    let router = super::router::validate_router(raw.router.unwrap_or_default(), &mut problems);
    let review = super::review::validate_review(raw.review.unwrap_or_default(), &mut problems);
    let apply = super::apply::validate_apply(
        raw.apply.unwrap_or_default(),
        raw.protected.unwrap_or(false),
        &mut problems,
    );
    let ci = platform::validate_ci(raw.ci, &mut problems);
    let acceptance =
        platform::validate_acceptance(raw.acceptance.unwrap_or_default(), &mut problems);
    let share_with_accounts = raw
        .registry
        .and_then(|registry| registry.share_with_accounts)
        .unwrap_or_default();
    for (index, account) in share_with_accounts.iter().enumerate() {
        let key = format!("registry.share_with_accounts[{index}]");
        if let Err(why) = names::check_account_id(account) {
            problems.push(
                Problem::new(&key, format!("account id `{account}` {why}"))
                    .hint("quote it: \"333333333333\""),
            );
        } else if *account == account_id {
            problems.push(
                Problem::new(
                    &key,
                    format!("`{account}` is this environment's own account"),
                )
                .hint("list only other accounts; the own account needs no sharing"),
            );
        }
    }
    if raw.profile.as_deref().is_some_and(str::is_empty) {
        problems.push(
            Problem::new("profile", "is empty")
                .hint("name a profile of your AWS config, or remove `profile` to use the standard credential chain"),
        );
    }

    let images = Images {
        processing: image(
            "sagemaker.processing_image_uri",
            sagemaker.processing_image_uri.clone(),
            &region,
            crate::pipeline::images::sklearn_processing_image,
            &mut problems,
        ),
        training: image(
            "sagemaker.training_image_uri",
            sagemaker.training_image_uri.clone(),
            &region,
            crate::pipeline::images::image_classification_image,
            &mut problems,
        ),
    };

    let models = validate_models(
        &prefix,
        raw.models.unwrap_or_default(),
        &defaults,
        pipeline.accuracy_threshold,
        endpoint.serving,
        &mut problems,
    );

    if problems.is_empty() {
        Ok(Environment {
            name: name.to_string(),
            project,
            account_id,
            region,
            protected: raw.protected.unwrap_or(false),
            tags,
            storage,
            iam,
            models,
            images,
            endpoint,
            monitoring,
            pipeline,
            api,
            ci,
            profile: raw.profile,
            acceptance,
            share_with_accounts,
            router,
            review,
            apply,
        })
    } else {
        Err(problems)
    }
}

/// The configured image, or the region's default; a region without one needs it configured.
fn image(
    key: &str,
    configured: Option<String>,
    region: &str,
    default: fn(&str) -> Result<String, crate::pipeline::images::UnknownRegion>,
    problems: &mut Vec<Problem>,
) -> String {
    if let Some(uri) = configured {
        return uri;
    }
    if region.is_empty() {
        return String::new();
    }
    default(region).unwrap_or_else(|error| {
        problems.push(
            Problem::new("region", format!("{error}"))
                .hint(format!("{}; or set `{key}`", error.hint())),
        );
        String::new()
    })
}

fn check_instance_type(
    key: &str,
    value: &str,
    instance_use: InstanceUse,
    problems: &mut Vec<Problem>,
) {
    if let Err(error) = instance_types::check_instance_type(value, instance_use) {
        problems.push(Problem::new(key, error.message).hint(error.hint));
    }
}

struct InstanceDefaults {
    processing: String,
    training: String,
    endpoint: String,
}

fn validate_models(
    prefix: &str,
    raw_models: Vec<RawModel>,
    defaults: &InstanceDefaults,
    accuracy_threshold: f64,
    serving: Serving,
    problems: &mut Vec<Problem>,
) -> Vec<Model> {
    let mut models: Vec<Model> = Vec::new();
    for (index, raw) in raw_models.into_iter().enumerate() {
        let path = format!("models[{index}]");
        let Some(name) = raw.name else {
            problems.push(
                Problem::new(&path, "model has no `name`")
                    .hint("every model needs a name, e.g. `name: plants`"),
            );
            continue;
        };
        if let Err(why) = names::check_identifier(&name, MAX_MODEL_LENGTH) {
            problems.push(Problem::new(
                format!("{path}.name"),
                format!("model name `{name}` {why}"),
            ));
        }
        if models.iter().any(|model| model.name == name) {
            problems.push(
                Problem::new(
                    format!("{path}.name"),
                    format!("model `{name}` is listed twice"),
                )
                .hint("model names must be unique within an environment"),
            );
        }
        let sagemaker_name = format!("{prefix}-{name}");
        if let Err(why) = names::check_sagemaker_name(&sagemaker_name) {
            problems.push(
                Problem::new(
                    format!("{path}.name"),
                    format!("SageMaker name `{sagemaker_name}` {why}"),
                )
                .hint("shorten the model or project name"),
            );
        }
        // A model's own types are checked here; the defaults it inherits were checked (and
        // reported once) under `sagemaker`.
        let mut instance =
            |key: &str, value: Option<String>, default: &str, instance_use: InstanceUse| {
                let Some(value) = value else {
                    return default.to_string();
                };
                check_instance_type(&format!("{path}.{key}"), &value, instance_use, problems);
                value
            };
        let processing_instance_type = instance(
            "processing_instance_type",
            raw.processing_instance_type,
            &defaults.processing,
            InstanceUse::Processing,
        );
        let training_instance_type = instance(
            "training_instance_type",
            raw.training_instance_type,
            &defaults.training,
            InstanceUse::Training,
        );
        let endpoint_instance_type = instance(
            "endpoint_instance_type",
            raw.endpoint_instance_type,
            &defaults.endpoint,
            InstanceUse::Endpoint,
        );
        let num_classes = match (raw.num_classes, &raw.parent, &raw.routes) {
            (Some(classes), _, _) => classes,
            (None, None, Some(routes)) if !routes.is_empty() => routes.len() as u32,
            _ => {
                problems.push(
                    Problem::new(&path, format!("model `{name}` needs `num_classes`"))
                        .hint("how many classes (species) it tells apart; parents default to their number of routes"),
                );
                0
            }
        };
        if raw.num_classes.is_some_and(|classes| classes < 2) {
            problems.push(Problem::new(
                format!("{path}.num_classes"),
                "a classifier needs at least 2 classes",
            ));
        }
        let accuracy_threshold = raw.accuracy_threshold.unwrap_or(accuracy_threshold);
        if !(0.0..=1.0).contains(&accuracy_threshold) {
            problems.push(Problem::new(
                format!("{path}.accuracy_threshold"),
                format!("{accuracy_threshold} is not between 0 and 1"),
            ));
        }
        if raw.parent.is_some() != raw.subgroup.is_some() {
            problems.push(
                Problem::new(
                    &path,
                    format!("model `{name}` sets only one of `parent` and `subgroup`"),
                )
                .hint("a child model names both its parent and the parent's route it serves"),
            );
        }
        if raw.parent.is_some() && raw.routes.as_ref().is_some_and(|routes| !routes.is_empty()) {
            problems.push(
                Problem::new(
                    format!("{path}.routes"),
                    format!("child model `{name}` has routes"),
                )
                .hint("only parent models route images; a child has one `subgroup`"),
            );
        }
        let serving = platform::parse_serving(
            &format!("{path}.serving"),
            raw.serving,
            serving,
            true,
            problems,
        );
        models.push(Model {
            serving,
            description: raw
                .description
                .unwrap_or_else(|| format!("{name} image classifier")),
            parent: raw.parent,
            subgroup: raw.subgroup,
            routes: raw.routes.unwrap_or_default(),
            pipeline_name: sagemaker_name.clone(),
            model_package_group_name: sagemaker_name.clone(),
            endpoint_name: sagemaker_name,
            processing_instance_type,
            training_instance_type,
            endpoint_instance_type,
            accuracy_threshold,
            num_classes,
            name,
        });
    }
    check_hierarchy(&models, problems);
    models
}

/// Parents must exist and be top-level; each child serves one of its parent's routes, and
/// every route has exactly one child.
fn check_hierarchy(models: &[Model], problems: &mut Vec<Problem>) {
    let names: Vec<&str> = models.iter().map(|model| model.name.as_str()).collect();
    for (index, model) in models.iter().enumerate() {
        let (Some(parent_name), Some(subgroup)) = (&model.parent, &model.subgroup) else {
            continue;
        };
        let path = format!("models[{index}].parent");
        let Some(parent) = models
            .iter()
            .find(|candidate| &candidate.name == parent_name)
        else {
            let mut problem = Problem::new(
                &path,
                format!(
                    "parent `{parent_name}` of model `{}` is not a model of this environment",
                    model.name
                ),
            );
            if let Some(close) = crate::error::did_you_mean(parent_name, names.iter().copied()) {
                problem = problem.hint(format!("did you mean `{close}`?"));
            }
            problems.push(problem);
            continue;
        };
        if parent.parent.is_some() {
            problems.push(
                Problem::new(
                    &path,
                    format!("parent `{parent_name}` is itself a child model"),
                )
                .hint("models form two levels: parents route, children name the species"),
            );
        }
        if !parent.routes.contains(subgroup) {
            problems.push(
                Problem::new(
                    format!("models[{index}].subgroup"),
                    format!("`{subgroup}` is not one of the routes of `{parent_name}`"),
                )
                .hint(format!(
                    "add `{subgroup}` to the routes of `{parent_name}` ({})",
                    parent.routes.join(", ")
                )),
            );
        }
    }
    for (index, parent) in models.iter().enumerate() {
        if parent.routes.len() == 1 {
            problems.push(
                Problem::new(
                    format!("models[{index}].routes"),
                    format!(
                        "parent `{}` has one route: it would always answer `{}`, so its accuracy is 1.0 whatever it learns",
                        parent.name, parent.routes[0]
                    ),
                )
                .hint("route at least two sub-groups, or drop the parent and train the child on its own"),
            );
        }
        for route in &parent.routes {
            let children = models
                .iter()
                .filter(|child| {
                    child.parent.as_ref() == Some(&parent.name)
                        && child.subgroup.as_ref() == Some(route)
                })
                .count();
            if children != 1 {
                problems.push(
                    Problem::new(
                        format!("models[{index}].routes"),
                        format!(
                            "route `{route}` of `{}` is served by {children} child models; it needs exactly one",
                            parent.name
                        ),
                    )
                    .hint(format!(
                        "add a model with `parent: {}` and `subgroup: {route}`, or remove the route",
                        parent.name
                    )),
                );
            }
        }
    }
}
