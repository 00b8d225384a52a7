//! The CloudFormation template model: a rendered YAML document, parsed into sections and
//! values that know the intrinsic functions, in both short (`!Ref x`) and long (`Ref: x`) form.
//!
//! Intrinsics are normalised into `Node::Intrinsic` whichever form the template used, so checks
//! and diffs see one shape. Written back, YAML uses the short form and JSON the long form.

mod yaml;

use std::fmt;

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Number, Value};

/// A CloudFormation intrinsic function (or the `Condition` reference used inside conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Ref,
    GetAtt,
    Sub,
    If,
    Join,
    Select,
    Split,
    FindInMap,
    ImportValue,
    Equals,
    And,
    Or,
    Not,
    Base64,
    Cidr,
    GetAZs,
    Condition,
    Transform,
    Length,
    ToJsonString,
}

impl Function {
    pub const ALL: [Function; 20] = [
        Function::Ref,
        Function::GetAtt,
        Function::Sub,
        Function::If,
        Function::Join,
        Function::Select,
        Function::Split,
        Function::FindInMap,
        Function::ImportValue,
        Function::Equals,
        Function::And,
        Function::Or,
        Function::Not,
        Function::Base64,
        Function::Cidr,
        Function::GetAZs,
        Function::Condition,
        Function::Transform,
        Function::Length,
        Function::ToJsonString,
    ];

    /// The short-form YAML tag, without `!`.
    pub fn tag(self) -> &'static str {
        match self {
            Function::Ref => "Ref",
            Function::GetAtt => "GetAtt",
            Function::Sub => "Sub",
            Function::If => "If",
            Function::Join => "Join",
            Function::Select => "Select",
            Function::Split => "Split",
            Function::FindInMap => "FindInMap",
            Function::ImportValue => "ImportValue",
            Function::Equals => "Equals",
            Function::And => "And",
            Function::Or => "Or",
            Function::Not => "Not",
            Function::Base64 => "Base64",
            Function::Cidr => "Cidr",
            Function::GetAZs => "GetAZs",
            Function::Condition => "Condition",
            Function::Transform => "Transform",
            Function::Length => "Length",
            Function::ToJsonString => "ToJsonString",
        }
    }

    /// The long-form key: `Ref`, `Condition`, or `Fn::<name>`.
    pub fn key(self) -> String {
        match self {
            Function::Ref | Function::Condition => self.tag().to_string(),
            _ => format!("Fn::{}", self.tag()),
        }
    }

    pub fn from_tag(tag: &str) -> Option<Function> {
        Function::ALL
            .into_iter()
            .find(|function| function.tag() == tag)
    }

    pub fn from_key(key: &str) -> Option<Function> {
        match key {
            "Ref" => Some(Function::Ref),
            "Condition" => Some(Function::Condition),
            _ => key
                .strip_prefix("Fn::")
                .and_then(Function::from_tag)
                .filter(|function| !matches!(function, Function::Ref | Function::Condition)),
        }
    }
}

/// A value in a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Node>),
    Map(IndexMap<String, Node>),
    Intrinsic(Box<Intrinsic>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    pub function: Function,
    pub argument: Node,
}

impl Node {
    /// Builds an intrinsic. `GetAtt`'s `Resource.Attribute` string form is stored as the
    /// `[Resource, Attribute]` list both forms mean, so the two compare equal.
    pub fn intrinsic(function: Function, argument: Node) -> Node {
        let argument = match (function, argument) {
            (Function::GetAtt, Node::String(text)) => match text.split_once('.') {
                Some((resource, attribute)) => Node::List(vec![
                    Node::String(resource.to_string()),
                    Node::String(attribute.to_string()),
                ]),
                None => Node::String(text),
            },
            (_, argument) => argument,
        };
        Node::Intrinsic(Box::new(Intrinsic { function, argument }))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match self {
            Node::Map(map) => Some(map),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|map| map.get(key))
    }
}

