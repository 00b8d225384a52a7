"""CloudFormation drift detection on the emulator (localaws/drift.py): a stack is checked, changed
by direct API calls as a person would change it by hand, and checked again."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from every_type import render

TEMPLATE = """
Parameters:
  MaxCapacity: {Type: Number, Default: 2}
  Memory: {Type: String, Default: "256"}
Resources:
  Target:
    Type: AWS::ApplicationAutoScaling::ScalableTarget
    Properties:
      ServiceNamespace: sagemaker
      ScalableDimension: sagemaker:variant:DesiredInstanceCount
      ResourceId: !Sub "endpoint/${AWS::StackName}-endpoint/variant/AllTraffic"
      MinCapacity: 1
      MaxCapacity: !Ref MaxCapacity
  Policy:
    Type: AWS::ApplicationAutoScaling::ScalingPolicy
    Properties:
      PolicyName: invocations
      PolicyType: TargetTrackingScaling
      ScalingTargetId: !Ref Target
      TargetTrackingScalingPolicyConfiguration:
        TargetValue: 70.0
        PredefinedMetricSpecification:
          PredefinedMetricType: SageMakerVariantInvocationsPerInstance
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/drift/${AWS::StackName}"
      RetentionInDays: 7
      Tags:
        - {Key: project, Value: mlops}
        - {Key: team, Value: ml}
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: logs
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: logs:CreateLogStream, Resource: "*"}
              - {Effect: Allow, Action: [logs:PutLogEvents], Resource: "*"}
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      MemorySize: !Ref Memory
      Timeout: "10"
      Environment:
        Variables:
          ROUTER_CONFIG: '{"classes": ["a", "b"]}'
          LEVEL: 3
      Code:
        ZipFile: |
          def handler(event, context):
              return {}
  Schedule:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 hour)
      State: ENABLED
  Topic:
    Type: AWS::SNS::Topic
"""

CHECKED = ["Target", "Policy", "Logs", "Role", "Function", "Schedule"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def detect(aws, stack: str, **options) -> dict:
    cloudformation = aws("cloudformation")
    detection_id = cloudformation.detect_stack_drift(StackName=stack, **options)[
        "StackDriftDetectionId"
    ]
    status = cloudformation.describe_stack_drift_detection_status(
        StackDriftDetectionId=detection_id
    )
    assert status["StackDriftDetectionId"] == detection_id
    return status


def drifts(aws, stack: str, *filters: str) -> dict[str, dict]:
    query = {"StackResourceDriftStatusFilters": list(filters)} if filters else {}
    answer = aws("cloudformation").describe_stack_resource_drifts(StackName=stack, **query)
    return {drift["LogicalResourceId"]: drift for drift in answer["StackResourceDrifts"]}


def differences(drift: dict) -> list[tuple[str, str, str, str]]:
    return sorted(
        (d["PropertyPath"], d["ExpectedValue"], d["ActualValue"], d["DifferenceType"])
        for d in drift.get("PropertyDifferences") or []
    )


def stack_drift(aws, stack: str) -> dict:
    return aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["DriftInformation"]


def outputs(aws, stack: str) -> dict[str, str]:
    summaries = aws("cloudformation").list_stack_resources(StackName=stack)[
        "StackResourceSummaries"
    ]
    return {item["LogicalResourceId"]: item["PhysicalResourceId"] for item in summaries}


@pytest.fixture(scope="module")
def stack(aws):
    name = unique("drift")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName=name, TemplateBody=TEMPLATE, Capabilities=["CAPABILITY_IAM"]
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    return name


@pytest.fixture(scope="module")
def before(aws, stack):
    """What the stack shows before any detection."""
    return {
        "stack": stack_drift(aws, stack),
        "drifts": aws("cloudformation").describe_stack_resource_drifts(StackName=stack),
        "resources": aws("cloudformation").describe_stack_resources(StackName=stack)[
            "StackResources"
        ],
    }


@pytest.fixture(scope="module")
def in_sync(aws, stack, before):
    return {"status": detect(aws, stack), "drifts": drifts(aws, stack)}


@pytest.fixture(scope="module")
def changed(aws, stack, in_sync):
    """MaxCapacity, the retention and the rule's state changed by hand, then detected."""
    physical = outputs(aws, stack)
    namespace, dimension = "sagemaker", "sagemaker:variant:DesiredInstanceCount"
    resource_id = f"endpoint/{stack}-endpoint/variant/AllTraffic"
    assert physical["Target"] == f"{resource_id}|{dimension}|{namespace}"
    aws("application-autoscaling").register_scalable_target(
        ServiceNamespace=namespace,
        ResourceId=resource_id,
        ScalableDimension=dimension,
        MaxCapacity=4,
    )
    aws("logs").put_retention_policy(logGroupName=physical["Logs"], retentionInDays=30)
    aws("events").disable_rule(Name=physical["Schedule"])
    return {"status": detect(aws, stack), "drifts": drifts(aws, stack)}


