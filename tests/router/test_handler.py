"""Tests for router/handler.py: API Gateway events in, answers, metric lines and objects kept
for review out, against fake SageMaker, SageMaker Runtime and S3 clients that record their calls
and answer from canned data, with the project's sample photos and a generated PNG."""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody

# --- the module, fake clients, events --------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = REPO / "payloads"


def _load_handler():
    """router/handler.py as the module `router_handler` (Lambda knows it as `handler`)."""
    spec = importlib.util.spec_from_file_location("router_handler", REPO / "router" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


router = _load_handler()

PLANTS_ARN = "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-plants/3"
TREES_ARN = "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-trees/1"
PLANTS_CLASSES_URI = "s3://mlops-images-staging-artifacts/plants/index/classes.json"
TREES_CLASSES_URI = "s3://mlops-images-staging-artifacts/trees/index/classes.json"
PLANTS_ENDPOINT = "mlops-images-staging-plants"
TREES_ENDPOINT = "mlops-images-staging-trees"
FLOWERS_ENDPOINT = "mlops-images-staging-flowers"

PLANTS_CLASSES = ["flowers", "grasses", "trees"]
TREES_CLASSES = ["ash", "birch", "oak", "pine", "willow", "yew"]

CONFIG = {
    "parent": {"model": "plants", "endpoint": PLANTS_ENDPOINT, "package": PLANTS_ARN},
    "routes": {
        "trees": {"model": "trees", "endpoint": TREES_ENDPOINT, "package": TREES_ARN},
        "flowers": {"model": "flowers", "endpoint": FLOWERS_ENDPOINT, "package": None},
    },
    "low_confidence_threshold": 0.6,
    "max_image_bytes": 4500000,
    "timeout_seconds": 5,
    "namespace": "mlops-images/staging/router",
    "environment": "staging",
}

# The parent picks trees (0.91); the trees model picks oak (0.72).
PLANTS_ANSWER = [0.05, 0.04, 0.91]
TREES_ANSWER = [0.1, 0.05, 0.72, 0.08, 0.03, 0.02]
# The trees model picks oak with 0.25, under the threshold: a low-confidence answer.
LOW_TREES_ANSWER = [0.2, 0.15, 0.25, 0.2, 0.1, 0.1]

DATA_BUCKET = "mlops-images-staging-data"
REVIEW_PREFIX = "review/pending/plants/"
REVIEW = {"bucket": DATA_BUCKET, "prefix": REVIEW_PREFIX}
# When the requests that route() runs with a clock were received (the handler's is the real one).
RECEIVED = datetime(2026, 12, 1, 7, 5, 9, 654321, tzinfo=timezone.utc)
STEM = f"{REVIEW_PREFIX}20261201T070509Z-req-1"


def streaming(data: bytes) -> StreamingBody:
    """A response body as botocore returns it."""
    return StreamingBody(io.BytesIO(data), len(data))


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeSageMaker:
    """DescribeModelPackage from a map of package ARN to its metadata (None: no metadata)."""

    def __init__(self, metadata: dict[str, Any]):
        self.metadata = metadata
        self.calls: list[str] = []

    def describe_model_package(self, *, ModelPackageName: str) -> dict:
        self.calls.append(ModelPackageName)
        if ModelPackageName not in self.metadata:
            raise client_error("ValidationException", "Model package does not exist.", "DescribeModelPackage")
        description: dict[str, Any] = {"ModelPackageArn": ModelPackageName, "ModelApprovalStatus": "Approved"}
        if self.metadata[ModelPackageName] is not None:
            description["CustomerMetadataProperties"] = self.metadata[ModelPackageName]
        return description


class FakeS3:
    """GetObject, PutObject and DeleteObject on a map of s3:// URI to the object's bytes.
    PutObject honours `IfNoneMatch="*"`; `put_failures` maps a key's ending to the exception a
    PutObject of such a key raises, `delete_failure` is the one DeleteObject raises."""

    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects
        self.calls: list[tuple[str, str]] = []
        self.puts: list[dict] = []
        self.deletes: list[tuple[str, str]] = []
        self.put_failures: dict[str, Exception] = {}
        self.delete_failure: Exception | None = None

    def get_object(self, *, Bucket: str, Key: str) -> dict:
        self.calls.append((Bucket, Key))
        data = self.objects.get(f"s3://{Bucket}/{Key}")
        if data is None:
            raise client_error("NoSuchKey", "The specified key does not exist.", "GetObject")
        return {"Body": streaming(data), "ContentLength": len(data)}

    def put_object(self, **arguments: Any) -> dict:
        self.puts.append(arguments)
        for ending, error in self.put_failures.items():
            if arguments["Key"].endswith(ending):
                raise error
        uri = f"s3://{arguments['Bucket']}/{arguments['Key']}"
        if arguments.get("IfNoneMatch") == "*" and uri in self.objects:
            message = "At least one of the pre-conditions you specified did not hold"
            raise client_error("PreconditionFailed", message, "PutObject")
        self.objects[uri] = arguments["Body"]
        return {"ETag": f'"{hashlib.md5(arguments["Body"]).hexdigest()}"'}

    def delete_object(self, *, Bucket: str, Key: str) -> dict:
        self.deletes.append((Bucket, Key))
        if self.delete_failure is not None:
            raise self.delete_failure
        self.objects.pop(f"s3://{Bucket}/{Key}", None)
        return {}

    def kept(self) -> dict[str, bytes]:
        """The objects under the review prefix, by key."""
        bucket = f"s3://{DATA_BUCKET}/"
        return {
            uri[len(bucket) :]: data
            for uri, data in self.objects.items()
            if uri.startswith(bucket + REVIEW_PREFIX)
        }


class FakeRuntime:
    """InvokeEndpoint from a map of endpoint name to an answer: bytes, a JSON value or an exception."""

    def __init__(self, answers: dict[str, Any]):
        self.answers = answers
        self.calls: list[dict] = []

    def invoke_endpoint(self, **arguments: Any) -> dict:
        self.calls.append(arguments)
        answer = self.answers[arguments["EndpointName"]]
        if isinstance(answer, Exception):
            raise answer
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        return {"Body": streaming(body), "ContentType": "application/json"}

    @property
    def endpoints(self) -> list[str]:
        return [call["EndpointName"] for call in self.calls]


@dataclass
class Aws:
    """The fake clients the handler uses."""

    sagemaker: FakeSageMaker
    s3: FakeS3
    runtime: FakeRuntime


@dataclass
class Answer:
    """A handler response, its JSON body parsed."""

    status: int
    body: dict
    response: dict


@pytest.fixture(autouse=True)
def fresh_container():
    """Each test starts as a new Lambda container: no configuration, clients or class names."""
    router.reset()
    yield
    router.reset()


@pytest.fixture
def configure(monkeypatch):
    """Sets ROUTER_CONFIG to CONFIG with the given top-level changes (CONFIG itself at first)."""

    def apply(**changes: Any) -> dict:
        document = copy.deepcopy(CONFIG)
        document.update(changes)
        monkeypatch.setenv(router.CONFIG_VARIABLE, json.dumps(document))
        return document

    apply()
    return apply


@pytest.fixture
def aws(configure) -> Aws:
    """Fake clients serving the plants and trees packages and endpoints, injected into the handler."""
    fakes = Aws(
        sagemaker=FakeSageMaker(
            {PLANTS_ARN: {"classes": PLANTS_CLASSES_URI}, TREES_ARN: {"classes": TREES_CLASSES_URI}}
        ),
        s3=FakeS3(
            {
                PLANTS_CLASSES_URI: json.dumps(PLANTS_CLASSES).encode(),
                TREES_CLASSES_URI: json.dumps(TREES_CLASSES).encode(),
            }
        ),
        runtime=FakeRuntime({PLANTS_ENDPOINT: PLANTS_ANSWER, TREES_ENDPOINT: TREES_ANSWER}),
    )
    router.set_clients(sagemaker=fakes.sagemaker, runtime=fakes.runtime, s3=fakes.s3)
    return fakes


@pytest.fixture(scope="session")
def flower() -> bytes:
    return (PAYLOADS / "flower.jpg").read_bytes()


@pytest.fixture(scope="session")
def leaf() -> bytes:
    return (PAYLOADS / "leaf.jpg").read_bytes()


@pytest.fixture(scope="session")
def png() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, (x + y) % 256) for y in range(48) for x in range(64)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def event(
    body: bytes | str | None,
    *,
    content_type: str | None = "image/jpeg",
    header: str = "Content-Type",
    encode: bool = True,
    request_id: str = "req-1",
) -> dict:
    """An API Gateway REST proxy event for POST /identify; a bytes body is sent base64 unless
    `encode` is False, then as its latin-1 string."""
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if encode else body.decode("latin-1")
    headers = {"Accept": "application/json", "Host": "abc123.execute-api.eu-west-1.amazonaws.com"}
    if content_type is not None:
        headers[header] = content_type
    return {
        "resource": "/identify",
        "path": "/identify",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "requestContext": {"requestId": request_id, "stage": "staging", "httpMethod": "POST"},
        "body": body,
        "isBase64Encoded": encode,
    }


