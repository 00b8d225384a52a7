"""`scripts/local-aws start --enforce-iam`: direct API calls are checked against the caller's IAM
policies. Root keys (the `testing` keys `env` prints) keep full access, so the setup creates the
platform's CodeBuild role from the golden staging iam stack; a session of that role is then allowed
what its policy grants and refused the rest, as on AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import REPO_ROOT, client_as, run_script, start_server

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARTIFACTS = "mlops-images-staging-artifacts-222222222222"


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("local-aws-enforcing")
    url = start_server(state_dir, "--enforce-iam")
    try:
        yield url
    finally:
        assert run_script(state_dir, "stop").returncode == 0


def client(url: str, service: str, credentials: dict[str, str] | None = None):
    return client_as(url, service, REGION, credentials)


@pytest.fixture(scope="module")
def codebuild(enforcing):
    """A session of the platform's CodeBuild role (created as root from the golden iam stack)."""
    cloudformation = client(enforcing, "cloudformation")
    cloudformation.create_stack(
        StackName="mlops-images-staging-iam",
        TemplateBody=(REPO_ROOT / "tests/golden/staging/iam.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "DataBucketArn", "ParameterValue": "arn:aws:s3:::mlops-images-staging-data-222222222222"},
            {"ParameterKey": "ArtifactsBucketArn", "ParameterValue": f"arn:aws:s3:::{ARTIFACTS}"},
            {"ParameterKey": "KeyArn", "ParameterValue": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"},
        ],
    )
    stack = cloudformation.describe_stacks(StackName="mlops-images-staging-iam")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack["Outputs"]}
    credentials = client(enforcing, "sts").assume_role(
        RoleArn=outputs["CodeBuildRoleArn"], RoleSessionName="build"
    )["Credentials"]
    return lambda service: client(enforcing, service, credentials)


@pytest.fixture(scope="module")
def seeded(enforcing):
    """What the tests read, created with root keys (refused by moto's own check: InvalidClientTokenId)."""
    client(enforcing, "ssm").put_parameter(Name="/mlops-images/staging/release", Value="1", Type="String")
    client(enforcing, "ssm").put_parameter(Name="/elsewhere/secret", Value="2", Type="String")
    client(enforcing, "s3").create_bucket(Bucket=ARTIFACTS)
    client(enforcing, "s3").create_bucket(Bucket="somebody-elses-bucket")
    return enforcing


def test_root_keys_keep_full_access(seeded):
    assert client(seeded, "sts").get_caller_identity()["Account"] == ACCOUNT
    assert client(seeded, "iam").list_roles()["Roles"] is not None
    assert client(seeded, "ssm").get_parameter(Name="/elsewhere/secret")["Parameter"]["Value"] == "2"


def refused(call) -> dict[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]


def test_a_role_session_is_allowed_what_its_policy_grants(seeded, codebuild):
    assert codebuild("ssm").get_parameter(Name="/mlops-images/staging/release")["Parameter"]["Value"] == "1"
    codebuild("ssm").put_parameter(Name="/mlops-images/staging/next", Value="2", Type="String")
    assert codebuild("sagemaker").list_model_packages()["ModelPackageSummaryList"] == []
    codebuild("s3").put_object(Bucket=ARTIFACTS, Key="templates/x.yaml", Body=b"x")
    assert codebuild("s3").get_object(Bucket=ARTIFACTS, Key="templates/x.yaml")["Body"].read() == b"x"
    assert codebuild("sts").get_caller_identity()["Arn"].endswith(":assumed-role/mlops-images-staging-codebuild/build")