def test_before_any_detection_nothing_is_checked(before):
    assert before["stack"] == {"StackDriftStatus": "NOT_CHECKED"}
    assert before["drifts"]["StackResourceDrifts"] == []
    assert "NextToken" not in before["drifts"]
    assert {
        resource["LogicalResourceId"]: resource["DriftInformation"]
        for resource in before["resources"]
    } == {
        logical_id: {"StackResourceDriftStatus": "NOT_CHECKED"}
        for logical_id in CHECKED + ["Topic"]
    }


def test_a_stack_as_deployed_is_in_sync(aws, stack, in_sync):
    status = in_sync["status"]
    assert status["StackId"].split("/")[1] == stack
    assert status["DetectionStatus"] == "DETECTION_COMPLETE"
    assert status["StackDriftStatus"] == "IN_SYNC"
    assert status["DriftedStackResourceCount"] == 0
    assert "DetectionStatusReason" not in status
    # An SNS topic is a type the emulator does not check: not listed (AWS lists none such).
    assert list(in_sync["drifts"]) == CHECKED
    for logical_id, drift in in_sync["drifts"].items():
        assert drift["StackResourceDriftStatus"] == "IN_SYNC", (logical_id, drift)
        assert drift["ResourceType"] and drift["PhysicalResourceId"]
        assert "PropertyDifferences" not in drift
    # Expected values are typed as the resource schema types them: the parameter's "2" is 2,
    # "10" is 10 (an environment variable may be any JSON type in the schema: 3 stays 3).
    target = json.loads(in_sync["drifts"]["Target"]["ExpectedProperties"])
    assert target["MaxCapacity"] == 2 and target["MinCapacity"] == 1
    function = json.loads(in_sync["drifts"]["Function"]["ExpectedProperties"])
    assert function["MemorySize"] == 256 and function["Timeout"] == 10
    assert function["Environment"]["Variables"]["LEVEL"] == 3
    assert "Code" not in function  # write-only: CloudFormation cannot compare it
    assert json.loads(in_sync["drifts"]["Function"]["ActualProperties"]) == function


def test_changes_made_by_hand_are_drift(changed):
    status = changed["status"]
    assert status["DetectionStatus"] == "DETECTION_COMPLETE"
    assert status["StackDriftStatus"] == "DRIFTED"
    assert status["DriftedStackResourceCount"] == 3
    modified = {
        logical_id: differences(drift)
        for logical_id, drift in changed["drifts"].items()
        if drift["StackResourceDriftStatus"] == "MODIFIED"
    }
    assert modified == {
        "Target": [("/MaxCapacity", "2", "4", "NOT_EQUAL")],
        "Logs": [("/RetentionInDays", "7", "30", "NOT_EQUAL")],
        "Schedule": [("/State", "ENABLED", "DISABLED", "NOT_EQUAL")],
    }
    target = changed["drifts"]["Target"]
    assert json.loads(target["ActualProperties"])["MaxCapacity"] == 4
    assert json.loads(target["ExpectedProperties"])["MaxCapacity"] == 2


def test_filters_and_pages(aws, stack, changed):
    assert sorted(drifts(aws, stack, "MODIFIED")) == ["Logs", "Schedule", "Target"]
    assert sorted(drifts(aws, stack, "IN_SYNC")) == ["Function", "Policy", "Role"]
    assert drifts(aws, stack, "DELETED") == {}
    cloudformation = aws("cloudformation")
    first = cloudformation.describe_stack_resource_drifts(StackName=stack, MaxResults=4)
    second = cloudformation.describe_stack_resource_drifts(
        StackName=stack, MaxResults=4, NextToken=first["NextToken"]
    )
    assert "NextToken" not in second
    pages = first["StackResourceDrifts"] + second["StackResourceDrifts"]
    listed = [drift["LogicalResourceId"] for drift in pages]
    assert listed == CHECKED


