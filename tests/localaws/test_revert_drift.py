"""Drift-aware change sets on the emulator (localaws/revert_drift.py): a log group's retention and a
function's memory changed by hand, then CreateChangeSet with DeploymentMode REVERT_DRIFT lists and
ExecuteChangeSet puts back exactly those, as the User Guide's "Using drift-aware change sets"
describes; a resource deleted by hand comes back; a failed execution restores the drift."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

TEMPLATE = """
Parameters:
  Memory: {Type: String, Default: "256"}
Resources:
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/revert-drift/${AWS::StackName}"
      RetentionInDays: 7
      Tags:
        - {Key: project, Value: mlops}
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      MemorySize: !Ref Memory
      Timeout: 10
      Code:
        ZipFile: |
          def handler(event, context):
              return {}
  Topic:
    Type: AWS::SNS::Topic
    Properties: {DisplayName: revert-drift}
"""

NO_CHANGES = "The submitted information didn't contain changes."


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_stack(aws, template: str = TEMPLATE) -> str:
    name = unique("revert-drift")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    return name


def physical(aws, stack: str) -> dict[str, str]:
    summaries = aws("cloudformation").list_stack_resources(StackName=stack)[
        "StackResourceSummaries"
    ]
    return {item["LogicalResourceId"]: item["PhysicalResourceId"] for item in summaries}


def drift_by_hand(aws, stack: str, retention: int = 30, memory: int = 512) -> dict[str, str]:
    ids = physical(aws, stack)
    aws("logs").put_retention_policy(logGroupName=ids["Logs"], retentionInDays=retention)
    aws("lambda").update_function_configuration(FunctionName=ids["Function"], MemorySize=memory)
    return ids


def change_set(aws, stack: str, name: str, **options) -> dict:
    cloudformation = aws("cloudformation")
    options.setdefault("UsePreviousTemplate", True)
    cloudformation.create_change_set(StackName=stack, ChangeSetName=name, **options)
    return cloudformation.describe_change_set(StackName=stack, ChangeSetName=name)


def changes(described: dict) -> dict[str, dict]:
    return {
        change["ResourceChange"]["LogicalResourceId"]: change["ResourceChange"]
        for change in described["Changes"]
    }


def execute(aws, stack: str, name: str) -> str:
    cloudformation = aws("cloudformation")
    cloudformation.execute_change_set(StackName=stack, ChangeSetName=name)
    return cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def retention(aws, group: str) -> int | None:
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    return next((g.get("retentionInDays") for g in groups if g["logGroupName"] == group), None)


def memory(aws, function: str) -> int:
    return aws("lambda").get_function_configuration(FunctionName=function)["MemorySize"]


def detect(aws, stack: str) -> tuple[str, dict[str, str]]:
    cloudformation = aws("cloudformation")
    detection = cloudformation.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    status = cloudformation.describe_stack_drift_detection_status(
        StackDriftDetectionId=detection
    )
    resources = cloudformation.describe_stack_resource_drifts(StackName=stack)[
        "StackResourceDrifts"
    ]
    return status["StackDriftStatus"], {
        drift["LogicalResourceId"]: drift["StackResourceDriftStatus"] for drift in resources
    }


def events_since(aws, stack: str, count: int) -> list[tuple[str, str]]:
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    events.reverse()  # oldest first
    return [(event["LogicalResourceId"], event["ResourceStatus"]) for event in events[count:]]


def event_count(aws, stack: str) -> int:
    return len(aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"])


@pytest.fixture(scope="module")
def drifted(aws):
    """A stack whose retention (7 -> 30) and memory (256 -> 512) were changed by hand, with a
    plain change set and a drift-aware one of the same template."""
    stack = create_stack(aws)
    ids = drift_by_hand(aws, stack)
    plain = change_set(aws, stack, "plain")
    aware = change_set(aws, stack, "aware", DeploymentMode="REVERT_DRIFT")
    values = aws("cloudformation").describe_change_set(
        StackName=stack, ChangeSetName="aware", IncludePropertyValues=True
    )
    return {"stack": stack, "ids": ids, "plain": plain, "aware": aware, "values": values}


def test_a_plain_change_set_of_the_same_template_has_no_changes(drifted):
    plain = drifted["plain"]
    assert plain["Status"] == "FAILED"
    assert plain["ExecutionStatus"] == "UNAVAILABLE"
    assert plain["StatusReason"].startswith(NO_CHANGES)
    assert plain["Changes"] == []
    assert "DeploymentMode" not in plain
    assert "StackDriftStatus" not in plain


def test_a_drift_aware_change_set_lists_exactly_the_drifted_resources(drifted):
    aware = drifted["aware"]
    assert aware["Status"] == "CREATE_COMPLETE", aware.get("StatusReason")
    assert aware["ExecutionStatus"] == "AVAILABLE"
    assert aware["DeploymentMode"] == "REVERT_DRIFT"
    assert aware["StackDriftStatus"] == "DRIFTED"
    listed = changes(aware)
    assert sorted(listed) == ["Function", "Logs"]  # not the role, not the (unchecked) topic
    for logical_id, change in listed.items():
        assert change["Action"] == "Modify"
        assert change["ResourceDriftStatus"] == "MODIFIED"
        assert change["PhysicalResourceId"] == drifted["ids"][logical_id]
        assert change["Replacement"] == "False"
        assert change["Scope"] == ["Properties"]
    function = listed["Function"]
    assert function["ResourceDriftIgnoredAttributes"] == [
        {"Path": "/Properties/Code/ZipFile", "Reason": "WRITE_ONLY_PROPERTY"}
    ]
    [detail] = function["Details"]
    assert detail["ChangeSource"] == "DirectModification"
    assert detail["Evaluation"] == "Static"
    target = detail["Target"]
    drift = target.pop("Drift")
    assert drift["PreviousValue"] == "256" and drift["ActualValue"] == "512"
    assert drift["DriftDetectionTimestamp"]
    # Property values only with IncludePropertyValues (API reference, DescribeChangeSet).
    assert target == {
        "Attribute": "Properties",
        "Name": "MemorySize",
        "RequiresRecreation": "Never",
        "Path": "/Properties/MemorySize",
        "BeforeValueFrom": "ACTUAL_STATE",
        "AfterValueFrom": "TEMPLATE",
        "AttributeChangeType": "Modify",
    }
    assert "BeforeContext" not in function and "AfterContext" not in function
    [logs] = listed["Logs"]["Details"]
    assert logs["Target"]["Path"] == "/Properties/RetentionInDays"
    assert (logs["Target"]["Drift"]["PreviousValue"], logs["Target"]["Drift"]["ActualValue"]) == (
        "7",
        "30",
    )


def test_property_values_show_actual_template_and_previous_state(drifted):
    function = changes(drifted["values"])["Function"]
    target = function["Details"][0]["Target"]
    assert (target["BeforeValue"], target["AfterValue"]) == ("512", "256")
    assert json.loads(function["BeforeContext"])["Properties"]["MemorySize"] == 512
    assert json.loads(function["AfterContext"])["Properties"]["MemorySize"] == 256
    assert json.loads(function["PreviousDeploymentContext"])["Properties"]["MemorySize"] == 256


def test_executing_it_puts_the_drift_back(aws, drifted):
    stack, ids = drifted["stack"], drifted["ids"]
    mark = event_count(aws, stack)
    assert execute(aws, stack, "aware") == "UPDATE_COMPLETE"
    assert retention(aws, ids["Logs"]) == 7
    assert memory(aws, ids["Function"]) == 256
    events = events_since(aws, stack, mark)
    assert events[0] == (stack, "UPDATE_IN_PROGRESS")
    assert events[-1] == (stack, "UPDATE_COMPLETE")
    for logical_id in ("Logs", "Function"):
        assert (logical_id, "UPDATE_IN_PROGRESS") in events
        assert (logical_id, "UPDATE_COMPLETE") in events
    assert not any(logical_id in ("Role", "Topic") for logical_id, _ in events)
    status, resources = detect(aws, stack)
    assert status == "IN_SYNC"
    assert set(resources.values()) == {"IN_SYNC"}


def test_without_drift_a_drift_aware_change_set_has_no_changes(aws):
    stack = create_stack(aws)
    described = change_set(aws, stack, "aware", DeploymentMode="REVERT_DRIFT")
    assert described["Status"] == "FAILED"
    assert described["StatusReason"].startswith(NO_CHANGES)
    assert described["DeploymentMode"] == "REVERT_DRIFT"
    assert described["StackDriftStatus"] == "IN_SYNC"


def test_a_tag_key_added_by_hand_is_kept(aws):
    stack = create_stack(aws)
    ids = physical(aws, stack)
    aws("logs").tag_log_group(logGroupName=ids["Logs"], tags={"owner": "oncall"})
    # "Drift-aware change sets do not remove or modify tag keys that were not specified in the
    # template": alone, such a key is no change.
    alone = change_set(aws, stack, "tag-only", DeploymentMode="REVERT_DRIFT")
    assert alone["Status"] == "FAILED" and alone["StatusReason"].startswith(NO_CHANGES)
    aws("logs").put_retention_policy(logGroupName=ids["Logs"], retentionInDays=14)
    aws("logs").tag_log_group(logGroupName=ids["Logs"], tags={"project": "other"})
    described = change_set(aws, stack, "aware", DeploymentMode="REVERT_DRIFT")
    paths = sorted(d["Target"]["Path"] for d in changes(described)["Logs"]["Details"])
    assert paths == ["/Properties/RetentionInDays", "/Properties/Tags/0/Value"]
    assert execute(aws, stack, "aware") == "UPDATE_COMPLETE"
    assert retention(aws, ids["Logs"]) == 7
    tags = aws("logs").list_tags_log_group(logGroupName=ids["Logs"])["tags"]
    assert tags == {"project": "mlops", "owner": "oncall"}


def test_three_way_a_new_template_value_over_drift_and_one_matching_it(aws):
    stack = create_stack(aws)
    ids = drift_by_hand(aws, stack, memory=512)
    aws("logs").put_retention_policy(logGroupName=ids["Logs"], retentionInDays=7)  # no drift
    parameters = [{"ParameterKey": "Memory", "ParameterValue": "1024"}]
    cloudformation = aws("cloudformation")
    over = change_set(aws, stack, "over", DeploymentMode="REVERT_DRIFT", Parameters=parameters)
    over = cloudformation.describe_change_set(
        StackName=stack, ChangeSetName="over", IncludePropertyValues=True
    )
    assert sorted(changes(over)) == ["Function"]
    function = changes(over)["Function"]
    assert function["Action"] == "Modify" and function["ResourceDriftStatus"] == "MODIFIED"
    target = function["Details"][-1]["Target"]
    assert target["Path"] == "/Properties/MemorySize"
    assert (target["BeforeValue"], target["AfterValue"]) == ("512", "1024")
    assert (target["Drift"]["PreviousValue"], target["Drift"]["ActualValue"]) == ("256", "512")
    assert target["AttributeChangeType"] == "Modify"

    parameters = [{"ParameterKey": "Memory", "ParameterValue": "512"}]
    sync = change_set(aws, stack, "sync", DeploymentMode="REVERT_DRIFT", Parameters=parameters)
    function = changes(sync)["Function"]
    assert function["Action"] == "SyncWithActual"
    [detail] = function["Details"]
    assert detail["ChangeSource"] == "NoModification"
    assert detail["Target"]["AttributeChangeType"] == "SyncWithActual"
    assert execute(aws, stack, "sync") == "UPDATE_COMPLETE"
    assert memory(aws, ids["Function"]) == 512
    assert detect(aws, stack)[0] == "IN_SYNC"


def test_a_resource_deleted_by_hand_is_created_again(aws):
    stack = create_stack(aws)
    ids = physical(aws, stack)
    aws("logs").delete_log_group(logGroupName=ids["Logs"])
    described = change_set(aws, stack, "aware", DeploymentMode="REVERT_DRIFT")
    assert described["Status"] == "CREATE_COMPLETE"
    logs = changes(described)["Logs"]
    assert logs["Action"] == "Add"
    assert logs["ResourceDriftStatus"] == "DELETED"
    assert logs["PhysicalResourceId"] == ids["Logs"]
    assert logs.get("Details", []) == []
    mark = event_count(aws, stack)
    assert execute(aws, stack, "aware") == "UPDATE_COMPLETE"
    assert ("Logs", "CREATE_COMPLETE") in events_since(aws, stack, mark)
    assert retention(aws, ids["Logs"]) == 7
    tags = aws("logs").list_tags_log_group(logGroupName=ids["Logs"])["tags"]
    assert tags == {"project": "mlops"}
    assert detect(aws, stack)[0] == "IN_SYNC"


def test_a_failed_execution_restores_the_drift(aws):
    """"If the deployment fails, CloudFormation will roll back resources to their actual
    pre-deployment state and preserve out-of-band changes made since the last deployment.\""""
    stack = create_stack(aws)
    ids = drift_by_hand(aws, stack)
    failing = TEMPLATE + f"""
  Pipeline:
    Type: AWS::SageMaker::Pipeline
    Properties:
      PipelineName: {unique("revert-drift-pipeline")}
      RoleArn: arn:aws:iam::123456789012:role/pipeline
      PipelineDefinition: {{PipelineDefinitionBody: "{{not json"}}
