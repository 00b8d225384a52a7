//! The plan: a value computed from the rendered stacks and what is deployed, saying what
//! apply will do to each stack and each resource. Computing it touches no network; printing
//! it is `view`'s job and carrying it out `apply`'s.

pub mod conditions;
pub mod diff;
pub mod drift;
pub mod iam;
mod knock_on;
pub mod moves;
pub mod resolve;
pub mod steps;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{DeployedStack, ResourceChange};
use crate::config::Environment;
use crate::graph::Graph;
use crate::render::RenderedStack;
use crate::resource_types;
use crate::template::{Node, Resource, Template};

use diff::{PropertyChange, is_under};
use iam::Broadening;
use steps::StepChange;

/// Bumped when the saved-plan document changes shape.
pub const FORMAT_VERSION: u32 = 1;

/// Resource types that hold data or serve traffic: replacing or deleting one loses something.
pub const DATA_BEARING: [&str; 4] = [
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::SageMaker::Endpoint",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub environment: String,
    pub project: String,
    pub account_id: String,
    pub region: String,
    pub protected: bool,
    /// Drift detection ran on the deployed stacks (`--refresh`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift_checked: bool,
    /// In launch order.
    pub stacks: Vec<StackPlan>,
    /// Deployed stacks the layout no longer has, whose resources move into current stacks
    /// before anything else runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<moves::RetiredStack>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackAction {
    Create,
    Update,
    NoChange,
    /// A failed first create (`ROLLBACK_COMPLETE`): delete the empty stack, then create.
    Recreate,
    /// Cannot proceed: another operation runs, or a failed rollback needs attention.
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackPlan {
    pub id: String,
    pub name: String,
    pub action: StackAction,
    /// Why the stack is blocked, or what recreate means.
    pub note: Option<String>,
    pub deployed_status: Option<String>,
    /// The deployed stack's identity when planned; apply refuses if it differs.
    pub fingerprint: Option<String>,
    pub depends_on: Vec<String>,
    pub template_body: String,
    pub parameters: Vec<ParameterPlan>,
    pub tags: BTreeMap<String, String>,
    pub tag_changes: Vec<ValueChange>,
    pub resources: Vec<ResourcePlan>,
    /// Template sections other than Resources that change (Outputs, Conditions, …).
    pub other_changes: Vec<String>,
    pub capabilities: Vec<String>,
    /// The CloudFormation service role the change set runs as; `None`: the caller (bootstrap).
    #[serde(default)]
    pub deploy_role: Option<String>,
    /// Files uploaded before the stack's change set (step code, large pipeline
    /// definitions); apply skips those already in S3.
    #[serde(default)]
    pub assets: Vec<crate::render::Asset>,
    /// `s3://` URIs of the assets missing from S3 when planned: what apply uploads. An asset
    /// several stacks share is listed under the first.
    #[serde(default)]
    pub uploads: Vec<String>,
    /// Protected environments' endpoint updates: the deployed alarms that roll the update
    /// back (CloudFormation rollback triggers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<crate::aws::Rollback>,
    /// Resources drift detection found changed outside CloudFormation (`plan --refresh`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<drift::DriftedResource>,
    /// The preview change set's pre-deployment validation results, warnings included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<crate::aws::Validation>,
    /// Applied with a drift-aware change set (`--revert-drift`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revert_drift: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueChange {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterPlan {
    pub name: String,
    /// `<stack>.<output>` when another stack's output supplies it.
    pub from_output: Option<String>,
    /// `None`: known only after the producing stack applies.
    pub value: Option<String>,
    pub before: Option<String>,
    /// For the served model package: how the environment's `serving` choice resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_registry: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceAction {
    Add,
    Modify,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replacement {
    No,
    Conditional,
    Yes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePlan {
    pub logical_id: String,
    pub resource_type: String,
    pub action: ResourceAction,
    pub replacement: Replacement,
    /// The create-only properties whose change replaces it.
    pub replaced_by: Vec<String>,
    /// Replacing or removing a data-bearing resource.
    pub dangerous: bool,
    pub changes: Vec<PropertyChange>,
    /// For pipelines: the definition's changes step by step.
    pub steps: Vec<StepChange>,
    /// For IAM and resource policies: what is newly granted.
    pub broadening: Option<Broadening>,
    /// What the change means in plain words: a change that follows another resource's
    /// replacement, traffic shifting on a live endpoint, data left behind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `<retired stack>/<logical id>`: the resource is not created but moved in from a stack
    /// an earlier layout had (stack refactoring), kept as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
}

/// What is deployed, as read through the AWS boundary.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    /// By stack name; absent stacks are not deployed.
    pub stacks: BTreeMap<String, DeployedStack>,
    /// By stack name: the resource list of the change set made while planning.
    pub change_sets: BTreeMap<String, Vec<ResourceChange>>,
    /// Stacks whose change set CloudFormation found empty ("didn't contain changes"): they
    /// are unchanged whatever the structural diff saw.
    pub unchanged: std::collections::BTreeSet<String>,
    /// `s3://` URIs of the stacks' assets already in S3 (content-addressed: nothing to upload).
    pub assets_present: std::collections::BTreeSet<String>,
    /// Named resources a stack to be created declares that already exist outside any stack
    /// (kept by an earlier destroy, or made by hand).
    pub existing: std::collections::BTreeSet<Named>,
    /// By model: the package its endpoint is to serve (`release::serving`).
    pub serving: BTreeMap<String, crate::release::serving::Resolved>,
    /// By stack name: drifted resources (`plan --refresh`); `None` when not checked.
    pub drift: Option<BTreeMap<String, Vec<crate::aws::ResourceDrift>>>,
    /// By stack name: the preview change set's validation results.
    pub validations: BTreeMap<String, Vec<crate::aws::Validation>>,
    /// Plan drift-aware change sets (`--revert-drift`).
    pub revert_drift: bool,
    /// By stack name: deployed stacks of `stacks::RETIRED`, with their id.
    pub retired: BTreeMap<String, (String, DeployedStack)>,
    /// The template each stack read held, in the state it was read in (for apply to save).
    pub record: crate::deployed_record::Record,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.retired.is_empty()
            || self
                .stacks
                .iter()
                .any(|stack| stack.action != StackAction::NoChange)
    }

    pub fn dangerous(&self) -> impl Iterator<Item = (&StackPlan, &ResourcePlan)> {
        self.stacks.iter().flat_map(|stack| {
            stack
                .resources
                .iter()
                .filter(|r| r.dangerous)
                .map(move |r| (stack, r))
        })
    }

    pub fn stack(&self, id: &str) -> Option<&StackPlan> {
        self.stacks.iter().find(|stack| stack.id == id)
    }
}

/// Computes the plan. Stacks come out in launch order (`graph` has been checked acyclic by
/// `validate`; a cycle leaves declaration order).
pub fn plan(environment: &Environment, rendered: &[RenderedStack], deployed: &Deployed) -> Plan {
    let graph = Graph::new(rendered);
    let order: Vec<&RenderedStack> = match graph.batches() {
        Ok(batches) => batches
            .iter()
            .flatten()
            .filter_map(|id| rendered.iter().find(|stack| &stack.spec.id == id))
            .collect(),
        Err(_) => rendered.iter().collect(),
    };
    let mut stacks: Vec<StackPlan> = Vec::new();
    for stack in order {
        let index = graph
            .ids
            .iter()
            .position(|id| *id == stack.spec.id)
            .unwrap_or_default();
        let depends_on = graph.dependencies[index]
            .iter()
            .map(|&d| graph.ids[d].clone())
            .collect();
        let mut planned = plan_stack(environment, stack, deployed, &stacks, rendered, depends_on);
        drift::attach(&mut planned, deployed);
        if matches!(planned.action, StackAction::NoChange | StackAction::Blocked) {
            planned.uploads.clear();
        }
        stacks.push(planned);
    }
    let retired = moves::retired(&deployed.retired, rendered);
    for retired in &retired {
        let source = Template::parse(&retired.template_body).unwrap_or_default();
        for found in &retired.moves {
            mark_moved(&mut stacks, rendered, &retired.id, &source, found);
        }
    }
    Plan {
        format_version: FORMAT_VERSION,
        environment: environment.name.clone(),
        project: environment.project.clone(),
        account_id: environment.account_id.clone(),
        region: environment.region.clone(),
        protected: environment.protected,
        drift_checked: deployed.drift.is_some(),
        stacks,
        retired,
    }
}

/// The resource a move brings into a planned stack: shown as moved, not added; its changes
/// are those between the moved resource as deployed and as rendered (none when only its place
/// changes), as is what its policy newly grants.
fn mark_moved(
    stacks: &mut [StackPlan],
    rendered: &[RenderedStack],
    from: &str,
    source: &Template,
    found: &moves::Move,
) {
    let Some(resource) = stacks
        .iter_mut()
        .filter(|stack| stack.id == found.to_stack)
        .flat_map(|stack| stack.resources.iter_mut())
        .find(|resource| {
            resource.logical_id == found.to_logical_id && resource.action == ResourceAction::Add
        })
    else {
        return;
    };
    resource.moved_from = Some(format!("{from}/{}", found.from_logical_id));
    let single = |template: &Template, id: &str| Template {
        resources: template
            .resources
            .get(id)
            .map(|resource| (found.to_logical_id.clone(), resource.clone()))
            .into_iter()
            .collect(),
        ..Template::default()
    };
    let after = rendered
        .iter()
        .find(|stack| stack.spec.id == found.to_stack)
        .map(|stack| single(&stack.template, &found.to_logical_id))
        .unwrap_or_default();
    let changed = diff_resources(&single(source, &found.from_logical_id), &after)
        .into_iter()
        .next();
    resource.changes = changed
        .as_ref()
        .map(|c| c.changes.clone())
        .unwrap_or_default();
    resource.broadening = changed.and_then(|c| c.broadening);
    resource.notes.clear();
}

fn plan_stack(
    environment: &Environment,
    stack: &RenderedStack,
    deployed: &Deployed,
    planned: &[StackPlan],
    rendered: &[RenderedStack],
    depends_on: Vec<String>,
) -> StackPlan {
    let current = deployed.stacks.get(&stack.spec.name);
    let tags: BTreeMap<String, String> = environment
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let parameters = plan_parameters(stack, current, deployed, planned, rendered);
    let mut plan = StackPlan {
        id: stack.spec.id.clone(),
        name: stack.spec.name.clone(),
        action: StackAction::NoChange,
        note: None,
        deployed_status: current.map(|current| current.status.0.clone()),
        fingerprint: current.map(DeployedStack::fingerprint),
        depends_on,
        template_body: stack.body.clone(),
        parameters,
        tags: tags.clone(),
        tag_changes: Vec::new(),
        resources: Vec::new(),
        other_changes: Vec::new(),
        capabilities: capabilities(&stack.template),
        deploy_role: stack.deploy_role.clone(),
        assets: stack.assets.clone(),
        uploads: stack
            .assets
            .iter()
            .map(crate::render::Asset::uri)
            .filter(|uri| !deployed.assets_present.contains(uri))
            // Listed once, under the first stack that needs it.
            .filter(|uri| !planned.iter().any(|other| other.uploads.contains(uri)))
            .collect(),
        rollback: None,
        drift: Vec::new(),
        validations: Vec::new(),
        revert_drift: false,
    };

    let Some(current) = current.filter(|current| !current.status.is_review()) else {
        plan.action = StackAction::Create;
        plan.resources = all_added(&conditions::active(&stack.template, &planned_values(&plan)));
        note_existing(&mut plan.resources, &stack.template, &deployed.existing);
        return plan;
    };
    if current.status.needs_recreate() {
        plan.action = StackAction::Recreate;
        plan.note = Some("the first create failed (ROLLBACK_COMPLETE): apply deletes the empty stack and creates it again".into());
        plan.resources = all_added(&conditions::active(&stack.template, &planned_values(&plan)));
        return plan;
    }
    if current.status.is_in_progress() {
        plan.action = StackAction::Blocked;
        plan.note = Some(format!(
            "another operation is running ({}); wait for it to finish",
            current.status.0
        ));
        return plan;
    }
    if current.status.needs_continue_rollback() {
        plan.action = StackAction::Blocked;
        plan.note = Some("the last update failed to roll back (UPDATE_ROLLBACK_FAILED): fix the resource named in the stack events, then run `aws cloudformation continue-update-rollback`".into());
        return plan;
    }

    if deployed.unchanged.contains(&stack.spec.name) {
        return plan;
    }
    // The deployed template is often the rendered one (the record of deployed templates says
    // so without reading it): then it is not parsed again.
    let parsed;
    let before: &Template = if current.template_body == stack.body {
        &stack.template
    } else {
        parsed = Template::parse(&current.template_body).unwrap_or_default();
        &parsed
    };
    plan.resources = diff_resources(
        &conditions::active(before, &current.parameters),
        &conditions::active(&stack.template, &planned_values(&plan)),
    );
    plan.other_changes = other_changes(before, &stack.template);
    plan.tag_changes = value_changes(&current.tags, &tags);
    if let Some(change_set) = deployed.change_sets.get(&stack.spec.name) {
        merge_change_set(&mut plan.resources, change_set);
    }
    knock_on::follow_replacements(&mut plan.resources, &stack.template);
    knock_on::explain(&mut plan.resources, &stack.template);
    let pseudo = resolve::pseudo_parameters(&environment.account_id, &environment.region);
    let mut after_values = pseudo.clone();
    after_values.extend(planned_values(&plan));
    let mut before_values = pseudo;
    before_values.extend(current.parameters.clone());
    for resource in &mut plan.resources {
        if let Some(broadening) = resource.broadening.as_mut() {
            broadening.resolve(&after_values);
        }
        for change in &mut resource.changes {
            change
                .before
                .iter_mut()
                .for_each(|value| resolve::resolve_value(value, &before_values));
            change
                .after
                .iter_mut()
                .for_each(|value| resolve::resolve_value(value, &after_values));
        }
        resource
            .changes
            .retain(|change| change.before != change.after);
    }
    let parameters_change = plan
        .parameters
        .iter()
        .any(|parameter| parameter.value.is_none() || parameter.value != parameter.before);
    if !plan.resources.is_empty()
        || !plan.other_changes.is_empty()
        || !plan.tag_changes.is_empty()
        || parameters_change
    {
        plan.action = StackAction::Update;
        plan.rollback = rollback_triggers(environment, stack, before);
    }
    plan
}

/// A protected environment's endpoint update is watched by the endpoint's own alarms (error
/// rate, latency) as deployed: rollback triggers must exist before the operation, so only
/// alarms of the deployed template count.
fn rollback_triggers(
    environment: &Environment,
    stack: &RenderedStack,
    deployed: &Template,
) -> Option<crate::aws::Rollback> {
    if !environment.protected || !stack.spec.id.starts_with("endpoint-") {
        return None;
    }
    let partition = crate::pipeline::config::partition(&environment.region);
    let alarm_arns: Vec<String> = deployed
        .resources
        .values()
        .filter(|resource| resource.resource_type == "AWS::CloudWatch::Alarm")
        .filter(|resource| resource.condition.is_none())
        .filter(|resource| {
            resource.properties.get("Namespace").and_then(Node::as_str) == Some("AWS/SageMaker")
        })
        .filter_map(|resource| resource.properties.get("AlarmName")?.as_str())
        .map(|name| {
            format!(
                "arn:{partition}:cloudwatch:{}:{}:alarm:{name}",
                environment.region, environment.account_id
            )
        })
        .collect();
    if alarm_arns.is_empty() {
        return None;
    }
    Some(crate::aws::Rollback {
        alarm_arns,
        monitoring_minutes: environment.endpoint.rollback_monitoring_minutes,
    })
}

/// A resource known by the name its template gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Named {
    pub resource_type: String,
    pub name: String,
}

