//! `PipelineSpec`: everything the generator needs to write one model's pipeline, as plain data
//! the config layer fills in.

use indexmap::IndexMap;

/// One model's training pipeline, described in the platform's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    /// The SageMaker pipeline's name; also the key prefix of its artifacts.
    pub pipeline_name: String,
    pub region: String,
    /// The role every job runs as.
    pub role_arn: String,
    /// Holds the raw images and the manifests data quality writes.
    pub data_bucket: String,
    /// Holds the step code, the prepared datasets, models and evaluation reports.
    pub artifacts_bucket: String,
    /// Where the raw images are: the default of the `InputDataUri` parameter.
    pub raw_images_uri: String,
    /// S3 prefix holding `data_quality.py`, `preprocess.py` and `evaluate.py`, e.g.
    /// `s3://<artifacts>/code/<hash>/`.
    pub code_uri: String,
    /// The scikit-learn processing image (see `images::sklearn_processing_image`).
    pub processing_image_uri: String,
    /// The built-in image-classification algorithm (see `images::image_classification_image`).
    pub training_image_uri: String,
    pub processing: Compute,
    pub training: Compute,
    pub quality: QualityRules,
    /// Data QA drops images with more pixels; preprocess refuses to decode them.
    pub max_pixels: u64,
    /// Images are resized to this before training; also gives the `image_shape` hyperparameter.
    pub image_size: ImageSize,
    pub split: SplitRatios,
    /// The share of the train and validation splits the tuning jobs train on, in (0, 1].
    pub tuning_subset_fraction: f64,
    pub tuning: TuningSpec,
    /// Hyperparameters every training job gets, in order (e.g. `num_classes`, `epochs`).
    /// `num_training_samples` is not among them: each job reads its channel's size from the
    /// split the dataset step writes.
    pub static_hyperparameters: IndexMap<String, String>,
    pub evaluation: EvaluationSpec,
    pub model_package_group: String,
    /// Offered for real-time and batch inference when the model is registered.
    pub inference_instance_types: Vec<String>,
    /// The default of the `ModelApprovalStatus` parameter.
    pub approval_status: ApprovalStatus,
    /// Encrypts what the jobs write; `None` leaves it to the buckets' default encryption.
    pub kms_key_id: Option<String>,
}

impl PipelineSpec {
    /// The batch transform over the test split runs on the first inference instance type (the
    /// type the package is registered for), else on the processing instance type.
    pub fn transform_instance_type(&self) -> &str {
        self.inference_instance_types
            .first()
            .unwrap_or(&self.processing.instance_type)
    }
}

/// Instances for a kind of job. The instance type is the default of a pipeline parameter, so a
/// run can override it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compute {
    pub instance_type: String,
    pub instance_count: u32,
    pub volume_size_gb: u32,
    pub max_runtime_seconds: u32,
}

/// What data quality lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityRules {
    pub min_width: u32,
    pub min_height: u32,
    /// Lower-case format names, e.g. `jpeg`, `png`.
    pub allowed_formats: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// Shares of the dataset; they should add up to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRatios {
    pub train: f64,
    pub validation: f64,
    pub test: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TuningSpec {
    /// As the algorithm emits it, e.g. `validation:accuracy`.
    pub objective_metric: String,
    pub objective: Objective,
    pub max_jobs: u32,
    pub max_parallel_jobs: u32,
    pub ranges: Vec<HyperparameterRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    Maximize,
    Minimize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HyperparameterRange {
    Continuous {
        name: String,
        min: f64,
        max: f64,
        scaling: Scaling,
    },
    Integer {
        name: String,
        min: i64,
        max: i64,
        scaling: Scaling,
    },
    Categorical {
        name: String,
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scaling {
    #[default]
    Auto,
    Linear,
    Logarithmic,
    ReverseLogarithmic,
}

/// When a trained model is good enough to register.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationSpec {
    /// Path of the metric in `evaluation.json`, e.g. `metrics.accuracy.value`.
    pub metric_path: String,
    /// The default of the `AccuracyThreshold` parameter: register when the metric is at least
    /// this.
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApprovalStatus {
    #[default]
    PendingManualApproval,
    Approved,
    Rejected,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Maximize => "Maximize",
            Objective::Minimize => "Minimize",
        }
    }
}

impl Scaling {
    pub fn as_str(self) -> &'static str {
        match self {
            Scaling::Auto => "Auto",
            Scaling::Linear => "Linear",
            Scaling::Logarithmic => "Logarithmic",
            Scaling::ReverseLogarithmic => "ReverseLogarithmic",
        }
    }
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::PendingManualApproval => "PendingManualApproval",
            ApprovalStatus::Approved => "Approved",
            ApprovalStatus::Rejected => "Rejected",
        }
    }
}