def call(request: dict) -> Answer:
    """Runs the handler on the event."""
    response = router.handler(request, None)
    return Answer(response["statusCode"], json.loads(response["body"]), response)


def call_at(aws: Aws, request: dict, received_at: datetime = RECEIVED) -> Answer:
    """Runs route() on the event as the handler does, with the configuration in ROUTER_CONFIG
    and the fake clients, but with its clock stopped at `received_at`."""
    config = router.parse_config(os.environ[router.CONFIG_VARIABLE])
    clients = router.Clients(config.timeout_seconds, sagemaker=aws.sagemaker, runtime=aws.runtime, s3=aws.s3)
    response = router.route(request, config, clients, {}, now=lambda: received_at).response
    return Answer(response["statusCode"], json.loads(response["body"]), response)


def metric_lines(capsys) -> list[dict]:
    """The Embedded Metric Format documents printed since the last read."""
    lines = capsys.readouterr().out.splitlines()
    documents = []
    for line in lines:
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    return documents


# --- expectations ----------------------------------------------------------------------------

RUNTIME_URL = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/x/invocations"

HAPPY_BODY = {
    "subgroup": {
        "name": "trees",
        "confidence": 0.91,
        "model": "plants",
        "package_version": "3",
        "top5": [
            {"name": "trees", "confidence": 0.91},
            {"name": "flowers", "confidence": 0.05},
            {"name": "grasses", "confidence": 0.04},
        ],
    },
    "species": {
        "name": "oak",
        "confidence": 0.72,
        "model": "trees",
        "package_version": "1",
        "top5": [
            {"name": "oak", "confidence": 0.72},
            {"name": "ash", "confidence": 0.1},
            {"name": "pine", "confidence": 0.08},
            {"name": "birch", "confidence": 0.05},
            {"name": "willow", "confidence": 0.03},
        ],
    },
    "low_confidence": False,
    "request_id": "req-1",
    "kept_for_review": False,
}


def assert_error(answer, status: int, code: str) -> str:
    """Checks an error answer's status, code and shape; returns its message."""
    assert answer.status == status, answer.body
    assert answer.response["headers"] == {"Content-Type": "application/json"}
    assert set(answer.body) == {"error", "message"}
    assert answer.body["error"] == code
    assert answer.body["message"].endswith(".")
    return answer.body["message"]


# --- success ---------------------------------------------------------------------------------


def test_a_photo_is_routed_from_the_parent_to_the_child(aws, flower):
    answer = call(event(flower))

    assert answer.status == 200
    assert answer.response["headers"] == {"Content-Type": "application/json"}
    assert answer.response["isBase64Encoded"] is False
    assert answer.body == HAPPY_BODY


def test_both_endpoints_get_the_photo_bytes_as_an_image(aws, flower):
    call(event(flower))

    assert aws.runtime.endpoints == [PLANTS_ENDPOINT, TREES_ENDPOINT]
    for invocation in aws.runtime.calls:
        assert invocation == {
            "EndpointName": invocation["EndpointName"],
            "ContentType": "application/x-image",
            "Accept": "application/json",
            "Body": flower,
        }


def test_class_names_come_from_the_packages_classes_json(aws, flower):
    call(event(flower))

    assert aws.sagemaker.calls == [PLANTS_ARN, TREES_ARN]
    assert aws.s3.calls == [
        ("mlops-images-staging-artifacts", "plants/index/classes.json"),
        ("mlops-images-staging-artifacts", "trees/index/classes.json"),
    ]


def test_class_names_are_loaded_once_per_model_across_requests(aws, flower, leaf):
    first = call(event(flower, request_id="req-1"))
    second = call(event(leaf, request_id="req-2"))

    assert (first.status, second.status) == (200, 200)
    assert second.body["request_id"] == "req-2"
    assert aws.sagemaker.calls == [PLANTS_ARN, TREES_ARN]
    assert len(aws.s3.calls) == 2
    assert aws.runtime.endpoints == [PLANTS_ENDPOINT, TREES_ENDPOINT] * 2


def test_a_new_container_loads_the_class_names_again(aws, flower):
    call(event(flower))
    router.reset()
    router.set_clients(sagemaker=aws.sagemaker, runtime=aws.runtime, s3=aws.s3)
    call(event(flower))

    assert aws.sagemaker.calls == [PLANTS_ARN, TREES_ARN] * 2


