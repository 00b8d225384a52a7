"""Stack refactoring on the emulator (localaws/stack_refactor.py): resources move between stacks
without being touched, and what the User Guide says a refactor may not do is refused."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import client_as, run_script, start_server

ACCOUNT = "123456789012"
REGION = "us-east-1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mapping(source: str, source_id: str, destination: str, destination_id: str) -> dict[str, Any]:
    return {
        "Source": {"StackName": source, "LogicalResourceId": source_id},
        "Destination": {"StackName": destination, "LogicalResourceId": destination_id},
    }


def create_refactor(cloudformation, templates: dict[str, Any], mappings=(), **extra) -> str:
    definitions = [
        {"StackName": name, "TemplateBody": body if isinstance(body, str) else json.dumps(body)}
        for name, body in templates.items()
    ]
    arguments: dict[str, Any] = {"StackDefinitions": definitions, **extra}
    if mappings:
        arguments["ResourceMappings"] = list(mappings)
    return cloudformation.create_stack_refactor(**arguments)["StackRefactorId"]


def described(cloudformation, refactor_id: str) -> dict[str, Any]:
    answer = cloudformation.describe_stack_refactor(StackRefactorId=refactor_id)
    answer.pop("ResponseMetadata")
    return answer


def refused(cloudformation, templates: dict[str, Any], mappings=(), **extra) -> str:
    """Creates the refactor; asserts it failed validation and answers its StatusReason."""
    refactor_id = create_refactor(cloudformation, templates, mappings, **extra)
    answer = described(cloudformation, refactor_id)
    assert answer["Status"] == "CREATE_FAILED", answer
    assert answer["ExecutionStatus"] == "UNAVAILABLE"
    assert cloudformation.list_stack_refactor_actions(StackRefactorId=refactor_id)["StackRefactorActions"] == []
    return answer["StatusReason"]


def status(cloudformation, stack: str) -> str:
    return cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def resources(cloudformation, stack: str) -> dict[str, str]:
    summaries = cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {item["LogicalResourceId"]: item["PhysicalResourceId"] for item in summaries}


def parameter(name: str, value: str = "v", **extra: Any) -> dict[str, Any]:
    return {"Type": "AWS::SSM::Parameter", "Properties": {"Name": name, "Type": "String", "Value": value, **extra}}


def error_of(call) -> dict[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]


# --- the move the platform needs: a model package group into a pipeline's stack ----------------------

REGISTRY = """
Description: the model registry
Resources:
  Group:
    Type: AWS::SageMaker::ModelPackageGroup
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      ModelPackageGroupName: {group}
      ModelPackageGroupDescription: plant models
      Tags:
        - Key: team
          Value: ml
        - Key: cost-center
          Value: "42"
      ModelPackageGroupPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal:
              AWS: !Sub arn:aws:iam::${{AWS::AccountId}}:root
            Action:
              - sagemaker:DescribeModelPackageGroup
              - sagemaker:ListModelPackages
            Resource: !Sub arn:aws:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:model-package-group/{group}
  Release:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /registry/{suffix}/release
      Type: String
      Value: "1"
Outputs:
  GroupArn:
    Value: !GetAtt Group.ModelPackageGroupArn
"""

REGISTRY_AFTER = """
Description: the model registry
Resources:
  Release:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /registry/{suffix}/release
      Type: String
      Value: "1"
"""

PIPELINE = """
Resources:
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: /pipelines/{suffix}
      RetentionInDays: 7
