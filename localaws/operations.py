"""CloudFormation's operation-level APIs: operation ids, LastOperations, DescribeEvents, and the
pre-deployment ("early") validation of change sets. moto 5.2.5 has none of them (DescribeEvents
is HTTP 500, "not been implemented").

What AWS documents, and what this module does with it:

- Every stack operation has an id. "An operation is any action performed on a stack, including
  stack lifecycle actions (Create, Update, Delete, Rollback), change set creation, nested stack
  creation, and automatic rollbacks triggered by failures. Each operation has a unique identifier
  (Operation ID)" (API reference, DescribeEvents). OperationType is one of CREATE_STACK,
  UPDATE_STACK, DELETE_STACK, CONTINUE_ROLLBACK, ROLLBACK, CREATE_CHANGESET (botocore's model).
  Here: CreateStack and a CREATE change set's execution are CREATE_STACK, UpdateStack and an
  UPDATE change set's execution UPDATE_STACK, DeleteStack DELETE_STACK, the automatic rollback of
  a failed create or update ROLLBACK (the operation it rolls back then ends FAILED), and
  CreateChangeSet CREATE_CHANGESET. CreateStack and UpdateStack answer the id (`OperationId` in
  their output shapes).
- Stack events carry it: StackEvent.OperationId, "The unique identifier of the operation that
  generated this stack event" (botocore's model), so DescribeStackEvents shows it.
- `LastOperations` on DescribeStacks (and ListStacks' summaries): "Information about the most
  recent operations performed on this stack" (API reference, Stack). The User Guide's example
  ("View stack events by operation", the AWS CLI section) after a failed update lists, newest
  first, `[{ROLLBACK}, {UPDATE_STACK}]`. Here: the latest stack operation, preceded by the
  rollback that followed it if any (so one or two entries). Change set creations are left out,
  except for a stack that has had no other operation (REVIEW_IN_PROGRESS); AWS does not say.
- DescribeEvents(StackName | ChangeSetName | OperationId, Filters={FailedEvents}, NextToken)
  answers OperationEvents (API reference, DescribeEvents and OperationEvent; User Guide,
  "View stack events by operation"). Newest first, as the User Guide's example output in
  "Validate stack deployments" shows (the operation's STACK_EVENT, 17:10:02.923, before its
  VALIDATION_ERROR, 17:10:02.461), and as DescribeStackEvents orders. EventType: STACK_EVENT for
  the stack's own status events, PROGRESS_EVENT for a resource's progress, PROVISIONING_ERROR for a
  resource's *_FAILED event ("Provisioning errors - Resource creation and update failures"),
  VALIDATION_ERROR for pre-deployment validation ("Validation errors - Failures from CloudFormation
  Early Validations"). FailedEvents=true "only returns failed events within the operation": here
  the PROVISIONING_ERROR and VALIDATION_ERROR events (WARN ones included: their ValidationStatus
  is FAILED) and the stack's own *_FAILED events. By OperationId, one operation's events; by
  ChangeSetName (name with StackName, or ARN), the change set's creation (its validation events);
  by StackName, every operation of the stack. Pages of 100 (AWS does not document its page size).
- Pre-deployment validation on CreateChangeSet (User Guide, "Validate stack deployments"): property
  syntax validation against the resource schemas and resource name conflict detection fail the
  change set (FAIL mode); S3 bucket emptiness only warns (WARN mode: "allows change set creation
  to succeed despite validation failures"). A FAIL finding makes the change set FAILED with
  `ExecutionStatus` UNAVAILABLE and the reason AWS gives ("The following hook(s)/validation failed:
  [AWS::EarlyValidation::ResourceExistenceCheck]. To troubleshoot Early Validation errors, use the
  DescribeEvents API for detailed failure information." as reported by users and matched by the
  AWS CDK's EarlyValidationReporter, which looks for `AWS::EarlyValidation` in StatusReason);
  `AWS::EarlyValidation::PropertyValidation` is the property check's (seen in users' reports).
  The findings are VALIDATION_ERROR events of the CREATE_CHANGESET operation, with
  ValidationName, ValidationStatus (FAILED), ValidationStatusReason, ValidationPath and
  ValidationFailureMode (FAIL or WARN). Names and reasons:
  - `PROPERTY_VALIDATION` (documented in the User Guide's example), reason in its format
    "#: required key [X] not found" / "#: extraneous key [X] is not permitted", path
    `/Resources/<LogicalId>/Properties`. Only top-level `required` and `additionalProperties:
    false` are checked, against the schemas cfn-lint ships (the ones test_handlers.py reads).
  - `NAME_CONFLICT_VALIDATION`, reason "Resource of type 'AWS::S3::Bucket' with identifier 'x'
    already exists.", path `/Resources/<LogicalId>`; and `BUCKET_EMPTINESS_VALIDATION`, reason
    "The bucket 'x' is not empty. You must either delete all objects and versions or use the
    deletion policy to retain it, otherwise the delete operation will fail." Neither name is in
    the User Guide; both and their reasons are from real output quoted in
    aws-cloudformation/rain PR #744, the AWS CDK CLI's early-validation.ts ("Example:
    `NAME_CONFLICT_VALIDATION`", "Example: `/Resources/SomeBucketD5B70704`") and the AWS CDK
    `cdk validate` design text (PROPERTY_VALIDATION, NAME_CONFLICT_VALIDATION,
    BUCKET_EMPTINESS_VALIDATION).
  Name conflicts are checked for S3 buckets (names are global: any account), IAM roles, log
  groups, Lambda functions, SSM parameters and SageMaker pipelines that the change set adds or
  renames, when the name is a literal or resolves from parameters alone. `DisableValidation=true`
  skips all of it (CreateChangeSet's input shape has the parameter).
- `LastUpdatedTime` on DescribeStacks: "The time the stack was last updated. This field will only
  be returned if the stack has been updated at least once" (API reference, Stack). moto never
  answers it. Here it is the time of the stack's latest UPDATE_IN_PROGRESS,
  UPDATE_ROLLBACK_IN_PROGRESS or IMPORT_IN_PROGRESS event (when the operation started; AWS does
  not say which moment it records).
- ExecuteChangeSet refuses a change set whose ExecutionStatus is UNAVAILABLE (a FAILED one), with
  `InvalidChangeSetStatus`: "ChangeSet [<stack id>] cannot be executed in its current execution
  status of [UNAVAILABLE]", the wording of a real AWS answer quoted in aws/amazon-chime-sdk-js
  issue #1089 (for OBSOLETE). moto executed it.

Hooks: none into engine.py. Operations are inferred from the stack's own status events as they
are appended (CREATE_IN_PROGRESS starts CREATE_STACK, UPDATE_IN_PROGRESS UPDATE_STACK,
DELETE_IN_PROGRESS DELETE_STACK, ROLLBACK_IN_PROGRESS / UPDATE_ROLLBACK_IN_PROGRESS a ROLLBACK;
*_COMPLETE ends one SUCCEEDED, *_FAILED FAILED), which engine.py and moto record wherever an
operation starts or ends; every event appended meanwhile (by moto, engine.py or a handler) is
tagged with the current operation. Events recorded before the first operation of a stack (moto
creates resources an exported output names before it records CREATE_IN_PROGRESS) join it.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Event, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from . import engine
from .handlers.base import ResourceHandler, logger
from .patching import wrap as _wrap

STACK_TYPE = "AWS::CloudFormation::Stack"
PAGE_SIZE = 100

STARTS = {
    "CREATE_IN_PROGRESS": "CREATE_STACK",
    "UPDATE_IN_PROGRESS": "UPDATE_STACK",
    "DELETE_IN_PROGRESS": "DELETE_STACK",
    "ROLLBACK_IN_PROGRESS": "ROLLBACK",
    "UPDATE_ROLLBACK_IN_PROGRESS": "ROLLBACK",
}
SUCCEEDS = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "DELETE_COMPLETE",
    "ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
}
FAILS = {
    "CREATE_FAILED",
    "UPDATE_FAILED",
    "DELETE_FAILED",
    "ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_FAILED",
}

#: The stack's own status events that make it "updated" (Stack.LastUpdatedTime: "The time the
#: stack was last updated. This field will only be returned if the stack has been updated at
#: least once", API reference): an update, its rollback, an import (a refactor's too).
UPDATES = {"UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "IMPORT_IN_PROGRESS"}

EARLY_VALIDATION_HOOKS = {
    "PROPERTY_VALIDATION": "AWS::EarlyValidation::PropertyValidation",
    "NAME_CONFLICT_VALIDATION": "AWS::EarlyValidation::ResourceExistenceCheck",
}

_lock = threading.RLock()
_installed = False
# Every operation by id, and a change set's creation by the change set's id (both outlive the
# stack, as a deleted stack's events do).
OPERATIONS: dict[str, "Operation"] = {}
CHANGE_SET_OPERATIONS: dict[str, "Operation"] = {}
_validation_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "localaws_disable_validation", default=False
)


@dataclass
class Operation:
    id: str
    type: str
    stack: Stack
    start: datetime
    status: str = "IN_PROGRESS"
    end: datetime | None = None
    #: For a ROLLBACK: the operation it rolls back.
    rolls_back: "Operation | None" = None
    change_set_id: str | None = None
    change_set_name: str | None = None
    #: VALIDATION_ERROR events (OperationEvent dicts), for a change set's creation.
    validations: list[dict[str, Any]] = field(default_factory=list)

    def finish(self, status: str) -> None:
        if self.status == "IN_PROGRESS":
            self.status = status
            self.end = utcnow()


def install() -> None:
    """Applies the patches; safe to call more than once. Call after engine.install()."""
    global _installed
    if _installed:
        return
    _wrap(Stack, "__init__", _stack_init)
    Stack.last_operations = property(last_operations)
    Event.operation_id = None  # serialised as StackEvent.OperationId when set
    _wrap(CloudFormationBackend, "create_change_set", _create_change_set)
    _wrap(CloudFormationBackend, "execute_change_set", _execute_change_set)
    _wrap(CloudFormationResponse, "create_stack", _answer_operation_id("CREATE_STACK"))
    _wrap(CloudFormationResponse, "update_stack", _answer_operation_id("UPDATE_STACK"))
    _wrap(CloudFormationResponse, "create_change_set", _disable_validation_parameter)
    CloudFormationResponse.describe_events = _describe_events
    _installed = True


# --- operations follow the stack's own events --------------------------------------------------


class OperationLog(list):
    """A stack's events (moto's `Stack.events`): each appended event is tagged with the stack's
    current operation, and the stack's own status events start and end operations."""

    def __init__(self, stack: Stack, events: Any = ()):
        super().__init__(events)
        self.stack = stack

    def append(self, event: Any) -> None:
        with _lock:
            if is_stack_event(self.stack, event):
                follow(self.stack, event.resource_status)
                if event.resource_status in UPDATES:
                    self.stack.last_updated_time = event.timestamp
            if getattr(event, "operation_id", None) is None:
                current = getattr(self.stack, "_operation", None)
                event.operation_id = current.id if current is not None else None
            super().append(event)


