"""The router Lambda function: names the species in a photo with a parent and a child model.

API Gateway (REST API, Lambda proxy integration, payload format 1.0) sends `POST /identify`
with the photo as the body. The function invokes the parent model's SageMaker endpoint with
the image, takes the top class (a sub-group), invokes that sub-group's child endpoint with the
same bytes, and answers JSON. Entry point: `handler.handler`.

Configuration: the environment variable `ROUTER_CONFIG`, a JSON document:

    {"parent": {"model": "plants", "endpoint": "mlops-images-staging-plants",
                "package": "arn:aws:sagemaker:...:model-package/mlops-images-staging-plants/3"},
     "routes": {"trees":   {"model": "trees", "endpoint": "...", "package": "arn:..."},
                "flowers": {"model": "flowers", "endpoint": "...", "package": null}},
     "low_confidence_threshold": 0.6, "max_image_bytes": 4500000, "timeout_seconds": 5,
     "namespace": "mlops-images/staging/router", "environment": "staging",
     "review": {"bucket": "mlops-images-staging-data", "prefix": "review/pending/plants/"}}

A route's key is a class name of the parent model. `package` is null or empty when the model
has no approved package deployed (no endpoint): a request routed there gets 503. `review` is
optional: absent or null keeps nothing; an object names the data bucket and the key prefix
(non-empty, ending in "/") where low-confidence requests are kept for human review.

Class names: at a model's first use in the container, `DescribeModelPackage` on its package
gives `CustomerMetadataProperties["classes"]`, the `s3://bucket/key` URI of a classes.json (a
JSON array of the class names in class-index order); it is read once and kept per package.

Request: the body is the image (base64 when `isBase64Encoded`, else the string's latin-1
bytes), with `Content-Type` image/jpeg, image/png or application/x-image; the bytes must start
with JPEG's or PNG's magic. Endpoints get it as `application/x-image` and answer
`application/json`: an array of class probabilities in class-index order (or
`{"prediction": [...]}`), as long as the model's class list.

Success, 200:

    {"subgroup": {"name", "confidence", "model", "package_version", "top5": [{"name", "confidence"}]},
     "species":  {... the same for the child model ...},
     "low_confidence": <either top-1 confidence below low_confidence_threshold>,
     "request_id": <requestContext.requestId>,
     "kept_for_review": <the request was kept for review (see below)>}

Ranking is by probability descending, ties by class name ascending; confidences are rounded
to 6 decimals; `package_version` is the package ARN's last path segment.

Errors answer `{"error": <code>, "message": <what happened and what to do>}`:
400 not_an_image (empty body, undecodable base64, another Content-Type, neither JPEG nor PNG),
413 image_too_large, 502 bad_model_answer (an answer that is not JSON, not finite numbers,
the wrong length, or a model error), 502 no_route, 503 no_endpoint (package null, or the
endpoint not found), 504 timeout, 500 classes_unavailable, 500 internal (traceback logged).

Review: when `review` is configured, a low-confidence success is kept in its bucket as two
objects, both written with PutObject and `IfNoneMatch="*"` (nothing existing is overwritten).
No encryption header is sent, so the bucket's default encryption (SSE-KMS with the data key)
applies: `ServerSideEncryption="aws:kms"` without a key id would choose the AWS managed key
`aws/s3` instead (S3 API reference, PutObject).

    <prefix><stem>.jpg or .png   the image as received, ContentType image/jpeg or image/png
    <prefix><stem>.json          the record, ContentType application/json, written after the image

`<stem>` is `<YYYYmmddTHHMMSSZ>-<id>`: the UTC time the request was received, then the API
Gateway request id with everything but [A-Za-z0-9-] dropped (at most 64 characters), or a
uuid4 hex when there is none; S3 lists a prefix oldest first. The record:

    {"version": 1, "request_id": <requestContext.requestId or null>,
     "received_at": "2026-12-01T07:05:09Z", "environment": <environment>,
     "image": {"key": <the image's key>, "content_type": "image/jpeg", "bytes": <length>,
               "sha256": <hex digest>},
     "parent": {... the answer's subgroup ..., "package": <the parent's package ARN>},
     "child":  {... the answer's species ..., "package": <the child's package ARN>},
     "threshold": <low_confidence_threshold>}

Keeping never changes the answer's status or classification: any failure to write is logged
on stdout as one line ("review copy not kept: " and the traceback), an image written before
its record failed is deleted (best effort), and the answer says `"kept_for_review": false`.

Metrics: one CloudWatch Embedded Metric Format line per request on stdout, in the configured
namespace, dimensions [Environment] and [Environment, Outcome] (Outcome: the error code or
"ok"): Requests, Errors, LowConfidence, KeptForReview (1 when both objects were written),
ReviewKeepFailed (1 when keeping was attempted and failed) (Count), Latency (Milliseconds)
and, on success, ParentConfidence and ChildConfidence (None). The line also carries RequestId
and, for an error, its Message (log fields, not metrics).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

CONFIG_VARIABLE = "ROUTER_CONFIG"
ACCEPTED_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")
ENDPOINT_CONTENT_TYPE = "application/x-image"
ENDPOINT_ACCEPT = "application/json"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONNECT_TIMEOUT_SECONDS = 2
TOP_COUNT = 5
DECIMALS = 6
ENDPOINT_NOT_FOUND = "Could not find endpoint"
TIMEOUT_ERRORS = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError)
REVIEW_RECORD_VERSION = 1
REVIEW_ID_LENGTH = 64
REVIEW_ID_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
REVIEW_LOG_PREFIX = "review copy not kept: "


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """One model as the router uses it: its name, endpoint and deployed package (or None)."""

    name: str
    endpoint: str
    package: str | None

    @property
    def package_version(self) -> str:
        return (self.package or "").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Review:
    """Where low-confidence requests are kept for human review: a bucket and a key prefix."""

    bucket: str
    prefix: str


@dataclass(frozen=True)
class RouterConfig:
    """ROUTER_CONFIG, checked."""

    parent: Model
    routes: dict[str, Model]
    low_confidence_threshold: float
    max_image_bytes: int
    timeout_seconds: float
    namespace: str
    environment: str
    review: Review | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(document: dict, key: str, where: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{CONFIG_VARIABLE}: `{where}{key}` must be a non-empty string")
    return value


def _model(document: Any, where: str) -> Model:
    if not isinstance(document, dict):
        raise ValueError(f"{CONFIG_VARIABLE}: `{where}` must be an object")
    package = document.get("package")
    if package is not None and not isinstance(package, str):
        raise ValueError(f"{CONFIG_VARIABLE}: `{where}.package` must be a model package ARN, empty or null")
    return Model(
        name=_text(document, "model", f"{where}."),
        endpoint=_text(document, "endpoint", f"{where}."),
        # The stack fills an empty parameter while a model serves nothing.
        package=package or None,
    )


def _review(document: Any) -> Review | None:
    if document is None:
        return None
    if not isinstance(document, dict):
        raise ValueError(
            f"{CONFIG_VARIABLE}: `review` must be an object with `bucket` and `prefix`, or null"
        )
    bucket = _text(document, "bucket", "review.")
    prefix = _text(document, "prefix", "review.")
    if not prefix.endswith("/"):
        raise ValueError(f'{CONFIG_VARIABLE}: `review.prefix` must end with "/" (it is `{prefix}`)')
    return Review(bucket=bucket, prefix=prefix)


def parse_config(text: str) -> RouterConfig:
    """ROUTER_CONFIG's JSON as a RouterConfig; raises ValueError naming the bad field."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{CONFIG_VARIABLE} is not valid JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{CONFIG_VARIABLE} must be a JSON object")
    routes = document.get("routes")
    if not isinstance(routes, dict):
        raise ValueError(f"{CONFIG_VARIABLE}: `routes` must be an object")
    threshold = document.get("low_confidence_threshold")
    if not _is_number(threshold) or not 0 <= threshold <= 1:
        raise ValueError(f"{CONFIG_VARIABLE}: `low_confidence_threshold` must be a number from 0 to 1")
    max_bytes = document.get("max_image_bytes")
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
        raise ValueError(f"{CONFIG_VARIABLE}: `max_image_bytes` must be a positive whole number")
    timeout = document.get("timeout_seconds")
    if not _is_number(timeout) or timeout <= 0:
        raise ValueError(f"{CONFIG_VARIABLE}: `timeout_seconds` must be a positive number")
    return RouterConfig(
        parent=_model(document.get("parent"), "parent"),
        routes={name: _model(route, f"routes.{name}") for name, route in routes.items()},
        low_confidence_threshold=float(threshold),
        max_image_bytes=max_bytes,
        timeout_seconds=float(timeout),
        namespace=_text(document, "namespace", ""),
        environment=_text(document, "environment", ""),
        review=_review(document.get("review")),
    )


