//! Writes the monitoring pipeline of one model's endpoint: one processing step running
//! `steps/monitor.py` over the endpoint's data capture, for the package it serves. Its
//! schedule (in the endpoint stack) passes that package as the `ModelPackageArn` parameter.

use indexmap::IndexMap;
use serde_json::Value;

use super::arguments::Extra;
use super::expression::{Argument, Expression};
use super::generate::{
    MONITOR_SCRIPT, OUTPUT_ROOT, PROCESSING_INSTANCE_TYPE, join, output, processing_step,
    single_instance,
};
use super::model::{Parameter, ParameterType, PipelineDefinition, VERSION};
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
