"""The shared life cycle of our CloudFormation handlers: create, update or replace, delete, Ref, GetAtt.

moto's CloudFormation engine finds resource types through `CloudFormationModel.__subclasses__()`,
which lists *direct* subclasses only. So every handler is declared as
`class X(ResourceHandler, CloudFormationModel)`: `ResourceHandler` is a plain mixin carrying the
behaviour, and `CloudFormationModel` stays a direct base so moto sees the class.

A handler instance is the stack's record of one resource: its physical id (what `Ref` returns), the
properties last applied (to tell an in-place update from a replacement, as CloudFormation does with
the type's create-only properties) and its DeletionPolicy/UpdateReplacePolicy. The resource itself
lives in moto's service backend, where the service's own API (describe_*, get_*, list_*) sees it.
Each step also records a resource event on the stack (CREATE_IN_PROGRESS ... DELETE_COMPLETE).
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime
from typing import Any, Callable, ClassVar

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.cloudformation.models import Event, cloudformation_backends

logger = logging.getLogger("localaws")

# moto takes a stack out of its list before deleting its resources; engine.py keeps it findable here
# so that the resources' deletion events still reach it.
STACKS_BEING_DELETED: dict[str, Any] = {}

# Set by localaws.cfn_iam: checks that the stack's identity may make the calls CloudFormation's
# handler for the type makes, and raises (failing the resource) if not. None: nothing is checked.
AUTHORIZE: Callable[..., None] | None = None


class ResourceHandler:
    """Mixin with the generic behaviour; subclasses set the class constants and implement the hooks."""

    #: The CloudFormation type, e.g. "AWS::SageMaker::Pipeline".
    TYPE: ClassVar[str]
    #: The property that names the resource, if the type has one; unset, CloudFormation generates a name.
    NAME_PROPERTY: ClassVar[str | None] = None
    #: Longest name the service accepts; generated names are shortened to fit, as CloudFormation does.
    NAME_MAX_LENGTH: ClassVar[int] = 255
    #: Properties whose change replaces the resource (the schema's createOnlyProperties, top level).
    CREATE_ONLY: ClassVar[tuple[str, ...]] = ()
    #: Names `Fn::GetAtt` accepts for this type.
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, account_id: str, region_name: str, logical_id: str, stack_id: str):
        self.account_id = account_id
        self.region_name = region_name
        self.logical_id = logical_id
        self.stack_id = stack_id
        self.properties: dict[str, Any] = {}
        self.deletion_policy = "Delete"
        self.update_replace_policy = "Delete"
        self.physical_id = ""
        #: The name the resource was created with (given or generated).
        self.resource_name: str | None = None

    # --- hooks each handler implements -------------------------------------------------------------

    def create(self, name: str, properties: dict[str, Any]) -> None:
        """Creates the resource in moto's backend and sets `self.physical_id`."""
        raise NotImplementedError

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Applies changed, non-create-only properties in place (old and new are whole property maps)."""
        raise NotImplementedError

    def destroy(self) -> None:
        """Deletes the resource from moto's backend; a resource already gone is not an error."""
        raise NotImplementedError

    def attribute(self, name: str) -> Any:
        """The value of one of `ATTRIBUTES`."""
        raise UnformattedGetAttTemplateException()

    # --- what moto's engine calls ------------------------------------------------------------------

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY or ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        value = self.attribute(attribute_name)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> "ResourceHandler":
        properties = cloudformation_json.get("Properties") or {}
        handler = cls(
            account_id, region_name, kwargs.get("LogicalId", ""), kwargs.get("StackId", "")
        )
        handler._remember(cloudformation_json, properties)
        name = properties.get(cls.NAME_PROPERTY) if cls.NAME_PROPERTY else None
        # A replacement is reported as an update of the logical resource, as CloudFormation does.
        action = "UPDATE" if kwargs.get("Replacing") else "CREATE"
        handler.record_event(
            f"{action}_IN_PROGRESS",
            "Requested update requires the creation of a new physical resource; hence creating one."
            if kwargs.get("Replacing")
            else None,
        )
        with handler.reporting(f"{action}_FAILED"):
            name = name or cls._fit_name(resource_name)
            handler.authorize("create", properties, name)
            handler.resource_name = name
            handler.create(name, properties)
            handler.authorize("create", properties, name, created=True)
        handler.record_event(f"{action}_COMPLETE")
        return handler

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: "ResourceHandler",
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> "ResourceHandler":
        new = cloudformation_json.get("Properties") or {}
        old = original_resource.properties
        replaced_by = [key for key in cls.CREATE_ONLY if old.get(key) != new.get(key)]
        if not replaced_by:
            original_resource.record_event("UPDATE_IN_PROGRESS")
            with original_resource.reporting("UPDATE_FAILED"):
                if new != old:
                    original_resource.authorize(
                        "update", new, original_resource.resource_name, old=old
                    )
                    original_resource.update(old, new)
            original_resource._remember(cloudformation_json, new)
            original_resource.record_event("UPDATE_COMPLETE")
            return original_resource
        if (
            cls.NAME_PROPERTY
            and new.get(cls.NAME_PROPERTY)
            and (new.get(cls.NAME_PROPERTY) == old.get(cls.NAME_PROPERTY))
        ):
            original_resource.record_event("UPDATE_IN_PROGRESS")
            with original_resource.reporting("UPDATE_FAILED"):
                # Real CloudFormation refuses this too: the replacement would need the same name.
                raise ValidationError(
                    message=(
                        "CloudFormation cannot update a stack when a custom-named resource requires "
                        f"replacing. Rename {new[cls.NAME_PROPERTY]} and update the stack again."
                    )
                )
        # As CloudFormation does: create the replacement first, then remove the old resource.
        replacement = cls.create_from_cloudformation_json(
            new_resource_name,
            cloudformation_json,
            account_id,
            region_name,
            LogicalId=original_resource.logical_id,
            StackId=original_resource.stack_id,
            Replacing=True,
        )
        if original_resource.update_replace_policy != "Retain":
            original_resource.record_event("DELETE_IN_PROGRESS")
            with original_resource.reporting("DELETE_FAILED"):
                original_resource.authorize(
                    "delete", original_resource.properties, original_resource.resource_name
                )
                original_resource.destroy()
            original_resource.record_event("DELETE_COMPLETE")
        logger.info(
            "replaced %s (%s): %s -> %s because %s changed",
            original_resource.logical_id,
            cls.TYPE,
            original_resource.physical_id,
            replacement.physical_id,
            ", ".join(replaced_by),
        )
        return replacement

    def delete(self, account_id: str, region_name: str) -> None:
        # moto skips Retain on stack deletion but not when an update removes the resource; we do both.
        if self.deletion_policy == "Retain":
            self.record_event("DELETE_SKIPPED")
            return
        self.record_event("DELETE_IN_PROGRESS")
        with self.reporting("DELETE_FAILED"):
            self.authorize("delete", self.properties, self.resource_name)
            self.destroy()
        self.record_event("DELETE_COMPLETE")

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        # moto falls back to this only when `delete` raised TypeError/AttributeError: a bug of ours.
        raise RuntimeError(
            f"localaws: deleting {cls.TYPE} {resource_name} failed inside its handler"
        )

    # --- permissions --------------------------------------------------------------------------------

    def authorize(
        self,
        operation: str,
        properties: dict[str, Any],
        name: str | None,
        old: dict[str, Any] | None = None,
        created: bool = False,
    ) -> None:
        """Fails (raises) if the stack's identity may not make the calls CloudFormation's handler
        makes to `operation` (create, update, delete) this resource."""
        if AUTHORIZE is not None:
            AUTHORIZE(self, operation, properties, name, old, created)

    # --- events ------------------------------------------------------------------------------------

    def record_event(self, status: str, reason: str | None = None) -> None:
        """Adds a resource event to the stack, as CloudFormation does (moto records stack events only)."""
        backend = cloudformation_backends[self.account_id][self.region_name]
        stack = backend.stacks.get(self.stack_id) or STACKS_BEING_DELETED.get(self.stack_id)
        if stack is None:
            return
        stack.events.append(
            Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id=self.logical_id,
                physical_resource_id=self.physical_id,
                resource_type=self.TYPE,
                resource_status=status,
                resource_status_reason=reason,
                resource_properties=None,
            )
        )

    @contextlib.contextmanager
    def reporting(self, failed_status: str):
        """Records a failure event with the error's message, then lets the error propagate."""
        try:
            yield
        except Exception as error:
            self.record_event(failed_status, reason_of(error))
            raise

    # --- helpers -----------------------------------------------------------------------------------

    def _remember(self, cloudformation_json: dict[str, Any], properties: dict[str, Any]) -> None:
        self.properties = properties
        self.deletion_policy = cloudformation_json.get("DeletionPolicy", "Delete")
        self.update_replace_policy = cloudformation_json.get("UpdateReplacePolicy", "Delete")

    @classmethod
    def _fit_name(cls, generated: str) -> str:
        """Shortens moto's `stack-Logical-SUFFIX` to the service's limit, keeping the random suffix."""
        if len(generated) <= cls.NAME_MAX_LENGTH:
            return generated
        prefix, _, suffix = generated.rpartition("-")
        return f"{prefix[: cls.NAME_MAX_LENGTH - len(suffix) - 1].rstrip('-')}-{suffix}"