# --- per-container state: configuration, clients, class names --------------------------------


class Clients:
    """The AWS clients, each created at its first use unless given."""

    def __init__(self, timeout_seconds: float, sagemaker: Any = None, runtime: Any = None, s3: Any = None):
        self._timeout_seconds = timeout_seconds
        self._sagemaker = sagemaker
        self._runtime = runtime
        self._s3 = s3

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            self._sagemaker = boto3.client("sagemaker")
        return self._sagemaker

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            self._runtime = boto3.client(
                "sagemaker-runtime",
                config=BotoConfig(
                    read_timeout=self._timeout_seconds,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    # One attempt per call: the function's own timeout covers two calls.
                    retries={"total_max_attempts": 1},
                ),
            )
        return self._runtime

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3


_config: RouterConfig | None = None
_clients: Clients | None = None
_injected_clients: dict[str, Any] = {}
_class_names: dict[str, list[str]] = {}


def set_clients(*, sagemaker: Any = None, runtime: Any = None, s3: Any = None) -> None:
    """Uses these clients instead of boto3's (those given; the others stay boto3's)."""
    global _clients
    given = {"sagemaker": sagemaker, "runtime": runtime, "s3": s3}
    _injected_clients.update({name: client for name, client in given.items() if client is not None})
    _clients = None