/// Why a rendered document is not a CloudFormation template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// Where in the template, e.g. `Resources.DataBucket.Properties`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl Node {
    /// Converts a YAML value, recognising intrinsics in either form.
    pub fn from_yaml(value: &Value, path: &str) -> Result<Node, ModelError> {
        Ok(match value {
            Value::Null => Node::Null,
            Value::Bool(flag) => Node::Bool(*flag),
            Value::Number(number) => Node::Number(number.clone()),
            Value::String(text) => Node::String(text.clone()),
            Value::Sequence(items) => Node::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| Node::from_yaml(item, &format!("{path}[{index}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(mapping) => {
                let map = mapping_to_map(mapping, path)?;
                if map.len() == 1 {
                    let (key, argument) = map.first().expect("one entry");
                    // An IAM policy statement's `Condition` is a map of operators, not the
                    // condition intrinsic; only a condition name (a string) is the intrinsic.
                    let is_condition_block =
                        key == "Condition" && !matches!(argument, Node::String(_));
                    if let Some(function) = Function::from_key(key)
                        && !is_condition_block
                    {
                        return Ok(Node::intrinsic(function, argument.clone()));
                    }
                }
                Node::Map(map)
            }
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                let function = Function::from_tag(name).ok_or_else(|| ModelError {
                    path: path.to_string(),
                    message: format!("unknown tag `{tag}`"),
                })?;
                Node::intrinsic(function, Node::from_yaml(&tagged.value, path)?)
            }
        })
    }

    /// JSON, with intrinsics in long form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Node::Null => Json::Null,
            Node::Bool(flag) => Json::Bool(*flag),
            Node::Number(number) => number_to_json(number),
            Node::String(text) => Json::String(text.clone()),
            Node::List(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(map) => Json::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
            Node::Intrinsic(intrinsic) => {
                let argument = intrinsic.argument.to_json();
                let mut object = serde_json::Map::new();
                object.insert(intrinsic.function.key(), argument);
                Json::Object(object)
            }
        }
    }

    /// Visits this node and every node below it, with its path.
    pub fn walk<'a>(&'a self, path: &str, visit: &mut dyn FnMut(&str, &'a Node)) {
        visit(path, self);
        match self {
            Node::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    item.walk(&format!("{path}[{index}]"), visit);
                }
            }
            Node::Map(map) => {
                for (key, value) in map {
                    value.walk(&join_path(path, key), visit);
                }
            }
            Node::Intrinsic(intrinsic) => intrinsic
                .argument
                .walk(&join_path(path, &intrinsic.function.key()), visit),
            _ => {}
        }
    }
}

pub fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn number_to_json(number: &Number) -> serde_json::Value {
    if let Some(value) = number.as_i64() {
        value.into()
    } else if let Some(value) = number.as_u64() {
        value.into()
    } else {
        number
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

fn mapping_to_map(mapping: &Mapping, path: &str) -> Result<IndexMap<String, Node>, ModelError> {
    let mut map = IndexMap::with_capacity(mapping.len());
    for (key, value) in mapping {
        let key = match key {
            Value::String(key) => key.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(ModelError {
                    path: path.to_string(),
                    message: format!("map key {other:?} is not a string"),
                });
            }
        };
        let child = join_path(path, &key);
        let node = Node::from_yaml(value, &child)?;
        map.insert(key, node);
    }
    Ok(map)
}

/// A resource in the `Resources` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub resource_type: String,
    pub properties: IndexMap<String, Node>,
    pub depends_on: Vec<String>,
    pub condition: Option<String>,
    pub deletion_policy: Option<String>,
    pub update_replace_policy: Option<String>,
    /// Metadata, CreationPolicy, UpdatePolicy and anything else, kept as written.
    pub attributes: IndexMap<String, Node>,
}

/// Resource attributes the model reads itself; others pass through `attributes`.
const RESOURCE_KEYS: [&str; 6] = [
    "Type",
    "Properties",
    "DependsOn",
    "Condition",
    "DeletionPolicy",
    "UpdateReplacePolicy",
];

/// Top-level sections, in the order canonical output writes them.
pub const SECTIONS: [&str; 11] = [
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Transform",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Resources",
    "Outputs",
    "Hooks",
];