def _stack_init(original, stack: Stack, *arguments: Any, **keywords: Any) -> None:
    original(stack, *arguments, **keywords)
    stack.events = OperationLog(stack, stack.events)
    stack._operations = []
    stack._operation = None


def is_stack_event(stack: Stack, event: Any) -> bool:
    return event.resource_type == STACK_TYPE and event.logical_resource_id == stack.name


def operations_of(stack: Stack) -> list[Operation]:
    return getattr(stack, "_operations", None) or []


def follow(stack: Stack, status: str) -> None:
    """Starts or ends the stack's current operation on one of the stack's own status events."""
    current: Operation | None = getattr(stack, "_operation", None)
    if status in STARTS:
        kind = STARTS[status]
        rolled_back = None
        if kind == "ROLLBACK" and current is not None:
            current.finish("FAILED")
            rolled_back = current
        elif current is not None:
            current.finish("SUCCEEDED")  # ended without a status event of its own
        first = not any(op.type != "CREATE_CHANGESET" for op in operations_of(stack))
        operation = start(stack, kind, adopt=first)
        operation.rolls_back = rolled_back
        stack._operation = operation
    elif current is not None and status in SUCCEEDS:
        current.finish("SUCCEEDED")
    elif current is not None and status in FAILS:
        current.finish("FAILED")