impl HyperparameterRange {
    pub fn name(&self) -> &str {
        match self {
            HyperparameterRange::Continuous { name, .. }
            | HyperparameterRange::Integer { name, .. }
            | HyperparameterRange::Categorical { name, .. } => name,
        }
    }
}

impl PipelineSpec {
    /// A complete spec for an image classifier in `eu-west-1`, for tests and documentation.
    pub fn example() -> PipelineSpec {
        let strings = |values: &[&str]| values.iter().map(|value| value.to_string()).collect();
        PipelineSpec {
            pipeline_name: "mlops-dev-defects".to_string(),
            region: "eu-west-1".to_string(),
            role_arn: "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-execution".to_string(),
            data_bucket: "mlops-dev-data-123456789012".to_string(),
            artifacts_bucket: "mlops-dev-artifacts-123456789012".to_string(),
            raw_images_uri: "s3://mlops-dev-data-123456789012/raw/defects/".to_string(),
            code_uri: "s3://mlops-dev-artifacts-123456789012/code/3f2a9c1e/".to_string(),
            processing_image_uri:
                "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
                    .to_string(),
            training_image_uri:
                "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1".to_string(),
            processing: Compute {
                instance_type: "ml.m5.xlarge".to_string(),
                instance_count: 1,
                volume_size_gb: 50,
                max_runtime_seconds: 3600,
            },
            training: Compute {
                instance_type: "ml.g4dn.xlarge".to_string(),
                instance_count: 1,
                volume_size_gb: 50,
                max_runtime_seconds: 14400,
            },
            quality: QualityRules {
                min_width: 224,
                min_height: 224,
                allowed_formats: strings(&["jpeg", "png"]),
            },
            max_pixels: 80_000_000,
            image_size: ImageSize {
                width: 224,
                height: 224,
            },
            split: SplitRatios {
                train: 0.8,
                validation: 0.1,
                test: 0.1,
            },
            tuning_subset_fraction: 0.25,
            tuning: TuningSpec {
                objective_metric: "validation:accuracy".to_string(),
                objective: Objective::Maximize,
                max_jobs: 12,
                max_parallel_jobs: 3,
                ranges: vec![
                    HyperparameterRange::Continuous {
                        name: "learning_rate".to_string(),
                        min: 0.0001,
                        max: 0.1,
                        scaling: Scaling::Logarithmic,
                    },
                    HyperparameterRange::Integer {
                        name: "mini_batch_size".to_string(),
                        min: 16,
                        max: 64,
                        scaling: Scaling::Linear,
                    },
                    HyperparameterRange::Categorical {
                        name: "optimizer".to_string(),
                        values: strings(&["sgd", "adam"]),
                    },
                ],
            },
            static_hyperparameters: [
                ("num_classes", "4"),
                ("epochs", "15"),
                ("use_pretrained_model", "1"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
            evaluation: EvaluationSpec {
                metric_path: "metrics.accuracy.value".to_string(),
                threshold: 0.85,
            },
            model_package_group: "mlops-dev-defects".to_string(),
            inference_instance_types: strings(&["ml.m5.large", "ml.g4dn.xlarge"]),
            approval_status: ApprovalStatus::PendingManualApproval,
            kms_key_id: None,
        }
    }
}