def test_a_failed_class_load_is_retried_on_the_next_request(aws, flower):
    del aws.s3.objects[TREES_CLASSES_URI]
    assert call(event(flower)).status == 500

    aws.s3.objects[TREES_CLASSES_URI] = json.dumps(["ash", "birch", "oak", "pine", "willow", "yew"]).encode()
    assert call(event(flower)).status == 200
    assert aws.sagemaker.calls == [PLANTS_ARN, TREES_ARN, TREES_ARN]


def test_a_png_is_sent_as_is(aws, png):
    answer = call(event(png, content_type="image/png"))

    assert answer.status == 200
    assert answer.body["species"]["name"] == "oak"
    assert [invocation["Body"] for invocation in aws.runtime.calls] == [png, png]
    assert {invocation["ContentType"] for invocation in aws.runtime.calls} == {"application/x-image"}


@pytest.mark.parametrize(
    "content_type", ["image/jpeg", "image/png", "application/x-image", "Image/JPEG; q=1"]
)
def test_accepted_content_types_with_the_bytes_deciding_the_format(aws, flower, content_type):
    assert call(event(flower, content_type=content_type)).status == 200


@pytest.mark.parametrize("header", ["Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
def test_the_content_type_header_is_found_in_any_case(aws, flower, header):
    answer = call(event(flower, header=header))

    assert answer.status == 200
    assert answer.body == HAPPY_BODY


def test_a_body_that_is_not_base64_is_read_as_latin1_bytes(aws, flower):
    request = event(flower, encode=False)
    assert request["isBase64Encoded"] is False and isinstance(request["body"], str)

    answer = call(request)

    assert answer.status == 200
    assert answer.body == HAPPY_BODY
    assert [invocation["Body"] for invocation in aws.runtime.calls] == [flower, flower]


def test_an_answer_object_with_a_prediction_is_read_as_its_array(aws, flower):
    aws.runtime.answers[PLANTS_ENDPOINT] = {"prediction": [0.05, 0.04, 0.91]}

    answer = call(event(flower))

    assert answer.status == 200
    assert answer.body == HAPPY_BODY


def test_confidences_are_rounded_to_six_decimals(aws, flower):
    aws.runtime.answers[TREES_ENDPOINT] = [0.1, 0.05, 0.7200004999, 0.08, 0.0299996, 0.0200000001]

    species = call(event(flower)).body["species"]

    assert species["confidence"] == 0.72
    assert [entry["confidence"] for entry in species["top5"]] == [0.72, 0.1, 0.08, 0.05, 0.03]


# --- ranking and low confidence --------------------------------------------------------------


def test_ties_rank_by_class_name(aws, flower):
    aws.runtime.answers[TREES_ENDPOINT] = [0.1, 0.3, 0.1, 0.1, 0.3, 0.1]

    species = call(event(flower)).body["species"]

    assert species["name"] == "birch"
    assert [entry["name"] for entry in species["top5"]] == ["birch", "willow", "ash", "oak", "pine"]


def test_a_tie_on_the_parent_routes_to_the_first_name(aws, flower):
    aws.runtime.answers[PLANTS_ENDPOINT] = [0.45, 0.1, 0.45]

    message = assert_error(call(event(flower)), 503, "no_endpoint")

    assert "`flowers`" in message


def test_a_low_parent_confidence_is_flagged(aws, flower, capsys):
    aws.runtime.answers[PLANTS_ENDPOINT] = [0.3, 0.2, 0.5]

    answer = call(event(flower))

    assert answer.status == 200
    assert answer.body["subgroup"]["confidence"] == 0.5
    assert answer.body["species"]["confidence"] == 0.72
    assert answer.body["low_confidence"] is True
    assert metric_lines(capsys)[0]["LowConfidence"] == 1


def test_a_low_child_confidence_is_flagged(aws, flower, capsys):
    aws.runtime.answers[TREES_ENDPOINT] = [0.2, 0.15, 0.25, 0.2, 0.1, 0.1]

    answer = call(event(flower))

    assert answer.body["subgroup"]["confidence"] == 0.91
    assert answer.body["species"]["name"] == "oak"
    assert answer.body["low_confidence"] is True
    assert metric_lines(capsys)[0]["LowConfidence"] == 1


def test_a_confidence_at_the_threshold_is_not_low(aws, flower):
    aws.runtime.answers[TREES_ENDPOINT] = [0.1, 0.1, 0.6, 0.1, 0.05, 0.05]

    assert call(event(flower)).body["low_confidence"] is False


def test_the_threshold_comes_from_the_configuration(aws, configure, flower):
    configure(low_confidence_threshold=0.95)

    assert call(event(flower)).body["low_confidence"] is True


# --- the request's errors --------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, b""])
def test_an_empty_body_is_not_an_image(aws, body):
    message = assert_error(call(event(body)), 400, "not_an_image")

    assert "empty" in message
    assert aws.runtime.calls == []


@pytest.mark.parametrize(
    "body",
    [b"GIF89a\x01\x00\x01\x00", b"hello, world", b"\xff\xd8", b"\x89PNG\r\n\x1a", b"%PDF-1.7\n"],
    ids=["gif", "text", "truncated-jpeg-magic", "truncated-png-magic", "pdf"],
)
def test_bytes_that_are_neither_jpeg_nor_png_are_not_an_image(aws, body):
    message = assert_error(call(event(body)), 400, "not_an_image")

    assert "neither a JPEG nor a PNG" in message
    assert aws.runtime.calls == []
    assert aws.sagemaker.calls == []


def test_a_body_that_does_not_decode_as_base64_is_not_an_image(aws):
    request = event(b"x")
    request["body"] = "not base64!"

    message = assert_error(call(request), 400, "not_an_image")

    assert "base64" in message


def test_a_text_body_beyond_latin1_is_not_an_image(aws):
    request = event("caf\u00e9 \u2615", encode=False)

    assert_error(call(request), 400, "not_an_image")


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", "image/gif", None])
def test_other_content_types_are_refused(aws, flower, content_type):
    message = assert_error(call(event(flower, content_type=content_type)), 400, "not_an_image")

    assert "image/jpeg, image/png or application/x-image" in message
    assert aws.runtime.calls == []


def test_an_event_without_headers_is_refused(aws, flower):
    request = event(flower)
    request["headers"] = None

    assert_error(call(request), 400, "not_an_image")


def test_an_image_over_the_limit_is_too_large(aws, configure, flower):
    configure(max_image_bytes=len(flower) - 1)

    message = assert_error(call(event(flower)), 413, "image_too_large")

    assert f"{len(flower) - 1}-byte limit" in message
    assert f"{len(flower)} bytes" in message
    assert aws.runtime.calls == []


def test_an_image_at_the_limit_is_accepted(aws, configure, flower):
    configure(max_image_bytes=len(flower))

    assert call(event(flower)).status == 200


def test_the_limit_applies_to_the_decoded_bytes(aws, configure, flower):
    request = event(flower)
    assert len(request["body"]) > len(flower)
    configure(max_image_bytes=len(flower) + 1)

    assert call(request).status == 200


# --- the models' errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, problem",
    [
        (b"<html>Internal Server Error</html>", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (["0.05", "0.04", "0.91"], "array of finite numbers"),
        ([0.05, None, 0.91], "array of finite numbers"),
        ([0.05, True, 0.91], "array of finite numbers"),
        (b"[0.05, NaN, 0.91]", "array of finite numbers"),
        ({"probabilities": [0.05, 0.04, 0.91]}, "array of finite numbers"),
        (0.91, "array of finite numbers"),
        ([0.5, 0.5], "2 probabilities for 3 classes"),
        ([0.25, 0.25, 0.25, 0.25], "4 probabilities for 3 classes"),
        ({"prediction": [0.5, 0.5]}, "2 probabilities for 3 classes"),
    ],
)
def test_a_parent_answer_that_is_not_probabilities_is_a_bad_model_answer(aws, flower, answer, problem):
    aws.runtime.answers[PLANTS_ENDPOINT] = answer

    message = assert_error(call(event(flower)), 502, "bad_model_answer")

    assert problem in message
    assert f"`{PLANTS_ENDPOINT}`" in message
    assert aws.runtime.endpoints == [PLANTS_ENDPOINT]


def test_a_child_answer_of_the_wrong_length_is_a_bad_model_answer(aws, flower):
    aws.runtime.answers[TREES_ENDPOINT] = [0.5, 0.5, 0.0]

    message = assert_error(call(event(flower)), 502, "bad_model_answer")

    assert "Model `trees`" in message
    assert "3 probabilities for 6 classes" in message


def test_a_model_error_is_a_bad_model_answer(aws, flower):
    error = client_error("ModelError", "Received server error (500) from primary", "InvokeEndpoint")
    error.response["OriginalStatusCode"] = 500
    aws.runtime.answers[TREES_ENDPOINT] = error

    message = assert_error(call(event(flower)), 502, "bad_model_answer")

    assert "model error (status 500)" in message


def test_a_top_class_without_a_route_is_no_route(aws, flower):
    aws.runtime.answers[PLANTS_ENDPOINT] = [0.1, 0.8, 0.1]

    message = assert_error(call(event(flower)), 502, "no_route")

    assert "`grasses`" in message
    assert "routes: flowers, trees" in message
    assert aws.runtime.endpoints == [PLANTS_ENDPOINT]


def test_a_route_without_a_package_is_no_endpoint(aws, flower):
    aws.runtime.answers[PLANTS_ENDPOINT] = [0.9, 0.05, 0.05]

    message = assert_error(call(event(flower)), 503, "no_endpoint")

    assert "Model `flowers`" in message
    assert aws.runtime.endpoints == [PLANTS_ENDPOINT]
    assert FLOWERS_ENDPOINT not in aws.runtime.endpoints
    assert aws.sagemaker.calls == [PLANTS_ARN]


@pytest.mark.parametrize("package", [None, ""])
def test_a_parent_without_a_package_is_no_endpoint(aws, configure, flower, package):
    # The stack fills the parameter with "" while nothing is served; null reads the same.
    parent = dict(CONFIG["parent"], package=package)
    configure(parent=parent)

    message = assert_error(call(event(flower)), 503, "no_endpoint")

    assert "Model `plants`" in message
    assert aws.runtime.calls == []
    assert aws.sagemaker.calls == []


@pytest.mark.parametrize("endpoint, model", [(PLANTS_ENDPOINT, "plants"), (TREES_ENDPOINT, "trees")])
def test_an_endpoint_that_does_not_exist_is_no_endpoint(aws, flower, endpoint, model):
    aws.runtime.answers[endpoint] = client_error(
        "ValidationError",
        f"Could not find endpoint \"arn:aws:sagemaker:eu-west-1:222222222222:endpoint/{endpoint}\".",
        "InvokeEndpoint",
    )

    message = assert_error(call(event(flower)), 503, "no_endpoint")

    assert f"Model `{model}`" in message


def test_another_validation_error_is_internal(aws, flower, capsys):
    aws.runtime.answers[PLANTS_ENDPOINT] = client_error(
        "ValidationError", "1 validation error detected: Value at 'body' failed", "InvokeEndpoint"
    )

    assert_error(call(event(flower)), 500, "internal")
    assert "ValidationError" in capsys.readouterr().out


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url=RUNTIME_URL),
        ConnectTimeoutError(endpoint_url=RUNTIME_URL),
        EndpointConnectionError(endpoint_url=RUNTIME_URL),
    ],
    ids=["read-timeout", "connect-timeout", "endpoint-connection"],
)
@pytest.mark.parametrize("endpoint, model", [(PLANTS_ENDPOINT, "plants"), (TREES_ENDPOINT, "trees")])
def test_an_endpoint_that_does_not_answer_in_time_is_a_timeout(aws, flower, error, endpoint, model):
    aws.runtime.answers[endpoint] = error

    message = assert_error(call(event(flower)), 504, "timeout")

    assert f"Model `{model}`" in message
    assert "within 5 seconds" in message


