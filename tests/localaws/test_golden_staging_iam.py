"""The rendered golden staging stacks deployed as the tool deploys them: `storage` and `iam` (the
bootstrap) by the caller, every other stack through change sets with RoleARN = the
CloudFormationRole the iam stack creates, then deleted again through that role. The emulator checks
each resource's handler calls against the role (localaws/cfn_iam.py), so what the role lacks fails
here as it would on AWS.

A stack stops at its first refused call. To name every permission the role lacks, each refused
stack is retried with a scratch copy of the role (same trust and policies) that is granted, one at a
time, exactly the calls found refused, until the stack goes through; `missing_permissions` collects
them all."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from conftest import REPO_ROOT, run_script, start_server

ACCOUNT = "222222222222"
REGION = "eu-west-1"
ENVIRONMENT = "mlops-images-staging"
GOLDEN = REPO_ROOT / "tests" / "golden" / "staging"
BOOTSTRAP = ("storage", "iam")
DENIED = re.compile(
    r"^User: \S+ is not authorized to perform: (?P<action>\S+)(?: on resource: (?P<resource>\S+))? "
    r"(?:because|with)"
)
MAX_ATTEMPTS = 40


class Loader(yaml.SafeLoader):
    pass


Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def inputs_of(path: Path) -> dict[str, str]:
    template = yaml.load(path.read_text(), Loader=Loader)
    return ((template.get("Metadata") or {}).get("MlopsInfra") or {}).get("Inputs") or {}


def deploy_order() -> list[str]:
    """Stacks in the order their inputs allow (the bootstrap first)."""
    names = sorted(path.stem for path in GOLDEN.glob("*.yaml"))
    needs = {name: {value.split(".")[0] for value in inputs_of(GOLDEN / f"{name}.yaml").values()} for name in names}
    order = list(BOOTSTRAP)
    while len(order) < len(names):
        ready = [name for name in names if name not in order and needs[name] <= set(order)]
        assert ready, f"input cycle among {set(names) - set(order)}"
        order.extend(ready)
    return order


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("local-aws-staging")
    previous = os.environ.get("MOTO_ACCOUNT_ID")
    os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT  # the golden templates name staging's account
    try:
        url = start_server(state_dir)
    finally:
        if previous is None:
            os.environ.pop("MOTO_ACCOUNT_ID", None)
        else:
            os.environ["MOTO_ACCOUNT_ID"] = previous
    try:
        yield lambda service: boto3.client(
            service,
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        assert run_script(state_dir, "stop").returncode == 0


def stack_name(name: str) -> str:
    return f"{ENVIRONMENT}-{name}"


def described(aws, stack: str) -> dict[str, Any]:
    return aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]


def failures(aws, stack: str) -> list[str]:
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [
        f"{event['LogicalResourceId']} ({event['ResourceType']}): {event.get('ResourceStatusReason')}"
        for event in events
        if event["ResourceStatus"] in ("CREATE_FAILED", "DELETE_FAILED", "UPDATE_FAILED")
        and event["ResourceType"] != "AWS::CloudFormation::Stack"
    ]


def upload_function_packages(aws, name: str) -> None:
    """Puts each Lambda function's package (the router's handler.py, zipped) where the template
    names it, as the tool uploads it before deploying the stack."""
    import io
    import zipfile

    template = yaml.load((GOLDEN / f"{name}.yaml").read_text(), Loader=Loader)
    for resource in (template.get("Resources") or {}).values():
        code = (resource.get("Properties") or {}).get("Code") or {}
        if resource.get("Type") != "AWS::Lambda::Function" or not isinstance(code.get("S3Key"), str):
            continue
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.write(REPO_ROOT / "router" / "handler.py", "handler.py")
        aws("s3").put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=package.getvalue())


def create(aws, name: str, parameters: dict[str, str], role_arn: str | None) -> str:
    """Creates the stack through a change set, as the tool does; returns its final status."""
    upload_function_packages(aws, name)
    cloudformation = aws("cloudformation")
    arguments: dict[str, Any] = {
        "StackName": stack_name(name),
        "ChangeSetName": "deploy",
        "ChangeSetType": "CREATE",
        "TemplateBody": (GOLDEN / f"{name}.yaml").read_text(),
        "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    if role_arn:
        arguments["RoleARN"] = role_arn
    cloudformation.create_change_set(**arguments)
    cloudformation.execute_change_set(StackName=stack_name(name), ChangeSetName="deploy")
    return described(aws, stack_name(name))["StackStatus"]


def delete(aws, name: str, role_arn: str | None) -> str:
    arguments = {"StackName": stack_name(name)}
    if role_arn:
        arguments["RoleARN"] = role_arn
    aws("cloudformation").delete_stack(**arguments)
    try:
        return described(aws, stack_name(name))["StackStatus"]
    except Exception:
        return "DELETE_COMPLETE"


def register_model_package(aws, group: str) -> str:
    """An approved model package in the registry, so the endpoint stacks create their endpoints."""
    return aws("sagemaker").create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/images:1",
                    "ModelDataUrl": f"s3://{ENVIRONMENT}-artifacts-{ACCOUNT}/models/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]


class Scratch:
    """A copy of the CloudFormation role that is granted each call found refused."""

    def __init__(self, aws, role_name: str):
        iam = aws("iam")
        role = iam.get_role(RoleName=role_name)["Role"]
        self.iam = iam
        self.name = f"{role_name}-scratch"
        self.arn = iam.create_role(
            RoleName=self.name,
            Path=role["Path"],
            AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
        )["Role"]["Arn"]
        for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]
            iam.put_role_policy(RoleName=self.name, PolicyName=policy, PolicyDocument=json.dumps(document))
        self.granted: list[tuple[str, str]] = []

    def grant(self, action: str, resource: str) -> None:
        self.granted.append((action, resource))
        self.iam.put_role_policy(
            RoleName=self.name,
            PolicyName="found-missing",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": action, "Resource": resource}
                        for action, resource in self.granted
                    ],
                }
            ),
        )


def refused_call(reason: str) -> tuple[str, str] | None:
    """(action, resource) of a refused call; a generated name's random suffix becomes `*` (a retry
    generates another)."""
    match = DENIED.match(reason.split(": ", 1)[1] if ": " in reason else reason)
    if not match:
        return None
    return match["action"], re.sub(r"-[A-Za-z0-9]{12}$", "-*", match["resource"] or "*")


@pytest.fixture(scope="module")
def deployment(staging):
    """Deploys and deletes every golden staging stack; returns what went wrong."""
    aws = staging
    outputs: dict[str, dict[str, str]] = {}
    found: dict[tuple[str, str, str, str], str] = {}  # (phase, stack, action, resource) -> resource line
    other: list[str] = []
    role_arn = scratch = None
    order = deploy_order()

    def record(phase: str, name: str, reasons: list[str]) -> bool:
        """Records the refused calls in the reasons; False when a reason is something else."""
        only_denials = bool(reasons)
        for reason in reasons:
            call = refused_call(reason)
            if call is None:
                other.append(f"{phase} {name}: {reason}")
                only_denials = False
            else:
                found.setdefault((phase, name, *call), reason.split(": ", 1)[0])
        return only_denials

    for name in order:
        template_inputs = inputs_of(GOLDEN / f"{name}.yaml")
        parameters = {key: outputs[value.split(".")[0]][value.split(".")[1]] for key, value in template_inputs.items()}
        if name.startswith("endpoint-"):
            parameters["ModelPackageArn"] = register_model_package(aws, f"{ENVIRONMENT}-{name.split('-', 1)[1]}")
        deployer = None if name in BOOTSTRAP else role_arn
        status = create(aws, name, parameters, deployer)
        attempts = 0
        while status != "CREATE_COMPLETE" and deployer is not None and attempts < MAX_ATTEMPTS:
            reasons = failures(aws, stack_name(name))
            calls = [refused_call(reason) for reason in reasons]
            if not record("create", name, reasons):
                break
            for call in calls:
                scratch.grant(*call)
            assert delete(aws, name, None) == "DELETE_COMPLETE"
            deployer, attempts = scratch.arn, attempts + 1
            status = create(aws, name, parameters, deployer)
        if status != "CREATE_COMPLETE":
            other.append(f"create {name}: {status}: {failures(aws, stack_name(name))}")
            pytest.fail(f"{name} could not be created: {other}")
        outputs[name] = {
            item["OutputKey"]: item["OutputValue"] for item in described(aws, stack_name(name)).get("Outputs") or []
        }
        if name == "iam":
            role_arn = outputs["iam"]["CloudFormationRoleArn"]
            scratch = Scratch(aws, role_arn.rsplit("/", 1)[-1])

    for name in reversed(order):
        if name in BOOTSTRAP:
            continue
        deployer, attempts = role_arn, 0
        status = delete(aws, name, deployer)
        while status != "DELETE_COMPLETE" and attempts < MAX_ATTEMPTS:
            reasons = failures(aws, stack_name(name))[:1]
            if not record("delete", name, reasons):
                break
            scratch.grant(*refused_call(reasons[0]))
            deployer, attempts = scratch.arn, attempts + 1
            status = delete(aws, name, deployer)
        if status != "DELETE_COMPLETE":
            other.append(f"delete {name}: {status}")
    return {"missing": found, "other": other}


def describe_missing(found: dict[tuple[str, str, str, str], str]) -> str:
    lines = [
        f"{phase} {stack}: {action} on {resource} [{resource_line}]"
        for (phase, stack, action, resource), resource_line in sorted(found.items())
    ]
    return "\n".join(lines)


def test_every_golden_staging_stack_deploys_and_deletes_apart_from_refused_calls(deployment):
    assert deployment["other"] == []


def test_the_cloudformation_role_allows_every_call_the_handlers_make(deployment):
    assert not deployment["missing"], "missing from the CloudFormation role:\n" + describe_missing(
        deployment["missing"]
    )
