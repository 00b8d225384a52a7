"""How stacks behave on the emulator where a deploy tool looks: failures, no-op updates, change sets."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/pipeline"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def status_of(aws, stack: str) -> str:
    return aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def events_of(aws, stack: str) -> list[tuple[str, str, str]]:
    """(logical id, status, reason), oldest first."""
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [
        (
            event["LogicalResourceId"],
            event["ResourceStatus"],
            event.get("ResourceStatusReason") or "",
        )
        for event in reversed(events)
    ]


def pipeline_template(name: str, body: str, topic: bool = True) -> str:
    template: dict = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}} if topic else {}}
    template["Resources"].update(
        {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineName": name,
                    "RoleArn": ROLE_ARN,
                    "PipelineDefinition": {"PipelineDefinitionBody": body},
                },
            }
        }
    )
    return json.dumps(template)


def test_a_resource_that_fails_to_create_rolls_the_stack_back(aws):
    stack = unique("rollback")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, "{not json")
    )
    assert status_of(aws, stack) == "ROLLBACK_COMPLETE"
    events = events_of(aws, stack)
    [failure] = [event for event in events if event[1] == "CREATE_FAILED"]
    assert failure[0] == "Pipeline" and "not valid JSON" in failure[2]
    assert (stack, "ROLLBACK_IN_PROGRESS") in [event[:2] for event in events]
    # The topic created before the failure was deleted by the rollback.
    assert ("Topic", "DELETE_COMPLETE") in [event[:2] for event in events]
    topics = [item["TopicArn"] for item in aws("sns").list_topics()["Topics"]]
    assert not [arn for arn in topics if f":{stack}-Topic-" in arn]


def test_a_pipeline_definition_body_that_is_not_a_string_fails_like_on_aws(aws):
    stack = unique("object-body")
    template = json.loads(pipeline_template(stack, "{}", topic=False))
    template["Resources"]["Pipeline"]["Properties"]["PipelineDefinition"][
        "PipelineDefinitionBody"
    ] = {
        "Version": "2020-12-01",
        "Steps": [],
    }
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    assert status_of(aws, stack) == "ROLLBACK_COMPLETE"
    assert any("must be a string" in reason for _, _, reason in events_of(aws, stack))


def model_template(name: str, image: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Model": {
                    "Type": "AWS::SageMaker::Model",
                    "Properties": {
                        "ModelName": name,
                        "ExecutionRoleArn": ROLE_ARN,
                        "PrimaryContainer": {"Image": image},
                    },
                }
            }
        }
    )


def test_replacing_a_custom_named_resource_fails_the_update_and_rolls_back(aws):
    stack = unique("named")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=model_template(stack, "image:1"))
    cloudformation.update_stack(StackName=stack, TemplateBody=model_template(stack, "image:2"))
    assert status_of(aws, stack) == "UPDATE_ROLLBACK_COMPLETE"
    reasons = [
        reason for logical_id, status, reason in events_of(aws, stack) if status == "UPDATE_FAILED"
    ]
    assert reasons and reasons[0].startswith(
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
        f"Rename {stack} and update the stack again."
    )
    described = aws("sagemaker").describe_model(ModelName=stack)
    assert described["PrimaryContainer"]["Image"] == "image:1"


def test_an_update_without_changes_is_refused_as_on_aws(aws):
    stack = unique("no-op")
    template = model_template(stack, "image:1")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=template)
    with pytest.raises(ClientError) as refused:
        cloudformation.update_stack(StackName=stack, TemplateBody=template)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert refused.value.response["Error"]["Message"] == "No updates are to be performed."
    assert status_of(aws, stack) == "CREATE_COMPLETE"


PARAMETERISED = json.dumps(
    {
        "Parameters": {"Retention": {"Type": "Number"}},
        "Resources": {
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"RetentionInDays": {"Ref": "Retention"}},
            }
        },
        "Outputs": {
            "LogGroup": {
                "Value": {"Ref": "Logs"},
                "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-logs"}},
            },
            "LogGroupArn": {"Value": {"Fn::GetAtt": ["Logs", "Arn"]}},
        },
    }
)


def retention(value: str) -> list[dict[str, str]]:
    return [{"ParameterKey": "Retention", "ParameterValue": value}]


def test_change_sets_create_and_update_a_stack_with_its_outputs_and_exports(aws):
    stack = unique("change-sets")
    cloudformation = aws("cloudformation")
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="create",
        ChangeSetType="CREATE",
        TemplateBody=PARAMETERISED,
        Parameters=retention("7"),
    )
    created = cloudformation.describe_change_set(StackName=stack, ChangeSetName="create")
    assert [change["ResourceChange"]["Action"] for change in created["Changes"]] == ["Add"]
    assert status_of(aws, stack) == "REVIEW_IN_PROGRESS"
    cloudformation.execute_change_set(StackName=stack, ChangeSetName="create")
    assert status_of(aws, stack) == "CREATE_COMPLETE"
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    group = outputs["LogGroup"]
    assert outputs["LogGroupArn"].endswith(f":log-group:{group}:*")
    exports = {item["Name"]: item["Value"] for item in cloudformation.list_exports()["Exports"]}
    assert exports[f"{stack}-logs"] == group

    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="update",
        TemplateBody=PARAMETERISED,
        Parameters=retention("30"),
    )
    update = cloudformation.describe_change_set(StackName=stack, ChangeSetName="update")
    [change] = [item["ResourceChange"] for item in update["Changes"]]
    assert (change["Action"], change["LogicalResourceId"], change["PhysicalResourceId"]) == (
        "Modify",
        "Logs",
        group,
    )
    assert change["Replacement"] == "False"
    cloudformation.execute_change_set(StackName=stack, ChangeSetName="update")
    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    [described] = aws("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described["retentionInDays"] == 30
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]

    # The same template and parameters again: the call succeeds, the change set is FAILED.
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="same",
        TemplateBody=PARAMETERISED,
        Parameters=retention("30"),
    )
    same = cloudformation.describe_change_set(StackName=stack, ChangeSetName="same")
    assert same["Status"] == "FAILED"
    assert same["StatusReason"].startswith("The submitted information didn't contain changes.")


def test_resources_report_their_own_events(aws):
    stack = unique("events")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=PARAMETERISED, Parameters=retention("7")
    )
    assert [event[:2] for event in events_of(aws, stack)] == [
        (stack, "CREATE_IN_PROGRESS"),
        ("Logs", "CREATE_IN_PROGRESS"),
        ("Logs", "CREATE_COMPLETE"),
        (stack, "CREATE_COMPLETE"),
    ]


def test_a_non_empty_bucket_fails_the_stack_deletion(aws):
    stack = unique("bucket")
    bucket = unique("full-bucket")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}
                }
            }
        ),
    )
    aws("s3").put_object(Bucket=bucket, Key="model.tar.gz", Body=b"weights")
    cloudformation.delete_stack(StackName=stack)
    assert status_of(aws, stack) == "DELETE_FAILED"
    assert (
        "Bucket",
        "DELETE_FAILED",
        "The bucket you tried to delete is not empty (BucketNotEmpty)",
    ) in (events_of(aws, stack))
    aws("s3").delete_object(Bucket=bucket, Key="model.tar.gz")
    cloudformation.delete_stack(StackName=stack)
    with pytest.raises(ClientError):
        aws("s3").head_bucket(Bucket=bucket)


def test_removing_a_retained_resource_from_the_template_keeps_it(aws):
    stack = unique("retain")
    group = f"/retained/{stack}"
    retained = {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Retain",
        "Properties": {"LogGroupName": group},
    }
    other = {"Type": "AWS::SNS::Topic"}
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName=stack, TemplateBody=json.dumps({"Resources": {"Logs": retained, "Topic": other}})
    )
    cloudformation.update_stack(
        StackName=stack, TemplateBody=json.dumps({"Resources": {"Topic": other}})
    )
    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [item["logGroupName"] for item in groups] == [group]


def unnamed_model_template(image: str, tag: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Model": {
                    "Type": "AWS::SageMaker::Model",
                    "Properties": {
                        "ExecutionRoleArn": ROLE_ARN,
                        "PrimaryContainer": {"Image": image},
                        "Tags": [{"Key": "revision", "Value": tag}],
                    },
                }
            }
        }
    )


@pytest.mark.parametrize(
    "image, tag, replacement", [("image:2", "1", "True"), ("image:1", "2", "False")]
)
def test_an_update_change_set_says_whether_a_change_replaces(aws, image, tag, replacement):
    stack = unique("replacement")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName=stack, TemplateBody=unnamed_model_template("image:1", "1")
    )
    cloudformation.create_change_set(
        StackName=stack, ChangeSetName="next", TemplateBody=unnamed_model_template(image, tag)
    )
    [change] = cloudformation.describe_change_set(StackName=stack, ChangeSetName="next")["Changes"]
    assert change["ResourceChange"]["Action"] == "Modify"
    assert change["ResourceChange"]["Replacement"] == replacement
    # Without ChangeSetType the change set updates this stack, as on AWS: no second stack appears.
    names = [item["StackName"] for item in cloudformation.list_stacks()["StackSummaries"]]
    assert names.count(stack) == 1


# --- updates in CloudFormation's order, and conditions (shapes from tests/golden) ------------------


def execute_change_set(aws, stack: str, name: str, template: str, **parameters: str):
    """Creates a change set as mlops-infra does (a CREATE one when named "create", else UPDATE; the
    parameters given, by value), executes it and returns its changes as {(action, logical id)}."""
    cloudformation = aws("cloudformation")
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType="CREATE" if name == "create" else "UPDATE",
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    described = cloudformation.describe_change_set(StackName=stack, ChangeSetName=name)
    cloudformation.execute_change_set(StackName=stack, ChangeSetName=name)
    return {
        (change["ResourceChange"]["Action"], change["ResourceChange"]["LogicalResourceId"])
        for change in described["Changes"]
    }


def outputs_of(aws, stack: str) -> dict[str, str]:
    [described] = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs") or []}


def resources_of(aws, stack: str) -> dict[str, str]:
    summaries = aws("cloudformation").list_stack_resources(StackName=stack)
    return {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for item in summaries["StackResourceSummaries"]
    }


def position(events: list[tuple[str, str, str]], logical_id: str, status: str) -> int:
    return [event[:2] for event in events].index((logical_id, status))


# tests/golden/dev/api.yaml, trimmed: the renderer names the deployment after a hash of the methods.
API = """
Parameters:
  ApiGatewayRoleArn:
    Type: String
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: NAME
      EndpointConfiguration:
        Types: [REGIONAL]
  PipelinesResource:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !GetAtt [Api, RootResourceId]
      PathPart: pipelines
  StartExecution:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref PipelinesResource
      HttpMethod: POST
      AuthorizationType: AWS_IAM
      Integration:
        Type: AWS
        IntegrationHttpMethod: POST
        Uri: !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:api.sagemaker:action/StartPipelineExecution
        Credentials: !Ref ApiGatewayRoleArn
      MethodResponses:
        - StatusCode: '200'
  DEPLOYMENT:
    Type: AWS::ApiGateway::Deployment
    DependsOn: [StartExecution]
    Properties:
      RestApiId: !Ref Api
      Description: 'Models: MODELS'
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref Api
      StageName: v1
      DeploymentId: !Ref DEPLOYMENT
