"""Fixes to moto's CloudFormation engine where it departs from CloudFormation in ways a deploy tool sees.

Each fix replaces or wraps one moto function (installed once, by `install()`, before the server
starts); resource events themselves are recorded by the handlers (handlers/base.py):

- Short-form YAML. `!GetAtt [Resource, Attribute]` (the list form) is read as CloudFormation reads
  it; moto turned it into a server error.
- An update in CloudFormation's order, with conditions (`_update_resources` replaces moto's
  ResourceMap.update). moto deleted removed resources first (a Stage still pointing at a renamed
  Deployment made that fail) and ignored `Condition` after creation. Here new resources are created,
  changed ones updated, and removed ones (or those whose condition became false) deleted last,
  dependents first, in an UPDATE_COMPLETE_CLEANUP_IN_PROGRESS phase; a resource whose condition is
  false is left alone. Change sets list the same changes, and ListStackResources only what exists.
- Dependents follow a change. moto picks the resources an update modifies by comparing each
  resource's *template text* (and `Ref`s to changed parameters); CloudFormation compares *resolved*
  properties. So in moto a resource that refers to a replaced one (an endpoint config naming a model
  through `!GetAtt`) or to a parameter through `!Sub` keeps the old value. `settle` re-resolves every
  resource our handlers own after the updates and updates (or replaces) the ones that changed.
- A failed resource fails the stack, not the API call. moto lets a resource's error escape from
  CreateStack/UpdateStack/ExecuteChangeSet/DeleteStack and leaves the stack IN_PROGRESS (or, on
  delete, forgets it). Here, when a handler reported a *_FAILED event, the stack rolls back and ends
  in ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE (or *_FAILED), or DELETE_FAILED, as on AWS.
- "No updates are to be performed." UpdateStack with the same template and parameters fails with
  this ValidationError, as on AWS (moto only checked when parameters were passed, by comparing text);
  CreateChangeSet with no changes succeeds and the change set is FAILED with AWS's reason (moto made
  the CreateChangeSet call fail when parameters were passed).
- Change sets. CreateChangeSet without ChangeSetType means UPDATE, as on AWS (moto took CREATE and
  started a second stack of the same name); a CREATE change set for an existing stack is refused.
  A change set also lists resources whose parameters changed, with their physical id and, for our
  types, whether the change replaces them; resources whose condition is false are not listed.
  After ExecuteChangeSet, moto left the stack's outputs (and exports) as they were before (none,
  for a stack created by a change set); here they are recomputed.
- Change sets belong to their stack. moto's ListChangeSets ignored StackName (every stack listed
  every stack's change sets) and kept every change set forever. Here it lists the given stack's
  (by name or id), with AWS's summary fields; executing a change set deletes the stack's other
  change sets (the executed one stays, EXECUTE_COMPLETE or EXECUTE_FAILED), and deleting a stack
  deletes its change sets, as on AWS.
- Termination protection. moto has no UpdateTerminationProtection (HTTP 500). Here it sets the
  stack's EnableTerminationProtection, and DeleteStack refuses a protected stack with AWS's
  ValidationError.

Template-level errors (a missing parameter, an unknown GetAtt attribute) still fail the API call
synchronously, which is also what CloudFormation does.

Not a departure, a cost: moto parses every template (a stack's, each change set's) with PyYAML's
pure-Python `yaml.Loader`, most of the emulator's time at a few hundred stacks. `parse_template`
reads it with `yaml.CLoader` where PyYAML has LibYAML: the C scanner and parser, with the same
resolver and constructors (so the same values), else as before.
"""

from __future__ import annotations

import collections
import copy
import json
import pickle
import re
import threading
from typing import Any, Callable

import yaml
from moto.cloudformation import models as cloudformation_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cloudformation_responses
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import (
    Change,
    ChangeSet,
    CloudFormationBackend,
    Event,
    Stack,
    cloudformation_backends,
)
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult

from .handlers.base import STACKS_BEING_DELETED, ResourceHandler, logger, reason_of
from .patching import wrap as _wrap

