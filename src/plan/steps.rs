//! A pipeline definition diffed step by step: steps added, removed and changed (with the paths
//! inside each step), and pipeline parameters, never as one opaque JSON string.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::diff::{PropertyChange, diff};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepChange {
    /// The step name, or `Parameters.<name>` for a pipeline parameter.
    pub name: String,
    /// `add`, `remove` or `modify`.
    pub action: String,
    pub changes: Vec<PropertyChange>,
}

/// Step-level changes between the `PipelineDefinitionBody` strings of two pipelines'
/// properties; `None` when either has no inline body that parses (then the property diff
/// stands alone).
pub fn pipeline_changes(before: &Value, after: &Value) -> Option<Vec<StepChange>> {
    let (old, new) = (definition(before)?, definition(after)?);
    let mut changes = Vec::new();
    compare(
        &named(old.get("Parameters"), "Parameters."),
        &named(new.get("Parameters"), "Parameters."),
        &mut changes,
    );
    compare(&steps(&old), &steps(&new), &mut changes);
    Some(changes)
}

fn definition(properties: &Value) -> Option<Value> {
    let body = properties
        .get("PipelineDefinition")?
        .get("PipelineDefinitionBody")?
        .as_str()?;
    serde_json::from_str(body).ok()
}

fn named(list: Option<&Value>, prefix: &str) -> IndexMap<String, Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item.get("Name")?.as_str()?;
            Some((format!("{prefix}{name}"), item.clone()))
        })
        .collect()
}

/// Every step by name, including those nested in Condition steps' If and Else branches (the
/// branches are left out of the condition step itself, so a change shows once).
fn steps(definition: &Value) -> IndexMap<String, Value> {
    let mut all = IndexMap::new();
    collect(definition.get("Steps"), &mut all);
    all
}

fn collect(list: Option<&Value>, all: &mut IndexMap<String, Value>) {
    for step in list.and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = step.get("Name").and_then(Value::as_str) else {
            continue;
        };
        let mut step = step.clone();
        if let Some(arguments) = step.get_mut("Arguments").and_then(Value::as_object_mut) {
            for branch in ["IfSteps", "ElseSteps"] {
                if let Some(nested) = arguments.remove(branch) {
                    let names: Vec<Value> = nested
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|inner| inner.get("Name").cloned())
                        .collect();
                    collect(Some(&nested), all);
                    arguments.insert(branch.to_string(), Value::Array(names));
                }
            }
        }
        all.insert(name.to_string(), step);
    }
}

fn compare(
    old: &IndexMap<String, Value>,
    new: &IndexMap<String, Value>,
    changes: &mut Vec<StepChange>,
) {
    for (name, step) in old {
        match new.get(name) {
            None => changes.push(StepChange {
                name: name.clone(),
                action: "remove".into(),
                changes: Vec::new(),
            }),
            Some(other) if other != step => {
                let mut inner = Vec::new();
                diff("", step, other, &mut inner);
                name_flags(other, &mut inner);
                changes.push(StepChange {
                    name: name.clone(),
                    action: "modify".into(),
                    changes: inner,
                });
            }
            Some(_) => {}
        }
    }
    for name in new.keys().filter(|name| !old.contains_key(*name)) {
        changes.push(StepChange {
            name: name.clone(),
            action: "add".into(),
            changes: Vec::new(),
        });
    }
}

/// `…ContainerArguments[19]` → `…ContainerArguments[19] (--num-classes)`: a changed
/// argument is named by the flag before it, as a reviewer reads the command line.
fn name_flags(step: &Value, changes: &mut [PropertyChange]) {
    const ARGUMENTS: &str = "Arguments.AppSpecification.ContainerArguments[";
    let Some(arguments) = step
        .pointer("/Arguments/AppSpecification/ContainerArguments")
        .and_then(Value::as_array)
    else {
        return;
    };
    for change in changes {
        let Some(rest) = change.path.strip_prefix(ARGUMENTS) else {
            continue;
        };
        let Some(index) = rest
            .strip_suffix(']')
            .and_then(|number| number.parse::<usize>().ok())
        else {
            continue;
        };
        let flag = index
            .checked_sub(1)
            .and_then(|previous| arguments.get(previous))
            .and_then(Value::as_str)
            .filter(|flag| flag.starts_with("--"));
        if let Some(flag) = flag {
            change.path = format!("{} ({flag})", change.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(definition: Value) -> Value {
        json!({"PipelineDefinition": {"PipelineDefinitionBody": definition.to_string()}})
    }

    #[test]
    fn diffs_steps_and_parameters_by_name() {
        let before = pipeline(json!({
        "Parameters": [{"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": 0.8}],
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {"ResourceConfig": {"InstanceType": "ml.g5.xlarge"}}},
            {"Name": "Check", "Type": "Condition", "Arguments": {"IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {}}], "ElseSteps": []}},
            {"Name": "Old", "Type": "Processing", "Arguments": {}}
        ]}));
        let after = pipeline(json!({
        "Parameters": [{"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": 0.9}],
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {"ResourceConfig": {"InstanceType": "ml.g5.2xlarge"}}},
            {"Name": "Check", "Type": "Condition", "Arguments": {"IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {"X": 1}}], "ElseSteps": []}},
            {"Name": "New", "Type": "Processing", "Arguments": {}}
        ]}));
        let changes = pipeline_changes(&before, &after).expect("inline definitions");
        let summary: Vec<_> = changes
            .iter()
            .map(|change| (change.name.as_str(), change.action.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Parameters.AccuracyThreshold", "modify"),
                ("Train", "modify"),
                ("Register", "modify"),
                ("Old", "remove"),
                ("New", "add"),
            ]
        );
        assert_eq!(
            changes[1].changes[0].path,
            "Arguments.ResourceConfig.InstanceType"
        );
        assert_eq!(changes[1].changes[0].after, Some(json!("ml.g5.2xlarge")));
    }

    #[test]
    fn a_changed_container_argument_is_named_by_its_flag() {
        let step = |classes: &str| {
            json!({"Steps": [{"Name": "Preprocess", "Type": "Processing", "Arguments": {
                "AppSpecification": {"ContainerArguments": ["--output", "/out", "--num-classes", classes]}}}]})
        };
        let changes = pipeline_changes(&pipeline(step("3")), &pipeline(step("4"))).expect("inline");
        assert_eq!(
            changes[0].changes[0].path,
            "Arguments.AppSpecification.ContainerArguments[3] (--num-classes)"
        );
    }
}
