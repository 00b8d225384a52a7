//! Writes the platform's training pipeline for one model: data quality → preprocess → tune →
//! train → evaluate → register if accurate enough, else fail.

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::arguments::{
    AlgorithmSpecification, AppSpecification, CategoricalRange, Channel, ClusterConfig, DataSource,
    Extra, FailArguments, InferenceSpecification, MetricsSource, ModelContainer, ModelMetrics,
    ModelQuality, NumericRange, OutputDataConfig, ParameterRanges, ProcessingArguments,
    ProcessingInput, ProcessingOutput, ProcessingOutputConfig, ProcessingResources,
    RegisterModelArguments, ResourceConfig, ResourceLimits, S3DataSource, S3Input, S3Output,
    StoppingCondition, StringMap, TrainingArguments, TrainingJobDefinition, TuningArguments,
    TuningJobConfig, TuningObjective,
};
use super::condition::{Condition, ConditionArguments};
use super::expression::{Argument, Expression};
use super::model::{
    Parameter, ParameterType, PipelineDefinition, PipelineExperimentConfig, PropertyFile, Step,
    StepKind, VERSION,
};
use super::spec::{HyperparameterRange, PipelineSpec};

/// Step names, in the order the steps run.
pub const DATA_QUALITY: &str = "DataQuality";
pub const MERGE_MANIFESTS: &str = "MergeManifests";
pub const PREPROCESS: &str = "Preprocess";
pub const MERGE_RECORDS: &str = "MergeRecords";
pub const TUNE: &str = "Tune";
pub const TRAIN: &str = "Train";
pub const CREATE_MODEL: &str = "CreateModel";
pub const PREDICT_TEST: &str = "PredictTest";
pub const EVALUATE: &str = "Evaluate";
pub const CHECK_ACCURACY: &str = "CheckAccuracy";
pub const REGISTER: &str = "Register";
/// The model package's customer metadata key holding the `s3://` URI of its classes.json.
pub const CLASSES_METADATA: &str = "classes";
pub const ACCURACY_BELOW_THRESHOLD: &str = "AccuracyBelowThreshold";

/// Pipeline parameters a run can override.
/// The step scripts (in `steps/`) the processing steps run.
pub const DATA_QUALITY_SCRIPT: &str = "data_quality.py";
pub const PREPROCESS_SCRIPT: &str = "preprocess.py";
pub const EVALUATE_SCRIPT: &str = "evaluate.py";
pub const MERGE_MANIFESTS_SCRIPT: &str = "merge_manifests.py";
pub const MERGE_RECORDS_SCRIPT: &str = "merge_records.py";
pub const MONITOR_SCRIPT: &str = "monitor.py";
pub const SCRIPTS: [&str; 6] = [
    DATA_QUALITY_SCRIPT,
    PREPROCESS_SCRIPT,
    EVALUATE_SCRIPT,
    MERGE_MANIFESTS_SCRIPT,
    MERGE_RECORDS_SCRIPT,
    MONITOR_SCRIPT,
];

pub const INPUT_DATA_URI: &str = "InputDataUri";
pub const PROCESSING_INSTANCE_TYPE: &str = "ProcessingInstanceType";
pub const TRAINING_INSTANCE_TYPE: &str = "TrainingInstanceType";
pub const ACCURACY_THRESHOLD: &str = "AccuracyThreshold";
pub const MODEL_APPROVAL_STATUS: &str = "ModelApprovalStatus";

/// The property file the dataset step writes (`index/split.json`): the channels' sizes the
/// training jobs' `num_training_samples` come from.
pub const DATASET_SPLIT: &str = "DatasetSplit";
const SPLIT_FILE: &str = "split.json";

/// The property file `Evaluate` writes and `CheckAccuracy` reads.
pub const EVALUATION_REPORT: &str = "EvaluationReport";
const EVALUATION_FILE: &str = "evaluation.json";

/// Preprocess outputs: the whole resized dataset, its splits and the tuning subset (RecordIO,
/// one `.rec` per channel), the splits' indexes and class names, and the test split as single
/// JPEGs for the batch transform (see docs/steps.md).
const DATASET_OUTPUTS: [&str; 8] = [
    "full",
    "train",
    "validation",
    "test",
    "tuning-train",
    "tuning-validation",
    "index",
    "test-images",
];

pub(super) const INPUT_ROOT: &str = "/opt/ml/processing/input";
/// Runs a step script after installing the step code's pinned requirements.
const BOOTSTRAP: &str = r#"python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir -r "$(dirname "$0")/requirements.txt" && exec python3 "$0" "$@""#;
pub(super) const OUTPUT_ROOT: &str = "/opt/ml/processing/output";
const RECORDIO: &str = "application/x-recordio";
/// What the built-in image-classification algorithm accepts and answers for inference.
const INFERENCE_CONTENT_TYPES: [&str; 3] = ["application/x-image", "image/jpeg", "image/png"];
const INFERENCE_RESPONSE_TYPES: [&str; 1] = ["application/json"];

/// The pipeline definition for `spec`. Pure: the same spec gives the same definition, and so
/// the same bytes from `to_json_string`.
pub fn generate(spec: &PipelineSpec) -> PipelineDefinition {
    PipelineDefinition {
        version: VERSION.to_string(),
        metadata: IndexMap::new(),
        parameters: parameters(spec),
        // The SDK's default: one experiment per pipeline, one trial per execution.
        pipeline_experiment_config: Some(PipelineExperimentConfig {
            experiment_name: Expression::execution("PipelineName").into(),
            trial_name: Expression::execution("PipelineExecutionId").into(),
            extra: Extra::new(),
        }),
        steps: data_steps(spec)
            .into_iter()
            .chain([
                tune(spec),
                train(spec),
                create_model(spec),
                predict_test(spec),
                evaluate(spec),
                check_accuracy(spec),
            ])
            .collect(),
        extra: Extra::new(),
    }
}

