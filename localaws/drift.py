"""CloudFormation drift detection: DetectStackDrift, DescribeStackDriftDetectionStatus,
DescribeStackResourceDrifts, DetectStackResourceDrift, and the DriftInformation of stacks and
stack resources. moto 5.2.5 has none of them (HTTP 500, "not been implemented").

What AWS documents, and what this module does with it:

- What is compared. "CloudFormation determines the expected resource property values, as defined
  in the stack template and any values specified as template parameters. CloudFormation then
  compares those expected values with the actual values of those resource properties as they
  currently exist" (User Guide, "Detect unmanaged configuration changes to stacks and resources
  with drift detection", using-cfn-stack-drift); "Only resource properties explicitly defined in
  the stack template are checked for drift" (API reference, DetectStackDrift, StackResourceDrift);
  defaults a template leaves unset are not tracked (same page, Note). Here the expected values are
  the resource's properties as the engine resolved them when it last created or updated the
  resource (Ref, Fn::Sub, Fn::GetAtt and parameters resolved: what our handlers applied); the
  actual values are read from the service's own state in moto's backends, so a direct API call
  (RegisterScalableTarget, UpdateFunctionConfiguration, PutRetentionPolicy, DisableRule,
  PutBucketVersioning ...) made since shows. A top-level property the template does not set is
  never compared; inside a property the template sets (an object), a key that appeared is ADD.
- What cannot be compared. Properties "that the service that is responsible for the resource does
  not return" and those CloudFormation "cannot map back" (a Lambda function's `Code`) are left out
  (same page, considerations): here every property in the type's schema `writeOnlyProperties`
  (cfn-lint ships AWS's resource provider schemas), and `KmsKeyId` ("CloudFormation does not
  perform drift detection on the KMSKeyId property of any resources"). A property a type's reader
  below does not model is left out too (listed per type in docs/local-aws.md).
- How values are compared. CloudFormation compares the template's value with what the type's read
  handler returns ("Preventing false drift detection results for resource types", CloudFormation
  CLI User Guide); handlers take and return values typed by the resource schema, so a template's
  `"6"` for an `integer` property is 6 (the User Guide's example output shows `ExpectedProperties`
  with numbers as JSON numbers). Here both sides are converted to the schema's types (integer,
  number, boolean, string) before comparing. Arrays whose schema says `insertionOrder: false` are
  compared as multisets ("If insertionOrder is true, then a change in order of the elements will
  constitute a diff", aws-cloudformation/cloudformation-resource-schema README), others by
  position. Properties typed `object` or `string` (IAM policy documents, an event pattern) are
  compared as parsed JSON.
- The answers. PropertyDifferences carry `PropertyPath` (`/DelaySeconds`,
  `/RedrivePolicy/maxReceiveCount`), `ExpectedValue` and `ActualValue` as text (`"20"`, `"120"`)
  and `DifferenceType` NOT_EQUAL, ADD or REMOVE, as in the User Guide's examples ("Detect drift
  on an entire CloudFormation stack", "Detect drift on individual stack resources"). A removed
  value is `null` on the side it is missing from. DELETED resources carry neither
  ExpectedProperties nor ActualProperties ("For resources whose StackResourceDriftStatus is
  DELETED, this structure will not be present", API reference, StackResourceDrift).
- Unsupported types. "Resources that don't currently support drift detection aren't checked, and
  so not included" in DescribeStackResourceDrifts (API reference); their DriftInformation is
  NOT_CHECKED ("Any resources that do not currently support drift detection have a status of
  NOT_CHECKED", StackResourceDriftInformation). Here every type without a reader below (moto's own
  types and our handlers not listed) is such a type.
- Before any detection, DescribeStackResourceDrifts answers an empty list ("Resources that haven't
  yet been checked for drift aren't included") and DescribeStacks shows
  `DriftInformation: {StackDriftStatus: NOT_CHECKED}`.
- Stack status: DRIFTED if a checked resource is MODIFIED or DELETED; else UNKNOWN if one could
  not be checked; else IN_SYNC ("A stack with no resources that support drift detection will also
  have a status of IN_SYNC", User Guide). DetectStackResourceDrift also updates the stack's drift
  status and last check time (User Guide, "Detect drift on individual stack resources").
- Allowed stack statuses: CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_ROLLBACK_COMPLETE and
  UPDATE_ROLLBACK_FAILED (User Guide); others are refused with a ValidationError (its wording is
  this module's, not AWS's).
- Permissions. Drift detection needs "Read permission for each resource that supports drift
  detection included in the stack" (User Guide, considerations): the caller's. Here the calls the
  type's read handler makes (data/cloudformation-handler-permissions.tsv, as cfn_iam checks the
  create/update/delete handlers' calls) are checked against the caller's policies; a refused one
  makes the resource UNKNOWN with the refusal as DriftStatusReason, and the detection
  DETECTION_FAILED with a DetectionStatusReason naming the resources ("DETECTION_FAILED: The stack
  drift detection operation has failed for at least one resource in the stack. Results will be
  available for resources on which CloudFormation successfully completed drift detection", API
  reference, DescribeStackDriftDetectionStatus; UNKNOWN and DriftStatusReason as botocore's model
  documents them). The account's root is never refused.
- Detection runs synchronously: DetectStackDrift answers the id of a detection that is already
  DETECTION_COMPLETE (or DETECTION_FAILED), so "one detection per stack at a time" never bites.
  An unknown id is a ValidationError (wording not confirmed against AWS).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse, StackResourceDTO
from moto.core.responses import ActionResult
from moto.utilities.utils import get_partition

from . import handler_permissions, iam
from .handlers.base import ResourceHandler

logger = logging.getLogger("localaws")

#: Stack statuses drift detection accepts (User Guide, "What is drift?").
DETECTABLE = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
)
MAX_RESULTS = 100
#: Keys that identify an item of an unordered array, to pair a changed item with its original.
ITEM_KEYS = ("PolicyName", "Key", "Id", "Name", "ScheduledActionName")
_installed = False


def install() -> None:
    """Adds the drift APIs and DriftInformation; safe to call more than once."""
    global _installed
    if _installed:
        return
    # The read handlers' calls, checked for the caller (handler_permissions knows create, update
    # and delete; a read needs the read handler's list only).
    handler_permissions.HANDLERS.setdefault("read", ("read",))
    CloudFormationResponse.detect_stack_drift = _detect_stack_drift
    CloudFormationResponse.describe_stack_drift_detection_status = _describe_detection
    CloudFormationResponse.describe_stack_resource_drifts = _describe_resource_drifts
    CloudFormationResponse.detect_stack_resource_drift = _detect_resource_drift
    Stack.drift_information = property(stack_drift_information)
    _wrap(StackResourceDTO, "__init__", _resource_dto_init)
    _wrap(CloudFormationResponse, "list_stack_resources", _list_stack_resources)
    _installed = True


def _wrap(owner: type, name: str, replacement: Callable[..., Any]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*arguments: Any, **keywords: Any) -> Any:
        return replacement(original, *arguments, **keywords)

    setattr(owner, name, wrapper)


def now() -> datetime:
    return datetime.now(timezone.utc)


# --- records --------------------------------------------------------------------------------------


@dataclass
class ResourceDrift:
    """One resource's latest check (a StackResourceDrift)."""

    stack_id: str
    logical_id: str
    physical_id: str
    resource_type: str
    status: str  # IN_SYNC | MODIFIED | DELETED | UNKNOWN
    timestamp: datetime
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None
    differences: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None

    def to_api(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "StackId": self.stack_id,
            "LogicalResourceId": self.logical_id,
            "PhysicalResourceId": self.physical_id,
            "ResourceType": self.resource_type,
            "StackResourceDriftStatus": self.status,
            "Timestamp": self.timestamp,
        }
        if self.expected is not None:
            answer["ExpectedProperties"] = compact(self.expected)
        if self.actual is not None:
            answer["ActualProperties"] = compact(self.actual)
        if self.status == "MODIFIED":
            answer["PropertyDifferences"] = self.differences
        if self.reason:
            answer["DriftStatusReason"] = self.reason
        return answer


