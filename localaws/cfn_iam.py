"""IAM as CloudFormation applies it: the identity a stack operation acts as, passing a role to
CloudFormation, and the permission check before each of our handlers creates, updates or deletes a
resource.

- The identity. A stack operation acts as the stack's service role, `RoleARN`, given to CreateStack,
  UpdateStack, CreateChangeSet or DeleteStack; an operation without one uses the role last
  associated with the stack (moto forgot it: UpdateStack without RoleARN set it to none). Without
  any role, it acts as the caller. A role session is named `AWSCloudFormation`, as on AWS.
- Passing a role. A caller giving RoleARN must be allowed `iam:PassRole` on it with
  `iam:PassedToService` = cloudformation.amazonaws.com (else AccessDenied), and the role must exist
  and trust cloudformation.amazonaws.com (else `ValidationError: Role ... is invalid or cannot be
  assumed`), checked on the API call, as AWS does. The account's root may pass any role that
  trusts CloudFormation.
- Handlers. Before a handler creates, updates or deletes a resource, the IAM requests CloudFormation's
  handler for that type makes (handler_permissions.py) are checked against the identity's policies
  (iam.py); the first refused one fails the resource with AWS's wording (`User: ... is not authorized
  to perform: ... (Service: ..., Status Code: ..., Request ID: ...)`) and the engine rolls the stack
  back. Requests on the resource's own ARN that need its physical id are checked right after the
  resource exists; if refused, the resource is deleted again and fails the same way.

The operation's identity lives in a thread-local for the duration of the API call: moto's stack
operations run synchronously inside it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.utilities.utils import get_partition

from . import handler_permissions, iam
from .handlers import base

logger = logging.getLogger("localaws")

CLOUDFORMATION = "cloudformation.amazonaws.com"
SESSION_NAME = "AWSCloudFormation"

_local = threading.local()
_installed = False


class AccessDenied(CloudFormationError):
    code = "AccessDenied"


class HandlerAccessDenied(Exception):
    """A handler call the acting identity may not make; its message is the resource's reason."""

    verbatim = True

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Operation:
    caller: iam.Identity
    role_arn: str | None
    partition: str


def install() -> None:
    global _installed
    if _installed:
        return
    handler_permissions.load()
    base.AUTHORIZE = authorize_handler
    for name, replacement in (
        ("create_stack", _create_stack),
        ("update_stack", _update_stack),
        ("create_change_set", _create_change_set),
        ("execute_change_set", _execute_change_set),
        ("delete_stack", _delete_stack),
    ):
        _wrap(CloudFormationResponse, name, replacement)
    _installed = True


def _wrap(owner: type, name: str, replacement: Callable[..., Any]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*arguments: Any, **keywords: Any) -> Any:
        return replacement(original, *arguments, **keywords)

    setattr(owner, name, wrapper)


# --- the operation's identity ---------------------------------------------------------------------


def request_caller(response: CloudFormationResponse) -> tuple[iam.Identity, str, str]:
    account = response.current_account
    partition = get_partition(response.region)
    return iam.caller(response.get_access_key(), account, partition), account, partition


@contextlib.contextmanager
def acting(caller: iam.Identity, role_arn: str | None, partition: str):
    previous = getattr(_local, "operation", None)
    _local.operation = Operation(caller, role_arn, partition)
    try:
        yield
    finally:
        _local.operation = previous


def acting_identity() -> iam.Identity | None:
    """Who the current stack operation acts as; None outside an API call (nothing is checked)."""
    operation: Operation | None = getattr(_local, "operation", None)
    if operation is None:
        return None
    if operation.role_arn is None:
        return operation.caller
    identity = iam.role_session(operation.role_arn, SESSION_NAME, operation.partition)
    if identity is None:
        # The role went away during the operation (e.g. the stack deleting its own service role):
        # CloudFormation can no longer act as it.
        account = operation.role_arn.split(":")[4]
        name = operation.role_arn.rsplit("/", 1)[-1]
        identity = iam.Identity(
            arn=f"arn:{operation.partition}:sts::{account}:assumed-role/{name}/{SESSION_NAME}",
            account=account,
        )
    return identity


def stack_named(response: CloudFormationResponse, name_or_id: str | None):
    backend = cloudformation_backends[response.current_account][response.region]
    for stack in backend.stacks.values():
        if name_or_id in (stack.name, stack.stack_id):
            return stack
    return None


