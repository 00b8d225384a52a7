//! Pipeline expressions — `Get`, `Std:Join`, `Std:JsonGet` — the values SageMaker resolves at run
//! time, and the references (`Parameters.X`, `Steps.X.…`, `Execution.X`) they make.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The keys that make a one-key JSON object an expression rather than a literal.
pub const EXPRESSION_KEYS: [&str; 3] = ["Get", "Std:Join", "Std:JsonGet"];

/// An expression SageMaker evaluates when the pipeline runs. Its JSON form is a one-key object,
/// which is exactly serde's externally tagged enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expression {
    /// `{"Get": "Parameters.X" | "Steps.X.…" | "Execution.X"}`.
    #[serde(rename = "Get")]
    Get(String),
    /// `{"Std:Join": {"On": "/", "Values": […]}}`: the values as strings, joined.
    #[serde(rename = "Std:Join")]
    Join(Join),
    /// `{"Std:JsonGet": {"PropertyFile": …, "Path": "a.b"}}`: a value read from a JSON file a step
    /// wrote.
    #[serde(rename = "Std:JsonGet")]
    JsonGet(JsonGet),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    #[serde(rename = "On", default)]
    pub on: String,
    #[serde(rename = "Values")]
    pub values: Vec<Argument<Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonGet {
    /// `{"Get": "Steps.X.PropertyFiles.Y"}` as the SDK writes it, or the bare file name `"Y"`.
    #[serde(rename = "PropertyFile", skip_serializing_if = "Option::is_none")]
    pub property_file: Option<Box<Argument<String>>>,
    /// The newer form reads any JSON object in S3 (the SDK's `@step` function outputs).
    #[serde(rename = "S3Uri", skip_serializing_if = "Option::is_none")]
    pub s3_uri: Option<Box<Argument<String>>>,
    /// A JSONPath-like path inside the file, e.g. `metrics.accuracy.value`.
    #[serde(rename = "Path")]
    pub path: String,
}

/// A value in a step's arguments: a literal of type `T` or an expression resolved at run time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Argument<T> {
    Expression(Expression),
    Literal(T),
}

/// What a `Get` path points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `Parameters.<name>`.
    Parameter(&'a str),
    /// `Execution.<variable>`.
    Execution(&'a str),
    /// `Steps.<step>.<property>`; `property` is empty for a bare `Steps.<step>`.
    Step { step: &'a str, property: &'a str },
    /// Anything else: not a path SageMaker resolves.
    Unknown(&'a str),
}

impl Expression {
    /// `{"Get": path}`.
    pub fn get(path: impl Into<String>) -> Expression {
        Expression::Get(path.into())
    }

    /// `{"Get": "Parameters.<name>"}`.
    pub fn parameter(name: &str) -> Expression {
        Expression::Get(format!("Parameters.{name}"))
    }

    /// `{"Get": "Execution.<variable>"}`.
    pub fn execution(variable: &str) -> Expression {
        Expression::Get(format!("Execution.{variable}"))
    }

    /// `{"Get": "Steps.<step>.<property>"}`.
    pub fn step_property(step: &str, property: &str) -> Expression {
        Expression::Get(format!("Steps.{step}.{property}"))
    }

    /// `{"Std:Join": {"On": on, "Values": values}}`.
    pub fn join(on: &str, values: Vec<Argument<Value>>) -> Expression {
        Expression::Join(Join {
            on: on.to_string(),
            values,
        })
    }

    /// `Std:JsonGet` on property file `file` of step `step`, in the SDK's form.
    pub fn json_get(step: &str, file: &str, path: &str) -> Expression {
        Expression::JsonGet(JsonGet {
            property_file: Some(Box::new(Argument::Expression(Expression::get(format!(
                "Steps.{step}.PropertyFiles.{file}"
            ))))),
            s3_uri: None,
            path: path.to_string(),
        })
    }

    /// Whether `value` has an expression's shape: an object with exactly one expression key.
    pub fn is_expression(value: &Value) -> bool {
        match value {
            Value::Object(map) if map.len() == 1 => map
                .keys()
                .next()
                .is_some_and(|key| EXPRESSION_KEYS.contains(&key.as_str())),
            _ => false,
        }
    }

    /// Every `Get` path inside this expression, nested ones included.
    pub fn get_paths(&self) -> Vec<&str> {
        let mut paths = Vec::new();
        self.collect_get_paths(&mut paths);
        paths
    }

    fn collect_get_paths<'a>(&'a self, paths: &mut Vec<&'a str>) {
        match self {
            Expression::Get(path) => paths.push(path),
            Expression::Join(join) => {
                for value in &join.values {
                    if let Argument::Expression(expression) = value {
                        expression.collect_get_paths(paths);
                    }
                }
            }
            Expression::JsonGet(json_get) => {
                for argument in [&json_get.property_file, &json_get.s3_uri]
                    .into_iter()
                    .flatten()
                {
                    if let Argument::Expression(expression) = argument.as_ref() {
                        expression.collect_get_paths(paths);
                    }
                }
            }
        }
    }

    /// Every `Std:JsonGet` inside this expression, itself included.
    pub fn json_gets(&self) -> Vec<&JsonGet> {
        let mut found = Vec::new();
        self.collect_json_gets(&mut found);
        found
    }

    fn collect_json_gets<'a>(&'a self, found: &mut Vec<&'a JsonGet>) {
        match self {
            Expression::Get(_) => {}
            Expression::Join(join) => {
                for value in &join.values {
                    if let Argument::Expression(expression) = value {
                        expression.collect_json_gets(found);
                    }
                }
            }
            Expression::JsonGet(json_get) => {
                found.push(json_get);
                if let Some(Argument::Expression(expression)) = json_get.s3_uri.as_deref() {
                    expression.collect_json_gets(found);
                }
            }
        }
    }
}