_installed = False
#: Called as `hook(resource_map, wanted)` by an update (a change set's execution and its rollback
#: too) after its creates, updates and `settle`, before its cleanup phase; localaws.revert_drift
#: puts drifted resources back (or, in a rollback, restores their drift) here.
AFTER_UPDATES: list[Callable[[parsing.ResourceMap, set[str]], None]] = []


def install() -> None:
    """Applies every fix; safe to call more than once."""
    global _installed
    if _installed:
        return
    _wrap(parsing.ResourceMap, "update", _update_resources)
    parsing.ResourceMap.delete = _delete_resources
    _wrap(Stack, "create_resources", _create_resources)
    _wrap(Stack, "update", _update_stack_resources)
    _wrap(CloudFormationBackend, "update_stack", _update_stack)
    _wrap(CloudFormationBackend, "execute_change_set", _execute_change_set)
    _wrap(CloudFormationBackend, "delete_stack", _delete_stack)
    _wrap(CloudFormationBackend, "create_change_set", _create_change_set)
    _wrap(CloudFormationResponse, "create_change_set", _default_change_set_type)
    _wrap(ChangeSet, "diff", _change_set_diff)
    CloudFormationResponse.list_change_sets = _list_change_sets
    CloudFormationResponse.update_termination_protection = _update_termination_protection
    Stack.stack_resources = property(stack_resources)
    for module in (cloudformation_models, cloudformation_responses):
        module.yaml_tag_constructor = yaml_tag_constructor
    yaml.add_multi_constructor("", yaml_tag_constructor, Loader=TEMPLATE_LOADER)
    Stack.parse_template = staticmethod(parse_template)
    ChangeSet._parse_template = _change_set_parse_template
    # The no-change check moves into _update_stack (UpdateStack) and moto's backend (CreateChangeSet).
    CloudFormationResponse._validate_different_update = lambda self, *arguments: None
    _installed = True


#: LibYAML's loader where PyYAML was built with it: `yaml.Loader`'s resolver and constructors.
TEMPLATE_LOADER: Any = getattr(yaml, "CLoader", yaml.Loader)


#: Templates parsed lately, by their text, pickled: a template is parsed when its change set is
#: created, again when it is executed, and a plan's preview change set parses it once more;
#: unpickling a copy takes a thirtieth of parsing the YAML again.
_PARSED: "collections.OrderedDict[str, bytes]" = collections.OrderedDict()
_PARSED_LOCK = threading.Lock()
PARSED_KEPT = 512


def parse_template(template: str) -> dict[str, Any]:
    """A template as moto's `Stack.parse_template` reads it (YAML, else JSON), faster. Each call
    returns its own copy: moto changes what it is given."""
    with _PARSED_LOCK:
        pickled = _PARSED.get(template)
        if pickled is not None:
            _PARSED.move_to_end(template)
    if pickled is not None:
        return pickle.loads(pickled)
    try:
        parsed = yaml.load(template, Loader=TEMPLATE_LOADER)
    except (yaml.parser.ParserError, yaml.scanner.ScannerError):
        parsed = json.loads(template)
    pickled = pickle.dumps(parsed, pickle.HIGHEST_PROTOCOL)
    with _PARSED_LOCK:
        _PARSED[template] = pickled
        while len(_PARSED) > PARSED_KEPT:
            _PARSED.popitem(last=False)
    return parsed


def _change_set_parse_template(change_set: ChangeSet) -> None:
    change_set.template_dict = parse_template(change_set.template)


def yaml_tag_constructor(loader: yaml.Loader, tag: str, node: yaml.Node) -> dict[str, Any]:
    """Short-form intrinsics (`!Ref`, `!GetAtt`, `!Sub` ...) as their long form, like CloudFormation.

    moto's version returns raw YAML nodes for `!GetAtt [Resource, Attribute]` (so the stack fails
    with a server error) and splits `!GetAtt Resource.Outputs.Name` at every dot.
    """
    key = "Ref" if tag == "!Ref" else f"Fn::{tag[1:]}"
    if isinstance(node, yaml.SequenceNode):
        value: Any = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif tag == "!GetAtt":
        value = node.value.split(".", 1)
    else:
        value = node.value
    return {key: value}


