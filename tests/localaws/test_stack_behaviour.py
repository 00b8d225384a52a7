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