/// Whether the data steps run on several instances, each on a shard of the data, with a merge
/// after each (docs/steps.md).
fn sharded(spec: &PipelineSpec) -> bool {
    spec.processing.instance_count > 1
}

/// The step whose outputs are the dataset (its `DATASET_OUTPUTS`): preprocessing itself, or
/// the merge of its shards.
fn dataset_step(spec: &PipelineSpec) -> &'static str {
    if sharded(spec) {
        MERGE_RECORDS
    } else {
        PREPROCESS
    }
}

/// Data QA and preprocessing, each followed by its merge when sharded.
fn data_steps(spec: &PipelineSpec) -> Vec<Step> {
    if sharded(spec) {
        vec![
            data_quality(spec),
            merge_manifests(spec),
            preprocess(spec),
            merge_records(spec),
        ]
    } else {
        vec![data_quality(spec), preprocess(spec)]
    }
}

fn parameters(spec: &PipelineSpec) -> Vec<Parameter> {
    let parameter = |name: &str, parameter_type, default: Value| Parameter {
        name: name.to_string(),
        parameter_type,
        default_value: Some(default),
        extra: Extra::new(),
    };
    vec![
        parameter(
            INPUT_DATA_URI,
            ParameterType::String,
            spec.raw_images_uri.clone().into(),
        ),
        parameter(
            PROCESSING_INSTANCE_TYPE,
            ParameterType::String,
            spec.processing.instance_type.clone().into(),
        ),
        parameter(
            TRAINING_INSTANCE_TYPE,
            ParameterType::String,
            spec.training.instance_type.clone().into(),
        ),
        // A non-finite threshold becomes `null`, which `check` reports.
        parameter(
            ACCURACY_THRESHOLD,
            ParameterType::Float,
            spec.evaluation.threshold.into(),
        ),
        parameter(
            MODEL_APPROVAL_STATUS,
            ParameterType::String,
            spec.approval_status.as_str().into(),
        ),
    ]
}

/// Checks the raw images against the QA rules and writes a manifest of those that pass, a
/// summary and the dataset version to `s3://<data bucket>/manifests/<execution id>`.
fn data_quality(spec: &PipelineSpec) -> Step {
    let rules = &spec.quality;
    let arguments = vec![
        "--input".into(),
        format!("{INPUT_ROOT}/raw").into(),
        // The manifest records the images' S3 keys, so the script needs the prefix too.
        "--input-uri".into(),
        Argument::parameter(INPUT_DATA_URI),
        "--output".into(),
        format!("{OUTPUT_ROOT}/manifest").into(),
        "--min-width".into(),
        rules.min_width.to_string().into(),
        "--min-height".into(),
        rules.min_height.to_string().into(),
        "--allowed-formats".into(),
        rules.allowed_formats.join(",").into(),
        "--max-pixels".into(),
        spec.max_pixels.to_string().into(),
    ];
    let mut arguments = arguments;
    let mut raw = input("raw", Argument::parameter(INPUT_DATA_URI));
    if sharded(spec) {
        // Each instance receives and checks its share of the objects (ShardedByS3Key) and
        // writes a manifest shard; MergeManifests joins them.
        arguments.extend(["--input-distribution".into(), "sharded".into()]);
        if let Some(s3) = raw.s3_input.as_mut() {
            s3.s3_data_distribution_type = Some("ShardedByS3Key".into());
        }
    }
    let manifests = join(
        "/",
        vec![
            "s3:/".into(),
            literal_value(&spec.data_bucket),
            "manifests".into(),
            Expression::execution("PipelineExecutionId").into(),
        ],
    );
    processing_step(
        spec,
        DATA_QUALITY,
        DATA_QUALITY_SCRIPT,
        vec![raw],
        vec![output("manifest", manifests)],
        arguments,
    )
}

/// Joins data QA's manifest shards into the one manifest, summary and version a single
/// instance writes (steps/merge_manifests.py).
fn merge_manifests(spec: &PipelineSpec) -> Step {
    let merged = join(
        "/",
        vec![
            "s3:/".into(),
            literal_value(&spec.data_bucket),
            "manifests".into(),
            Expression::execution("PipelineExecutionId").into(),
            "merged".into(),
        ],
    );
    let mut step = processing_step(
        spec,
        MERGE_MANIFESTS,
        MERGE_MANIFESTS_SCRIPT,
        vec![input(
            "shards",
            processing_output(DATA_QUALITY, "manifest").into(),
        )],
        vec![output("manifest", merged)],
        vec![
            "--shards".into(),
            format!("{INPUT_ROOT}/shards").into(),
            "--output".into(),
            format!("{OUTPUT_ROOT}/manifest").into(),
        ],
    );
    single_instance(&mut step);
    step
}