def reset() -> None:
    """Forgets the container's configuration, clients and class names, as a new container."""
    global _config, _clients
    _config = None
    _clients = None
    _injected_clients.clear()
    _class_names.clear()


def _container_config() -> RouterConfig:
    global _config
    if _config is None:
        text = os.environ.get(CONFIG_VARIABLE)
        if text is None:
            raise ValueError(f"{CONFIG_VARIABLE} is not set")
        _config = parse_config(text)
    return _config


def _container_clients(config: RouterConfig) -> Clients:
    global _clients
    if _clients is None:
        _clients = Clients(config.timeout_seconds, **_injected_clients)
    return _clients


# --- errors and outcomes ---------------------------------------------------------------------


class RouterError(Exception):
    """A request that ends in an error answer: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Classification:
    """One model's answer: its classes ranked, best first."""

    model: Model
    ranked: list[tuple[str, float]]

    @property
    def top(self) -> tuple[str, float]:
        return self.ranked[0]


@dataclass(frozen=True)
class Outcome:
    """What a request ended in: the answer, and what its metrics need."""

    status: int
    body: dict
    code: str
    request_id: str | None
    low_confidence: bool = False
    parent_confidence: float | None = None
    child_confidence: float | None = None
    kept_for_review: bool = False
    review_keep_failed: bool = False

    @property
    def response(self) -> dict:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(self.body),
            "isBase64Encoded": False,
        }


def _failure(error: RouterError, request_id: str | None) -> Outcome:
    return Outcome(
        status=error.status,
        body={"error": error.code, "message": error.message},
        code=error.code,
        request_id=request_id,
    )


def _internal_error(request_id: str | None) -> RouterError:
    reference = f" (request {request_id})" if request_id else ""
    message = f"The router failed unexpectedly{reference}; try again, and report it if it persists."
    return RouterError(500, "internal", message)


