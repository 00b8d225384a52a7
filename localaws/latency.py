"""A latency model for the local AWS: API calls and resource operations take (scaled) real time.

Off by default: the emulator answers as fast as it can. With `LOCAL_AWS_LATENCY_SCALE=S` (a positive
number, e.g. 0.02) in the server's environment, or `scripts/local-aws start --latency-scale S`:

- every API request waits `API_MILLISECONDS[service] × S` before moto handles it (the service is
  the signing name in the request's SigV4 credential scope; unsigned requests and moto's own
  `/moto-api` are exempt or use the default);
- every CloudFormation resource operation our handlers perform (create, in-place update, delete;
  a replacement is a create plus a delete) takes `RESOURCE_SECONDS[type].<operation> × S`, waited
  after the service call succeeded, inside the resource's `*_IN_PROGRESS` → `*_COMPLETE` window.
  CloudFormation works on a stack's independent resources in parallel ("CloudFormation creates,
  updates and deletes resources in parallel where dependencies allow", User Guide, DependsOn
  attribute), while moto works through them one at a time, in dependency order. So the wait is
  on the stack operation's clock, not the resource's: a resource ends its operation's
  `start + finish`, where `finish` is its time added to the latest finish among the resources it
  is related to (Ref, Fn::GetAtt, Fn::Sub, DependsOn, either way) that the operation has already
  handled. A stack then takes its longest chain of related resources, as on AWS, rather than the
  sum of its resources' times; the time moto itself spends is not added.

`LOCAL_AWS_API_LATENCY_SCALE` scales the API waits separately (default: the same S, so the whole
clock is compressed uniformly). While the model is on, `GET /_localaws/latency` answers the current
factors as JSON and `POST /_localaws/latency` with `{"scale": …, "api_scale": …}` changes them (a
benchmark applies on a compressed clock, then plans with real API latency).

The table is also rendered into docs/local-aws.md ("Latency model"); a test keeps the two equal
(`python3 -m localaws.latency` prints the Markdown). This module imports only the standard
library at the top, so scripts/bench-deploy can read the table with the system python3.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

logger = logging.getLogger("localaws")

SCALE_VARIABLE = "LOCAL_AWS_LATENCY_SCALE"
API_SCALE_VARIABLE = "LOCAL_AWS_API_LATENCY_SCALE"
#: The path of the control endpoint (only while the model is on).
CONTROL_PATH = "/_localaws/latency"
#: Request paths that never wait: moto's own API (the launcher's readiness probe) and ours.
EXEMPT_PREFIXES = ("/moto-api", CONTROL_PATH)
OPERATIONS = ("create", "update", "delete")


@dataclass(frozen=True)
class Timing:
    """Seconds one resource operation takes on AWS, and where the figure comes from."""

    create: float
    update: float
    delete: float
    source: str

    def seconds(self, operation: str) -> float:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
        return getattr(self, operation)


_KMS = (
    "https://github.com/aws-cloudformation/aws-cloudformation-resource-providers-kms "
    "(common/…/EventualConsistencyHandlerHelper.java: 15 s propagation wait after a create or "
    "delete, 60 s after an update"
)
_APIGW_QUOTAS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"
_IAM = (
    "IAM is eventually consistent "
    "(https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency); "
    "reported propagation 5–10 s, up to ~30 s "
    "(https://github.com/aws-controllers-k8s/test-infra/pull/178), waited out before dependents start"
)
_ONE_CALL = "estimate: one or two control-plane calls, no stabilization wait"

#: Seconds per resource type and operation on AWS, before scaling. Figures are rounded; where no
#: source states a figure the row says "estimate".
RESOURCE_SECONDS: dict[str, Timing] = {
    "AWS::ApiGateway::Account": Timing(
        20, 20, 1, f"UpdateAccount quota: 1 request per 20 s per account ({_APIGW_QUOTAS}); "
        "delete leaves the account setting (no call)"
    ),
    "AWS::ApiGateway::Deployment": Timing(
        5, 5, 2, f"CreateDeployment quota: 1 request per 5 s per account ({_APIGW_QUOTAS})"
    ),
    "AWS::ApiGateway::Method": Timing(1, 1, 1, _ONE_CALL),
    "AWS::ApiGateway::Resource": Timing(
        1, 1, 1, f"CreateResource/DeleteResource quota: 5 requests per s ({_APIGW_QUOTAS})"
    ),
    "AWS::ApiGateway::RestApi": Timing(
        3, 2, 30, f"CreateRestApi (regional) quota: 1 request per 3 s; DeleteRestApi: 1 per 30 s "
        f"({_APIGW_QUOTAS})"
    ),
    "AWS::ApiGateway::Stage": Timing(2, 2, 2, _ONE_CALL),
    "AWS::ApplicationAutoScaling::ScalableTarget": Timing(
        5, 5, 5, "estimate: RegisterScalableTarget plus a describe until registered"
    ),
    "AWS::ApplicationAutoScaling::ScalingPolicy": Timing(3, 3, 3, _ONE_CALL),
    "AWS::CloudWatch::Alarm": Timing(2, 2, 2, _ONE_CALL),
    "AWS::CloudWatch::Dashboard": Timing(2, 2, 2, _ONE_CALL),
    "AWS::CodeBuild::Project": Timing(3, 3, 3, _ONE_CALL),
    "AWS::Events::Rule": Timing(
        3, 3, 3, "PutRule + PutTargets, then DescribeRule until found, no fixed wait "
        "(https://github.com/aws-cloudformation/aws-cloudformation-resource-providers-events, "
        "aws-events-rule/…/BaseHandlerStd.java)"
    ),
    "AWS::IAM::ManagedPolicy": Timing(15, 15, 10, _IAM),
    "AWS::IAM::Policy": Timing(15, 15, 10, _IAM),
    "AWS::IAM::Role": Timing(15, 10, 10, _IAM),
    "AWS::KMS::Alias": Timing(15, 60, 15, f"{_KMS}; the alias handler ends with it)"),
    "AWS::KMS::Key": Timing(
        75, 60, 15, f"{_KMS}; CreatableKeyHandlerHelper.java waits 60 s after CreateKey)"
    ),
    "AWS::Lambda::Function": Timing(
        10, 10, 5, "waits for State Active after create, LastUpdateStatus Successful after update "
        "(https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html); the SDK waiter polls "
        "every 5 s; estimate"
    ),
    "AWS::Lambda::Permission": Timing(2, 2, 2, _ONE_CALL),
    "AWS::Logs::LogGroup": Timing(2, 2, 2, _ONE_CALL),
    "AWS::S3::Bucket": Timing(
        10, 5, 5, "estimate: CreateBucket takes seconds (https://github.com/hashicorp/"
        "terraform-provider-aws/issues/26155), then encryption, versioning, lifecycle, public "
        "access block and tags are put one call each"
    ),
    "AWS::S3::BucketPolicy": Timing(3, 3, 3, _ONE_CALL),
    "AWS::SNS::Topic": Timing(3, 3, 3, _ONE_CALL),
    "AWS::SNS::TopicPolicy": Timing(3, 3, 3, _ONE_CALL),
    "AWS::SSM::Parameter": Timing(2, 2, 2, _ONE_CALL),
    "AWS::SageMaker::Endpoint": Timing(
        480, 600, 120, "reported 5–10 min to InService (https://github.com/hashicorp/"
        "terraform-provider-aws/pull/39090: \"a little over 10 minutes\"); an update is blue/green "
        "by default: a new fleet, then traffic shifts and the old fleet goes "
        "(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html); "
        "delete: estimate"
    ),
    "AWS::SageMaker::EndpointConfig": Timing(2, 2, 2, _ONE_CALL),
    "AWS::SageMaker::Model": Timing(3, 3, 2, _ONE_CALL),
    "AWS::SageMaker::ModelPackageGroup": Timing(
        3, 3, 3, "CreateModelPackageGroup, then DescribeModelPackageGroup until Completed "
        "(https://github.com/aws-cloudformation/aws-cloudformation-resource-providers-sagemaker, "
        "aws-sagemaker-modelpackagegroup/…/CreateHandler.java)"
    ),
    "AWS::SageMaker::Pipeline": Timing(
        3, 3, 3, "one CreatePipeline call, no stabilization "
        "(https://github.com/aws-cloudformation/aws-cloudformation-resource-providers-sagemaker, "
        "aws-sagemaker-pipeline/…/CreateHandler.java)"
    ),
}
#: Any type not in the table.
DEFAULT_TIMING = Timing(5, 5, 5, "default for a type not in the table: estimate")

_S3_LATENCY = (
    "small requests: \"median latencies are often in the tens of milliseconds range\" "
    "(https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/"
    "timeouts-and-retries-for-latency-sensitive-applications.html)"
)
#: Milliseconds one API call takes, by SigV4 signing name ("default": any other service).
API_MILLISECONDS: dict[str, tuple[float, str]] = {
    "default": (30, f"regional control-plane calls, as S3's {_S3_LATENCY}; estimate"),
    "s3": (30, f"S3, {_S3_LATENCY}"),
    "iam": (
        100,
        "IAM's endpoint is global (iam.amazonaws.com, in us-east-1): a cross-region round trip from "
        "eu-west-1 plus the call; estimate",
    ),
}

# The current factors; install() sets them from the environment, the control endpoint changes them.
_state: dict[str, float] = {"scale": 0.0, "api_scale": 0.0}
_installed = False


# --- the pure parts: table lookups and scaling ----------------------------------------------------


def timing(resource_type: str) -> Timing:
    return RESOURCE_SECONDS.get(resource_type, DEFAULT_TIMING)


def resource_seconds(resource_type: str, operation: str) -> float:
    """Unscaled seconds AWS takes to `operation` (create, update, delete) one `resource_type`."""
    return timing(resource_type).seconds(operation)


def api_seconds(service: str | None) -> float:
    """Unscaled seconds one API call to `service` (a SigV4 signing name) takes."""
    return API_MILLISECONDS.get((service or "").lower(), API_MILLISECONDS["default"])[0] / 1000


def parse_scale(value: str | None, name: str = SCALE_VARIABLE) -> float:
    """A scale factor from an environment value: unset, empty or 0 is off (0.0); a positive finite
    number is itself; anything else is off, with a warning."""
    if value is None or not value.strip():
        return 0.0
    try:
        number = float(value)
    except ValueError:
        logger.warning("%s=%r is not a number; the latency model stays off", name, value)
        return 0.0
    if not math.isfinite(number) or number < 0:
        logger.warning("%s=%r is not a positive number; the latency model stays off", name, value)
        return 0.0
    return number


def scales_from(environ: Mapping[str, str]) -> tuple[float, float]:
    """(resource scale, API scale) from the environment; the API scale defaults to the other."""
    scale = parse_scale(environ.get(SCALE_VARIABLE))
    if scale == 0:
        return 0.0, 0.0
    api = environ.get(API_SCALE_VARIABLE)
    return scale, (parse_scale(api, API_SCALE_VARIABLE) if api not in (None, "") else scale)


def scaled(seconds: float, scale: float) -> float:
    return max(0.0, seconds * scale)


def service_of(environ: Mapping[str, Any]) -> str:
    """The SigV4 signing name of a request (`cloudformation`, `s3` …), or "default" if unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    try:
        scope = auth.split(",")[0].split()[1]  # Credential=AKID/20240101/eu-west-1/s3/aws4_request
        return scope.split("=", 1)[1].split("/")[3].lower()
    except IndexError:
        return "default"