Outputs:
  ApiId:
    Value: !Ref Api
"""


def api_template(name: str, deployment: str, models: str) -> str:
    return (
        API.replace("NAME", name).replace("DEPLOYMENT", deployment).replace("MODELS", models)
    )


def test_a_removed_resource_is_deleted_after_the_updates_that_stop_using_it(aws):
    """A new deployment (new logical id) takes over the stage; the old one goes in the cleanup."""
    stack = unique("api")
    role = {"ApiGatewayRoleArn": ROLE_ARN}
    old, new = "Deployment4c20f29e72ee7942", "Deployment9d1e0a7b3c5f2e18"
    execute_change_set(aws, stack, "create", api_template(stack, old, "plants"), **role)
    changes = execute_change_set(
        aws, stack, "rename", api_template(stack, new, "plants, trees"), **role
    )
    assert changes == {("Add", new), ("Modify", "Stage"), ("Remove", old)}

    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    api_id = outputs_of(aws, stack)["ApiId"]
    deployments = aws("apigateway").get_deployments(restApiId=api_id)["items"]
    assert [item["description"] for item in deployments] == ["Models: plants, trees"]
    stage = aws("apigateway").get_stage(restApiId=api_id, stageName="v1")
    assert stage["deploymentId"] == deployments[0]["id"] == resources_of(aws, stack)[new]
    assert old not in resources_of(aws, stack)
    events = events_of(aws, stack)
    assert (
        position(events, new, "CREATE_COMPLETE")
        < position(events, "Stage", "UPDATE_COMPLETE")
        < position(events, stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        < position(events, old, "DELETE_COMPLETE")
    )
    assert events[-1][:2] == (stack, "UPDATE_COMPLETE")


# tests/golden/{dev,prod}/endpoint-plants.yaml, trimmed: the endpoint exists once a package is approved.
ENDPOINT = """
Parameters:
  ExecutionRoleArn:
    Type: String
  ModelPackageArn:
    Type: String
    Default: ''
