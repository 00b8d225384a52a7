"""Drift-aware change sets: CreateChangeSet with `DeploymentMode: REVERT_DRIFT`, DescribeChangeSet's
drift fields, and ExecuteChangeSet putting drifted resources back. moto 5.2.5 ignores the parameter.

What AWS documents, and what this module does with it:

- The comparison. "Traditional change sets provide a comparison of your new template with the
  previous template for a stack, but do not account for stack drift. Drift-aware change sets solve
  this problem by providing a three-way comparison between: Actual state - The live configuration
  of your resources. CloudFormation will read the configuration of resources in your account at the
  time of change set creation via underlying service APIs. Previous deployment state [...] Desired
  state - The configuration defined in your new template." and "Drift-aware change sets will update
  the actual state of all stack resources to match the desired state, even if a resource was not
  explicitly changed in the template." (User Guide, "Using drift-aware change sets"). So no prior
  DetectStackDrift is needed: here CreateChangeSet reads every resource drift.py can read
  (drift.check, with the caller's read permissions as DetectStackDrift) when the change set is
  created. A drifted resource the template does not change becomes a `Modify` change; with the
  template's change of the same resource, its drifted properties are added to that change. A
  change set whose template and parameters are the stack's, on a drifted stack, is then
  CREATE_COMPLETE (the AWS blog post "Safely Handle Configuration Drift with CloudFormation
  Drift-Aware Change Sets" runs exactly that, `--use-previous-template --deployment-mode
  REVERT_DRIFT`, to remove a rule added by hand); with no drift either it fails as any change set
  without changes ("The submitted information didn't contain changes ...").
- The answers (botocore's model, DescribeChangeSetOutput and ResourceChange; the User Guide's
  "Reviewing drift-aware change sets" lists the same fields): `DeploymentMode: REVERT_DRIFT` and
  `StackDriftStatus` (DRIFTED, IN_SYNC, UNKNOWN) on the change set, "Only present for drift-aware
  change sets"; on each resource change `ResourceDriftStatus` (IN_SYNC, MODIFIED, DELETED, UNKNOWN,
  or UNSUPPORTED: "Resource type does not support actual state comparison", here every type
  drift.py does not read) and `ResourceDriftIgnoredAttributes` (`{Path, Reason}`, Reason
  WRITE_ONLY_PROPERTY: "Property is not included in read response for the resource's live
  state": the type schema's writeOnlyProperties the template sets, e.g. a function's
  `/Properties/Code/ZipFile`). Each drifted property path is a ResourceChangeDetail whose Target
  has `Attribute: Properties`, `Name` (the top-level property), `Path` (`/Properties/MemorySize`,
  `/Properties/Environment/Variables/DEBUG`), `BeforeValue` (the actual value) with
  `BeforeValueFrom: ACTUAL_STATE`, `AfterValue` (the template's) with `AfterValueFrom: TEMPLATE`,
  `Drift: {PreviousValue, ActualValue, DriftDetectionTimestamp}`, `AttributeChangeType` (Modify; Add
  for a value removed by hand; Remove for one added by hand; SyncWithActual when the new template
  sets what the resource already has: "The drift status of this item will be reset but the item
  will not be modified") and `RequiresRecreation: Never`; the detail's `ChangeSource` is
  `DirectModification`, or `NoModification` ("changes made to the template that matches the actual
  state of the resource") for SyncWithActual, `Evaluation` Static (Dynamic when the new template's
  value cannot be resolved before the execution). A resource whose only changes are such template
  changes is an `Action: SyncWithActual` change ("resource will not be changed, only CloudFormation
  metadata will change"). A resource deleted by hand is an `Action: Add` change with
  `ResourceDriftStatus: DELETED` (the blog's scenario 3 recreates a deleted bucket). `BeforeValue`,
  `AfterValue`, `BeforeContext`, `AfterContext` and `PreviousDeploymentContext` (JSON
  `{"Properties": ...}`: the actual, new and previously deployed properties) are property values,
  answered with `IncludePropertyValues=true` only ("If true, the returned changes include detailed
  changes in the property values", API reference, DescribeChangeSet); `Drift` is always there (the
  User Guide's describe-change-set example, without that flag, lists it).
- What is not reverted. "Drift-aware change sets do not remove or modify tag keys that were not
  specified in the template" (considerations): a tag key added by hand stays, and is no reason for
  a change. "Drift-aware change sets do not support drift reconciliation for immutable
  properties": drift of a createOnlyProperties property is left alone. Write-only properties are
  never compared (drift.py), so never reverted. "AWS-managed properties" (an Auto Scaling group's
  desired capacity ...) are none of the properties drift.py reads.
- Execution. ExecuteChangeSet of such a change set, in the stack's UPDATE operation: first the
  resources deleted by hand are created again (each handler's create, with the properties last
  deployed, CREATE_IN_PROGRESS/CREATE_COMPLETE events), and the drifted resources the template does
  not change are put back; then the template's changes are applied as for any change set; then
  (engine.AFTER_UPDATES, before the cleanup phase) whatever drift the changed resources still have
  is put back to the values just deployed. Putting back is the handler's own update (as an
  update through the engine: the stack role's permissions checked, UPDATE_IN_PROGRESS and
  UPDATE_COMPLETE or UPDATE_FAILED events) from the actual values to the template's, for the
  drifted top-level properties, re-read at execution time. A following DetectStackDrift finds
  them IN_SYNC; a drift result the stack already had for such a resource is replaced by a fresh
  check ("drift-aware change sets reset the drift status of the resource", User Guide).
- Rollback. "If the deployment fails, CloudFormation will roll back resources to their actual
  pre-deployment state and preserve out-of-band changes made since the last deployment" (User
  Guide, "Executing drift-aware change sets"). The drifted resources' actual values are read when
  the execution starts; when the execution fails and the engine rolls the stack back, the rollback
  (at the same hook) puts those values back where they differ, and deletes again the resources it
  had created in place of resources deleted by hand.

Hooks: engine.AFTER_UPDATES (called by engine._update_resources before its cleanup phase).
Installed after engine.install() and before operations.install(), so that the no-changes decision
made here comes before operations' pre-deployment validation and its CREATE_CHANGESET operation.
"""