/// A whole template. Sections the tool does not inspect are kept as `Node`s.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub format_version: Option<String>,
    pub description: Option<String>,
    pub metadata: IndexMap<String, Node>,
    pub transform: Option<Node>,
    pub parameters: IndexMap<String, Node>,
    pub rules: IndexMap<String, Node>,
    pub mappings: IndexMap<String, Node>,
    pub conditions: IndexMap<String, Node>,
    pub resources: IndexMap<String, Resource>,
    pub outputs: IndexMap<String, Node>,
    pub hooks: IndexMap<String, Node>,
}

impl Template {
    /// Parses YAML (or JSON, which is YAML) text into a template.
    pub fn parse(text: &str) -> Result<Template, ModelError> {
        let value: Value = serde_yaml_ng::from_str(text).map_err(|error| ModelError {
            path: String::new(),
            message: error.to_string(),
        })?;
        Template::from_yaml(&value)
    }

    pub fn from_yaml(value: &Value) -> Result<Template, ModelError> {
        let Value::Mapping(mapping) = value else {
            return Err(ModelError {
                path: String::new(),
                message: "a template must be a map of sections".into(),
            });
        };
        let sections = mapping_to_map(mapping, "")?;
        let mut template = Template::default();
        for (name, node) in sections {
            let section = |node: Node| -> Result<IndexMap<String, Node>, ModelError> {
                match node {
                    Node::Map(map) => Ok(map),
                    Node::Null => Ok(IndexMap::new()),
                    _ => Err(ModelError {
                        path: name.clone(),
                        message: "must be a map".into(),
                    }),
                }
            };
            match name.as_str() {
                "AWSTemplateFormatVersion" => {
                    template.format_version = node.as_str().map(str::to_string)
                }
                "Description" => template.description = node.as_str().map(str::to_string),
                "Metadata" => template.metadata = section(node)?,
                "Transform" => template.transform = Some(node),
                "Parameters" => template.parameters = section(node)?,
                "Rules" => template.rules = section(node)?,
                "Mappings" => template.mappings = section(node)?,
                "Conditions" => template.conditions = section(node)?,
                "Outputs" => template.outputs = section(node)?,
                "Hooks" => template.hooks = section(node)?,
                "Resources" => {
                    for (logical_id, resource) in section(node)? {
                        let parsed = Resource::from_node(&logical_id, resource)?;
                        template.resources.insert(logical_id, parsed);
                    }
                }
                _ => {
                    return Err(ModelError {
                        path: name.clone(),
                        message: format!("`{name}` is not a template section"),
                    });
                }
            }
        }
        Ok(template)
    }

    pub fn to_yaml_string(&self) -> String {
        let sections = self
            .sections()
            .into_iter()
            .map(|(name, node)| (name.to_string(), node))
            .collect();
        yaml::write(&Node::Map(sections))
    }

