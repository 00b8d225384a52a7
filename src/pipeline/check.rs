//! Offline checks of a pipeline definition: names, references, property files and the step
//! graph — the mistakes SageMaker would otherwise only report when the pipeline is created or,
//! worse, when a run reaches the step.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_json::Value;

use super::expression::{Argument, Expression, JsonGet, Reference};
use super::model::{ParameterType, PipelineDefinition, PlacedStep, STEP_TYPES, StepKind};
use crate::error::did_you_mean;

/// The variables `{"Get": "Execution.<name>"}` can read (the SDK's `ExecutionVariables`).
pub const EXECUTION_VARIABLES: [&str; 8] = [
    "StartDateTime",
    "CurrentDateTime",
    "PipelineName",
    "PipelineArn",
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "TrainingJobName",
    "ProcessingJobName",
];

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The step it is in, if any.
    pub step: Option<String>,
    /// JSON path inside the definition, e.g. `Steps[2].Arguments.ProcessingInputs[0]`.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem found, in definition order; cycles come last.
pub fn check(definition: &PipelineDefinition) -> Vec<Problem> {
    let placed = definition.placed_steps();
    let mut index = IndexMap::new();
    for (position, entry) in placed.iter().enumerate() {
        index.entry(entry.step.name.as_str()).or_insert(position);
    }
    let mut checker = Checker {
        definition,
        dependencies: vec![BTreeSet::new(); placed.len()],
        placed: &placed,
        index,
        problems: Vec::new(),
    };
    checker.check_parameters();
    for position in 0..placed.len() {
        checker.check_step(position);
    }
    if let Some(config) = &definition.pipeline_experiment_config {
        match serde_json::to_value(config) {
            Ok(value) => checker.walk(&value, "PipelineExperimentConfig".to_string(), None),
            Err(error) => checker.unreadable("PipelineExperimentConfig", None, &error),
        }
    }
    checker.check_cycles();
    checker.problems
}