/// Types whose names are fixed in the templates and that outlive their stack
/// (`DeletionPolicy: Retain`, or made by hand): the property holding the name, and what
/// people call it.
pub const NAMED_TYPES: [(&str, &str, &str); 3] = [
    ("AWS::S3::Bucket", "BucketName", "bucket"),
    (
        "AWS::SageMaker::ModelPackageGroup",
        "ModelPackageGroupName",
        "model package group",
    ),
    ("AWS::Logs::LogGroup", "LogGroupName", "log group"),
];

/// The name `resource` is given, when its type is one of `NAMED_TYPES` and the name is
/// literal.
fn named(resource: &Resource) -> Option<Named> {
    let (_, property, _) = NAMED_TYPES
        .iter()
        .find(|(resource_type, _, _)| *resource_type == resource.resource_type)?;
    Some(Named {
        resource_type: resource.resource_type.clone(),
        name: resource.properties.get(*property)?.as_str()?.to_string(),
    })
}

/// A named resource the stack would create that already exists: CloudFormation cannot
/// create it (AlreadyExists); say so, and how to adopt or remove it.
fn note_existing(
    resources: &mut [ResourcePlan],
    template: &Template,
    existing: &std::collections::BTreeSet<Named>,
) {
    for plan in resources.iter_mut() {
        let Some(found) = template
            .resources
            .get(&plan.logical_id)
            .and_then(named)
            .filter(|found| existing.contains(found))
        else {
            continue;
        };
        let noun = NAMED_TYPES
            .iter()
            .find(|(resource_type, _, _)| *resource_type == found.resource_type)
            .map_or("resource", |(_, _, noun)| *noun);
        plan.notes.push(format!(
            "{noun} {} already exists outside any stack (kept by an earlier destroy?): creating it fails; import it into the stack (CloudFormation resource import, change set type IMPORT) or delete it first",
            found.name
        ));
    }
}

