//! Template values as strings, offline: pseudo parameters, parameters fed by other stacks'
//! outputs (followed to the producing stack), `Ref`, `GetAtt`, `Sub` and `Join`. What only
//! exists once deployed (a key id, a generated name) becomes a placeholder `⟨stack/Logical⟩`
//! that matches only itself or a wildcard, so a policy naming that very resource and a
//! `key/*` pattern both cover it, and nothing is covered by accident.

use crate::config::Environment;
use crate::iam::data::facts;
use crate::pipeline::config::partition;
use crate::render::RenderedStack;
use crate::template::{Function, Node, Resource};

/// Ref returns the value of this property (the resource's name) for these types; the others
/// listed in `REF_IS_ARN` return the ARN. Anything else becomes a placeholder.
const REF_IS_NAME: &[(&str, &str)] = &[
    ("AWS::S3::Bucket", "BucketName"),
    ("AWS::IAM::Role", "RoleName"),
    ("AWS::SageMaker::Pipeline", "PipelineName"),
    ("AWS::CloudWatch::Alarm", "AlarmName"),
    ("AWS::CloudWatch::Dashboard", "DashboardName"),
    ("AWS::Logs::LogGroup", "LogGroupName"),
    ("AWS::CodeBuild::Project", "Name"),
    ("AWS::Events::Rule", "Name"),
    ("AWS::KMS::Alias", "AliasName"),
    ("AWS::SSM::Parameter", "Name"),
    ("AWS::Lambda::Function", "FunctionName"),
    ("AWS::SQS::Queue", "QueueUrl"),
];
const REF_IS_ARN: &[&str] = &[
    "AWS::SNS::Topic",
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
];

pub struct Resolver<'a> {
    pub environment: &'a Environment,
    pub stacks: &'a [RenderedStack],
}