struct Checker<'a> {
    definition: &'a PipelineDefinition,
    placed: &'a [PlacedStep<'a>],
    /// Step name → its first position in `placed`.
    index: IndexMap<&'a str, usize>,
    /// `dependencies[i]`: positions of the steps step `i` runs after.
    dependencies: Vec<BTreeSet<usize>>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(
        &mut self,
        step: Option<usize>,
        path: String,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            step: step.map(|position| self.placed[position].step.name.clone()),
            path,
            message,
            hint,
        });
    }

    fn unreadable(&mut self, path: &str, step: Option<usize>, error: &serde_json::Error) {
        self.problem(
            step,
            path.to_string(),
            format!("cannot be read back as JSON: {error}"),
            None,
        );
    }

    fn step_names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().copied()
    }

    fn check_parameters(&mut self) {
        let mut seen = BTreeSet::new();
        for (position, parameter) in self.definition.parameters.iter().enumerate() {
            let path = format!("Parameters[{position}]");
            if !is_valid_name(&parameter.name) {
                self.problem(
                    None,
                    format!("{path}.Name"),
                    format!("parameter name `{}` is not valid", parameter.name),
                    Some(NAME_RULE.to_string()),
                );
            }
            if !seen.insert(parameter.name.as_str()) {
                self.problem(
                    None,
                    format!("{path}.Name"),
                    format!("parameter `{}` is declared twice", parameter.name),
                    None,
                );
            }
            if let Some(default) = &parameter.default_value {
                let fits = match parameter.parameter_type {
                    ParameterType::String => default.is_string(),
                    ParameterType::Integer => default.is_i64() || default.is_u64(),
                    ParameterType::Float => default.is_number(),
                    ParameterType::Boolean => default.is_boolean(),
                };
                if !fits {
                    self.problem(
                        None,
                        format!("{path}.DefaultValue"),
                        format!(
                            "parameter `{}` is a {:?} but its default is `{default}`",
                            parameter.name, parameter.parameter_type
                        ),
                        None,
                    );
                }
            }
        }
    }

    fn check_step(&mut self, position: usize) {
        let entry = &self.placed[position];
        let step = entry.step;
        let path = entry.path.clone();
        self.check_name(position);
        if let StepKind::Other { step_type, .. } = &step.kind
            && !STEP_TYPES.contains(&step_type.as_str())
        {
            let hint = match did_you_mean(step_type, STEP_TYPES) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("known step types: {}", STEP_TYPES.join(", ")),
            };
            self.problem(
                Some(position),
                format!("{path}.Type"),
                format!("unknown step type `{step_type}`"),
                Some(hint),
            );
        }
        if let Some((condition, _)) = entry.parent
            && let Some(&parent) = self.index.get(condition)
        {
            // A branch step starts only once its condition has been evaluated.
            self.dependencies[position].insert(parent);
        }
        for (number, name) in step.depends_on.iter().enumerate() {
            match self.index.get(name.as_str()) {
                Some(&target) => {
                    self.dependencies[position].insert(target);
                }
                None => {
                    let hint = self.unknown_step_hint(name);
                    self.problem(
                        Some(position),
                        format!("{path}.DependsOn[{number}]"),
                        format!("depends on step `{name}`, which does not exist"),
                        Some(hint),
                    );
                }
            }
        }
        self.check_property_files(position);
        match serde_json::to_value(step) {
            Ok(mut value) => {
                // Branch steps are checked as steps of their own, under their own names.
                if let Some(arguments) = value.get_mut("Arguments").and_then(Value::as_object_mut)
                    && matches!(step.kind, StepKind::Condition(_))
                {
                    arguments.shift_remove("IfSteps");
                    arguments.shift_remove("ElseSteps");
                }
                self.walk(&value, path, Some(position));
            }
            Err(error) => self.unreadable(&path, Some(position), &error),
        }
    }

    fn check_name(&mut self, position: usize) {
        let entry = &self.placed[position];
        let name = &entry.step.name;
        let path = format!("{}.Name", entry.path);
        if !is_valid_name(name) {
            self.problem(
                Some(position),
                path.clone(),
                format!("step name `{name}` is not valid"),
                Some(NAME_RULE.to_string()),
            );
        }
        let first = self.index.get(name.as_str()).copied().unwrap_or(position);
        if first == position {
            return;
        }
        let earlier = &self.placed[first];
        let branch = |placed: &PlacedStep<'_>| {
            placed
                .parent
                .map(|(condition, branch)| format!("the {branch} of condition `{condition}`"))
        };
        let (message, hint) = match branch(earlier).or_else(|| branch(entry)) {
            Some(place) => (
                format!(
                    "step `{name}` is defined both at `{}` and at `{}`; it runs in {place}",
                    earlier.path, entry.path
                ),
                "a step a condition runs is defined only in that condition's IfSteps or ElseSteps; \
                 remove the other definition",
            ),
            None => (
                format!("step name `{name}` is already used at `{}`", earlier.path),
                "step names are unique within a pipeline, condition branches included",
            ),
        };
        self.problem(Some(position), path, message, Some(hint.to_string()));
    }

    fn check_property_files(&mut self, position: usize) {
        let entry = &self.placed[position];
        let outputs: Option<Vec<&str>> = match &entry.step.kind {
            StepKind::Processing(arguments) => Some(
                arguments
                    .processing_output_config
                    .iter()
                    .flat_map(|config| &config.outputs)
                    .map(|output| output.output_name.as_str())
                    .collect(),
            ),
            _ => None,
        };
        let mut seen = BTreeSet::new();
        for (number, file) in entry.step.property_files.iter().enumerate() {
            let path = format!("{}.PropertyFiles[{number}]", entry.path);
            if !seen.insert(file.property_file_name.as_str()) {
                self.problem(
                    Some(position),
                    format!("{path}.PropertyFileName"),
                    format!(
                        "property file `{}` is declared twice",
                        file.property_file_name
                    ),
                    None,
                );
            }
            if let Some(outputs) = &outputs
                && !outputs.contains(&file.output_name.as_str())
            {
                let hint = match did_you_mean(&file.output_name, outputs.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("the step's outputs are: {}", list(outputs)),
                };
                self.problem(
                    Some(position),
                    format!("{path}.OutputName"),
                    format!(
                        "property file `{}` is written to output `{}`, which the step does not have",
                        file.property_file_name, file.output_name
                    ),
                    Some(hint),
                );
            }
        }
    }

    /// Finds the expressions in a JSON value, wherever they are.
    fn walk(&mut self, value: &Value, path: String, step: Option<usize>) {
        if Expression::is_expression(value) {
            match serde_json::from_value::<Expression>(value.clone()) {
                Ok(expression) => self.check_expression(&expression, &path, step),
                Err(error) => self.problem(
                    step,
                    path,
                    format!("malformed expression: {error}"),
                    Some(
                        "expressions are {\"Get\": \"…\"}, {\"Std:Join\": {\"On\": …, \"Values\": […]}} \
                         or {\"Std:JsonGet\": {\"PropertyFile\": …, \"Path\": …}}"
                            .to_string(),
                    ),
                ),
            }
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    self.walk(child, join_key(&path, key), step);
                }
            }
            Value::Array(items) => {
                for (number, child) in items.iter().enumerate() {
                    self.walk(child, format!("{path}[{number}]"), step);
                }
            }
            _ => {}
        }
    }

    fn check_expression(&mut self, expression: &Expression, path: &str, step: Option<usize>) {
        for get in expression.get_paths() {
            self.check_reference(get, path, step);
        }
        for json_get in expression.json_gets() {
            self.check_json_get(json_get, path, step);
        }
    }

    fn check_reference(&mut self, get: &str, path: &str, step: Option<usize>) {
        let at = path.to_string();
        match Reference::parse(get) {
            Reference::Parameter(name) => {
                if self.definition.parameter(name).is_none() {
                    let names = self.definition.parameters.iter().map(|p| p.name.as_str());
                    let hint = match did_you_mean(name, names) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("declare `{name}` under `Parameters`"),
                    };
                    self.problem(
                        step,
                        at,
                        format!("`{get}` names parameter `{name}`, which is not declared"),
                        Some(hint),
                    );
                }
            }
            Reference::Execution(variable) => {
                if !EXECUTION_VARIABLES.contains(&variable) {
                    let hint = match did_you_mean(variable, EXECUTION_VARIABLES) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("execution variables: {}", EXECUTION_VARIABLES.join(", ")),
                    };
                    self.problem(
                        step,
                        at,
                        format!("`{get}` names no execution variable"),
                        Some(hint),
                    );
                }
            }
            Reference::Step {
                step: target,
                property,
            } => self.check_step_property(get, target, property, at, step),
            Reference::Unknown(_) => self.problem(
                step,
                at,
                format!("`{get}` is not a path SageMaker resolves"),
                Some(
                    "a `Get` path starts with `Parameters.`, `Steps.` or `Execution.`".to_string(),
                ),
            ),
        }
    }

    fn check_step_property(
        &mut self,
        get: &str,
        target: &str,
        property: &str,
        at: String,
        step: Option<usize>,
    ) {
        let Some(&target_position) = self.index.get(target) else {
            let hint = self.unknown_step_hint(target);
            self.problem(
                step,
                at,
                format!("`{get}` names step `{target}`, which does not exist"),
                Some(hint),
            );
            return;
        };
        if let Some(from) = step {
            self.dependencies[from].insert(target_position);
        }
        let target_step = self.placed[target_position].step;
        if property.is_empty() {
            self.problem(
                step,
                at,
                format!("`{get}` names no property of step `{target}`"),
                None,
            );
        } else if let Some(file) = property.strip_prefix("PropertyFiles.") {
            if !target_step
                .property_files
                .iter()
                .any(|declared| declared.property_file_name == file)
            {
                let declared: Vec<&str> = target_step
                    .property_files
                    .iter()
                    .map(|declared| declared.property_file_name.as_str())
                    .collect();
                let hint = match did_you_mean(file, declared.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None if declared.is_empty() => {
                        format!("declare it in `PropertyFiles` of step `{target}`")
                    }
                    None => format!("step `{target}` declares: {}", list(&declared)),
                };
                self.problem(
                    step,
                    at,
                    format!("step `{target}` declares no property file `{file}`"),
                    Some(hint),
                );
            }
        } else if matches!(target_step.kind, StepKind::Condition(_)) && property != "Outcome" {
            self.problem(
                step,
                at,
                format!("`{get}`: a condition step's only property is `Outcome`"),
                None,
            );
        } else if matches!(target_step.kind, StepKind::Fail(_)) {
            self.problem(
                step,
                at,
                format!("`{get}`: a Fail step has no properties"),
                None,
            );
        }
    }

    fn check_json_get(&mut self, json_get: &JsonGet, path: &str, step: Option<usize>) {
        let at = path.to_string();
        match json_get.property_file.as_deref() {
            // The `Get` form is checked with the other `Get`s.
            Some(Argument::Expression(Expression::Get(get)))
                if matches!(Reference::parse(get), Reference::Step { property, .. }
                    if property.starts_with("PropertyFiles.")) => {}
            Some(Argument::Literal(name)) => {
                let declaring: Vec<usize> = (0..self.placed.len())
                    .filter(|&position| {
                        self.placed[position]
                            .step
                            .property_files
                            .iter()
                            .any(|file| file.property_file_name == *name)
                    })
                    .collect();
                if declaring.is_empty() {
                    self.problem(
                        step,
                        at,
                        format!(
                            "`Std:JsonGet` reads property file `{name}`, which no step declares"
                        ),
                        Some(
                            "declare it in the `PropertyFiles` of the step that writes it"
                                .to_string(),
                        ),
                    );
                } else if let Some(from) = step {
                    self.dependencies[from].extend(declaring);
                }
            }
            Some(_) => self.problem(
                step,
                at,
                "the `PropertyFile` of a `Std:JsonGet` is not a property file".to_string(),
                Some("write {\"Get\": \"Steps.<step>.PropertyFiles.<name>\"}".to_string()),
            ),
            None if json_get.s3_uri.is_none() => self.problem(
                step,
                at,
                "`Std:JsonGet` has neither `PropertyFile` nor `S3Uri`".to_string(),
                None,
            ),
            None => {}
        }
    }

    fn unknown_step_hint(&self, name: &str) -> String {
        match did_you_mean(name, self.step_names()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("steps: {}", list(&self.step_names().collect::<Vec<_>>())),
        }
    }

    /// Depth-first search for dependency cycles.
    fn check_cycles(&mut self) {
        let mut state = vec![Visit::New; self.placed.len()];
        let mut cycles: Vec<Vec<usize>> = Vec::new();
        for start in 0..self.placed.len() {
            let mut stack = Vec::new();
            self.visit(start, &mut state, &mut stack, &mut cycles);
        }
        // One edge can close several cycles; report the shortest of those that overlap, since
        // breaking it is the first fix either way.
        cycles.sort_by_key(Vec::len);
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for cycle in cycles {
            if cycle.iter().any(|position| reported.contains(position)) {
                continue;
            }
            reported.extend(cycle.iter().copied());
            let names: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .map(|&position| self.placed[position].step.name.as_str())
                .collect();
            let Some(&first) = cycle.first() else {
                continue;
            };
            self.problem(
                Some(first),
                self.placed[first].path.clone(),
                format!(
                    "steps depend on each other in a cycle: {}",
                    names.join(" → ")
                ),
                Some(
                    "a step can only depend on, or read properties of, steps that run before it \
                     (steps in a condition's branches run after the condition)"
                        .to_string(),
                ),
            );
        }
    }

    fn visit(
        &self,
        position: usize,
        state: &mut [Visit],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        match state[position] {
            Visit::Done => return,
            Visit::Active => {
                if let Some(start) = stack.iter().position(|&entry| entry == position) {
                    cycles.push(stack[start..].to_vec());
                }
                return;
            }
            Visit::New => {}
        }
        state[position] = Visit::Active;
        stack.push(position);
        for &next in &self.dependencies[position] {
            self.visit(next, state, stack, cycles);
        }
        stack.pop();
        state[position] = Visit::Done;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Active,
    Done,
}

