//! Condition steps: the conditions SageMaker evaluates and the steps each outcome runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arguments::Extra;
use super::expression::Argument;
use super::model::Step;

/// The `Arguments` of a `Condition` step. If every condition holds, `IfSteps` run; otherwise
/// `ElseSteps`. Branch steps are defined here and nowhere else in the definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConditionArguments {
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub if_steps: Vec<Step>,
    #[serde(default)]
    pub else_steps: Vec<Step>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One condition, tagged by `Type`. The comparison and membership types come from the published
/// schema and the SDK's `ConditionTypeEnum`; membership uses the SDK's field names
/// (`QueryValue`, `Values`), which the service accepts, not the schema's outdated ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum Condition {
    Equals(Comparison),
    NotEquals(Comparison),
    GreaterThan(Comparison),
    GreaterThanOrEqualTo(Comparison),
    LessThan(Comparison),
    LessThanOrEqualTo(Comparison),
    In(Membership),
    NotIn(Membership),
    Not(Negation),
    Or(Disjunction),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Comparison {
    pub left_value: Argument<Value>,
    pub right_value: Argument<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Membership {
    pub query_value: Argument<Value>,
    pub values: Vec<Argument<Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Negation {
    pub condition: Box<Condition>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Disjunction {
    pub conditions: Vec<Condition>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Condition {
    /// `left >= right`.
    pub fn greater_than_or_equal_to(left: Argument<Value>, right: Argument<Value>) -> Condition {
        Condition::GreaterThanOrEqualTo(Comparison {
            left_value: left,
            right_value: right,
            extra: Extra::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_conditions_round_trip() {
        let conditions = json!([
            {"Type": "GreaterThanOrEqualTo",
             "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.E.PropertyFiles.R"}, "Path": "a"}},
             "RightValue": {"Get": "Parameters.Threshold"}},
            {"Type": "Not", "Condition": {"Type": "In", "QueryValue": {"Get": "Parameters.Mode"},
                                          "Values": ["a", "b"]}},
            {"Type": "Or", "Conditions": [
                {"Type": "LessThan", "LeftValue": 1, "RightValue": 2.5},
                {"Type": "Equals", "LeftValue": {"Get": "Steps.C.Outcome"}, "RightValue": true}
            ]}
        ]);
        let typed: Vec<Condition> = serde_json::from_value(conditions.clone()).expect("parses");
        assert!(matches!(typed[1], Condition::Not(_)));
        assert_eq!(
            serde_json::to_value(&typed).expect("serializes"),
            conditions
        );
    }

    #[test]
    fn an_unknown_condition_type_is_named() {
        let error = serde_json::from_value::<Condition>(
            json!({"Type": "GreaterThen", "LeftValue": 1, "RightValue": 2}),
        )
        .expect_err("unknown type");
        assert!(error.to_string().contains("GreaterThen"), "{error}");
    }
}