"""

# The same group in JSON (the new logical id; the policy's !Sub in its long form).
PIPELINE_AFTER = {
    "Resources": {
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/pipelines/{suffix}", "RetentionInDays": 7},
        },
        "ModelPackageGroup": {
            "Type": "AWS::SageMaker::ModelPackageGroup",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "ModelPackageGroupName": "{group}",
                "ModelPackageGroupDescription": "plant models",
                "Tags": [{"Key": "team", "Value": "ml"}, {"Key": "cost-center", "Value": "42"}],
                "ModelPackageGroupPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}},
                            "Action": [
                                "sagemaker:DescribeModelPackageGroup",
                                "sagemaker:ListModelPackages",
                            ],
                            "Resource": {
                                "Fn::Sub": "arn:aws:sagemaker:${AWS::Region}:${AWS::AccountId}:"
                                "model-package-group/{group}"
                            },
                        }
                    ],
                },
            },
        },
    },
    "Outputs": {
        "GroupArn": {"Value": {"Fn::GetAtt": ["ModelPackageGroup", "ModelPackageGroupArn"]}}
    },
}


def pipeline_after(group: str, suffix: str) -> str:
    return json.dumps(PIPELINE_AFTER).replace("{group}", group).replace("{suffix}", suffix)


def test_a_model_package_group_moves_to_a_pipeline_stack_untouched(aws):
    cloudformation, sagemaker = aws("cloudformation"), aws("sagemaker")
    suffix = uuid.uuid4().hex[:8]
    group, registry, pipeline = f"plants-{suffix}", f"registry-{suffix}", f"pipeline-x-{suffix}"
    cloudformation.create_stack(StackName=registry, TemplateBody=REGISTRY.format(group=group, suffix=suffix))
    cloudformation.create_stack(StackName=pipeline, TemplateBody=PIPELINE.format(suffix=suffix))
    assert status(cloudformation, registry) == status(cloudformation, pipeline) == "CREATE_COMPLETE"
    before = sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    versions = [
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"version {number}",
            InferenceSpecification={
                "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/plants:{number}"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        for number in (1, 2)
    ]
    registry_id = cloudformation.describe_stacks(StackName=registry)["Stacks"][0]["StackId"]
    pipeline_id = cloudformation.describe_stacks(StackName=pipeline)["Stacks"][0]["StackId"]

    refactor_id = create_refactor(
        cloudformation,
        {registry: REGISTRY_AFTER.format(suffix=suffix), pipeline: pipeline_after(group, suffix)},
        [mapping(registry, "Group", pipeline, "ModelPackageGroup")],
        Description="the group moves to its pipeline",
    )
    assert described(cloudformation, refactor_id) == {
        "StackRefactorId": refactor_id,
        "Description": "the group moves to its pipeline",
        "StackIds": [registry_id, pipeline_id],
        "Status": "CREATE_COMPLETE",
        "ExecutionStatus": "AVAILABLE",
    }
    actions = cloudformation.list_stack_refactor_actions(StackRefactorId=refactor_id)["StackRefactorActions"]
    assert actions == [
        {
            "Action": "MOVE",
            "Entity": "RESOURCE",
            "PhysicalResourceId": before["ModelPackageGroupArn"],
            "Description": "No configuration changes detected.",
            "Detection": "MANUAL",
            "TagResources": [],
            "UntagResources": [],
            "ResourceMapping": mapping(registry_id, "Group", pipeline_id, "ModelPackageGroup"),
        }
    ]

    cloudformation.execute_stack_refactor(StackRefactorId=refactor_id)
    assert described(cloudformation, refactor_id)["ExecutionStatus"] == "EXECUTE_COMPLETE"
    summaries = cloudformation.list_stack_refactors(ExecutionStatusFilter=["EXECUTE_COMPLETE"])
    assert refactor_id in [item["StackRefactorId"] for item in summaries["StackRefactorSummaries"]]

    # The group itself is untouched: same ARN, creation time, tags and versions.
    after = sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    assert after["ModelPackageGroupArn"] == before["ModelPackageGroupArn"]
    assert after["CreationTime"] == before["CreationTime"]
    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert sorted(item["ModelPackageArn"] for item in packages) == sorted(versions)
    assert {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=after["ModelPackageGroupArn"])["Tags"]} == {
        "team": "ml",
        "cost-center": "42",
    }

    # The stacks' records moved: templates, resources (same physical ids), events, statuses.
    assert cloudformation.get_template(StackName=registry)["TemplateBody"] == REGISTRY_AFTER.format(suffix=suffix)
    # (botocore parses a JSON template body into a dict)
    assert cloudformation.get_template(StackName=pipeline)["TemplateBody"] == json.loads(
        pipeline_after(group, suffix)
    )
    assert resources(cloudformation, registry) == {"Release": f"/registry/{suffix}/release"}
    assert resources(cloudformation, pipeline) == {
        "Logs": f"/pipelines/{suffix}",
        "ModelPackageGroup": before["ModelPackageGroupArn"],
    }
    detail = cloudformation.describe_stack_resources(StackName=pipeline, LogicalResourceId="ModelPackageGroup")
    assert detail["StackResources"][0]["PhysicalResourceId"] == before["ModelPackageGroupArn"]
    assert status(cloudformation, registry) == status(cloudformation, pipeline) == "UPDATE_COMPLETE"
    stack = cloudformation.describe_stacks(StackName=pipeline)["Stacks"][0]
    assert stack["Outputs"] == [{"OutputKey": "GroupArn", "OutputValue": before["ModelPackageGroupArn"]}]
    assert "Outputs" not in cloudformation.describe_stacks(StackName=registry)["Stacks"][0]
    events = cloudformation.describe_stack_events(StackName=pipeline)["StackEvents"]
    assert [(event["LogicalResourceId"], event["ResourceStatus"]) for event in events[:4]] == [
        (pipeline, "UPDATE_COMPLETE"),
        ("ModelPackageGroup", "IMPORT_COMPLETE"),
        ("ModelPackageGroup", "IMPORT_IN_PROGRESS"),
        (pipeline, "UPDATE_IN_PROGRESS"),
    ]
    assert events[1]["PhysicalResourceId"] == before["ModelPackageGroupArn"]

    # Deleting the registry stack leaves the group: it is no longer one of its resources.
    cloudformation.delete_stack(StackName=registry)
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"] == (
        before["ModelPackageGroupArn"]
    )
    assert len(sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) == 2
    assert resources(cloudformation, pipeline)["ModelPackageGroup"] == before["ModelPackageGroupArn"]

    # The pipeline stack owns it now: its own template is no change, and the stack updates it.
    body = json.dumps(cloudformation.get_template(StackName=pipeline)["TemplateBody"])
    change_set = cloudformation.create_change_set(StackName=pipeline, ChangeSetName="same", TemplateBody=body)
    same = cloudformation.describe_change_set(ChangeSetName=change_set["Id"])
    assert same["Status"] == "FAILED"
    assert same["StatusReason"].startswith("The submitted information didn't contain changes.")
    assert same["Changes"] == []
    retagged = json.loads(body)
    retagged["Resources"]["ModelPackageGroup"]["Properties"]["Tags"][0]["Value"] = "platform"
    cloudformation.update_stack(StackName=pipeline, TemplateBody=json.dumps(retagged))
    assert status(cloudformation, pipeline) == "UPDATE_COMPLETE"
    tags = sagemaker.list_tags(ResourceArn=before["ModelPackageGroupArn"])["Tags"]
    assert {"Key": "team", "Value": "platform"} in tags
    # DeletionPolicy Retain came along: deleting the pipeline stack keeps the group too.
    cloudformation.delete_stack(StackName=pipeline)
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]


def test_a_resource_another_refers_to_moves_behind_an_export(aws):
    """The AWS CDK's way: the reference becomes Fn::ImportValue of an export the destination adds;
    the referring resource's resolved configuration is unchanged, so it is no change."""
    cloudformation, ssm = aws("cloudformation"), aws("ssm")
    suffix = uuid.uuid4().hex[:8]
    source, destination = f"source-{suffix}", f"destination-{suffix}"
    group = f"exported-{suffix}"
    group_body = {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": group}}
    pointer = parameter(f"/pointer/{suffix}", {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]})
    cloudformation.create_stack(
        StackName=source, TemplateBody=json.dumps({"Resources": {"Group": group_body, "Pointer": pointer}})
    )
    cloudformation.create_stack(
        StackName=destination, TemplateBody=json.dumps({"Resources": {"Other": parameter(f"/other/{suffix}")}})
    )
    arn = ssm.get_parameter(Name=f"/pointer/{suffix}")["Parameter"]["Value"]
    imported = parameter(f"/pointer/{suffix}", {"Fn::ImportValue": f"{suffix}-group-arn"})
    templates = {
        source: {"Resources": {"Pointer": imported}},
        destination: {
            "Resources": {"Other": parameter(f"/other/{suffix}"), "Group": group_body},
            "Outputs": {
                "GroupArn": {
                    "Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]},
                    "Export": {"Name": f"{suffix}-group-arn"},
                }
            },
        },
    }
    refactor_id = create_refactor(cloudformation, templates)
    answer = described(cloudformation, refactor_id)
    assert answer["Status"] == "CREATE_COMPLETE", answer
    [action] = cloudformation.list_stack_refactor_actions(StackRefactorId=refactor_id)["StackRefactorActions"]
    assert action["Detection"] == "AUTO"
    assert action["ResourceMapping"]["Destination"]["LogicalResourceId"] == "Group"
    cloudformation.execute_stack_refactor(StackRefactorId=refactor_id)
    exports = {item["Name"]: item["Value"] for item in cloudformation.list_exports()["Exports"]}
    assert exports[f"{suffix}-group-arn"] == arn
    assert ssm.get_parameter(Name=f"/pointer/{suffix}")["Parameter"]["Value"] == arn
    assert set(resources(cloudformation, destination)) == {"Other", "Group"}

    # A literal other than the value the import resolves to is a configuration change.
    changed = {
        source: {"Resources": {"Pointer": parameter(f"/pointer/{suffix}", "elsewhere")}},
        destination: templates[destination],
    }
    reason = refused(cloudformation, changed)
    assert "Resource [Pointer]: its properties differ" in reason


