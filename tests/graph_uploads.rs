//! A stack whose template or assets apply uploads first waits for the stack that creates the
//! bucket: at 150 children the iam template outgrows CloudFormation's inline limit and goes
//! through the artifacts bucket, which `storage` creates, as do every pipeline's step code and
//! every function's package.

mod common;

use common::{edit, project_copy};
use mlops_infra::graph::Graph;

#[test]
fn stacks_uploading_to_the_artifacts_bucket_depend_on_the_stack_creating_it() {
    let project = project_copy();
    let children: String = (0..150)
        .map(|index| {
            format!(
                "  - name: species-{index:03}\n    parent: plants\n    subgroup: group-{index:03}\n    num_classes: 10\n"
            )
        })
        .collect();
    let routes: Vec<String> = (0..150).map(|index| format!("group-{index:03}")).collect();
    edit(
        project.path(),
        "environments/staging.yaml",
        "    routes: [trees, flowers, grasses]\n",
        &format!(
            "    routes: [trees, flowers, grasses, {}]\n",
            routes.join(", ")
        ),
    );
    edit(
        project.path(),
        "environments/staging.yaml",
        "endpoint:\n",
        &format!("{children}endpoint:\n"),
    );
    let environment = mlops_infra::config::load(project.path(), "staging").expect("valid");
    let stacks = mlops_infra::render::render(project.path(), &environment).expect("renders");
    let graph = Graph::new(&stacks);
    let index = |id: &str| graph.ids.iter().position(|other| other == id).expect(id);
    let uploading: Vec<&str> = stacks
        .iter()
        .filter(|stack| stack.template_bucket.is_some() || !stack.assets.is_empty())
        .map(|stack| stack.spec.id.as_str())
        .collect();
    assert!(
        uploading.contains(&"iam"),
        "the iam template outgrows the inline limit at 150 children: {uploading:?}"
    );
    assert!(uploading.contains(&"pipeline-plants"), "{uploading:?}");
    for id in uploading {
        assert!(
            graph.dependencies[index(id)].contains(&index("storage")),
            "{id} waits for storage, which creates the bucket it uploads to"
        );
    }
    // Storage uploads nothing and depends on nothing.
    assert!(graph.dependencies[index("storage")].is_empty());
}

#[test]
fn two_hundred_children_in_ten_families_validate() {
    let project = project_copy();
    let mut models = String::new();
    for parent in 0..10 {
        let routes: Vec<String> = (0..20).map(|index| format!("g{parent}x{index}")).collect();
        models.push_str(&format!(
            "  - name: parent{parent}\n    routes: [{}]\n",
            routes.join(", ")
        ));
        for route in &routes {
            models.push_str(&format!(
                "  - name: {route}\n    parent: parent{parent}\n    subgroup: {route}\n    num_classes: 10\n"
            ));
        }
    }
    std::fs::write(
        project.path().join("environments/staging.yaml"),
        format!("extends: _common\naccount_id: \"222222222222\"\nmodels:\n{models}"),
    )
    .expect("write");
    let environment = mlops_infra::config::load(project.path(), "staging").expect("valid");
    let stacks = mlops_infra::render::render(project.path(), &environment).expect("renders");
    let diagnostics = mlops_infra::validate::validate(&environment, &stacks);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == mlops_infra::validate::Severity::Error)
        .map(|diagnostic| format!("{}: {}", diagnostic.stack, diagnostic.message))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let api = stacks
        .iter()
        .find(|stack| stack.spec.id == "api")
        .expect("api");
    assert!(
        api.template.resources.len() < 20,
        "the API does not grow with the models: {} resources",
        api.template.resources.len()
    );
    // No shared stack grows with the number of models but iam (a router role per parent): each
    // model package group is in its model's pipeline stack.
    for stack in stacks.iter().filter(|stack| stack.spec.model.is_none()) {
        assert!(
            stack.spec.id == "iam" || stack.template.resources.len() < 30,
            "{} has {} resources",
            stack.spec.id,
            stack.template.resources.len()
        );
    }
    let pipeline = stacks
        .iter()
        .find(|stack| stack.spec.id == "pipeline-g9x19")
        .expect("pipeline stack");
    assert_eq!(
        pipeline.template.resources["ModelPackageGroup"].resource_type,
        "AWS::SageMaker::ModelPackageGroup"
    );
}