def test_a_role_session_is_refused_what_its_policy_lacks(seeded, codebuild):
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-images-staging-codebuild/build"
    error = refused(lambda: codebuild("ssm").get_parameter(Name="/elsewhere/secret"))
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: {session} is not authorized to perform: ssm:GetParameter on resource: "
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/elsewhere/secret because no identity-based "
        "policy allows the ssm:GetParameter action"
    )
    error = refused(lambda: codebuild("sagemaker").delete_endpoint(EndpointName="mlops-images-staging-plants"))
    assert error["Code"] == "AccessDeniedException"
    assert "sagemaker:DeleteEndpoint on resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlops-images-staging-plants" in error["Message"]
    assert refused(lambda: codebuild("iam").list_roles())["Code"] == "AccessDenied"
    assert refused(lambda: codebuild("s3").get_object(Bucket="somebody-elses-bucket", Key="k"))["Code"] == "AccessDenied"
    # Its CloudFormation calls are scoped to the environment's stacks.
    error = refused(lambda: codebuild("cloudformation").describe_stacks(StackName="another-stack"))
    assert error["Code"] == "AccessDenied"
    stacks = codebuild("cloudformation").describe_stacks(StackName="mlops-images-staging-iam")["Stacks"]
    assert stacks[0]["StackName"] == "mlops-images-staging-iam"


def test_a_session_of_a_role_without_the_permission_cannot_pass_the_cloudformation_role(enforcing, codebuild):
    """The CodeBuild role may pass the CloudFormation role to CloudFormation, and nothing else."""
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in client(enforcing, "cloudformation").describe_stacks(StackName="mlops-images-staging-iam")["Stacks"][0]["Outputs"]
    }
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "mlops-images-staging-t"}}}})
    error = refused(
        lambda: codebuild("cloudformation").create_stack(
            StackName="mlops-images-staging-passing", TemplateBody=template, RoleARN=outputs["SageMakerExecutionRoleArn"]
        )
    )
    assert error["Code"] == "AccessDenied"
    assert f"iam:PassRole on resource: {outputs['SageMakerExecutionRoleArn']}" in error["Message"]


def test_the_codebuild_role_may_protect_the_environments_stacks_only(enforcing, codebuild):
    """apply protects each stack it deploys: UpdateTerminationProtection, authorised on the stack's ARN."""
    stack = "mlops-images-staging-iam"
    cloudformation = codebuild("cloudformation")
    cloudformation.update_termination_protection(StackName=stack, EnableTerminationProtection=True)
    described = client(enforcing, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    assert described["EnableTerminationProtection"] is True
    cloudformation.update_termination_protection(StackName=stack, EnableTerminationProtection=False)
    assert client(enforcing, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["EnableTerminationProtection"] is False

    client(enforcing, "cloudformation").create_stack(
        StackName="another-stack",
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
    )
    error = refused(lambda: cloudformation.update_termination_protection(StackName="another-stack", EnableTerminationProtection=True))
    assert error["Code"] == "AccessDenied"
    assert "cloudformation:UpdateTerminationProtection on resource: arn:aws:cloudformation:us-east-1:123456789012:stack/another-stack/" in error["Message"]


def test_a_listing_is_granted_only_for_the_prefix_the_policy_names(enforcing):
    """`s3:prefix` is the listing's `prefix` parameter, absent without one (the retrain role may
    list only `retrain/state/`)."""
    root_s3 = client(enforcing, "s3")
    root_s3.create_bucket(Bucket="prefix-condition")
    iam = client(enforcing, "iam")
    role = iam.create_role(
        RoleName="lists-one-prefix",
        AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                           "Action": "sts:AssumeRole"}],
        }),
    )["Role"]
    iam.put_role_policy(
        RoleName="lists-one-prefix",
        PolicyName="list",
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                           "Resource": "arn:aws:s3:::prefix-condition",
                           "Condition": {"StringLike": {"s3:prefix": "retrain/state/*"}}}],
        }),
    )
    credentials = client(enforcing, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="lister")["Credentials"]
    s3 = client(enforcing, "s3", credentials)
    assert s3.list_objects_v2(Bucket="prefix-condition", Prefix="retrain/state/")["KeyCount"] == 0
    for arguments in ({"Prefix": "raw/"}, {}):
        with pytest.raises(ClientError) as raised:
            s3.list_objects_v2(Bucket="prefix-condition", **arguments)
        assert raised.value.response["Error"]["Code"] == "AccessDenied", arguments