    pub fn to_json_string(&self) -> String {
        let mut object = serde_json::Map::new();
        for (name, node) in self.sections() {
            object.insert(name.to_string(), node.to_json());
        }
        let mut text =
            serde_json::to_string_pretty(&serde_json::Value::Object(object)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Every present section as a node, in canonical order.
    pub fn sections(&self) -> Vec<(&'static str, Node)> {
        let section =
            |map: &IndexMap<String, Node>| (!map.is_empty()).then(|| Node::Map(map.clone()));
        let resources = (!self.resources.is_empty()).then(|| {
            Node::Map(
                self.resources
                    .iter()
                    .map(|(id, resource)| (id.clone(), resource.to_node()))
                    .collect(),
            )
        });
        let all = [
            (
                "AWSTemplateFormatVersion",
                self.format_version.clone().map(Node::String),
            ),
            ("Description", self.description.clone().map(Node::String)),
            ("Metadata", section(&self.metadata)),
            ("Transform", self.transform.clone()),
            ("Parameters", section(&self.parameters)),
            ("Rules", section(&self.rules)),
            ("Mappings", section(&self.mappings)),
            ("Conditions", section(&self.conditions)),
            ("Resources", resources),
            ("Outputs", section(&self.outputs)),
            ("Hooks", section(&self.hooks)),
        ];
        debug_assert!(all.iter().map(|(name, _)| *name).eq(SECTIONS));
        all.into_iter()
            .filter_map(|(name, node)| node.map(|node| (name, node)))
            .collect()
    }
}

impl Resource {
    fn from_node(logical_id: &str, node: Node) -> Result<Resource, ModelError> {
        let path = format!("Resources.{logical_id}");
        let Node::Map(mut map) = node else {
            return Err(ModelError {
                path,
                message: "a resource must be a map with `Type`".into(),
            });
        };
        let resource_type = match map.shift_remove("Type") {
            Some(Node::String(text)) => text,
            Some(_) => {
                return Err(ModelError {
                    path: format!("{path}.Type"),
                    message: "`Type` must be a string".into(),
                });
            }
            None => {
                return Err(ModelError {
                    path,
                    message: "resource has no `Type`".into(),
                });
            }
        };
        let properties = match map.shift_remove("Properties") {
            None | Some(Node::Null) => IndexMap::new(),
            Some(Node::Map(properties)) => properties,
            Some(_) => {
                return Err(ModelError {
                    path: format!("{path}.Properties"),
                    message: "`Properties` must be a map".into(),
                });
            }
        };
        let depends_on = match map.shift_remove("DependsOn") {
            None => Vec::new(),
            Some(Node::String(name)) => vec![name],
            Some(Node::List(items)) => items
                .into_iter()
                .map(|item| match item {
                    Node::String(name) => Ok(name),
                    _ => Err(ModelError {
                        path: format!("{path}.DependsOn"),
                        message: "`DependsOn` lists logical IDs (strings)".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ModelError {
                    path: format!("{path}.DependsOn"),
                    message: "`DependsOn` must be a logical ID or a list of them".into(),
                });
            }
        };
        let mut string = |key: &str| -> Result<Option<String>, ModelError> {
            match map.shift_remove(key) {
                None => Ok(None),
                Some(Node::String(text)) => Ok(Some(text)),
                Some(_) => Err(ModelError {
                    path: format!("{path}.{key}"),
                    message: format!("`{key}` must be a string"),
                }),
            }
        };
        let condition = string("Condition")?;
        let deletion_policy = string("DeletionPolicy")?;
        let update_replace_policy = string("UpdateReplacePolicy")?;
        debug_assert!(RESOURCE_KEYS.iter().all(|key| !map.contains_key(*key)));
        Ok(Resource {
            resource_type,
            properties,
            depends_on,
            condition,
            deletion_policy,
            update_replace_policy,
            attributes: map,
        })
    }

    fn to_node(&self) -> Node {
        let mut map = IndexMap::new();
        map.insert("Type".to_string(), Node::String(self.resource_type.clone()));
        if let Some(condition) = &self.condition {
            map.insert("Condition".into(), Node::String(condition.clone()));
        }
        match self.depends_on.as_slice() {
            [] => {}
            [one] => {
                map.insert("DependsOn".into(), Node::String(one.clone()));
            }
            many => {
                map.insert(
                    "DependsOn".into(),
                    Node::List(many.iter().cloned().map(Node::String).collect()),
                );
            }
        }
        if let Some(policy) = &self.deletion_policy {
            map.insert("DeletionPolicy".into(), Node::String(policy.clone()));
        }
        if let Some(policy) = &self.update_replace_policy {
            map.insert("UpdateReplacePolicy".into(), Node::String(policy.clone()));
        }
        for (key, value) in &self.attributes {
            map.insert(key.clone(), value.clone());
        }
        if !self.properties.is_empty() {
            map.insert("Properties".into(), Node::Map(self.properties.clone()));
        }
        Node::Map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(yaml: &str) -> (Node, Node) {
        let value: Value = serde_yaml_ng::from_str(yaml).expect("yaml");
        let node = Node::from_yaml(&value, "").expect("model");
        let written = yaml::write(&node);
        let reread: Value = serde_yaml_ng::from_str(&written).expect("reread");
        (node, Node::from_yaml(&reread, "").expect("model again"))
    }

    #[test]
    fn every_short_form_tag_round_trips() {
        let cases = [
            "!Ref Bucket",
            "!GetAtt Bucket.Arn",
            "!GetAtt [Bucket, Arn]",
            "!Sub 'arn:${AWS::Partition}:s3:::${Bucket}/*'",
            "!Sub ['${Name}-x', {Name: !Ref Bucket}]",
            "!If [IsProd, 3, 1]",
            "!Join [',', [a, b]]",
            "!Select [0, !GetAZs '']",
            "!Split [',', 'a,b']",
            "!FindInMap [Map, Key, Value]",
            "!ImportValue shared-export",
            "!Equals [!Ref Env, prod]",
            "!And [!Condition A, !Condition B]",
            "!Or [!Condition A, !Equals [a, b]]",
            "!Not [!Condition A]",
            "!Base64 text",
            "!Cidr ['10.0.0.0/16', 6, 5]",
            "!GetAZs eu-west-1",
            "!Condition IsProd",
        ];
        for case in cases {
            let (node, again) = round_trip(case);
            assert!(
                matches!(node, Node::Intrinsic(_)),
                "{case} is not an intrinsic"
            );
            assert_eq!(node, again, "{case} changed when written and read back");
        }
        for function in Function::ALL {
            let tag = format!("!{} x", function.tag());
            let (node, again) = round_trip(&tag);
            assert_eq!(node, again, "{tag}");
        }
    }

    #[test]
    fn long_and_short_forms_are_the_same_node() {
        let (short, _) = round_trip("!GetAtt Bucket.Arn");
        let (long, _) = round_trip("Fn::GetAtt: [Bucket, Arn]");
        assert_eq!(short, long);
        let (nested, _) = round_trip("!GetAtt Database.Endpoint.Address");
        let (listed, _) = round_trip("!GetAtt [Database, Endpoint.Address]");
        assert_eq!(nested, listed);
        let (short, _) = round_trip("!Ref Bucket");
        let (long, _) = round_trip("{Ref: Bucket}");
        assert_eq!(short, long);
    }

    #[test]
    fn nested_tags_are_written_as_valid_yaml() {
        let (node, again) = round_trip("Fn::Base64: !Sub '${AWS::Region}'");
        assert_eq!(node, again);
    }

    #[test]
    fn iam_condition_blocks_are_not_intrinsics() {
        let (node, _) = round_trip("Condition: {Bool: {aws:SecureTransport: 'false'}}");
        assert!(matches!(node, Node::Map(_)));
    }

    #[test]
    fn unknown_tags_are_rejected() {
        let value: Value = serde_yaml_ng::from_str("!Reff Bucket").expect("yaml");
        let error = Node::from_yaml(&value, "Resources.X").expect_err("unknown tag");
        assert!(error.message.contains("!Reff"));
    }

    #[test]
    fn canonical_output_orders_sections() {
        let template = Template::parse(
            "Resources:\n  B:\n    Properties: {BucketName: x}\n    Type: AWS::S3::Bucket\nDescription: d\nAWSTemplateFormatVersion: '2010-09-09'\n",
        )
        .expect("template");
        let text = template.to_yaml_string();
        assert_eq!(
            text,
            "AWSTemplateFormatVersion: '2010-09-09'\nDescription: d\nResources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: x\n"
        );
        assert_eq!(Template::parse(&text).expect("reparse"), template);
        let json = template.to_json_string();
        assert_eq!(Template::parse(&json).expect("json is yaml"), template);
    }

    #[test]
    fn json_output_uses_long_form() {
        let template = Template::parse(
            "Resources:\n  P:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: !Ref B\n      Arn: !GetAtt B.Arn\n",
        )
        .expect("template");
        let json = template.to_json_string();
        assert!(json.contains("\"Ref\": \"B\""), "{json}");
        assert!(json.contains("\"Fn::GetAtt\": [\n"), "{json}");
    }
}