/// The named resources the stacks to be created would create (what `state` asks AWS about).
pub fn named_to_create(plan: &Plan, rendered: &[RenderedStack]) -> Vec<Named> {
    plan.stacks
        .iter()
        .filter(|stack| matches!(stack.action, StackAction::Create | StackAction::Recreate))
        .filter_map(|stack| rendered.iter().find(|r| r.spec.name == stack.name))
        .flat_map(|stack| stack.template.resources.values())
        .filter_map(named)
        .collect()
}

/// The parameter values the plan knows (inputs known only after apply are left out).
fn planned_values(plan: &StackPlan) -> BTreeMap<String, String> {
    plan.parameters
        .iter()
        .filter_map(|parameter| Some((parameter.name.clone(), parameter.value.clone()?)))
        .collect()
}

/// Input parameters: known when the producing stack is deployed with that output and this plan
/// neither creates it nor changes what the output refers to; otherwise known only after it
/// applies.
fn plan_parameters(
    stack: &RenderedStack,
    current: Option<&DeployedStack>,
    deployed: &Deployed,
    planned: &[StackPlan],
    rendered: &[RenderedStack],
) -> Vec<ParameterPlan> {
    stack
        .inputs
        .iter()
        .map(|input| {
            let producer = planned.iter().find(|other| other.id == input.stack);
            let stable = producer.is_some_and(|producer| match producer.action {
                StackAction::NoChange => true,
                StackAction::Update => {
                    let output = rendered
                        .iter()
                        .find(|other| other.spec.id == input.stack)
                        .and_then(|other| other.template.outputs.get(&input.output));
                    !producer
                        .other_changes
                        .iter()
                        .any(|section| section == "Outputs")
                        && output.is_some_and(|output| {
                            let mut referenced = Vec::new();
                            output.walk("", &mut |_, node| {
                                if let Node::Intrinsic(intrinsic) = node {
                                    match (&intrinsic.function, &intrinsic.argument) {
                                        (crate::template::Function::Ref, Node::String(id)) => {
                                            referenced.push(id.clone())
                                        }
                                        (crate::template::Function::GetAtt, Node::List(items)) => {
                                            referenced.extend(
                                                items
                                                    .first()
                                                    .and_then(Node::as_str)
                                                    .map(str::to_string),
                                            );
                                        }
                                        _ => {}
                                    }
                                }
                            });
                            producer.resources.iter().all(|resource| {
                                !referenced.contains(&resource.logical_id)
                                    || (resource.action == ResourceAction::Modify
                                        && resource.replacement == Replacement::No)
                            })
                        })
                }
                _ => false,
            });
            let value = producer
                .and_then(|producer| deployed.stacks.get(&producer.name))
                .and_then(|producer| producer.outputs.get(&input.output))
                .filter(|_| stable)
                .cloned();
            ParameterPlan {
                name: input.parameter.clone(),
                from_output: Some(format!("{}.{}", input.stack, input.output)),
                value,
                before: current
                    .and_then(|current| current.parameters.get(&input.parameter).cloned()),
                from_registry: None,
            }
        })
        .chain(
            stack
                .serving
                .iter()
                .map(|(parameter, model)| served_package(parameter, model, current, deployed)),
        )
        .collect()
}