/// Packs the shards' RecordIO parts into one `.rec` per channel and rebuilds the indexes,
/// byte for byte what one instance writes (steps/merge_records.py).
fn merge_records(spec: &PipelineSpec) -> Step {
    let outputs = DATASET_OUTPUTS
        .iter()
        .map(|name| output(name, run_prefix(spec, &["datasets", name])))
        .collect();
    let mut step = processing_step(
        spec,
        MERGE_RECORDS,
        MERGE_RECORDS_SCRIPT,
        vec![input(
            "shards",
            processing_output(PREPROCESS, "shards").into(),
        )],
        outputs,
        vec![
            "--shards".into(),
            format!("{INPUT_ROOT}/shards").into(),
            "--output".into(),
            OUTPUT_ROOT.into(),
        ],
    );
    single_instance(&mut step);
    step.property_files.push(split_property_file());
    step
}

/// A merge runs on one instance whatever the data steps' count.
pub(super) fn single_instance(step: &mut Step) {
    if let StepKind::Processing(arguments) = &mut step.kind {
        arguments.processing_resources.cluster_config.instance_count = 1.into();
    }
}

fn split_property_file() -> PropertyFile {
    PropertyFile {
        property_file_name: DATASET_SPLIT.to_string(),
        output_name: "index".to_string(),
        file_path: SPLIT_FILE.to_string(),
        extra: Extra::new(),
    }
}

/// A training job's `num_training_samples`: its train channel's size, from the split the
/// dataset step wrote (`num_training_samples.train` or `.tuning_train`), as a string.
fn training_samples(spec: &PipelineSpec, channel: &str) -> Argument<String> {
    let count = Expression::json_get(
        dataset_step(spec),
        DATASET_SPLIT,
        &format!("num_training_samples.{channel}"),
    );
    join("", vec![count.into()])
}

/// Resizes the images that passed QA, packs them as RecordIO and splits them.
fn preprocess(spec: &PipelineSpec) -> Step {
    let split = &spec.split;
    let arguments = [
        ("--manifest", format!("{INPUT_ROOT}/manifest")),
        ("--images", format!("{INPUT_ROOT}/raw")),
        ("--output", OUTPUT_ROOT.to_string()),
        ("--image-width", spec.image_size.width.to_string()),
        ("--image-height", spec.image_size.height.to_string()),
        ("--train-ratio", split.train.to_string()),
        ("--validation-ratio", split.validation.to_string()),
        ("--test-ratio", split.test.to_string()),
        // The tuning subset is this share of the train and of the validation split.
        ("--tuning-fraction", spec.tuning_subset_fraction.to_string()),
        ("--max-pixels", spec.max_pixels.to_string()),
    ]
    .into_iter()
    // The data must have the classes the training jobs are configured for.
    .chain(
        spec.static_hyperparameters
            .get("num_classes")
            .map(|classes| ("--num-classes", classes.clone())),
    )
    .flat_map(|(flag, value)| [flag.into(), value.into()])
    .collect();
    // Sharded, each instance converts its run of the (already split) records into
    // `shards/shard-I-of-N/`; MergeRecords writes the dataset's outputs.
    let outputs = if sharded(spec) {
        vec![output("shards", run_prefix(spec, &["datasets", "shards"]))]
    } else {
        DATASET_OUTPUTS
            .iter()
            .map(|name| output(name, run_prefix(spec, &["datasets", name])))
            .collect()
    };
    let manifest_step = if sharded(spec) {
        MERGE_MANIFESTS
    } else {
        DATA_QUALITY
    };
    let mut raw = input("raw", Argument::parameter(INPUT_DATA_URI));
    let mut arguments: Vec<Argument<String>> = arguments;
    if sharded(spec) {
        // Each instance receives its share of the photos (ShardedByS3Key), plans the split
        // from the whole manifest and converts the images it has; MergeRecords orders them.
        arguments.extend(["--input-distribution".into(), "sharded".into()]);
        if let Some(s3) = raw.s3_input.as_mut() {
            s3.s3_data_distribution_type = Some("ShardedByS3Key".into());
        }
    }
    let mut step = processing_step(
        spec,
        PREPROCESS,
        PREPROCESS_SCRIPT,
        vec![
            input(
                "manifest",
                processing_output(manifest_step, "manifest").into(),
            ),
            raw,
        ],
        outputs,
        arguments,
    );
    if !sharded(spec) {
        step.property_files.push(split_property_file());
    }
    step
}

