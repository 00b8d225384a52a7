//! From an environment and one of its models to the `PipelineSpec` the generator takes.

use crate::config::{Environment, Model, Range};

use super::spec::{
    ApprovalStatus, Compute, EvaluationSpec, HyperparameterRange, ImageSize, Objective,
    PipelineSpec, QualityRules, Scaling, SplitRatios, TuningSpec,
};

/// The AWS partition of a region (`aws-cn` for `cn-north-1`, …).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN of a role the iam stack creates, known before it exists.
pub fn role_arn(environment: &Environment, role: &str) -> String {
    format!(
        "arn:{}:iam::{}:role{}{}-{role}",
        partition(&environment.region),
        environment.account_id,
        environment.iam.role_path,
        environment.prefix()
    )
}

/// The monitoring pipeline of `model`'s endpoint: where its capture lands (the endpoint
/// stack's `DataCaptureConfig`), where the reports go, and what the environment sets.
pub fn monitoring(environment: &Environment, model: &Model) -> super::monitoring::MonitoringSpec {
    let bucket = &environment.storage.artifacts_bucket_name;
    super::monitoring::MonitoringSpec {
        model: model.name.clone(),
        environment: environment.name.clone(),
        capture_uri: format!(
            "s3://{bucket}/data-capture/{}/{}/",
            model.name, model.endpoint_name
        ),
        report_uri: format!("s3://{bucket}/monitoring/{}/", model.name),
        namespace: format!("{}/{}/monitoring", environment.project, environment.name),
        low_confidence_threshold: environment.router.low_confidence_threshold,
        window_hours: environment.monitoring.window_hours,
    }
}

/// The pipeline of `model`, its processing steps reading the step code at `code_uri`
/// (`s3://<artifacts>/code/<hash>/`, see `step_code`).
pub fn spec(environment: &Environment, model: &Model, code_uri: String) -> PipelineSpec {
    let pipeline = &environment.pipeline;
    let scaling = |name: &str| match name {
        "Linear" => Scaling::Linear,
        "Logarithmic" => Scaling::Logarithmic,
        "ReverseLogarithmic" => Scaling::ReverseLogarithmic,
        _ => Scaling::Auto,
    };
    let ranges = pipeline
        .tuning
        .ranges
        .iter()
        .map(|range| match range {
            Range::Continuous {
                name,
                min,
                max,
                scaling: how,
            } => HyperparameterRange::Continuous {
                name: name.clone(),
                min: *min,
                max: *max,
                scaling: scaling(how),
            },
            Range::Integer {
                name,
                min,
                max,
                scaling: how,
            } => HyperparameterRange::Integer {
                name: name.clone(),
                min: *min as i64,
                max: *max as i64,
                scaling: scaling(how),
            },
            Range::Categorical { name, values } => HyperparameterRange::Categorical {
                name: name.clone(),
                values: values.clone(),
            },
        })
        .collect();
    let static_hyperparameters = [
        ("num_classes", model.num_classes.to_string()),
        ("epochs", pipeline.tuning.epochs.to_string()),
        ("use_pretrained_model", "1".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    PipelineSpec {
        pipeline_name: model.pipeline_name.clone(),
        region: environment.region.clone(),
        role_arn: role_arn(environment, "sagemaker-execution"),
        data_bucket: environment.storage.data_bucket_name.clone(),
        artifacts_bucket: environment.storage.artifacts_bucket_name.clone(),
        raw_images_uri: format!(
            "s3://{}/{}{}/",
            environment.storage.data_bucket_name, pipeline.raw_prefix, model.name
        ),
        code_uri,
        processing_image_uri: environment.images.processing.clone(),
        training_image_uri: environment.images.training.clone(),
        processing: Compute {
            instance_type: model.processing_instance_type.clone(),
            instance_count: pipeline.processing.instance_count,
            volume_size_gb: pipeline.processing.volume_size_gb,
            max_runtime_seconds: pipeline.processing.max_runtime_seconds,
        },
        max_pixels: pipeline.processing.max_pixels,
        training: Compute {
            instance_type: model.training_instance_type.clone(),
            instance_count: 1,
            volume_size_gb: 50,
            max_runtime_seconds: 14_400,
        },
        quality: QualityRules {
            min_width: pipeline.min_image_size,
            min_height: pipeline.min_image_size,
            allowed_formats: pipeline.allowed_formats.clone(),
        },
        image_size: ImageSize {
            width: pipeline.image_size,
            height: pipeline.image_size,
        },
        split: SplitRatios {
            train: pipeline.split.train,
            validation: pipeline.split.validation,
            test: pipeline.split.test,
        },
        tuning_subset_fraction: pipeline.tuning.subset_fraction,
        tuning: TuningSpec {
            objective_metric: pipeline.tuning.objective_metric.clone(),
            objective: Objective::Maximize,
            max_jobs: pipeline.tuning.max_jobs,
            max_parallel_jobs: pipeline.tuning.max_parallel_jobs,
            ranges,
        },
        static_hyperparameters,
        evaluation: EvaluationSpec {
            metric_path: pipeline.metric_path.clone(),
            threshold: model.accuracy_threshold,
        },
        model_package_group: model.model_package_group_name.clone(),
        inference_instance_types: vec![model.endpoint_instance_type.clone()],
        approval_status: ApprovalStatus::PendingManualApproval,
        kms_key_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_regions() {
        assert_eq!(partition("eu-west-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