def test_a_moved_resource_is_its_new_stack_own_for_drift_and_updates(aws):
    cloudformation, ssm = aws("cloudformation"), aws("ssm")
    suffix = uuid.uuid4().hex[:8]
    first, second = f"first-{suffix}", f"second-{suffix}"
    moving, staying = parameter(f"/moving/{suffix}", "a"), parameter(f"/staying/{suffix}")
    cloudformation.create_stack(StackName=first, TemplateBody=json.dumps({"Resources": {"Moving": moving, "Staying": staying}}))
    cloudformation.create_stack(StackName=second, TemplateBody=json.dumps({"Resources": {"Other": parameter(f"/other/{suffix}")}}))
    cloudformation.detect_stack_drift(StackName=first)  # a result for Moving in its old stack
    refactor_id = create_refactor(
        cloudformation,
        {
            first: {"Resources": {"Staying": staying}},
            second: {"Resources": {"Other": parameter(f"/other/{suffix}"), "Moving": moving}},
        },
    )
    cloudformation.execute_stack_refactor(StackRefactorId=refactor_id)
    assert described(cloudformation, refactor_id)["ExecutionStatus"] == "EXECUTE_COMPLETE"
    drifts = cloudformation.describe_stack_resource_drifts(StackName=first)["StackResourceDrifts"]
    assert [item["LogicalResourceId"] for item in drifts] == ["Staying"]

    ssm.put_parameter(Name=f"/moving/{suffix}", Value="changed by hand", Type="String", Overwrite=True)
    cloudformation.detect_stack_drift(StackName=second)
    drifts = {
        item["LogicalResourceId"]: item
        for item in cloudformation.describe_stack_resource_drifts(StackName=second)["StackResourceDrifts"]
    }
    assert drifts["Moving"]["StackResourceDriftStatus"] == "MODIFIED"
    assert drifts["Moving"]["PhysicalResourceId"] == f"/moving/{suffix}"
    assert drifts["Moving"]["PropertyDifferences"][0]["PropertyPath"] == "/Value"
    # A drift-aware change set of the new stack puts it back.
    body = json.dumps(cloudformation.get_template(StackName=second)["TemplateBody"])
    change_set = cloudformation.create_change_set(
        StackName=second, ChangeSetName="revert", TemplateBody=body, DeploymentMode="REVERT_DRIFT"
    )["Id"]
    changes = cloudformation.describe_change_set(ChangeSetName=change_set)["Changes"]
    assert [change["ResourceChange"]["LogicalResourceId"] for change in changes] == ["Moving"]
    cloudformation.execute_change_set(ChangeSetName=change_set)
    assert ssm.get_parameter(Name=f"/moving/{suffix}")["Parameter"]["Value"] == "a"

    # An update of the new stack updates it; deleting the old stack does not delete it.
    template = {"Resources": {"Other": parameter(f"/other/{suffix}"), "Moving": parameter(f"/moving/{suffix}", "b")}}
    cloudformation.update_stack(StackName=second, TemplateBody=json.dumps(template))
    assert status(cloudformation, second) == "UPDATE_COMPLETE"
    assert ssm.get_parameter(Name=f"/moving/{suffix}")["Parameter"]["Value"] == "b"
    cloudformation.delete_stack(StackName=first)
    assert ssm.get_parameter(Name=f"/moving/{suffix}")["Parameter"]["Value"] == "b"
    cloudformation.delete_stack(StackName=second)
    assert error_of(lambda: ssm.get_parameter(Name=f"/moving/{suffix}"))["Code"] == "ParameterNotFound"