/// Searches the hyperparameter ranges on the tuning subset.
fn tune(spec: &PipelineSpec) -> Step {
    let tuning = &spec.tuning;
    let tuned: Vec<&str> = tuning
        .ranges
        .iter()
        .map(HyperparameterRange::name)
        .collect();
    let mut static_hyperparameters: StringMap = static_hyperparameters(spec)
        .into_iter()
        .filter(|(name, _)| !tuned.contains(&name.as_str()))
        .collect();
    // `num_training_samples` drives the algorithm's epoch length and must match the data.
    static_hyperparameters.insert(
        "num_training_samples".to_string(),
        training_samples(spec, "tuning_train"),
    );
    let mut ranges = ParameterRanges {
        continuous_parameter_ranges: Some(Vec::new()),
        integer_parameter_ranges: Some(Vec::new()),
        categorical_parameter_ranges: Some(Vec::new()),
        extra: Extra::new(),
    };
    for range in &tuning.ranges {
        let numeric = |name: &str, min: String, max: String, scaling: &str| NumericRange {
            name: name.to_string(),
            min_value: min.into(),
            max_value: max.into(),
            scaling_type: Some(scaling.into()),
            extra: Extra::new(),
        };
        match range {
            HyperparameterRange::Continuous {
                name,
                min,
                max,
                scaling,
            } => ranges
                .continuous_parameter_ranges
                .get_or_insert_default()
                .push(numeric(
                    name,
                    min.to_string(),
                    max.to_string(),
                    scaling.as_str(),
                )),
            HyperparameterRange::Integer {
                name,
                min,
                max,
                scaling,
            } => ranges
                .integer_parameter_ranges
                .get_or_insert_default()
                .push(numeric(
                    name,
                    min.to_string(),
                    max.to_string(),
                    scaling.as_str(),
                )),
            HyperparameterRange::Categorical { name, values } => ranges
                .categorical_parameter_ranges
                .get_or_insert_default()
                .push(CategoricalRange {
                    name: name.clone(),
                    values: values.iter().map(|value| literal(value)).collect(),
                    extra: Extra::new(),
                }),
        }
    }
    let arguments = TuningArguments {
        hyper_parameter_tuning_job_config: TuningJobConfig {
            strategy: "Bayesian".into(),
            hyper_parameter_tuning_job_objective: Some(TuningObjective {
                objective_type: tuning.objective.as_str().into(),
                metric_name: literal(&tuning.objective_metric),
                extra: Extra::new(),
            }),
            resource_limits: ResourceLimits {
                max_number_of_training_jobs: Some(tuning.max_jobs.into()),
                max_parallel_training_jobs: tuning.max_parallel_jobs.into(),
                extra: Extra::new(),
            },
            parameter_ranges: Some(ranges),
            training_job_early_stopping_type: Some("Off".into()),
            extra: Extra::new(),
        },
        training_job_definition: Some(TrainingJobDefinition {
            static_hyper_parameters: Some(static_hyperparameters),
            algorithm_specification: algorithm(spec),
            input_data_config: Some(vec![
                channel(
                    "train",
                    processing_output(dataset_step(spec), "tuning-train").into(),
                ),
                channel(
                    "validation",
                    processing_output(dataset_step(spec), "tuning-validation").into(),
                ),
            ]),
            output_data_config: output_data(spec, "tuning"),
            resource_config: Some(training_resources(spec)),
            role_arn: literal(&spec.role_arn),
            stopping_condition: Some(stopping_condition(spec.training.max_runtime_seconds)),
            extra: Extra::new(),
        }),
        extra: Extra::new(),
    };
    Step::new(TUNE, StepKind::Tuning(Box::new(arguments)))
}

/// Trains on the full splits with the best tuning job's hyperparameters.
fn train(spec: &PipelineSpec) -> Step {
    let mut hyperparameters = static_hyperparameters(spec);
    hyperparameters.insert(
        "num_training_samples".to_string(),
        training_samples(spec, "train"),
    );
    for range in &spec.tuning.ranges {
        let name = range.name();
        // A tuning step's properties are DescribeHyperParameterTuningJob's response (plus
        // ListTrainingJobsForHyperParameterTuningJob's `TrainingJobSummaries`).
        // `BestTrainingJob.TunedHyperParameters` is a string map, which the SDK addresses as
        // `['name']`. Wrapped in a one-value `Std:Join`, as the SDK's `to_string()` does for
        // hyperparameters, so the value is passed on as a string.
        let best = Expression::step_property(
            TUNE,
            &format!("BestTrainingJob.TunedHyperParameters['{name}']"),
        );
        hyperparameters.insert(name.to_string(), join("", vec![best.into()]));
    }
    let arguments = TrainingArguments {
        algorithm_specification: algorithm(spec),
        hyper_parameters: Some(hyperparameters),
        input_data_config: Some(vec![
            channel(
                "train",
                processing_output(dataset_step(spec), "train").into(),
            ),
            channel(
                "validation",
                processing_output(dataset_step(spec), "validation").into(),
            ),
        ]),
        output_data_config: output_data(spec, "model"),
        resource_config: training_resources(spec),
        role_arn: literal(&spec.role_arn),
        stopping_condition: Some(stopping_condition(spec.training.max_runtime_seconds)),
        environment: None,
        extra: Extra::new(),
    };
    Step::new(TRAIN, StepKind::Training(Box::new(arguments)))
}

/// The trained model as a SageMaker model, for the batch transform over the test split. The
/// built-in algorithm's image serves its own artifacts.
fn create_model(spec: &PipelineSpec) -> Step {
    let arguments = json!({
        "ExecutionRoleArn": spec.role_arn,
        "PrimaryContainer": {
            "Image": spec.training_image_uri,
            "ModelDataUrl": model_artifacts(),
        },
    });
    Step::new(CREATE_MODEL, StepKind::Model(arguments))
}

/// Scores every test image: one request per file (`application/x-image`), one `<file>.out`
/// per image holding the class probabilities (`application/json`).
fn predict_test(spec: &PipelineSpec) -> Step {
    let arguments = json!({
        "ModelName": Expression::step_property(CREATE_MODEL, "ModelName"),
        "TransformInput": {
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": processing_output(dataset_step(spec), "test-images"),
            }},
            "ContentType": "application/x-image",
            "SplitType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": run_prefix(spec, &["predictions"]),
            "Accept": "application/json",
            "AssembleWith": "None",
        },
        "TransformResources": {
            "InstanceCount": 1,
            "InstanceType": spec.transform_instance_type(),
        },
    });
    Step::new(PREDICT_TEST, StepKind::Transform(arguments))
}

