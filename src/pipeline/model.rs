//! The typed model of a SageMaker pipeline definition (the JSON in `PipelineDefinitionBody`):
//! parameters, steps and their kinds, with every field it does not type kept in `extra`, so an
//! SDK-made definition parses and serializes back to the same JSON.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::arguments::{
    Extra, FailArguments, ProcessingArguments, RegisterModelArguments, TrainingArguments,
    TuningArguments,
};
use super::condition::ConditionArguments;
use super::expression::Argument;

/// The only definition format version SageMaker knows.
pub const VERSION: &str = "2020-12-01";

/// Step types: the published schema's enum (its create-model step is `Model`; there is no
/// `CreateModel`), plus `Compilation` from the SDK's older `StepTypeEnum`.
pub const STEP_TYPES: [&str; 16] = [
    "Processing",
    "Training",
    "Tuning",
    "Condition",
    "RegisterModel",
    "Fail",
    "Model",
    "Transform",
    "Lambda",
    "Callback",
    "QualityCheck",
    "ClarifyCheck",
    "EMR",
    "AutoML",
    "Compilation",
    "Endpoint",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PipelineDefinition {
    pub version: String,
    /// Always written: the SDK writes `{}` when empty.
    #[serde(default)]
    pub metadata: IndexMap<String, Value>,
    /// Always written: the SDK writes `[]` when empty.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_experiment_config: Option<PipelineExperimentConfig>,
    pub steps: Vec<Step>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PipelineExperimentConfig {
    pub experiment_name: Argument<String>,
    pub trial_name: Argument<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A pipeline parameter: a run may override its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    pub name: String,
    /// The schema makes `Type` optional for strings only, so a missing type means `String`.
    #[serde(rename = "Type", default)]
    pub parameter_type: ParameterType,
    /// Kept as JSON so `1` and `1.0` stay as written; `check` matches it against the type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    #[default]
    String,
    Integer,
    Float,
    Boolean,
}

/// One step: its name, its kind (`Type` with the matching `Arguments`) and the fields every step
/// may carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Step {
    pub name: String,
    #[serde(flatten)]
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub property_files: Vec<PropertyFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_policies: Vec<RetryPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_config: Option<CacheConfig>,
    /// Step-level fields of particular kinds (`FunctionArn`, `SqsQueueUrl`, `OutputParameters`…).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A step's `Type` and its `Arguments`. The job steps the generator writes are typed; the
/// others keep their arguments as JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Processing(Box<ProcessingArguments>),
    Training(Box<TrainingArguments>),
    Tuning(Box<TuningArguments>),
    Condition(Box<ConditionArguments>),
    RegisterModel(Box<RegisterModelArguments>),
    Fail(FailArguments),
    Model(Value),
    Transform(Value),
    Lambda(Value),
    Callback(Value),
    QualityCheck(Value),
    ClarifyCheck(Value),
    Emr(Value),
    AutoMl(Value),
    /// Any other type (`Compilation`, `Endpoint`, newer ones): kept as written; `check` reports
    /// types outside `STEP_TYPES`.
    Other {
        step_type: String,
        arguments: Option<Value>,
    },
}

/// A JSON file a processing step writes, which `Std:JsonGet` can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PropertyFile {
    pub property_file_name: String,
    /// The processing output the file is written to.
    pub output_name: String,
    /// The file's path inside that output.
    pub file_path: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicy {
    /// The SDK writes a list (`["SageMaker.CAPACITY_ERROR"]`).
    pub exception_type: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// A `Number`, so `2` and `2.0` both stay as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_rate: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after_min: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CacheConfig {
    pub enabled: bool,
    /// An ISO 8601 duration, e.g. `30d` or `P30D`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A definition that is not valid JSON or does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pipeline definition at `{path}`: {message}")]
pub struct ParseError {
    /// Where in the definition, e.g. `Steps[2].Arguments`; `.` for the whole document.
    pub path: String,
    pub message: String,
}

/// Which branch of a condition a nested step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    If,
    Else,
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Branch::If => "IfSteps",
            Branch::Else => "ElseSteps",
        })
    }
}

