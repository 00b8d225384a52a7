"""Mutation tests of the emulator's IAM enforcement for CloudFormation handlers (localaws/cfn_iam.py):
take one action away from the golden staging CloudFormationRole and the stack that needs it must
fail, naming that action in AWS's AccessDenied wording, and roll back.

Which actions: every action the emulator checks when it creates the resources of the non-bootstrap
golden staging stacks (localaws/handler_permissions.py applied to each resource's template
properties, the same data the server reads), kept when the role's statements grant it. For each,
the role is copied with its statements no longer granting the action (the exact action removed, a
wildcard covering it replaced by the other handler actions it covers) and one stack holding a
resource that needs it is created through the copy, its inputs wired from stacks deployed through
the unchanged role, as tests/localaws/test_golden_staging_iam.py deploys them.

The converse: an action the rules excuse for a resource (data/cloudformation-handler-rules.tsv,
`excuse` rows whose property the golden resource leaves unset) and that nothing else in its stack
needs can be taken away without failing that stack's deploy.

One server and one bootstrap (storage, iam, deployed by the caller) serve the whole module.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from test_golden_staging_iam import (  # noqa: F401 (staging is a fixture)
    ACCOUNT,
    BOOTSTRAP,
    DENIED,
    ENVIRONMENT,
    GOLDEN,
    REGION,
    create,
    delete,
    described,
    inputs_of,
    register_model_package,
    staging,
    stack_name,
)

from localaws import handler_permissions
from localaws.iam import matches

ROLE_LOGICAL_ID = "CloudFormationRole"
ROLE_OUTPUT = "CloudFormationRoleArn"
# What a resolved intrinsic function stands for when computing requests offline: its value only
# enters ARNs, and the actions are what matter here.
RESOLVED = "resolved"


class Resolved(yaml.SafeLoader):
    pass


Resolved.add_multi_constructor("!", lambda loader, suffix, node: RESOLVED)

DATA = handler_permissions.HandlerData()


def template(name: str) -> dict[str, Any]:
    return yaml.load((GOLDEN / f"{name}.yaml").read_text(), Loader=Resolved)


STACKS = sorted(path.stem for path in GOLDEN.glob("*.yaml") if path.stem not in BOOTSTRAP)
TEMPLATES = {name: template(name) for name in STACKS}


def create_requests(type_name: str, properties: dict[str, Any]) -> list[handler_permissions.Request]:
    """The IAM requests the emulator checks to create the resource (create and read handlers,
    after excuses), as handler_permissions computes them."""
    return DATA.requests(
        type_name,
        "create",
        properties,
        name=None,
        name_property=None,
        physical_id=RESOLVED,
        account=ACCOUNT,
        region=REGION,
        partition="aws",
    )


@dataclass(frozen=True)
class Need:
    """A resource of a golden stack whose creation the emulator checks an action for."""

    stack: str
    logical_id: str
    resource: str  # the request's resource, "*" when the action takes no resource


def needs() -> dict[str, list[Need]]:
    """action -> the resources needing it, over the non-bootstrap golden staging stacks."""
    found: dict[str, list[Need]] = {}
    for name in STACKS:
        for logical_id, resource in TEMPLATES[name]["Resources"].items():
            for request in create_requests(resource["Type"], resource.get("Properties") or {}):
                found.setdefault(request.action, []).append(Need(name, logical_id, request.resource or "?"))
    return found


NEEDS = needs()


def handler_actions() -> list[str]:
    """Every action a handler of a golden type may call (any operation, before excuses): what a
    wildcard taken out of the role is replaced by, less the one action removed."""
    found: dict[str, str] = {}
    for name in STACKS:
        for resource in TEMPLATES[name]["Resources"].values():
            for operation in handler_permissions.HANDLERS:
                for action in DATA.permissions(resource["Type"], operation) or []:
                    found.setdefault(action.lower(), action)
    return sorted(found.values(), key=str.lower)


HANDLER_ACTIONS = handler_actions()


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def grants(statement: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement covers the action (resources and conditions aside)."""
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return not any(matches(pattern, action, ignore_case=True) for pattern in as_list(statement["NotAction"]))
    return any(matches(pattern, action, ignore_case=True) for pattern in as_list(statement.get("Action")))