Conditions:
  HasModelPackage: !Not
    - !Equals
      - !Ref ModelPackageArn
      - ''
Resources:
  Model:
    Type: AWS::SageMaker::Model
    Condition: HasModelPackage
    Properties:
      ExecutionRoleArn: !Ref ExecutionRoleArn
      PrimaryContainer:
        ModelPackageName: !Ref ModelPackageArn
      Tags:
        - Key: owner
          Value: OWNER
  EndpointConfig:
    Type: AWS::SageMaker::EndpointConfig
    Condition: HasModelPackage
    Properties:
      ProductionVariants:
        - VariantName: AllTraffic
          ModelName: !GetAtt [Model, ModelName]
          InstanceType: ml.m5.large
          InitialInstanceCount: 1
          InitialVariantWeight: 1
      Tags:
        - Key: owner
          Value: OWNER
  Endpoint:
    Type: AWS::SageMaker::Endpoint
    Condition: HasModelPackage
    Properties:
      EndpointName: NAME
      EndpointConfigName: !GetAtt [EndpointConfig, EndpointConfigName]
      Tags:
        - Key: owner
          Value: OWNER
  ScalableTarget:
    Type: AWS::ApplicationAutoScaling::ScalableTarget
    Condition: HasModelPackage
    DependsOn: Endpoint
    Properties:
      ServiceNamespace: sagemaker
      ResourceId: endpoint/NAME/variant/AllTraffic
      ScalableDimension: sagemaker:variant:DesiredInstanceCount
      MinCapacity: 2
      MaxCapacity: 6
  ScalingPolicy:
    Type: AWS::ApplicationAutoScaling::ScalingPolicy
    Condition: HasModelPackage
    Properties:
      PolicyName: NAME-invocations
      PolicyType: TargetTrackingScaling
      ScalingTargetId: !Ref ScalableTarget
      TargetTrackingScalingPolicyConfiguration:
        TargetValue: 1000
        PredefinedMetricSpecification:
          PredefinedMetricType: SageMakerVariantInvocationsPerInstance
  ErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: NAME-5xx-errors
      Namespace: AWS/SageMaker
      MetricName: Invocation5XXErrors
      Dimensions:
        - Name: EndpointName
          Value: NAME
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 5
      Threshold: 5
      ComparisonOperator: GreaterThanOrEqualToThreshold
      Tags:
        - Key: owner
          Value: OWNER