/// A served-package parameter (an endpoint stack's `ModelPackageArn`, a router's per-model
/// ones): what the model's `serving` resolved to. When nothing resolves (no approved package,
/// nothing promoted) a stack already serving keeps its package: the plan never takes an
/// endpoint down for want of a newer model.
fn served_package(
    parameter: &str,
    model: &str,
    current: Option<&DeployedStack>,
    deployed: &Deployed,
) -> ParameterPlan {
    let before = current.and_then(|current| current.parameters.get(parameter).cloned());
    let resolved = deployed.serving.get(model);
    let (value, source) = match resolved {
        Some(resolved) => match (&resolved.arn, &before) {
            (Some(arn), _) => (arn.clone(), resolved.source.clone()),
            (None, Some(serving)) if !serving.is_empty() => (
                serving.clone(),
                format!("{}; keeps the package it serves", resolved.source),
            ),
            (None, _) => (String::new(), resolved.source.clone()),
        },
        None => match &before {
            Some(serving) => (
                serving.clone(),
                "not resolved; keeps the deployed value".into(),
            ),
            None => (String::new(), "not resolved".into()),
        },
    };
    ParameterPlan {
        name: parameter.to_string(),
        from_output: None,
        value: Some(value),
        before,
        from_registry: Some(source),
    }
}