from __future__ import annotations

import contextvars
import copy
import json
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import (
    Change,
    ChangeSet,
    CloudFormationBackend,
    Stack,
    cloudformation_backends,
)
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from . import drift, engine, iam
from .handlers.base import ResourceHandler, logger
from .patching import wrap as _wrap

MODE = "REVERT_DRIFT"
NO_CHANGES = "The submitted information didn't contain changes."
#: The order DescribeChangeSet lists changes in (engine: Add, Modify, Remove).
ACTIONS = ("Add", "Modify", "SyncWithActual", "Remove")
#: Fields holding property values: answered with IncludePropertyValues=true only.
VALUE_FIELDS = ("before_context", "after_context", "previous_deployment_context")
TARGET_VALUES = ("BeforeValue", "AfterValue")
MISSING = object()
_installed = False


@dataclass
class Request:
    """A CreateChangeSet request's deployment mode, and who asked (whose read permissions count)."""

    mode: str
    caller: iam.Identity


@dataclass
class Plan:
    """What a drift-aware change set puts back: resources drifted (MODIFIED) and deleted by hand."""

    #: Resources with drift to put back (a subset of `drifted`).
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: Every drifted resource the change set keeps, its drift put back or synced by the template
    #: (a rollback restores their actual values).
    drifted: list[str] = field(default_factory=list)
    #: Resources the template itself changes (their drift is put back after the update).
    template_changed: set[str] = field(default_factory=set)


@dataclass
class Execution:
    """A drift-aware change set's execution under way."""

    stack_id: str
    plan: Plan
    #: Each drifted resource's actual properties when the execution started, and which top-level
    #: properties then differed from the template.
    snapshot: dict[str, dict[str, Any]] = field(default_factory=dict)
    drifted: dict[str, set[str]] = field(default_factory=dict)
    recreated: list[str] = field(default_factory=list)
    phase: str = "pending"  # applying, rolling back, done


_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "localaws_revert_drift_request", default=None
)
_execution: contextvars.ContextVar[Execution | None] = contextvars.ContextVar(
    "localaws_revert_drift_execution", default=None
)