def markdown_table() -> str:
    """The table as docs/local-aws.md shows it."""
    lines = [
        "| resource type | create (s) | update (s) | delete (s) | source |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    rows = sorted(RESOURCE_SECONDS.items()) + [("(any other type)", DEFAULT_TIMING)]
    for name, row in rows:
        lines.append(
            f"| `{name}` | {row.create:g} | {row.update:g} | {row.delete:g} | {row.source} |"
            if name.startswith("AWS::")
            else f"| {name} | {row.create:g} | {row.update:g} | {row.delete:g} | {row.source} |"
        )
    lines += ["", "| API calls to | ms per call | source |", "| --- | ---: | --- |"]
    for service, (milliseconds, source) in sorted(API_MILLISECONDS.items()):
        label = "any other service" if service == "default" else f"`{service}`"
        lines.append(f"| {label} | {milliseconds:g} | {source} |")
    return "\n".join(lines)


# --- installation ----------------------------------------------------------------------------------


def current() -> dict[str, float]:
    return dict(_state)


def install(
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    handlers: Any = None,
    dispatcher: Any = None,
    clock: Callable[[], float] = time.monotonic,
    locate: Callable[[Any], Any] | None = None,
    warm_up: bool = False,
) -> bool:
    """Turns the model on when the environment asks for it; returns whether it is on.

    `handlers` (the handler classes, default `localaws.handlers.HANDLERS.values()`), `dispatcher`
    (default moto's DomainDispatcherApplication), `sleep`, `clock` and `locate` (a handler's stack
    operation, see `stack_operation`) are injectable for the tests; `warm_up` (the server's) does
    moto's one-time work first (`warm`).
    """
    global _installed
    scale, api_scale = scales_from(os.environ if environ is None else environ)
    if scale <= 0:
        return False
    _state.update(scale=scale, api_scale=api_scale)
    if _installed:
        return True
    if handlers is None:
        from localaws.handlers import HANDLERS

        handlers = HANDLERS.values()
    if dispatcher is None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication as dispatcher
    for handler in handlers:
        wrap_handler(handler, sleep, clock, locate or stack_operation)
    wrap_dispatcher(dispatcher, sleep)
    _installed = True
    if warm_up:
        warm()
    logger.warning(
        "latency model on: resource operations × %g, API calls × %g (%s)",
        scale,
        api_scale,
        SCALE_VARIABLE,
    )
    return True


@dataclass
class Schedule:
    """One stack operation's clock: when it started, and when each resource it handled finishes
    (seconds after the start, scaled)."""

    key: Any
    start: float
    #: Logical id -> the logical ids it refers to or that refer to it (template order aside).
    related: Mapping[str, set[str]]
    finish: dict[str, float] = field(default_factory=dict)
    #: The relation maps merged into `related` so far (by identity).
    merged: list[Mapping[str, set[str]]] = field(default_factory=list)

    def relate(self, related: Mapping[str, set[str]]) -> None:
        """Adds the relations of the template being applied. One operation can see two: an
        update deletes what the old template had (related as it was there) and creates what the
        new one has (related as it is there)."""
        if any(related is seen for seen in self.merged):
            return
        self.merged.append(related)
        union = {name: set(others) for name, others in self.related.items()}
        for name, others in related.items():
            union.setdefault(name, set()).update(others)
        self.related = union

    def wait(self, logical_id: str, seconds: float, now: float) -> float:
        """Records `logical_id` as taking `seconds` after the related resources already handled,
        and answers how long to wait from `now` until it is done."""
        begin = max(
            (self.finish[other] for other in self.related.get(logical_id, ()) if other in self.finish),
            default=0.0,
        )
        end = begin + seconds
        self.finish[logical_id] = max(self.finish.get(logical_id, 0.0), end)
        return max(0.0, self.start + end - now)


def related_resources(resources: Mapping[str, Any], references: Callable[[Any], set[str]]) -> dict[str, set[str]]:
    """Each resource's neighbours in the template's dependency graph, in both directions."""
    related: dict[str, set[str]] = {name: set() for name in resources}
    for name, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        depends = resource.get("DependsOn") or []
        names = set([depends] if isinstance(depends, str) else depends)
        names |= references({key: value for key, value in resource.items() if key != "DependsOn"})
        for other in names & related.keys() - {name}:
            related[name].add(other)
            related[other].add(name)
    return related


def stack_operation(handler: Any) -> tuple[Any, Any, Callable[[], Mapping[str, set[str]]]] | None:
    """(the stack, the key of its current operation, its resources' relations) for a handler
    working inside a stack operation, from moto's backend; None outside one."""
    stack_id = getattr(handler, "stack_id", None)
    if not stack_id:
        return None
    from moto.cloudformation.models import cloudformation_backends

    from localaws import engine
    from localaws.handlers.base import STACKS_BEING_DELETED

    backend = cloudformation_backends[handler.account_id][handler.region_name]
    stack = backend.stacks.get(stack_id) or STACKS_BEING_DELETED.get(stack_id)
    if stack is None:
        return None
    operation = getattr(stack, "_operation", None)  # localaws/operations.py follows them
    if operation is None:
        return None
    resources = applying_resources(stack)

    def relations() -> Mapping[str, set[str]]:
        cached = getattr(stack, "_latency_relations", None)
        if cached is None or cached[0] is not resources:
            cached = (resources, related_resources(resources, engine.references))
            stack._latency_relations = cached
        return cached[1]

    return stack, operation.id, relations


def applying_resources(stack: Any) -> Mapping[str, Any]:
    """The resources of the template the stack's operation is applying. While a change set runs,
    the stack's own template is still the one before it (an empty one for a stack created by a
    change set): moto's resource map holds the change set's."""
    resources = getattr(getattr(stack, "resource_map", None), "_resource_json_map", None)
    if isinstance(resources, Mapping) and resources:
        return resources
    return (getattr(stack, "template_dict", None) or {}).get("Resources") or {}


def operation_wait(
    handler: Any,
    seconds: float,
    clock: Callable[[], float],
    locate: Callable[[Any], tuple[Any, Any, Callable[[], Mapping[str, set[str]]]] | None],
) -> float:
    """How long `handler`'s resource waits for `seconds` of work on its stack operation's clock
    (all of `seconds` outside a stack operation)."""
    try:
        found = locate(handler)
    except Exception:  # noqa: BLE001 - a lookup failure only costs the parallelism
        logger.exception("latency: no stack operation for %s", getattr(handler, "logical_id", "?"))
        found = None
    if found is None:
        return seconds
    stack, key, relations = found
    now = clock()
    schedule = getattr(stack, "_latency_schedule", None)
    if schedule is None or schedule.key != key:
        schedule = Schedule(key=key, start=now, related={})
        stack._latency_schedule = schedule
    schedule.relate(relations())
    return schedule.wait(getattr(handler, "logical_id", ""), seconds, now)


#: The services a deployment of the platform calls (SigV4 signing names as moto's models know them).
WARM_SERVICES = (
    "cloudformation", "s3", "iam", "sts", "kms", "sagemaker", "sagemaker-runtime", "ssm", "lambda",
    "events", "logs", "sns", "sqs", "apigateway", "application-autoscaling", "cloudwatch",
    "codebuild", "scheduler",
)


def warm() -> float:
    """Does the one-time work moto otherwise does inside the first requests, and answers how long
    it took: the services' botocore models and the default account's backends (IAM's in every
    partition, with AWS's managed policies), and cfn-lint's resource schemas (pre-deployment
    validation). With the model on,
    the server does it before it answers, so a benchmark does not time the emulator's start-up:
    the first requests of a run, all at once, loaded the same model on several threads and held
    the interpreter for seconds."""
    started = time.monotonic()
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.utils import get_service_model, service_name_from_moto_package_name
    from moto.iam.models import iam_backends
    from moto.utilities.utils import PARTITION_NAMES

    from localaws import operations

    for service in WARM_SERVICES:
        try:
            get_service_model(service)
        except Exception:  # noqa: BLE001 - a model this botocore lacks is loaded (or not) later
            logger.debug("latency: no model for %s", service)
        service_name_from_moto_package_name(service.replace("-", ""))  # an error's lookup
        try:
            get_backend(service)[DEFAULT_ACCOUNT_ID]  # the account's backends, region by region
        except Exception:  # noqa: BLE001 - not a moto service name; created on first use
            logger.debug("latency: no backend for %s", service)
    # Every request looks its access key up in each account's IAM backend of every partition
    # (moto.iam.models.get_account_id_from), creating them on first use.
    for partition in PARTITION_NAMES:
        iam_backends[DEFAULT_ACCOUNT_ID][partition]
    operations.resource_schema("us-east-1", "AWS::S3::Bucket")
    seconds = time.monotonic() - started
    logger.warning("latency model: warmed up in %.1f s", seconds)
    return seconds


# The handler hook each operation runs in (see handlers/base.py).
_HOOKS = {"create": "create", "update": "update", "destroy": "delete"}
# Hooks call one another (a create that applies the rest through `update({}, …)`, an update that
# is a destroy plus a create): only the outermost call on a thread waits.
_inside = threading.local()


def wrap_handler(
    handler: type,
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    locate: Callable[[Any], Any] = stack_operation,
) -> None:
    """Makes the handler's create/update/destroy wait the type's time after the call succeeded,
    on its stack operation's clock (see `Schedule`)."""
    for hook, operation in _HOOKS.items():
        original = getattr(handler, hook)
        if getattr(original, "_latency_wrapped", False):
            continue

        def wrapper(self: Any, *arguments: Any, _original=original, _operation=operation) -> Any:
            if getattr(_inside, "hook", False):
                return _original(self, *arguments)
            _inside.hook = True
            try:
                result = _original(self, *arguments)
            finally:
                _inside.hook = False
            delay = scaled(resource_seconds(type(self).TYPE, _operation), _state["scale"])
            if delay > 0:
                delay = operation_wait(self, delay, clock, locate)
            if delay > 0:
                sleep(delay)
            return result

        wrapper._latency_wrapped = True  # type: ignore[attr-defined]
        wrapper.__name__ = hook
        wrapper.__doc__ = original.__doc__
        setattr(handler, hook, wrapper)


def wrap_dispatcher(dispatcher: type, sleep: Callable[[float], None]) -> None:
    """Makes every API request wait its service's time, and serves the control endpoint."""
    original = dispatcher.__call__
    if getattr(original, "_latency_wrapped", False):
        return

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO") or ""
        if path == CONTROL_PATH:
            return control(environ, start_response)
        if not path.startswith(EXEMPT_PREFIXES):
            delay = scaled(api_seconds(service_of(environ)), _state["api_scale"])
            if delay > 0:
                sleep(delay)
        return original(self, environ, start_response)

    call._latency_wrapped = True  # type: ignore[attr-defined]
    dispatcher.__call__ = call


def control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """GET: the current factors. POST {"scale": x, "api_scale": y}: sets those given (≥ 0)."""
    status = "200 OK"
    if environ.get("REQUEST_METHOD") == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            wanted = json.loads(environ["wsgi.input"].read(length) or b"{}")
            changes = {
                key: float(wanted[key]) for key in ("scale", "api_scale") if key in wanted
            }
            if any(not math.isfinite(value) or value < 0 for value in changes.values()):
                raise ValueError("factors must be finite and ≥ 0")
            _state.update(changes)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            status = "400 Bad Request"
            body = json.dumps({"error": str(error)}).encode()
            start_response(status, [("Content-Type", "application/json")])
            return [body]
    body = json.dumps(current()).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [body]


if __name__ == "__main__":
    print(markdown_table())