# --- class names' errors ---------------------------------------------------------------------


def test_a_package_without_classes_metadata_is_classes_unavailable(aws, flower):
    aws.sagemaker.metadata[PLANTS_ARN] = None

    message = assert_error(call(event(flower)), 500, "classes_unavailable")

    assert f"`{PLANTS_ARN}`" in message
    assert "no `classes` metadata" in message
    assert aws.runtime.calls == []


def test_metadata_without_classes_is_classes_unavailable(aws, flower):
    aws.sagemaker.metadata[TREES_ARN] = {"source": "pipeline"}

    message = assert_error(call(event(flower)), 500, "classes_unavailable")

    assert f"`{TREES_ARN}`" in message


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"oak\nash\n", "not valid JSON"),
        (b'{"0": "oak"}', "non-empty JSON array"),
        (b"[]", "non-empty JSON array"),
        (b'["ash", "oak", "ash"]', "class `ash` is listed twice"),
        (b'["ash", "", "oak"]', "entry 1 is not a non-empty string"),
        (b'["ash", 7, "oak"]', "entry 1 is not a non-empty string"),
        (b"\xff\xfe[]", "not UTF-8"),
    ],
)
def test_a_malformed_classes_json_is_classes_unavailable(aws, flower, content, problem):
    aws.s3.objects[TREES_CLASSES_URI] = content

    message = assert_error(call(event(flower)), 500, "classes_unavailable")

    assert f"`{TREES_ARN}`" in message
    assert f"`{TREES_CLASSES_URI}`" in message
    assert problem in message


