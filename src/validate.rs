//! Offline checks on rendered stacks: references resolve, resource types exist, CloudFormation
//! limits hold, and cross-stack inputs name real outputs without forming a cycle.

use std::collections::HashSet;

use serde::Serialize;

use crate::config::Environment;
use crate::error::did_you_mean;
use crate::graph::Graph;
use crate::render::RenderedStack;
use crate::resource_types;
use crate::template::{Function, Node, Template};

/// Largest template body `CreateStack` takes inline; larger ones go through S3.
pub const MAX_INLINE_BODY: usize = 51_200;
/// Largest template body CloudFormation takes at all (from S3).
pub const MAX_BODY: usize = 1_000_000;
pub const MAX_RESOURCES: usize = 500;
pub const MAX_PARAMETERS: usize = 200;
pub const MAX_OUTPUTS: usize = 200;
pub const MAX_MAPPINGS: usize = 200;

const PSEUDO_PARAMETERS: [&str; 8] = [
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Note,
}

/// One finding, located by stack, logical ID and property path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub stack: String,
    /// Logical ID or section entry (`DataBucket`, `Outputs.BucketArn`), when there is one.
    pub location: Option<String>,
    /// Path below it (`Properties.BucketName`), when there is one.
    pub path: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// Runs every check over the stacks of one environment, the permission analysis included.
pub fn validate(environment: &Environment, stacks: &[RenderedStack]) -> Vec<Diagnostic> {
    let mut diagnostics = check_templates(stacks);
    diagnostics.extend(check_routers(environment));
    diagnostics.extend(crate::iam::diagnostics(environment, stacks));
    diagnostics
}

/// Each router's configuration must fit in Lambda's 4 KB of environment variables once the
/// packages are filled in: a parent with very many children does not.
pub fn check_routers(environment: &Environment) -> Vec<Diagnostic> {
    environment
        .models
        .iter()
        .filter(|model| !model.routes.is_empty())
        .filter_map(|parent| {
            let size = crate::router::config(environment, parent).largest_size();
            (size > crate::router::MAX_ENVIRONMENT_BYTES).then(|| Diagnostic {
                severity: Severity::Error,
                stack: format!("router-{}", parent.name),
                location: Some("Function".into()),
                path: Some(format!("Properties.Environment.Variables.{}", crate::router::VARIABLE)),
                message: format!(
                    "the router of `{}` needs up to {size} bytes of environment variables for its {} routes; Lambda allows {}",
                    parent.name,
                    parent.routes.len(),
                    crate::router::MAX_ENVIRONMENT_BYTES
                ),
                hint: Some(format!(
                    "split `{}` into parents with fewer children each, or shorten the model names",
                    parent.name
                )),
            })
        })
        .collect()
}

/// The checks of the templates themselves and their wiring (everything but permissions).
pub fn check_templates(stacks: &[RenderedStack]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for stack in stacks {
        let mut report = Reporter {
            stack: &stack.spec.id,
            diagnostics: &mut diagnostics,
        };
        check_limits(stack, &mut report);
        for asset in stack
            .assets
            .iter()
            .filter(|asset| asset.is_pipeline_definition())
        {
            check_pipeline_body(
                &asset.body,
                &format!("s3://{}/{}", asset.bucket, asset.key),
                "",
                &mut report,
            );
        }
        check_template(&stack.template, &mut report);
        check_inputs(stack, stacks, &mut report);
    }
    if let Err(cycle) = Graph::new(stacks).batches() {
        diagnostics.push(Diagnostic {
            severity: Severity::Error,
            stack: cycle.0[0].clone(),
            location: None,
            path: None,
            message: format!("stacks depend on each other in a cycle: {cycle}"),
            hint: Some("a stack cannot consume outputs of a stack that consumes its own; move the shared resource to one of them".into()),
        });
    }
    diagnostics
}

struct Reporter<'a> {
    stack: &'a str,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Reporter<'_> {
    fn push(
        &mut self,
        severity: Severity,
        location: &str,
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            stack: self.stack.to_string(),
            location: (!location.is_empty()).then(|| location.to_string()),
            path: (!path.is_empty()).then(|| path.to_string()),
            message,
            hint,
        });
    }

    fn error(&mut self, location: &str, path: &str, message: String, hint: Option<String>) {
        self.push(Severity::Error, location, path, message, hint);
    }
}