@dataclass
class Detection:
    """One DetectStackDrift operation (DescribeStackDriftDetectionStatus)."""

    detection_id: str
    stack_id: str
    timestamp: datetime
    drifts: list[ResourceDrift]

    def to_api(self) -> dict[str, Any]:
        unknown = [drift.logical_id for drift in self.drifts if drift.status == "UNKNOWN"]
        drifted = sum(drift.status in ("MODIFIED", "DELETED") for drift in self.drifts)
        answer: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackDriftDetectionId": self.detection_id,
            "StackDriftStatus": overall(self.drifts),
            "DetectionStatus": "DETECTION_FAILED" if unknown else "DETECTION_COMPLETE",
            "Timestamp": self.timestamp,
        }
        if unknown:
            answer["DetectionStatusReason"] = (
                f"Failed to detect drift on resources [{', '.join(unknown)}]"
            )
        else:
            # "NULL until the drift detection operation reaches a status of DETECTION_COMPLETE"
            answer["DriftedStackResourceCount"] = drifted
        return answer


@dataclass
class StackDrift:
    """What a stack remembers of its checks: each resource's latest, and the last check's time."""

    resources: dict[str, ResourceDrift] = field(default_factory=dict)
    last_check: datetime | None = None


def overall(drifts: list[ResourceDrift]) -> str:
    statuses = {drift.status for drift in drifts}
    if statuses & {"MODIFIED", "DELETED"}:
        return "DRIFTED"
    if "UNKNOWN" in statuses:
        return "UNKNOWN"
    return "IN_SYNC"


