//! What each role must be allowed to do, derived from the rendered templates:
//! - the CloudFormation service role: every handler permission of every resource it deploys
//!   (create, read, update, delete), on the resource's ARN where the action can be scoped to
//!   it, less what the reviewed rules excuse;
//! - EventBridge and API Gateway roles: what their targets and integrations call;
//! - the pipeline and execution roles: see `pipeline.rs`; the routers' roles: `router.rs`.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::calls::{CALLS, CI_BUILD_COMMANDS, Target};
use crate::iam::data::{HANDLERS, Needed, facts};
use crate::iam::policy::glob_ignore_case;
use crate::iam::resolve::{Resolver, property};
use crate::render::RenderedStack;
use crate::template::{Node, Resource};

/// One permission a role needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub role_arn: String,
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, String>,
    pub needed_by: String,
}

/// Every requirement of every role, deduplicated (the first need of a permission is named).
pub fn requirements(resolver: &Resolver) -> Vec<Requirement> {
    let mut all = Vec::new();
    for stack in resolver.stacks {
        if let Some(role) = &stack.deploy_role {
            cloudformation_role(resolver, stack, role, &mut all);
        }
        service_roles(resolver, stack, &mut all);
    }
    all.extend(crate::iam::pipeline::requirements(resolver));
    all.extend(crate::iam::router::requirements(resolver));
    all.extend(crate::iam::retrain::requirements(resolver));
    all.extend(crate::iam::reviewer::requirements(resolver));
    codebuild_role(resolver, &mut all);
    let mut seen = BTreeSet::new();
    all.retain(|requirement| {
        seen.insert((
            requirement.role_arn.clone(),
            requirement.action.to_lowercase(),
            requirement.resource.clone(),
            requirement.context.clone(),
        ))
    });
    all
}

/// The service a role is passed to by resources of a type (`iam:PassedToService`).
fn passed_to(type_name: &str) -> Option<&'static str> {
    let namespace = type_name.split("::").nth(1)?;
    Some(match namespace {
        "SageMaker" => "sagemaker.amazonaws.com",
        "Events" => "events.amazonaws.com",
        "ApiGateway" => "apigateway.amazonaws.com",
        "CodeBuild" => "codebuild.amazonaws.com",
        "ApplicationAutoScaling" => "application-autoscaling.amazonaws.com",
        "Lambda" => "lambda.amazonaws.com",
        "S3" => "s3.amazonaws.com",
        "SNS" => "sns.amazonaws.com",
        _ => return None,
    })
}

/// The requirements of deploying one stack through the service role.
fn cloudformation_role(
    resolver: &Resolver,
    stack: &RenderedStack,
    role: &str,
    out: &mut Vec<Requirement>,
) {
    let facts = facts();
    for (logical_id, resource) in &stack.template.resources {
        let type_name = resource.resource_type.as_str();
        if !facts.knows_type(type_name) {
            // validate reports unknown types already; custom resources call no handler.
            continue;
        }
        let own = facts.own_arn(type_name).map(|rule| {
            (
                rule.resource_type.to_lowercase(),
                resolver.expand(
                    stack,
                    logical_id,
                    resource,
                    rule.template,
                    rule.resource_type,
                ),
            )
        });
        for handler in HANDLERS {
            for permission in facts.handler(type_name, handler) {
                if excused(resolver, stack, resource, permission) {
                    continue;
                }
                let needed_by = format!("{}: {logical_id} ({type_name}, {handler})", stack.spec.id);
                for resource_arn in arns(resolver, stack, logical_id, resource, permission, &own) {
                    let mut context = BTreeMap::new();
                    if permission.eq_ignore_ascii_case("iam:PassRole")
                        && let Some(service) = passed_to(type_name)
                    {
                        context.insert("iam:PassedToService".to_string(), service.to_string());
                    }
                    if permission.eq_ignore_ascii_case("iam:CreateServiceLinkedRole")
                        && let Some(service) = service_linked_service(&resource_arn)
                    {
                        context.insert("iam:AWSServiceName".to_string(), service);
                    }
                    out.push(Requirement {
                        role_arn: role.to_string(),
                        action: permission.to_string(),
                        resource: resource_arn,
                        context,
                        needed_by: needed_by.clone(),
                    });
                }
            }
        }
    }
}

/// `…:role/aws-service-role/<service>/…` → `<service>`.
fn service_linked_service(arn: &str) -> Option<String> {
    let rest = arn.split("aws-service-role/").nth(1)?;
    Some(rest.split('/').next()?.to_string())
}