/// Scores the test split's predictions and writes `evaluation.json`.
fn evaluate(spec: &PipelineSpec) -> Step {
    let arguments = vec![
        "--predictions".into(),
        format!("{INPUT_ROOT}/predictions").into(),
        "--index".into(),
        format!("{INPUT_ROOT}/index").into(),
        "--output".into(),
        format!("{OUTPUT_ROOT}/evaluation/{EVALUATION_FILE}").into(),
    ];
    let predictions =
        Expression::step_property(PREDICT_TEST, "TransformOutput.S3OutputPath").into();
    let mut step = processing_step(
        spec,
        EVALUATE,
        EVALUATE_SCRIPT,
        vec![
            input("predictions", predictions),
            input(
                "index",
                processing_output(dataset_step(spec), "index").into(),
            ),
        ],
        vec![output("evaluation", run_prefix(spec, &["evaluation"]))],
        arguments,
    );
    single_instance(&mut step);
    step.property_files.push(PropertyFile {
        property_file_name: EVALUATION_REPORT.to_string(),
        output_name: "evaluation".to_string(),
        file_path: EVALUATION_FILE.to_string(),
        extra: Extra::new(),
    });
    step
}

/// Registers the model when its metric reaches the threshold; otherwise fails the run.
fn check_accuracy(spec: &PipelineSpec) -> Step {
    let metric = Expression::json_get(EVALUATE, EVALUATION_REPORT, &spec.evaluation.metric_path);
    let arguments = ConditionArguments {
        conditions: vec![Condition::greater_than_or_equal_to(
            metric.into(),
            Argument::parameter(ACCURACY_THRESHOLD),
        )],
        if_steps: vec![register(spec)],
        else_steps: vec![accuracy_below_threshold(spec)],
        extra: Extra::new(),
    };
    Step::new(CHECK_ACCURACY, StepKind::Condition(Box::new(arguments)))
}

fn register(spec: &PipelineSpec) -> Step {
    let strings = |values: &[&str]| Some(values.iter().map(|value| (*value).into()).collect());
    let instance_types: Option<Vec<Argument<String>>> = Some(
        spec.inference_instance_types
            .iter()
            .map(|instance_type| literal(instance_type))
            .collect(),
    );
    let report = join(
        "/",
        vec![
            processing_output(EVALUATE, "evaluation").into(),
            EVALUATION_FILE.into(),
        ],
    );
    let arguments = RegisterModelArguments {
        model_package_group_name: Some(literal(&spec.model_package_group)),
        inference_specification: Some(InferenceSpecification {
            containers: vec![ModelContainer {
                image: Some(literal(&spec.training_image_uri)),
                model_data_url: Some(model_artifacts().into()),
                environment: None,
                extra: Extra::new(),
            }],
            supported_content_types: strings(&INFERENCE_CONTENT_TYPES),
            supported_response_mime_types: strings(&INFERENCE_RESPONSE_TYPES),
            supported_realtime_inference_instance_types: instance_types.clone(),
            supported_transform_instance_types: instance_types,
            extra: Extra::new(),
        }),
        model_approval_status: Some(Argument::parameter(MODEL_APPROVAL_STATUS)),
        model_metrics: Some(ModelMetrics {
            model_quality: Some(ModelQuality {
                statistics: Some(MetricsSource {
                    content_type: "application/json".into(),
                    s3_uri: report,
                    extra: Extra::new(),
                }),
                constraints: None,
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        }),
        // Lineage: which execution produced the package; and the model's class names in
        // class-index order (preprocessing's classes.json), which the router reads.
        customer_metadata_properties: Some(StringMap::from([
            (
                "PipelineExecutionArn".to_string(),
                Expression::execution("PipelineExecutionArn").into(),
            ),
            (
                CLASSES_METADATA.to_string(),
                join(
                    "/",
                    vec![
                        processing_output(dataset_step(spec), "index").into(),
                        "classes.json".into(),
                    ],
                ),
            ),
        ])),
        extra: Extra::new(),
    };
    Step::new(REGISTER, StepKind::RegisterModel(Box::new(arguments)))
}

fn accuracy_below_threshold(spec: &PipelineSpec) -> Step {
    let message = join(
        "",
        vec![
            "The model's ".into(),
            literal_value(&spec.evaluation.metric_path),
            " is below the registration threshold of ".into(),
            Argument::parameter(ACCURACY_THRESHOLD),
            "; the model was not registered.".into(),
        ],
    );
    Step::new(
        ACCURACY_BELOW_THRESHOLD,
        StepKind::Fail(FailArguments {
            error_message: Some(message),
            extra: Extra::new(),
        }),
    )
}

// ---- shared pieces ----

pub(super) fn processing_step(
    spec: &PipelineSpec,
    name: &str,
    script: &str,
    mut inputs: Vec<ProcessingInput>,
    outputs: Vec<ProcessingOutput>,
    container_arguments: Vec<Argument<String>>,
) -> Step {
    // The whole step-code folder: the script, the modules it may share, requirements.txt.
    inputs.push(input("code", spec.code_uri.clone().into()));
    let arguments = ProcessingArguments {
        processing_resources: ProcessingResources {
            cluster_config: ClusterConfig {
                instance_count: spec.processing.instance_count.into(),
                instance_type: Argument::parameter(PROCESSING_INSTANCE_TYPE),
                volume_size_in_gb: spec.processing.volume_size_gb.into(),
                extra: Extra::new(),
            },
            extra: Extra::new(),
        },
        app_specification: AppSpecification {
            image_uri: literal(&spec.processing_image_uri),
            // The processing image lacks some of the scripts' dependencies (Pillow): install
            // the pinned requirements, then run the script (`$0`) with the step's arguments
            // (`$@`, the ContainerArguments). The job needs outbound access to PyPI.
            container_entrypoint: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                BOOTSTRAP.into(),
                format!("{INPUT_ROOT}/code/{script}").into(),
            ]),
            container_arguments: Some(container_arguments),
            extra: Extra::new(),
        },
        role_arn: literal(&spec.role_arn),
        processing_inputs: Some(inputs),
        processing_output_config: Some(ProcessingOutputConfig {
            outputs,
            kms_key_id: spec.kms_key_id.as_deref().map(literal),
            extra: Extra::new(),
        }),
        environment: None,
        stopping_condition: Some(stopping_condition(spec.processing.max_runtime_seconds)),
        extra: Extra::new(),
    };
    Step::new(name, StepKind::Processing(Box::new(arguments)))
}