Outputs:
  EndpointName:
    Condition: HasModelPackage
    Value: !GetAtt [Endpoint, EndpointName]
  ServedModelPackageArn:
    Value: !Ref ModelPackageArn
"""
CONDITIONAL = {"Model", "EndpointConfig", "Endpoint", "ScalableTarget", "ScalingPolicy"}
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/plants/1"


def test_resources_whose_condition_is_false_are_absent_through_updates(aws):
    stack = unique("endpoint")
    template = ENDPOINT.replace("NAME", stack)
    owner = lambda value: template.replace("OWNER", value)  # noqa: E731
    role = {"ExecutionRoleArn": ROLE_ARN}

    # No package: only the alarm exists, and only it appears in change sets.
    assert execute_change_set(aws, stack, "create", owner("ml-platform"), **role) == {
        ("Add", "ErrorsAlarm")
    }
    assert status_of(aws, stack) == "CREATE_COMPLETE"
    assert set(resources_of(aws, stack)) == {"ErrorsAlarm"}

    # A tag changes everywhere, the parameter stays empty: the update succeeds.
    changes = execute_change_set(aws, stack, "retag", owner("ml-team"), ModelPackageArn="", **role)
    assert changes == {("Modify", "ErrorsAlarm")}
    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    assert outputs_of(aws, stack) == {"ServedModelPackageArn": ""}
    alarm_arn = aws("cloudwatch").describe_alarms(AlarmNames=[f"{stack}-5xx-errors"])[
        "MetricAlarms"
    ][0]["AlarmArn"]
    tags = aws("cloudwatch").list_tags_for_resource(ResourceARN=alarm_arn)["Tags"]
    assert tags == [{"Key": "owner", "Value": "ml-team"}]

    # A package is approved: the condition holds, the endpoint and its scaling appear.
    changes = execute_change_set(
        aws, stack, "serve", owner("ml-team"), ModelPackageArn=PACKAGE, **role
    )
    assert changes == {("Add", logical_id) for logical_id in CONDITIONAL}
    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    assert set(resources_of(aws, stack)) == CONDITIONAL | {"ErrorsAlarm"}
    assert outputs_of(aws, stack) == {"EndpointName": stack, "ServedModelPackageArn": PACKAGE}
    sagemaker = aws("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=stack)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == PACKAGE
    targets = aws("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{stack}/variant/AllTraffic"]
    )["ScalableTargets"]
    assert len(targets) == 1

    # The package is withdrawn: the conditional resources are deleted, dependents first.
    changes = execute_change_set(
        aws, stack, "withdraw", owner("ml-team"), ModelPackageArn="", **role
    )
    assert changes == {("Remove", logical_id) for logical_id in CONDITIONAL}
    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    assert set(resources_of(aws, stack)) == {"ErrorsAlarm"}
    assert outputs_of(aws, stack) == {"ServedModelPackageArn": ""}
    with pytest.raises(ClientError):
        sagemaker.describe_endpoint(EndpointName=stack)
    with pytest.raises(ClientError):
        sagemaker.describe_model(ModelName=model["ModelName"])
    events = events_of(aws, stack)
    dependents_first = ["ScalingPolicy", "ScalableTarget", "Endpoint", "EndpointConfig", "Model"]
    deleted = [position(events, logical_id, "DELETE_COMPLETE") for logical_id in dependents_first]
    assert deleted == sorted(deleted)
    assert position(events, stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS") < min(deleted)
    assert events[-1][:2] == (stack, "UPDATE_COMPLETE")


def test_a_failed_update_keeps_what_it_would_remove_and_deletes_what_it_added(aws):
    stack = unique("rollback-cleanup")
    group = f"/removed/{stack}"
    logs = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}
    before = json.loads(model_template(stack, "image:1"))
    before["Resources"]["Logs"] = logs
    # The update adds a topic, drops the log group and replaces a custom-named model, which fails.
    after = json.loads(model_template(stack, "image:2"))
    after["Resources"]["Topic"] = {"Type": "AWS::SNS::Topic"}
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(before))
    cloudformation.update_stack(StackName=stack, TemplateBody=json.dumps(after))

    assert status_of(aws, stack) == "UPDATE_ROLLBACK_COMPLETE"
    assert set(resources_of(aws, stack)) == {"Model", "Logs"}
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [item["logGroupName"] for item in groups] == [group]
    events = events_of(aws, stack)
    assert ("Logs", "DELETE_COMPLETE") not in [event[:2] for event in events]
    assert (
        position(events, "Topic", "CREATE_COMPLETE")
        < position(events, stack, "UPDATE_ROLLBACK_IN_PROGRESS")
        < position(events, stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        < position(events, "Topic", "DELETE_COMPLETE")
    )
    topics = [item["TopicArn"] for item in aws("sns").list_topics()["Topics"]]
    assert not [arn for arn in topics if f":{stack}-Topic-" in arn]


def test_a_resource_that_fails_to_delete_in_the_cleanup_leaves_the_stack(aws):
    """As on AWS: the update completes, the resource's DELETE_FAILED event tells, the bucket stays."""
    stack = unique("cleanup-fails")
    bucket = unique("kept-bucket")
    topic = {"Type": "AWS::SNS::Topic"}
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Topic": topic,
                    "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
                }
            }
        ),
    )
    aws("s3").put_object(Bucket=bucket, Key="model.tar.gz", Body=b"weights")
    cloudformation.update_stack(
        StackName=stack, TemplateBody=json.dumps({"Resources": {"Topic": topic}})
    )
    assert status_of(aws, stack) == "UPDATE_COMPLETE"
    assert set(resources_of(aws, stack)) == {"Topic"}
    assert ("Bucket", "DELETE_FAILED") in [event[:2] for event in events_of(aws, stack)]
    aws("s3").head_bucket(Bucket=bucket)
    aws("s3").delete_object(Bucket=bucket, Key="model.tar.gz")
    aws("s3").delete_bucket(Bucket=bucket)


def test_a_tls_only_bucket_policy_lets_sdk_uploads_through(aws):
    """The platform's buckets deny `aws:SecureTransport: false`; SDK uploads (TLS on AWS) pass."""
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "tls-only-uploads"}},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Bucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "s3:*",
                                "Resource": ["arn:aws:s3:::tls-only-uploads", "arn:aws:s3:::tls-only-uploads/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            },
                            {
                                "Sid": "DenyDeletes",
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "s3:DeleteObject",
                                "Resource": "arn:aws:s3:::tls-only-uploads/*",
                            },
                        ],
                    },
                },
            },
        }
    }
    aws("cloudformation").create_stack(StackName=unique("tls-only"), TemplateBody=json.dumps(template))
    s3 = aws("s3")
    s3.put_object(Bucket="tls-only-uploads", Key="templates/a.yaml", Body=b"Resources: {}")
    assert s3.get_object(Bucket="tls-only-uploads", Key="templates/a.yaml")["Body"].read() == b"Resources: {}"
    with pytest.raises(ClientError):
        s3.delete_object(Bucket="tls-only-uploads", Key="templates/a.yaml")