/// Whether the reviewed rules excuse a permission for this resource: some row covers it and
/// none of its rows' conditions holds.
fn excused(
    resolver: &Resolver,
    stack: &RenderedStack,
    resource: &Resource,
    permission: &str,
) -> bool {
    let rows: Vec<_> = facts()
        .excuses(&resource.resource_type)
        .iter()
        .filter(|excuse| glob_ignore_case(excuse.permission, permission))
        .collect();
    !rows.is_empty()
        && rows.iter().all(|excuse| match &excuse.needed {
            Needed::Never => true,
            Needed::WhenSet(path) => property(&resource.properties, path).is_empty(),
            Needed::WhenEquals(path, wanted) => property(&resource.properties, path)
                .iter()
                .all(|node| !resolver.string(stack, node).eq_ignore_ascii_case(wanted)),
        })
}

/// The ARNs a permission is checked on: the rules' targets, else the resource's own ARN
/// when the action can be scoped to its type, else `*`.
fn arns(
    resolver: &Resolver,
    stack: &RenderedStack,
    logical_id: &str,
    resource: &Resource,
    permission: &str,
    own: &Option<(String, Vec<String>)>,
) -> Vec<String> {
    let facts = facts();
    let targets = facts.targets(&resource.resource_type, permission);
    if !targets.is_empty() {
        let mut arns: Vec<String> = targets
            .iter()
            .flat_map(|rule| {
                resolver.expand(
                    stack,
                    logical_id,
                    resource,
                    rule.template,
                    rule.resource_type,
                )
            })
            .collect();
        // A target names another resource; when the action is also scoped to the resource
        // being deployed (CreateEndpoint: the endpoint and its config), both are checked.
        if let (Some((own_type, own_arns)), Some(scoped)) = (own, facts.action(permission))
            && scoped.iter().any(|s| &s.resource_type == own_type)
            && !targets
                .iter()
                .any(|rule| rule.resource_type.eq_ignore_ascii_case(own_type))
        {
            arns.extend(own_arns.iter().cloned());
        }
        return arns;
    }
    match (own, facts.action(permission)) {
        (Some((own_type, own_arns)), Some(scoped))
            if scoped.iter().any(|s| &s.resource_type == own_type) =>
        {
            own_arns.clone()
        }
        _ => vec!["*".to_string()],
    }
}

/// EventBridge targets and API Gateway integrations act as the roles they name.
fn service_roles(resolver: &Resolver, stack: &RenderedStack, out: &mut Vec<Requirement>) {
    for (logical_id, resource) in &stack.template.resources {
        match resource.resource_type.as_str() {
            "AWS::Events::Rule" => {
                let Some(Node::List(targets)) = resource.properties.get("Targets") else {
                    continue;
                };
                for target in targets {
                    let (Some(arn), Some(role)) = (target.get("Arn"), target.get("RoleArn")) else {
                        continue;
                    };
                    let arn = resolver.string(stack, arn);
                    let Some(action) = target_action(&arn) else {
                        continue;
                    };
                    out.push(Requirement {
                        role_arn: resolver.string(stack, role),
                        action: action.to_string(),
                        resource: arn,
                        context: BTreeMap::new(),
                        needed_by: format!("{}: {logical_id} (rule target)", stack.spec.id),
                    });
                }
            }
            "AWS::ApiGateway::Method" => {
                let Some(integration) = resource.properties.get("Integration") else {
                    continue;
                };
                let (Some(uri), Some(credentials)) =
                    (integration.get("Uri"), integration.get("Credentials"))
                else {
                    continue;
                };
                let uri = resolver.string(stack, uri);
                let Some((service, action)) = service_action(&uri) else {
                    continue;
                };
                let pipelines = match (service, action) {
                    ("sagemaker", "StartPipelineExecution") => pipelines_in_template(integration),
                    _ => Vec::new(),
                };
                let resources: Vec<String> = if pipelines.is_empty() {
                    vec!["*".to_string()]
                } else {
                    pipelines
                        .iter()
                        .map(|name| {
                            format!(
                                "arn:{}:sagemaker:{}:{}:pipeline/{}",
                                resolver.partition(),
                                resolver.environment.region,
                                resolver.environment.account_id,
                                name.to_lowercase()
                            )
                        })
                        .collect()
                };
                for resource_arn in resources {
                    out.push(Requirement {
                        role_arn: resolver.string(stack, credentials),
                        action: format!("{service}:{action}"),
                        resource: resource_arn,
                        context: BTreeMap::new(),
                        needed_by: format!("{}: {logical_id} (integration)", stack.spec.id),
                    });
                }
            }
            _ => {}
        }
    }
}

/// The action EventBridge calls on a target, from the target's ARN.
fn target_action(arn: &str) -> Option<&'static str> {
    let service = arn.split(':').nth(2)?;
    let resource = arn.split(':').nth(5).unwrap_or_default();
    Some(match service {
        "sagemaker" if resource.starts_with("pipeline/") => "sagemaker:StartPipelineExecution",
        "codebuild" => "codebuild:StartBuild",
        "lambda" => "lambda:InvokeFunction",
        "sns" => "sns:Publish",
        "sqs" => "sqs:SendMessage",
        _ => return None,
    })
}