impl<'a> Resolver<'a> {
    pub fn new(environment: &'a Environment, stacks: &'a [RenderedStack]) -> Resolver<'a> {
        Resolver {
            environment,
            stacks,
        }
    }

    pub fn partition(&self) -> &'static str {
        partition(&self.environment.region)
    }

    fn stack(&self, id: &str) -> Option<&'a RenderedStack> {
        self.stacks.iter().find(|stack| stack.spec.id == id)
    }

    /// The ARN of the environment's KMS key, which encrypts its buckets (the first
    /// `AWS::KMS::Key` of the first stack holding one: the storage stack's).
    pub fn bucket_key(&self) -> Option<String> {
        self.stacks.iter().find_map(|stack| {
            stack
                .template
                .resources
                .iter()
                .find(|(_, resource)| resource.resource_type == "AWS::KMS::Key")
                .map(|(logical_id, resource)| self.arn(stack, logical_id, resource))
        })
    }

    /// A scalar value; lists are joined with commas (as a `CommaDelimitedList` would be).
    pub fn string(&self, stack: &RenderedStack, node: &Node) -> String {
        self.strings(stack, node).join(",")
    }

    /// Every string a value stands for: a list gives each item.
    pub fn strings(&self, stack: &RenderedStack, node: &Node) -> Vec<String> {
        match node {
            Node::Null => vec![String::new()],
            Node::Bool(value) => vec![value.to_string()],
            Node::Number(value) => vec![value.to_string()],
            Node::String(text) => vec![text.clone()],
            Node::List(items) => items
                .iter()
                .flat_map(|item| self.strings(stack, item))
                .collect(),
            Node::Map(_) => vec![placeholder(&stack.spec.id, "map")],
            Node::Intrinsic(intrinsic) => {
                let argument = &intrinsic.argument;
                match intrinsic.function {
                    Function::Ref => match argument.as_str() {
                        Some(name) => vec![self.reference(stack, name)],
                        None => vec![placeholder(&stack.spec.id, "Ref")],
                    },
                    Function::GetAtt => match argument {
                        Node::List(parts) if parts.len() == 2 => {
                            let resource = parts[0].as_str().unwrap_or_default();
                            let attribute = self.string(stack, &parts[1]);
                            vec![self.attribute(stack, resource, &attribute)]
                        }
                        _ => vec![placeholder(&stack.spec.id, "GetAtt")],
                    },
                    Function::Sub => vec![self.substitute(stack, argument)],
                    Function::Join => match argument {
                        Node::List(parts) if parts.len() == 2 => {
                            let separator = self.string(stack, &parts[0]);
                            vec![self.strings(stack, &parts[1]).join(&separator)]
                        }
                        _ => vec![placeholder(&stack.spec.id, "Join")],
                    },
                    other => vec![placeholder(&stack.spec.id, &format!("{other:?}"))],
                }
            }
        }
    }

    /// `!Ref name`: a pseudo parameter, a parameter or a resource.
    pub fn reference(&self, stack: &RenderedStack, name: &str) -> String {
        match name {
            "AWS::Partition" => return self.partition().to_string(),
            "AWS::Region" => return self.environment.region.clone(),
            "AWS::AccountId" => return self.environment.account_id.clone(),
            "AWS::URLSuffix" => return "amazonaws.com".to_string(),
            "AWS::StackName" => return stack.spec.name.clone(),
            "AWS::NoValue" => return String::new(),
            _ => {}
        }
        if stack.template.parameters.contains_key(name) {
            return self.parameter(stack, name);
        }
        let Some(resource) = stack.template.resources.get(name) else {
            return placeholder(&stack.spec.id, name);
        };
        let type_name = resource.resource_type.as_str();
        if let Some((_, property)) = REF_IS_NAME.iter().find(|(t, _)| *t == type_name) {
            return match resource.properties.get(*property) {
                Some(value) => self.string(stack, value),
                None => placeholder(&stack.spec.id, name),
            };
        }
        if REF_IS_ARN.contains(&type_name) {
            return self.arn(stack, name, resource);
        }
        placeholder(&stack.spec.id, name)
    }

    /// A parameter's value: the output that feeds it, else its default.
    fn parameter(&self, stack: &RenderedStack, name: &str) -> String {
        if let Some(input) = stack.inputs.iter().find(|input| input.parameter == name)
            && let Some(producer) = self.stack(&input.stack)
            && let Some(value) = producer
                .template
                .outputs
                .get(&input.output)
                .and_then(|output| output.get("Value"))
        {
            return self.string(producer, value);
        }
        match stack
            .template
            .parameters
            .get(name)
            .and_then(|parameter| parameter.get("Default"))
        {
            Some(default) => self.string(stack, default),
            None => placeholder(&stack.spec.id, name),
        }
    }

    /// `!GetAtt resource.attribute`.
    pub fn attribute(&self, stack: &RenderedStack, logical_id: &str, attribute: &str) -> String {
        let Some(resource) = stack.template.resources.get(logical_id) else {
            return placeholder(&stack.spec.id, &format!("{logical_id}.{attribute}"));
        };
        if attribute == "Arn" || attribute.ends_with("Arn") {
            return self.arn(stack, logical_id, resource);
        }
        match resource.properties.get(attribute) {
            Some(value) => self.string(stack, value),
            None => placeholder(&stack.spec.id, &format!("{logical_id}.{attribute}")),
        }
    }

    /// The resource's ARN from its `arn` rule, or a placeholder.
    pub fn arn(&self, stack: &RenderedStack, logical_id: &str, resource: &Resource) -> String {
        match facts().own_arn(&resource.resource_type) {
            Some(rule) => self
                .expand(
                    stack,
                    logical_id,
                    resource,
                    rule.template,
                    rule.resource_type,
                )
                .into_iter()
                .next()
                .unwrap_or_default(),
            None => placeholder(&stack.spec.id, &format!("{logical_id}.Arn")),
        }
    }

    /// An ARN template with the resource's properties filled in; a list-valued property gives
    /// one ARN per item.
    pub fn expand(
        &self,
        stack: &RenderedStack,
        logical_id: &str,
        resource: &Resource,
        template: &str,
        resource_type: &str,
    ) -> Vec<String> {
        let mut results = vec![String::new()];
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            let Some(length) = rest[start..].find('}') else {
                break;
            };
            let literal = &rest[..start];
            let name = &rest[start + 2..start + length];
            rest = &rest[start + length + 1..];
            let values = match name {
                "Partition" => vec![self.partition().to_string()],
                "Region" => vec![self.environment.region.clone()],
                "Account" => vec![self.environment.account_id.clone()],
                "Ref" => vec![self.reference(stack, logical_id)],
                path => {
                    let nodes = property(&resource.properties, path);
                    if nodes.is_empty() {
                        vec![placeholder(&stack.spec.id, &format!("{logical_id}.{path}"))]
                    } else {
                        nodes
                            .iter()
                            .flat_map(|node| self.strings(stack, node))
                            .collect()
                    }
                }
            };
            let values: Vec<String> = if resource_type.starts_with("sagemaker:") {
                values.iter().map(|value| lowercase_name(value)).collect()
            } else {
                values
            };
            results = results
                .iter()
                .flat_map(|prefix| {
                    values
                        .iter()
                        .map(move |value| format!("{prefix}{literal}{value}"))
                })
                .collect();
        }
        results.into_iter().map(|arn| arn + rest).collect()
    }

    /// `!Sub "text"` or `!Sub [text, {vars}]`.
    fn substitute(&self, stack: &RenderedStack, argument: &Node) -> String {
        let (text, variables) = match argument {
            Node::String(text) => (text.as_str(), None),
            Node::List(parts) if !parts.is_empty() => {
                (parts[0].as_str().unwrap_or_default(), parts.get(1))
            }
            _ => return placeholder(&stack.spec.id, "Sub"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(length) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &rest[start + 2..start + length];
            rest = &rest[start + length + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            if let Some(value) = variables.and_then(|variables| variables.get(name)) {
                out.push_str(&self.string(stack, value));
            } else if let Some((resource, attribute)) = name.split_once('.')
                && !name.starts_with("AWS::")
            {
                out.push_str(&self.attribute(stack, resource, attribute));
            } else {
                out.push_str(&self.reference(stack, name));
            }
        }
        out.push_str(rest);
        out
    }
}

/// A stand-in for a value known only once deployed.
pub fn placeholder(stack: &str, what: &str) -> String {
    format!("⟨{stack}/{what}⟩")
}

/// SageMaker writes names in ARNs in lowercase; placeholders stay as they are.
fn lowercase_name(value: &str) -> String {
    if value.contains('⟨') {
        value.to_string()
    } else {
        value.to_lowercase()
    }
}

/// The nodes at a dotted property path; a list along the way gives each item's value.
pub fn property<'n>(properties: &'n indexmap::IndexMap<String, Node>, path: &str) -> Vec<&'n Node> {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut current: Vec<&Node> = properties.get(first).into_iter().collect();
    for part in parts {
        current = current
            .into_iter()
            .flat_map(|node| match node {
                Node::List(items) => items.iter().filter_map(|item| item.get(part)).collect(),
                other => other.get(part).into_iter().collect::<Vec<_>>(),
            })
            .collect();
    }
    current
        .into_iter()
        .flat_map(|node| match node {
            Node::List(items) => items.iter().collect(),
            other => vec![other],
        })
        .collect()
}