/// A processing input mounted at `/opt/ml/processing/input/<name>`.
pub(super) fn input(name: &str, uri: Argument<String>) -> ProcessingInput {
    ProcessingInput {
        input_name: name.to_string(),
        app_managed: Some(false.into()),
        s3_input: Some(S3Input {
            s3_uri: uri,
            local_path: Some(format!("{INPUT_ROOT}/{name}").into()),
            s3_data_type: "S3Prefix".into(),
            s3_input_mode: Some("File".into()),
            s3_data_distribution_type: Some("FullyReplicated".into()),
            s3_compression_type: Some("None".into()),
            extra: Extra::new(),
        }),
        extra: Extra::new(),
    }
}

/// A processing output uploaded from `/opt/ml/processing/output/<name>` when the job ends.
pub(super) fn output(name: &str, uri: Argument<String>) -> ProcessingOutput {
    ProcessingOutput {
        output_name: name.to_string(),
        app_managed: Some(false.into()),
        s3_output: Some(S3Output {
            s3_uri: uri,
            local_path: Some(format!("{OUTPUT_ROOT}/{name}").into()),
            s3_upload_mode: "EndOfJob".into(),
            extra: Extra::new(),
        }),
        extra: Extra::new(),
    }
}

/// A RecordIO training channel, as the image-classification algorithm reads it.
fn channel(name: &str, uri: Argument<String>) -> Channel {
    Channel {
        channel_name: name.to_string(),
        data_source: DataSource {
            s3_data_source: Some(S3DataSource {
                s3_data_type: "S3Prefix".into(),
                s3_uri: uri,
                s3_data_distribution_type: Some("FullyReplicated".into()),
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        },
        content_type: Some(RECORDIO.into()),
        input_mode: None,
        extra: Extra::new(),
    }
}

fn algorithm(spec: &PipelineSpec) -> AlgorithmSpecification {
    AlgorithmSpecification {
        training_image: Some(literal(&spec.training_image_uri)),
        training_input_mode: "File".into(),
        extra: Extra::new(),
    }
}

fn training_resources(spec: &PipelineSpec) -> ResourceConfig {
    ResourceConfig {
        instance_count: Some(spec.training.instance_count.into()),
        instance_type: Some(Argument::parameter(TRAINING_INSTANCE_TYPE)),
        volume_size_in_gb: spec.training.volume_size_gb.into(),
        extra: Extra::new(),
    }
}

fn output_data(spec: &PipelineSpec, name: &str) -> OutputDataConfig {
    OutputDataConfig {
        s3_output_path: run_prefix(spec, &[name]),
        kms_key_id: spec.kms_key_id.as_deref().map(literal),
        extra: Extra::new(),
    }
}

fn stopping_condition(seconds: u32) -> StoppingCondition {
    StoppingCondition {
        max_runtime_in_seconds: Some(seconds.into()),
        extra: Extra::new(),
    }
}

/// The spec's static hyperparameters, with `image_shape` from the image size unless given.
fn static_hyperparameters(spec: &PipelineSpec) -> StringMap {
    let mut hyperparameters = StringMap::new();
    if !spec.static_hyperparameters.contains_key("image_shape") {
        let size = spec.image_size;
        hyperparameters.insert(
            "image_shape".to_string(),
            format!("3,{},{}", size.height, size.width).into(),
        );
    }
    for (name, value) in &spec.static_hyperparameters {
        hyperparameters.insert(name.clone(), literal(value));
    }
    hyperparameters
}

/// `s3://<artifacts>/<pipeline>/<execution id>/<parts…>`: one prefix per run, so runs never
/// overwrite each other's data or models.
fn run_prefix(spec: &PipelineSpec, parts: &[&str]) -> Argument<String> {
    let mut values = vec![
        "s3:/".into(),
        literal_value(&spec.artifacts_bucket),
        literal_value(&spec.pipeline_name),
        Expression::execution("PipelineExecutionId").into(),
    ];
    values.extend(parts.iter().map(|part| (*part).into()));
    join("/", values)
}

/// `{"Get": "Steps.<step>.ProcessingOutputConfig.Outputs['<output>'].S3Output.S3Uri"}`.
fn processing_output(step: &str, output: &str) -> Expression {
    Expression::step_property(
        step,
        &format!("ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"),
    )
}

/// The trained model's `model.tar.gz`.
fn model_artifacts() -> Expression {
    Expression::step_property(TRAIN, "ModelArtifacts.S3ModelArtifacts")
}

pub(super) fn join(on: &str, values: Vec<Argument<Value>>) -> Argument<String> {
    Expression::join(on, values).into()
}

pub(super) fn literal(value: &str) -> Argument<String> {
    Argument::Literal(value.to_string())
}

fn literal_value(value: &str) -> Argument<Value> {
    Argument::Literal(Value::String(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::check::check;
    use crate::pipeline::model::steps_by_name;
    use serde_json::json;

    fn generated() -> Value {
        let definition = generate(&PipelineSpec::example());
        serde_json::from_str(&definition.to_json_string().expect("serializes")).expect("json")
    }

    #[test]
    fn the_generated_pipeline_passes_check() {
        assert_eq!(check(&generate(&PipelineSpec::example())), []);
    }

    #[test]
    fn steps_run_in_the_platform_order() {
        let definition = generate(&PipelineSpec::example());
        let names: Vec<String> = steps_by_name(&definition).into_keys().collect();
        assert_eq!(
            names,
            [
                DATA_QUALITY,
                PREPROCESS,
                TUNE,
                TRAIN,
                CREATE_MODEL,
                PREDICT_TEST,
                EVALUATE,
                CHECK_ACCURACY,
                REGISTER,
                ACCURACY_BELOW_THRESHOLD
            ]
        );
    }

    #[test]
    fn generating_is_deterministic() {
        let spec = PipelineSpec::example();
        let first = generate(&spec).to_json_string().expect("serializes");
        let second = generate(&spec).to_json_string().expect("serializes");
        assert_eq!(first, second);
        assert!(!first.contains('\n'), "compact JSON");
    }

    #[test]
    fn the_generated_pipeline_round_trips() {
        let text = generate(&PipelineSpec::example())
            .to_json_string()
            .expect("serializes");
        let parsed = PipelineDefinition::from_json_str(&text).expect("parses");
        assert_eq!(parsed, generate(&PipelineSpec::example()));
    }

    #[test]
    fn parameters_have_the_spec_defaults() {
        let definition = generated();
        assert_eq!(
            definition["Parameters"],
            json!([
                {"Name": "InputDataUri", "Type": "String",
                 "DefaultValue": "s3://mlops-dev-data-123456789012/raw/defects/"},
                {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
                {"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.g4dn.xlarge"},
                {"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": 0.85},
                {"Name": "ModelApprovalStatus", "Type": "String",
                 "DefaultValue": "PendingManualApproval"}
            ])
        );
    }

    #[test]
    fn data_quality_writes_manifests_per_execution() {
        let definition = generated();
        let step = &definition["Steps"][0]["Arguments"];
        assert_eq!(
            step["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"],
            json!({"Std:Join": {"On": "/", "Values": [
                "s3:/", "mlops-dev-data-123456789012", "manifests",
                {"Get": "Execution.PipelineExecutionId"}]}})
        );
        assert_eq!(
            step["ProcessingInputs"][1]["S3Input"]["S3Uri"],
            "s3://mlops-dev-artifacts-123456789012/code/3f2a9c1e/"
        );
        let entrypoint = &step["AppSpecification"]["ContainerEntrypoint"];
        assert_eq!(entrypoint[0], "/bin/sh");
        assert_eq!(
            entrypoint[3],
            "/opt/ml/processing/input/code/data_quality.py"
        );
        assert_eq!(
            step["ProcessingResources"]["ClusterConfig"]["InstanceType"],
            json!({"Get": "Parameters.ProcessingInstanceType"})
        );
        let arguments = step["AppSpecification"]["ContainerArguments"].to_string();
        assert!(
            arguments.contains(
                r#""--min-width","224","--min-height","224","--allowed-formats","jpeg,png""#
            ),
            "{arguments}"
        );
    }

    #[test]
    fn tuning_searches_the_ranges_on_the_subset() {
        let definition = generated();
        let tune = &definition["Steps"][2]["Arguments"];
        let config = &tune["HyperParameterTuningJobConfig"];
        assert_eq!(
            config["HyperParameterTuningJobObjective"],
            json!({"Type": "Maximize", "MetricName": "validation:accuracy"})
        );
        assert_eq!(
            config["ResourceLimits"],
            json!({"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3})
        );
        assert_eq!(
            config["ParameterRanges"]["ContinuousParameterRanges"],
            json!([{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1",
                    "ScalingType": "Logarithmic"}])
        );
        let job = &tune["TrainingJobDefinition"];
        assert_eq!(
            job["StaticHyperParameters"],
            json!({"image_shape": "3,224,224", "num_classes": "4", "epochs": "15",
                   "use_pretrained_model": "1",
                   "num_training_samples": {"Std:Join": {"On": "", "Values": [{"Std:JsonGet": {
                       "PropertyFile": {"Get": "Steps.Preprocess.PropertyFiles.DatasetSplit"},
                       "Path": "num_training_samples.tuning_train"}}]}}})
        );
        assert_eq!(
            job["InputDataConfig"][0],
            json!({"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['tuning-train'].S3Output.S3Uri"},
                "S3DataDistributionType": "FullyReplicated"}},
                "ContentType": "application/x-recordio"})
        );
    }

    #[test]
    fn training_takes_the_best_tuned_hyperparameters() {
        let definition = generated();
        let hyperparameters = &definition["Steps"][3]["Arguments"]["HyperParameters"];
        assert_eq!(
            hyperparameters["num_training_samples"],
            json!({"Std:Join": {"On": "", "Values": [{"Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Preprocess.PropertyFiles.DatasetSplit"},
                "Path": "num_training_samples.train"}}]}})
        );
        assert_eq!(
            hyperparameters["learning_rate"],
            json!({"Std:Join": {"On": "", "Values": [
                {"Get": "Steps.Tune.BestTrainingJob.TunedHyperParameters['learning_rate']"}]}})
        );
    }

    #[test]
    fn several_instances_shard_the_data_steps_and_merge_them() {
        let mut spec = PipelineSpec::example();
        spec.processing.instance_count = 3;
        let definition: Value =
            serde_json::from_str(&generate(&spec).to_json_string().expect("serializes"))
                .expect("json");
        let names: Vec<&str> = definition["Steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|step| step["Name"].as_str())
            .collect();
        assert_eq!(
            &names[..5],
            [
                DATA_QUALITY,
                MERGE_MANIFESTS,
                PREPROCESS,
                MERGE_RECORDS,
                TUNE
            ]
        );
        let count = |name: &str| {
            step(&definition, name)["Arguments"]["ProcessingResources"]["ClusterConfig"]
                ["InstanceCount"]
                .clone()
        };
        assert_eq!(count(DATA_QUALITY), 3);
        assert_eq!(count(PREPROCESS), 3);
        assert_eq!(count(MERGE_MANIFESTS), 1);
        assert_eq!(count(MERGE_RECORDS), 1);
        assert_eq!(count(EVALUATE), 1);
        for name in [DATA_QUALITY, PREPROCESS] {
            let arguments = &step(&definition, name)["Arguments"];
            let raw = arguments["ProcessingInputs"]
                .as_array()
                .and_then(|inputs| inputs.iter().find(|input| input["InputName"] == "raw"))
                .expect("a raw input");
            assert_eq!(raw["S3Input"]["S3DataDistributionType"], "ShardedByS3Key");
            let flags = arguments["AppSpecification"]["ContainerArguments"].to_string();
            assert!(
                flags.contains(r#""--input-distribution","sharded""#),
                "{flags}"
            );
        }
        // Preprocess plans the split from the merged manifest; training reads the merge.
        assert_eq!(
            step(&definition, PREPROCESS)["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"],
            json!({"Get": "Steps.MergeManifests.ProcessingOutputConfig.Outputs['manifest'].S3Output.S3Uri"})
        );
        let train = &step(&definition, TRAIN)["Arguments"];
        assert_eq!(
            train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"],
            json!({"Get": "Steps.MergeRecords.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"})
        );
        assert_eq!(
            train["HyperParameters"]["num_training_samples"]["Std:Join"]["Values"][0]["Std:JsonGet"]
                ["PropertyFile"],
            json!({"Get": "Steps.MergeRecords.PropertyFiles.DatasetSplit"})
        );
        let problems = crate::pipeline::check::check(&generate(&spec));
        assert!(problems.is_empty(), "{problems:?}");
    }

    fn step<'a>(definition: &'a Value, name: &str) -> &'a Value {
        definition["Steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|step| step["Name"] == name))
            .unwrap_or_else(|| panic!("no step {name}"))
    }

    #[test]
    fn the_test_split_is_scored_by_a_batch_transform_of_the_trained_model() {
        let definition = generated();
        let model = step(&definition, CREATE_MODEL);
        assert_eq!(model["Type"], "Model");
        assert_eq!(
            model["Arguments"]["PrimaryContainer"]["ModelDataUrl"],
            json!({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"})
        );
        let transform = &step(&definition, PREDICT_TEST)["Arguments"];
        assert_eq!(
            transform["ModelName"],
            json!({"Get": "Steps.CreateModel.ModelName"})
        );
        assert_eq!(
            transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"],
            json!({"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test-images'].S3Output.S3Uri"})
        );
        assert_eq!(
            transform["TransformInput"]["ContentType"],
            "application/x-image"
        );
        assert_eq!(transform["TransformOutput"]["Accept"], "application/json");
        assert_eq!(
            transform["TransformResources"]["InstanceType"],
            "ml.m5.large"
        );
        let evaluate = &step(&definition, EVALUATE)["Arguments"];
        let inputs = &evaluate["ProcessingInputs"];
        assert_eq!(
            inputs[0]["S3Input"]["S3Uri"],
            json!({"Get": "Steps.PredictTest.TransformOutput.S3OutputPath"})
        );
        assert_eq!(
            inputs[1]["S3Input"]["S3Uri"],
            json!({"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['index'].S3Output.S3Uri"})
        );
        assert_eq!(
            evaluate["AppSpecification"]["ContainerArguments"],
            json!([
                "--predictions",
                "/opt/ml/processing/input/predictions",
                "--index",
                "/opt/ml/processing/input/index",
                "--output",
                "/opt/ml/processing/output/evaluation/evaluation.json"
            ])
        );
    }

    #[test]
    fn the_condition_registers_or_fails() {
        let definition = generated();
        let condition = &step(&definition, CHECK_ACCURACY)["Arguments"];
        assert_eq!(
            condition["Conditions"],
            json!([{"Type": "GreaterThanOrEqualTo",
                "LeftValue": {"Std:JsonGet": {
                    "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                    "Path": "metrics.accuracy.value"}},
                "RightValue": {"Get": "Parameters.AccuracyThreshold"}}])
        );
        let register = &condition["IfSteps"][0]["Arguments"];
        assert_eq!(
            register["ModelApprovalStatus"],
            json!({"Get": "Parameters.ModelApprovalStatus"})
        );
        assert_eq!(
            register["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"],
            "application/json"
        );
        assert_eq!(condition["ElseSteps"][0]["Type"], "Fail");
    }

    #[test]
    fn a_kms_key_encrypts_the_outputs() {
        let mut spec = PipelineSpec::example();
        spec.kms_key_id = Some("alias/mlops".to_string());
        let definition = generate(&spec);
        let text = definition.to_json_string().expect("serializes");
        assert_eq!(text.matches(r#""KmsKeyId":"alias/mlops""#).count(), 5);
        assert_eq!(check(&definition), []);
    }
}