/// A step together with where it sits in the definition.
#[derive(Debug, Clone)]
pub struct PlacedStep<'a> {
    pub step: &'a Step,
    /// JSON path of the step, e.g. `Steps[5].Arguments.IfSteps[0]`.
    pub path: String,
    /// The condition step (and branch) it is nested in, if any.
    pub parent: Option<(&'a str, Branch)>,
}

impl PipelineDefinition {
    /// Parses definition JSON; errors name the JSON path of the offending value.
    pub fn from_json_str(text: &str) -> Result<PipelineDefinition, ParseError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let definition: PipelineDefinition = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| ParseError {
                path: error.path().to_string(),
                message: error.inner().to_string(),
            })?;
        deserializer.end().map_err(|error| ParseError {
            path: ".".to_string(),
            message: error.to_string(),
        })?;
        Ok(definition)
    }

    /// Compact JSON, as `PipelineDefinitionBody` takes it. Field order is the model's, so the
    /// same definition always gives the same bytes.
    pub fn to_json_string(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters
            .iter()
            .find(|parameter| parameter.name == name)
    }

    /// Every step, condition branches included (each right after its condition step), with its
    /// JSON path.
    pub fn placed_steps(&self) -> Vec<PlacedStep<'_>> {
        let mut placed = Vec::new();
        for (index, step) in self.steps.iter().enumerate() {
            place(step, format!("Steps[{index}]"), None, &mut placed);
        }
        placed
    }
}

fn place<'a>(
    step: &'a Step,
    path: String,
    parent: Option<(&'a str, Branch)>,
    placed: &mut Vec<PlacedStep<'a>>,
) {
    placed.push(PlacedStep {
        step,
        path: path.clone(),
        parent,
    });
    if let StepKind::Condition(arguments) = &step.kind {
        for (branch, steps) in [
            (Branch::If, &arguments.if_steps),
            (Branch::Else, &arguments.else_steps),
        ] {
            for (index, nested) in steps.iter().enumerate() {
                place(
                    nested,
                    format!("{path}.Arguments.{branch}[{index}]"),
                    Some((step.name.as_str(), branch)),
                    placed,
                );
            }
        }
    }
}

/// Every step by name, those nested in conditions included, in definition order; for a later
/// step-by-step diff. A duplicated name keeps its first step (`check` reports duplicates).
pub fn steps_by_name(definition: &PipelineDefinition) -> IndexMap<String, &Step> {
    let mut steps = IndexMap::new();
    for placed in definition.placed_steps() {
        steps.entry(placed.step.name.clone()).or_insert(placed.step);
    }
    steps
}

impl Step {
    pub fn new(name: &str, kind: StepKind) -> Step {
        Step {
            name: name.to_string(),
            kind,
            depends_on: Vec::new(),
            display_name: None,
            description: None,
            property_files: Vec::new(),
            retry_policies: Vec::new(),
            cache_config: None,
            extra: Extra::new(),
        }
    }
}

impl StepKind {
    /// The step's `Type` as written in the definition.
    pub fn type_name(&self) -> &str {
        match self {
            StepKind::Processing(_) => "Processing",
            StepKind::Training(_) => "Training",
            StepKind::Tuning(_) => "Tuning",
            StepKind::Condition(_) => "Condition",
            StepKind::RegisterModel(_) => "RegisterModel",
            StepKind::Fail(_) => "Fail",
            StepKind::Model(_) => "Model",
            StepKind::Transform(_) => "Transform",
            StepKind::Lambda(_) => "Lambda",
            StepKind::Callback(_) => "Callback",
            StepKind::QualityCheck(_) => "QualityCheck",
            StepKind::ClarifyCheck(_) => "ClarifyCheck",
            StepKind::Emr(_) => "EMR",
            StepKind::AutoMl(_) => "AutoML",
            StepKind::Other { step_type, .. } => step_type,
        }
    }