fn all_added(template: &Template) -> Vec<ResourcePlan> {
    template
        .resources
        .iter()
        .map(|(id, resource)| ResourcePlan {
            logical_id: id.clone(),
            moved_from: None,
            resource_type: resource.resource_type.clone(),
            action: ResourceAction::Add,
            replacement: Replacement::No,
            replaced_by: Vec::new(),
            dangerous: false,
            changes: Vec::new(),
            steps: Vec::new(),
            broadening: None,
            notes: Vec::new(),
        })
        .collect()
}

/// Resources added, removed and modified between two templates, with replacement analysis
/// from the schemas' create-only properties.
pub fn diff_resources(before: &Template, after: &Template) -> Vec<ResourcePlan> {
    let mut plans = Vec::new();
    for (id, old) in &before.resources {
        match after.resources.get(id) {
            None => plans.push(ResourcePlan {
                logical_id: id.clone(),
                moved_from: None,
                resource_type: old.resource_type.clone(),
                action: ResourceAction::Remove,
                replacement: Replacement::No,
                replaced_by: Vec::new(),
                dangerous: DATA_BEARING.contains(&old.resource_type.as_str()),
                changes: Vec::new(),
                steps: Vec::new(),
                broadening: None,
                notes: Vec::new(),
            }),
            Some(new) => {
                if let Some(plan) = diff_resource(id, old, new) {
                    plans.push(plan);
                }
            }
        }
    }
    for (id, new) in &after.resources {
        if !before.resources.contains_key(id) {
            let mut added = all_added(&Template {
                resources: [(id.clone(), new.clone())].into_iter().collect(),
                ..Template::default()
            });
            let properties = Node::Map(new.properties.clone()).to_json();
            let broadening = iam::broadening(id, &new.resource_type, &Value::Null, &properties);
            if let Some(plan) = added.first_mut()
                && !broadening.is_empty()
            {
                plan.broadening = Some(broadening);
            }
            plans.extend(added);
        }
    }
    plans
}