def check_role(
    caller: iam.Identity,
    role_arn: str,
    account: str,
    partition: str,
    *,
    passed: bool,
    stack_id: str | None = None,
) -> None:
    """Refuses a role the caller may not pass (when it passes one) or CloudFormation cannot assume."""
    if passed:
        denial = iam.authorize(
            caller, "iam:PassRole", role_arn, {"iam:PassedToService": CLOUDFORMATION}
        )
        if denial is not None:
            logger.info("localaws: %s", denial.message())
            raise AccessDenied(denial.message())
    role = iam.find_role(role_arn.split(":")[4] if role_arn.count(":") >= 5 else account, partition, role_arn)
    context = {"aws:SourceAccount": account}
    if stack_id:
        context["aws:SourceArn"] = stack_id
    if role is None or not iam.trusts(role, CLOUDFORMATION, context):
        raise ValidationError(message=f"Role {role_arn} is invalid or cannot be assumed")


# --- the API calls --------------------------------------------------------------------------------


def _create_stack(original, response: CloudFormationResponse):
    caller, account, partition = request_caller(response)
    role_arn = response._get_param("RoleARN")
    if role_arn:
        check_role(caller, role_arn, account, partition, passed=True)
    with acting(caller, role_arn, partition):
        return original(response)


def _update_stack(original, response: CloudFormationResponse):
    caller, account, partition = request_caller(response)
    given = response._get_param("RoleARN")
    stack = stack_named(response, response._get_param("StackName"))
    previous = stack.role_arn if stack is not None else None
    role_arn = given or previous
    if role_arn:
        check_role(
            caller, role_arn, account, partition, passed=bool(given),
            stack_id=stack.stack_id if stack else None,
        )
    try:
        with acting(caller, role_arn, partition):
            return original(response)
    finally:
        if stack is not None:
            # moto set the stack's role to the one given, none when none was: keep the previous.
            stack.role_arn = role_arn


def _create_change_set(original, response: CloudFormationResponse):
    caller, account, partition = request_caller(response)
    given = response._get_param("RoleARN")
    if given:
        stack = stack_named(response, response._get_param("StackName"))
        check_role(
            caller, given, account, partition, passed=True,
            stack_id=stack.stack_id if stack else None,
        )
    with acting(caller, given, partition):
        return original(response)


def _execute_change_set(original, response: CloudFormationResponse):
    caller, account, partition = request_caller(response)
    backend = cloudformation_backends[response.current_account][response.region]
    try:
        change_set = backend.describe_change_set(response._get_param("ChangeSetName"))
    except ValidationError:
        change_set = None
    stack = backend.stacks.get(change_set.stack_id) if change_set is not None else None
    role_arn = (change_set.role_arn if change_set else None) or (stack.role_arn if stack else None)
    if role_arn:
        check_role(
            caller, role_arn, account, partition, passed=False,
            stack_id=stack.stack_id if stack else None,
        )
    try:
        with acting(caller, role_arn, partition):
            return original(response)
    finally:
        if stack is not None and role_arn:
            stack.role_arn = role_arn


def _delete_stack(original, response: CloudFormationResponse):
    caller, account, partition = request_caller(response)
    given = response._get_param("RoleARN")
    stack = stack_named(response, response._get_param("StackName"))
    role_arn = given or (stack.role_arn if stack is not None else None)
    if role_arn and stack is not None:
        check_role(
            caller, role_arn, account, partition, passed=bool(given), stack_id=stack.stack_id
        )
    try:
        with acting(caller, role_arn, partition):
            return original(response)
    finally:
        if stack is not None and given:
            stack.role_arn = given


# --- handlers -------------------------------------------------------------------------------------


def authorize_handler(
    handler: base.ResourceHandler,
    operation: str,
    properties: dict[str, Any],
    name: str | None,
    old: dict[str, Any] | None = None,
    created: bool = False,
) -> None:
    """Raises HandlerAccessDenied if the stack's identity may not make the handler's calls.

    `operation` is create, update or delete. With `created`, the resource was just created: the
    requests that needed its physical id are checked now, and a refusal deletes it again.
    """
    identity = acting_identity()
    if identity is None or identity.root:
        return
    requests = handler_permissions.data().requests(
        handler.TYPE,
        operation,
        properties,
        name=name,
        name_property=handler.NAME_PROPERTY,
        physical_id=handler.physical_id or None,
        account=handler.account_id,
        region=handler.region_name,
        partition=get_partition(handler.region_name),
        other_properties=old,
    )
    denials = []
    for request in requests:
        if request.resource is None:
            continue  # checked once the resource exists
        denial = iam.authorize(identity, request.action, request.resource, dict(request.context))
        if denial is not None:
            denials.append(denial)
    if not denials:
        return
    for denial in denials:
        logger.warning(
            "localaws: %s %s (%s) %s: %s",
            handler.stack_id.split("/")[1] if "/" in handler.stack_id else handler.stack_id,
            handler.logical_id,
            handler.TYPE,
            operation,
            denial.message(),
        )
    if created:
        try:
            handler.destroy()
        except Exception as error:  # best effort: the resource fails either way
            logger.warning("localaws: could not remove %s again: %s", handler.logical_id, error)
    raise HandlerAccessDenied(iam.handler_reason(denials[0]))
