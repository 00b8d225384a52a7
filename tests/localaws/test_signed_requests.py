"""Requests signed as SDKs other than botocore sign them, with `--enforce-iam`: the signature is
checked over the body as it was sent, and refusals are written in the request's protocol.

The Rust SDK percent-encodes a Query body strictly (RFC 3986: a space is `%20`, `'` `%27`, `*`
`%2A`), sends `Content-Type: application/x-www-form-urlencoded` without a charset and signs
`content-length` and `x-amz-user-agent` too. Its CreateChangeSet was refused with
SignatureDoesNotMatch while botocore's passed, and it found no error code in moto's
`<ErrorResponse><Errors><Error>` body. These tests sign such requests with botocore's SigV4Auth.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote, urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from test_iam_direct_api import REGION, client, codebuild, enforcing  # noqa: F401  (fixtures)

# A template with what strict and botocore's encodings write differently.
TEMPLATE = """AWSTemplateFormatVersion: '2010-09-09'
Description: 'mlops-images-staging monitoring: an (encrypted) alert topic! *'
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: mlops-images-staging-alerts ~ "x"
"""


def strict_form(parameters: list[tuple[str, str]]) -> bytes:
    """A Query body as the Rust SDK encodes it: everything but RFC 3986's unreserved characters
    percent-encoded, a space as `%20`."""
    return "&".join(f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}" for key, value in parameters).encode()


def signed(url: str, service: str, credentials: dict[str, str], body: bytes) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=url.rstrip("/") + "/",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body)),
            "Host": urlsplit(url).netloc,
            "User-Agent": "aws-sdk-rust/1.3.10 os/linux lang/rust/1.95.0",
            "X-Amz-User-Agent": "aws-sdk-rust/1.3.10 ua/2.1 api/cloudformation/1.83.0 os/linux lang/rust/1.95.0",
        },
    )
    keys = Credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])
    SigV4Auth(keys, service, REGION).add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None) -> requests.Response:
    return requests.post(request.url, data=request.body if body is None else body, headers=dict(request.headers), timeout=30)


def query_error(response: requests.Response) -> tuple[str, str]:
    """The code and message as the Query protocol (and the Rust SDK's parser) read them:
    `<ErrorResponse><Error><Code>`, not moto's `<ErrorResponse><Errors><Error>`."""
    root = ElementTree.fromstring(response.content)
    assert root.tag == "ErrorResponse", response.text
    assert root.find("Errors") is None, response.text
    error = root.find("Error")
    assert error is not None, response.text
    assert root.find("RequestId") is not None and root.find("RequestId").text, response.text
    return error.findtext("Code"), error.findtext("Message")


@pytest.fixture(scope="module")
def session(enforcing, codebuild):  # noqa: F811  (codebuild creates the role)
    """Credentials of a session of the platform's CodeBuild role, which may CreateChangeSet on the
    environment's stacks."""
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in client(enforcing, "cloudformation").describe_stacks(StackName="mlops-images-staging-iam")["Stacks"][0]["Outputs"]
    }
    return client(enforcing, "sts").assume_role(RoleArn=outputs["CodeBuildRoleArn"], RoleSessionName="rust")["Credentials"]


def change_set_body(stack: str) -> bytes:
    return strict_form(
        [
            ("Action", "CreateChangeSet"),
            ("Version", "2010-05-15"),
            ("StackName", stack),
            ("TemplateBody", TEMPLATE),
            ("ChangeSetName", "rust-1"),
            ("ChangeSetType", "CREATE"),
            ("Description", "made (as the Rust SDK does) with 'quotes' & spaces!"),
        ]
    )


def test_a_strictly_encoded_query_body_signed_by_the_client_is_accepted(enforcing, session):
    body = change_set_body("mlops-images-staging-monitoring")
    assert b"%20" in body and b"%27" in body and b"%2A" in body and b"+" not in body
    request = signed(enforcing, "cloudformation", session, body)
    assert request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0] == (
        "content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-user-agent"
    )
    response = send(request)
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    assert root.tag.endswith("CreateChangeSetResponse")
    change_set = client(enforcing, "cloudformation").describe_change_set(
        StackName="mlops-images-staging-monitoring", ChangeSetName="rust-1"
    )
    assert change_set["Description"] == "made (as the Rust SDK does) with 'quotes' & spaces!"