impl<'a> Reference<'a> {
    /// Splits a `Get` path at its root. Step names cannot contain `.`, so the first `.` after
    /// the step name ends it.
    pub fn parse(path: &'a str) -> Reference<'a> {
        if let Some(name) = path.strip_prefix("Parameters.") {
            return Reference::Parameter(name);
        }
        if let Some(variable) = path.strip_prefix("Execution.") {
            return Reference::Execution(variable);
        }
        if let Some(rest) = path.strip_prefix("Steps.") {
            let (step, property) = rest.split_once('.').unwrap_or((rest, ""));
            return Reference::Step { step, property };
        }
        Reference::Unknown(path)
    }
}

impl<T> Argument<T> {
    pub fn literal(value: impl Into<T>) -> Argument<T> {
        Argument::Literal(value.into())
    }

    /// `{"Get": "Parameters.<name>"}`, so a run can override the value.
    pub fn parameter(name: &str) -> Argument<T> {
        Argument::Expression(Expression::parameter(name))
    }

    pub fn as_literal(&self) -> Option<&T> {
        match self {
            Argument::Literal(value) => Some(value),
            Argument::Expression(_) => None,
        }
    }
}

impl<T> From<Expression> for Argument<T> {
    fn from(expression: Expression) -> Self {
        Argument::Expression(expression)
    }
}

impl From<&str> for Argument<String> {
    fn from(value: &str) -> Self {
        Argument::Literal(value.to_string())
    }
}

impl From<String> for Argument<String> {
    fn from(value: String) -> Self {
        Argument::Literal(value)
    }
}

impl From<&str> for Argument<Value> {
    fn from(value: &str) -> Self {
        Argument::Literal(Value::String(value.to_string()))
    }
}

impl From<u32> for Argument<u32> {
    fn from(value: u32) -> Self {
        Argument::Literal(value)
    }
}

impl From<bool> for Argument<bool> {
    fn from(value: bool) -> Self {
        Argument::Literal(value)
    }
}

/// Decided by shape rather than by trying each variant, so a wrong literal reports what was
/// expected ("invalid type: integer `5`, expected a string") instead of serde's untagged-enum
/// "did not match any variant".
impl<'de, T: DeserializeOwned> Deserialize<'de> for Argument<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if Expression::is_expression(&value) {
            serde_json::from_value(value)
                .map(Argument::Expression)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(Argument::Literal)
                .map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expressions_keep_their_json_shapes() {
        let cases = [
            json!({"Get": "Parameters.InputDataUri"}),
            json!({"Std:Join": {"On": "/", "Values": ["s3:/", {"Get": "Execution.PipelineExecutionId"}, 3]}}),
            json!({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"}, "Path": "a.b"}}),
            json!({"Std:JsonGet": {"PropertyFile": "Report", "Path": "a.b"}}),
            json!({"Std:JsonGet": {"S3Uri": {"Get": "Steps.S.OutputDataConfig.S3OutputPath"}, "Path": "Result"}}),
        ];
        for case in cases {
            let expression: Expression = serde_json::from_value(case.clone()).expect("parses");
            assert_eq!(serde_json::to_value(&expression).expect("serializes"), case);
        }
    }

    #[test]
    fn arguments_tell_literals_from_expressions() {
        let literal: Argument<String> = serde_json::from_value(json!("ml.m5.large")).expect("ok");
        assert_eq!(literal, Argument::literal("ml.m5.large"));
        let expression: Argument<String> =
            serde_json::from_value(json!({"Get": "Parameters.Type"})).expect("ok");
        assert_eq!(expression, Argument::parameter("Type"));
        // Two keys: a literal map, not an expression.
        let map: Argument<Value> =
            serde_json::from_value(json!({"Get": "x", "Other": 1})).expect("ok");
        assert!(matches!(map, Argument::Literal(_)));
    }

    #[test]
    fn a_wrong_literal_says_what_was_expected() {
        let error = serde_json::from_value::<Argument<String>>(json!(5)).expect_err("a number");
        assert!(error.to_string().contains("expected a string"), "{error}");
        let error = serde_json::from_value::<Argument<String>>(json!({"Get": 5})).expect_err("bad");
        assert!(error.to_string().contains("expected a string"), "{error}");
    }

    #[test]
    fn get_paths_include_nested_expressions() {
        let expression: Expression =
            serde_json::from_value(json!({"Std:Join": {"On": "", "Values": [
                {"Get": "Parameters.A"},
                {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.B.PropertyFiles.C"}, "Path": "x"}}
            ]}}))
            .expect("parses");
        assert_eq!(
            expression.get_paths(),
            ["Parameters.A", "Steps.B.PropertyFiles.C"]
        );
        assert_eq!(expression.json_gets().len(), 1);
    }

    #[test]
    fn references_split_at_their_root() {
        assert_eq!(Reference::parse("Parameters.A"), Reference::Parameter("A"));
        assert_eq!(
            Reference::parse("Execution.PipelineExecutionId"),
            Reference::Execution("PipelineExecutionId")
        );
        assert_eq!(
            Reference::parse("Steps.my-step.Outputs['a.b'].S3Uri"),
            Reference::Step {
                step: "my-step",
                property: "Outputs['a.b'].S3Uri"
            }
        );
        assert_eq!(
            Reference::parse("Steps.Only"),
            Reference::Step {
                step: "Only",
                property: ""
            }
        );
        assert_eq!(
            Reference::parse("Pipeline.X"),
            Reference::Unknown("Pipeline.X")
        );
    }
}