def test_a_missing_classes_json_is_classes_unavailable(aws, flower):
    del aws.s3.objects[PLANTS_CLASSES_URI]

    message = assert_error(call(event(flower)), 500, "classes_unavailable")

    assert f"`{PLANTS_ARN}`" in message
    assert f"`{PLANTS_CLASSES_URI}`" in message
    assert "NoSuchKey" in message


@pytest.mark.parametrize("uri", ["https://example.com/classes.json", "s3://bucket-only", "s3:///key"])
def test_a_classes_uri_that_is_not_an_s3_object_is_classes_unavailable(aws, flower, uri):
    aws.sagemaker.metadata[PLANTS_ARN] = {"classes": uri}

    message = assert_error(call(event(flower)), 500, "classes_unavailable")

    assert f"`{uri}`" in message
    assert aws.s3.calls == []


def test_a_package_that_cannot_be_described_is_classes_unavailable(aws, flower):
    del aws.sagemaker.metadata[TREES_ARN]

    message = assert_error(call(event(flower)), 500, "classes_unavailable")

    assert f"`{TREES_ARN}`" in message
    assert "DescribeModelPackage failed" in message


# --- unexpected failures ---------------------------------------------------------------------


def test_an_unexpected_exception_is_internal_and_logged_but_not_leaked(aws, flower, capsys):
    aws.runtime.answers[TREES_ENDPOINT] = RuntimeError("secret detail of the failure")

    answer = call(event(flower))

    message = assert_error(answer, 500, "internal")
    assert "req-1" in message
    assert "secret detail" not in answer.response["body"]
    assert "Traceback" not in answer.response["body"]
    output = capsys.readouterr().out
    assert "Traceback" in output
    assert "RuntimeError: secret detail of the failure" in output


def test_a_traceback_is_logged_as_one_line(aws, flower, capsys):
    aws.runtime.answers[PLANTS_ENDPOINT] = RuntimeError("boom")

    call(event(flower))

    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert len(lines) == 2
    assert "Traceback" in lines[0] and "RuntimeError: boom" in lines[0]
    assert json.loads(lines[1])["Outcome"] == "internal"


@pytest.mark.parametrize(
    "document, field",
    [
        (None, "ROUTER_CONFIG is not set"),
        ("{", "not valid JSON"),
        (json.dumps({**CONFIG, "routes": []}), "`routes`"),
        (json.dumps({**CONFIG, "max_image_bytes": "4.5MB"}), "`max_image_bytes`"),
        (json.dumps({**CONFIG, "parent": {"model": "plants", "package": None}}), "`parent.endpoint`"),
        (json.dumps({**CONFIG, "namespace": ""}), "`namespace`"),
        (json.dumps({**CONFIG, "parent": {**CONFIG["parent"], "package": 3}}), "`parent.package`"),
        (json.dumps({**CONFIG, "review": DATA_BUCKET}), "`review` must be an object"),
        (json.dumps({**CONFIG, "review": {"prefix": REVIEW_PREFIX}}), "`review.bucket`"),
        (json.dumps({**CONFIG, "review": {**REVIEW, "bucket": 7}}), "`review.bucket`"),
        (json.dumps({**CONFIG, "review": {"bucket": DATA_BUCKET}}), "`review.prefix`"),
        (json.dumps({**CONFIG, "review": {**REVIEW, "prefix": ""}}), "`review.prefix`"),
        (
            json.dumps({**CONFIG, "review": {**REVIEW, "prefix": "review/pending/plants"}}),
            '`review.prefix` must end with "/"',
        ),
    ],
)
def test_a_bad_configuration_is_internal_and_logged(aws, monkeypatch, flower, capsys, document, field):
    if document is None:
        monkeypatch.delenv(router.CONFIG_VARIABLE)
    else:
        monkeypatch.setenv(router.CONFIG_VARIABLE, document)

    assert_error(call(event(flower)), 500, "internal")

    output = capsys.readouterr().out
    assert field in output
    assert "_aws" not in output
    assert aws.runtime.calls == []


# --- metrics ---------------------------------------------------------------------------------

DIMENSIONS = [["Environment"], ["Environment", "Outcome"]]


def set_answer(endpoint: str, answer):
    return lambda aws: aws.runtime.answers.update({endpoint: answer})


def assert_embedded_metric_format(document: dict) -> None:
    """The document follows the EMF specification: a directive whose every dimension and
    metric is a member of the root, dimension values strings, metric values numbers."""
    metadata = document["_aws"]
    assert set(metadata) == {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(metadata["Timestamp"], int)
    (directive,) = metadata["CloudWatchMetrics"]
    assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
    for dimension_set in directive["Dimensions"]:
        for dimension in dimension_set:
            assert isinstance(document[dimension], str)
    for metric in directive["Metrics"]:
        assert set(metric) == {"Name", "Unit"}
        value = document[metric["Name"]]
        assert isinstance(value, (int, float)) and not isinstance(value, bool)


def test_a_success_prints_one_metric_line(aws, flower, capsys):
    before = int(time.time() * 1000)
    call(event(flower))
    after = int(time.time() * 1000)

    output = capsys.readouterr().out
    assert len(output.splitlines()) == 1
    document = json.loads(output)
    assert_embedded_metric_format(document)
    assert before <= document["_aws"]["Timestamp"] <= after
    assert document["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "mlops-images/staging/router",
            "Dimensions": DIMENSIONS,
            "Metrics": [
                {"Name": "Requests", "Unit": "Count"},
                {"Name": "Errors", "Unit": "Count"},
                {"Name": "LowConfidence", "Unit": "Count"},
                {"Name": "KeptForReview", "Unit": "Count"},
                {"Name": "ReviewKeepFailed", "Unit": "Count"},
                {"Name": "Latency", "Unit": "Milliseconds"},
                {"Name": "ParentConfidence", "Unit": "None"},
                {"Name": "ChildConfidence", "Unit": "None"},
            ],
        }
    ]
    latency = document.pop("Latency")
    assert 0 <= latency <= after - before + 1
    del document["_aws"]
    assert document == {
        "Environment": "staging",
        "Outcome": "ok",
        "RequestId": "req-1",
        "Requests": 1,
        "Errors": 0,
        "LowConfidence": 0,
        "KeptForReview": 0,
        "ReviewKeepFailed": 0,
        "ParentConfidence": 0.91,
        "ChildConfidence": 0.72,
    }