def test_a_body_changed_after_signing_is_refused_in_the_query_protocol_shape(enforcing, session):
    body = change_set_body("mlops-images-staging-tampered")
    request = signed(enforcing, "cloudformation", session, body)
    tampered = body.replace(b"rust-1", b"rust-2")
    assert len(tampered) == len(body) and sum(a != b for a, b in zip(body, tampered)) == 1
    response = send(request, tampered)
    assert response.status_code == 403
    code, message = query_error(response)
    assert code == "SignatureDoesNotMatch"
    assert message.startswith("The request signature we calculated does not match")
    assert "mlops-images-staging-tampered" not in [
        summary["StackName"] for summary in client(enforcing, "cloudformation").list_stacks()["StackSummaries"]
    ]


def test_a_wrong_secret_is_refused(enforcing, session):
    body = change_set_body("mlops-images-staging-wrong-key")
    request = signed(enforcing, "cloudformation", dict(session, SecretAccessKey="not-" + session["SecretAccessKey"]), body)
    response = send(request)
    assert response.status_code == 403
    assert query_error(response)[0] == "SignatureDoesNotMatch"


def test_a_refused_action_is_access_denied_in_the_query_protocol_shape(enforcing, session):
    body = change_set_body("another-stack")
    response = send(signed(enforcing, "cloudformation", session, body))
    assert response.status_code == 403
    code, message = query_error(response)
    assert code == "AccessDenied"
    assert "is not authorized to perform: cloudformation:CreateChangeSet" in message
    # IAM and STS are Query services too.
    response = send(signed(enforcing, "iam", session, strict_form([("Action", "ListRoles"), ("Version", "2010-05-08")])))
    assert response.status_code == 403
    assert query_error(response)[0] == "AccessDenied"


def test_ec2_refusals_have_the_ec2_shape(enforcing, session):
    body = strict_form([("Action", "DescribeVpcs"), ("Version", "2016-11-15")])
    request = signed(enforcing, "ec2", session, body)
    response = send(request, body + b"&Filter.1.Name=x")
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Response", response.text
    assert root.findtext("Errors/Error/Code") == "AuthFailure"
    assert root.findtext("RequestID")


def test_json_protocol_refusals_are_json(enforcing, session):
    body = json.dumps({"Name": "/mlops-images/staging/release"}).encode()
    request = AWSRequest(
        method="POST",
        url=enforcing.rstrip("/") + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.GetParameter"},
    )
    keys = Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    SigV4Auth(keys, "ssm", REGION).add_auth(request)
    response = send(request, body.replace(b"release", b"releasf"))
    assert response.json()["__type"] == "InvalidSignatureException", response.text


def test_a_signed_get_with_a_query_string_is_checked_over_an_empty_body(enforcing, session):
    """moto signed such a request again over its parameters encoded as a body."""
    lambdas = client(enforcing, "lambda", session)
    try:
        lambdas.list_functions(MaxItems=5)
    except lambdas.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDeniedException", error.response


def test_change_set_calls_given_only_its_arn_are_authorised_on_its_stack(enforcing, session):
    """DescribeChangeSet/DeleteChangeSet by change set ARN alone: AWS checks them on the stack
    the change set belongs to, which the CodeBuild role may manage."""
    import boto3

    cfn = boto3.client(
        "cloudformation",
        region_name=REGION,
        endpoint_url=enforcing,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    created = cfn.create_change_set(
        StackName="mlops-images-staging-arn-only",
        ChangeSetName="by-arn",
        ChangeSetType="CREATE",
        TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}',
    )
    described = cfn.describe_change_set(ChangeSetName=created["Id"])
    assert described["StackName"] == "mlops-images-staging-arn-only"
    cfn.delete_change_set(ChangeSetName=created["Id"])