def stack_drift(stack: Stack) -> StackDrift:
    found = stack.__dict__.get("_localaws_drift")
    if found is None:
        found = stack.__dict__["_localaws_drift"] = StackDrift()
    return found


def detections(backend: CloudFormationBackend) -> dict[str, Detection]:
    found = backend.__dict__.get("_localaws_drift_detections")
    if found is None:
        found = backend.__dict__["_localaws_drift_detections"] = {}
    return found


def current_drifts(stack: Stack) -> dict[str, ResourceDrift]:
    """The latest check of each resource the stack still has (as the same physical resource)."""
    resources = {
        resource.logical_resource_id: resource
        for resource in stack.stack_resources
        if hasattr(resource, "logical_resource_id")
    }
    return {
        logical_id: drift
        for logical_id, drift in stack_drift(stack).resources.items()
        if logical_id in resources
        and getattr(resources[logical_id], "physical_resource_id", None) == drift.physical_id
    }


def stack_drift_information(stack: Stack) -> dict[str, Any]:
    """Stack.DriftInformation (DescribeStacks) and StackSummary.DriftInformation (ListStacks)."""
    record = stack_drift(stack)
    if record.last_check is None:
        return {"StackDriftStatus": "NOT_CHECKED"}
    return {
        "StackDriftStatus": overall(list(current_drifts(stack).values())),
        "LastCheckTimestamp": record.last_check,
    }


def resource_drift_information(stack: Stack, logical_id: str | None) -> dict[str, Any]:
    drift = current_drifts(stack).get(logical_id or "")
    if drift is None:
        return {"StackResourceDriftStatus": "NOT_CHECKED"}
    return {"StackResourceDriftStatus": drift.status, "LastCheckTimestamp": drift.timestamp}


# --- the API --------------------------------------------------------------------------------------


def stack_of(response: CloudFormationResponse) -> Stack:
    name = response._get_param("StackName")
    # By name a live stack, by id any (moto's lookup; "Stack with id X does not exist" otherwise).
    return response.cloudformation_backend.get_stack(name)


def detectable(stack: Stack, name: str) -> None:
    if stack.status not in DETECTABLE:
        raise ValidationError(
            name,
            message=f"Stack [{name}] is in {stack.status} state; drift detection needs one of "
            f"{', '.join(DETECTABLE)}",
        )


def caller_of(response: CloudFormationResponse) -> iam.Identity:
    partition = get_partition(response.region)
    return iam.caller(response.get_access_key(), response.current_account, partition)


def _detect_stack_drift(response: CloudFormationResponse) -> ActionResult:
    stack = stack_of(response)
    detectable(stack, response._get_param("StackName"))
    wanted = response._get_param("LogicalResourceIds") or []
    resources = checked_resources(stack)
    for logical_id in wanted:
        if logical_id not in {resource.logical_resource_id for resource in stack.stack_resources}:
            raise ValidationError(
                message=f"Resource {logical_id} does not exist for stack {stack.name}"
            )
    if wanted:
        resources = [resource for resource in resources if resource.logical_resource_id in wanted]
    started = now()
    caller = caller_of(response)
    drifts = [check(stack, resource, caller) for resource in resources]
    record = stack_drift(stack)
    for drift in drifts:
        record.resources[drift.logical_id] = drift
    record.last_check = started
    detection = Detection(str(uuid.uuid4()), stack.stack_id, started, drifts)
    detections(response.cloudformation_backend)[detection.detection_id] = detection
    return ActionResult({"StackDriftDetectionId": detection.detection_id})


def _describe_detection(response: CloudFormationResponse) -> ActionResult:
    detection_id = response._get_param("StackDriftDetectionId")
    detection = detections(response.cloudformation_backend).get(detection_id)
    if detection is None:
        raise ValidationError(
            message=f"Stack drift detection [{detection_id}] does not exist"
        )
    return ActionResult(detection.to_api())