def role_statements() -> list[dict[str, Any]]:
    role = template("iam")["Resources"][ROLE_LOGICAL_ID]["Properties"]
    return [
        statement
        for policy in role.get("Policies") or []
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


ROLE_STATEMENTS = role_statements()


def granted(action: str) -> bool:
    return any(grants(statement, action) for statement in ROLE_STATEMENTS)


def without(document: dict[str, Any], action: str, others: list[str] = HANDLER_ACTIONS) -> dict[str, Any]:
    """A copy of the policy document whose Allow statements no longer grant `action`: the exact
    action dropped, a wildcard covering it replaced by the `others` it covers, an Allow with
    NotAction given the action as one more exception. A statement left without actions goes."""
    changed = copy.deepcopy(document)
    kept = []
    for statement in as_list(changed.get("Statement")):
        if not grants(statement, action):
            kept.append(statement)
            continue
        if "NotAction" in statement:
            statement["NotAction"] = [*as_list(statement["NotAction"]), action]
            kept.append(statement)
            continue
        actions: list[str] = []
        for pattern in as_list(statement["Action"]):
            if not matches(pattern, action, ignore_case=True):
                replacement = [pattern]
            elif pattern.lower() == action.lower():
                replacement = []
            else:
                replacement = [
                    other
                    for other in others
                    if other.lower() != action.lower() and matches(pattern, other, ignore_case=True)
                ]
            actions.extend(item for item in replacement if item.lower() not in {a.lower() for a in actions})
        if actions:
            statement["Action"] = actions
            kept.append(statement)
    changed["Statement"] = kept
    return changed


# --- what is mutated, and where --------------------------------------------------------------------


def prerequisites(name: str) -> list[str]:
    """The non-bootstrap stacks that must exist before `name` is created: those its inputs name and,
    for an endpoint, its model's pipeline stack (its ModelPackageArn is a package in the model
    package group that stack holds)."""
    found = {value.split(".")[0] for value in inputs_of(GOLDEN / f"{name}.yaml").values()}
    if name.startswith("endpoint-"):
        found.add("pipeline-" + name.removeprefix("endpoint-"))
    found -= set(BOOTSTRAP)
    for stack in list(found):
        found.update(prerequisites(stack))
    return sorted(found)


PREREQUISITES = {name: prerequisites(name) for name in STACKS}
NEEDED_BEFORE_OTHERS = {stack for name in STACKS for stack in PREREQUISITES[name]}


def exercising_stack(action: str) -> str:
    """The cheapest stack with a resource needing the action: fewest stacks to deploy first, then
    fewest resources."""
    return min(
        {need.stack for need in NEEDS[action]},
        key=lambda name: (len(PREREQUISITES[name]), len(TEMPLATES[name]["Resources"]), name),
    )


def mutation_cases() -> list[tuple[str, str]]:
    """(action, stack) for every checked action the role grants. The stacks others need come first,
    before they are deployed as someone's prerequisite."""
    cases = [(action, exercising_stack(action)) for action in NEEDS if granted(action)]
    return sorted(cases, key=lambda case: (case[1] not in NEEDED_BEFORE_OTHERS, case[1], case[0].lower()))


MUTATIONS = mutation_cases()


def excused_cases() -> list[tuple[str, str, list[str]]]:
    """(stack, action, resources): an action the role grants that the rules excuse for those
    resources of the stack, and that no resource of the stack needs."""
    cases = []
    for name in STACKS:
        needed_here = {
            action.lower() for action, found in NEEDS.items() for need in found if need.stack == name
        }
        excused: dict[str, list[str]] = {}
        for logical_id, resource in TEMPLATES[name]["Resources"].items():
            checked = {
                request.action.lower()
                for request in create_requests(resource["Type"], resource.get("Properties") or {})
            }
            for action in DATA.permissions(resource["Type"], "create") or []:
                if action.lower() not in checked:
                    excused.setdefault(action, []).append(logical_id)
        for action, resources in sorted(excused.items()):
            if action.lower() not in needed_here and granted(action):
                cases.append((name, action, resources))
    return cases


EXCUSED = excused_cases()


# --- the deployed platform -------------------------------------------------------------------------


# Resources a stack retains (DeletionPolicy: Retain), removed through their service's API after
# the stack is gone so that the next deploy of the stack can create them again.
def remove_log_group(aws, physical_id: str) -> None:
    aws("logs").delete_log_group(logGroupName=physical_id)


def remove_model_package_group(aws, physical_id: str) -> None:
    sagemaker = aws("sagemaker")
    name = physical_id.rsplit("/", 1)[-1]
    for package in sagemaker.list_model_packages(ModelPackageGroupName=name).get("ModelPackageSummaryList", []):
        sagemaker.delete_model_package(ModelPackageName=package["ModelPackageArn"])
    sagemaker.delete_model_package_group(ModelPackageGroupName=name)


def retained(name: str) -> set[str]:
    """The resources of a stack that its deletion (or a rollback) leaves in place."""
    return {
        logical_id
        for logical_id, resource in TEMPLATES[name]["Resources"].items()
        if resource.get("DeletionPolicy") == "Retain"
    }


RETAINED_REMOVERS = {
    "AWS::Logs::LogGroup": remove_log_group,
    "AWS::SageMaker::ModelPackageGroup": remove_model_package_group,
}


@dataclass
class ScratchRole:
    name: str
    arn: str


class Platform:
    """The bootstrap, deployed once by the caller, and the stacks deployed through the unchanged
    CloudFormation role as other stacks' prerequisites."""

    def __init__(self, aws):
        self.aws = aws
        self.outputs: dict[str, dict[str, str]] = {}
        for name in BOOTSTRAP:
            self.deploy(name, None)
        self.role_arn = self.outputs["iam"][ROLE_OUTPUT]
        self.role_name = self.role_arn.rsplit("/", 1)[-1]
        iam = aws("iam")
        self.role = iam.get_role(RoleName=self.role_name)["Role"]
        assert not iam.list_attached_role_policies(RoleName=self.role_name)["AttachedPolicies"], (
            "the role's managed policies would need mutating too"
        )
        self.policies = {
            policy: iam.get_role_policy(RoleName=self.role_name, PolicyName=policy)["PolicyDocument"]
            for policy in iam.list_role_policies(RoleName=self.role_name)["PolicyNames"]
        }
        self.scratch_count = 0

    def parameters(self, name: str) -> dict[str, str]:
        """The stack's inputs from the deployed stacks (deploying its prerequisites first)."""
        for stack in PREREQUISITES.get(name, []):
            self.ensure(stack)
        found = {
            key: self.outputs[value.split(".")[0]][value.split(".")[1]]
            for key, value in inputs_of(GOLDEN / f"{name}.yaml").items()
        }
        if name.startswith("endpoint-"):
            found["ModelPackageArn"] = register_model_package(self.aws, f"{ENVIRONMENT}-{name.split('-', 1)[1]}")
        return found

    def deploy(self, name: str, role_arn: str | None) -> None:
        status = create(self.aws, name, self.parameters(name), role_arn)
        assert status == "CREATE_COMPLETE", f"{name}: {status}: {resource_failures(self.aws, stack_name(name))}"
        self.outputs[name] = {
            item["OutputKey"]: item["OutputValue"]
            for item in described(self.aws, stack_name(name)).get("Outputs") or []
        }

    def ensure(self, name: str) -> None:
        if name not in self.outputs:
            self.deploy(name, self.role_arn)

    def clear(self, name: str) -> None:
        """Makes sure the stack does not exist (deleting the stacks that need it first)."""
        if name not in self.outputs:
            return
        for other in list(self.outputs):
            if name in PREREQUISITES.get(other, []):
                self.clear(other)
        self.remove(name)
        del self.outputs[name]

    def remove(self, name: str) -> None:
        """Deletes the stack, if it exists, through the unchanged role, then what it retained."""
        cloudformation = self.aws("cloudformation")
        try:
            stack_id = described(self.aws, stack_name(name))["StackId"]
        except ClientError:
            return
        created = {
            event["LogicalResourceId"]: event["PhysicalResourceId"]
            for event in cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"]
            if event["ResourceStatus"] == "CREATE_COMPLETE" and event.get("PhysicalResourceId")
        }
        status = delete(self.aws, name, self.role_arn)
        assert status == "DELETE_COMPLETE", f"{name}: {status}: {resource_failures(self.aws, stack_id)}"
        for logical_id in retained(name):
            if logical_id in created:
                resource_type = TEMPLATES[name]["Resources"][logical_id]["Type"]
                remover = RETAINED_REMOVERS.get(resource_type)
                assert remover is not None, f"{name} retains a {resource_type}: add its remover"
                remover(self.aws, created[logical_id])

    def role_without(self, action: str) -> ScratchRole:
        """A copy of the CloudFormation role (same path, trust and policies) that is not granted
        `action`."""
        iam = self.aws("iam")
        self.scratch_count += 1
        name = f"{self.role_name}-m{self.scratch_count}"
        arn = iam.create_role(
            RoleName=name,
            Path=self.role["Path"],
            AssumeRolePolicyDocument=json.dumps(self.role["AssumeRolePolicyDocument"]),
        )["Role"]["Arn"]
        changed = False
        for policy, document in self.policies.items():
            mutated = without(document, action)
            changed = changed or mutated != document
            if mutated["Statement"]:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(mutated))
        assert changed, f"the deployed role does not grant {action}"
        return ScratchRole(name, arn)

    def drop(self, role: ScratchRole) -> None:
        iam = self.aws("iam")
        for policy in iam.list_role_policies(RoleName=role.name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role.name, PolicyName=policy)
        iam.delete_role(RoleName=role.name)