# --- updates: CloudFormation's order, conditions, dependents follow a change ---------------------


def _update_resources(
    original, resource_map: parsing.ResourceMap, template, parameters=None
) -> None:
    """Replaces moto's ResourceMap.update (which also applies a CREATE change set); `original` is
    not called.

    moto deleted removed resources *first*, so a Stage still pointing at a Deployment that the update
    replaces by one with a new logical id failed the update (StageStillActive). And it ignored
    `Condition`: it updated resources whose condition is false (failing on their `Fn::GetAtt` to one
    another) and never created or deleted a resource whose condition changed. Here, as on AWS:
    resources present in the new template (no condition, or a true one) are created and updated;
    then, in the cleanup phase, those no longer present are deleted, dependents first.
    """
    old = resource_map._resource_json_map
    existing = {name for name in old if is_resource(resource_map._parsed_resources.get(name))}
    # moto's rule for what to update: its template text, or a parameter it refers to, changed.
    modified = resource_map.build_resource_diff(template, parameters)["Modify"]
    resource_map._template = template
    if parameters:
        resource_map.input_parameters = parameters
    resource_map.load_mapping()
    resource_map.load_parameters()
    resource_map.load_conditions()
    resource_map._resource_json_map = template["Resources"]
    wanted = present(template["Resources"], resource_map.lazy_condition_map)
    for name in resource_map._ResourceMap__get_resources_in_dependency_order():
        if name in wanted and name not in existing:
            _ = resource_map[name]  # the lazy map creates it (and first what it refers to)
    update_all(resource_map, [name for name in modified if name in wanted and name in existing])
    settle(resource_map, wanted)
    for hook in AFTER_UPDATES:
        hook(resource_map, wanted)
    clean_up(resource_map, old, [name for name in old if name in existing and name not in wanted])


def stack_resources(stack: Stack) -> list[Any]:
    """What ListStackResources and DescribeStackResources list: the resources that exist. (moto went
    through its lazy map, listing an empty entry for each resource whose condition is false.)"""
    resource_map = stack.resource_map
    resources = map(resource_map._parsed_resources.get, resource_map._resource_json_map)
    return [resource for resource in resources if is_resource(resource)]


def present(resources: dict[str, Any], conditions: dict[str, Any]) -> set[str]:
    """The resources a template has: those without a `Condition`, or whose condition is true."""
    return {
        name
        for name, body in resources.items()
        if not body.get("Condition") or conditions[body["Condition"]]
    }


def is_resource(value: Any) -> bool:
    # The lazy map also holds parameters, pseudo parameters and mappings, by name.
    return isinstance(value, CloudFormationModel)


def update_all(resource_map: parsing.ResourceMap, names: list[str]) -> None:
    """moto's update loop: an update that fails is tried again after the others (it may wait on
    one of them), in up to four passes."""
    error: Exception | None = None
    for _ in range(parsing.MAX_UPDATE_ATTEMPTS - 1):
        for name in list(names):
            try:
                updated = update_one(resource_map, name)
            except Exception as failure:
                error = failure
                continue
            names.remove(name)
            if updated is not None:
                resource_map._parsed_resources[name] = updated
        if not names:
            return
    assert error is not None
    raise error


def update_one(resource_map: parsing.ResourceMap, name: str) -> Any:
    return parsing.parse_and_update_resource(
        name,
        resource_map._resource_json_map[name],
        resource_map,
        account_id=resource_map._account_id,
        region_name=resource_map._region_name,
    )


def settle(resource_map: parsing.ResourceMap, wanted: set[str]) -> None:
    """Updates each of our resources whose resolved properties differ from those last applied.

    Repeats until nothing changes: each pass moves a change one step down a chain of references.
    """
    resources = resource_map._parsed_resources
    for _ in range(len(resource_map._resource_json_map) + 1):
        stale = [
            logical_id
            for logical_id, resource in list(resources.items())
            if isinstance(resource, ResourceHandler)
            and logical_id in wanted
            and resolved_properties(resource_map, logical_id) != resource.properties
        ]
        if not stale:
            return
        for logical_id in stale:
            resources[logical_id] = update_one(resource_map, logical_id)
    raise RuntimeError("localaws: the stack update did not settle (a reference cycle?)")


