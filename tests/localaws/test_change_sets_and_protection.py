"""Change sets belong to their stack, and termination protection, as on AWS.

ListChangeSets lists the named stack's change sets only; executing one deletes the stack's other
change sets ("When you execute a change set, CloudFormation deletes all other change sets
associated with the stack because they aren't valid for the updated stack", API reference,
ExecuteChangeSet), and the executed one stays listed as EXECUTE_COMPLETE. UpdateTerminationProtection
sets EnableTerminationProtection, and DeleteStack refuses a protected stack.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def topics(*names: str) -> str:
    return json.dumps({"Resources": {name: {"Type": "AWS::SNS::Topic"} for name in names}})


def listed(cloudformation, stack: str) -> list[tuple[str, str, str]]:
    """(name, Status, ExecutionStatus) of each change set ListChangeSets gives for the stack."""
    return [
        (summary["ChangeSetName"], summary["Status"], summary["ExecutionStatus"])
        for summary in cloudformation.list_change_sets(StackName=stack)["Summaries"]
    ]


def refused(call) -> dict[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]


def test_list_change_sets_lists_only_the_named_stacks(aws):
    cloudformation = aws("cloudformation")
    first, second = unique("listed-a"), unique("listed-b")
    created = cloudformation.create_change_set(
        StackName=first,
        ChangeSetName="create",
        ChangeSetType="CREATE",
        TemplateBody=topics("Topic"),
        Description="first stack",
    )
    cloudformation.create_change_set(
        StackName=second, ChangeSetName="create", ChangeSetType="CREATE", TemplateBody=topics("Topic")
    )

    [summary] = cloudformation.list_change_sets(StackName=first)["Summaries"]
    assert summary["StackId"] == created["StackId"]
    assert summary["StackName"] == first
    assert summary["ChangeSetId"] == created["Id"]
    assert summary["ChangeSetName"] == "create"
    assert (summary["Status"], summary["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    assert summary["Description"] == "first stack"
    assert summary["IncludeNestedStacks"] is False
    assert "CreationTime" in summary
    # By the stack's id too.
    assert listed(cloudformation, created["StackId"]) == [("create", "CREATE_COMPLETE", "AVAILABLE")]
    [other] = cloudformation.list_change_sets(StackName=second)["Summaries"]
    assert other["StackName"] == second and other["ChangeSetId"] != created["Id"]

    error = refused(lambda: cloudformation.list_change_sets(StackName=unique("missing")))
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("Stack [") and error["Message"].endswith("] does not exist")


def test_executing_a_change_set_deletes_the_stacks_other_change_sets(aws):
    cloudformation = aws("cloudformation")
    stack, bystander = unique("executed"), unique("bystander")
    created = cloudformation.create_change_set(
        StackName=stack, ChangeSetName="create", ChangeSetType="CREATE", TemplateBody=topics("A")
    )
    cloudformation.create_change_set(
        StackName=bystander, ChangeSetName="create", ChangeSetType="CREATE", TemplateBody=topics("A")
    )
    cloudformation.execute_change_set(ChangeSetName=created["Id"])
    assert listed(cloudformation, stack) == [("create", "CREATE_COMPLETE", "EXECUTE_COMPLETE")]

    first = cloudformation.create_change_set(StackName=stack, ChangeSetName="first", TemplateBody=topics("A", "B"))
    cloudformation.create_change_set(StackName=stack, ChangeSetName="second", TemplateBody=topics("A", "C"))
    # No changes: the change set is FAILED, and listed until something removes it.
    cloudformation.create_change_set(StackName=stack, ChangeSetName="same", TemplateBody=topics("A"))
    assert listed(cloudformation, stack) == [
        ("create", "CREATE_COMPLETE", "EXECUTE_COMPLETE"),
        ("first", "CREATE_COMPLETE", "AVAILABLE"),
        ("second", "CREATE_COMPLETE", "AVAILABLE"),
        ("same", "FAILED", "UNAVAILABLE"),
    ]

    cloudformation.execute_change_set(ChangeSetName=first["Id"])
    assert listed(cloudformation, stack) == [("first", "CREATE_COMPLETE", "EXECUTE_COMPLETE")]
    described = cloudformation.describe_change_set(ChangeSetName=first["Id"])
    assert described["ExecutionStatus"] == "EXECUTE_COMPLETE"
    # Another stack's change sets are not touched.
    assert listed(cloudformation, bystander) == [("create", "CREATE_COMPLETE", "AVAILABLE")]

    # A deleted stack's change sets go with it.
    stack_id = created["StackId"]
    cloudformation.delete_stack(StackName=stack)
    assert cloudformation.list_change_sets(StackName=stack_id)["Summaries"] == []
    assert refused(lambda: cloudformation.list_change_sets(StackName=stack))["Code"] == "ValidationError"


def test_termination_protection_blocks_deletion_until_it_is_turned_off(aws):
    cloudformation = aws("cloudformation")
    stack = unique("protected")
    stack_id = cloudformation.create_stack(StackName=stack, TemplateBody=topics("Topic"))["StackId"]

    def protection() -> bool:
        return cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["EnableTerminationProtection"]

    assert protection() is False
    answer = cloudformation.update_termination_protection(StackName=stack, EnableTerminationProtection=True)
    assert answer["StackId"] == stack_id
    assert protection() is True

    for name in (stack, stack_id):
        error = refused(lambda: cloudformation.delete_stack(StackName=name))
        assert error["Code"] == "ValidationError"
        assert error["Message"] == f"Stack [{name}] cannot be deleted while TerminationProtection is enabled"
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

    cloudformation.update_termination_protection(StackName=stack_id, EnableTerminationProtection=False)
    assert protection() is False
    cloudformation.delete_stack(StackName=stack)
    [deleted] = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    assert deleted["StackStatus"] == "DELETE_COMPLETE"


def test_a_stack_created_protected_cannot_be_deleted(aws):
    cloudformation = aws("cloudformation")
    stack = unique("created-protected")
    cloudformation.create_stack(StackName=stack, TemplateBody=topics("Topic"), EnableTerminationProtection=True)
    assert refused(lambda: cloudformation.delete_stack(StackName=stack))["Code"] == "ValidationError"
    # Created explicitly unprotected, it can.
    other = unique("created-unprotected")
    cloudformation.create_stack(StackName=other, TemplateBody=topics("Topic"), EnableTerminationProtection=False)
    cloudformation.delete_stack(StackName=other)
    cloudformation.update_termination_protection(StackName=stack, EnableTerminationProtection=False)
    cloudformation.delete_stack(StackName=stack)


def test_update_termination_protection_of_a_missing_stack_is_a_validation_error(aws):
    name = unique("missing")
    error = refused(
        lambda: aws("cloudformation").update_termination_protection(StackName=name, EnableTerminationProtection=True)
    )
    assert (error["Code"], error["Message"]) == ("ValidationError", f"Stack [{name}] does not exist")