def _describe_resource_drifts(response: CloudFormationResponse) -> ActionResult:
    stack = stack_of(response)
    filters = set(response._get_param("StackResourceDriftStatusFilters") or [])
    max_results = response._get_param("MaxResults")
    size = MAX_RESULTS if max_results is None else int(max_results)
    if not 1 <= size <= MAX_RESULTS:
        raise ValidationError(
            message=f"1 validation error detected: Value '{size}' at 'maxResults' failed to "
            f"satisfy constraint: Member must have value {'less' if size > 1 else 'greater'} "
            f"than or equal to {MAX_RESULTS if size > 1 else 1}"
        )
    token = response._get_param("NextToken")
    start = int(token) if token and token.isdigit() else 0
    drifts = current_drifts(stack)
    order = [resource.logical_resource_id for resource in stack.stack_resources]
    selected = [
        drifts[logical_id].to_api()
        for logical_id in order
        if logical_id in drifts and (not filters or drifts[logical_id].status in filters)
    ]
    page = selected[start : start + size]
    answer: dict[str, Any] = {"StackResourceDrifts": page}
    if start + size < len(selected):
        answer["NextToken"] = str(start + size)
    return ActionResult(answer)


def _detect_resource_drift(response: CloudFormationResponse) -> ActionResult:
    name = response._get_param("StackName")
    stack = stack_of(response)
    detectable(stack, name)
    logical_id = response._get_param("LogicalResourceId")
    resource = next(
        (
            resource
            for resource in stack.stack_resources
            if getattr(resource, "logical_resource_id", None) == logical_id
        ),
        None,
    )
    if resource is None:
        raise ValidationError(
            name, message=f"Resource {logical_id} does not exist for stack {name}"
        )
    if resource not in checked_resources(stack):
        resource_type = getattr(resource, "cf_resource_type", "")
        raise ValidationError(
            name, message=f"Drift detection is not supported for resource type {resource_type}"
        )
    drift = check(stack, resource, caller_of(response))
    record = stack_drift(stack)
    record.resources[logical_id] = drift
    record.last_check = drift.timestamp
    return ActionResult({"StackResourceDrift": drift.to_api()})


def _resource_dto_init(original, dto: StackResourceDTO, stack: Stack, resource: Any) -> None:
    original(dto, stack, resource)
    dto.drift_information = resource_drift_information(stack, dto.logical_resource_id)


def _list_stack_resources(original, response: CloudFormationResponse) -> ActionResult:
    result = original(response)
    stack = stack_of(response)
    for summary in result.result.get("StackResourceSummaries") or []:
        summary["DriftInformation"] = resource_drift_information(
            stack, summary.get("LogicalResourceId")
        )
    return result


# --- checking one resource ------------------------------------------------------------------------


def checked_resources(stack: Stack) -> list[Any]:
    """The stack's resources whose type supports drift detection here, in template order."""
    return [
        resource
        for resource in stack.stack_resources
        if isinstance(resource, ResourceHandler) and resource.TYPE in READERS
    ]


def check(stack: Stack, handler: ResourceHandler, caller: iam.Identity) -> ResourceDrift:
    drift = ResourceDrift(
        stack_id=stack.stack_id,
        logical_id=handler.logical_id,
        physical_id=handler.physical_resource_id,
        resource_type=handler.TYPE,
        status="IN_SYNC",
        timestamp=now(),
    )
    denial = read_denial(handler, caller)
    if denial is not None:
        drift.status, drift.reason = "UNKNOWN", denial
        return drift
    try:
        actual = READERS[handler.TYPE](handler)
    except Exception as error:  # noqa: BLE001 - a reader's failure is the resource's UNKNOWN
        logger.warning("localaws: drift of %s (%s): %s", handler.logical_id, handler.TYPE, error)
        drift.status, drift.reason = "UNKNOWN", f"Internal failure reading the resource: {error}"
        return drift
    if actual is None:
        drift.status = "DELETED"
        return drift
    if handler.TYPE == "AWS::IAM::Role":
        actual = without_attachments(stack, handler, actual)
    drift.expected, drift.actual = compared(handler, actual)
    drift.differences = differences(drift.expected, drift.actual, schema_of(handler.TYPE))
    drift.status = "MODIFIED" if drift.differences else "IN_SYNC"
    return drift


def read_denial(handler: ResourceHandler, caller: iam.Identity) -> str | None:
    """Why the caller may not make the read handler's calls (AWS's wording), or None."""
    if caller.root:
        return None
    requests = handler_permissions.data().requests(
        handler.TYPE,
        "read",
        handler.properties,
        name=handler.resource_name,
        name_property=handler.NAME_PROPERTY,
        physical_id=handler.physical_id or None,
        account=handler.account_id,
        region=handler.region_name,
        partition=get_partition(handler.region_name),
    )
    for request in requests:
        if request.resource is None:
            continue
        denial = iam.authorize(caller, request.action, request.resource, dict(request.context))
        if denial is not None:
            logger.info("localaws: drift of %s: %s", handler.logical_id, denial.message())
            return iam.handler_reason(denial)
    return None