def start(stack: Stack, kind: str, adopt: bool) -> Operation:
    """Records a new operation of the stack; with `adopt`, the stack's events that belong to no
    operation yet become its own."""
    operation = Operation(id=str(uuid.uuid4()), type=kind, stack=stack, start=utcnow())
    if not hasattr(stack, "_operations"):
        stack._operations = []
    stack._operations.append(operation)
    OPERATIONS[operation.id] = operation
    if adopt:
        for event in stack.events:
            if getattr(event, "operation_id", None) is None:
                event.operation_id = operation.id
    return operation


def last_operations(stack: Stack) -> list[dict[str, str]] | None:
    """Stack.LastOperations: the latest operation, after its rollback if one followed."""
    operations = [op for op in operations_of(stack) if op.type != "CREATE_CHANGESET"]
    if not operations:
        operations = operations_of(stack)[-1:]
    if not operations:
        return None
    latest = operations[-1]
    listed = [latest] + ([latest.rolls_back] if latest.rolls_back is not None else [])
    return [{"OperationType": op.type, "OperationId": op.id} for op in listed]


def _answer_operation_id(kind: str):
    """CreateStack's and UpdateStack's output: the operation the call ran."""

    def answer(original, response: CloudFormationResponse) -> ActionResult:
        result = original(response)
        output = result.result
        if isinstance(output, dict) and output.get("StackId"):
            stack = response.cloudformation_backend.get_stack(output["StackId"])
            found = [op for op in operations_of(stack) if op.type == kind]
            if found:
                output["OperationId"] = found[-1].id
        return result

    return answer