fn resource_json(resource: &Resource) -> Value {
    let mut object = serde_json::Map::new();
    object.insert(
        "Properties".into(),
        Node::Map(resource.properties.clone()).to_json(),
    );
    for (key, value) in [
        (
            "DependsOn",
            (!resource.depends_on.is_empty()).then(|| serde_json::json!(resource.depends_on)),
        ),
        ("Condition", resource.condition.clone().map(Value::String)),
        (
            "DeletionPolicy",
            resource.deletion_policy.clone().map(Value::String),
        ),
        (
            "UpdateReplacePolicy",
            resource.update_replace_policy.clone().map(Value::String),
        ),
    ] {
        if let Some(value) = value {
            object.insert(key.into(), value);
        }
    }
    for (key, value) in &resource.attributes {
        object.insert(key.clone(), value.to_json());
    }
    Value::Object(object)
}

fn diff_resource(id: &str, old: &Resource, new: &Resource) -> Option<ResourcePlan> {
    let (before, after) = (resource_json(old), resource_json(new));
    if before == after && old.resource_type == new.resource_type {
        return None;
    }
    let mut changes = Vec::new();
    diff::diff("", &before, &after, &mut changes);
    let mut replaced_by = Vec::new();
    let mut replacement = Replacement::No;
    if old.resource_type != new.resource_type {
        replacement = Replacement::Yes;
        replaced_by.push("Type".to_string());
    } else if let Some(schema) = resource_types::lookup(&new.resource_type) {
        for change in &changes {
            let Some(path) = change.path.strip_prefix("Properties.") else {
                continue;
            };
            if let Some(property) = schema
                .create_only
                .iter()
                .find(|property| is_under(path, property))
                && !replaced_by.iter().any(|known| known == property)
            {
                replaced_by.push(property.to_string());
                replacement = Replacement::Yes;
            }
        }
    }
    let (old_properties, new_properties) = (&before["Properties"], &after["Properties"]);
    let steps = if new.resource_type == "AWS::SageMaker::Pipeline" {
        steps::pipeline_changes(old_properties, new_properties).unwrap_or_default()
    } else {
        Vec::new()
    };
    let broadening = Some(iam::broadening(
        id,
        &new.resource_type,
        old_properties,
        new_properties,
    ))
    .filter(|b| !b.is_empty());
    Some(ResourcePlan {
        logical_id: id.to_string(),
        moved_from: None,
        resource_type: new.resource_type.clone(),
        action: ResourceAction::Modify,
        dangerous: replacement != Replacement::No
            && DATA_BEARING.contains(&new.resource_type.as_str()),
        replacement,
        replaced_by,
        changes,
        steps,
        broadening,
        notes: Vec::new(),
    })
}