fn check_limits(stack: &RenderedStack, report: &mut Reporter) {
    let template = &stack.template;
    let size = stack.body.len();
    if size > MAX_BODY {
        report.error(
            "",
            "",
            format!("template body is {size} bytes; CloudFormation accepts at most {MAX_BODY}"),
            Some("split the stack, or move large values (pipeline definitions) to S3".into()),
        );
    } else if size > MAX_INLINE_BODY {
        report.push(
            Severity::Note,
            "",
            "",
            format!("template body is {size} bytes, over the {MAX_INLINE_BODY}-byte inline limit; apply uploads it to the artifacts bucket"),
            None,
        );
    }
    for (section, count, limit) in [
        ("resources", template.resources.len(), MAX_RESOURCES),
        ("parameters", template.parameters.len(), MAX_PARAMETERS),
        ("outputs", template.outputs.len(), MAX_OUTPUTS),
        ("mappings", template.mappings.len(), MAX_MAPPINGS),
    ] {
        if count > limit {
            report.error(
                "",
                "",
                format!("template has {count} {section}; CloudFormation allows at most {limit}"),
                Some("split the stack".into()),
            );
        }
    }
    let ids = [
        ("Parameters", template.parameters.keys().collect::<Vec<_>>()),
        ("Mappings", template.mappings.keys().collect()),
        ("Conditions", template.conditions.keys().collect()),
        ("Resources", template.resources.keys().collect()),
        ("Outputs", template.outputs.keys().collect()),
    ];
    for (section, names) in ids {
        for name in names {
            if name.is_empty()
                || name.len() > 255
                || !name.chars().all(|c| c.is_ascii_alphanumeric())
            {
                report.error(
                    &format!("{section}.{name}"),
                    "",
                    format!("logical ID `{name}` is not valid"),
                    Some(
                        "logical IDs are 1 to 255 letters and digits (no hyphens or underscores)"
                            .into(),
                    ),
                );
            }
        }
    }
}

/// Names a reference can point at, per section.
struct Scope<'a> {
    template: &'a Template,
}

impl Scope<'_> {
    fn is_resource(&self, name: &str) -> bool {
        self.template.resources.contains_key(name)
    }

    fn is_parameter(&self, name: &str) -> bool {
        self.template.parameters.contains_key(name) || PSEUDO_PARAMETERS.contains(&name)
    }

    fn is_condition(&self, name: &str) -> bool {
        self.template.conditions.contains_key(name)
    }

    fn refable(&self) -> impl Iterator<Item = &str> {
        self.template
            .parameters
            .keys()
            .chain(self.template.resources.keys())
            .map(String::as_str)
            .chain(PSEUDO_PARAMETERS)
    }
}