def resource_failures(aws, stack: str) -> list[dict[str, Any]]:
    """The stack's failed resource events, oldest first."""
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [
        event
        for event in reversed(events)
        if event["ResourceStatus"].endswith("_FAILED") and event["ResourceType"] != "AWS::CloudFormation::Stack"
    ]


@pytest.fixture(scope="module")
def platform(staging) -> Platform:
    return Platform(functools.lru_cache(maxsize=None)(staging))


# --- the tests -------------------------------------------------------------------------------------


def test_the_role_and_the_stacks_give_actions_to_mutate_and_an_excused_one():
    """The derivation found something: guards the parametrized tests against silently testing
    nothing (e.g. after a change to the templates or the emulator's data)."""
    assert len(MUTATIONS) >= 20, MUTATIONS
    assert EXCUSED, "no excused action the role grants applies to a golden staging resource"
    checked_not_granted = sorted(action for action in NEEDS if not granted(action))
    assert checked_not_granted == [], "the role lacks these (test_golden_staging_iam.py names where)"


def test_a_wildcard_is_replaced_by_the_other_actions_it_covers():
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sagemaker:Describe*", "sagemaker:AddTags"], "Resource": "*"},
            {"Effect": "Allow", "Action": "sagemaker:DescribeModel", "Resource": "arn:x"},
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "sagemaker:DescribeModel", "Resource": "arn:y"},
        ],
    }
    others = ["sagemaker:DescribeModel", "sagemaker:DescribeEndpoint", "sagemaker:DescribePipeline", "sns:CreateTopic"]
    mutated = without(document, "sagemaker:describemodel", others)
    assert mutated["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["sagemaker:DescribeEndpoint", "sagemaker:DescribePipeline", "sagemaker:AddTags"],
            "Resource": "*",
        },
        {"Effect": "Allow", "NotAction": ["iam:*", "sagemaker:describemodel"], "Resource": "*"},
        {"Effect": "Deny", "Action": "sagemaker:DescribeModel", "Resource": "arn:y"},
    ]
    assert not any(grants(statement, "sagemaker:DescribeModel") for statement in mutated["Statement"])
    assert all(
        any(grants(statement, action) for statement in mutated["Statement"])
        for action in ("sagemaker:DescribeEndpoint", "sagemaker:DescribePipeline", "sagemaker:AddTags")
    )


