"""CloudFormation's operation-level APIs on the emulator (localaws/operations.py): operation ids,
LastOperations, DescribeEvents, and the pre-deployment validation of change sets."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/pipeline"
UUID_LENGTH = 36
EARLY_VALIDATION_REASON = (
    "The following hook(s)/validation failed: [{}]. To troubleshoot Early Validation errors, "
    "use the DescribeEvents API for detailed failure information."
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pipeline_template(name: str, body: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Logs": {"Type": "AWS::Logs::LogGroup"},
                "Pipeline": {
                    "Type": "AWS::SageMaker::Pipeline",
                    "Properties": {
                        "PipelineName": name,
                        "RoleArn": ROLE_ARN,
                        "PipelineDefinition": {"PipelineDefinitionBody": body},
                    },
                },
            }
        }
    )


def bucket_template(**buckets: dict) -> str:
    return json.dumps(
        {
            "Resources": {
                logical_id: {"Type": "AWS::S3::Bucket", **resource}
                for logical_id, resource in buckets.items()
            }
        }
    )


def stack_of(aws, stack: str) -> dict:
    return aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]


def all_events(aws, **query) -> list[dict]:
    cloudformation = aws("cloudformation")
    events, token = [], None
    while True:
        page = cloudformation.describe_events(**query, **({"NextToken": token} if token else {}))
        events += page["OperationEvents"]
        token = page.get("NextToken")
        if not token:
            return events


def test_a_failed_update_names_its_operation_and_its_failed_resource(aws):
    stack = unique("failed-update")
    cloudformation = aws("cloudformation")
    created = cloudformation.create_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, "{}")
    )
    updated = cloudformation.update_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, "{not json")
    )
    assert len(created["OperationId"]) == len(updated["OperationId"]) == UUID_LENGTH
    assert created["OperationId"] != updated["OperationId"]

    described = stack_of(aws, stack)
    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    rollback, update = described["LastOperations"]
    assert rollback["OperationType"] == "ROLLBACK"
    assert update == {"OperationType": "UPDATE_STACK", "OperationId": updated["OperationId"]}

    failed = all_events(aws, OperationId=update["OperationId"], Filters={"FailedEvents": True})
    assert failed, "the failed update has failed events"
    first = failed[0]
    assert (first["EventType"], first["LogicalResourceId"], first["ResourceStatus"]) == (
        "PROVISIONING_ERROR",
        "Pipeline",
        "UPDATE_FAILED",
    )
    assert "not valid JSON" in first["ResourceStatusReason"]
    assert (first["OperationId"], first["OperationType"], first["OperationStatus"]) == (
        update["OperationId"],
        "UPDATE_STACK",
        "FAILED",
    )
    assert first["ResourceType"] == "AWS::SageMaker::Pipeline"
    assert first["StackId"] == described["StackId"]
    # moto retries a failing update (see docs), so the failure may repeat; it is the only one.
    assert {(event["EventType"], event["LogicalResourceId"]) for event in failed} == {
        ("PROVISIONING_ERROR", "Pipeline")
    }

    # The whole operation, newest first: it starts with the stack's UPDATE_IN_PROGRESS.
    whole = all_events(aws, OperationId=update["OperationId"])
    assert (whole[-1]["EventType"], whole[-1]["ResourceStatus"]) == (
        "STACK_EVENT",
        "UPDATE_IN_PROGRESS",
    )
    timestamps = [event["Timestamp"] for event in whole]
    assert timestamps == sorted(timestamps, reverse=True)
    # The rollback is its own operation, which succeeded.
    rolled_back = all_events(aws, OperationId=rollback["OperationId"])
    assert rolled_back[0]["ResourceStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert rolled_back[-1]["ResourceStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
    assert {event["OperationStatus"] for event in rolled_back} == {"SUCCEEDED"}

    # DescribeStackEvents carries the operation ids too.
    stack_events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    by_operation = {event["OperationId"] for event in stack_events}
    assert by_operation == {created["OperationId"], update["OperationId"], rollback["OperationId"]}


def test_a_failed_creation_is_rolled_back_by_a_rollback_operation(aws):
    stack = unique("failed-create")
    cloudformation = aws("cloudformation")
    created = cloudformation.create_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, "{not json")
    )
    described = stack_of(aws, stack)
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    assert [entry["OperationType"] for entry in described["LastOperations"]] == [
        "ROLLBACK",
        "CREATE_STACK",
    ]
    assert described["LastOperations"][1]["OperationId"] == created["OperationId"]
    [failure, *_] = all_events(
        aws, OperationId=created["OperationId"], Filters={"FailedEvents": True}
    )
    assert (failure["LogicalResourceId"], failure["ResourceStatus"]) == (
        "Pipeline",
        "CREATE_FAILED",
    )
    assert failure["EventType"] == "PROVISIONING_ERROR"


def test_a_successful_operation_has_no_failed_event(aws):
    stack = unique("succeeded")
    cloudformation = aws("cloudformation")
    created = cloudformation.create_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, "{}")
    )
    assert stack_of(aws, stack)["LastOperations"] == [
        {"OperationType": "CREATE_STACK", "OperationId": created["OperationId"]}
    ]
    events = all_events(aws, OperationId=created["OperationId"])
    oldest_first = [
        (event["EventType"], event["LogicalResourceId"], event["ResourceStatus"])
        for event in reversed(events)
    ]
    assert oldest_first == [
        ("STACK_EVENT", stack, "CREATE_IN_PROGRESS"),
        ("PROGRESS_EVENT", "Logs", "CREATE_IN_PROGRESS"),
        ("PROGRESS_EVENT", "Logs", "CREATE_COMPLETE"),
        ("PROGRESS_EVENT", "Pipeline", "CREATE_IN_PROGRESS"),
        ("PROGRESS_EVENT", "Pipeline", "CREATE_COMPLETE"),
        ("STACK_EVENT", stack, "CREATE_COMPLETE"),
    ]
    assert {event["OperationStatus"] for event in events} == {"SUCCEEDED"}
    assert all_events(aws, OperationId=created["OperationId"], Filters={"FailedEvents": True}) == []

    updated = cloudformation.update_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, '{"Version": "2020-12-01"}')
    )
    assert stack_of(aws, stack)["LastOperations"] == [
        {"OperationType": "UPDATE_STACK", "OperationId": updated["OperationId"]}
    ]
    assert all_events(aws, OperationId=updated["OperationId"], Filters={"FailedEvents": True}) == []

    # By stack: every operation, newest first.
    cloudformation.delete_stack(StackName=stack)
    stack_id = created["StackId"]
    deleted = stack_of(aws, stack_id)
    [delete] = deleted["LastOperations"]
    assert delete["OperationType"] == "DELETE_STACK"
    by_stack = all_events(aws, StackName=stack_id)
    operations = list(dict.fromkeys(event["OperationId"] for event in by_stack))
    assert operations == [delete["OperationId"], updated["OperationId"], created["OperationId"]]
    assert by_stack[0]["ResourceStatus"] == "DELETE_COMPLETE"


def test_last_updated_time_is_answered_once_the_stack_has_been_updated(aws):
    stack = unique("updated")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=pipeline_template(stack, "{}"))
    created = stack_of(aws, stack)
    assert "LastUpdatedTime" not in created, "never updated: not returned"

    cloudformation.update_stack(
        StackName=stack, TemplateBody=pipeline_template(stack, '{"Version": "2020-12-01"}')
    )
    first = stack_of(aws, stack)["LastUpdatedTime"]
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    [started] = [
        event["Timestamp"]
        for event in events
        if event["LogicalResourceId"] == stack and event["ResourceStatus"] == "UPDATE_IN_PROGRESS"
    ]
    assert first == started and first >= created["CreationTime"]

    # A change set's execution is an update too; a failed change set (no changes) is not.
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="second",
        TemplateBody=pipeline_template(stack, '{"Version": "2020-12-01", "Steps": []}'),
    )
    cloudformation.get_waiter("change_set_create_complete").wait(
        StackName=stack, ChangeSetName="second"
    )
    cloudformation.execute_change_set(StackName=stack, ChangeSetName="second")
    second = stack_of(aws, stack)["LastUpdatedTime"]
    assert second > first
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="same",
        TemplateBody=pipeline_template(stack, '{"Version": "2020-12-01", "Steps": []}'),
    )
    assert stack_of(aws, stack)["LastUpdatedTime"] == second


def test_describe_events_needs_a_stack_a_change_set_or_an_operation(aws):
    with pytest.raises(ClientError) as refused:
        aws("cloudformation").describe_events()
    assert refused.value.response["Error"]["Code"] == "ValidationError"


def test_a_change_set_whose_bucket_name_is_taken_fails_its_validation(aws):
    taken = unique("taken-bucket")
    aws("s3").create_bucket(Bucket=taken)
    stack = unique("name-conflict")
    cloudformation = aws("cloudformation")
    created = cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="create",
        ChangeSetType="CREATE",
        TemplateBody=bucket_template(Data={"Properties": {"BucketName": taken}}),
    )
    change_set = cloudformation.describe_change_set(ChangeSetName=created["Id"])
    assert (change_set["Status"], change_set["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert change_set["StatusReason"] == EARLY_VALIDATION_REASON.format(
        "AWS::EarlyValidation::ResourceExistenceCheck"
    )

    [event] = all_events(aws, ChangeSetName=created["Id"], Filters={"FailedEvents": True})
    assert event["EventType"] == "VALIDATION_ERROR"
    assert (event["OperationType"], event["OperationStatus"]) == ("CREATE_CHANGESET", "FAILED")
    assert (event["LogicalResourceId"], event["ResourceType"]) == ("Data", "AWS::S3::Bucket")
    assert (event["ValidationName"], event["ValidationStatus"], event["ValidationFailureMode"]) == (
        "NAME_CONFLICT_VALIDATION",
        "FAILED",
        "FAIL",
    )
    assert event["ValidationStatusReason"] == (
        f"Resource of type 'AWS::S3::Bucket' with identifier '{taken}' already exists."
    )
    assert event["ValidationPath"] == "/Resources/Data"
    # By name, with the stack; unfiltered, the creation also has the stack's REVIEW_IN_PROGRESS.
    by_name = all_events(aws, ChangeSetName="create", StackName=stack)
    assert by_name[0] == event
    assert [(item["EventType"], item.get("ResourceStatus")) for item in by_name[1:]] == [
        ("STACK_EVENT", "REVIEW_IN_PROGRESS")
    ]
    # The stack that only has this change set lists its creation.
    [operation] = stack_of(aws, stack)["LastOperations"]
    assert operation == {"OperationType": "CREATE_CHANGESET", "OperationId": event["OperationId"]}

    with pytest.raises(ClientError) as refused:
        cloudformation.execute_change_set(ChangeSetName=created["Id"])
    assert refused.value.response["Error"]["Code"] == "InvalidChangeSetStatus"
    assert stack_of(aws, stack)["StackStatus"] == "REVIEW_IN_PROGRESS"


def test_a_change_set_with_an_unknown_property_fails_property_validation(aws):
    stack = unique("properties")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=bucket_template(Data={}))
    created = cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="typo",
        TemplateBody=bucket_template(Data={"Properties": {"VersioningConfig": {}}}),
    )
    change_set = cloudformation.describe_change_set(ChangeSetName=created["Id"])
    assert change_set["Status"] == "FAILED"
    assert change_set["StatusReason"] == EARLY_VALIDATION_REASON.format(
        "AWS::EarlyValidation::PropertyValidation"
    )
    [event] = all_events(aws, ChangeSetName=created["Id"])
    assert (event["ValidationName"], event["ValidationFailureMode"]) == (
        "PROPERTY_VALIDATION",
        "FAIL",
    )
    assert event["ValidationStatusReason"] == (
        "#: extraneous key [VersioningConfig] is not permitted"
    )
    assert event["ValidationPath"] == "/Resources/Data/Properties"
    assert event["PhysicalResourceId"]  # the existing bucket's name

    # DisableValidation skips it, as on AWS.
    skipped = cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="unchecked",
        TemplateBody=bucket_template(Data={"Properties": {"VersioningConfig": {}}}),
        DisableValidation=True,
    )
    unchecked = cloudformation.describe_change_set(ChangeSetName=skipped["Id"])
    assert unchecked["Status"] == "CREATE_COMPLETE"
    assert all_events(aws, ChangeSetName=skipped["Id"]) == []


def test_removing_a_bucket_that_holds_objects_only_warns(aws):
    stack = unique("emptiness")
    bucket = unique("full")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=bucket_template(
            Data={"Properties": {"BucketName": bucket}},
            Kept={"DeletionPolicy": "Retain"},
            Logs={},
        ),
    )
    kept = aws("cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId="Kept")
    aws("s3").put_object(Bucket=bucket, Key="model.tar.gz", Body=b"weights")
    aws("s3").put_object(
        Bucket=kept["StackResourceDetail"]["PhysicalResourceId"], Key="x", Body=b"x"
    )
    created = cloudformation.create_change_set(
        StackName=stack, ChangeSetName="remove", TemplateBody=bucket_template(Logs={})
    )
    change_set = cloudformation.describe_change_set(ChangeSetName=created["Id"])
    assert (change_set["Status"], change_set["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    [warning] = all_events(aws, ChangeSetName=created["Id"], Filters={"FailedEvents": True})
    validation = (
        warning["ValidationName"],
        warning["ValidationStatus"],
        warning["ValidationFailureMode"],
    )
    assert validation == (
        "BUCKET_EMPTINESS_VALIDATION",
        "FAILED",
        "WARN",
    )
    assert (warning["LogicalResourceId"], warning["PhysicalResourceId"]) == ("Data", bucket)
    assert warning["ValidationStatusReason"].startswith(f"The bucket '{bucket}' is not empty.")
    assert warning["OperationStatus"] == "SUCCEEDED"
    aws("s3").delete_object(Bucket=bucket, Key="model.tar.gz")