def _log_exception(request_id: str | None, context: str = "") -> None:
    """The current traceback on stdout as one log event (Lambda splits events at newlines),
    after the request id and `context` (what failed, when it is not the request)."""
    prefix = (f"request {request_id}: " if request_id else "") + context
    text = prefix + traceback.format_exc().rstrip("\n")
    print(text.replace("\n", "\r"), flush=True)


# --- the request -----------------------------------------------------------------------------


def _header(event: dict, name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


def _request_id(event: dict) -> str | None:
    return (event.get("requestContext") or {}).get("requestId")


def _not_an_image(message: str) -> RouterError:
    return RouterError(400, "not_an_image", message)


def _check_content_type(event: dict) -> None:
    header = _header(event, "content-type")
    media_type = (header or "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        shown = f"Content-Type `{header}`" if header else "A request without Content-Type"
        raise _not_an_image(
            f"{shown} is not accepted; send the photo's bytes with Content-Type "
            "image/jpeg, image/png or application/x-image."
        )


def _body_bytes(event: dict) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            raise _not_an_image(
                "The body is marked base64 but does not decode; send the photo's bytes as the body."
            ) from None
    try:
        return body.encode("latin-1")
    except UnicodeEncodeError:
        raise _not_an_image(
            "The body arrived as text, not image bytes; send a JPEG or PNG photo as the body."
        ) from None


def read_image(event: dict, max_bytes: int) -> bytes:
    """The request's image bytes; raises RouterError (400, 413) when they cannot be one."""
    _check_content_type(event)
    image = _body_bytes(event)
    if not image:
        raise _not_an_image("The request body is empty; send a JPEG or PNG photo as the body.")
    if len(image) > max_bytes:
        raise RouterError(
            413,
            "image_too_large",
            f"The image is {len(image)} bytes, over the {max_bytes}-byte limit; "
            "send a smaller or more compressed photo.",
        )
    if not (image.startswith(JPEG_MAGIC) or image.startswith(PNG_MAGIC)):
        raise _not_an_image("The body is neither a JPEG nor a PNG image; send a JPEG or PNG photo.")
    return image


# --- class names -----------------------------------------------------------------------------


def _classes_error(package: str, problem: str) -> RouterError:
    return RouterError(
        500,
        "classes_unavailable",
        f"The class names of model package `{package}` are unavailable: {problem}; "
        "check the package's `classes` metadata and the classes.json it names.",
    )


def parse_class_names(text: str) -> list[str]:
    """classes.json's text as the class names; raises ValueError saying what is wrong."""
    try:
        names = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg})") from None
    if not isinstance(names, list) or not names:
        raise ValueError("not a non-empty JSON array of class names")
    for position, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ValueError(f"entry {position} is not a non-empty string")
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"class `{repeated}` is listed twice")
    return names


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"`{uri}` is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"`{uri}` does not name a bucket and a key")
    return bucket, key


def _classes_uri(package: str, sagemaker: Any) -> str:
    try:
        description = sagemaker.describe_model_package(ModelPackageName=package)
    except (ClientError, BotoCoreError) as error:
        raise _classes_error(package, f"DescribeModelPackage failed ({error})") from None
    uri = (description.get("CustomerMetadataProperties") or {}).get("classes")
    if not uri:
        raise _classes_error(package, "the package has no `classes` metadata property")
    return uri


def load_class_names(package: str, sagemaker: Any, s3: Any) -> list[str]:
    """The package's class names, from the classes.json its `classes` metadata names."""
    uri = _classes_uri(package, sagemaker)
    try:
        bucket, key = _split_s3_uri(uri)
    except ValueError as error:
        raise _classes_error(package, str(error)) from None
    try:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except (ClientError, BotoCoreError) as error:
        raise _classes_error(package, f"`{uri}` cannot be read ({error})") from None
    except UnicodeDecodeError:
        raise _classes_error(package, f"`{uri}` is not UTF-8 text") from None
    try:
        return parse_class_names(text)
    except ValueError as error:
        raise _classes_error(package, f"`{uri}`: {error}") from None