@pytest.mark.parametrize(
    "prepare, outcome",
    [
        (set_answer(PLANTS_ENDPOINT, [0.1, 0.8, 0.1]), "no_route"),
        (set_answer(TREES_ENDPOINT, ReadTimeoutError(endpoint_url="x")), "timeout"),
        (lambda aws: aws.s3.objects.update({PLANTS_CLASSES_URI: b"[]"}), "classes_unavailable"),
        (set_answer(PLANTS_ENDPOINT, RuntimeError("x")), "internal"),
    ],
)
def test_an_error_prints_its_code_as_the_outcome(aws, flower, capsys, prepare, outcome):
    prepare(aws)
    answer = call(event(flower))

    (document,) = metric_lines(capsys)
    assert_embedded_metric_format(document)
    assert document["Outcome"] == outcome
    assert document["Message"] == answer.body["message"]
    assert document["RequestId"] == "req-1"
    assert document["Errors"] == 1
    assert document["Requests"] == 1
    assert document["LowConfidence"] == 0
    assert document["KeptForReview"] == 0
    assert document["ReviewKeepFailed"] == 0
    names = [metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == ["Requests", "Errors", "LowConfidence", "KeptForReview", "ReviewKeepFailed", "Latency"]
    assert "ParentConfidence" not in document and "ChildConfidence" not in document


def test_a_client_error_counts_as_an_error(aws, capsys):
    call(event(b"GIF89a"))

    (document,) = metric_lines(capsys)
    assert document["Outcome"] == "not_an_image"
    assert document["Errors"] == 1
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == DIMENSIONS


def test_each_request_prints_its_own_line(aws, configure, flower, leaf, capsys):
    configure(namespace="mlops-images/prod/router", environment="prod")
    call(event(flower, request_id="a"))
    call(event(b"", request_id="b"))
    call(event(leaf, request_id="c"))

    documents = metric_lines(capsys)
    assert [d["RequestId"] for d in documents] == ["a", "b", "c"]
    assert [d["Outcome"] for d in documents] == ["ok", "not_an_image", "ok"]
    assert {d["Environment"] for d in documents} == {"prod"}
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents} == {"mlops-images/prod/router"}


# --- keeping for review ----------------------------------------------------------------------


@pytest.fixture
def review(aws, configure) -> Aws:
    """The fakes, with review configured and the trees model answering with low confidence."""
    configure(review=REVIEW)
    aws.runtime.answers[TREES_ENDPOINT] = LOW_TREES_ANSWER
    return aws


def log_lines(capsys) -> list[str]:
    """The log events printed since the last read that are not metric documents (split at
    newlines only, as Lambda does: a traceback's lines are joined with carriage returns)."""
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    return [line for line in lines if line and not line.startswith('{"_aws"')]


def test_a_low_confidence_answer_is_kept_as_its_image_then_its_record(review, flower):
    answer = call_at(review, event(flower))

    assert answer.status == 200
    assert answer.body["low_confidence"] is True
    assert answer.body["kept_for_review"] is True
    image, record = review.s3.puts
    assert image == {
        "Bucket": DATA_BUCKET,
        "Key": f"{STEM}.jpg",
        "Body": flower,
        "ContentType": "image/jpeg",
        "IfNoneMatch": "*",
    }
    assert record == {
        "Bucket": DATA_BUCKET,
        "Key": f"{STEM}.json",
        "Body": record["Body"],
        "ContentType": "application/json",
        "IfNoneMatch": "*",
    }
    assert json.loads(record["Body"]) == {
        "version": 1,
        "request_id": "req-1",
        "received_at": "2026-12-01T07:05:09Z",
        "environment": "staging",
        "image": {
            "key": f"{STEM}.jpg",
            "content_type": "image/jpeg",
            "bytes": len(flower),
            "sha256": hashlib.sha256(flower).hexdigest(),
        },
        "parent": {**HAPPY_BODY["subgroup"], "package": PLANTS_ARN},
        "child": {
            "name": "oak",
            "confidence": 0.25,
            "model": "trees",
            "package_version": "1",
            "top5": [
                {"name": "oak", "confidence": 0.25},
                {"name": "ash", "confidence": 0.2},
                {"name": "pine", "confidence": 0.2},
                {"name": "birch", "confidence": 0.15},
                {"name": "willow", "confidence": 0.1},
            ],
            "package": TREES_ARN,
        },
        "threshold": 0.6,
    }
    assert review.s3.kept() == {f"{STEM}.jpg": flower, f"{STEM}.json": record["Body"]}
    assert review.s3.deletes == []


def test_the_record_shows_the_models_as_the_answer_does(review, flower):
    review.runtime.answers[PLANTS_ENDPOINT] = [0.3, 0.2, 0.5]
    review.runtime.answers[TREES_ENDPOINT] = TREES_ANSWER

    answer = call_at(review, event(flower))

    record = json.loads(review.s3.kept()[f"{STEM}.json"])
    assert answer.body["kept_for_review"] is True
    assert record["parent"] == {**answer.body["subgroup"], "package": PLANTS_ARN}
    assert record["child"] == {**answer.body["species"], "package": TREES_ARN}


def test_a_kept_answer_is_the_answer_it_would_be_without_review(review, configure, flower):
    kept = call_at(review, event(flower))
    configure(review=None)
    plain = call_at(review, event(flower, request_id="req-2"))

    assert kept.body["kept_for_review"] is True and plain.body["kept_for_review"] is False
    for body in (kept.body, plain.body):
        del body["kept_for_review"], body["request_id"]
    assert kept.body == plain.body


def test_a_png_is_kept_as_png(review, png):
    answer = call_at(review, event(png, content_type="application/x-image"))

    assert answer.body["kept_for_review"] is True
    assert [(put["Key"], put["ContentType"]) for put in review.s3.puts] == [
        (f"{STEM}.png", "image/png"),
        (f"{STEM}.json", "application/json"),
    ]
    record = json.loads(review.s3.kept()[f"{STEM}.json"])
    assert record["image"] == {
        "key": f"{STEM}.png",
        "content_type": "image/png",
        "bytes": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
    }


def test_the_keys_use_the_utc_second_the_request_was_received(review, flower):
    paris = timezone(timedelta(hours=1))
    call_at(review, event(flower), datetime(2027, 1, 1, 0, 30, 0, 999999, tzinfo=paris))

    assert [put["Key"] for put in review.s3.puts] == [
        f"{REVIEW_PREFIX}20261231T233000Z-req-1.jpg",
        f"{REVIEW_PREFIX}20261231T233000Z-req-1.json",
    ]
    assert json.loads(review.s3.puts[1]["Body"])["received_at"] == "2026-12-31T23:30:00Z"