def install() -> None:
    """Applies the patches; safe to call more than once. Call after engine.install() and before
    operations.install()."""
    global _installed
    if _installed:
        return
    _wrap(CloudFormationResponse, "create_change_set", _deployment_mode_parameter)
    _wrap(CloudFormationBackend, "create_change_set", _create_change_set)
    _wrap(CloudFormationResponse, "describe_change_set", _describe_change_set)
    _wrap(CloudFormationBackend, "execute_change_set", _execute_change_set)
    _wrap(ChangeSet, "apply", _apply)
    engine.AFTER_UPDATES.append(_after_updates)
    _installed = True


# --- CreateChangeSet ------------------------------------------------------------------------------


def _deployment_mode_parameter(original, response: CloudFormationResponse) -> ActionResult:
    mode = response._get_param("DeploymentMode")
    if mode is not None and mode != MODE:
        # The standard wording of a value outside an operation's enum.
        raise ValidationError(
            message=f"1 validation error detected: Value '{mode}' at 'deploymentMode' failed to "
            f"satisfy constraint: Member must satisfy enum value set: [{MODE}]"
        )
    token = _request.set(Request(mode, drift.caller_of(response)) if mode else None)
    try:
        return original(response)
    finally:
        _request.reset(token)


def _create_change_set(
    original, backend: CloudFormationBackend, stack_name, change_set_name, *arguments, **keywords
):
    change_set_id, stack_id = original(backend, stack_name, change_set_name, *arguments, **keywords)
    request = _request.get()
    if request is None:
        return change_set_id, stack_id
    change_set: ChangeSet = backend.change_sets[change_set_id]
    change_set.deployment_mode = MODE
    if change_set.change_set_type != "UPDATE":
        return change_set_id, stack_id  # a new stack has no actual state to compare
    added = plan_drift(change_set, request.caller)
    if (
        added
        and change_set.status == "FAILED"
        and (change_set.status_reason or "").startswith(NO_CHANGES)
    ):
        change_set.status = "CREATE_COMPLETE"
        change_set.execution_status = "AVAILABLE"
        change_set.status_reason = None
    return change_set_id, stack_id


def plan_drift(change_set: ChangeSet, caller: iam.Identity) -> bool:
    """Reads the stack's resources, adds their drift to the change set's changes; True if that
    added a change of its own (a resource the template alone would not have changed)."""
    stack = change_set.stack
    new_resources = (change_set.template_dict or {}).get("Resources") or {}
    changes: dict[str, Change] = {c.logical_resource_id: c for c in change_set.changes}
    checks = {
        handler.logical_id: drift.check(stack, handler, caller)
        for handler in drift.checked_resources(stack)
    }
    change_set.stack_drift_status = drift.overall(list(checks.values()))
    plan = Plan(
        template_changed={
            logical_id for logical_id, change in changes.items() if change.action == "Modify"
        }
    )
    added = False
    for resource in stack.stack_resources:
        logical_id = getattr(resource, "logical_resource_id", None)
        change = changes.get(logical_id)
        check = checks.get(logical_id)
        if check is None:
            if change is not None and change.action != "Add":
                change.resource_drift_status = "UNSUPPORTED"
            continue
        handler: ResourceHandler = resource
        if (change is not None and change.action == "Remove") or logical_id not in new_resources:
            if change is not None:
                change.resource_drift_status = check.status
            continue
        if check.status == "DELETED":
            desired = desired_properties(change_set, handler, change)
            if change is None:
                change = new_change(change_set, handler, "Add")
                added = True
            change.action = "Add"  # created again (then changed as the template says)
            change.replacement = None
            change.scope, change.details = [], []
            change.resource_drift_status = "DELETED"
            change.resource_drift_ignored_attributes = []
            change.after_context = context(handler, desired)
            change.previous_deployment_context = context(handler, handler.properties)
            plan.deleted.append(logical_id)
            continue
        if check.status != "MODIFIED":
            if change is not None:
                change.resource_drift_status = check.status
                change.resource_drift_ignored_attributes = ignored_attributes(handler)
            continue
        desired = desired_properties(change_set, handler, change)
        details = drift_details(handler, check, desired)
        reverting = any(
            detail["Target"]["AttributeChangeType"] != "SyncWithActual" for detail in details
        )
        if change is None:
            if not details:
                continue  # only tag keys added by hand: not drift this change set reverts
            change = new_change(change_set, handler, "Modify" if reverting else "SyncWithActual")
            added = True
        elif not reverting and synced_with_actual(handler, check, desired):
            change.action = "SyncWithActual"
        change.resource_drift_status = "MODIFIED"
        change.resource_drift_ignored_attributes = ignored_attributes(handler)
        change.scope = ["Properties"]
        change.details = (getattr(change, "details", None) or []) + details
        change.before_context = context(handler, actual_properties(handler, check))
        change.after_context = context(handler, desired)
        change.previous_deployment_context = context(handler, handler.properties)
        plan.drifted.append(logical_id)
        if reverting:
            plan.modified.append(logical_id)
    # By action, as the engine lists them, and in template order (the new one, then the old).
    order = list(dict.fromkeys([*new_resources, *stack.resource_map._resource_json_map]))

    def position(change: Change) -> tuple[int, int]:
        action, logical_id = change.action, change.logical_resource_id
        return (
            ACTIONS.index(action) if action in ACTIONS else len(ACTIONS),
            order.index(logical_id) if logical_id in order else len(order),
        )

    change_set.changes.sort(key=position)
    change_set._localaws_revert_drift = plan
    return added