def class_names(package: str, clients: Clients, cache: dict[str, list[str]]) -> list[str]:
    """The package's class names, loaded at its first use and kept in `cache`."""
    names = cache.get(package)
    if names is None:
        names = load_class_names(package, clients.sagemaker, clients.s3)
        cache[package] = names
    return names


# --- endpoints -------------------------------------------------------------------------------


def _no_endpoint(model: Model) -> RouterError:
    return RouterError(
        503,
        "no_endpoint",
        f"Model `{model.name}` has no deployed endpoint; "
        f"approve and deploy a package of `{model.name}`, then retry.",
    )


def _bad_answer(model: Model, problem: str) -> RouterError:
    return RouterError(
        502,
        "bad_model_answer",
        f"Model `{model.name}` (endpoint `{model.endpoint}`) {problem}; retry, and report it if it persists.",
    )


def invoke(model: Model, image: bytes, runtime: Any, timeout_seconds: float) -> bytes:
    """The endpoint's answer body for the image; raises RouterError (502, 503, 504)."""
    try:
        answer = runtime.invoke_endpoint(
            EndpointName=model.endpoint,
            ContentType=ENDPOINT_CONTENT_TYPE,
            Accept=ENDPOINT_ACCEPT,
            Body=image,
        )
        return answer["Body"].read()
    except TIMEOUT_ERRORS:
        raise RouterError(
            504,
            "timeout",
            f"Model `{model.name}` (endpoint `{model.endpoint}`) did not answer "
            f"within {timeout_seconds:g} seconds; retry.",
        ) from None
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") == "ValidationError" and ENDPOINT_NOT_FOUND in details.get("Message", ""):
            raise _no_endpoint(model) from None
        if details.get("Code") == "ModelError":
            status = error.response.get("OriginalStatusCode")
            shown = f" (status {status})" if status else ""
            raise _bad_answer(model, f"answered with a model error{shown}") from None
        raise


def parse_probabilities(model: Model, body: bytes, class_count: int) -> list[float]:
    """An endpoint's answer as class probabilities; raises RouterError (502) when it is not."""
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad_answer(model, "answered something that is not JSON") from None
    if isinstance(answer, dict) and "prediction" in answer:
        answer = answer["prediction"]
    if not isinstance(answer, list) or not all(_is_number(value) for value in answer):
        raise _bad_answer(model, "answered something other than an array of finite numbers")
    if len(answer) != class_count:
        raise _bad_answer(model, f"answered {len(answer)} probabilities for {class_count} classes")
    return [float(value) for value in answer]


def rank(names: list[str], probabilities: list[float]) -> list[tuple[str, float]]:
    """Classes by probability descending, ties by name ascending."""
    return sorted(zip(names, probabilities), key=lambda pair: (-pair[1], pair[0]))


def classify(
    model: Model, image: bytes, config: RouterConfig, clients: Clients, cache: dict[str, list[str]]
) -> Classification:
    """One model's ranked answer for the image."""
    if model.package is None:
        raise _no_endpoint(model)
    names = class_names(model.package, clients, cache)
    body = invoke(model, image, clients.runtime, config.timeout_seconds)
    return Classification(model, rank(names, parse_probabilities(model, body, len(names))))


def identify(
    image: bytes, config: RouterConfig, clients: Clients, cache: dict[str, list[str]]
) -> tuple[Classification, Classification]:
    """The parent's classification, then that of the child its top class routes to."""
    parent = classify(config.parent, image, config, clients, cache)
    subgroup = parent.top[0]
    child = config.routes.get(subgroup)
    if child is None:
        routes = ", ".join(sorted(config.routes)) or "none"
        raise RouterError(
            502,
            "no_route",
            f"Model `{parent.model.name}` chose sub-group `{subgroup}`, "
            f"which has no route (routes: {routes}); "
            "add a route for it to the router's configuration.",
        )
    return parent, classify(child, image, config, clients, cache)