/// The change set is authoritative on which resources change and whether they are replaced;
/// the structural diff keeps the details and the replacement it found on its own when the
/// change set gives none (as the local emulator does).
fn merge_change_set(resources: &mut Vec<ResourcePlan>, change_set: &[ResourceChange]) {
    for change in change_set {
        let replacement = match change.replacement.as_deref() {
            Some("True") => Replacement::Yes,
            Some("Conditional") => Replacement::Conditional,
            _ => Replacement::No,
        };
        match resources
            .iter_mut()
            .find(|plan| plan.logical_id == change.logical_id)
        {
            Some(plan) => {
                plan.replacement = plan.replacement.max(replacement);
            }
            // Changed only through a parameter or a dynamic reference: the template diff does
            // not show it, the change set does.
            None if change.action == "Modify" => resources.push(ResourcePlan {
                logical_id: change.logical_id.clone(),
                moved_from: None,
                resource_type: change.resource_type.clone(),
                action: ResourceAction::Modify,
                replacement,
                replaced_by: Vec::new(),
                dangerous: false,
                changes: Vec::new(),
                steps: Vec::new(),
                broadening: None,
                notes: Vec::new(),
            }),
            None => {}
        }
    }
    for plan in resources.iter_mut() {
        let destructive =
            plan.action == ResourceAction::Remove || plan.replacement != Replacement::No;
        plan.dangerous = destructive && DATA_BEARING.contains(&plan.resource_type.as_str());
    }
}

fn other_changes(before: &Template, after: &Template) -> Vec<String> {
    let sections = |template: &Template| -> BTreeMap<&'static str, Node> {
        template
            .sections()
            .into_iter()
            .filter(|(name, _)| *name != "Resources")
            .collect()
    };
    let (old, new) = (sections(before), sections(after));
    let mut names: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|name| old.get(*name) != new.get(*name))
        .map(|name| name.to_string())
        .collect();
    names.dedup();
    names
}

fn value_changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<ValueChange> {
    let mut changes = Vec::new();
    for (name, value) in before {
        if after.get(name) != Some(value) {
            changes.push(ValueChange {
                name: name.clone(),
                before: Some(value.clone()),
                after: after.get(name).cloned(),
            });
        }
    }
    for (name, value) in after {
        if !before.contains_key(name) {
            changes.push(ValueChange {
                name: name.clone(),
                before: None,
                after: Some(value.clone()),
            });
        }
    }
    changes
}

/// IAM capabilities only where the template needs them: named IAM resources need
/// CAPABILITY_NAMED_IAM, unnamed ones CAPABILITY_IAM.
fn capabilities(template: &Template) -> Vec<String> {
    const NAMES: [&str; 5] = [
        "RoleName",
        "PolicyName",
        "ManagedPolicyName",
        "UserName",
        "GroupName",
    ];
    let iam: Vec<&Resource> = template
        .resources
        .values()
        .filter(|resource| resource.resource_type.starts_with("AWS::IAM::"))
        .collect();
    if iam.is_empty() {
        Vec::new()
    } else if iam.iter().any(|resource| {
        resource.resource_type != "AWS::IAM::Policy"
            && NAMES
                .iter()
                .any(|name| resource.properties.contains_key(*name))
    }) {
        vec!["CAPABILITY_NAMED_IAM".into()]
    } else {
        vec!["CAPABILITY_IAM".into()]
    }
}