"""
    described = change_set(
        aws, stack, "aware", DeploymentMode="REVERT_DRIFT", UsePreviousTemplate=False,
        TemplateBody=failing,
    )
    assert described["Status"] == "CREATE_COMPLETE", described.get("StatusReason")
    assert sorted(changes(described)) == ["Function", "Logs", "Pipeline"]
    mark = event_count(aws, stack)
    assert execute(aws, stack, "aware") == "UPDATE_ROLLBACK_COMPLETE"
    events = events_since(aws, stack, mark)
    assert ("Pipeline", "CREATE_FAILED") in events
    # Put back before the failure, restored by the rollback.
    assert events.count(("Logs", "UPDATE_COMPLETE")) == 2
    assert retention(aws, ids["Logs"]) == 30
    assert memory(aws, ids["Function"]) == 512
    status, resources = detect(aws, stack)
    assert status == "DRIFTED"
    assert resources["Logs"] == resources["Function"] == "MODIFIED"


def test_an_unknown_deployment_mode_is_refused(aws):
    stack = create_stack(aws)
    with pytest.raises(ClientError) as refused:
        aws("cloudformation").create_change_set(
            StackName=stack,
            ChangeSetName="unknown",
            UsePreviousTemplate=True,
            DeploymentMode="REVERT_EVERYTHING",
        )
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "deploymentMode" in refused.value.response["Error"]["Message"]