# --- the answer ------------------------------------------------------------------------------


def _confidence(probability: float) -> float:
    return round(probability, DECIMALS)


def describe(classification: Classification) -> dict:
    """A classification as the answer shows it."""
    name, probability = classification.top
    return {
        "name": name,
        "confidence": _confidence(probability),
        "model": classification.model.name,
        "package_version": classification.model.package_version,
        "top5": [{"name": n, "confidence": _confidence(p)} for n, p in classification.ranked[:TOP_COUNT]],
    }


def is_low_confidence(parent: Classification, child: Classification, threshold: float) -> bool:
    """Whether either model's top-1 confidence, as the answer shows it, is below the threshold."""
    return _confidence(parent.top[1]) < threshold or _confidence(child.top[1]) < threshold


def _success(
    parent: Classification,
    child: Classification,
    threshold: float,
    request_id: str | None,
    kept_for_review: bool,
    review_keep_failed: bool,
) -> Outcome:
    low_confidence = is_low_confidence(parent, child, threshold)
    body = {
        "subgroup": describe(parent),
        "species": describe(child),
        "low_confidence": low_confidence,
        "request_id": request_id,
        "kept_for_review": kept_for_review,
    }
    return Outcome(
        200,
        body,
        "ok",
        request_id,
        low_confidence,
        _confidence(parent.top[1]),
        _confidence(child.top[1]),
        kept_for_review,
        review_keep_failed,
    )


# --- keeping for review ----------------------------------------------------------------------


def utc_now() -> datetime:
    """The current time in UTC (route's clock unless a test gives another)."""
    return datetime.now(timezone.utc)


def _utc(moment: datetime) -> datetime:
    """The moment in UTC to the second; a naive datetime is taken as UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def image_format(image: bytes) -> tuple[str, str]:
    """The image's file extension and media type, from its magic bytes (read_image checked them)."""
    if image.startswith(PNG_MAGIC):
        return "png", "image/png"
    if image.startswith(JPEG_MAGIC):
        return "jpg", "image/jpeg"
    raise ValueError("the image is neither a JPEG nor a PNG")


def review_stem(received_at: datetime, request_id: str | None) -> str:
    """`<YYYYmmddTHHMMSSZ>-<id>`: the request id with only [A-Za-z0-9-] kept, else a uuid4 hex."""
    safe = REVIEW_ID_UNSAFE.sub("", request_id or "")[:REVIEW_ID_LENGTH] or uuid.uuid4().hex
    return f"{_utc(received_at):%Y%m%dT%H%M%SZ}-{safe}"


def review_record(
    config: RouterConfig,
    request_id: str | None,
    received_at: datetime,
    image: bytes,
    image_key: str,
    parent: Classification,
    child: Classification,
) -> dict:
    """The record kept beside a low-confidence request's image."""
    _, content_type = image_format(image)
    return {
        "version": REVIEW_RECORD_VERSION,
        "request_id": request_id,
        "received_at": f"{_utc(received_at):%Y-%m-%dT%H:%M:%SZ}",
        "environment": config.environment,
        "image": {
            "key": image_key,
            "content_type": content_type,
            "bytes": len(image),
            "sha256": hashlib.sha256(image).hexdigest(),
        },
        "parent": {**describe(parent), "package": parent.model.package},
        "child": {**describe(child), "package": child.model.package},
        "threshold": config.low_confidence_threshold,
    }


