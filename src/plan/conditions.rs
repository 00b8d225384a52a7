//! Template conditions evaluated for given parameter values, so the structural diff sees the
//! resources CloudFormation would really have: a parameter that turns a condition on adds
//! its resources (an endpoint appears with its first model package), one that turns it off
//! removes them. Conditions the tool cannot evaluate offline keep their resources.

use std::collections::BTreeMap;

use crate::template::{Function, Node, Template};

/// `template` without the resources whose condition is false for `parameters` (missing
/// parameters take their `Default`).
pub fn active(template: &Template, parameters: &BTreeMap<String, String>) -> Template {
    let mut active = template.clone();
    active.resources.retain(|_, resource| {
        resource
            .condition
            .as_deref()
            .and_then(|name| condition(template, parameters, name, 0))
            .unwrap_or(true)
    });
    active
}

/// Deep enough for any real template; stops a condition that names itself.
const MAX_DEPTH: usize = 16;

fn condition(
    template: &Template,
    parameters: &BTreeMap<String, String>,
    name: &str,
    depth: usize,
) -> Option<bool> {
    if depth > MAX_DEPTH {
        return None;
    }
    evaluate(
        template,
        parameters,
        template.conditions.get(name)?,
        depth + 1,
    )
}

fn evaluate(
    template: &Template,
    parameters: &BTreeMap<String, String>,
    node: &Node,
    depth: usize,
) -> Option<bool> {
    let Node::Intrinsic(intrinsic) = node else {
        return None;
    };
    let items = |node: &Node| match node {
        Node::List(items) => Some(items.clone()),
        _ => None,
    };
    match intrinsic.function {
        Function::Equals => {
            let items = items(&intrinsic.argument)?;
            let [left, right] = items.as_slice() else {
                return None;
            };
            Some(value(template, parameters, left)? == value(template, parameters, right)?)
        }
        Function::Not => {
            let items = items(&intrinsic.argument)?;
            Some(!evaluate(template, parameters, items.first()?, depth)?)
        }
        Function::And | Function::Or => {
            let values = items(&intrinsic.argument)?
                .iter()
                .map(|item| evaluate(template, parameters, item, depth))
                .collect::<Option<Vec<bool>>>()?;
            Some(if intrinsic.function == Function::And {
                values.iter().all(|value| *value)
            } else {
                values.iter().any(|value| *value)
            })
        }
        Function::Condition => condition(template, parameters, intrinsic.argument.as_str()?, depth),
        _ => None,
    }
}

/// A literal, or a `Ref` to a parameter (its value, else its default).
fn value(
    template: &Template,
    parameters: &BTreeMap<String, String>,
    node: &Node,
) -> Option<String> {
    match node {
        Node::String(text) => Some(text.clone()),
        Node::Number(number) => Some(number.to_string()),
        Node::Bool(flag) => Some(flag.to_string()),
        Node::Intrinsic(intrinsic) if intrinsic.function == Function::Ref => {
            let name = intrinsic.argument.as_str()?;
            parameters.get(name).cloned().or_else(|| {
                template
                    .parameters
                    .get(name)?
                    .get("Default")
                    .and_then(|default| value(template, parameters, default))
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Arn: {Type: String, Default: ""}
  Stage: {Type: String}
Conditions:
  HasArn: !Not [!Equals [!Ref Arn, ""]]
  Prod: !Equals [!Ref Stage, prod]
  Both: !And [!Condition HasArn, !Condition Prod]
  Unknown: !Equals [!GetAtt A.B, x]
Resources:
  Always: {Type: AWS::SNS::Topic}
  Model: {Type: AWS::SNS::Topic, Condition: HasArn}
  ProdModel: {Type: AWS::SNS::Topic, Condition: Both}
  Mystery: {Type: AWS::SNS::Topic, Condition: Unknown}
"#;

    fn ids(parameters: &[(&str, &str)]) -> Vec<String> {
        let template = Template::parse(TEMPLATE).expect("template");
        let parameters = parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        active(&template, &parameters)
            .resources
            .into_keys()
            .collect()
    }

    #[test]
    fn resources_follow_their_conditions() {
        assert_eq!(ids(&[("Stage", "dev")]), ["Always", "Mystery"]);
        assert_eq!(
            ids(&[("Arn", "arn:x"), ("Stage", "dev")]),
            ["Always", "Model", "Mystery"]
        );
        assert_eq!(
            ids(&[("Arn", "arn:x"), ("Stage", "prod")]),
            ["Always", "Model", "ProdModel", "Mystery"]
        );
    }
}
