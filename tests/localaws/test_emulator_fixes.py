"""The emulator's fixes to moto's server, checked through the API as the tool uses it."""

from __future__ import annotations

import json
import urllib.request

REGION = "us-east-1"
# The first bytes of a JPEG: not UTF-8, as every image request body is.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256))


def queue(url: str, bodies: list[str]) -> None:
    request = urllib.request.Request(
        url + "/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(
            {"region": REGION, "results": [{"Body": body, "ContentType": "application/json"} for body in bodies]}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).read()


def test_invoke_endpoint_takes_a_binary_image_body(aws, local_aws):
    runtime = aws("sagemaker-runtime")
    queue(local_aws.url, ["[0.25, 0.75]", "[1.0, 0.0]"])
    first = runtime.invoke_endpoint(EndpointName="e", ContentType="image/jpeg", Body=JPEG)
    assert first["Body"].read() == b"[0.25, 0.75]"
    # moto answers a repeated request as before, and another body with the next answer.
    again = runtime.invoke_endpoint(EndpointName="e", ContentType="image/jpeg", Body=JPEG)
    assert again["Body"].read() == b"[0.25, 0.75]"
    other = runtime.invoke_endpoint(EndpointName="e", ContentType="image/jpeg", Body=JPEG + b"x")
    assert other["Body"].read() == b"[1.0, 0.0]"


def test_each_endpoint_takes_its_own_answer_for_the_same_image(aws, local_aws):
    runtime = aws("sagemaker-runtime")
    queue(local_aws.url, ["[0.1, 0.9]", "[0.3, 0.3, 0.4]"])
    parent = runtime.invoke_endpoint(EndpointName="parent", ContentType="image/jpeg", Body=JPEG + b"p")
    child = runtime.invoke_endpoint(EndpointName="child", ContentType="image/jpeg", Body=JPEG + b"p")
    assert parent["Body"].read() == b"[0.1, 0.9]"
    assert child["Body"].read() == b"[0.3, 0.3, 0.4]"


def test_plain_credentials_reach_the_chosen_account_and_assumed_roles_their_own(tmp_path, monkeypatch):
    import boto3
    from conftest import run_script, start_server

    monkeypatch.setenv("MOTO_ACCOUNT_ID", "222222222222")
    url = start_server(tmp_path)
    try:
        def client(service: str, **credentials):
            return boto3.client(
                service,
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=credentials.get("AccessKeyId", "testing"),
                aws_secret_access_key=credentials.get("SecretAccessKey", "testing"),
                aws_session_token=credentials.get("SessionToken"),
            )

        assert client("sts").get_caller_identity()["Account"] == "222222222222"
        assumed = client("sts").assume_role(
            RoleArn="arn:aws:iam::333333333333:role/deployer", RoleSessionName="check"
        )["Credentials"]
        prod = {key: assumed[key] for key in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        assert client("sts", **prod).get_caller_identity()["Account"] == "333333333333"
        # Each account has its own resources.
        client("sns", **prod).create_topic(Name="only-in-prod")
        assert [t["TopicArn"] for t in client("sns", **prod).list_topics()["Topics"]] == [
            "arn:aws:sns:us-east-1:333333333333:only-in-prod"
        ]
        assert client("sns").list_topics()["Topics"] == []
    finally:
        run_script(tmp_path, "stop")


def test_approving_a_package_keeps_its_metadata_as_aws_does(aws):
    sagemaker = aws("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="g",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/i:1"}],
            "SupportedContentTypes": ["application/x-image"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"classes": "s3://b/classes.json", "run": "1"},
    )["ModelPackageArn"]
    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="passed"
    )
    sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"run": "2"})
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"classes": "s3://b/classes.json", "run": "2"}
    assert described["ApprovalDescription"] == "passed"
    sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["run"])
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"classes": "s3://b/classes.json"}


def test_a_model_package_group_is_deleted_once_its_versions_are(aws):
    import botocore.exceptions
    import pytest

    sagemaker = aws("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="doomed")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="doomed",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/i:1"}],
            "SupportedContentTypes": ["application/x-image"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sagemaker.delete_model_package_group(ModelPackageGroupName="doomed")
    assert refused.value.response["Error"]["Code"] == "ConflictException"
    sagemaker.delete_model_package(ModelPackageName=arn)
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        sagemaker.describe_model_package(ModelPackageName=arn)
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert sagemaker.list_model_packages(ModelPackageGroupName="doomed")["ModelPackageSummaryList"] == []
    sagemaker.delete_model_package_group(ModelPackageGroupName="doomed")
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        sagemaker.describe_model_package_group(ModelPackageGroupName="doomed")
    assert gone.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as twice:
        sagemaker.delete_model_package_group(ModelPackageGroupName="doomed")
    assert twice.value.response["Error"]["Code"] == "ValidationException"


def test_a_repeated_client_request_token_starts_one_pipeline_execution_as_aws_does(aws):
    sagemaker = aws("sagemaker")
    sagemaker.create_pipeline(
        PipelineName="retrain-idempotency",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/pipeline",
    )

    def start(token: str) -> str:
        return sagemaker.start_pipeline_execution(
            PipelineName="retrain-idempotency", ClientRequestToken=token
        )["PipelineExecutionArn"]

    first = start("a" * 64)
    assert start("a" * 64) == first, "the same token answers the execution it started"
    second = start("b" * 64)
    assert second != first
    listed = sagemaker.list_pipeline_executions(PipelineName="retrain-idempotency")
    assert sorted(item["PipelineExecutionArn"] for item in listed["PipelineExecutionSummaries"]) == sorted(
        [first, second]
    )