def _put_new(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    """Writes an object that must not exist yet. Without encryption parameters the bucket's
    default (SSE-KMS with its own key) applies; `ServerSideEncryption="aws:kms"` alone would
    encrypt with the AWS managed key `aws/s3` instead."""
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")


def _discard(s3: Any, bucket: str, key: str, request_id: str | None) -> None:
    """Deletes an image whose record was not written; a failure is logged, not raised."""
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except Exception:
        _log_exception(request_id, f"review image `s3://{bucket}/{key}` without its record not deleted: ")


def keep_for_review(
    config: RouterConfig,
    review: Review,
    clients: Clients,
    request_id: str | None,
    received_at: datetime,
    image: bytes,
    parent: Classification,
    child: Classification,
) -> bool:
    """Writes the image, then its record, to the review bucket; whether both were written.
    Never raises: a failure is logged, and an image written without its record is deleted."""
    written: str | None = None
    try:
        s3 = clients.s3
        stem = review.prefix + review_stem(received_at, request_id)
        extension, content_type = image_format(image)
        image_key = f"{stem}.{extension}"
        record = review_record(config, request_id, received_at, image, image_key, parent, child)
        body = json.dumps(record).encode("utf-8")
        _put_new(s3, review.bucket, image_key, image, content_type)
        written = image_key
        _put_new(s3, review.bucket, f"{stem}.json", body, "application/json")
        return True
    except Exception:
        _log_exception(request_id, REVIEW_LOG_PREFIX)
    if written is not None:
        _discard(s3, review.bucket, written, request_id)
    return False


# --- the request, start to answer ------------------------------------------------------------


def route(
    event: dict,
    config: RouterConfig,
    clients: Clients,
    cache: dict[str, list[str]],
    now: Callable[[], datetime] = utc_now,
) -> Outcome:
    """One request, start to answer; every failure becomes an error answer. `now` is the clock
    (UTC) giving the time the request was received, for what is kept for review."""
    request_id = _request_id(event)
    received_at = now()
    try:
        image = read_image(event, config.max_image_bytes)
        parent, child = identify(image, config, clients, cache)
    except RouterError as error:
        return _failure(error, request_id)
    except Exception:
        _log_exception(request_id)
        return _failure(_internal_error(request_id), request_id)
    threshold = config.low_confidence_threshold
    kept = attempted = False
    if config.review is not None and is_low_confidence(parent, child, threshold):
        attempted = True
        kept = keep_for_review(
            config, config.review, clients, request_id, received_at, image, parent, child
        )
    return _success(parent, child, threshold, request_id, kept, attempted and not kept)


# --- metrics ---------------------------------------------------------------------------------


def metrics_document(config: RouterConfig, outcome: Outcome, latency_ms: float, timestamp_ms: int) -> dict:
    """The request's Embedded Metric Format document."""
    metrics = [
        ("Requests", "Count", 1),
        ("Errors", "Count", 0 if 200 <= outcome.status < 300 else 1),
        ("LowConfidence", "Count", 1 if outcome.low_confidence else 0),
        ("KeptForReview", "Count", 1 if outcome.kept_for_review else 0),
        ("ReviewKeepFailed", "Count", 1 if outcome.review_keep_failed else 0),
        ("Latency", "Milliseconds", round(latency_ms, 3)),
    ]
    if outcome.parent_confidence is not None:
        metrics.append(("ParentConfidence", "None", outcome.parent_confidence))
    if outcome.child_confidence is not None:
        metrics.append(("ChildConfidence", "None", outcome.child_confidence))
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": config.namespace,
                    "Dimensions": [["Environment"], ["Environment", "Outcome"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in metrics],
                }
            ],
        },
        "Environment": config.environment,
        "Outcome": outcome.code,
    }
    if outcome.request_id is not None:
        document["RequestId"] = outcome.request_id
    if outcome.code != "ok":
        document["Message"] = outcome.body["message"]
    document.update({name: value for name, _, value in metrics})
    return document


# --- entry point -----------------------------------------------------------------------------


def handler(event: dict, context: Any) -> dict:
    """The Lambda entry point: answers the request and prints its metrics line."""
    started = time.perf_counter()
    try:
        config = _container_config()
    except Exception:
        request_id = _request_id(event or {})
        _log_exception(request_id)
        return _failure(_internal_error(request_id), request_id).response
    outcome = route(event, config, _container_clients(config), _class_names)
    latency_ms = (time.perf_counter() - started) * 1000
    document = metrics_document(config, outcome, latency_ms, int(time.time() * 1000))
    print(json.dumps(document, separators=(",", ":")), flush=True)
    return outcome.response