    fn from_parts(step_type: String, arguments: Option<Value>) -> Result<StepKind, String> {
        let json = |arguments: Option<Value>| {
            arguments.ok_or_else(|| format!("a `{step_type}` step needs `Arguments`"))
        };
        Ok(match step_type.as_str() {
            "Processing" => StepKind::Processing(typed(&step_type, arguments)?),
            "Training" => StepKind::Training(typed(&step_type, arguments)?),
            "Tuning" => StepKind::Tuning(typed(&step_type, arguments)?),
            "Condition" => StepKind::Condition(typed(&step_type, arguments)?),
            "RegisterModel" => StepKind::RegisterModel(typed(&step_type, arguments)?),
            "Fail" => StepKind::Fail(typed(&step_type, arguments)?),
            "Model" => StepKind::Model(json(arguments)?),
            "Transform" => StepKind::Transform(json(arguments)?),
            "Lambda" => StepKind::Lambda(json(arguments)?),
            "Callback" => StepKind::Callback(json(arguments)?),
            "QualityCheck" => StepKind::QualityCheck(json(arguments)?),
            "ClarifyCheck" => StepKind::ClarifyCheck(json(arguments)?),
            "EMR" => StepKind::Emr(json(arguments)?),
            "AutoML" => StepKind::AutoMl(json(arguments)?),
            _ => StepKind::Other {
                step_type,
                arguments,
            },
        })
    }

    fn arguments(&self) -> Option<ArgumentsRef<'_>> {
        Some(match self {
            StepKind::Processing(arguments) => ArgumentsRef::Processing(arguments),
            StepKind::Training(arguments) => ArgumentsRef::Training(arguments),
            StepKind::Tuning(arguments) => ArgumentsRef::Tuning(arguments),
            StepKind::Condition(arguments) => ArgumentsRef::Condition(arguments),
            StepKind::RegisterModel(arguments) => ArgumentsRef::RegisterModel(arguments),
            StepKind::Fail(arguments) => ArgumentsRef::Fail(arguments),
            StepKind::Model(arguments)
            | StepKind::Transform(arguments)
            | StepKind::Lambda(arguments)
            | StepKind::Callback(arguments)
            | StepKind::QualityCheck(arguments)
            | StepKind::ClarifyCheck(arguments)
            | StepKind::Emr(arguments)
            | StepKind::AutoMl(arguments) => ArgumentsRef::Json(arguments),
            StepKind::Other { arguments, .. } => ArgumentsRef::Json(arguments.as_ref()?),
        })
    }
}

/// Typed arguments, parsed with their path so an error inside names where.
fn typed<T: DeserializeOwned>(step_type: &str, arguments: Option<Value>) -> Result<T, String> {
    let arguments = arguments.ok_or_else(|| format!("a `{step_type}` step needs `Arguments`"))?;
    serde_path_to_error::deserialize(arguments).map_err(|error| {
        format!(
            "`{step_type}` step, at `Arguments.{}`: {}",
            error.path(),
            error.inner()
        )
    })
}