# --- DescribeEvents ---------------------------------------------------------------------------


def event_type(stack: Stack, event: Event) -> str:
    if is_stack_event(stack, event):
        return "STACK_EVENT"
    if event.resource_status.endswith("_FAILED"):
        return "PROVISIONING_ERROR"
    return "PROGRESS_EVENT"


def operation_event(operation: Operation, event: Event) -> dict[str, Any]:
    stack = operation.stack
    kind = event_type(stack, event)
    answer: dict[str, Any] = {
        "EventId": str(event.event_id),
        "StackId": stack.stack_id,
        "OperationId": operation.id,
        "OperationType": operation.type,
        "OperationStatus": operation.status,
        "EventType": kind,
        "LogicalResourceId": event.logical_resource_id,
        "PhysicalResourceId": event.physical_resource_id or "",
        "ResourceType": event.resource_type,
        "Timestamp": event.timestamp,
        "ResourceStatus": event.resource_status,
    }
    if event.resource_status_reason:
        answer["ResourceStatusReason"] = event.resource_status_reason
    if event.resource_properties:
        answer["ResourceProperties"] = event.resource_properties
    if kind == "STACK_EVENT":
        answer["StartTime"] = operation.start
        if operation.end is not None and event.resource_status in SUCCEEDS | FAILS:
            answer["EndTime"] = operation.end
    return answer


def events_of(operation: Operation) -> list[dict[str, Any]]:
    """An operation's events, oldest first."""
    found = [
        operation_event(operation, event)
        for event in list(operation.stack.events)
        if getattr(event, "operation_id", None) == operation.id
    ]
    for validation in operation.validations:
        found.append(dict(validation, OperationStatus=operation.status))
    return found


def is_failed(event: dict[str, Any]) -> bool:
    if event["EventType"] in ("PROVISIONING_ERROR", "VALIDATION_ERROR", "HOOK_INVOCATION_ERROR"):
        return True
    return str(event.get("ResourceStatus", "")).endswith("_FAILED")


def _describe_events(response: CloudFormationResponse) -> ActionResult:
    backend = response.cloudformation_backend
    operation_id = response._get_param("OperationId")
    change_set_name = response._get_param("ChangeSetName")
    stack_name = response._get_param("StackName")
    filters = response._get_param("Filters") or {}
    failed_only = str(filters.get("FailedEvents", False)).lower() == "true"
    token = response._get_param("NextToken")
    with _lock:
        if operation_id:
            operation = OPERATIONS.get(operation_id)
            in_scope = operation is not None and (
                operation.stack.account_id == backend.account_id
                and operation.stack.region_name == backend.region_name
            )
            operations = [operation] if in_scope else []
        elif change_set_name:
            operations = [change_set_operation(backend, change_set_name, stack_name)]
        elif stack_name:
            operations = operations_of(engine.stack_for_request(backend, stack_name))
        else:
            raise ValidationError(
                message="One of ChangeSetName, OperationId or StackName must be specified as input."
            )
        events = [event for operation in operations for event in events_of(operation)]
    if failed_only:
        events = [event for event in events if is_failed(event)]
    events.reverse()  # newest first
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise ValidationError(message=f"Invalid NextToken: {token}") from None
    page = events[offset : offset + PAGE_SIZE]
    answer: dict[str, Any] = {"OperationEvents": page}
    if offset + PAGE_SIZE < len(events):
        answer["NextToken"] = str(offset + PAGE_SIZE)
    return ActionResult(answer)


