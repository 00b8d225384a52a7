//! An environment deployed with the earlier layout (every model package group in one shared
//! `registry` stack) moves to the current one (each group in its model's pipeline stack)
//! against the in-memory CloudFormation: the plan shows the moves, apply refactors the stacks
//! without creating or deleting a group, deletes the emptied `registry`, and plans clean after.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::capture::{Captured as Run, capture};
use common::repo;
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::aws::{CloudFormation, RefactorRequest, RefactorState, TemplateSource};
use mlops_infra::cli::{PlanArgs, PlanFormat};
use mlops_infra::commands::deploy;
use mlops_infra::error::ExitStatus;
use mlops_infra::template::Template;

const PREFIX: &str = "mlops-images-staging";
const MODELS: [&str; 4] = ["plants", "trees", "flowers", "grasses"];

async fn apply(fake: &FakeCloudFormation, project: &Path) -> Run {
    let args = common::apply_args("staging");
    let platform = FakePlatform::new("222222222222");
    capture("apply", async |output, context| {
        deploy::apply(fake, &platform, project, &args, output, context).await
    })
    .await
}

async fn plan(fake: &FakeCloudFormation, project: &Path, format: PlanFormat) -> Run {
    let args = PlanArgs {
        environment: "staging".into(),
        output: format,
        detailed_exitcode: true,
        stacks: Vec::new(),
        out: None,
        refresh: false,
        revert_drift: false,
    };
    let platform = FakePlatform::new("222222222222");
    capture("plan", async |output, context| {
        deploy::plan(fake, &platform, project, &args, output, context).await
    })
    .await
}

fn old_logical_id(model: &str) -> String {
    let mut chars = model.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('X');
    format!("{first}{}ModelPackageGroup", chars.as_str())
}

async fn refactor(fake: &FakeCloudFormation, request: &RefactorRequest) {
    let id = fake.create_stack_refactor(request).await.expect("create");
    assert_eq!(
        fake.stack_refactor(&id).await.expect("describe"),
        RefactorState::Ready
    );
    fake.execute_stack_refactor(&id).await.expect("execute");
    assert_eq!(
        fake.stack_refactor(&id).await.expect("describe"),
        RefactorState::Complete
    );
}

fn body(template: &Template) -> TemplateSource {
    TemplateSource::Body(template.to_yaml_string())
}

/// Staging as the earlier layout deployed it: the current layout applied, then every group
/// moved into a `registry` stack under its old logical id (a placeholder keeps `registry`
/// valid until the groups arrive, then goes). Returns each group's physical id.
async fn deploy_earlier_layout(fake: &FakeCloudFormation) -> BTreeMap<String, String> {
    let applied = apply(fake, &repo()).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    let registry_name = format!("{PREFIX}-registry");
    let placeholder = "AWSTemplateFormatVersion: '2010-09-09'\nDescription: 'mlops-images-staging model registry: one model package group per model'\nResources:\n  Placeholder:\n    Type: AWS::CloudFormation::WaitConditionHandle\n";
    fake.deploy(
        &registry_name,
        placeholder,
        &BTreeMap::new(),
        &BTreeMap::new(),
    )
    .expect("registry");
    let mut registry = Template::parse(placeholder).expect("placeholder");
    let mut physical = BTreeMap::new();
    for chunk in MODELS.chunks(4) {
        let mut stacks = Vec::new();
        let mut mappings = Vec::new();
        for model in chunk {
            let name = format!("{PREFIX}-pipeline-{model}");
            let deployed = fake.stack(&name).expect("pipeline stack");
            let mut template = Template::parse(&deployed.template_body).expect("template");
            let group = template
                .resources
                .shift_remove("ModelPackageGroup")
                .expect("the current layout has the group in the pipeline stack");
            physical.insert(
                model.to_string(),
                group.properties["ModelPackageGroupName"]
                    .as_str()
                    .expect("named")
                    .to_string(),
            );
            registry.resources.insert(old_logical_id(model), group);
            stacks.push((name.clone(), body(&template)));
            mappings.push((
                name,
                "ModelPackageGroup".to_string(),
                registry_name.clone(),
                old_logical_id(model),
            ));
        }
        stacks.insert(0, (registry_name.clone(), body(&registry)));
        refactor(
            fake,
            &RefactorRequest {
                description: "the earlier layout".into(),
                stacks,
                mappings,
                enable_stack_creation: false,
            },
        )
        .await;
    }
    registry.resources.shift_remove("Placeholder");
    fake.deploy(
        &registry_name,
        &registry.to_yaml_string(),
        &BTreeMap::new(),
        &BTreeMap::new(),
    )
    .expect("registry without its placeholder");
    physical
}

#[tokio::test(flavor = "current_thread")]
async fn the_registry_stack_moves_into_the_pipeline_stacks_and_nothing_is_recreated() {
    let fake = FakeCloudFormation::new();
    let groups = deploy_earlier_layout(&fake).await;
    let registry = fake
        .stack(&format!("{PREFIX}-registry"))
        .expect("the earlier layout's registry");
    assert_eq!(
        Template::parse(&registry.template_body)
            .expect("registry template")
            .resources
            .len(),
        4
    );

    let shown = plan(&fake, &repo(), PlanFormat::Text).await;
    assert_eq!(shown.status, ExitStatus::Changes, "{}", shown.stderr);
    insta::assert_snapshot!("refactor_plan_text", shown.stdout);
    let json = plan(&fake, &repo(), PlanFormat::Json).await;
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json plan");
    assert_eq!(document["retired"][0]["id"], "registry");
    assert_eq!(
        document["retired"][0]["moves"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default(),
        4
    );

    fake.clear_calls();
    let applied = apply(&fake, &repo()).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    let calls = fake.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|call| call.contains("ExecuteStackRefactor"))
            .count(),
        1,
        "four destinations and the registry fit one refactor: {calls:#?}"
    );
    assert!(
        fake.stack(&format!("{PREFIX}-registry")).is_none(),
        "the emptied registry stack is deleted"
    );
    for model in MODELS {
        let name = format!("{PREFIX}-pipeline-{model}");
        let template =
            Template::parse(&fake.stack(&name).expect("pipeline").template_body).expect("template");
        assert_eq!(
            template.resources["ModelPackageGroup"].properties["ModelPackageGroupName"].as_str(),
            Some(groups[model].as_str())
        );
        let events = fake.events(&name);
        assert!(
            events
                .iter()
                .any(|event| event.logical_id == "ModelPackageGroup"
                    && event.status == "IMPORT_COMPLETE"),
            "{model}: moved in, {events:#?}"
        );
        assert!(
            !events
                .iter()
                .any(|event| event.logical_id == "ModelPackageGroup"
                    && event.status.starts_with("DELETE")),
            "{model}: never deleted"
        );
    }
    let after = plan(&fake, &repo(), PlanFormat::Text).await;
    assert_eq!(
        after.status,
        ExitStatus::Success,
        "{}{}",
        after.stdout,
        after.stderr
    );
}