fn check_template(template: &Template, report: &mut Reporter) {
    let scope = Scope { template };
    let mut resource_types_seen = HashSet::new();
    for (logical_id, resource) in &template.resources {
        let location = format!("Resources.{logical_id}");
        let type_name = &resource.resource_type;
        let schema = resource_types::lookup(type_name);
        if schema.is_none()
            && !resource_types::is_custom(type_name)
            && resource_types_seen.insert(type_name.clone())
        {
            let hint = did_you_mean(type_name, resource_types::names())
                .map(|close| format!("did you mean `{close}`?"))
                .or_else(|| {
                    Some("see the CloudFormation resource type reference for the exact name".into())
                });
            report.error(
                &location,
                "Type",
                format!("`{type_name}` is not a CloudFormation resource type"),
                hint,
            );
        }
        if let Some(schema) = &schema {
            for property in resource.properties.keys() {
                if !schema.properties.contains(&property.as_str()) {
                    let hint = did_you_mean(property, schema.properties.iter().copied())
                        .map(|close| format!("did you mean `{close}`?"));
                    report.error(
                        &location,
                        &format!("Properties.{property}"),
                        format!("`{type_name}` has no property `{property}`"),
                        hint,
                    );
                }
            }
        }
        for dependency in &resource.depends_on {
            if dependency == logical_id {
                report.error(
                    &location,
                    "DependsOn",
                    format!("`{logical_id}` depends on itself"),
                    None,
                );
            } else if !scope.is_resource(dependency) {
                unresolved(
                    report,
                    &location,
                    "DependsOn",
                    "resource",
                    dependency,
                    template.resources.keys().map(String::as_str),
                );
            }
        }
        if let Some(condition) = &resource.condition
            && !scope.is_condition(condition)
        {
            unresolved(
                report,
                &location,
                "Condition",
                "condition",
                condition,
                template.conditions.keys().map(String::as_str),
            );
        }
        if type_name == "AWS::SageMaker::Pipeline" {
            check_pipeline_definition(resource, &location, report);
        }
        for (key, value) in &resource.properties {
            check_references(
                value,
                &scope,
                report,
                &location,
                &format!("Properties.{key}"),
                false,
            );
        }
        for (key, value) in &resource.attributes {
            check_references(value, &scope, report, &location, key, false);
        }
    }
    for (name, output) in &template.outputs {
        let location = format!("Outputs.{name}");
        if let Some(condition) = output.get("Condition").and_then(Node::as_str)
            && !scope.is_condition(condition)
        {
            unresolved(
                report,
                &location,
                "Condition",
                "condition",
                condition,
                template.conditions.keys().map(String::as_str),
            );
        }
        if output.get("Value").is_none() {
            report.error(
                &location,
                "",
                format!("output `{name}` has no `Value`"),
                None,
            );
        }
        check_references(output, &scope, report, &location, "", false);
    }
    for (name, condition) in &template.conditions {
        check_references(
            condition,
            &scope,
            report,
            &format!("Conditions.{name}"),
            "",
            true,
        );
    }
}

/// An inline pipeline definition must parse and pass the pipeline checks (every `Get`
/// resolves, no step cycle).
fn check_pipeline_definition(
    resource: &crate::template::Resource,
    location: &str,
    report: &mut Reporter,
) {
    const PATH: &str = "Properties.PipelineDefinition.PipelineDefinitionBody";
    let Some(body) = resource
        .properties
        .get("PipelineDefinition")
        .and_then(|definition| definition.get("PipelineDefinitionBody"))
        .and_then(Node::as_str)
    else {
        return;
    };
    check_pipeline_body(body, location, PATH, report);
}

/// Parses a pipeline definition and reports each problem the pipeline checks find.
fn check_pipeline_body(body: &str, location: &str, path: &str, report: &mut Reporter) {
    let at = |inner: &str| {
        if path.is_empty() {
            inner.to_string()
        } else {
            format!("{path} › {inner}")
        }
    };
    match crate::pipeline::PipelineDefinition::from_json_str(body) {
        Err(error) => report.error(
            location,
            path,
            format!("the pipeline definition does not parse: {error}"),
            None,
        ),
        Ok(definition) => {
            for problem in crate::pipeline::check::check(&definition) {
                let step = problem
                    .step
                    .map(|step| format!("step `{step}`, "))
                    .unwrap_or_default();
                report.error(
                    location,
                    &at(&problem.path),
                    format!("{step}{}", problem.message),
                    problem.hint,
                );
            }
        }
    }
}

