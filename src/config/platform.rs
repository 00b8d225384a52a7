//! Validated settings of the platform's parts: endpoints, monitoring, pipelines, the API and CI.

use indexmap::IndexMap;
use serde::Serialize;

use super::environment::Problem;
use super::raw::{
    RawAcceptance, RawApi, RawCi, RawEndpoint, RawMonitoring, RawPipeline, RawServing,
};

/// Which model package an endpoint serves; resolved against the registry when planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Serving {
    /// The newest Approved package of the model's group.
    LatestApproved,
    /// The package `mlops-infra promote` recorded for this environment (one that passed the
    /// source environment's acceptance tests).
    Promoted,
    /// This version of the model's group; it must be Approved.
    Version(u64),
}

impl std::fmt::Display for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Serving::LatestApproved => f.write_str("latest-approved"),
            Serving::Promoted => f.write_str("promoted"),
            Serving::Version(version) => write!(f, "version {version}"),
        }
    }
}

/// Parses a `serving` value; `allow_version` is false for the environment-wide default,
/// since versions belong to one model's group.
pub(super) fn parse_serving(
    key: &str,
    raw: Option<RawServing>,
    default: Serving,
    allow_version: bool,
    problems: &mut Vec<Problem>,
) -> Serving {
    match raw {
        None => default,
        Some(RawServing::Named(name)) => match name.as_str() {
            "latest-approved" => Serving::LatestApproved,
            "promoted" => Serving::Promoted,
            other => {
                let mut problem = Problem::new(key, format!("`{other}` is not a serving choice"));
                problem = problem.hint(if allow_version {
                    "use `latest-approved`, `promoted` or a package version number such as `3`"
                } else {
                    "use `latest-approved` or `promoted`"
                });
                problems.push(problem);
                default
            }
        },
        Some(RawServing::Version(version)) if allow_version && version > 0 => {
            Serving::Version(version)
        }
        Some(RawServing::Version(version)) => {
            problems.push(if allow_version {
                Problem::new(key, format!("version {version} does not exist"))
                    .hint("package versions start at 1")
            } else {
                Problem::new(key, "a fixed version belongs to one model").hint(
                    "set `serving: <version>` on the model in `models`, and `latest-approved` or `promoted` here",
                )
            });
            default
        }
    }
}

/// What `mlops-infra test` checks on each endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Acceptance {
    /// Folder of sample images, relative to the project.
    pub payloads: String,
    pub max_latency_milliseconds: u32,
}

const DEFAULT_PAYLOADS: &str = "payloads";
const DEFAULT_MAX_LATENCY_MILLISECONDS: u32 = 2_000;

