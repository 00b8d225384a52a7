"""IAM enforcement on the emulator: CloudFormation acts as the stack's role (or the caller), its
handlers' calls are checked against that identity's policies, and a role passed to CloudFormation
must be passable and trust it. What a handler calls comes from data/ (handler_permissions.py)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "us-east-1"
TRUST_CLOUDFORMATION = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# What CloudFormation's AWS::SSM::Parameter handler calls (data/cloudformation-handler-permissions.tsv).
SSM_PARAMETER = [
    "ssm:PutParameter",
    "ssm:AddTagsToResource",
    "ssm:GetParameters",
    "ssm:ListTagsForResource",
    "ssm:RemoveTagsFromResource",
    "ssm:DeleteParameter",
]
REASON = re.compile(
    r"^User: (?P<user>\S+) is not authorized to perform: (?P<action>\S+)"
    r"(?: on resource: (?P<resource>\S+))? (?P<why>because no identity-based policy allows the "
    r"(?P=action) action|with an explicit deny in an identity-based policy|because no permissions "
    r"boundary allows the (?P=action) action) \(Service: \w+, Status Code: \d+, Request ID: [0-9a-f-]+\)$"
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def allow(actions: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def make_role(
    aws,
    statements: list[dict[str, Any]],
    trust: dict[str, Any] = TRUST_CLOUDFORMATION,
    name: str | None = None,
    boundary: str | None = None,
) -> str:
    name = name or unique("role")
    arguments = {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(trust)}
    if boundary:
        arguments["PermissionsBoundary"] = boundary
    arn = aws("iam").create_role(**arguments)["Role"]["Arn"]
    if statements:
        aws("iam").put_role_policy(
            RoleName=name,
            PolicyName="permissions",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return arn


def set_policy(aws, role_arn: str, statements: list[dict[str, Any]]) -> None:
    aws("iam").put_role_policy(
        RoleName=role_arn.rsplit("/", 1)[-1],
        PolicyName="permissions",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


def parameter_template(name: str, value: str = "v", **extra: Any) -> str:
    return json.dumps(
        {
            "Resources": {
                "Parameter": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": name, "Type": "String", "Value": value, **extra},
                }
            }
        }
    )


def status(aws, stack: str) -> str:
    return aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def failure(aws, stack: str, logical_id: str, suffix: str = "_FAILED") -> str:
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    reasons = [
        event.get("ResourceStatusReason", "")
        for event in events
        if event["LogicalResourceId"] == logical_id and event["ResourceStatus"].endswith(suffix)
    ]
    assert reasons, f"no {suffix} event for {logical_id}: {events}"
    return reasons[0]  # the newest


def parameter_exists(aws, name: str) -> bool:
    try:
        aws("ssm").get_parameter(Name=name)
        return True
    except ClientError:
        return False


def client_as(local_aws, credentials: dict[str, str], service: str):
    return boto3.client(
        service,
        endpoint_url=local_aws.url,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def assume(aws, role_arn: str) -> dict[str, str]:
    return aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="tester")["Credentials"]


# --- handlers act as the stack's role ---------------------------------------------------------------


def test_a_missing_permission_fails_the_resource_with_aws_reason_and_rolls_back(aws):
    role = make_role(aws, [allow([a for a in SSM_PARAMETER if a != "ssm:PutParameter"])])
    stack, name = unique("missing"), unique("param")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=parameter_template(name), RoleARN=role
    )
    assert status(aws, stack) == "ROLLBACK_COMPLETE"
    reason = failure(aws, stack, "Parameter", "CREATE_FAILED")
    match = REASON.match(reason)
    assert match, reason
    assert match["user"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[-1]}/AWSCloudFormation"
    assert match["action"] == "ssm:PutParameter"
    assert match["why"].startswith("because no identity-based policy allows")
    assert not parameter_exists(aws, name)


def test_with_every_permission_the_stack_is_created_updated_and_deleted(aws):
    role = make_role(aws, [allow(SSM_PARAMETER)])
    stack, name = unique("granted"), unique("param")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE"
    assert aws("ssm").get_parameter(Name=name)["Parameter"]["Value"] == "v"
    cloudformation.update_stack(StackName=stack, TemplateBody=parameter_template(name, "w"), RoleARN=role)
    assert status(aws, stack) == "UPDATE_COMPLETE"
    cloudformation.delete_stack(StackName=stack, RoleARN=role)
    assert not parameter_exists(aws, name)


def test_update_and_delete_need_their_handlers_permissions(aws):
    role = make_role(aws, [allow(SSM_PARAMETER)])
    stack, name = unique("lifecycle"), unique("param")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    set_policy(aws, role, [allow([a for a in SSM_PARAMETER if a != "ssm:PutParameter"])])
    cloudformation.update_stack(StackName=stack, TemplateBody=parameter_template(name, "w"), RoleARN=role)
    assert status(aws, stack) == "UPDATE_ROLLBACK_COMPLETE"
    assert REASON.match(failure(aws, stack, "Parameter", "UPDATE_FAILED"))["action"] == "ssm:PutParameter"
    assert aws("ssm").get_parameter(Name=name)["Parameter"]["Value"] == "v"
    set_policy(aws, role, [allow([a for a in SSM_PARAMETER if a != "ssm:DeleteParameter"])])
    cloudformation.delete_stack(StackName=stack, RoleARN=role)
    assert status(aws, stack) == "DELETE_FAILED"
    assert REASON.match(failure(aws, stack, "Parameter", "DELETE_FAILED"))["action"] == "ssm:DeleteParameter"
    assert parameter_exists(aws, name)


def test_an_explicit_deny_wins(aws):
    role = make_role(
        aws,
        [allow("ssm:*"), {"Effect": "Deny", "Action": "ssm:PutParameter", "Resource": "*"}],
    )
    stack, name = unique("denied"), unique("param")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    assert status(aws, stack) == "ROLLBACK_COMPLETE"
    match = REASON.match(failure(aws, stack, "Parameter", "CREATE_FAILED"))
    assert match["action"] == "ssm:PutParameter"
    assert match["why"] == "with an explicit deny in an identity-based policy"


def test_wildcards_and_case_insensitive_actions_grant(aws):
    role = make_role(aws, [allow(["SSM:Put*", "ssm:?etParameters", "ssm:*tags*", "ssm:DeleteParameter"])])
    stack, name = unique("wildcards"), unique("param")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE", failure(aws, stack, "Parameter")


def test_not_action_grants_everything_else_and_nothing_it_names(aws):
    everything_but_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    role = make_role(aws, [everything_but_iam])
    stack, name = unique("notaction"), unique("param")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE"

    role = make_role(aws, [{"Effect": "Allow", "NotAction": "ssm:Put*", "Resource": "*"}])
    stack = unique("notaction")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=role
    )
    assert REASON.match(failure(aws, stack, "Parameter", "CREATE_FAILED"))["action"] == "ssm:PutParameter"


def test_resource_patterns_scope_what_is_allowed(aws):
    # NotResource: allowed on every resource but those named.
    role = make_role(aws, [{"Effect": "Allow", "Action": "ssm:*", "NotResource": "arn:aws:ssm:*:*:parameter/other-*"}])
    stack, name = unique("notresource"), unique("param")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE"


def test_a_permissions_boundary_must_allow_it_too(aws):
    boundary = aws("iam").create_policy(
        PolicyName=unique("boundary"),
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [allow([a for a in SSM_PARAMETER if a != "ssm:PutParameter"])]}
        ),
    )["Policy"]["Arn"]
    role = make_role(aws, [allow("ssm:*")], boundary=boundary)
    stack = unique("boundary")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=role
    )
    match = REASON.match(failure(aws, stack, "Parameter", "CREATE_FAILED"))
    assert match["action"] == "ssm:PutParameter"
    assert match["why"] == "because no permissions boundary allows the ssm:PutParameter action"


def test_attached_managed_policies_count(aws):
    policy = aws("iam").create_policy(
        PolicyName=unique("managed"),
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow(SSM_PARAMETER)]}),
    )["Policy"]["Arn"]
    role = make_role(aws, [])
    aws("iam").attach_role_policy(RoleName=role.rsplit("/", 1)[-1], PolicyArn=policy)
    stack = unique("managed")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=role
    )
    assert status(aws, stack) == "CREATE_COMPLETE"


def test_the_stack_remembers_its_role(aws):
    role = make_role(aws, [allow(SSM_PARAMETER)])
    stack, name = unique("remembers"), unique("param")
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=parameter_template(name), RoleARN=role)
    set_policy(aws, role, [allow([a for a in SSM_PARAMETER if a != "ssm:PutParameter"])])
    # No RoleARN: CloudFormation still acts as the stack's role, not as the (root) caller.
    cloudformation.update_stack(StackName=stack, TemplateBody=parameter_template(name, "w"))
    assert status(aws, stack) == "UPDATE_ROLLBACK_COMPLETE"
    assert role.rsplit("/", 1)[-1] in failure(aws, stack, "Parameter", "UPDATE_FAILED")
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["RoleARN"] == role
    # Through a change set too.
    cloudformation.create_change_set(
        StackName=stack, ChangeSetName="again", TemplateBody=parameter_template(name, "x")
    )
    cloudformation.execute_change_set(StackName=stack, ChangeSetName="again")
    assert status(aws, stack) == "UPDATE_ROLLBACK_COMPLETE"
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["RoleARN"] == role
    set_policy(aws, role, [allow([a for a in SSM_PARAMETER if a != "ssm:DeleteParameter"])])
    cloudformation.delete_stack(StackName=stack)
    assert status(aws, stack) == "DELETE_FAILED"


def test_without_a_role_the_caller_acts_and_root_may_do_everything(aws, local_aws):
    stack, name = unique("root"), unique("param")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=parameter_template(name))
    assert status(aws, stack) == "CREATE_COMPLETE"

    # An assumed-role caller: its own policies apply to the handlers' calls.
    caller_role = make_role(
        aws,
        [allow("cloudformation:*"), allow([a for a in SSM_PARAMETER if a != "ssm:PutParameter"])],
        trust={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]},
    )
    cloudformation = client_as(local_aws, assume(aws, caller_role), "cloudformation")
    stack = unique("caller")
    cloudformation.create_stack(StackName=stack, TemplateBody=parameter_template(unique("param")))
    match = REASON.match(failure(aws, stack, "Parameter", "CREATE_FAILED"))
    assert match["user"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{caller_role.rsplit('/', 1)[-1]}/tester"
    assert match["action"] == "ssm:PutParameter"


# --- passing a role to CloudFormation ----------------------------------------------------------------


def caller_trust() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }


def test_a_caller_without_pass_role_cannot_give_cloudformation_a_role(aws, local_aws):
    service_role = make_role(aws, [allow(SSM_PARAMETER)])
    caller_role = make_role(aws, [allow("cloudformation:*")], trust=caller_trust())
    cloudformation = client_as(local_aws, assume(aws, caller_role), "cloudformation")
    stack = unique("nopass")
    with pytest.raises(ClientError) as refused:
        cloudformation.create_stack(
            StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=service_role
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert f"is not authorized to perform: iam:PassRole on resource: {service_role}" in error["Message"]
    assert stack not in [s["StackName"] for s in aws("cloudformation").describe_stacks()["Stacks"]]

    # PassRole for another service only does not count either.
    set_policy(
        aws,
        caller_role,
        [
            allow("cloudformation:*"),
            allow("iam:PassRole", service_role, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        ],
    )
    with pytest.raises(ClientError) as refused:
        cloudformation.create_stack(
            StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=service_role
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    # Passing it to CloudFormation is what it needs.
    set_policy(
        aws,
        caller_role,
        [
            allow("cloudformation:*"),
            allow("iam:PassRole", service_role, Condition={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}),
        ],
    )
    cloudformation.create_stack(
        StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=service_role
    )
    assert status(aws, stack) == "CREATE_COMPLETE"
    # UpdateStack and CreateChangeSet with RoleARN pass the role too.
    set_policy(aws, caller_role, [allow("cloudformation:*")])
    for call in (
        lambda: cloudformation.update_stack(StackName=stack, TemplateBody=parameter_template(unique("p")), RoleARN=service_role),
        lambda: cloudformation.create_change_set(StackName=stack, ChangeSetName="c", TemplateBody=parameter_template(unique("p")), RoleARN=service_role),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_role_that_does_not_trust_cloudformation_cannot_be_assumed(aws):
    untrusting = make_role(
        aws,
        [allow("ssm:*")],
        trust={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
    )
    missing = f"arn:aws:iam::{ACCOUNT}:role/{unique('nonexistent')}"
    wrong_account = make_role(
        aws,
        [allow("ssm:*")],
        trust={**TRUST_CLOUDFORMATION, "Statement": [{**TRUST_CLOUDFORMATION["Statement"][0], "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}]},
    )
    for role in (untrusting, missing, wrong_account):
        stack = unique("untrusted")
        with pytest.raises(ClientError) as refused:
            aws("cloudformation").create_stack(
                StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=role
            )
        error = refused.value.response["Error"]
        assert error["Code"] == "ValidationError"
        assert error["Message"] == f"Role {role} is invalid or cannot be assumed"
    right_account = make_role(
        aws,
        [allow(SSM_PARAMETER)],
        trust={**TRUST_CLOUDFORMATION, "Statement": [{**TRUST_CLOUDFORMATION["Statement"][0], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]},
    )
    stack = unique("trusted")
    aws("cloudformation").create_stack(
        StackName=stack, TemplateBody=parameter_template(unique("param")), RoleARN=right_account
    )
    assert status(aws, stack) == "CREATE_COMPLETE"


# --- what a handler needs: rows of data/cloudformation-handler-rules.tsv ----------------------------

ENDPOINT_READ = ["sagemaker:DescribeEndpoint", "sagemaker:ListTags", "sagemaker:AddTags", "sagemaker:DeleteEndpoint"]


def endpoint_template(config_name: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Endpoint": {
                    "Type": "AWS::SageMaker::Endpoint",
                    "Properties": {"EndpointConfigName": config_name},
                }
            }
        }
    )


def test_create_endpoint_is_checked_on_the_endpoint_configuration(aws):
    """target AWS::SageMaker::Endpoint sagemaker:CreateEndpoint -> the endpoint-config's ARN."""
    sagemaker = aws("sagemaker")
    model, config = unique("Model"), unique("Serving-Config")
    sagemaker.create_model(
        ModelName=model,
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/image:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    endpoints = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/*"
    role = make_role(aws, [allow(["sagemaker:CreateEndpoint", *ENDPOINT_READ], endpoints)])
    stack = unique("endpoint")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=endpoint_template(config), RoleARN=role)
    assert status(aws, stack) == "ROLLBACK_COMPLETE"
    match = REASON.match(failure(aws, stack, "Endpoint", "CREATE_FAILED"))
    assert match["action"] == "sagemaker:CreateEndpoint"
    # SageMaker names resources in lowercase in its ARNs.
    assert match["resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{config.lower()}"

    set_policy(
        aws,
        role,
        [
            allow(ENDPOINT_READ, endpoints),
            allow("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/serving-config-*"),
        ],
    )
    stack = unique("endpoint")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=endpoint_template(config), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE", failure(aws, stack, "Endpoint")


def account_template(role_arn: str | None) -> str:
    properties = {"CloudWatchRoleArn": role_arn} if role_arn else {}
    return json.dumps({"Resources": {"Account": {"Type": "AWS::ApiGateway::Account", "Properties": properties}}})


def test_pass_role_is_excused_when_the_property_is_absent_and_needed_when_set(aws):
    """excuse AWS::ApiGateway::Account iam:PassRole CloudWatchRoleArn (and its target row)."""
    api_settings = f"arn:aws:apigateway:{REGION}::/account"
    logging_role = make_role(aws, [], trust={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    role = make_role(aws, [allow(["apigateway:GET", "apigateway:PATCH"], api_settings), allow("iam:GetRole", logging_role)])
    stack = unique("account")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=account_template(None), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE", failure(aws, stack, "Account")

    stack = unique("account")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=account_template(logging_role), RoleARN=role)
    assert status(aws, stack) == "ROLLBACK_COMPLETE"
    match = REASON.match(failure(aws, stack, "Account", "CREATE_FAILED"))
    assert (match["action"], match["resource"]) == ("iam:PassRole", logging_role)

    # Passed to API Gateway, not to CloudFormation: a condition naming another service does not grant.
    passing = {"Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}
    set_policy(aws, role, [allow(["apigateway:GET", "apigateway:PATCH"], api_settings), allow(["iam:GetRole", "iam:PassRole"], logging_role, **passing)])
    stack = unique("account")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=account_template(logging_role), RoleARN=role)
    assert status(aws, stack) == "ROLLBACK_COMPLETE"

    passing = {"Condition": {"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}}}
    set_policy(aws, role, [allow(["apigateway:GET", "apigateway:PATCH", "iam:GetRole"], [api_settings, logging_role]), allow("iam:PassRole", logging_role, **passing)])
    stack = unique("account")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=account_template(logging_role), RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE", failure(aws, stack, "Account")


def test_the_resource_own_arn_is_checked_when_the_action_is_scoped_to_it(aws):
    """arn AWS::SageMaker::ModelPackageGroup: CreateModelPackageGroup on the group's own ARN."""
    group = unique("Images-Group")
    template = json.dumps(
        {"Resources": {"Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": group}}}}
    )
    others = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/other-*"
    role = make_role(aws, [allow("sagemaker:*", others)])
    stack = unique("group")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=template, RoleARN=role)
    match = REASON.match(failure(aws, stack, "Group", "CREATE_FAILED"))
    assert match["resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{group.lower()}"
    set_policy(aws, role, [allow("sagemaker:*", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/images-group-*")])
    stack = unique("group")
    aws("cloudformation").create_stack(StackName=stack, TemplateBody=template, RoleARN=role)
    assert status(aws, stack) == "CREATE_COMPLETE", failure(aws, stack, "Group")