def change_set_operation(
    backend: CloudFormationBackend, name: str, stack_name: str | None
) -> Operation:
    """The creation of the change set named by its ARN, or by its name (and StackName)."""
    found = CHANGE_SET_OPERATIONS.get(name)
    if found is None and not name.startswith("arn:"):
        candidates = [
            op
            for op in CHANGE_SET_OPERATIONS.values()
            if op.change_set_name == name
            and op.stack.account_id == backend.account_id
            and op.stack.region_name == backend.region_name
            and (not stack_name or stack_name in (op.stack.name, op.stack.stack_id))
        ]
        found = candidates[-1] if candidates else None
    if found is None or found.stack.account_id != backend.account_id:
        raise ValidationError(message=f"ChangeSet [{name}] does not exist")
    return found


# --- change sets: their creation's operation, and pre-deployment validation --------------------


def _disable_validation_parameter(original, response: CloudFormationResponse) -> ActionResult:
    token = _validation_disabled.set(response._get_bool_param("DisableValidation", False))
    try:
        return original(response)
    finally:
        _validation_disabled.reset(token)


def _create_change_set(
    original, backend: CloudFormationBackend, stack_name, change_set_name, *arguments, **keywords
):
    change_set_id, stack_id = original(backend, stack_name, change_set_name, *arguments, **keywords)
    change_set: ChangeSet = backend.change_sets[change_set_id]
    stack = change_set.stack
    with _lock:
        # A CREATE change set's REVIEW_IN_PROGRESS event belongs to its creation.
        operation = start(stack, "CREATE_CHANGESET", adopt=not operations_of(stack))
        operation.change_set_id = change_set_id
        operation.change_set_name = change_set_name
        CHANGE_SET_OPERATIONS[change_set_id] = operation
    if change_set.status == "CREATE_COMPLETE" and not _validation_disabled.get():
        try:
            findings = validate(backend, change_set)
        except Exception:  # noqa: BLE001 - a bug here must not fail CreateChangeSet
            logger.exception("localaws: pre-deployment validation of %s failed", change_set_name)
            findings = []
        operation.validations = [validation_event(operation, finding) for finding in findings]
        failing = [
            EARLY_VALIDATION_HOOKS[finding.name]
            for finding in findings
            if finding.mode == "FAIL"
        ]
        if failing:
            change_set.status = "FAILED"
            change_set.execution_status = "UNAVAILABLE"
            change_set.status_reason = (
                f"The following hook(s)/validation failed: [{', '.join(dict.fromkeys(failing))}]. "
                "To troubleshoot Early Validation errors, use the DescribeEvents API for detailed "
                "failure information."
            )
    operation.finish("FAILED" if change_set.status == "FAILED" else "SUCCEEDED")
    return change_set_id, stack_id


class InvalidChangeSetStatus(ServiceException):
    code = "InvalidChangeSetStatus"


def _execute_change_set(original, backend: CloudFormationBackend, change_set_name, stack_name=None):
    change_set = backend.describe_change_set(change_set_name)
    if change_set.execution_status == "UNAVAILABLE":
        raise InvalidChangeSetStatus(
            f"ChangeSet [{change_set.stack_id}] cannot be executed in its current execution "
            f"status of [{change_set.execution_status}]"
        )
    return original(backend, change_set_name, stack_name)


@dataclass
class Finding:
    name: str
    mode: str  # FAIL or WARN
    logical_id: str
    resource_type: str
    physical_id: str
    reason: str
    path: str


def validation_event(operation: Operation, finding: Finding) -> dict[str, Any]:
    return {
        "EventId": str(uuid.uuid4()),
        "StackId": operation.stack.stack_id,
        "OperationId": operation.id,
        "OperationType": operation.type,
        "EventType": "VALIDATION_ERROR",
        "LogicalResourceId": finding.logical_id,
        "PhysicalResourceId": finding.physical_id,
        "ResourceType": finding.resource_type,
        "Timestamp": utcnow(),
        "ValidationFailureMode": finding.mode,
        "ValidationName": finding.name,
        "ValidationStatus": "FAILED",
        "ValidationStatusReason": finding.reason,
        "ValidationPath": finding.path,
    }