def compared(
    handler: ResourceHandler, actual: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(expected, actual): the template's properties this emulator can compare, both converted to
    the schema's types, without write-only properties and KmsKeyId."""
    schema = schema_of(handler.TYPE)
    write_only = [
        pointer.split("/")[2:] for pointer in (schema.get("writeOnlyProperties") or [])
    ]
    modelled = MODELLED[handler.TYPE]
    expected: dict[str, Any] = {}
    found: dict[str, Any] = {}
    properties = schema.get("properties") or {}
    for name, value in handler.properties.items():
        if name not in modelled or name.lower() == "kmskeyid" or [name] in write_only:
            continue
        expected[name] = typed(value, properties.get(name), schema)
        if actual.get(name) is not None:
            found[name] = typed(actual[name], properties.get(name), schema)
    for parts in write_only:
        if len(parts) > 1:
            strip(expected, parts)
            strip(found, parts)
    return expected, found


def strip(value: Any, parts: list[str]) -> None:
    """Removes the property a schema pointer (`Code/S3Key`, `Rules/*/Prefix`) names."""
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(value, list):
        for item in value:
            strip(item, rest)
    elif isinstance(value, dict) and head in value:
        if rest:
            strip(value[head], rest)
        else:
            del value[head]


# --- schemas and types ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def schema_of(resource_type: str) -> dict[str, Any]:
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

        return PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except Exception:  # noqa: BLE001 - no schema: values are compared as they are
        return {}


def resolve(node: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its `$ref` (`#/definitions/X`) followed."""
    for _ in range(20):
        if not isinstance(node, dict) or "$ref" not in node:
            break
        reference = node["$ref"]
        if not reference.startswith("#/"):
            return {}
        target: Any = schema
        for part in reference[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
    return node if isinstance(node, dict) else {}


def types_of(node: dict[str, Any]) -> list[str]:
    kind = node.get("type")
    return [kind] if isinstance(kind, str) else list(kind or [])


def child(node: dict[str, Any], key: str, schema: dict[str, Any]) -> dict[str, Any]:
    properties = node.get("properties") or {}
    if key in properties:
        return resolve(properties[key], schema)
    for pattern, sub in (node.get("patternProperties") or {}).items():
        try:
            if re.search(pattern, key):
                return resolve(sub, schema)
        except re.error:
            return resolve(sub, schema)
    return {}


def typed(value: Any, node: Any, schema: dict[str, Any]) -> Any:
    """`value` converted to the schema's type (a template's "6" for an integer is 6)."""
    node = resolve(node, schema)
    kinds = types_of(node)
    # A document property (`object` or `string`: a policy, an event pattern) given as JSON text.
    if isinstance(value, str) and "object" in kinds and set(kinds) <= {"object", "string"}:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            return parsed
    if isinstance(value, dict):
        return {key: typed(item, child(node, key, schema), schema) for key, item in value.items()}
    if isinstance(value, list):
        items = node.get("items")
        return [typed(item, items, schema) for item in value]
    if not kinds or len(kinds) > 1 and "string" in kinds:
        return value
    kind = kinds[0]
    if kind == "integer" and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    if kind == "number" and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "string" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "string" and isinstance(value, (int, float)):
        return str(value)
    return value


def unordered(node: dict[str, Any]) -> bool:
    return node.get("insertionOrder") is False


def equal(left: Any, right: Any, node: dict[str, Any], schema: dict[str, Any]) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            equal(left[key], right[key], child(node, key, schema), schema) for key in left
        )
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return False
        items = resolve(node.get("items"), schema)
        if not unordered(node):
            return all(equal(a, b, items, schema) for a, b in zip(left, right))
        remaining = list(right)
        for item in left:
            match = next(
                (i for i, other in enumerate(remaining) if equal(item, other, items, schema)),
                None,
            )
            if match is None:
                return False
            remaining.pop(match)
        return True
    if left == right:
        return True
    # Scalars of different types (an environment variable's 3 and Lambda's "3"): by their text.
    scalar = (str, int, float, bool)
    return isinstance(left, scalar) and isinstance(right, scalar) and text(left) == text(right)


# --- differences ----------------------------------------------------------------------------------


def differences(
    expected: dict[str, Any], actual: dict[str, Any], schema: dict[str, Any]
) -> list[dict[str, str]]:
    """PropertyDifferences between the expected and actual properties (the template's keys)."""
    found: list[dict[str, str]] = []
    properties = schema.get("properties") or {}
    for name, value in expected.items():
        path = "/" + escape(name)
        if name not in actual:
            found.append(difference(path, value, None, "REMOVE"))
        else:
            diff(value, actual[name], path, resolve(properties.get(name), schema), schema, found)
    return found


def diff(
    expected: Any,
    actual: Any,
    path: str,
    node: dict[str, Any],
    schema: dict[str, Any],
    found: list[dict[str, str]],
) -> None:
    if equal(expected, actual, node, schema):
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            sub = f"{path}/{escape(key)}"
            if actual.get(key) is None:
                found.append(difference(sub, value, None, "REMOVE"))
            else:
                diff(value, actual[key], sub, child(node, key, schema), schema, found)
        for key, value in actual.items():
            if key not in expected and value is not None:
                found.append(difference(f"{path}/{escape(key)}", None, value, "ADD"))
        return
    if isinstance(expected, list) and isinstance(actual, list):
        items = resolve(node.get("items"), schema)
        if unordered(node):
            diff_unordered(expected, actual, path, items, schema, found)
            return
        for index in range(max(len(expected), len(actual))):
            sub = f"{path}/{index}"
            if index >= len(actual):
                found.append(difference(sub, expected[index], None, "REMOVE"))
            elif index >= len(expected):
                found.append(difference(sub, None, actual[index], "ADD"))
            else:
                diff(expected[index], actual[index], sub, items, schema, found)
        return
    found.append(difference(path, expected, actual, "NOT_EQUAL"))


def diff_unordered(
    expected: list[Any],
    actual: list[Any],
    path: str,
    items: dict[str, Any],
    schema: dict[str, Any],
    found: list[dict[str, str]],
) -> None:
    """A multiset's differences: equal items pair up; a changed item pairs with the actual item of
    the same name (PolicyName, Key, Id ...) and is compared inside; the rest are REMOVE or ADD."""
    left = list(enumerate(actual))
    missing: list[tuple[int, Any]] = []
    for index, item in enumerate(expected):
        match = next(
            (n for n, (_, other) in enumerate(left) if equal(item, other, items, schema)), None
        )
        if match is None:
            missing.append((index, item))
        else:
            left.pop(match)
    for index, item in missing:
        key = identity(item)
        match = next(
            (n for n, (_, other) in enumerate(left) if key is not None and identity(other) == key),
            None,
        )
        if match is None:
            found.append(difference(f"{path}/{index}", item, None, "REMOVE"))
        else:
            _, other = left.pop(match)
            diff(item, other, f"{path}/{index}", items, schema, found)
    for position, other in left:
        found.append(difference(f"{path}/{position}", None, other, "ADD"))


def identity(item: Any) -> tuple[str, Any] | None:
    if isinstance(item, dict):
        for key in ITEM_KEYS:
            if key in item:
                return key, item[key]
    return None


def difference(path: str, expected: Any, actual: Any, kind: str) -> dict[str, str]:
    return {
        "PropertyPath": path,
        "ExpectedValue": text(expected),
        "ActualValue": text(actual),
        "DifferenceType": kind,
    }


def text(value: Any) -> str:
    """A value as PropertyDifference shows it: "20", "ENABLED", "true", JSON for structures."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return compact(value)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def escape(key: str) -> str:
    """A key as a JSON pointer token."""
    return str(key).replace("~", "~0").replace("/", "~1")


# --- reading each type's actual state from moto's backends ----------------------------------------


def document(value: Any) -> Any:
    """A policy document as moto keeps it (text, sometimes URL-encoded) as an object."""
    if not isinstance(value, str):
        return value
    for candidate in (value, urllib.parse.unquote(value)):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return value


def tags(pairs: dict[str, str] | list[dict[str, str]] | None) -> list[dict[str, str]]:
    if isinstance(pairs, dict):
        return [{"Key": key, "Value": value} for key, value in pairs.items()]
    return [{"Key": pair["Key"], "Value": pair["Value"]} for pair in pairs or []]


def present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def scalable_target(handler: Any) -> dict[str, Any] | None:
    namespace, resource_id, dimension = handler.key
    target = handler.backend.targets.get(dimension, {}).get(resource_id)
    if target is None:
        return None
    return present(
        {
            "ServiceNamespace": namespace,
            "ResourceId": resource_id,
            "ScalableDimension": dimension,
            "MinCapacity": target.min_capacity,
            "MaxCapacity": target.max_capacity,
            "RoleARN": target.role_arn,
            "SuspendedState": target.suspended_state or None,
        }
    )


def scaling_policy(handler: Any) -> dict[str, Any] | None:
    from moto.applicationautoscaling.models import FakeApplicationAutoscalingPolicy

    name, namespace, resource_id, dimension = handler.key
    key = FakeApplicationAutoscalingPolicy.formulate_key(namespace, resource_id, dimension, name)
    policy = handler.backend.policies.get(key)
    if policy is None:
        return None
    return present(
        {
            "PolicyName": name,
            "PolicyType": policy.policy_type,
            "ServiceNamespace": namespace,
            "ResourceId": resource_id,
            "ScalableDimension": dimension,
            "TargetTrackingScalingPolicyConfiguration": (
                policy.target_tracking_scaling_policy_configuration
            ),
            "StepScalingPolicyConfiguration": policy.step_scaling_policy_configuration,
        }
    )


def lambda_function(handler: Any) -> dict[str, Any] | None:
    from moto.awslambda.exceptions import UnknownFunctionException

    try:
        function = handler.backend.get_function(handler.physical_id)
    except UnknownFunctionException:
        return None
    configuration = function.get_configuration()
    return present(
        {
            "FunctionName": function.function_name,
            "Description": configuration.get("Description"),
            "Handler": configuration.get("Handler"),
            "Runtime": configuration.get("Runtime"),
            "Role": configuration.get("Role"),
            "MemorySize": configuration.get("MemorySize"),
            "Timeout": configuration.get("Timeout"),
            "Environment": {"Variables": dict(function.environment_vars or {})},
            "Architectures": configuration.get("Architectures"),
            "EphemeralStorage": configuration.get("EphemeralStorage"),
            "TracingConfig": configuration.get("TracingConfig"),
            "Layers": [layer["Arn"] for layer in configuration.get("Layers") or []],
            "ReservedConcurrentExecutions": function.reserved_concurrency,
            "PackageType": configuration.get("PackageType"),
            "Tags": tags(function.tags),
        }
    )


def log_group(handler: Any) -> dict[str, Any] | None:
    group = handler.backend.groups.get(handler.physical_id)
    if group is None:
        return None
    return present(
        {
            "LogGroupName": group.name,
            "RetentionInDays": group.retention_in_days,
            "Tags": tags(handler.backend.list_tags_for_resource(group.arn)),
        }
    )


def events_rule(handler: Any) -> dict[str, Any] | None:
    try:
        rule = handler.backend.describe_rule(handler.name, handler.bus)
    except Exception:  # noqa: BLE001 - the rule (or its bus) is gone
        return None
    raw = getattr(rule.event_pattern, "_raw_pattern", None)
    return present(
        {
            "Name": rule.name,
            "Description": rule.description,
            "EventPattern": document(raw) if raw else None,
            "ScheduleExpression": rule.scheduled_expression,
            "State": rule.state,
            "RoleArn": rule.role_arn,
            "Targets": [dict(target) for target in rule.targets],
            "Tags": tags(handler.backend.tagger.list_tags_for_resource(rule.arn)["Tags"]),
        }
    )


def ssm_parameter(handler: Any) -> dict[str, Any] | None:
    parameter = handler.backend.get_parameter(handler.physical_id)
    if parameter is None:
        return None
    return present(
        {
            "Name": handler.physical_id,
            "Type": parameter.parameter_type,
            "Value": parameter.value,
            "DataType": parameter.data_type,
            "Tags": ssm_tags(handler),
        }
    )


def ssm_tags(handler: Any) -> dict[str, str]:
    try:
        return dict(handler.backend.list_tags_for_resource("Parameter", handler.physical_id))
    except Exception:  # noqa: BLE001 - moto keeps no tag map for an untagged parameter
        return {}


def s3_bucket(handler: Any) -> dict[str, Any] | None:
    bucket = handler.backend.buckets.get(handler.physical_id)
    if bucket is None:
        return None
    block = bucket.public_access_block
    encryption = None
    if bucket.encryption:
        rule = bucket.encryption.get("Rule") or {}
        if isinstance(rule, list):
            rule = rule[0] if rule else {}
        stored: dict[str, Any] = {
            "ServerSideEncryptionByDefault": dict(
                rule.get("ApplyServerSideEncryptionByDefault") or {}
            )
        }
        if "BucketKeyEnabled" in rule:
            stored["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower() == "true"
        encryption = {"ServerSideEncryptionConfiguration": [stored]}
    return present(
        {
            "BucketName": bucket.name,
            "VersioningConfiguration": (
                {"Status": bucket.versioning_status} if bucket.versioning_status else None
            ),
            "PublicAccessBlockConfiguration": (
                {
                    "BlockPublicAcls": block.block_public_acls,
                    "BlockPublicPolicy": block.block_public_policy,
                    "IgnorePublicAcls": block.ignore_public_acls,
                    "RestrictPublicBuckets": block.restrict_public_buckets,
                }
                if block
                else None
            ),
            "BucketEncryption": encryption,
            "Tags": tags(handler.backend.tagger.list_tags_for_resource(bucket.arn)["Tags"]),
        }
    )


def sagemaker_endpoint(handler: Any) -> dict[str, Any] | None:
    endpoint = handler.backend.endpoints.get(handler.name)
    if endpoint is None:
        return None
    return present(
        {
            "EndpointName": endpoint.endpoint_name,
            "EndpointConfigName": endpoint.endpoint_config_name,
            "Tags": tags(endpoint.tags),
        }
    )


def iam_role(handler: Any) -> dict[str, Any] | None:
    from moto.iam.exceptions import NotFoundException

    try:
        role = handler.backend.get_role(handler.physical_id)
    except NotFoundException:
        return None
    # The inline policies in the template's order first, so the answer reads alongside it.
    order = [item.get("PolicyName") for item in handler.properties.get("Policies") or []]
    names = sorted(
        role.policies,
        key=lambda name: (order.index(name) if name in order else len(order), name),
    )
    return present(
        {
            "RoleName": role.name,
            "Path": role.path,
            "AssumeRolePolicyDocument": document(role.assume_role_policy_document),
            "Description": role.description,
            "MaxSessionDuration": role.max_session_duration,
            "PermissionsBoundary": role.permissions_boundary_arn,
            "ManagedPolicyArns": list(role.managed_policies),
            "Policies": [
                {"PolicyName": name, "PolicyDocument": document(role.policies[name])}
                for name in names
            ],
            "Tags": tags(role.tags),
        }
    )


def without_attachments(stack: Stack, role: Any, actual: dict[str, Any]) -> dict[str, Any]:
    """A role's actual policies without those the stack's AWS::IAM::Policy and
    AWS::IAM::ManagedPolicy resources attach to it: "CloudFormation analyses the stack template
    for attachments before performing the drift comparison. However, CloudFormation cannot perform
    this analysis across stacks" (User Guide, considerations), so other stacks' still show."""
    inline, managed = set(), set()
    for resource in stack.stack_resources:
        if not isinstance(resource, ResourceHandler) or role.physical_id not in (
            resource.properties.get("Roles") or []
        ):
            continue
        if resource.TYPE == "AWS::IAM::Policy":
            inline.add(resource.properties.get("PolicyName"))
        elif resource.TYPE == "AWS::IAM::ManagedPolicy":
            managed.add(resource.physical_id)
    own_inline = {item.get("PolicyName") for item in role.properties.get("Policies") or []}
    own_managed = set(role.properties.get("ManagedPolicyArns") or [])
    trimmed = dict(actual)
    trimmed["Policies"] = [
        item
        for item in actual.get("Policies") or []
        if item["PolicyName"] in own_inline or item["PolicyName"] not in inline
    ]
    trimmed["ManagedPolicyArns"] = [
        arn
        for arn in actual.get("ManagedPolicyArns") or []
        if arn in own_managed or arn not in managed
    ]
    return trimmed


#: Type -> (reader, the top-level properties it reads). A reader answers the resource's actual
#: properties in the template's shape, or None when the resource is gone.
TYPES: dict[str, tuple[Callable[[Any], dict[str, Any] | None], frozenset[str]]] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": (
        scalable_target,
        frozenset(
            "ServiceNamespace ResourceId ScalableDimension MinCapacity MaxCapacity RoleARN "
            "SuspendedState".split()
        ),
    ),
    "AWS::ApplicationAutoScaling::ScalingPolicy": (
        scaling_policy,
        frozenset(
            "PolicyName PolicyType ServiceNamespace ResourceId ScalableDimension "
            "TargetTrackingScalingPolicyConfiguration StepScalingPolicyConfiguration".split()
        ),
    ),
    "AWS::Lambda::Function": (
        lambda_function,
        frozenset(
            "FunctionName Description Handler Runtime Role MemorySize Timeout Environment "
            "Architectures EphemeralStorage TracingConfig Layers ReservedConcurrentExecutions "
            "PackageType Tags".split()
        ),
    ),
    "AWS::Logs::LogGroup": (log_group, frozenset("LogGroupName RetentionInDays Tags".split())),
    "AWS::Events::Rule": (
        events_rule,
        frozenset(
            "Name Description EventPattern ScheduleExpression State RoleArn Targets Tags".split()
        ),
    ),
    "AWS::SSM::Parameter": (ssm_parameter, frozenset("Name Type Value DataType Tags".split())),
    "AWS::S3::Bucket": (
        s3_bucket,
        frozenset(
            "BucketName VersioningConfiguration PublicAccessBlockConfiguration BucketEncryption "
            "Tags".split()
        ),
    ),
    "AWS::SageMaker::Endpoint": (
        sagemaker_endpoint,
        frozenset("EndpointName EndpointConfigName Tags".split()),
    ),
    "AWS::IAM::Role": (
        iam_role,
        frozenset(
            "RoleName Path AssumeRolePolicyDocument Description MaxSessionDuration "
            "PermissionsBoundary ManagedPolicyArns Policies Tags".split()
        ),
    ),
}
READERS = {resource_type: reader for resource_type, (reader, _) in TYPES.items()}
MODELLED = {resource_type: names for resource_type, (_, names) in TYPES.items()}