def test_stacks_and_resources_show_their_drift(aws, stack, changed):
    information = stack_drift(aws, stack)
    assert information["StackDriftStatus"] == "DRIFTED"
    assert information["LastCheckTimestamp"]
    cloudformation = aws("cloudformation")
    resources = {
        item["LogicalResourceId"]: item["DriftInformation"]
        for item in cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    }
    assert resources["Logs"]["StackResourceDriftStatus"] == "MODIFIED"
    assert resources["Function"]["StackResourceDriftStatus"] == "IN_SYNC"
    assert resources["Function"]["LastCheckTimestamp"]
    assert resources["Topic"] == {"StackResourceDriftStatus": "NOT_CHECKED"}
    detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId="Schedule")
    information = detail["StackResourceDetail"]["DriftInformation"]
    assert information["StackResourceDriftStatus"] == "MODIFIED"
    summary = next(
        item
        for item in cloudformation.list_stacks()["StackSummaries"]
        if item["StackName"] == stack
    )
    assert summary["DriftInformation"]["StackDriftStatus"] == "DRIFTED"


def test_one_resource_is_checked_again_and_the_stack_follows(aws, stack, changed):
    physical = outputs(aws, stack)
    cloudformation = aws("cloudformation")
    aws("events").enable_rule(Name=physical["Schedule"])
    aws("logs").put_retention_policy(logGroupName=physical["Logs"], retentionInDays=7)
    namespace, dimension = "sagemaker", "sagemaker:variant:DesiredInstanceCount"
    aws("application-autoscaling").register_scalable_target(
        ServiceNamespace=namespace,
        ResourceId=physical["Target"].split("|")[0],
        ScalableDimension=dimension,
        MaxCapacity=2,
    )
    for logical_id in ("Schedule", "Logs"):
        drift = cloudformation.detect_stack_resource_drift(
            StackName=stack, LogicalResourceId=logical_id
        )["StackResourceDrift"]
        assert drift["StackResourceDriftStatus"] == "IN_SYNC"
    assert stack_drift(aws, stack)["StackDriftStatus"] == "DRIFTED"  # Target not checked yet
    drift = cloudformation.detect_stack_resource_drift(StackName=stack, LogicalResourceId="Target")
    assert drift["StackResourceDrift"]["StackResourceDriftStatus"] == "IN_SYNC"
    assert stack_drift(aws, stack)["StackDriftStatus"] == "IN_SYNC"