def validate(backend: CloudFormationBackend, change_set: ChangeSet) -> list[Finding]:
    """What CloudFormation's pre-deployment validation finds in a change set: property syntax,
    name conflicts (FAIL), buckets that would be deleted with objects in them (WARN)."""
    template = change_set.template_dict or {}
    resources = template.get("Resources") or {}
    scratch = scratch_map(change_set)
    wanted = engine.present(resources, scratch.lazy_condition_map)
    findings: list[Finding] = []
    current = change_set.stack.resource_map._parsed_resources
    if "Transform" not in template:
        for logical_id in resources:
            if logical_id in wanted:
                findings += property_findings(
                    logical_id, resources[logical_id], change_set.stack.region_name, current
                )
    findings += name_conflicts(change_set, resources, scratch, wanted)
    findings += buckets_not_empty(change_set)
    return findings


def scratch_map(change_set: ChangeSet) -> parsing.ResourceMap:
    """The change set's template with its parameters and conditions loaded, no resource built
    (as engine.conditions_of)."""
    stack = change_set.stack
    scratch = parsing.ResourceMap(
        stack.stack_id,
        stack.name,
        change_set.parameters or stack.resource_map.input_parameters,
        {},
        region_name=stack.region_name,
        account_id=stack.account_id,
        template=change_set.template_dict,
        cross_stack_resources=stack.cross_stack_resources,
    )
    scratch.load_mapping()
    scratch.load_parameters()
    scratch.load_conditions()
    return scratch


def physical_id_of(current: dict[str, Any], logical_id: str) -> str:
    resource = current.get(logical_id)
    return getattr(resource, "physical_resource_id", None) or "" if resource is not None else ""


# Property syntax: the resource provider schemas cfn-lint ships.


def property_findings(
    logical_id: str, resource: dict[str, Any], region: str, current: dict[str, Any]
) -> list[Finding]:
    resource_type = resource.get("Type") if isinstance(resource, dict) else None
    if not isinstance(resource_type, str) or not resource_type.startswith("AWS::"):
        return []
    schema = resource_schema(region, resource_type)
    properties = resource.get("Properties")
    if schema is None or properties is not None and not isinstance(properties, dict):
        return []
    properties = properties or {}
    if any(key.startswith("Fn::") for key in properties):  # Properties: !If [...]
        return []
    path = f"/Resources/{logical_id}/Properties"
    physical_id = physical_id_of(current, logical_id)
    reasons = [
        f"#: required key [{key}] not found"
        for key in schema.get("required", [])
        if key not in properties
    ]
    if schema.get("additionalProperties") is False:
        known = schema.get("properties") or {}
        reasons += [
            f"#: extraneous key [{key}] is not permitted" for key in properties if key not in known
        ]
    return [
        Finding("PROPERTY_VALIDATION", "FAIL", logical_id, resource_type, physical_id, reason, path)
        for reason in reasons
    ]


@functools.lru_cache(maxsize=None)
def resource_schema(region: str, resource_type: str) -> dict[str, Any] | None:
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    except ImportError:  # cfn-lint not installed: no property validation
        return None
    for candidate in (region, "us-east-1"):
        try:
            return PROVIDER_SCHEMA_MANAGER.get_resource_schema(candidate, resource_type).schema
        except Exception:  # noqa: BLE001 - unknown region or type
            continue
    return None


# Name conflicts: a resource the change set adds (or renames) whose name is taken.


def _bucket_exists(handler: Any, name: str) -> bool:
    from moto.s3.models import s3_backends

    return name in s3_backends.bucket_accounts  # bucket names are global


def _found(lookup: Callable[[Any, str], Any]) -> Callable[[Any, str], bool]:
    def exists(handler: Any, name: str) -> bool:
        try:
            return lookup(handler, name) is not None
        except Exception:  # noqa: BLE001 - moto's not-found errors differ by service
            return False

    return exists