def test_a_resource_is_renamed_within_one_stack(aws):
    cloudformation = aws("cloudformation")
    suffix = uuid.uuid4().hex[:8]
    stack = f"rename-{suffix}"
    body = parameter(f"/renamed/{suffix}")
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Old": body, "Other": parameter(f"/o/{suffix}")}}))
    after = {"Resources": {"New": body, "Other": parameter(f"/o/{suffix}")}}
    assert "Resource [New] is new" in refused(cloudformation, {stack: after})  # a rename needs a mapping
    refactor_id = create_refactor(cloudformation, {stack: after}, [mapping(stack, "Old", stack, "New")])
    assert described(cloudformation, refactor_id)["Status"] == "CREATE_COMPLETE"
    cloudformation.execute_stack_refactor(StackRefactorId=refactor_id)
    assert resources(cloudformation, stack) == {"New": f"/renamed/{suffix}", "Other": f"/o/{suffix}"}
    change_set = cloudformation.create_change_set(StackName=stack, ChangeSetName="same", TemplateBody=json.dumps(after))
    assert cloudformation.describe_change_set(ChangeSetName=change_set["Id"])["Status"] == "FAILED"


def test_enable_stack_creation_creates_a_stack_holding_what_moves_into_it(aws):
    cloudformation, ssm = aws("cloudformation"), aws("ssm")
    suffix = uuid.uuid4().hex[:8]
    old, new = f"monolith-{suffix}", f"split-{suffix}"
    moving = parameter(f"/split/{suffix}")
    cloudformation.create_stack(StackName=old, TemplateBody=json.dumps({"Resources": {"Moving": moving, "Keep": parameter(f"/k/{suffix}")}}))
    templates = {old: {"Resources": {"Keep": parameter(f"/k/{suffix}")}}, new: {"Resources": {"Moved": moving}}}
    mappings = [mapping(old, "Moving", new, "Moved")]

    reason = refused(cloudformation, templates, mappings)
    assert f"Stack [{new}] does not exist" in reason
    with_parameters = dict(templates, **{new: {"Parameters": {"P": {"Type": "String", "Default": "x"}}, "Resources": {"Moved": moving}}})
    assert "cannot have Parameters" in refused(cloudformation, with_parameters, mappings, EnableStackCreation=True)
    named = dict(templates, **{new: {"Resources": {"Moved": moving}, "Outputs": {"Name": {"Value": {"Ref": "AWS::StackName"}}}}})
    assert "refers to AWS::StackName" in refused(cloudformation, named, mappings, EnableStackCreation=True)

    refactor_id = create_refactor(cloudformation, templates, mappings, EnableStackCreation=True)
    answer = described(cloudformation, refactor_id)
    assert answer["Status"] == "CREATE_COMPLETE", answer
    new_id = answer["StackIds"][1]
    assert new_id.startswith(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{new}/")
    actions = cloudformation.list_stack_refactor_actions(StackRefactorId=refactor_id)["StackRefactorActions"]
    assert [(action["Action"], action["Entity"]) for action in actions] == [("CREATE", "STACK"), ("MOVE", "RESOURCE")]
    assert actions[1]["ResourceMapping"]["Destination"] == {"StackName": new_id, "LogicalResourceId": "Moved"}
    cloudformation.execute_stack_refactor(StackRefactorId=refactor_id)
    stack = cloudformation.describe_stacks(StackName=new)["Stacks"][0]
    assert (stack["StackId"], stack["StackStatus"]) == (new_id, "CREATE_COMPLETE")
    assert resources(cloudformation, new) == {"Moved": f"/split/{suffix}"}
    assert resources(cloudformation, old) == {"Keep": f"/k/{suffix}"}
    # The listed actions stay what was executed.
    assert len(cloudformation.list_stack_refactor_actions(StackRefactorId=refactor_id)["StackRefactorActions"]) == 2
    cloudformation.delete_stack(StackName=new)
    assert error_of(lambda: ssm.get_parameter(Name=f"/split/{suffix}"))["Code"] == "ParameterNotFound"


# --- what AWS refuses ------------------------------------------------------------------------------

A_TEMPLATE = {
    "Parameters": {"Suffix": {"Type": "String", "Default": "a"}},
    "Conditions": {"Always": {"Fn::Equals": ["x", "x"]}},
    "Mappings": {"Sizes": {"small": {"value": "1"}}},
    "Resources": {"One": None, "Two": None},
}


def two_stacks(cloudformation) -> tuple[str, str, dict[str, Any]]:
    """Stacks A (One, Two; a parameter, a condition, a mapping) and B (Three); the resources."""
    suffix = uuid.uuid4().hex[:8]
    a, b = f"a-{suffix}", f"b-{suffix}"
    bodies = {
        "One": parameter(f"/one/{suffix}", {"Fn::Sub": "one-${Suffix}"}),
        "Two": parameter(f"/two/{suffix}", "two"),
        "Three": parameter(f"/three/{suffix}", "three"),
    }
    template = dict(A_TEMPLATE, Resources={"One": bodies["One"], "Two": bodies["Two"]})
    cloudformation.create_stack(StackName=a, TemplateBody=json.dumps(template))
    cloudformation.create_stack(StackName=b, TemplateBody=json.dumps({"Resources": {"Three": bodies["Three"]}}))
    return a, b, bodies


def with_resources(resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return dict({key: value for key, value in A_TEMPLATE.items() if key != "Resources"}, Resources=resources, **sections)


def changed(body: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return dict(body, Properties=dict(body["Properties"], **properties))


CASES = {
    # name: (templates(a, b, bodies) -> (templates, mappings), what StatusReason says)
    "a new resource": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}), b: {"Resources": {"Three": r["Three"], "Four": parameter(f"/four/{uuid.uuid4().hex}")}}}, []),
        "Resource [Four] is new: refactor operations don't allow new resource creations",
    ),
    "a deleted resource": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "Resource [Two] of stack [{a}] is in none of the new templates: refactor operations don't allow resource deletions",
    ),
    "a changed property of a moved resource": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": changed(r["Two"], Value="other")}}}, []),
        "Resource [Two]: its properties differ from those of [Two] in stack [{a}]",
    ),
    "a changed property of a resource that stays": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": changed(r["Two"], Description="new")}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "Resource [Two]: its properties differ",
    ),
    "a changed type": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": dict(r["Two"], Type="AWS::SNS::Topic")}}}, []),
        "Resource [Two] is of type AWS::SNS::Topic, its source [Two] in stack [{a}] of type AWS::SSM::Parameter",
    ),
    "changed metadata": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": dict(r["Two"], Metadata={"aws:cdk:path": "B/Two"})}}}, []),
        "Resource [Two]: its Metadata differs",
    ),
    "a resource kept and also added to another stack": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}), b: {"Resources": {"Three": r["Three"], "Two": r["Two"]}}}, []),
        "You can't refactor the same resource into multiple stacks",
    ),
    "one resource mapped into two stacks": (
        lambda a, b, r: (
            {a: with_resources({"One": r["One"], "TwoA": r["Two"]}), b: {"Resources": {"Three": r["Three"], "TwoB": r["Two"]}}},
            [mapping(a, "Two", a, "TwoA"), mapping(a, "Two", b, "TwoB")],
        ),
        "You can't refactor the same resource into multiple stacks",
    ),
    "a rename without a mapping": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Renamed": r["Two"]}}}, []),
        "Resource [Renamed] is new",
    ),
    "a parameter added": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}, Parameters={"Suffix": A_TEMPLATE["Parameters"]["Suffix"], "Extra": {"Type": "String", "Default": "e"}}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "You can't add new parameters during a stack refactor: parameter [Extra] is new",
    ),
    "a parameter changed": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}, Parameters={"Suffix": {"Type": "String", "Default": "b"}}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "You can't change parameters during a stack refactor: parameter [Suffix] changed",
    ),
    "a condition changed": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}, Conditions={"Always": {"Fn::Equals": ["x", "y"]}}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "You can't change conditions during a stack refactor: condition [Always] changed",
    ),
    "a condition added to the destination": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Conditions": {"Always": {"Fn::Equals": ["x", "x"]}}, "Resources": {"Three": r["Three"], "Two": r["Two"]}}}, []),
        "You can't add new conditions during a stack refactor: condition [Always] is new",
    ),
    "a mapping added": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}), b: {"Mappings": {"M": {"k": {"v": "1"}}}, "Resources": {"Three": r["Three"], "Two": r["Two"]}}}, []),
        "You can't add new mappings during a stack refactor: mapping [M] is new",
    ),
    "a moved resource whose parameter the destination lacks": (
        lambda a, b, r: ({a: with_resources({"Two": r["Two"]}), b: {"Resources": {"Three": r["Three"], "One": r["One"]}}}, []),
        "Template format error: Unresolved resource dependencies [Suffix] in the Resources block of the template",
    ),
    "a stack left empty": (
        lambda a, b, r: ({a: with_resources({}), b: {"Resources": {"Three": r["Three"], "One": r["One"], "Two": r["Two"]}}}, []),
        "CloudFormation doesn't support empty stacks",
    ),
    "a moved resource naming its stack": (
        lambda a, b, r: (
            {a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": changed(r["Two"], Value={"Ref": "AWS::StackName"})}}},
            [],
        ),
        "You can't refactor resources that refer to pseudo parameters whose values differ between the source and destination stacks (AWS::StackName)",
    ),
    "an output naming a resource that moved away": (
        lambda a, b, r: ({a: with_resources({"One": r["One"]}, Outputs={"Two": {"Value": {"Ref": "Two"}}}), b: {"Resources": {"Three": r["Three"], "Two": r["Two"]}}}, []),
        "Unresolved resource dependencies [Two] in the Outputs block of the template",
    ),
    "an import of an export nobody makes": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": changed(r["Two"], Value={"Fn::ImportValue": "nobody-exports-this"})}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "No export named nobody-exports-this found.",
    ),
    "a mapping from a stack not in the definitions": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}), b: {"Resources": {"Three": r["Three"]}}}, [mapping("elsewhere", "X", b, "Three")]),
        "names stack [elsewhere], which is not in StackDefinitions",
    ),
    "nothing moved": (
        lambda a, b, r: ({a: with_resources({"One": r["One"], "Two": r["Two"]}), b: {"Resources": {"Three": r["Three"]}}}, []),
        "The stack refactor neither moves nor renames a resource.",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_refactor_that_aws_refuses_fails_its_validation(aws, case):
    cloudformation = aws("cloudformation")
    a, b, bodies = two_stacks(cloudformation)
    build, expected = CASES[case]
    templates, mappings = build(a, b, bodies)
    reason = refused(cloudformation, templates, mappings)
    assert expected.format(a=a, b=b) in reason, reason
    # Nothing moved.
    assert set(resources(cloudformation, a)) == {"One", "Two"}
    assert set(resources(cloudformation, b)) == {"Three"}


def test_the_reason_names_the_stack_and_every_finding(aws):
    cloudformation = aws("cloudformation")
    a, b, r = two_stacks(cloudformation)
    stack_a = cloudformation.describe_stacks(StackName=a)["Stacks"][0]["StackId"]
    reason = refused(cloudformation, {a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Four": parameter("/four")}}})
    findings = reason.split("; ")
    assert f"{stack_a}: Resource [Two] of stack [{a}] is in none of the new templates" in reason
    assert len(findings) == 2, findings


def test_unsupported_types_and_stack_policies_are_refused(aws):
    cloudformation = aws("cloudformation")
    suffix = uuid.uuid4().hex[:8]
    a, b = f"types-a-{suffix}", f"types-b-{suffix}"
    handle = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
    cloudformation.create_stack(StackName=a, TemplateBody=json.dumps({"Resources": {"Handle": handle, "P": parameter(f"/p/{suffix}")}}))
    cloudformation.create_stack(StackName=b, TemplateBody=json.dumps({"Resources": {"Q": parameter(f"/q/{suffix}")}}))
    reason = refused(
        cloudformation,
        {a: {"Resources": {"P": parameter(f"/p/{suffix}")}}, b: {"Resources": {"Q": parameter(f"/q/{suffix}"), "Handle": handle}}},
    )
    assert "resource type AWS::CloudFormation::WaitConditionHandle isn't supported for stack refactoring" in reason
    cloudformation.set_stack_policy(
        StackName=b,
        StackPolicyBody=json.dumps({"Statement": [{"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}]}),
    )
    reason = refused(
        cloudformation,
        {a: {"Resources": {"Handle": handle}}, b: {"Resources": {"Q": parameter(f"/q/{suffix}"), "P": parameter(f"/p/{suffix}")}}},
    )
    assert "Stack refactor doesn't support stacks that have stack policies attached" in reason


def test_an_export_another_stack_imports_cannot_go(aws):
    cloudformation = aws("cloudformation")
    suffix = uuid.uuid4().hex[:8]
    a, b, c = f"exp-a-{suffix}", f"exp-b-{suffix}", f"exp-c-{suffix}"
    one, two = parameter(f"/e1/{suffix}"), parameter(f"/e2/{suffix}")
    output = {"Value": {"Ref": "Two"}, "Export": {"Name": f"two-{suffix}"}}
    cloudformation.create_stack(StackName=a, TemplateBody=json.dumps({"Resources": {"One": one, "Two": two}, "Outputs": {"Two": output}}))
    cloudformation.create_stack(StackName=b, TemplateBody=json.dumps({"Resources": {"Three": parameter(f"/e3/{suffix}")}}))
    cloudformation.create_stack(
        StackName=c, TemplateBody=json.dumps({"Resources": {"User": parameter(f"/e4/{suffix}", {"Fn::ImportValue": f"two-{suffix}"})}})
    )
    templates = {a: {"Resources": {"One": one}}, b: {"Resources": {"Three": parameter(f"/e3/{suffix}"), "Two": two}}}
    assert f"Cannot delete export two-{suffix} as it is in use by {c}" in refused(cloudformation, templates)
    # Exported by its new stack instead, with the same value: allowed.
    templates[b]["Outputs"] = {"Two": output}
    refactor_id = create_refactor(cloudformation, templates)
    assert described(cloudformation, refactor_id)["Status"] == "CREATE_COMPLETE"
    cloudformation.execute_stack_refactor(StackRefactorId=refactor_id)
    [export] = [item for item in cloudformation.list_exports()["Exports"] if item["Name"] == f"two-{suffix}"]
    assert export["ExportingStackId"] == cloudformation.describe_stacks(StackName=b)["Stacks"][0]["StackId"]
    assert export["Value"] == f"/e2/{suffix}"


def test_requests_that_are_not_well_formed_are_validation_errors(aws):
    cloudformation = aws("cloudformation")
    a, b, r = two_stacks(cloudformation)
    body = json.dumps({"Resources": {"Three": r["Three"]}})
    cases = {
        "no stacks": [],
        "six stacks": [{"StackName": f"s{n}", "TemplateBody": body} for n in range(6)],
        "no template": [{"StackName": a}],
        "two templates": [{"StackName": a, "TemplateBody": body, "TemplateURL": "https://s3.amazonaws.com/b/k"}],
        "a stack twice": [{"StackName": b, "TemplateBody": body}, {"StackName": b, "TemplateBody": body}],
    }
    for name, definitions in cases.items():
        error = error_of(lambda: cloudformation.create_stack_refactor(StackDefinitions=definitions))
        assert error["Code"] == "ValidationError", name


def test_a_template_may_come_from_s3(aws):
    cloudformation, s3 = aws("cloudformation"), aws("s3")
    a, b, r = two_stacks(cloudformation)
    bucket = unique("templates")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="b.json", Body=json.dumps({"Resources": {"Three": r["Three"], "Two": r["Two"]}}).encode())
    refactor_id = cloudformation.create_stack_refactor(
        StackDefinitions=[
            {"StackName": a, "TemplateBody": json.dumps(with_resources({"One": r["One"]}))},
            {"StackName": b, "TemplateURL": f"https://{bucket}.s3.amazonaws.com/b.json"},
        ]
    )["StackRefactorId"]
    assert described(cloudformation, refactor_id)["Status"] == "CREATE_COMPLETE"


def test_unknown_refactors_are_not_found(aws):
    cloudformation = aws("cloudformation")
    for call in (
        cloudformation.describe_stack_refactor,
        cloudformation.execute_stack_refactor,
        cloudformation.list_stack_refactor_actions,
    ):
        error = error_of(lambda: call(StackRefactorId="00000000-0000-0000-0000-000000000000"))
        assert error["Code"] == "StackRefactorNotFoundException"


def test_only_an_available_refactor_executes_and_only_once(aws):
    cloudformation = aws("cloudformation")
    a, b, r = two_stacks(cloudformation)
    failed = create_refactor(cloudformation, {a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"]}}})
    error = error_of(lambda: cloudformation.execute_stack_refactor(StackRefactorId=failed))
    assert error["Code"] == "ValidationError"
    assert "cannot be executed in its current status of [CREATE_FAILED]" in error["Message"]
    good = create_refactor(cloudformation, {a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": r["Two"]}}})
    cloudformation.execute_stack_refactor(StackRefactorId=good)
    error = error_of(lambda: cloudformation.execute_stack_refactor(StackRefactorId=good))
    assert "execution status of [EXECUTE_COMPLETE]" in error["Message"]


def test_a_refactor_is_obsolete_once_its_stacks_changed(aws):
    cloudformation = aws("cloudformation")
    a, b, r = two_stacks(cloudformation)
    templates = {a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": r["Two"]}}}
    first = create_refactor(cloudformation, templates)
    second = create_refactor(cloudformation, templates)
    cloudformation.update_stack(StackName=b, TemplateBody=json.dumps({"Resources": {"Three": changed(r["Three"], Value="3")}}))
    answer = described(cloudformation, first)
    assert answer["ExecutionStatus"] == "OBSOLETE"
    assert "changed after the refactor was created" in answer["ExecutionStatusReason"]
    error = error_of(lambda: cloudformation.execute_stack_refactor(StackRefactorId=second))
    assert "execution status of [OBSOLETE]" in error["Message"]
    obsolete = cloudformation.list_stack_refactors(ExecutionStatusFilter=["OBSOLETE"])["StackRefactorSummaries"]
    assert {first, second} <= {item["StackRefactorId"] for item in obsolete}
    assert set(resources(cloudformation, a)) == {"One", "Two"}


def test_executing_one_refactor_makes_others_and_change_sets_of_its_stacks_obsolete(aws):
    cloudformation = aws("cloudformation")
    a, b, r = two_stacks(cloudformation)
    templates = {a: with_resources({"One": r["One"]}), b: {"Resources": {"Three": r["Three"], "Two": r["Two"]}}}
    change_set = cloudformation.create_change_set(
        StackName=b, ChangeSetName="pending", TemplateBody=json.dumps({"Resources": {"Three": changed(r["Three"], Value="3")}})
    )["Id"]
    first, second = create_refactor(cloudformation, templates), create_refactor(cloudformation, templates)
    cloudformation.execute_stack_refactor(StackRefactorId=first)
    assert described(cloudformation, second)["ExecutionStatus"] == "OBSOLETE"
    assert cloudformation.describe_change_set(ChangeSetName=change_set)["ExecutionStatus"] == "OBSOLETE"
    error = error_of(lambda: cloudformation.execute_change_set(ChangeSetName=change_set))
    assert error["Code"] == "InvalidChangeSetStatus"


def test_actions_and_refactors_are_listed_in_pages(aws):
    cloudformation = aws("cloudformation")
    a, b, r = two_stacks(cloudformation)
    # One moves to B with its value as a literal: "one-${Suffix}" resolves to "one-a" on both
    # sides, so that is no change; Two is renamed within A.
    templates = {
        a: with_resources({"Renamed": r["Two"]}),
        b: {"Resources": {"Three": r["Three"], "One": changed(r["One"], Value="one-a")}},
    }
    refactor_id = create_refactor(cloudformation, templates, [mapping(a, "Two", a, "Renamed")])
    assert described(cloudformation, refactor_id)["Status"] == "CREATE_COMPLETE"
    first = cloudformation.list_stack_refactor_actions(StackRefactorId=refactor_id, MaxResults=1)
    assert len(first["StackRefactorActions"]) == 1 and first["NextToken"]
    rest = cloudformation.list_stack_refactor_actions(
        StackRefactorId=refactor_id, MaxResults=1, NextToken=first["NextToken"]
    )
    assert len(rest["StackRefactorActions"]) == 1 and "NextToken" not in rest
    moved = {
        action["ResourceMapping"]["Destination"]["LogicalResourceId"]: action["Detection"]
        for action in first["StackRefactorActions"] + rest["StackRefactorActions"]
    }
    assert moved == {"Renamed": "MANUAL", "One": "AUTO"}
    changed_value = dict(templates, **{b: {"Resources": {"Three": r["Three"], "One": changed(r["One"], Value="one-b")}}})
    assert "Resource [One]: its properties differ" in refused(cloudformation, changed_value, [mapping(a, "Two", a, "Renamed")])
    page = cloudformation.list_stack_refactors(MaxResults=2)
    assert len(page["StackRefactorSummaries"]) == 2 and page["NextToken"]
    following = cloudformation.list_stack_refactors(MaxResults=2, NextToken=page["NextToken"])
    assert following["StackRefactorSummaries"][0] != page["StackRefactorSummaries"][0]


# --- IAM -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("local-aws-refactor-iam")
    url = start_server(state_dir, "--enforce-iam")
    try:
        yield url
    finally:
        assert run_script(state_dir, "stop").returncode == 0


def session(url: str, statements: list[dict[str, Any]]):
    """A client factory for a session of a new role with these permissions."""
    iam = client_as(url, "iam", REGION)
    name = unique("refactorer")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    credentials = client_as(url, "sts", REGION).assume_role(RoleArn=arn, RoleSessionName="refactorer")["Credentials"]
    return lambda service: client_as(url, service, REGION, credentials)


def test_stack_refactoring_is_authorized_on_the_stacks_it_involves(enforcing):
    root = client_as(enforcing, "cloudformation", REGION)
    suffix = uuid.uuid4().hex[:8]
    a, b, outside = f"team-a-{suffix}", f"team-b-{suffix}", f"other-{suffix}"
    one, two = parameter(f"/i1/{suffix}"), parameter(f"/i2/{suffix}")
    root.create_stack(StackName=a, TemplateBody=json.dumps({"Resources": {"One": one, "Two": two}}))
    root.create_stack(StackName=b, TemplateBody=json.dumps({"Resources": {"Three": parameter(f"/i3/{suffix}")}}))
    root.create_stack(StackName=outside, TemplateBody=json.dumps({"Resources": {"Four": parameter(f"/i4/{suffix}")}}))
    definitions = [
        {"StackName": a, "TemplateBody": json.dumps({"Resources": {"One": one}})},
        {"StackName": b, "TemplateBody": json.dumps({"Resources": {"Three": parameter(f"/i3/{suffix}"), "Two": two}})},
    ]
    team = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/team-*"

    # Without cloudformation:CreateStackRefactor: denied, naming the action and a stack.
    reader = session(enforcing, [{"Effect": "Allow", "Action": ["cloudformation:Describe*", "cloudformation:List*"], "Resource": "*"}])
    error = error_of(lambda: reader("cloudformation").create_stack_refactor(StackDefinitions=definitions))
    assert error["Code"] == "AccessDenied"
    assert "is not authorized to perform: cloudformation:CreateStackRefactor on resource: " in error["Message"]
    a_id = root.describe_stacks(StackName=a)["Stacks"][0]["StackId"]
    assert a_id in error["Message"]

    refactorer = session(
        enforcing,
        [{"Effect": "Allow", "Action": ["cloudformation:*StackRefactor*"], "Resource": team}],
    )("cloudformation")
    refactor_id = refactorer.create_stack_refactor(StackDefinitions=definitions)["StackRefactorId"]
    assert refactorer.describe_stack_refactor(StackRefactorId=refactor_id)["Status"] == "CREATE_COMPLETE"
    assert len(refactorer.list_stack_refactor_actions(StackRefactorId=refactor_id)["StackRefactorActions"]) == 1
    refactorer.execute_stack_refactor(StackRefactorId=refactor_id)
    assert root.describe_stack_refactor(StackRefactorId=refactor_id)["ExecutionStatus"] == "EXECUTE_COMPLETE"

    # Every stack a request involves is checked: one outside the policy's scope denies it.
    with_outside = definitions + [{"StackName": outside, "TemplateBody": json.dumps({"Resources": {"Four": parameter(f"/i4/{suffix}")}})}]
    error = error_of(lambda: refactorer.create_stack_refactor(StackDefinitions=with_outside))
    assert error["Code"] == "AccessDenied" and f"stack/{outside}/" in error["Message"]
    # A stack the refactor would create is checked as stack/<name>/*.
    new = [definitions[0], {"StackName": f"other-new-{suffix}", "TemplateBody": "{}"}]
    error = error_of(lambda: refactorer.create_stack_refactor(StackDefinitions=new, EnableStackCreation=True))
    assert f"stack/other-new-{suffix}/*" in error["Message"]
    # Describing another team's refactor is checked on its stacks.
    others = root.create_stack_refactor(StackDefinitions=with_outside[1:])["StackRefactorId"]
    error = error_of(lambda: refactorer.describe_stack_refactor(StackRefactorId=others))
    assert error["Code"] == "AccessDenied" and "cloudformation:DescribeStackRefactor" in error["Message"]