def test_nested_paths_of_a_function_and_a_role(aws, stack, changed):
    physical = outputs(aws, stack)
    cloudformation = aws("cloudformation")
    # Through the API every variable is text: LEVEL's "3" is the template's 3, not drift.
    variables = {"ROUTER_CONFIG": '{"classes": ["a"]}', "LEVEL": "3", "DEBUG": "1"}
    aws("lambda").update_function_configuration(
        FunctionName=physical["Function"],
        MemorySize=512,
        Environment={"Variables": variables},
    )
    aws("iam").put_role_policy(
        RoleName=physical["Role"],
        PolicyName="logs",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "logs:CreateLogStream", "Resource": "*"},
                    {
                        "Effect": "Allow",
                        "Action": ["logs:PutLogEvents", "logs:DeleteLogGroup"],
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    function_drift = cloudformation.detect_stack_resource_drift(
        StackName=stack, LogicalResourceId="Function"
    )["StackResourceDrift"]
    assert function_drift["StackResourceDriftStatus"] == "MODIFIED"
    assert differences(function_drift) == [
        ("/Environment/Variables/DEBUG", "null", "1", "ADD"),
        (
            "/Environment/Variables/ROUTER_CONFIG",
            '{"classes": ["a", "b"]}',
            '{"classes": ["a"]}',
            "NOT_EQUAL",
        ),
        ("/MemorySize", "256", "512", "NOT_EQUAL"),
    ]
    role_drift = cloudformation.detect_stack_resource_drift(
        StackName=stack, LogicalResourceId="Role"
    )["StackResourceDrift"]
    assert differences(role_drift) == [
        (
            "/Policies/0/PolicyDocument/Statement/1/Action/1",
            "null",
            "logs:DeleteLogGroup",
            "ADD",
        )
    ]


def test_a_deleted_resource_is_deleted(aws, stack, changed):
    physical = outputs(aws, stack)
    aws("logs").delete_log_group(logGroupName=physical["Logs"])
    status = detect(aws, stack, LogicalResourceIds=["Logs"])
    assert status["StackDriftStatus"] == "DRIFTED"
    assert status["DriftedStackResourceCount"] == 1
    deleted = drifts(aws, stack, "DELETED")
    assert list(deleted) == ["Logs"]
    assert "ExpectedProperties" not in deleted["Logs"]
    assert "ActualProperties" not in deleted["Logs"]
    assert "PropertyDifferences" not in deleted["Logs"]


def test_unknown_ids_stacks_and_resources_are_refused(aws, stack):
    cloudformation = aws("cloudformation")
    with pytest.raises(ClientError) as unknown:
        cloudformation.describe_stack_drift_detection_status(
            StackDriftDetectionId=str(uuid.uuid4())
        )
    assert unknown.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as missing:
        cloudformation.detect_stack_drift(StackName=unique("no-such-stack"))
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert "does not exist" in missing.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as no_resource:
        cloudformation.detect_stack_resource_drift(StackName=stack, LogicalResourceId="Nothing")
    assert no_resource.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as unsupported:
        cloudformation.detect_stack_resource_drift(StackName=stack, LogicalResourceId="Topic")
    assert unsupported.value.response["Error"]["Code"] == "ValidationError"


def test_a_caller_who_may_not_read_a_resource_gets_unknown(aws, local_aws, stack, changed):
    from conftest import REGION, client_as

    iam = aws("iam")
    account = aws("sts").get_caller_identity()["Account"]
    role = unique("drift-reader")
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=role,
        PolicyName="drift",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        # Everything the stack's read handlers call but Lambda's.
                        "Action": [
                            "cloudformation:*",
                            "logs:*",
                            "events:*",
                            "iam:*",
                            "application-autoscaling:*",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    credentials = aws("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="drift"
    )["Credentials"]
    cloudformation = client_as(local_aws.url, "cloudformation", REGION, credentials)
    detection_id = cloudformation.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    status = cloudformation.describe_stack_drift_detection_status(
        StackDriftDetectionId=detection_id
    )
    assert status["DetectionStatus"] == "DETECTION_FAILED"
    assert "Function" in status["DetectionStatusReason"]
    assert "DriftedStackResourceCount" not in status
    function = cloudformation.describe_stack_resource_drifts(
        StackName=stack, StackResourceDriftStatusFilters=["UNKNOWN"]
    )["StackResourceDrifts"]
    assert [drift["LogicalResourceId"] for drift in function] == ["Function"]
    assert "lambda:GetFunction" in function[0]["DriftStatusReason"]


def test_every_platform_type_is_in_sync_after_create_and_update(aws):
    """No false drift: the every-type stack, created and then updated, checked as deployed."""
    stack, bucket = unique("drift-every-type"), unique("drift-definitions")
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").put_object(Bucket=bucket, Key="pipeline.json", Body=json.dumps({"Steps": []}))
    parameters = [
        {"ParameterKey": "DefinitionBucket", "ParameterValue": bucket},
        {"ParameterKey": "DefinitionKey", "ParameterValue": "pipeline.json"},
    ]
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=render(1), Parameters=parameters)
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    for revision in (1, 2):
        if revision == 2:
            cloudformation.update_stack(
                StackName=stack, TemplateBody=render(2), Parameters=parameters
            )
            cloudformation.get_waiter("stack_update_complete").wait(
                StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
        status = detect(aws, stack)
        found = drifts(aws, stack)
        assert {
            logical_id: differences(drift)
            for logical_id, drift in found.items()
            if drift["StackResourceDriftStatus"] != "IN_SYNC"
        } == {}, revision
        assert status["StackDriftStatus"] == "IN_SYNC"
        checked_types = {drift["ResourceType"] for drift in found.values()}
        assert checked_types == {
            "AWS::ApplicationAutoScaling::ScalableTarget",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            "AWS::Events::Rule",
            "AWS::IAM::Role",
            "AWS::Logs::LogGroup",
            "AWS::S3::Bucket",
            "AWS::SSM::Parameter",
            "AWS::SageMaker::Endpoint",
        }


def test_a_stack_that_rolled_back_is_not_checked(aws):
    name = unique("drift-rolled-back")
    template = {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineName": name,
                    "RoleArn": "arn:aws:iam::123456789012:role/pipeline",
                    "PipelineDefinition": {"PipelineDefinitionBody": "{not json"},
                },
            }
        }
    }
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == (
        "ROLLBACK_COMPLETE"
    )
    with pytest.raises(ClientError) as refused:
        cloudformation.detect_stack_drift(StackName=name)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "ROLLBACK_COMPLETE" in refused.value.response["Error"]["Message"]