def new_change(change_set: ChangeSet, handler: ResourceHandler, action: str) -> Change:
    change = Change(action, handler.logical_id, handler.TYPE)
    change.physical_resource_id = handler.physical_resource_id
    change.replacement = "False" if action == "Modify" else None
    change_set.changes.append(change)
    return change


def context(handler: ResourceHandler, properties: dict[str, Any] | None) -> str | None:
    """A BeforeContext, AfterContext or PreviousDeploymentContext: the properties, typed as the
    resource schema types them (as drift detection shows them); None if not known yet."""
    if properties is None:
        return None
    typed = typed_properties(handler, properties)
    return json.dumps({"Properties": typed}, separators=(",", ":"), default=str)


def actual_properties(handler: ResourceHandler, check: drift.ResourceDrift) -> dict[str, Any]:
    """The resource as it is: the properties last deployed, those compared as read."""
    found = typed_properties(handler, handler.properties)
    for name in check.expected or {}:
        if name in (check.actual or {}):
            found[name] = check.actual[name]
        else:
            found.pop(name, None)
    return found


def desired_properties(
    change_set: ChangeSet, handler: ResourceHandler, change: Change | None
) -> dict[str, Any] | None:
    """The resource's properties in the new template, resolved as far as they can be before the
    execution (Ref and GetAtt of the stack's current resources, the change set's parameters);
    None when they cannot be. Those deployed, if the template does not change the resource."""
    if change is None or change.action != "Modify":
        return handler.properties
    from .operations import scratch_map  # operations imports engine, as this module does

    body = ((change_set.template_dict or {}).get("Resources") or {}).get(handler.logical_id) or {}
    try:
        scratch = scratch_map(change_set)
        scratch._resource_json_map = {}  # never build a resource here
        for name, resource in change_set.stack.resource_map._parsed_resources.items():
            if engine.is_resource(resource):
                scratch._parsed_resources.setdefault(name, resource)
        return parsing.clean_json(copy.deepcopy(body.get("Properties") or {}), scratch)
    except Exception:  # noqa: BLE001 - depends on what the execution creates: Dynamic
        return None


def typed_properties(handler: ResourceHandler, properties: dict[str, Any]) -> dict[str, Any]:
    schema = drift.schema_of(handler.TYPE)
    nodes = schema.get("properties") or {}
    return {name: drift.typed(value, nodes.get(name), schema) for name, value in properties.items()}