/// Walks `node` and checks every Ref, GetAtt, Sub variable, condition and mapping name.
fn check_references(
    node: &Node,
    scope: &Scope,
    report: &mut Reporter,
    location: &str,
    path: &str,
    in_conditions: bool,
) {
    node.walk(path, &mut |path, node| {
        let Node::Intrinsic(intrinsic) = node else {
            return;
        };
        let argument = &intrinsic.argument;
        match intrinsic.function {
            Function::Ref => match argument.as_str() {
                Some(name) if in_conditions && scope.is_resource(name) => report.error(
                    location,
                    path,
                    format!("conditions cannot `Ref` resource `{name}`"),
                    Some("conditions can only use parameters and pseudo parameters".into()),
                ),
                Some(name) if scope.is_parameter(name) || scope.is_resource(name) => {}
                Some(name) => unresolved(
                    report,
                    location,
                    path,
                    "parameter or resource",
                    name,
                    scope.refable(),
                ),
                None => report.error(
                    location,
                    path,
                    "`Ref` takes a logical ID (a string)".into(),
                    None,
                ),
            },
            Function::GetAtt => match get_att_target(argument) {
                Some((resource, attribute)) => check_get_att(
                    scope,
                    report,
                    location,
                    path,
                    &resource,
                    attribute.as_deref(),
                ),
                None => report.error(
                    location,
                    path,
                    "`GetAtt` takes `Resource.Attribute` or [Resource, Attribute]".into(),
                    None,
                ),
            },
            Function::Sub => check_sub(argument, scope, report, location, path),
            Function::If => {
                let condition = match argument {
                    Node::List(items) if items.len() == 3 => items[0].as_str(),
                    _ => {
                        report.error(
                            location,
                            path,
                            "`If` takes [condition, value if true, value if false]".into(),
                            None,
                        );
                        return;
                    }
                };
                match condition {
                    Some(name) if scope.is_condition(name) => {}
                    Some(name) => unresolved(
                        report,
                        location,
                        path,
                        "condition",
                        name,
                        scope.template.conditions.keys().map(String::as_str),
                    ),
                    None => report.error(
                        location,
                        path,
                        "the first item of `If` must be a condition name".into(),
                        None,
                    ),
                }
            }
            Function::Condition => match argument.as_str() {
                Some(name) if scope.is_condition(name) => {}
                Some(name) => unresolved(
                    report,
                    location,
                    path,
                    "condition",
                    name,
                    scope.template.conditions.keys().map(String::as_str),
                ),
                None => report.error(
                    location,
                    path,
                    "`Condition` takes a condition name".into(),
                    None,
                ),
            },
            Function::FindInMap => {
                if let Node::List(items) = argument
                    && let Some(map_name) = items.first().and_then(Node::as_str)
                    && !scope.template.mappings.contains_key(map_name)
                {
                    unresolved(
                        report,
                        location,
                        path,
                        "mapping",
                        map_name,
                        scope.template.mappings.keys().map(String::as_str),
                    );
                }
            }
            _ => {}
        }
    });
}

fn get_att_target(argument: &Node) -> Option<(String, Option<String>)> {
    match argument {
        Node::String(text) => {
            let (resource, attribute) = text.split_once('.')?;
            Some((resource.to_string(), Some(attribute.to_string())))
        }
        Node::List(items) if items.len() == 2 => {
            let resource = items[0].as_str()?.to_string();
            // The attribute may itself be an intrinsic (`!Ref AttributeName`).
            Some((resource, items[1].as_str().map(str::to_string)))
        }
        _ => None,
    }
}

fn check_get_att(
    scope: &Scope,
    report: &mut Reporter,
    location: &str,
    path: &str,
    resource: &str,
    attribute: Option<&str>,
) {
    let Some(target) = scope.template.resources.get(resource) else {
        unresolved(
            report,
            location,
            path,
            "resource",
            resource,
            scope.template.resources.keys().map(String::as_str),
        );
        return;
    };
    let (Some(attribute), Some(schema)) =
        (attribute, resource_types::lookup(&target.resource_type))
    else {
        return;
    };
    let known = schema.attributes.iter().any(|known| {
        // Families such as AWS::CloudFormation::Stack's `Outputs\..*`.
        match known.strip_suffix("\\..*") {
            Some(prefix) => attribute
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => *known == attribute,
        }
    });
    if !known {
        let hint = did_you_mean(attribute, schema.attributes.iter().copied())
            .map(|close| format!("did you mean `{close}`?"))
            .or_else(|| {
                Some(format!(
                    "`{}` returns: {}",
                    target.resource_type,
                    schema.attributes.join(", ")
                ))
            });
        report.error(
            location,
            path,
            format!(
                "`{}` has no attribute `{attribute}` (resource `{resource}`)",
                target.resource_type
            ),
            hint,
        );
    }
}