/// The published schema's pattern for step and parameter names: `^[A-Za-z0-9\-_]{1,64}$`.
const NAME_RULE: &str = "names are 1 to 64 letters, digits, `-` or `_`";

pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || matches!(character, '-' | '_'))
}

fn join_key(path: &str, key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty() {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        write!(f, "{} (at `{}`)", self.message, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(steps: Value) -> Vec<Problem> {
        problems_with(
            json!([{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.8}]),
            steps,
        )
    }

    fn problems_with(parameters: Value, steps: Value) -> Vec<Problem> {
        let definition = PipelineDefinition::from_json_str(
            &json!({"Version": "2020-12-01", "Metadata": {}, "Parameters": parameters,
                    "Steps": steps})
            .to_string(),
        )
        .expect("parses");
        check(&definition)
    }

    fn fail(name: &str, message: Value) -> Value {
        json!({"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}})
    }

    fn lambda(name: &str, arguments: Value) -> Value {
        json!({"Name": name, "Type": "Lambda", "FunctionArn": "arn", "Arguments": arguments})
    }

    fn processing(name: &str, property_file_output: &str) -> Value {
        json!({"Name": name, "Type": "Processing",
            "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                    "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
                "AppSpecification": {"ImageUri": "image"},
                "RoleArn": "role",
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation",
                    "S3Output": {"S3Uri": "s3://b/e", "LocalPath": "/opt/ml/processing/e",
                                 "S3UploadMode": "EndOfJob"}}]}},
            "PropertyFiles": [{"PropertyFileName": "Report", "OutputName": property_file_output,
                               "FilePath": "evaluation.json"}]})
    }

    fn only(problems: &[Problem]) -> &Problem {
        assert_eq!(problems.len(), 1, "{problems:#?}");
        &problems[0]
    }

    #[test]
    fn a_sound_definition_has_no_problems() {
        let found = problems(json!([
            processing("Evaluate", "evaluation"),
            {"Name": "Check", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "GreaterThanOrEqualTo",
                    "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"}, "Path": "a"}},
                    "RightValue": {"Get": "Parameters.Threshold"}}],
                "IfSteps": [lambda("Notify", json!({"at": {"Get": "Execution.StartDateTime"}}))],
                "ElseSteps": [fail("Stop", json!({"Std:Join": {"On": " ", "Values": ["below", {"Get": "Parameters.Threshold"}]}}))]}}
        ]));
        assert_eq!(found, []);
    }

    #[test]
    fn an_undeclared_parameter_is_named_with_a_hint() {
        let found = problems(json!([fail("Stop", json!({"Get": "Parameters.Treshold"}))]));
        let problem = only(&found);
        assert_eq!(problem.step.as_deref(), Some("Stop"));
        assert_eq!(problem.path, "Steps[0].Arguments.ErrorMessage");
        assert!(problem.message.contains("`Treshold`"), "{problem}");
        assert_eq!(problem.hint.as_deref(), Some("did you mean `Threshold`?"));
    }

    #[test]
    fn an_unknown_execution_variable_is_caught() {
        let found = problems(json!([fail(
            "Stop",
            json!({"Get": "Execution.PipelineExecutionID"})
        )]));
        assert_eq!(
            only(&found).hint.as_deref(),
            Some("did you mean `PipelineExecutionId`?")
        );
    }

    #[test]
    fn references_to_missing_steps_and_property_files_are_caught() {
        let found = problems(json!([
            processing("Evaluate", "evaluation"),
            lambda(
                "A",
                json!({"x": {"Get": "Steps.Evaluat.ProcessingOutputConfig"}})
            ),
            lambda(
                "B",
                json!({"x": {"Get": "Steps.Evaluate.PropertyFiles.Reprt"}})
            ),
            lambda(
                "C",
                json!({"x": {"Std:JsonGet": {"PropertyFile": "Missing", "Path": "a"}}})
            ),
            lambda(
                "D",
                json!({"x": {"Std:JsonGet": {"PropertyFile": {"Get": "Parameters.Threshold"}, "Path": "a"}}})
            ),
            lambda("E", json!({"x": {"Get": "Pipeline.Name"}})),
        ]));
        let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(found.len(), 5, "{messages:#?}");
        assert!(messages[0].contains("step `Evaluat`, which does not exist"));
        assert_eq!(found[0].hint.as_deref(), Some("did you mean `Evaluate`?"));
        assert!(messages[1].contains("declares no property file `Reprt`"));
        assert!(messages[2].contains("`Missing`, which no step declares"));
        assert!(messages[3].contains("is not a property file"));
        assert!(messages[4].contains("not a path SageMaker resolves"));
    }

    #[test]
    fn condition_and_fail_steps_have_few_properties() {
        let found = problems(json!([
            {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": [],
                "ElseSteps": [fail("Stop", json!("no"))]}},
            lambda("A", json!({"ok": {"Get": "Steps.Check.Outcome"},
                               "bad": {"Get": "Steps.Check.Result"},
                               "fail": {"Get": "Steps.Stop.ErrorMessage"}}))
        ]));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].path, "Steps[1].Arguments.bad");
        assert_eq!(found[1].path, "Steps[1].Arguments.fail");
    }

    #[test]
    fn duplicate_and_invalid_step_names_are_caught() {
        let found = problems(json!([
            fail("Stop", json!("a")),
            fail("Stop", json!("b")),
            fail("Has space", json!("c"))
        ]));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].path, "Steps[1].Name");
        assert!(found[0].message.contains("already used at `Steps[0]`"));
        assert!(found[1].message.contains("`Has space` is not valid"));
    }

    #[test]
    fn a_branch_step_defined_again_at_the_top_level_is_caught() {
        let found = problems(json!([
            {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [],
                "IfSteps": [fail("Stop", json!("a"))], "ElseSteps": []}},
            fail("Stop", json!("a"))
        ]));
        let problem = only(&found);
        assert_eq!(problem.path, "Steps[1].Name");
        assert!(
            problem.message.contains("IfSteps of condition `Check`"),
            "{problem}"
        );
    }

    #[test]
    fn depends_on_a_missing_step_is_caught() {
        let mut step = fail("Stop", json!("a"));
        step["DependsOn"] = json!(["Nope"]);
        let problem = only(&problems(json!([step]))).clone();
        assert_eq!(problem.path, "Steps[0].DependsOn[0]");
        assert!(problem.message.contains("`Nope`, which does not exist"));
    }

    #[test]
    fn cycles_are_named() {
        let a = lambda("A", json!({"x": {"Get": "Steps.B.OutputParameters"}}));
        let mut b = lambda("B", json!({}));
        b["DependsOn"] = json!(["C"]);
        let c = lambda("C", json!({"y": {"Get": "Steps.A.OutputParameters"}}));
        let found = problems(json!([a, b, c]));
        let problem = only(&found);
        assert_eq!(
            problem.message,
            "steps depend on each other in a cycle: A → B → C → A"
        );
    }

    #[test]
    fn a_condition_reading_its_own_branch_is_a_cycle() {
        let found = problems(json!([
            {"Name": "Check", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Steps.Hook.OutputParameters"}, "RightValue": 1}],
                "IfSteps": [lambda("Hook", json!({}))], "ElseSteps": []}}
        ]));
        assert!(
            only(&found).message.ends_with("Check → Hook → Check"),
            "{found:#?}"
        );
    }

    #[test]
    fn parameter_problems_are_caught() {
        let found = problems_with(
            json!([{"Name": "Count", "Type": "Integer", "DefaultValue": 1.5},
                   {"Name": "Count", "Type": "String"},
                   {"Name": "bad name", "Type": "Boolean", "DefaultValue": true}]),
            json!([]),
        );
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Parameters[0].DefaultValue",
                "Parameters[1].Name",
                "Parameters[2].Name"
            ]
        );
    }

    #[test]
    fn unknown_step_types_and_property_file_outputs_are_caught() {
        let found = problems(json!([
            processing("Evaluate", "evaluaton"),
            {"Name": "Model", "Type": "CreateModel", "Arguments": {}}
        ]));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].path, "Steps[0].PropertyFiles[0].OutputName");
        assert_eq!(found[0].hint.as_deref(), Some("did you mean `evaluation`?"));
        assert_eq!(found[1].message, "unknown step type `CreateModel`");
    }

    #[test]
    fn malformed_expressions_are_caught() {
        let found = problems(json!([lambda(
            "Hook",
            json!({"x": {"Std:Join": {"Values": 3}}})
        )]));
        assert!(only(&found).message.starts_with("malformed expression"));
    }
}