pub(super) fn validate_acceptance(raw: RawAcceptance, problems: &mut Vec<Problem>) -> Acceptance {
    let max_latency_milliseconds = raw
        .max_latency_milliseconds
        .unwrap_or(DEFAULT_MAX_LATENCY_MILLISECONDS);
    if max_latency_milliseconds == 0 {
        problems.push(
            Problem::new("acceptance.max_latency_milliseconds", "must be above 0")
                .hint("the slowest answer a sample payload may take, e.g. 2000"),
        );
    }
    let payloads = raw.payloads.unwrap_or_else(|| DEFAULT_PAYLOADS.to_string());
    if payloads.is_empty() || std::path::Path::new(&payloads).is_absolute() {
        problems.push(
            Problem::new(
                "acceptance.payloads",
                format!("`{payloads}` is not a project folder"),
            )
            .hint("a folder relative to the project, e.g. `payloads`"),
        );
    }
    Acceptance {
        payloads,
        max_latency_milliseconds,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// What every model's endpoint serves unless the model overrides it.
    pub serving: Serving,
    pub instance_count: u32,
    pub autoscaling: Option<Autoscaling>,
    /// Blue/green deployment with automatic rollback on the endpoint's alarms.
    pub blue_green: bool,
    pub latency_alarm_milliseconds: u32,
    pub error_alarm_count: u32,
    pub data_capture_percentage: u32,
    /// Protected environments: CloudFormation rolls an endpoint stack's update back when its
    /// error or latency alarm fires within this many minutes (0 to 180).
    pub rollback_monitoring_minutes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Autoscaling {
    pub min_instances: u32,
    pub max_instances: u32,
    pub target_invocations_per_instance: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Monitoring {
    pub alert_emails: Vec<String>,
    pub schedule: String,
    pub window_hours: u32,
    pub drift_alarm_psi: f64,
    pub confidence_alarm_below: f64,
    pub low_confidence_alarm_above: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    /// EventBridge schedule expression; `None` turns scheduled retraining off.
    pub schedule: Option<String>,
    pub retrain_on_new_data: bool,
    /// Prefix of the raw images in the data bucket, ending in `/`.
    pub raw_prefix: String,
    pub accuracy_threshold: f64,
    pub image_size: u32,
    pub min_image_size: u32,
    pub allowed_formats: Vec<String>,
    pub split: Split,
    pub tuning: Tuning,
    pub processing: Processing,
    pub metric_path: String,
}

/// The data steps' processing jobs (data QA, preprocessing, their merges).
#[derive(Debug, Clone, Serialize)]
pub struct Processing {
    /// Instances data QA and preprocessing each run on; above 1 they shard the data and a
    /// merge step joins the parts (docs/steps.md).
    pub instance_count: u32,
    pub volume_size_gb: u32,
    pub max_runtime_seconds: u32,
    /// Images with more pixels are dropped by data QA (decompression bombs).
    pub max_pixels: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Split {
    pub train: f64,
    pub validation: f64,
    pub test: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    /// Share of the train and validation data the tuning jobs see.
    pub subset_fraction: f64,
    pub max_jobs: u32,
    pub max_parallel_jobs: u32,
    pub objective_metric: String,
    pub epochs: u32,
    pub ranges: Vec<Range>,
}

/// A hyperparameter range for tuning.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Range {
    Continuous {
        name: String,
        min: f64,
        max: f64,
        scaling: String,
    },
    Integer {
        name: String,
        min: f64,
        max: f64,
        scaling: String,
    },
    Categorical {
        name: String,
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub manage_account_logging_role: bool,
    pub throttle_rate_limit: f64,
    pub throttle_burst_limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ci {
    /// `github`, `codecommit` or `codeconnections`.
    pub provider: String,
    /// CodeBuild's source type: GITHUB, GITLAB, BITBUCKET or CODECOMMIT.
    pub source_type: String,
    pub repository: String,
    pub branch: String,
    pub connection_arn: Option<String>,
    pub deploy_on_push: bool,
    pub compute_type: String,
    pub image: String,
}

const DEFAULT_LATENCY_ALARM_MILLISECONDS: u32 = 1_000;
const DEFAULT_ERROR_ALARM_COUNT: u32 = 5;
const DEFAULT_DATA_CAPTURE_PERCENTAGE: u32 = 20;
const DEFAULT_TARGET_INVOCATIONS_PER_INSTANCE: u32 = 1_000;

pub(super) fn validate_endpoint(raw: RawEndpoint, problems: &mut Vec<Problem>) -> Endpoint {
    let instance_count = raw.instance_count.unwrap_or(1);
    if instance_count == 0 {
        problems.push(
            Problem::new("endpoint.instance_count", "must be at least 1")
                .hint("an endpoint needs at least one instance"),
        );
    }
    let autoscaling = match (raw.min_instances, raw.max_instances) {
        (None, None) => None,
        (Some(min), Some(max)) => {
            if min == 0 || min > max {
                problems.push(
                    Problem::new(
                        "endpoint.min_instances",
                        format!("autoscaling bounds {min}..{max} are not valid"),
                    )
                    .hint("use 1 <= min_instances <= max_instances"),
                );
            }
            Some(Autoscaling {
                min_instances: min,
                max_instances: max,
                target_invocations_per_instance: raw
                    .target_invocations_per_instance
                    .unwrap_or(DEFAULT_TARGET_INVOCATIONS_PER_INSTANCE),
            })
        }
        (min, _) => {
            let key = if min.is_some() {
                "endpoint.min_instances"
            } else {
                "endpoint.max_instances"
            };
            problems.push(
                Problem::new(
                    key,
                    "autoscaling needs both `min_instances` and `max_instances`",
                )
                .hint("set both to scale the endpoint, or neither to keep `instance_count` fixed"),
            );
            None
        }
    };
    let data_capture_percentage = raw
        .data_capture_percentage
        .unwrap_or(DEFAULT_DATA_CAPTURE_PERCENTAGE);
    if data_capture_percentage > 100 {
        problems.push(Problem::new(
            "endpoint.data_capture_percentage",
            format!("{data_capture_percentage} is not a percentage (0 to 100)"),
        ));
    }
    let serving = parse_serving(
        "endpoint.serving",
        raw.serving,
        Serving::LatestApproved,
        false,
        problems,
    );
    // CloudFormation's limit on a rollback configuration's monitoring time.
    let rollback_monitoring_minutes = raw.rollback_monitoring_minutes.unwrap_or(10);
    if rollback_monitoring_minutes > 180 {
        problems.push(
            Problem::new(
                "endpoint.rollback_monitoring_minutes",
                format!("{rollback_monitoring_minutes} is over CloudFormation's 180 minutes"),
            )
            .hint(
                "how long after an update the endpoint's alarms may still roll it back: 0 to 180",
            ),
        );
    }
    Endpoint {
        serving,
        instance_count,
        autoscaling,
        blue_green: raw.blue_green.unwrap_or(false),
        latency_alarm_milliseconds: raw
            .latency_alarm_milliseconds
            .unwrap_or(DEFAULT_LATENCY_ALARM_MILLISECONDS),
        error_alarm_count: raw.error_alarm_count.unwrap_or(DEFAULT_ERROR_ALARM_COUNT),
        data_capture_percentage,
        rollback_monitoring_minutes,
    }
}

pub(super) fn validate_monitoring(raw: RawMonitoring, problems: &mut Vec<Problem>) -> Monitoring {
    let alert_emails = raw.alert_emails.unwrap_or_default();
    for (index, email) in alert_emails.iter().enumerate() {
        let valid = email
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !valid {
            problems.push(Problem::new(
                format!("monitoring.alert_emails[{index}]"),
                format!("`{email}` is not an email address"),
            ));
        }
    }
    let schedule = raw.schedule.unwrap_or_else(|| "rate(1 day)".into());
    if let Err(error) = super::schedule::check_schedule(&schedule) {
        problems.push(Problem::new("monitoring.schedule", error.message).hint(error.hint));
    }
    let window_hours = raw.window_hours.unwrap_or(24);
    if !(1..=24 * 31).contains(&window_hours) {
        problems.push(
            Problem::new(
                "monitoring.window_hours",
                format!("{window_hours} is outside 1 to 744 hours"),
            )
            .hint("the traffic one run reports on: a day (24) matches a daily schedule"),
        );
    }
    let share = |key: &str, value: Option<f64>, default: f64, problems: &mut Vec<Problem>| {
        let value = value.unwrap_or(default);
        if !(value > 0.0 && value < 1.0) {
            problems.push(Problem::new(
                format!("monitoring.{key}"),
                format!("{value} is not strictly between 0 and 1"),
            ));
        }
        value
    };
    let confidence_alarm_below = share(
        "confidence_alarm_below",
        raw.confidence_alarm_below,
        0.5,
        problems,
    );
    let low_confidence_alarm_above = share(
        "low_confidence_alarm_above",
        raw.low_confidence_alarm_above,
        0.3,
        problems,
    );
    let drift_alarm_psi = raw.drift_alarm_psi.unwrap_or(0.2);
    if !(drift_alarm_psi.is_finite() && drift_alarm_psi > 0.0) {
        problems.push(
            Problem::new(
                "monitoring.drift_alarm_psi",
                format!("{drift_alarm_psi} is not a positive number"),
            )
            .hint("0.2 is the usual threshold of a significant shift"),
        );
    }
    Monitoring {
        alert_emails,
        schedule,
        window_hours,
        drift_alarm_psi,
        confidence_alarm_below,
        low_confidence_alarm_above,
    }
}

const SUPPORTED_FORMATS: [&str; 2] = ["jpeg", "png"];

pub(super) fn validate_pipeline(raw: RawPipeline, problems: &mut Vec<Problem>) -> Pipeline {
    if let Some(schedule) = &raw.schedule
        && let Err(error) = super::schedule::check_schedule(schedule)
    {
        problems.push(Problem::new("pipeline.schedule", error.message).hint(error.hint));
    }
    let raw_prefix = raw.raw_prefix.unwrap_or_else(|| "raw/".into());
    if raw_prefix.starts_with('/') || !raw_prefix.ends_with('/') {
        problems.push(
            Problem::new("pipeline.raw_prefix", format!("`{raw_prefix}` is not a key prefix"))
                .hint("a prefix inside the data bucket, without a leading `/` and ending in `/`, e.g. `raw/`"),
        );
    }
    let accuracy_threshold = raw.accuracy_threshold.unwrap_or(0.8);
    if !(0.0..=1.0).contains(&accuracy_threshold) {
        problems.push(Problem::new(
            "pipeline.accuracy_threshold",
            format!("{accuracy_threshold} is not between 0 and 1"),
        ));
    }
    let image_size = raw.image_size.unwrap_or(224);
    let min_image_size = raw.min_image_size.unwrap_or(32);
    if !(16..=1024).contains(&image_size) {
        problems.push(Problem::new(
            "pipeline.image_size",
            format!("{image_size} is not between 16 and 1024 pixels"),
        ));
    }
    if min_image_size == 0 || min_image_size > image_size {
        problems.push(
            Problem::new(
                "pipeline.min_image_size",
                format!("{min_image_size} must be between 1 and `image_size` ({image_size})"),
            )
            .hint("images smaller than this are dropped by data QA"),
        );
    }
    let allowed_formats = raw.allowed_formats.unwrap_or_else(|| {
        SUPPORTED_FORMATS
            .iter()
            .map(|format| format.to_string())
            .collect()
    });
    for (index, format) in allowed_formats.iter().enumerate() {
        if !SUPPORTED_FORMATS.contains(&format.as_str()) {
            problems.push(
                Problem::new(
                    format!("pipeline.allowed_formats[{index}]"),
                    format!("format `{format}` is not supported"),
                )
                .hint("SageMaker's image classification reads `jpeg` and `png`"),
            );
        }
    }
    let raw_split = raw.split.unwrap_or_default();
    let split = Split {
        train: raw_split.train.unwrap_or(0.8),
        validation: raw_split.validation.unwrap_or(0.1),
        test: raw_split.test.unwrap_or(0.1),
    };
    let total = split.train + split.validation + split.test;
    if [split.train, split.validation, split.test]
        .iter()
        .any(|share| *share <= 0.0)
        || (total - 1.0).abs() > 1e-6
    {
        problems.push(
            Problem::new(
                "pipeline.split",
                format!(
                    "shares {} / {} / {} do not form a split",
                    split.train, split.validation, split.test
                ),
            )
            .hint("train, validation and test must each be above 0 and add up to 1"),
        );
    }
    let tuning = validate_tuning(raw.tuning.unwrap_or_default(), problems);
    if raw.num_training_samples.is_some() {
        problems.push(
            Problem::new(
                "pipeline.num_training_samples",
                "`num_training_samples` is no longer set by hand: the training jobs read the train split's size from the data",
            )
            .hint("remove the key; preprocess writes the count to index/split.json and the pipeline passes it on"),
        );
    }
    let processing = validate_processing(raw.processing.unwrap_or_default(), problems);
    let metric_path = raw
        .metric_path
        .unwrap_or_else(|| "multiclass_classification_metrics.accuracy.value".into());
    Pipeline {
        processing,
        metric_path,
        schedule: raw.schedule,
        retrain_on_new_data: raw.retrain_on_new_data.unwrap_or(false),
        raw_prefix,
        accuracy_threshold,
        image_size,
        min_image_size,
        allowed_formats,
        split,
        tuning,
    }
}

/// Ranges from the SageMaker API reference: ProcessingClusterConfig (InstanceCount 1–100,
/// VolumeSizeInGB 1–16384) and ProcessingStoppingCondition (MaxRuntimeInSeconds 1–777600).
fn validate_processing(raw: super::raw::RawProcessing, problems: &mut Vec<Problem>) -> Processing {
    let mut within = |key: &str, value: u64, low: u64, high: u64| {
        if !(low..=high).contains(&value) {
            problems.push(
                Problem::new(
                    format!("pipeline.processing.{key}"),
                    format!("{value} is outside what SageMaker Processing accepts"),
                )
                .hint(format!("use a value from {low} to {high}")),
            );
        }
    };
    let instance_count = raw.instance_count.unwrap_or(1);
    within("instance_count", instance_count.into(), 1, 100);
    let volume_size_gb = raw.volume_size_gb.unwrap_or(50);
    within("volume_size_gb", volume_size_gb.into(), 1, 16_384);
    let max_runtime_seconds = raw.max_runtime_seconds.unwrap_or(3_600);
    within(
        "max_runtime_seconds",
        max_runtime_seconds.into(),
        1,
        777_600,
    );
    let max_pixels = raw.max_pixels.unwrap_or(80_000_000);
    within("max_pixels", max_pixels, 1, u64::from(u32::MAX));
    Processing {
        instance_count,
        volume_size_gb,
        max_runtime_seconds,
        max_pixels,
    }
}

fn validate_tuning(raw: super::raw::RawTuning, problems: &mut Vec<Problem>) -> Tuning {
    let subset_fraction = raw.subset_fraction.unwrap_or(0.2);
    if !(subset_fraction > 0.0 && subset_fraction <= 1.0) {
        problems.push(Problem::new(
            "pipeline.tuning.subset_fraction",
            format!("{subset_fraction} is not in (0, 1]"),
        ));
    }
    let max_jobs = raw.max_jobs.unwrap_or(8);
    let max_parallel_jobs = raw.max_parallel_jobs.unwrap_or(2);
    check_tuning_limits(max_jobs, max_parallel_jobs, problems);
    let default_ranges = || {
        let mut ranges = IndexMap::new();
        ranges.insert(
            "learning_rate".to_string(),
            super::raw::RawRange {
                min: Some(0.0001),
                max: Some(0.1),
                scaling: Some("Logarithmic".into()),
                ..Default::default()
            },
        );
        ranges.insert(
            "mini_batch_size".to_string(),
            super::raw::RawRange {
                values: Some(vec!["32".into(), "64".into(), "128".into()]),
                ..Default::default()
            },
        );
        ranges
    };
    let mut ranges = Vec::new();
    for (name, range) in raw.ranges.unwrap_or_else(default_ranges) {
        let key = format!("pipeline.tuning.ranges.{name}");
        let scaling = range.scaling.unwrap_or_else(|| "Auto".into());
        if !["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"].contains(&scaling.as_str()) {
            problems.push(
                Problem::new(
                    format!("{key}.scaling"),
                    format!("scaling `{scaling}` is not one SageMaker knows"),
                )
                .hint("use Auto, Linear, Logarithmic or ReverseLogarithmic"),
            );
        }
        match (range.min, range.max, range.values) {
            (Some(min), Some(max), None) if min < max => ranges.push(if range.integer.unwrap_or(false) {
                Range::Integer { name, min, max, scaling }
            } else {
                Range::Continuous { name, min, max, scaling }
            }),
            (None, None, Some(values)) if !values.is_empty() => ranges.push(Range::Categorical { name, values }),
            _ => problems.push(
                Problem::new(key, format!("range `{name}` needs `min` < `max`, or a non-empty `values` list"))
                    .hint("e.g. `learning_rate: {min: 0.0001, max: 0.1, scaling: Logarithmic}` or `optimizer: {values: [sgd, adam]}`"),
            ),
        }
    }
    Tuning {
        subset_fraction,
        max_jobs,
        max_parallel_jobs,
        objective_metric: raw
            .objective_metric
            .unwrap_or_else(|| "validation:accuracy".into()),
        epochs: raw.epochs.unwrap_or(10),
        ranges,
    }
}

/// Most training jobs one Bayesian tuning job may launch (the strategy the pipeline's tuning
/// step uses). The API reference's `ResourceLimits` gives `MaxNumberOfTrainingJobs` and
/// `MaxParallelTrainingJobs` only a "Minimum value of 1"
/// (<https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceLimits.html>); the
/// ceilings are in the developer guide's "Resource Limits for Automatic Model Tuning"
/// (<https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html>):
/// 750 training jobs per Bayesian tuning job, which cannot be raised, and 10 parallel training
/// jobs per tuning job, which can be raised to 100 and no further.
const MAX_TUNING_JOBS: u32 = 750;
/// Most parallel training jobs per tuning job with the quota raised as far as it goes.
const MAX_PARALLEL_TUNING_JOBS: u32 = 100;

fn check_tuning_limits(max_jobs: u32, max_parallel_jobs: u32, problems: &mut Vec<Problem>) {
    if max_jobs == 0 {
        problems.push(
            Problem::new("pipeline.tuning.max_jobs", "must be at least 1")
                .hint("the number of training jobs the tuning step may launch, e.g. 8"),
        );
    } else if max_jobs > MAX_TUNING_JOBS {
        problems.push(
            Problem::new(
                "pipeline.tuning.max_jobs",
                format!("{max_jobs} training jobs is more than SageMaker's {MAX_TUNING_JOBS} per tuning job"),
            )
            .hint(format!(
                "use at most {MAX_TUNING_JOBS}: the tuning step's Bayesian strategy has a fixed limit of {MAX_TUNING_JOBS} training jobs"
            )),
        );
    }
    if max_parallel_jobs == 0 {
        problems.push(
            Problem::new("pipeline.tuning.max_parallel_jobs", "must be at least 1")
                .hint("the number of training jobs the tuning step runs at once, e.g. 2"),
        );
    } else if max_parallel_jobs > MAX_PARALLEL_TUNING_JOBS {
        problems.push(
            Problem::new(
                "pipeline.tuning.max_parallel_jobs",
                format!(
                    "{max_parallel_jobs} parallel training jobs is more than SageMaker's {MAX_PARALLEL_TUNING_JOBS} per tuning job"
                ),
            )
            .hint(format!(
                "use at most {MAX_PARALLEL_TUNING_JOBS} (the default quota is 10; Service Quotas raises it to {MAX_PARALLEL_TUNING_JOBS})"
            )),
        );
    } else if max_jobs > 0 && max_parallel_jobs > max_jobs {
        problems.push(
            Problem::new(
                "pipeline.tuning.max_parallel_jobs",
                format!("{max_parallel_jobs} parallel of {max_jobs} jobs is not valid"),
            )
            .hint("use 1 <= max_parallel_jobs <= max_jobs"),
        );
    }
}

pub(super) fn validate_api(raw: RawApi, problems: &mut Vec<Problem>) -> Api {
    let api = Api {
        manage_account_logging_role: raw.manage_account_logging_role.unwrap_or(true),
        throttle_rate_limit: raw.throttle_rate_limit.unwrap_or(5.0),
        throttle_burst_limit: raw.throttle_burst_limit.unwrap_or(10),
    };
    if api.throttle_rate_limit <= 0.0 {
        problems.push(Problem::new(
            "api.throttle_rate_limit",
            "must be above 0 requests per second",
        ));
    }
    api
}

const PROVIDERS: [&str; 3] = ["github", "codecommit", "codeconnections"];

/// `None` when the environment has no `ci` section: it then gets no CI stack.
pub(super) fn validate_ci(raw: Option<RawCi>, problems: &mut Vec<Problem>) -> Option<Ci> {
    let raw = raw?;
    let provider = raw.provider.unwrap_or_else(|| "github".into());
    if !PROVIDERS.contains(&provider.as_str()) {
        let mut problem = Problem::new(
            "ci.provider",
            format!("source provider `{provider}` is not supported"),
        );
        problem = match crate::error::did_you_mean(&provider, PROVIDERS) {
            Some(close) => problem.hint(format!("did you mean `{close}`?")),
            None => problem.hint("use github, codecommit or codeconnections"),
        };
        problems.push(problem);
    }
    let repository = raw.repository.unwrap_or_default();
    if repository.is_empty() {
        problems.push(
            Problem::new("ci.repository", "missing required key `ci.repository`")
                .hint("the repository holding this project: an HTTPS URL, or the CodeCommit repository name"),
        );
    } else if provider != "codecommit" && !repository.starts_with("https://") {
        problems.push(
            Problem::new(
                "ci.repository",
                format!("`{repository}` is not an HTTPS repository URL"),
            )
            .hint("e.g. https://github.com/example/mlops-infra.git"),
        );
    }
    match (&provider[..], &raw.connection_arn) {
        ("codeconnections", None) => problems.push(
            Problem::new("ci.connection_arn", "provider `codeconnections` needs `connection_arn`")
                .hint("the ARN of an AVAILABLE connection, arn:aws:codeconnections:<region>:<account>:connection/<id>"),
        ),
        ("codeconnections", Some(arn)) if !arn.contains(":connection/") => problems.push(Problem::new(
            "ci.connection_arn",
            format!("`{arn}` is not a connection ARN"),
        )),
        (other, Some(_)) if other != "codeconnections" => problems.push(
            Problem::new("ci.connection_arn", format!("`connection_arn` only applies to provider `codeconnections`, not `{other}`"))
                .hint("remove it, or set `provider: codeconnections`"),
        ),
        _ => {}
    }
    let source_type = if provider == "codecommit" {
        "CODECOMMIT"
    } else if repository.contains("gitlab") {
        "GITLAB"
    } else if repository.contains("bitbucket") {
        "BITBUCKET"
    } else {
        "GITHUB"
    }
    .to_string();
    Some(Ci {
        provider,
        source_type,
        repository,
        branch: raw.branch.unwrap_or_else(|| "main".into()),
        connection_arn: raw.connection_arn,
        deploy_on_push: raw.deploy_on_push.unwrap_or(true),
        compute_type: raw
            .compute_type
            .unwrap_or_else(|| "BUILD_GENERAL1_SMALL".into()),
        image: raw
            .image
            .unwrap_or_else(|| "aws/codebuild/amazonlinux-x86_64-standard:5.0".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning_problems(max_jobs: u32, max_parallel_jobs: u32) -> Vec<Problem> {
        let mut problems = Vec::new();
        check_tuning_limits(max_jobs, max_parallel_jobs, &mut problems);
        problems
    }

    #[test]
    fn tuning_limits_within_sagemakers_ranges_pass() {
        assert_eq!(tuning_problems(8, 2), vec![]);
        assert_eq!(tuning_problems(1, 1), vec![]);
        assert_eq!(tuning_problems(750, 100), vec![]);
    }

    #[test]
    fn tuning_limits_above_sagemakers_ceilings_are_refused() {
        let problems = tuning_problems(100_000, 2);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "pipeline.tuning.max_jobs");
        assert_eq!(
            problems[0].message,
            "100000 training jobs is more than SageMaker's 750 per tuning job"
        );
        assert_eq!(tuning_problems(751, 2)[0].key, "pipeline.tuning.max_jobs");
        let problems = tuning_problems(750, 101);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "pipeline.tuning.max_parallel_jobs");
        assert!(problems[0].message.contains("more than SageMaker's 100"));
    }

    #[test]
    fn tuning_limits_start_at_one_and_parallel_stays_within_total() {
        assert_eq!(tuning_problems(0, 2)[0].key, "pipeline.tuning.max_jobs");
        assert_eq!(
            tuning_problems(8, 0)[0].key,
            "pipeline.tuning.max_parallel_jobs"
        );
        let problems = tuning_problems(4, 8);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].message, "8 parallel of 4 jobs is not valid");
    }

    #[test]
    fn schedule_problems_carry_the_fix() {
        let mut problems = Vec::new();
        validate_pipeline(
            RawPipeline {
                schedule: Some("rate(1 days)".into()),
                ..Default::default()
            },
            &mut problems,
        );
        assert_eq!(
            problems,
            vec![
                Problem::new(
                    "pipeline.schedule",
                    "`rate(1 days)`: a rate of 1 takes the singular unit"
                )
                .hint("use `rate(1 day)`")
            ]
        );
    }
}
