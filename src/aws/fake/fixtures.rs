//! Templates, requests and helpers the fake's unit tests share.

use std::collections::BTreeMap;

use crate::aws::{ChangeSet, ChangeSetKind, ChangeSetRequest, DeployedStack, TemplateSource};

use super::FakeCloudFormation;

pub(super) const TOPIC: &str = "\
Parameters:
  DisplayName:
    Type: String
    Default: alerts
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Ref DisplayName
Outputs:
  TopicArn:
    Value: !Ref Topic
  TopicName:
    Value: !GetAtt Topic.TopicName
  Described:
    Value: !Sub '${AWS::StackName}-${DisplayName}'
";

/// A named topic (create-only `TopicName`), a policy on it and a parameter named after it.
pub(super) const NAMED: &str = "\
Parameters:
  Name:
    Type: String
  DisplayName:
    Type: String
    Default: alerts
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Ref Name
      DisplayName: !Ref DisplayName
  Policy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Topic]
      PolicyDocument: {Version: '2012-10-17', Statement: []}
  Pointer:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/topics/${Topic.TopicName}'
      Type: String
      Value: topic
Outputs:
  TopicArn:
    Value: !Ref Topic
";

pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

pub(super) fn request(
    stack: &str,
    change_set: &str,
    kind: ChangeSetKind,
    body: &str,
    parameters: &[(&str, &str)],
) -> ChangeSetRequest {
    ChangeSetRequest {
        stack_name: stack.into(),
        change_set_name: change_set.into(),
        kind,
        template: TemplateSource::Body(body.into()),
        parameters: map(parameters),
        tags: map(&[("project", "mlops")]),
        capabilities: Vec::new(),
        role_arn: None,
        description: "test".into(),
        rollback: None,
        revert_drift: false,
    }
}

pub(super) fn change(
    logical_id: &str,
    action: &str,
    replacement: Option<&str>,
) -> (String, String, Option<String>) {
    (
        logical_id.to_string(),
        action.to_string(),
        replacement.map(str::to_string),
    )
}

pub(super) fn changes(change_set: &ChangeSet) -> Vec<(String, String, Option<String>)> {
    change_set
        .changes
        .iter()
        .map(|change| {
            (
                change.logical_id.clone(),
                change.action.clone(),
                change.replacement.clone(),
            )
        })
        .collect()
}

pub(super) fn deploy_topic(fake: &FakeCloudFormation, stack: &str) -> DeployedStack {
    fake.deploy(
        stack,
        TOPIC,
        &BTreeMap::new(),
        &map(&[("project", "mlops")]),
    )
    .expect("deploy")
}
