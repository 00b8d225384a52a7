//! Pipeline definitions: SDK-made references parse unchanged and round-trip, they and the
//! generated pipeline pass `check`, and each kind of broken definition is caught.

use std::path::PathBuf;

use mlops_infra::pipeline::{
    PipelineDefinition, PipelineSpec, Problem, StepKind, check, generate, steps_by_name,
};
use serde_json::{Value, json};

const REFERENCES: [&str; 2] = [
    "processing-training-evaluate-register.json",
    "processing-training-transform-register.json",
];

/// The SDK-made definitions live in the shared reference folder beside the repository
/// (`../shared/reference/pipeline-definitions`); `PIPELINE_REFERENCES` points elsewhere.
fn reference(name: &str) -> String {
    let folder = std::env::var_os("PIPELINE_REFERENCES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/reference/pipeline-definitions")
        });
    let path = folder.join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse(text: &str) -> PipelineDefinition {
    PipelineDefinition::from_json_str(text).unwrap_or_else(|error| panic!("{error}"))
}

fn to_value(definition: &PipelineDefinition) -> Value {
    serde_json::from_str(&definition.to_json_string().expect("serializes")).expect("valid JSON")
}

#[test]
fn reference_definitions_round_trip_unchanged() {
    for name in REFERENCES {
        let text = reference(name);
        let original: Value = serde_json::from_str(&text).expect("reference is JSON");
        assert_eq!(to_value(&parse(&text)), original, "{name}");
    }
}

#[test]
fn reference_definitions_pass_check() {
    for name in REFERENCES {
        assert_eq!(
            check(&parse(&reference(name))),
            Vec::<Problem>::new(),
            "{name}"
        );
    }
}

#[test]
fn reference_steps_get_their_typed_kinds() {
    let first = parse(&reference(REFERENCES[0]));
    let kinds: Vec<&str> = first.steps.iter().map(|s| s.kind.type_name()).collect();
    assert_eq!(
        kinds,
        ["Processing", "Training", "Processing", "RegisterModel"]
    );
    assert!(matches!(first.steps[0].kind, StepKind::Processing(_)));
    assert!(matches!(first.steps[3].kind, StepKind::RegisterModel(_)));
    assert_eq!(
        first.steps[2].property_files[0].property_file_name,
        "EvaluationMetrics"
    );

    let second = parse(&reference(REFERENCES[1]));
    let steps = steps_by_name(&second);
    assert!(matches!(
        steps["calhousing-CreateModel-CreateModel"].kind,
        StepKind::Model(_)
    ));
    assert!(matches!(
        steps["calhousing-Transform"].kind,
        StepKind::Transform(_)
    ));
}

#[test]
fn the_generated_definition_passes_check_and_round_trips() {
    let definition = generate(&PipelineSpec::example());
    assert_eq!(check(&definition), Vec::<Problem>::new());
    let text = definition.to_json_string().expect("serializes");
    assert_eq!(parse(&text), definition);
    assert_eq!(
        generate(&PipelineSpec::example())
            .to_json_string()
            .expect("serializes"),
        text,
        "same spec, same bytes"
    );
}

/// The generated definition, changed by `change`, then checked.
fn problems_after(change: impl FnOnce(&mut Value)) -> Vec<Problem> {
    let mut definition = to_value(&generate(&PipelineSpec::example()));
    change(&mut definition);
    check(&parse(&definition.to_string()))
}

fn step_mut<'a>(definition: &'a mut Value, name: &str) -> &'a mut Value {
    let steps = definition["Steps"].as_array_mut().expect("steps");
    steps
        .iter_mut()
        .find(|step| step["Name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn one(problems: Vec<Problem>) -> Problem {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().expect("one problem")
}

#[test]
fn an_undeclared_parameter_is_caught_everywhere_it_is_used() {
    let problems = problems_after(|definition| {
        definition["Parameters"]
            .as_array_mut()
            .expect("parameters")
            .retain(|parameter| parameter["Name"] != "AccuracyThreshold");
    });
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Steps[7].Arguments.Conditions[0].RightValue",
            "Steps[7].Arguments.ElseSteps[0].Arguments.ErrorMessage",
        ]
    );
    assert!(
        problems[0]
            .message
            .contains("`AccuracyThreshold`, which is not declared")
    );
    assert_eq!(problems[1].step.as_deref(), Some("AccuracyBelowThreshold"));
}