fn check_sub(argument: &Node, scope: &Scope, report: &mut Reporter, location: &str, path: &str) {
    let (text, variables): (&str, Vec<&str>) = match argument {
        Node::String(text) => (text, Vec::new()),
        Node::List(items) if items.len() == 2 => {
            let Some(text) = items[0].as_str() else {
                return;
            };
            let names = items[1]
                .as_map()
                .map(|map| map.keys().map(String::as_str).collect())
                .unwrap_or_default();
            (text, names)
        }
        _ => {
            report.error(
                location,
                path,
                "`Sub` takes a string or [string, {variables}]".into(),
                None,
            );
            return;
        }
    };
    for variable in sub_variables(text) {
        if variables.contains(&variable)
            || scope.is_parameter(variable)
            || scope.is_resource(variable)
        {
            continue;
        }
        match variable.split_once('.') {
            Some((resource, attribute)) if !variable.starts_with("AWS::") => {
                check_get_att(scope, report, location, path, resource, Some(attribute));
            }
            _ => unresolved(
                report,
                location,
                path,
                "Sub variable",
                variable,
                scope.refable().chain(variables.iter().copied()),
            ),
        }
    }
}

/// The `${Name}` variables of a `Sub` string, skipping `${!Literal}` escapes.
pub fn sub_variables(text: &str) -> Vec<&str> {
    let mut variables = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].trim();
        if !name.starts_with('!') {
            variables.push(name);
        }
        rest = &after[end + 1..];
    }
    variables
}

fn unresolved<'a>(
    report: &mut Reporter,
    location: &str,
    path: &str,
    kind: &str,
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) {
    let hint = did_you_mean(name, candidates).map(|close| format!("did you mean `{close}`?"));
    report.error(
        location,
        path,
        format!("{kind} `{name}` is not defined in this template"),
        hint,
    );
}

fn check_inputs(stack: &RenderedStack, stacks: &[RenderedStack], report: &mut Reporter) {
    let template = &stack.template;
    for input in &stack.inputs {
        let location = format!("Parameters.{}", input.parameter);
        if !template.parameters.contains_key(&input.parameter) {
            report.error(
                &format!("Metadata.{}.Inputs", crate::render::METADATA_KEY),
                &input.parameter,
                format!(
                    "input `{}` names no parameter of this template",
                    input.parameter
                ),
                Some(format!("declare `{}` under Parameters", input.parameter)),
            );
        }
        let Some(producer) = stacks.iter().find(|other| other.spec.id == input.stack) else {
            let hint = did_you_mean(
                &input.stack,
                stacks.iter().map(|other| other.spec.id.as_str()),
            )
            .map(|close| format!("did you mean `{close}`?"));
            report.error(
                &location,
                "",
                format!(
                    "input comes from stack `{}`, which this environment does not have",
                    input.stack
                ),
                hint,
            );
            continue;
        };
        if !producer.template.outputs.contains_key(&input.output) {
            let hint = did_you_mean(
                &input.output,
                producer.template.outputs.keys().map(String::as_str),
            )
            .map(|close| format!("did you mean `{close}`?"))
            .or_else(|| {
                Some(format!(
                    "add output `{}` to stack `{}`",
                    input.output, input.stack
                ))
            });
            report.error(
                &location,
                "",
                format!("stack `{}` has no output `{}`", input.stack, input.output),
                hint,
            );
        }
    }
    for (name, parameter) in &template.parameters {
        let provided = stack.inputs.iter().any(|input| &input.parameter == name);
        if !provided && parameter.get("Default").is_none() {
            report.error(
                &format!("Parameters.{name}"),
                "",
                format!("parameter `{name}` has no default and no input supplies it"),
                Some(format!(
                    "give it a Default, or map it under Metadata.{}.Inputs",
                    crate::render::METADATA_KEY
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_variables_skip_literals() {
        assert_eq!(
            sub_variables("arn:${AWS::Partition}:s3:::${Bucket}/${!Literal}/${Role.Arn}"),
            vec!["AWS::Partition", "Bucket", "Role.Arn"]
        );
    }
}