NAME_CHECKS: dict[str, Callable[[Any, str], bool]] = {
    "AWS::S3::Bucket": _bucket_exists,
    "AWS::IAM::Role": _found(lambda handler, name: handler.backend.get_role(name)),
    "AWS::Logs::LogGroup": _found(lambda handler, name: handler.backend.groups[name]),
    "AWS::Lambda::Function": _found(lambda handler, name: handler.backend.get_function(name)),
    "AWS::SSM::Parameter": _found(lambda handler, name: handler.backend.get_parameter(name)),
    "AWS::SageMaker::Pipeline": _found(lambda handler, name: handler.backend.pipelines[name]),
}


def handler_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    pending = list(ResourceHandler.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if isinstance(getattr(cls, "TYPE", None), str):
            found[cls.TYPE] = cls
    return found


def name_conflicts(
    change_set: ChangeSet,
    resources: dict[str, Any],
    scratch: parsing.ResourceMap,
    wanted: set[str],
) -> list[Finding]:
    stack = change_set.stack
    current = stack.resource_map._parsed_resources
    classes = handler_classes()
    parameters = set((change_set.template_dict or {}).get("Parameters") or {})
    findings = []
    for change in change_set.changes:
        if change.action not in ("Add", "Modify") or change.logical_resource_id not in wanted:
            continue
        resource_type = change.resource_type
        cls = classes.get(resource_type)
        if resource_type not in NAME_CHECKS or cls is None or not cls.NAME_PROPERTY:
            continue
        properties = resources[change.logical_resource_id].get("Properties") or {}
        if not isinstance(properties, dict):
            continue
        name = resolved(properties.get(cls.NAME_PROPERTY), scratch, parameters)
        if not name:
            continue
        existing = current.get(change.logical_resource_id)
        if change.action == "Modify" and name in (
            getattr(existing, "resource_name", None),
            getattr(existing, "physical_resource_id", None),
        ):
            continue  # its own name
        handler = cls(
            stack.account_id, stack.region_name, change.logical_resource_id, stack.stack_id
        )
        if NAME_CHECKS[resource_type](handler, name):
            findings.append(
                Finding(
                    "NAME_CONFLICT_VALIDATION",
                    "FAIL",
                    change.logical_resource_id,
                    resource_type,
                    physical_id_of(current, change.logical_resource_id),
                    f"Resource of type '{resource_type}' with identifier '{name}' already exists.",
                    f"/Resources/{change.logical_resource_id}",
                )
            )
    return findings


def resolved(value: Any, scratch: parsing.ResourceMap, parameters: set[str]) -> str | None:
    """A name property's value when it is known before anything is created: a literal, or built
    from parameters and pseudo parameters only."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    names = engine.references(value)
    if not all(name in parameters or name.startswith("AWS::") for name in names):
        return None
    try:
        result = parsing.clean_json(copy.deepcopy(value), scratch)
    except Exception:  # noqa: BLE001 - left to the execution
        return None
    return result if isinstance(result, str) else None


# S3 bucket emptiness: a bucket the change set deletes (removes, or replaces) that holds objects.


def buckets_not_empty(change_set: ChangeSet) -> list[Finding]:
    from moto.s3.models import s3_backends

    stack = change_set.stack
    old = stack.resource_map._resource_json_map
    findings = []
    for change in change_set.changes:
        if change.resource_type != "AWS::S3::Bucket" or change.logical_resource_id not in old:
            continue
        resource = old[change.logical_resource_id]
        if change.action == "Remove":
            policy = resource.get("DeletionPolicy", "Delete")
        elif change.action == "Modify" and getattr(change, "replacement", None) == "True":
            policy = resource.get("UpdateReplacePolicy", "Delete")
        else:
            continue
        name = getattr(change, "physical_resource_id", None)
        if policy in ("Retain", "RetainExceptOnCreate") or not name:
            continue
        owner = s3_backends.bucket_accounts.get(name)
        if owner is None:
            continue
        partition, account = owner
        bucket = s3_backends[account][partition].buckets.get(name)
        if bucket is not None and len(bucket.keys):
            findings.append(
                Finding(
                    "BUCKET_EMPTINESS_VALIDATION",
                    "WARN",
                    change.logical_resource_id,
                    change.resource_type,
                    name,
                    f"The bucket '{name}' is not empty. You must either delete all objects and "
                    "versions or use the deletion policy to retain it, otherwise the delete "
                    "operation will fail.",
                    f"/Resources/{change.logical_resource_id}",
                )
            )
    return findings