def test_keys_list_oldest_first(review, flower):
    call_at(review, event(flower, request_id="zzz"), RECEIVED)
    call_at(review, event(flower, request_id="aaa"), RECEIVED + timedelta(seconds=1))

    assert sorted(review.s3.kept()) == [
        f"{REVIEW_PREFIX}20261201T070509Z-zzz.jpg",
        f"{REVIEW_PREFIX}20261201T070509Z-zzz.json",
        f"{REVIEW_PREFIX}20261201T070510Z-aaa.jpg",
        f"{REVIEW_PREFIX}20261201T070510Z-aaa.json",
    ]


@pytest.mark.parametrize(
    "request_id, stem_id",
    [
        ("c0ffee12-3456-7890-abcd-ef0123456789", "c0ffee12-3456-7890-abcd-ef0123456789"),
        ("../../etc/passwd", "etcpasswd"),
        ("a b_c.d?e=f&g", "abcdefg"),
        ("caf\u00e9-\u2615-1", "caf--1"),
        ("x" * 100, "x" * 64),
    ],
    ids=["uuid", "path", "punctuation", "non-ascii", "long"],
)
def test_the_request_id_in_a_key_keeps_only_letters_digits_and_hyphens(review, flower, request_id, stem_id):
    call_at(review, event(flower, request_id=request_id))

    stem = f"{REVIEW_PREFIX}20261201T070509Z-{stem_id}"
    assert [put["Key"] for put in review.s3.puts] == [f"{stem}.jpg", f"{stem}.json"]
    assert json.loads(review.s3.puts[1]["Body"])["request_id"] == request_id


@pytest.mark.parametrize("request_id", [None, "", "///"], ids=["none", "empty", "nothing-safe"])
def test_without_a_usable_request_id_a_key_gets_a_random_id(review, flower, request_id):
    first, second = event(flower), event(flower)
    for request in (first, second):
        request["requestContext"]["requestId"] = request_id

    assert call_at(review, first).body["kept_for_review"] is True
    assert call_at(review, second).body["kept_for_review"] is True

    images = [put["Key"] for put in review.s3.puts if put["Key"].endswith(".jpg")]
    assert len(images) == 2 and images[0] != images[1]
    for key in images:
        assert re.fullmatch(rf"{REVIEW_PREFIX}20261201T070509Z-[0-9a-f]{{32}}\.jpg", key)
    assert json.loads(review.s3.puts[1]["Body"])["request_id"] == request_id


def test_both_puts_refuse_to_overwrite_and_leave_encryption_to_the_bucket(review, flower):
    # Naming "aws:kms" without a key would encrypt with aws/s3, not the data bucket's key.
    call_at(review, event(flower))

    assert len(review.s3.puts) == 2
    for put in review.s3.puts:
        assert put["IfNoneMatch"] == "*"
        assert not {"ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled"} & set(put)


def test_an_existing_image_is_not_overwritten_nor_deleted(review, flower, capsys):
    existing = f"s3://{DATA_BUCKET}/{STEM}.jpg"
    review.s3.objects[existing] = b"an earlier photo"

    answer = call_at(review, event(flower))

    assert answer.status == 200
    assert answer.body["kept_for_review"] is False
    assert review.s3.objects[existing] == b"an earlier photo"
    assert [put["Key"] for put in review.s3.puts] == [f"{STEM}.jpg"]
    assert review.s3.deletes == []
    (line,) = log_lines(capsys)
    assert "PreconditionFailed" in line


def test_a_confident_answer_is_not_kept(aws, configure, flower, capsys):
    configure(review=REVIEW)

    answer = call(event(flower))

    assert answer.body == HAPPY_BODY
    assert aws.s3.puts == []
    (document,) = metric_lines(capsys)
    assert (document["KeptForReview"], document["ReviewKeepFailed"]) == (0, 0)


@pytest.mark.parametrize("setting", ["absent", "null"])
def test_without_review_nothing_is_kept(aws, configure, flower, capsys, setting):
    if setting == "null":
        configure(review=None)
    aws.runtime.answers[TREES_ENDPOINT] = LOW_TREES_ANSWER

    answer = call(event(flower))

    assert answer.status == 200
    assert answer.body["low_confidence"] is True
    assert answer.body["kept_for_review"] is False
    assert aws.s3.puts == []
    (document,) = metric_lines(capsys)
    assert (document["LowConfidence"], document["KeptForReview"], document["ReviewKeepFailed"]) == (1, 0, 0)


def test_an_error_answer_is_not_kept(review, flower):
    review.runtime.answers[TREES_ENDPOINT] = ReadTimeoutError(endpoint_url=RUNTIME_URL)

    answer = call_at(review, event(flower))

    assert_error(answer, 504, "timeout")
    assert review.s3.puts == []


def test_a_kept_answer_counts_in_the_metrics(review, flower, capsys):
    answer = call(event(flower))

    assert answer.body["kept_for_review"] is True
    assert len(review.s3.kept()) == 2
    (document,) = metric_lines(capsys)
    assert_embedded_metric_format(document)
    assert (document["LowConfidence"], document["KeptForReview"], document["ReviewKeepFailed"]) == (1, 1, 0)


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDenied", "User is not authorized to perform: kms:GenerateDataKey", "PutObject"),
        EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com"),
        RuntimeError("an unexpected failure"),
    ],
    ids=["client-error", "botocore-error", "anything"],
)
def test_a_failed_record_deletes_its_image_and_the_answer_stands(review, flower, capsys, error):
    review.s3.put_failures[".json"] = error

    answer = call(event(flower))

    assert answer.status == 200
    assert answer.body["species"]["name"] == "oak"
    assert answer.body["low_confidence"] is True
    assert answer.body["kept_for_review"] is False
    assert [put["Key"].rsplit(".", 1)[-1] for put in review.s3.puts] == ["jpg", "json"]
    image_key = review.s3.puts[0]["Key"]
    assert review.s3.deletes == [(DATA_BUCKET, image_key)]
    assert review.s3.kept() == {}
    output = capsys.readouterr().out
    log, metrics = output.rstrip("\n").split("\n")
    assert log.startswith("request req-1: review copy not kept: Traceback")
    assert type(error).__name__ in log
    document = json.loads(metrics)
    assert (document["Outcome"], document["Errors"]) == ("ok", 0)
    assert (document["LowConfidence"], document["KeptForReview"], document["ReviewKeepFailed"]) == (1, 0, 1)