def drift_details(
    handler: ResourceHandler, check: drift.ResourceDrift, desired: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One ResourceChangeDetail for each drifted property path (tag keys added by hand and
    create-only properties left out)."""
    wanted = typed_properties(handler, desired) if desired is not None else None
    details = []
    for difference in revertible(handler, check.expected or {}, check.actual or {}):
        pointer = difference["PropertyPath"]
        name = top(pointer)
        target: dict[str, Any] = {
            "Attribute": "Properties",
            "Name": name,
            "RequiresRecreation": "Never",
            "Path": "/Properties" + pointer,
            "BeforeValueFrom": "ACTUAL_STATE",
            "AfterValueFrom": "TEMPLATE",
        }
        if difference["ActualValue"] != "null":
            target["BeforeValue"] = difference["ActualValue"]
        after = MISSING if wanted is None else lookup(wanted, pointer)
        if after is not MISSING and after is not None:
            target["AfterValue"] = drift.text(after)
        live: dict[str, Any] = {"DriftDetectionTimestamp": check.timestamp}
        if difference["ExpectedValue"] != "null":
            live["PreviousValue"] = difference["ExpectedValue"]
        if difference["ActualValue"] != "null":
            live["ActualValue"] = difference["ActualValue"]
        target["Drift"] = live
        synced = wanted is not None and target.get("AfterValue") == target.get("BeforeValue")
        if synced:
            target["AttributeChangeType"] = "SyncWithActual"
        elif wanted is not None and "AfterValue" not in target:
            target["AttributeChangeType"] = "Remove"
        else:
            target["AttributeChangeType"] = {"REMOVE": "Add", "ADD": "Remove"}.get(
                difference["DifferenceType"], "Modify"
            )
        details.append(
            {
                "Target": target,
                "Evaluation": "Dynamic" if wanted is None else "Static",
                "ChangeSource": "NoModification" if synced else "DirectModification",
            }
        )
    return details


def synced_with_actual(
    handler: ResourceHandler, check: drift.ResourceDrift, desired: dict[str, Any] | None
) -> bool:
    """Whether every property the new template changes is set to what the resource already has
    (so the change only resets the drift status)."""
    if desired is None:
        return False
    schema = drift.schema_of(handler.TYPE)
    before = typed_properties(handler, handler.properties)
    after = typed_properties(handler, desired)
    actual = check.actual or {}
    changed = [
        name
        for name in set(before) | set(after)
        if not same(only(before, name), only(after, name), schema)
    ]
    return bool(changed) and all(
        name in drift.MODELLED[handler.TYPE] and same(only(after, name), only(actual, name), schema)
        for name in changed
    )


def only(properties: dict[str, Any], name: str) -> dict[str, Any]:
    return {name: properties[name]} if name in properties else {}


def same(left: dict[str, Any], right: dict[str, Any], schema: dict[str, Any]) -> bool:
    return not drift.differences(left, right, schema) and not drift.differences(right, left, schema)


def revertible(
    handler: ResourceHandler, expected: dict[str, Any], actual: dict[str, Any]
) -> list[dict[str, str]]:
    """The differences a drift-aware change set puts back: not tag keys the template does not
    set, not create-only properties."""
    schema = drift.schema_of(handler.TYPE)
    expected = dict(expected)
    if "Tags" in expected and "Tags" in actual:
        expected["Tags"] = with_other_tags(expected["Tags"], actual["Tags"])
    create_only = {
        pointer.split("/")[2]
        for pointer in schema.get("createOnlyProperties") or []
        if pointer.count("/") == 2
    } | set(type(handler).CREATE_ONLY)
    return [
        difference
        for difference in drift.differences(expected, actual, schema)
        if top(difference["PropertyPath"]) not in create_only
    ]


def with_other_tags(template: Any, actual: Any) -> Any:
    """The template's tags plus the tag keys the template does not set, as the resource has them."""
    if isinstance(template, list) and isinstance(actual, list):
        keys = {tag.get("Key") for tag in template if isinstance(tag, dict)}
        return list(template) + [
            tag for tag in actual if isinstance(tag, dict) and tag.get("Key") not in keys
        ]
    if isinstance(template, dict) and isinstance(actual, dict):
        return {**{k: v for k, v in actual.items() if k not in template}, **template}
    return template


def top(pointer: str) -> str:
    return unescape(pointer.split("/")[1])


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def lookup(value: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = unescape(token)
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return MISSING
    return value


def ignored_attributes(handler: ResourceHandler) -> list[dict[str, str]]:
    """The type's write-only properties the resource sets: not read back, so not compared."""
    schema = drift.schema_of(handler.TYPE)
    found = []
    for pointer in schema.get("writeOnlyProperties") or []:
        for path in expand(handler.properties, pointer.split("/")[2:], ""):
            found.append({"Path": "/Properties" + path, "Reason": "WRITE_ONLY_PROPERTY"})
    return found


def expand(value: Any, parts: list[str], prefix: str) -> list[str]:
    """The concrete paths (`*` expanded) of a schema pointer that `value` has."""
    if not parts:
        return [prefix]
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in expand(item, rest, f"{prefix}/{i}")]
    if isinstance(value, dict) and head in value:
        return expand(value[head], rest, f"{prefix}/{drift.escape(head)}")
    return []


# --- DescribeChangeSet ----------------------------------------------------------------------------


def _describe_change_set(original, response: CloudFormationResponse) -> ActionResult:
    result = original(response)
    change_set = result.result
    if getattr(change_set, "deployment_mode", None) != MODE or response._get_bool_param(
        "IncludePropertyValues", False
    ):
        return result
    view = copy.copy(change_set)
    view.changes = [without_values(change) for change in change_set.changes]
    return ActionResult(view)


def without_values(change: Change) -> Change:
    view = copy.copy(change)
    for name in VALUE_FIELDS:
        if getattr(view, name, None) is not None:
            setattr(view, name, None)
    details = getattr(change, "details", None)
    if details:
        view.details = [
            {
                **detail,
                "Target": {
                    key: value
                    for key, value in detail["Target"].items()
                    if key not in TARGET_VALUES
                },
            }
            for detail in details
        ]
    return view


# --- ExecuteChangeSet -----------------------------------------------------------------------------


def _execute_change_set(
    original, backend: CloudFormationBackend, change_set_name, stack_name=None
):
    change_set = backend.describe_change_set(change_set_name)
    plan: Plan | None = getattr(change_set, "_localaws_revert_drift", None)
    stack = backend.stacks.get(change_set.stack_id)
    if plan is None or stack is None or not (plan.drifted or plan.deleted):
        return original(backend, change_set_name, stack_name)
    execution = Execution(stack.stack_id, plan)
    resources = stack.resource_map._parsed_resources
    for logical_id in plan.drifted:
        handler = resources.get(logical_id)
        if not readable(handler):
            continue
        actual = read(stack, handler)
        if actual is None:
            continue
        execution.snapshot[logical_id] = actual
        expected, found = drift.compared(handler, actual)
        schema = drift.schema_of(handler.TYPE)
        execution.drifted[logical_id] = {
            top(difference["PropertyPath"])
            for difference in drift.differences(expected, found, schema)
        }
    token = _execution.set(execution)
    try:
        answer = original(backend, change_set_name, stack_name)
    finally:
        _execution.reset(token)
    if change_set.execution_status == "EXECUTE_COMPLETE":
        reset_drift_results(stack, plan)
    return answer


def _apply(original, change_set: ChangeSet) -> None:
    """Before the template's changes: resources deleted by hand created again, and drifted
    resources the template does not change put back."""
    execution = _execution.get()
    if execution is None or execution.stack_id != change_set.stack_id:
        return original(change_set)
    stack = change_set.stack
    resources = stack.resource_map._parsed_resources
    execution.phase = "applying"
    try:
        for logical_id in execution.plan.deleted:
            handler = resources.get(logical_id)
            if readable(handler) and read(stack, handler) is None:
                recreate(handler)
                execution.recreated.append(logical_id)
        for logical_id in execution.plan.modified:
            handler = resources.get(logical_id)
            if logical_id not in execution.plan.template_changed and readable(handler):
                put_back(stack, handler)
        return original(change_set)
    finally:
        execution.phase = "rolling back"  # the engine rolls back if this raised


def _after_updates(resource_map: parsing.ResourceMap, wanted: set[str]) -> None:
    execution = _execution.get()
    if execution is None or execution.stack_id != resource_map.stack_id:
        return
    backend = cloudformation_backends[resource_map._account_id][resource_map._region_name]
    stack = backend.stacks.get(resource_map.stack_id)
    if stack is None:
        return
    resources = resource_map._parsed_resources
    if execution.phase == "applying":
        # What the template's changes left drifted (the resources it changes) goes back to the
        # values just deployed.
        for logical_id in execution.plan.modified:
            handler = resources.get(logical_id)
            if logical_id in wanted and readable(handler):
                put_back(stack, handler)
    elif execution.phase == "rolling back":
        execution.phase = "done"
        restore(stack, execution, resources)


def readable(handler: Any) -> bool:
    return isinstance(handler, ResourceHandler) and handler.TYPE in drift.READERS


def read(stack: Stack, handler: ResourceHandler) -> dict[str, Any] | None:
    """The resource's actual properties in the template's shape (drift.py's reader); a role's
    policies attached by the stack's own policy resources left out; None if it is gone."""
    actual = drift.READERS[handler.TYPE](handler)
    if actual is not None and handler.TYPE == "AWS::IAM::Role":
        actual = drift.without_attachments(stack, handler, actual)
    return actual


def put_back(stack: Stack, handler: ResourceHandler) -> bool:
    """Puts the resource's drifted properties back to those last deployed; True if it did."""
    actual = read(stack, handler)
    if actual is None:
        logger.warning("localaws: %s is gone; its drift cannot be put back", handler.logical_id)
        return False
    expected, found = drift.compared(handler, actual)
    names = {top(difference["PropertyPath"]) for difference in revertible(handler, expected, found)}
    if not names:
        return False
    target = dict(handler.properties)
    if isinstance(target.get("Tags"), (list, dict)) and actual.get("Tags") is not None:
        target["Tags"] = with_other_tags(target["Tags"], actual["Tags"])
    update(handler, target, names, actual)
    return True


def update(
    handler: ResourceHandler, target: dict[str, Any], names: set[str], actual: dict[str, Any]
) -> None:
    """The handler's update from the actual values of `names` to `target` (the other properties
    as `target` has them, so the handler changes only those), as an update of the resource."""
    old = dict(target)
    for name in names:
        if actual.get(name) is not None:
            old[name] = actual[name]
        else:
            old.pop(name, None)
    handler.record_event("UPDATE_IN_PROGRESS")
    with handler.reporting("UPDATE_FAILED"):
        handler.authorize("update", target, handler.resource_name, old=old)
        handler.update(old, target)
    handler.record_event("UPDATE_COMPLETE")
    logger.info("localaws: %s: put back %s", handler.logical_id, ", ".join(sorted(names)))


def recreate(handler: ResourceHandler) -> None:
    """Creates a resource deleted by hand again, with the properties last deployed."""
    name = handler.resource_name or handler.physical_id
    handler.record_event("CREATE_IN_PROGRESS")
    with handler.reporting("CREATE_FAILED"):
        handler.authorize("create", handler.properties, name)
        handler.create(name, handler.properties)
        handler.authorize("create", handler.properties, name, created=True)
    handler.record_event("CREATE_COMPLETE")
    logger.info("localaws: %s was deleted by hand; created again", handler.logical_id)


def restore(stack: Stack, execution: Execution, resources: dict[str, Any]) -> None:
    """A failed execution's rollback: the drifted resources as they were before it."""
    for logical_id in reversed(execution.recreated):
        handler = resources.get(logical_id)
        if not readable(handler):
            continue
        handler.record_event("DELETE_IN_PROGRESS")
        with handler.reporting("DELETE_FAILED"):
            handler.authorize("delete", handler.properties, handler.resource_name)
            handler.destroy()
        handler.record_event("DELETE_COMPLETE")
    for logical_id, names in execution.drifted.items():
        handler = resources.get(logical_id)
        before = execution.snapshot.get(logical_id)
        if not names or before is None or not readable(handler):
            continue
        actual = read(stack, handler)
        if actual is None:
            continue
        schema = drift.schema_of(handler.TYPE)
        then = typed_properties(handler, {n: before[n] for n in names if before.get(n) is not None})
        now = typed_properties(handler, {n: actual[n] for n in names if actual.get(n) is not None})
        if same(then, now, schema):
            continue
        target = dict(handler.properties)
        for name in names:
            if before.get(name) is not None:
                target[name] = before[name]
            else:
                target.pop(name, None)
        update(handler, target, names, actual)


def reset_drift_results(stack: Stack, plan: Plan) -> None:
    """After the execution: the stack's drift results of the resources put back, checked again."""
    record = drift.stack_drift(stack)
    if record.last_check is None:
        return
    account = stack.account_id
    root = iam.Identity(arn=f"arn:aws:iam::{account}:root", account=account, root=True)
    resources = stack.resource_map._parsed_resources
    for logical_id in dict.fromkeys(plan.drifted + plan.deleted):
        handler = resources.get(logical_id)
        if readable(handler):
            record.resources[logical_id] = drift.check(stack, handler, root)