#[derive(Serialize)]
#[serde(untagged)]
enum ArgumentsRef<'a> {
    Processing(&'a ProcessingArguments),
    Training(&'a TrainingArguments),
    Tuning(&'a TuningArguments),
    Condition(&'a ConditionArguments),
    RegisterModel(&'a RegisterModelArguments),
    Fail(&'a FailArguments),
    Json(&'a Value),
}

/// Written as the `Type` and `Arguments` entries of the step that flattens it.
impl Serialize for StepKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("Type", self.type_name())?;
        if let Some(arguments) = self.arguments() {
            map.serialize_entry("Arguments", &arguments)?;
        }
        map.end()
    }
}

/// Read from the `Type` and `Arguments` entries of the step that flattens it; the arguments'
/// shape is chosen by the type.
impl<'de> Deserialize<'de> for StepKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Tagged {
            #[serde(rename = "Type")]
            step_type: String,
            #[serde(rename = "Arguments")]
            arguments: Option<Value>,
        }
        let Tagged {
            step_type,
            arguments,
        } = Tagged::deserialize(deserializer)?;
        StepKind::from_parts(step_type, arguments).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(definition: Value) -> PipelineDefinition {
        let parsed = PipelineDefinition::from_json_str(&definition.to_string()).expect("parses");
        let written: Value =
            serde_json::from_str(&parsed.to_json_string().expect("serializes")).expect("json");
        assert_eq!(written, definition);
        parsed
    }

    #[test]
    fn unknown_fields_and_types_are_kept() {
        let parsed = round_trip(json!({
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [{"Name": "Mode", "Type": "String", "DefaultValue": "a",
                            "Description": "kept"}],
            "Steps": [
                {"Name": "Hook", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:…",
                 "Arguments": {"x": {"Get": "Parameters.Mode"}},
                 "OutputParameters": [{"OutputName": "y", "OutputType": "String"}]},
                {"Name": "Compile", "Type": "Compilation", "Arguments": {"a": 1},
                 "RetryPolicies": [{"ExceptionType": ["Step.THROTTLING"], "BackoffRate": 2,
                                    "MaxAttempts": 3}]},
                {"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "no"},
                 "DisplayName": "Stop here", "Future": true}
            ],
            "FutureTopLevel": [1]
        }));
        assert_eq!(parsed.parameters[0].extra.len(), 1);
        assert!(matches!(parsed.steps[0].kind, StepKind::Lambda(_)));
        assert_eq!(parsed.steps[0].extra.len(), 2);
        assert_eq!(parsed.steps[1].kind.type_name(), "Compilation");
        assert_eq!(parsed.steps[2].extra.len(), 1);
    }

    #[test]
    fn nested_steps_are_placed_after_their_condition() {
        let parsed = round_trip(json!({
            "Version": "2020-12-01", "Metadata": {}, "Parameters": [],
            "Steps": [{"Name": "Check", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}],
                "IfSteps": [{"Name": "Yes", "Type": "Fail", "Arguments": {}}],
                "ElseSteps": [{"Name": "No", "Type": "Fail", "Arguments": {}}]}}]
        }));
        let placed: Vec<(String, String)> = parsed
            .placed_steps()
            .into_iter()
            .map(|placed| (placed.step.name.clone(), placed.path))
            .collect();
        assert_eq!(
            placed,
            [
                ("Check".to_string(), "Steps[0]".to_string()),
                (
                    "Yes".to_string(),
                    "Steps[0].Arguments.IfSteps[0]".to_string()
                ),
                (
                    "No".to_string(),
                    "Steps[0].Arguments.ElseSteps[0]".to_string()
                ),
            ]
        );
        let names: Vec<String> = steps_by_name(&parsed).into_keys().collect();
        assert_eq!(names, ["Check", "Yes", "No"]);
    }

    #[test]
    fn parse_errors_name_the_path() {
        let error = PipelineDefinition::from_json_str(
            &json!({"Version": "2020-12-01", "Steps": [
                {"Name": "A", "Type": "Processing", "Arguments": {
                    "ProcessingResources": {"ClusterConfig": {
                        "InstanceCount": "one", "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
                    "AppSpecification": {"ImageUri": "i"}, "RoleArn": "r"}}]})
            .to_string(),
        )
        .expect_err("a string count");
        assert!(error.path.starts_with("Steps[0]"), "{error}");
        assert!(
            error
                .message
                .contains("ProcessingResources.ClusterConfig.InstanceCount"),
            "{error}"
        );
    }

    #[test]
    fn a_typed_step_without_arguments_is_an_error() {
        let error = PipelineDefinition::from_json_str(
            r#"{"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Training"}]}"#,
        )
        .expect_err("no arguments");
        assert!(error.message.contains("needs `Arguments`"), "{error}");
    }
}