def test_a_failed_image_writes_no_record_and_deletes_nothing(review, flower, capsys):
    review.s3.put_failures[".jpg"] = client_error("AccessDenied", "Access Denied", "PutObject")

    answer = call(event(flower))

    assert answer.status == 200
    assert answer.body["kept_for_review"] is False
    assert len(review.s3.puts) == 1 and review.s3.puts[0]["Key"].endswith(".jpg")
    assert review.s3.deletes == []
    (document,) = metric_lines(capsys)
    assert (document["KeptForReview"], document["ReviewKeepFailed"]) == (0, 1)


def test_a_failed_delete_is_logged_and_the_answer_stands(review, flower, capsys):
    review.s3.put_failures[".json"] = client_error("InternalError", "Internal error.", "PutObject")
    review.s3.delete_failure = client_error("AccessDenied", "Access Denied", "DeleteObject")

    answer = call_at(review, event(flower))

    assert answer.status == 200
    assert answer.body["kept_for_review"] is False
    assert review.s3.deletes == [(DATA_BUCKET, f"{STEM}.jpg")]
    kept, deleted = log_lines(capsys)
    assert kept.startswith("request req-1: review copy not kept: ") and "InternalError" in kept
    assert f"`s3://{DATA_BUCKET}/{STEM}.jpg` without its record not deleted" in deleted
    assert "AccessDenied" in deleted


def test_a_failure_to_create_the_s3_client_does_not_fail_the_answer(monkeypatch, configure, flower, capsys):
    configure(review=REVIEW)
    runtime = FakeRuntime({PLANTS_ENDPOINT: PLANTS_ANSWER, TREES_ENDPOINT: LOW_TREES_ANSWER})
    config = router.parse_config(os.environ[router.CONFIG_VARIABLE])
    # No S3 client is given, so keeping for review creates one; the cache spares reading classes.
    clients = router.Clients(config.timeout_seconds, sagemaker=FakeSageMaker({}), runtime=runtime)

    def no_client(service, **options):
        raise RuntimeError(f"cannot create a {service} client")

    monkeypatch.setattr(router.boto3, "client", no_client)
    cache = {PLANTS_ARN: PLANTS_CLASSES, TREES_ARN: TREES_CLASSES}

    outcome = router.route(event(flower), config, clients, cache, now=lambda: RECEIVED)

    assert outcome.status == 200
    assert outcome.body["kept_for_review"] is False
    assert (outcome.kept_for_review, outcome.review_keep_failed) == (False, True)
    assert "cannot create a s3 client" in capsys.readouterr().out


def test_a_real_s3_client_sends_if_none_match_and_no_encryption_header(aws, configure, monkeypatch, flower):
    """boto3's own S3 client, as Lambda builds it, with its HTTP send replaced by a 200: the
    parameters pass botocore's validation and become the request's headers."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    configure(review=REVIEW)
    aws.runtime.answers[TREES_ENDPOINT] = LOW_TREES_ANSWER
    s3 = router.Clients(timeout_seconds=5).s3
    sent = []

    class Empty:
        def stream(self):
            return iter([b""])

    def accept(request, **_):
        sent.append((request.url, dict(request.headers)))
        return AWSResponse(request.url, 200, {"ETag": '"x"'}, Empty())

    s3.meta.events.register("before-send.s3.PutObject", accept)
    config = router.parse_config(os.environ[router.CONFIG_VARIABLE])
    clients = router.Clients(config.timeout_seconds, sagemaker=aws.sagemaker, runtime=aws.runtime, s3=s3)
    cache = {PLANTS_ARN: PLANTS_CLASSES, TREES_ARN: TREES_CLASSES}

    outcome = router.route(event(flower), config, clients, cache, now=lambda: RECEIVED)

    assert outcome.body["kept_for_review"] is True
    assert [url.rsplit("/", 4)[-4:] for url, _ in sent] == [
        ["review", "pending", "plants", "20261201T070509Z-req-1.jpg"],
        ["review", "pending", "plants", "20261201T070509Z-req-1.json"],
    ]
    headers = [
        {name.lower(): value.decode() if isinstance(value, bytes) else value for name, value in raw.items()}
        for _, raw in sent
    ]
    for sent_headers in headers:
        assert sent_headers["if-none-match"] == "*"
        assert not any(name.startswith("x-amz-server-side-encryption") for name in sent_headers)
    assert [sent_headers["content-type"] for sent_headers in headers] == ["image/jpeg", "application/json"]


def test_a_review_configuration_is_read(configure):
    document = configure(review=REVIEW)

    config = router.parse_config(json.dumps(document))

    assert config.review == router.Review(bucket=DATA_BUCKET, prefix=REVIEW_PREFIX)
    assert router.parse_config(json.dumps(CONFIG)).review is None
    assert router.parse_config(json.dumps({**CONFIG, "review": None})).review is None



# --- clients ---------------------------------------------------------------------------------


def test_the_runtime_client_has_the_configured_timeouts(monkeypatch):
    created = []

    def client(service, **options):
        created.append((service, options))
        return service

    monkeypatch.setattr(router.boto3, "client", client)

    clients = router.Clients(timeout_seconds=5)
    assert clients.runtime == "sagemaker-runtime"
    assert clients.runtime == "sagemaker-runtime"

    ((service, options),) = created
    config = options["config"]
    assert service == "sagemaker-runtime"
    assert config.read_timeout == 5
    assert config.connect_timeout <= 2
    assert config.retries == {"total_max_attempts": 1}


def test_a_real_runtime_client_tries_a_timed_out_call_once_then_answers_timeout(
    aws, monkeypatch, flower
):
    """boto3's own client, as Lambda builds it, with its HTTP send replaced by a read timeout."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    runtime = router.Clients(timeout_seconds=5).runtime
    sent = []

    def read_timeout(request, **_):
        sent.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", read_timeout)
    router.set_clients(runtime=runtime)

    assert_error(call(event(flower)), 504, "timeout")
    assert len(sent) == 1
    assert all(url.endswith(f"/endpoints/{PLANTS_ENDPOINT}/invocations") for url in sent)


def test_clients_are_created_only_when_used(monkeypatch, configure, flower):
    created = []
    monkeypatch.setattr(router.boto3, "client", lambda service, **options: created.append(service))

    assert_error(call(event(b"")), 400, "not_an_image")

    assert created == []


def test_the_configuration_is_read_once_per_container(aws, monkeypatch, flower):
    assert call(event(flower)).status == 200
    changed = copy.deepcopy(CONFIG)
    changed["parent"]["endpoint"] = "another-endpoint"
    monkeypatch.setenv(router.CONFIG_VARIABLE, json.dumps(changed))

    assert call(event(flower)).status == 200
    assert aws.runtime.endpoints == [PLANTS_ENDPOINT, TREES_ENDPOINT] * 2
