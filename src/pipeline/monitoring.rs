//! Writes the monitoring pipeline of one model's endpoint: one processing step running
//! `steps/monitor.py` over the endpoint's data capture, for the package it serves. Its
//! schedule (in the endpoint stack) passes that package as the `ModelPackageArn` parameter.

use indexmap::IndexMap;
use serde_json::Value;

use super::arguments::{Extra, StringMap};
use super::expression::{Argument, Expression};
use super::generate::{
    MONITOR_SCRIPT, OUTPUT_ROOT, PROCESSING_INSTANCE_TYPE, join, output, processing_step,
    single_instance,
};
use super::model::{Parameter, ParameterType, PipelineDefinition, StepKind, VERSION};
use super::spec::PipelineSpec;

/// The step's name.
pub const MONITOR: &str = "Monitor";
/// The parameter naming the package whose classes and test-set baseline the run compares
/// against; empty while the endpoint serves nothing.
pub const MODEL_PACKAGE_ARN: &str = "ModelPackageArn";

/// What a monitoring run reads, writes and publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringSpec {
    pub model: String,
    pub environment: String,
    /// `s3://<artifacts>/data-capture/<model>/<endpoint>/`: where the endpoint's capture lands.
    pub capture_uri: String,
    /// `s3://<artifacts>/monitoring/<model>/`: `latest.json` and the dated reports.
    pub report_uri: String,
    /// CloudWatch namespace of the published metrics.
    pub namespace: String,
    pub low_confidence_threshold: f64,
    pub window_hours: u32,
}

/// The monitoring pipeline; the training pipeline's `spec` gives the job's image, role,
/// instance type, code and key.
pub fn generate(spec: &PipelineSpec, monitoring: &MonitoringSpec) -> PipelineDefinition {
    let arguments: Vec<Argument<String>> = vec![
        "--capture-uri".into(),
        monitoring.capture_uri.clone().into(),
        "--package-arn".into(),
        Argument::parameter(MODEL_PACKAGE_ARN),
        "--output".into(),
        format!("{OUTPUT_ROOT}/report/report.json").into(),
        "--report-uri".into(),
        monitoring.report_uri.clone().into(),
        "--model".into(),
        monitoring.model.clone().into(),
        "--environment".into(),
        monitoring.environment.clone().into(),
        "--namespace".into(),
        monitoring.namespace.clone().into(),
        "--low-confidence-threshold".into(),
        monitoring.low_confidence_threshold.to_string().into(),
        "--window-hours".into(),
        monitoring.window_hours.to_string().into(),
        "--publish".into(),
    ];
    // Each run's report is also kept under its execution's id.
    let runs = join(
        "/",
        vec![
            Argument::Literal(Value::String(format!("{}runs", monitoring.report_uri))),
            Expression::execution("PipelineExecutionId").into(),
        ],
    );
    let mut step = processing_step(
        spec,
        MONITOR,
        MONITOR_SCRIPT,
        Vec::new(),
        vec![output("report", runs)],
        arguments,
    );
    single_instance(&mut step);
    // The script's own AWS clients (S3, SageMaker, CloudWatch) need the region.
    if let StepKind::Processing(arguments) = &mut step.kind {
        arguments.environment = Some(StringMap::from([(
            "AWS_DEFAULT_REGION".to_string(),
            spec.region.clone().into(),
        )]));
    }
    let parameter = |name: &str, default: Value| Parameter {
        name: name.to_string(),
        parameter_type: ParameterType::String,
        default_value: Some(default),
        extra: Extra::new(),
    };
    PipelineDefinition {
        version: VERSION.to_string(),
        metadata: IndexMap::new(),
        parameters: vec![
            parameter(MODEL_PACKAGE_ARN, "".into()),
            parameter(
                PROCESSING_INSTANCE_TYPE,
                spec.processing.instance_type.clone().into(),
            ),
        ],
        pipeline_experiment_config: None,
        steps: vec![step],
        extra: Extra::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PipelineSpec {
        let environment =
            crate::config::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "staging")
                .expect("staging loads");
        let model = environment.model("trees").expect("trees").clone();
        crate::pipeline::config::spec(&environment, &model, "s3://a/code/h/".into())
    }

    fn monitoring() -> MonitoringSpec {
        MonitoringSpec {
            model: "trees".into(),
            environment: "staging".into(),
            capture_uri: "s3://a/data-capture/trees/e/".into(),
            report_uri: "s3://a/monitoring/trees/".into(),
            namespace: "p/staging/monitoring".into(),
            low_confidence_threshold: 0.6,
            window_hours: 24,
        }
    }

    #[test]
    fn one_step_reads_the_capture_for_the_package_the_schedule_passes() {
        let definition = generate(&spec(), &monitoring());
        assert_eq!(crate::pipeline::check::check(&definition), vec![]);
        let json: serde_json::Value =
            serde_json::from_str(&definition.to_json_string().expect("json")).expect("parses");
        let step = &json["Steps"][0];
        assert_eq!(step["Name"], MONITOR);
        let arguments = &step["Arguments"];
        assert_eq!(
            arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"],
            1
        );
        assert_eq!(
            arguments["AppSpecification"]["ContainerEntrypoint"][3],
            "/opt/ml/processing/input/code/monitor.py"
        );
        let flags = arguments["AppSpecification"]["ContainerArguments"]
            .as_array()
            .expect("arguments");
        let after = |flag: &str| {
            let at = flags.iter().position(|item| item == flag).expect(flag);
            flags[at + 1].clone()
        };
        assert_eq!(after("--capture-uri"), "s3://a/data-capture/trees/e/");
        assert_eq!(
            after("--package-arn"),
            serde_json::json!({"Get": "Parameters.ModelPackageArn"})
        );
        assert!(flags.iter().any(|item| item == "--publish"));
        // Only the code is an input: a capture prefix with no objects yet fails no job.
        let inputs = arguments["ProcessingInputs"].as_array().expect("inputs");
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0]["InputName"], "code");
        assert_eq!(arguments["Environment"]["AWS_DEFAULT_REGION"], "eu-west-1");
        assert_eq!(json["Parameters"][0]["Name"], MODEL_PACKAGE_ARN);
    }
}