def reason_of(error: Exception) -> str:
    """The message of a moto service error (or any error), as a resource event's status reason."""
    message = getattr(error, "message", None) or getattr(error, "description", None) or str(error)
    if getattr(error, "verbatim", False):
        return message  # already worded as AWS words it (an AccessDenied from IAM enforcement)
    return f"{message} ({type(error).__name__})" if isinstance(message, str) else str(error)


def tag_list(properties: dict[str, Any], key: str = "Tags") -> list[dict[str, str]]:
    """CloudFormation's `Tags: [{Key, Value}]`, as a list (copied)."""
    return [{"Key": tag["Key"], "Value": str(tag["Value"])} for tag in properties.get(key) or []]


def tag_dict(properties: dict[str, Any], key: str = "Tags") -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tag_list(properties, key)}


def json_text(value: Any) -> str:
    """A policy or document property as JSON text: templates give objects, APIs take strings."""
    return value if isinstance(value, str) else json.dumps(value)


def changed(old: dict[str, Any], new: dict[str, Any], *keys: str) -> bool:
    return any(old.get(key) != new.get(key) for key in keys)


def require(properties: dict[str, Any], resource_type: str, *keys: str) -> None:
    """Fails like CloudFormation's template validation when a required property is missing."""
    missing = [key for key in keys if properties.get(key) in (None, "")]
    if missing:
        raise ValidationError(
            message=f"Properties validation failed for resource of type {resource_type}: "
            f"required key(s) {missing} not found"
        )


def ignore_missing(action, *errors: type[BaseException]) -> None:
    """Runs a delete; a resource that is already gone counts as deleted, as in CloudFormation."""
    try:
        action()
    except errors:
        pass