/// `arn:aws:apigateway:region:api.sagemaker:action/StartPipelineExecution` → (sagemaker, …).
fn service_action(uri: &str) -> Option<(&str, &str)> {
    let mut parts = uri.splitn(6, ':');
    let host = parts.nth(4)?;
    let path = parts.next()?;
    let service = host.strip_prefix("api.").unwrap_or(host);
    let action = path.strip_prefix("action/")?;
    Some((service, action))
}

/// The pipelines a request template may start: its `"PipelineName": "…"`, followed through a
/// `#set($pipeline = "<prefix>-$model")` and the `#set($models = [...])` it is checked against.
fn pipelines_in_template(integration: &Node) -> Vec<String> {
    let Some(Node::Map(templates)) = integration.get("RequestTemplates") else {
        return Vec::new();
    };
    let quoted_after = |text: &str, marker: &str| -> Option<String> {
        let start = text.find(marker)?;
        let rest = text[start + marker.len()..].trim_start();
        let rest = rest
            .strip_prefix(':')
            .or(rest.strip_prefix('='))
            .unwrap_or(rest);
        let rest = rest.trim_start().strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    templates
        .values()
        .filter_map(|template| template.as_str())
        .flat_map(|text| {
            let Some(name) = quoted_after(text, "\"PipelineName\"") else {
                return Vec::new();
            };
            let Some(variable) = name.strip_prefix('$') else {
                return vec![name];
            };
            let Some(pattern) = quoted_after(text, &format!("#set(${variable}")) else {
                return Vec::new();
            };
            let models: Vec<String> = text
                .find("#set($models = [")
                .and_then(|start| {
                    let rest = &text[start + "#set($models = [".len()..];
                    Some(&rest[..rest.find(']')?])
                })
                .map(|list| {
                    list.split(',')
                        .map(|item| item.trim().trim_matches('"').to_string())
                        .filter(|item| !item.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            models
                .iter()
                .map(|model| pattern.replace("$model", model))
                .collect()
        })
        .collect()
}

/// The CodeBuild role runs mlops-infra's CI builds: every call the tool makes in the commands
/// those builds run (`aws::calls`), on the environment's resources.
fn codebuild_role(resolver: &Resolver, out: &mut Vec<Requirement>) {
    let environment = resolver.environment;
    if environment.ci.is_none() {
        return;
    }
    let role = crate::pipeline::config::role_arn(environment, "codebuild");
    let arn = |service: &str, resource: &str| {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            resolver.partition(),
            environment.region,
            environment.account_id
        )
    };
    for call in CALLS {
        if !call.commands.iter().any(|c| CI_BUILD_COMMANDS.contains(c)) {
            continue;
        }
        let mut context = BTreeMap::new();
        let resources: Vec<String> = match call.target {
            Target::Nothing | Target::Named => continue,
            Target::Any => vec!["*".to_string()],
            Target::Stacks => resolver
                .stacks
                .iter()
                .map(|stack| arn("cloudformation", &format!("stack/{}/⟨id⟩", stack.spec.name)))
                .collect(),
            Target::Artifacts(prefix) => vec![format!(
                "arn:{}:s3:::{}/{prefix}⟨key⟩",
                resolver.partition(),
                environment.storage.artifacts_bucket_name
            )],
            Target::BucketKey => resolver.bucket_key().into_iter().collect(),
            Target::ModelPackages => environment
                .models
                .iter()
                .map(|model| {
                    arn(
                        "sagemaker",
                        &format!(
                            "model-package/{}/⟨version⟩",
                            model.model_package_group_name.to_lowercase()
                        ),
                    )
                })
                .collect(),
            Target::Endpoints => environment
                .models
                .iter()
                .map(|model| {
                    arn(
                        "sagemaker",
                        &format!("endpoint/{}", model.endpoint_name.to_lowercase()),
                    )
                })
                .collect(),
            Target::Records => vec![arn(
                "ssm",
                &format!(
                    "parameter/{}/{}/⟨record⟩",
                    environment.project, environment.name
                ),
            )],
            Target::DeployRole => {
                context.insert(
                    "iam:PassedToService".to_string(),
                    "cloudformation.amazonaws.com".to_string(),
                );
                vec![crate::pipeline::config::role_arn(
                    environment,
                    crate::stacks::DEPLOY_ROLE,
                )]
            }
        };
        for resource in resources {
            out.push(Requirement {
                role_arn: role.clone(),
                action: call.action.to_string(),
                resource,
                context: context.clone(),
                needed_by: format!("the CI build's {} call", call.operation),
            });
        }
    }
}
