//! Evaluating a template for one stack: conditions, intrinsic functions, pseudo parameters,
//! `Ref`/`GetAtt` values, outputs and exports.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::template::{Function, Node, Resource, Template};

use super::{ACCOUNT_ID, REGION};

/// A scalar as CloudFormation passes it around: text. Lists join with commas.
pub(super) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Evaluates template values for one stack.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub(super) template: &'a Template,
    pub(super) parameters: &'a BTreeMap<String, String>,
    pub(super) stack_name: &'a str,
    pub(super) stack_id: &'a str,
    pub(super) exports: &'a BTreeMap<String, String>,
    /// Physical ids by logical id. `None` leaves references to resources as written, for
    /// comparing properties before anything is deployed.
    pub(super) physical_ids: Option<&'a BTreeMap<String, String>>,
}

/// A stack's evaluated outputs, and the exports among them.
pub(super) struct Outputs {
    pub(super) values: BTreeMap<String, String>,
    pub(super) exports: BTreeMap<String, String>,
}

/// `None` is `AWS::NoValue`: the property is dropped.
type Evaluated = Result<Option<Value>, String>;

impl Scope<'_> {
    /// Every resource whose condition holds, by logical ID, with its type and resolved
    /// `Properties` and `Metadata`.
    pub(super) fn resources(&self) -> Result<IndexMap<String, (String, Value)>, String> {
        let mut resolved = IndexMap::new();
        for (logical_id, resource) in &self.template.resources {
            if !self.holds(resource.condition.as_deref())? {
                continue;
            }
            resolved.insert(
                logical_id.clone(),
                (resource.resource_type.clone(), self.resource(resource)?),
            );
        }
        Ok(resolved)
    }

    fn resource(&self, resource: &Resource) -> Result<Value, String> {
        let mut properties = Map::new();
        for (key, node) in &resource.properties {
            if let Some(value) = self.evaluate(node)? {
                properties.insert(key.clone(), value);
            }
        }
        let mut object = Map::new();
        object.insert("Properties".into(), Value::Object(properties));
        if let Some(metadata) = resource.attributes.get("Metadata") {
            object.insert("Metadata".into(), metadata.to_json());
        }
        Ok(Value::Object(object))
    }

    /// Outputs whose condition holds, and the exports among them.
    pub(super) fn outputs(&self) -> Result<Outputs, String> {
        let mut outputs = BTreeMap::new();
        let mut exports = BTreeMap::new();
        for (name, output) in &self.template.outputs {
            let condition = output.get("Condition").and_then(Node::as_str);
            if !self.holds(condition)? {
                continue;
            }
            let value = match output.get("Value") {
                Some(node) => self.evaluate(node)?.map(|value| scalar_text(&value)),
                None => return Err(format!("Template format error: Output {name} is malformed")),
            }
            .unwrap_or_default();
            if let Some(export) = output.get("Export").and_then(|export| export.get("Name")) {
                let export = self.evaluate(export)?.map(|value| scalar_text(&value));
                exports.insert(export.unwrap_or_default(), value.clone());
            }
            outputs.insert(name.clone(), value);
        }
        Ok(Outputs {
            values: outputs,
            exports,
        })
    }

    fn holds(&self, condition: Option<&str>) -> Result<bool, String> {
        match condition {
            None => Ok(true),
            Some(name) => self.condition(name, 0),
        }
    }

    fn condition(&self, name: &str, depth: usize) -> Result<bool, String> {
        if depth > 32 {
            return Err(format!("Template error: circular condition {name}"));
        }
        let node = self.template.conditions.get(name).ok_or_else(|| {
            format!("Template format error: Unresolved condition dependencies [{name}]")
        })?;
        self.truth(node, depth + 1)
    }

    fn truth(&self, node: &Node, depth: usize) -> Result<bool, String> {
        let Node::Intrinsic(intrinsic) = node else {
            return match node {
                Node::Bool(flag) => Ok(*flag),
                _ => Err("Template error: a condition must be a condition function".into()),
            };
        };
        let items = match &intrinsic.argument {
            Node::List(items) => items.as_slice(),
            _ => &[],
        };
        match intrinsic.function {
            Function::Equals => match items {
                [left, right] => {
                    let left = self.evaluate(left)?.map(|value| scalar_text(&value));
                    let right = self.evaluate(right)?.map(|value| scalar_text(&value));
                    Ok(left == right)
                }
                _ => Err("Template error: Fn::Equals takes two values".into()),
            },
            Function::And => {
                for item in items {
                    if !self.truth(item, depth + 1)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Function::Or => {
                for item in items {
                    if self.truth(item, depth + 1)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Function::Not => match items {
                [item] => Ok(!self.truth(item, depth + 1)?),
                _ => Err("Template error: Fn::Not takes one condition".into()),
            },
            Function::Condition => match intrinsic.argument.as_str() {
                Some(name) => self.condition(name, depth + 1),
                None => Err("Template error: Condition takes a name".into()),
            },
            other => Err(format!(
                "Template error: {} is not a condition function",
                other.key()
            )),
        }
    }

    fn evaluate(&self, node: &Node) -> Evaluated {
        Ok(Some(match node {
            Node::Null | Node::Bool(_) | Node::Number(_) | Node::String(_) => node.to_json(),
            Node::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(value) = self.evaluate(item)? {
                        values.push(value);
                    }
                }
                Value::Array(values)
            }
            Node::Map(map) => {
                let mut object = Map::new();
                for (key, item) in map {
                    if let Some(value) = self.evaluate(item)? {
                        object.insert(key.clone(), value);
                    }
                }
                Value::Object(object)
            }
            Node::Intrinsic(intrinsic) => {
                return self.intrinsic(intrinsic.function, &intrinsic.argument);
            }
        }))
    }

    fn intrinsic(&self, function: Function, argument: &Node) -> Evaluated {
        let items = match argument {
            Node::List(items) => items.as_slice(),
            _ => &[],
        };
        match function {
            Function::Ref => match argument.as_str() {
                Some(name) => self.reference(name),
                None => Err("Template error: Ref takes a name".into()),
            },
            Function::GetAtt => {
                let (resource, attribute) = match argument {
                    Node::String(text) => (text.as_str(), ""),
                    _ => match items {
                        [Node::String(resource), Node::String(attribute)] => {
                            (resource.as_str(), attribute.as_str())
                        }
                        _ => {
                            return Err(
                                "Template error: Fn::GetAtt takes [resource, attribute]".into()
                            );
                        }
                    },
                };
                self.attribute(resource, attribute).map(Some)
            }
            Function::Sub => self.substitute(argument).map(Some),
            Function::If => match items {
                [Node::String(condition), then, otherwise] => {
                    if self.condition(condition, 0)? {
                        self.evaluate(then)
                    } else {
                        self.evaluate(otherwise)
                    }
                }
                _ => Err("Template error: Fn::If takes [condition, value, value]".into()),
            },
            Function::Join => match items {
                [delimiter, list] => {
                    let delimiter = self.text(delimiter)?;
                    let list = self.evaluate(list)?.unwrap_or(Value::Array(Vec::new()));
                    if is_symbolic(&list) {
                        return Ok(Some(symbolic(
                            function,
                            Value::Array(vec![Value::String(delimiter), list]),
                        )));
                    }
                    match list {
                        Value::Array(values) => Ok(Some(Value::String(
                            values
                                .iter()
                                .map(scalar_text)
                                .collect::<Vec<_>>()
                                .join(&delimiter),
                        ))),
                        _ => Err("Template error: Fn::Join takes a list".into()),
                    }
                }
                _ => Err("Template error: Fn::Join takes [delimiter, list]".into()),
            },
            Function::Select => match items {
                [index, list] => {
                    let index = self.text(index)?;
                    let list = self.evaluate(list)?.unwrap_or(Value::Array(Vec::new()));
                    if is_symbolic(&list) {
                        return Ok(Some(symbolic(
                            function,
                            Value::Array(vec![Value::String(index), list]),
                        )));
                    }
                    let position: usize = index.parse().map_err(|_| {
                        format!("Template error: Fn::Select index {index} is not a number")
                    })?;
                    match list {
                        Value::Array(values) => values.get(position).cloned().map(Some).ok_or_else(|| {
                            format!("Template error: Fn::Select cannot select nonexistent value at index {position}")
                        }),
                        _ => Err("Template error: Fn::Select takes a list".into()),
                    }
                }
                _ => Err("Template error: Fn::Select takes [index, list]".into()),
            },
            Function::Split => match items {
                [delimiter, source] => {
                    let delimiter = self.text(delimiter)?;
                    let source = self.evaluate(source)?.unwrap_or(Value::Null);
                    if is_symbolic(&source) {
                        return Ok(Some(symbolic(
                            function,
                            Value::Array(vec![Value::String(delimiter), source]),
                        )));
                    }
                    Ok(Some(Value::Array(
                        scalar_text(&source)
                            .split(delimiter.as_str())
                            .map(|part| Value::String(part.to_string()))
                            .collect(),
                    )))
                }
                _ => Err("Template error: Fn::Split takes [delimiter, string]".into()),
            },
            Function::FindInMap => {
                match items {
                    [map, first, second] => {
                        let (map, first, second) =
                            (self.text(map)?, self.text(first)?, self.text(second)?);
                        self.template
                        .mappings
                        .get(&map)
                        .and_then(|mapping| mapping.get(&first))
                        .and_then(|entry| entry.get(&second))
                        .map(Node::to_json)
                        .map(Some)
                        .ok_or_else(|| {
                            format!("Template error: Unable to get mapping for {map}::{first}::{second}")
                        })
                    }
                    _ => Err("Template error: Fn::FindInMap takes [map, key, key]".into()),
                }
            }
            Function::ImportValue => {
                let name = self.text(argument)?;
                self.exports
                    .get(&name)
                    .map(|value| Some(Value::String(value.clone())))
                    .ok_or_else(|| format!("No export named {name} found."))
            }
            Function::Base64 => {
                let value = self.evaluate(argument)?.unwrap_or(Value::Null);
                if is_symbolic(&value) {
                    return Ok(Some(symbolic(function, value)));
                }
                Ok(Some(Value::String(base64(scalar_text(&value).as_bytes()))))
            }
            Function::GetAZs => Ok(Some(Value::Array(
                ["a", "b", "c"]
                    .iter()
                    .map(|zone| Value::String(format!("{REGION}{zone}")))
                    .collect(),
            ))),
            Function::ToJsonString => {
                let value = self.evaluate(argument)?.unwrap_or(Value::Null);
                if is_symbolic(&value) {
                    return Ok(Some(symbolic(function, value)));
                }
                Ok(Some(Value::String(value.to_string())))
            }
            Function::Length => {
                let value = self.evaluate(argument)?.unwrap_or(Value::Null);
                match value {
                    Value::Array(values) => Ok(Some(Value::from(values.len()))),
                    other if is_symbolic(&other) => Ok(Some(symbolic(function, other))),
                    _ => Err("Template error: Fn::Length takes a list".into()),
                }
            }
            Function::Equals
            | Function::And
            | Function::Or
            | Function::Not
            | Function::Condition => Ok(Some(Value::Bool(
                self.truth(&Node::intrinsic(function, argument.clone()), 0)?,
            ))),
            Function::Cidr | Function::Transform => Err(format!(
                "{} is not supported by the fake CloudFormation",
                function.key()
            )),
        }
    }

    /// A value that must come out as text (a delimiter, a map key).
    fn text(&self, node: &Node) -> Result<String, String> {
        let value = self.evaluate(node)?.unwrap_or(Value::Null);
        if is_symbolic(&value) {
            return Err(
                "Template error: this value must be known before resources are created".into(),
            );
        }
        Ok(scalar_text(&value))
    }

    fn reference(&self, name: &str) -> Evaluated {
        if let Some(declaration) = self.template.parameters.get(name) {
            let value = self.parameters.get(name).cloned().unwrap_or_default();
            let list = declaration
                .get("Type")
                .and_then(Node::as_str)
                .is_some_and(|kind| kind == "CommaDelimitedList" || kind.starts_with("List<"));
            return Ok(Some(if list {
                Value::Array(
                    value
                        .split(',')
                        .map(|item| Value::String(item.trim().to_string()))
                        .collect(),
                )
            } else {
                Value::String(value)
            }));
        }
        let pseudo = match name {
            "AWS::Region" => Some(REGION.to_string()),
            "AWS::AccountId" => Some(ACCOUNT_ID.to_string()),
            "AWS::StackName" => Some(self.stack_name.to_string()),
            "AWS::StackId" => Some(self.stack_id.to_string()),
            "AWS::Partition" => Some("aws".to_string()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
            "AWS::NoValue" => return Ok(None),
            "AWS::NotificationARNs" => return Ok(Some(Value::Array(Vec::new()))),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Some(Value::String(value)));
        }
        if !self.template.resources.contains_key(name) {
            return Err(format!(
                "Template format error: Unresolved resource dependencies [{name}] in the Resources block of the template"
            ));
        }
        Ok(Some(match self.physical_ids {
            None => symbolic(Function::Ref, Value::String(name.to_string())),
            Some(ids) => Value::String(ids.get(name).cloned().ok_or_else(|| {
                format!("Template error: resource {name} is not created (its condition is false)")
            })?),
        }))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<Value, String> {
        if !self.template.resources.contains_key(resource) {
            return Err(format!(
                "Template error: instance of Fn::GetAtt references undefined resource {resource}"
            ));
        }
        Ok(match self.physical_ids {
            None => symbolic(
                Function::GetAtt,
                Value::Array(vec![
                    Value::String(resource.to_string()),
                    Value::String(attribute.to_string()),
                ]),
            ),
            Some(_) => Value::String(format!(
                "arn:aws:fake:::{}/{resource}/{attribute}",
                self.stack_name
            )),
        })
    }

    /// `Fn::Sub`: parameters, pseudo parameters and local variables are substituted; with
    /// physical ids, resources and attributes too. Otherwise the result keeps `${Resource}`
    /// and stays a `Fn::Sub`.
    fn substitute(&self, argument: &Node) -> Result<Value, String> {
        let (text, locals) = match argument {
            Node::String(text) => (text.as_str(), None),
            Node::List(parts) => match parts.as_slice() {
                [Node::String(text), Node::Map(locals)] => (text.as_str(), Some(locals)),
                [Node::String(text)] => (text.as_str(), None),
                _ => return Err("Template error: Fn::Sub takes a string or [string, map]".into()),
            },
            _ => return Err("Template error: Fn::Sub takes a string or [string, map]".into()),
        };
        let mut local_values = BTreeMap::new();
        let mut symbolic_locals = Map::new();
        for (name, node) in locals.into_iter().flatten() {
            let value = self.evaluate(node)?.unwrap_or(Value::Null);
            if is_symbolic(&value) {
                symbolic_locals.insert(name.clone(), value);
            } else {
                local_values.insert(name.clone(), scalar_text(&value));
            }
        }
        let mut output = String::new();
        let mut kept = false;
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                output.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let variable = after[..end].trim();
            rest = &after[end + 1..];
            if let Some(literal) = variable.strip_prefix('!') {
                output.push_str("${");
                output.push_str(literal);
                output.push('}');
                continue;
            }
            if let Some(value) = local_values.get(variable) {
                output.push_str(value);
                continue;
            }
            let value = if symbolic_locals.contains_key(variable) {
                None
            } else {
                match variable.split_once('.') {
                    Some((resource, attribute)) => Some(self.attribute(resource, attribute)?),
                    None => self.reference(variable)?,
                }
            };
            match value {
                Some(value) if !is_symbolic(&value) => output.push_str(&scalar_text(&value)),
                _ => {
                    kept = true;
                    output.push_str("${");
                    output.push_str(variable);
                    output.push('}');
                }
            }
        }
        output.push_str(rest);
        if !kept {
            return Ok(Value::String(output));
        }
        let argument = if symbolic_locals.is_empty() {
            Value::String(output)
        } else {
            Value::Array(vec![Value::String(output), Value::Object(symbolic_locals)])
        };
        Ok(symbolic(Function::Sub, argument))
    }
}

fn symbolic(function: Function, argument: Value) -> Value {
    let mut object = Map::new();
    object.insert(function.key(), argument);
    Value::Object(object)
}

/// Whether a value still holds an unresolved intrinsic (a reference to a resource).
fn is_symbolic(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(is_symbolic),
        Value::Object(object) => {
            (object.len() == 1
                && object
                    .keys()
                    .all(|key| key == "Ref" || key.starts_with("Fn::")))
                || object.values().any(is_symbolic)
        }
        _ => false,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut output = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (triple >> (18 - 6 * position)) & 0x3f;
                output.push(char::from(ALPHABET[index as usize]));
            } else {
                output.push('=');
            }
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use crate::aws::AwsError;
    use crate::aws::fake::FakeCloudFormation;
    use crate::aws::fake::fixtures::*;

    use super::*;

    #[tokio::test]
    async fn conditions_and_intrinsics_shape_outputs() {
        let fake = FakeCloudFormation::new();
        let body = "\
Parameters:
  Environment:
    Type: String
    AllowedValues: [dev, prod]
Conditions:
  IsProd: !Equals [!Ref Environment, prod]
Mappings:
  Sizes:
    dev: {Count: 1}
    prod: {Count: 3}
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Extra:
    Type: AWS::SNS::Topic
    Condition: IsProd
Outputs:
  Count:
    Value: !FindInMap [Sizes, !Ref Environment, Count]
  Mode:
    Value: !If [IsProd, production, development]
  Joined:
    Value: !Join ['/', [!Ref 'AWS::Region', !Select [1, !Split [',', 'a,b,c']]]]
  Extra:
    Condition: IsProd
    Value: !Ref Extra
  Exported:
    Value: !Sub '${Topic}'
    Export:
      Name: !Sub '${AWS::StackName}-topic'
";
        let stack = fake
            .deploy(
                "app",
                body,
                &map(&[("Environment", "dev")]),
                &BTreeMap::new(),
            )
            .expect("deploy");
        assert_eq!(stack.outputs["Count"], "1");
        assert_eq!(stack.outputs["Mode"], "development");
        assert_eq!(stack.outputs["Joined"], "us-east-1/b");
        assert!(!stack.outputs.contains_key("Extra"));
        assert!(stack.outputs["Exported"].starts_with("app-Topic-"));
        let importer = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  Imported:\n    Value: !ImportValue app-topic\n";
        let imported = fake
            .deploy("other", importer, &BTreeMap::new(), &BTreeMap::new())
            .expect("deploy importer");
        assert_eq!(imported.outputs["Imported"], stack.outputs["Exported"]);
        assert!(matches!(
            fake.deploy("app", body, &map(&[("Environment", "qa")]), &BTreeMap::new()),
            Err(AwsError::Validation(message)) if message.contains("AllowedValues")
        ));
    }

    #[test]
    fn base64_encodes_with_padding() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