@pytest.mark.parametrize(("action", "stack"), MUTATIONS, ids=[f"{action}@{stack}" for action, stack in MUTATIONS])
def test_a_stack_fails_naming_the_action_taken_from_the_role(platform: Platform, action: str, stack: str):
    aws = platform.aws
    platform.clear(stack)
    parameters = platform.parameters(stack)
    role = platform.role_without(action)
    try:
        status = create(aws, stack, parameters, role.arn)
        stack_id = described(aws, stack_name(stack))["StackId"]
        failed = resource_failures(aws, stack_id)
        events = list(reversed(aws("cloudformation").describe_stack_events(StackName=stack_id)["StackEvents"]))
    finally:
        platform.remove(stack)
        platform.drop(role)

    assert status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED"), [event.get("ResourceStatusReason") for event in failed]
    assert failed, "no resource failed"
    first = failed[0]
    assert first["ResourceStatus"] == "CREATE_FAILED"
    reason = first.get("ResourceStatusReason") or ""
    denied = DENIED.match(reason)
    assert denied, reason
    assert denied["action"] == action, reason
    assert f":assumed-role/{role.name}/AWSCloudFormation " in reason, reason
    needing = [need for need in NEEDS[action] if need.stack == stack]
    assert first["LogicalResourceId"] in {need.logical_id for need in needing}, reason
    resources = {need.resource for need in needing}
    if "*" not in resources:
        assert denied["resource"], f"no resource named: {reason}"
    elif resources == {"*"}:
        assert not denied["resource"], reason
    assert re.search(r"\(Service: \S+, Status Code: \d+, Request ID: \S+\)$", reason), reason
    stuck: set[str] = set()
    # Rolled back: the stack's events end in ROLLBACK_COMPLETE and every resource created was
    # deleted. The rollback acts as the same role: when a resource created before the failure needs
    # the action to be deleted, it fails too (ROLLBACK_FAILED), naming the same action.
    stack_statuses = [
        event["ResourceStatus"] for event in events if event["ResourceType"] == "AWS::CloudFormation::Stack"
    ]
    assert stack_statuses[-2:] == ["ROLLBACK_IN_PROGRESS", status], stack_statuses
    not_deleted = [event for event in failed[1:] if event["ResourceStatus"] == "DELETE_FAILED"]
    assert [event for event in failed[1:] if event["ResourceStatus"] != "DELETE_FAILED"] == []
    assert bool(not_deleted) == (status == "ROLLBACK_FAILED"), [
        (event["LogicalResourceId"], event["ResourceStatus"], event.get("ResourceStatusReason")) for event in failed
    ]
    for event in not_deleted:
        reason = event.get("ResourceStatusReason") or ""
        denied = DENIED.match(reason)
        assert denied and denied["action"] == action, reason
        assert f":assumed-role/{role.name}/AWSCloudFormation " in reason, reason
        deleting = DATA.permissions(event["ResourceType"], "delete") or []
        assert action.lower() in {item.lower() for item in deleting}, reason
        stuck.add(event["LogicalResourceId"])
    last = {}
    for event in events:
        if event["ResourceType"] != "AWS::CloudFormation::Stack":
            last[event["LogicalResourceId"]] = event["ResourceStatus"]
    # (a retained resource stays; the emulator records no DELETE_SKIPPED for it, as moto's rollback
    # skips it before its handler sees it)
    left = {
        logical_id: status
        for logical_id, status in last.items()
        if status not in ("CREATE_FAILED", "DELETE_COMPLETE") and logical_id not in retained(stack) | stuck
    }
    assert left == {}, "not rolled back"


@pytest.mark.parametrize(
    ("stack", "action", "resources"), EXCUSED, ids=[f"{action}@{stack}" for stack, action, _ in EXCUSED]
)
def test_a_stack_deploys_without_an_action_its_resources_are_excused(
    platform: Platform, stack: str, action: str, resources: list[str]
):
    aws = platform.aws
    platform.clear(stack)
    parameters = platform.parameters(stack)
    role = platform.role_without(action)
    try:
        status = create(aws, stack, parameters, role.arn)
        stack_id = described(aws, stack_name(stack))["StackId"]
        failed = resource_failures(aws, stack_id)
    finally:
        platform.remove(stack)
        platform.drop(role)
    assert status == "CREATE_COMPLETE", [event.get("ResourceStatusReason") for event in failed]