def resolved_properties(resource_map: parsing.ResourceMap, logical_id: str) -> Any:
    resource_json = resource_map._resource_json_map[logical_id]
    return parsing.clean_json(copy.deepcopy(resource_json.get("Properties") or {}), resource_map)


def clean_up(resource_map: parsing.ResourceMap, old: dict[str, Any], names: list[str]) -> None:
    """Deletes the resources an update dropped, after everything else, dependents first.

    As on AWS, a resource that fails to delete does not fail the update: it leaves the stack, and
    its DELETE_FAILED event says why.
    """
    if not names:
        return
    backend = cloudformation_backends[resource_map._account_id][resource_map._region_name]
    stack = backend.stacks.get(resource_map.stack_id)
    if stack is not None:
        stack_events = [
            event.resource_status
            for event in stack.events
            if event.resource_type == "AWS::CloudFormation::Stack"
        ]
        rolling_back = stack_events[-1:] == ["UPDATE_ROLLBACK_IN_PROGRESS"]
        stack._add_stack_event(
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            if rolling_back
            else "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        )
    for name in dependents_first(names, old):
        resource = resource_map._parsed_resources.pop(name)
        try:
            resource_map._delete_resource(resource, old[name])
        except Exception as error:
            logger.warning("localaws: could not delete %s during cleanup: %s", name, error)


def _delete_resources(resource_map: parsing.ResourceMap) -> None:
    """Deletes a stack's resources (a delete, or a failed create's rollback) dependents first, as
    CloudFormation does: a Stage before the Deployment it points at.

    moto walks a set, whose order changes from one process to the next (string hashing), and
    retries what failed; a handler had meanwhile recorded a DELETE_FAILED that CloudFormation
    would never have (`StageStillActive` on the Deployment), so the same template rolled back
    cleanly in one run and with a failed resource in the next.
    """
    resources = resource_map._resource_json_map
    remaining = [
        name
        for name in dependents_first(list(resources), resources)
        if resources[name].get("DeletionPolicy") != "Retain"
    ]
    last_error: Exception | None = None
    previous = len(remaining) + 1
    # As moto does: passes while the count goes down, for what no reference says.
    while remaining and len(remaining) < previous:
        previous = len(remaining)
        for name in list(remaining):
            parsed = resource_map._parsed_resources.get(name)
            try:
                if parsed is not None and not isinstance(parsed, str):
                    resource_map._delete_resource(parsed, resources[parsed.logical_resource_id])
                    resource_map._parsed_resources.pop(parsed.logical_resource_id)
            except Exception as error:  # noqa: BLE001 - retried in the next pass, as moto does
                last_error = error
            else:
                remaining.remove(name)
    if remaining and last_error is not None:
        raise last_error


def dependents_first(names: list[str], resources: dict[str, Any]) -> list[str]:
    """`names` ordered so that no resource comes after one it refers to (or `DependsOn`)."""
    needs = {}
    for name in names:
        depends_on = resources[name].get("DependsOn") or []
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        needs[name] = (references(resources[name]) | set(depends_on)) & set(names)
    ordered: list[str] = []
    while needs:
        needed = set().union(*needs.values())
        free = [name for name in needs if name not in needed] or list(needs)  # or a cycle
        for name in free:
            ordered.append(name)
            del needs[name]
    return ordered


# --- a failed resource fails the stack -------------------------------------------------------------


def failed_resource(stack: Stack, since: int) -> Event | None:
    """The resource event a handler recorded for a failure after `since`, if any."""
    for event in stack.events[since:]:
        if event.resource_status.endswith("_FAILED") and event.logical_resource_id != stack.name:
            return event
    return None


def _create_resources(original, stack: Stack) -> None:
    # moto resolves exported outputs (creating the resources they name) before it records the stack's
    # CREATE_IN_PROGRESS; put that event first, where CloudFormation has it.
    stack.events.sort(
        key=lambda event: (
            event.logical_resource_id != stack.name or event.resource_status != "CREATE_IN_PROGRESS"
        )
    )
    mark = len(stack.events)
    try:
        original(stack)
    except Exception:
        failure = failed_resource(stack, mark)
        if failure is None:
            raise
        roll_back_creation(stack, failure)


def roll_back_creation(stack: Stack, failure: Event) -> None:
    stack._add_stack_event(
        "ROLLBACK_IN_PROGRESS",
        f"The following resource(s) failed to create: [{failure.logical_resource_id}]. "
        "Rollback requested by user.",
    )
    try:
        stack.resource_map.delete()
        stack.status = "ROLLBACK_COMPLETE"
    except Exception:
        stack.status = "ROLLBACK_FAILED"
    stack._add_stack_event(stack.status)
    remove_exports(stack)


def _update_stack_resources(
    original, stack: Stack, template, role_arn=None, parameters=None, tags=None
):
    mark = len(stack.events)
    previous_template, previous_parameters = stack.template, dict(stack.parameters)
    try:
        original(stack, template, role_arn, parameters, tags)
    except Exception:
        failure = failed_resource(stack, mark)
        if failure is None:
            raise
        roll_back_update(stack, previous_template, previous_parameters, failure)
        return
    refresh_exports(stack)


def roll_back_update(
    stack: Stack, template: Any, parameters: dict[str, Any], failure: Event
) -> None:
    stack._add_stack_event(
        "UPDATE_ROLLBACK_IN_PROGRESS",
        f"The following resource(s) failed to update: [{failure.logical_resource_id}].",
    )
    stack.template = template
    stack._parse_template()
    stack.parameters = parameters
    try:
        stack.resource_map.update(stack.template_dict, parameters)
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
    except Exception:
        stack.status = "UPDATE_ROLLBACK_FAILED"
    stack.output_map = stack._create_output_map()
    stack._add_stack_event(stack.status)


def _delete_stack(original, backend: CloudFormationBackend, name_or_stack_id: str) -> None:
    stacks = [
        stack
        for stack in backend.stacks.values()
        if name_or_stack_id in (stack.stack_id, stack.name)
    ]
    if any(is_protected(stack) for stack in stacks):
        # AWS names the stack as the request did (its name, or its ARN).
        raise ValidationError(
            name_or_stack_id,
            message=f"Stack [{name_or_stack_id}] cannot be deleted while TerminationProtection "
            "is enabled",
        )
    marks = {stack.stack_id: len(stack.events) for stack in stacks}
    STACKS_BEING_DELETED.update({stack.stack_id: stack for stack in stacks})
    try:
        original(backend, name_or_stack_id)
    except Exception as error:
        failed = [stack for stack in stacks if failed_resource(stack, marks[stack.stack_id])]
        if not failed:
            raise
        for stack in failed:
            # moto took the stack out of its list before deleting its resources; put it back.
            backend.stacks[stack.stack_id] = stack
            backend.deleted_stacks.pop(stack.stack_id, None)
            stack.status = "DELETE_FAILED"
            stack._add_stack_event("DELETE_FAILED", reason_of(error))
    finally:
        for stack in stacks:
            STACKS_BEING_DELETED.pop(stack.stack_id, None)
    # A deleted stack's change sets go with it.
    gone = {stack.stack_id for stack in stacks if stack.stack_id not in backend.stacks}
    drop_change_sets(backend, gone)


# --- no updates are to be performed ----------------------------------------------------------------


def _update_stack(
    original, backend: CloudFormationBackend, name, template, role_arn, parameters, tags
):
    stack = backend.get_stack(name)
    resolved = backend._resolve_update_parameters(instance=stack, incoming_params=parameters)
    if (
        stack.has_template(template)
        and resolved == stack.parameters
        and (tags is None or tags == stack.tags)
    ):
        raise ValidationError(stack.name, message="No updates are to be performed.")
    return original(backend, name, template, role_arn, parameters, tags)


# --- change sets: the default type, and outputs --------------------------------------------------


def _default_change_set_type(original, response: CloudFormationResponse):
    if response._get_param("ChangeSetType") is None:
        # CloudFormation's default is UPDATE; moto's is CREATE, which starts a second, empty stack of
        # the same name (its change set then lists every resource as Add).
        response.params["ChangeSetType"] = "UPDATE"
    return original(response)


def _create_change_set(
    original, backend: CloudFormationBackend, stack_name, change_set_name, *arguments, **keywords
):
    change_set_type = keywords.get("change_set_type", arguments[4] if len(arguments) > 4 else None)
    if change_set_type == "CREATE" and any(
        stack.name == stack_name and stack.status != "REVIEW_IN_PROGRESS"
        for stack in backend.stacks.values()
    ):
        raise ValidationError(
            stack_name,
            message=f"Stack [{stack_name}] already exists and cannot be created again with the "
            f"changeSet [{change_set_name}].",
        )
    return original(backend, stack_name, change_set_name, *arguments, **keywords)


def _execute_change_set(original, backend: CloudFormationBackend, change_set_name, stack_name=None):
    change_set = backend.describe_change_set(change_set_name)
    stack = backend.stacks[change_set.stack_id]
    # "When you execute a change set, CloudFormation deletes all other change sets associated
    # with the stack because they aren't valid for the updated stack." (moto kept them all.)
    drop_change_sets(backend, {stack.stack_id}, keep=change_set)
    mark = len(stack.events)
    previous_template, previous_parameters = stack.template, dict(stack.parameters)
    try:
        original(backend, change_set_name, stack_name)
    except Exception:
        failure = failed_resource(stack, mark)
        if failure is None:
            raise
        change_set.execution_status = "EXECUTE_FAILED"
        if change_set.change_set_type == "CREATE":
            stack.template_dict = change_set.template_dict
            roll_back_creation(stack, failure)
        else:
            roll_back_update(stack, previous_template, previous_parameters, failure)
        return
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(change_set.parameters or {})
    stack.output_map = stack._create_output_map()
    refresh_exports(stack)


def _change_set_diff(original, change_set: ChangeSet) -> list[Change]:
    """Replaces moto's diff (`original` is not called): what ExecuteChangeSet will do, with
    Replacement and physical ids.

    moto compared template text only: it listed resources whose condition is false (as Add or
    Modify) and missed those whose condition changes; and it listed a resource as Modify only when
    its text changed, where CloudFormation also lists it when a parameter it uses (through Ref or
    Fn::Sub) changed. Resources that only refer to a changed resource are not listed (CloudFormation
    lists them when it knows the referenced value changes).
    """
    resource_map = change_set.stack.resource_map
    old_resources = resource_map._resource_json_map
    new_resources = (change_set.template_dict or {}).get("Resources") or {}
    parameters = change_set.parameters or {}
    changed_parameters = {
        name
        for name, value in parameters.items()
        if resource_map.input_parameters.get(name) != value
    }
    was = present(old_resources, resource_map.lazy_condition_map)
    will_be = present(new_resources, conditions_of(change_set))
    changes = []
    for logical_id, resource_json in new_resources.items():
        if logical_id not in will_be:
            continue
        if logical_id not in was:
            changes.append(Change("Add", logical_id, resource_json["Type"]))
        elif resource_json != old_resources[logical_id] or (
            references(resource_json.get("Properties")) & changed_parameters
        ):
            changes.append(Change("Modify", logical_id, resource_json["Type"]))
    for logical_id, resource_json in old_resources.items():
        if logical_id in was and logical_id not in will_be:
            changes.append(Change("Remove", logical_id, resource_json["Type"]))
    changes.sort(key=lambda change: ("Add", "Modify", "Remove").index(change.action))
    for change in changes:
        current = resource_map._parsed_resources.get(change.logical_resource_id)
        if change.action in ("Modify", "Remove") and hasattr(current, "physical_resource_id"):
            change.physical_resource_id = current.physical_resource_id
        if change.action == "Modify" and isinstance(current, ResourceHandler):
            old = (old_resources[change.logical_resource_id].get("Properties")) or {}
            new = (new_resources[change.logical_resource_id].get("Properties")) or {}
            replaced = any(
                old.get(key) != new.get(key) or references(new.get(key)) & changed_parameters
                for key in type(current).CREATE_ONLY
            )
            change.replacement = "True" if replaced else "False"
    return changes


def conditions_of(change_set: ChangeSet) -> dict[str, Any]:
    """The conditions of a change set's template, evaluated with the parameters its execution will
    use (a template error, such as a missing parameter, fails CreateChangeSet, as on AWS)."""
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
    return scratch.lazy_condition_map


def references(value: Any) -> set[str]:
    """Names a template fragment refers to: `Ref` and `Fn::GetAtt` targets, `${Name}` in Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add((item[0] if isinstance(item, list) else str(item)).split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    found.update(
                        name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)
                    )
                found |= references(item)
            else:
                found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def refresh_exports(stack: Stack) -> None:
    remove_exports(stack)
    backend = cloudformation_backends[stack.account_id][stack.region_name]
    backend._validate_export_uniqueness(stack)
    for export in stack.exports:
        backend.exports[export.name] = export


def remove_exports(stack: Stack) -> None:
    backend = cloudformation_backends[stack.account_id][stack.region_name]
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]


# --- change sets belong to their stack; termination protection -----------------------------------


def drop_change_sets(
    backend: CloudFormationBackend, stack_ids: set[str], keep: ChangeSet | None = None
) -> None:
    """Deletes the change sets of the given stacks, except `keep`."""
    for change_set_id, change_set in list(backend.change_sets.items()):
        if change_set.stack_id in stack_ids and change_set is not keep:
            del backend.change_sets[change_set_id]


def stack_for_request(backend: CloudFormationBackend, name_or_id: str) -> Stack:
    """The stack a request names: a live stack by name, or any stack (a deleted one too) by id.
    Else AWS's ValidationError "Stack [X] does not exist"."""
    found = backend.stacks.get(name_or_id) or backend.deleted_stacks.get(name_or_id)
    if found is None:
        found = next(
            (
                stack
                for stack in backend.stacks.values()
                if stack.name == name_or_id and stack.status != "DELETE_COMPLETE"
            ),
            None,
        )
    if found is None:
        raise ValidationError(name_or_id, message=f"Stack [{name_or_id}] does not exist")
    return found


def _list_change_sets(response: CloudFormationResponse) -> ActionResult:
    """Replaces moto's ListChangeSets, which listed every stack's change sets whatever StackName
    said. AWS lists the named stack's (a deleted stack has none), oldest first, as
    ChangeSetSummary structures."""
    backend = response.cloudformation_backend
    stack = stack_for_request(backend, response._get_param("StackName"))
    summaries = []
    for change_set in backend.change_sets.values():
        if change_set.stack_id != stack.stack_id:
            continue
        summary = {
            "StackId": change_set.stack_id,
            "StackName": change_set.stack_name,
            "ChangeSetId": change_set.change_set_id,
            "ChangeSetName": change_set.change_set_name,
            "ExecutionStatus": change_set.execution_status,
            "Status": change_set.status,
            "CreationTime": change_set.creation_time,
            "IncludeNestedStacks": False,
        }
        if change_set.status_reason:
            summary["StatusReason"] = change_set.status_reason
        if change_set.description:
            summary["Description"] = change_set.description
        summaries.append(summary)
    return ActionResult({"Summaries": summaries})


def _update_termination_protection(response: CloudFormationResponse) -> ActionResult:
    """UpdateTerminationProtection, which moto lacks (HTTP 500: "not been implemented")."""
    backend = response.cloudformation_backend
    name = response._get_param("StackName")
    stack = stack_for_request(backend, name)
    if stack.status == "DELETE_COMPLETE":
        raise ValidationError(name, message=f"Stack [{name}] does not exist")
    stack.enable_termination_protection = response._get_bool_param(
        "EnableTerminationProtection", False
    )
    return ActionResult({"StackId": stack.stack_id})


def is_protected(stack: Stack) -> bool:
    value = stack.enable_termination_protection
    if isinstance(value, str):  # in case a request's text ("false") reaches it unparsed
        return value.lower() == "true"
    return bool(value)