#[test]
fn an_unknown_execution_variable_is_caught() {
    let problem = one(problems_after(|definition| {
        step_mut(definition, "DataQuality")["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]
            ["S3Output"]["S3Uri"]["Std:Join"]["Values"][3] =
            json!({"Get": "Execution.ExecutionId"});
    }));
    assert_eq!(
        problem.path,
        "Steps[0].Arguments.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"
    );
    assert_eq!(
        problem.message,
        "`Execution.ExecutionId` names no execution variable"
    );
}

#[test]
fn a_reference_to_a_missing_step_is_caught() {
    let problem = one(problems_after(|definition| {
        step_mut(definition, "Evaluate")["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] =
            json!({"Get": "Steps.Training.ModelArtifacts.S3ModelArtifacts"});
    }));
    assert_eq!(problem.step.as_deref(), Some("Evaluate"));
    assert!(
        problem
            .message
            .contains("step `Training`, which does not exist")
    );
    assert_eq!(problem.hint.as_deref(), Some("did you mean `Train`?"));
}

#[test]
fn a_json_get_on_an_undeclared_property_file_is_caught() {
    let problem = one(problems_after(|definition| {
        step_mut(definition, "Evaluate")["PropertyFiles"][0]["PropertyFileName"] = json!("Report");
    }));
    assert_eq!(problem.step.as_deref(), Some("CheckAccuracy"));
    assert_eq!(problem.path, "Steps[7].Arguments.Conditions[0].LeftValue");
    assert_eq!(
        problem.message,
        "step `Evaluate` declares no property file `EvaluationReport`"
    );
}

#[test]
fn a_property_file_on_an_undeclared_output_is_caught() {
    let problem = one(problems_after(|definition| {
        step_mut(definition, "Evaluate")["PropertyFiles"][0]["OutputName"] = json!("report");
    }));
    assert_eq!(problem.path, "Steps[6].PropertyFiles[0].OutputName");
}

#[test]
fn duplicate_and_invalid_step_names_are_caught() {
    let problems = problems_after(|definition| {
        let copy = definition["Steps"][0].clone();
        definition["Steps"]
            .as_array_mut()
            .expect("steps")
            .push(copy);
        definition["Steps"][7]["Arguments"]["ElseSteps"][0]["Name"] = json!("Accuracy too low");
    });
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0].path, "Steps[7].Arguments.ElseSteps[0].Name");
    assert!(problems[0].message.contains("is not valid"));
    assert_eq!(problems[1].path, "Steps[8].Name");
    assert!(problems[1].message.contains("already used at `Steps[0]`"));
}

#[test]
fn a_branch_step_also_at_the_top_level_is_caught() {
    let problem = one(problems_after(|definition| {
        let register = definition["Steps"][7]["Arguments"]["IfSteps"][0].clone();
        definition["Steps"]
            .as_array_mut()
            .expect("steps")
            .push(register);
    }));
    assert!(
        problem
            .message
            .contains("it runs in the IfSteps of condition `CheckAccuracy`"),
        "{problem}"
    );
}

#[test]
fn depends_on_a_missing_step_is_caught() {
    let problem = one(problems_after(|definition| {
        step_mut(definition, "Tune")["DependsOn"] = json!(["Preprocessing"]);
    }));
    assert_eq!(problem.path, "Steps[2].DependsOn[0]");
    assert_eq!(problem.hint.as_deref(), Some("did you mean `Preprocess`?"));
}

#[test]
fn a_dependency_cycle_is_named() {
    let problem = one(problems_after(|definition| {
        step_mut(definition, "Preprocess")["DependsOn"] = json!(["Evaluate"]);
    }));
    assert_eq!(
        problem.message,
        "steps depend on each other in a cycle: Preprocess → Evaluate → Preprocess"
    );
}

#[test]
fn an_unknown_step_type_is_caught() {
    let problem = one(problems_after(|definition| {
        definition["Steps"]
            .as_array_mut()
            .expect("steps")
            .push(json!({"Name": "Extra", "Type": "Proccessing", "Arguments": {}}));
    }));
    assert_eq!(problem.path, "Steps[8].Type");
    assert_eq!(problem.hint.as_deref(), Some("did you mean `Processing`?"));
}

#[test]
fn a_default_of_the_wrong_type_is_caught() {
    let problem = one(problems_after(|definition| {
        definition["Parameters"][3]["DefaultValue"] = json!("0.85");
    }));
    assert_eq!(problem.path, "Parameters[3].DefaultValue");
}

#[test]
fn shapes_the_model_rejects_are_parse_errors_with_a_path() {
    let mut definition = to_value(&generate(&PipelineSpec::example()));
    definition["Steps"][7]["Arguments"]["Conditions"][0]["Type"] = json!("AtLeast");
    let error = PipelineDefinition::from_json_str(&definition.to_string()).expect_err("rejected");
    assert_eq!(error.path, "Steps[7]");
    assert!(
        error.message.contains("unknown variant `AtLeast`"),
        "{error}"
    );
}
