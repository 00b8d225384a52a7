"""What CloudFormation's handler for a resource type calls, as IAM requests: (action, resource ARN,
condition context), from the project's data files (read once, at server start):

- data/cloudformation-handler-permissions.tsv: `type  handler  perm,perm,...`, from AWS's resource
  provider schemas. Creating a resource needs the create and read handlers' permissions, updating
  it update + read, deleting it delete + read.
- data/cloudformation-handler-rules.tsv (its header defines the rows): `arn` (a type's own IAM ARN
  template), `target` (a permission checked on another resource's ARN), `excuse` (a permission
  needed only when a property is set, has a value, or never) and `handler` (handler lists for
  types whose schema has none).
- data/iam-actions.tsv: the IAM resource types each action can be scoped to.

A permission is checked against the ARNs of its `target` rows, if any; else against the resource's
own ARN (its `arn` rows) when the action can be scoped to that IAM resource type; else against `*`.
ARN templates are resolved with the resource's resolved properties and physical id: the emulator
knows them (SageMaker ARNs name resources in lowercase, as SageMaker does).
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .iam import matches

logger = logging.getLogger("localaws")

DATA = Path(__file__).resolve().parent.parent / "data"
HANDLERS = {"create": ("create", "read"), "update": ("update", "read"), "delete": ("delete", "read")}

# The service principal a type's handler passes a role to (iam:PassedToService), by namespace.
PASSED_TO = {
    "ApplicationAutoScaling": "application-autoscaling.amazonaws.com",
    "CloudFormation": "cloudformation.amazonaws.com",
}

# Values of properties a template may leave unset that the emulator knows (for ARN templates).
DEFAULTS = {
    "AWS::IAM::Role": {"Path": "/"},
    "AWS::IAM::ManagedPolicy": {"Path": "/"},
}

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class ArnRule:
    service: str
    resource_type: str  # lowercase IAM resource type, e.g. "endpoint-config"
    template: str


@dataclass
class Excuse:
    pattern: str
    condition: str  # "Property", "Property=value" or "never"


@dataclass
class TypeRules:
    arns: list[ArnRule] = field(default_factory=list)
    targets: dict[str, list[ArnRule]] = field(default_factory=dict)  # lowercase action -> ARNs
    excuses: list[Excuse] = field(default_factory=list)
    handlers: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One IAM request a handler makes. `resource` is None while it needs the physical id (${Ref})
    of a resource not yet created."""

    action: str
    resource: str | None
    context: tuple[tuple[str, str], ...] = ()


class HandlerData:
    def __init__(self, directory: Path = DATA):
        self.handlers: dict[str, dict[str, list[str]]] = {}
        self.rules: dict[str, TypeRules] = {}
        # lowercase action -> its IAM resource types (lowercase, in the data's order) -> required
        self.scopes: dict[str, dict[str, bool]] = {}
        # "service:resource-type" (lowercase) -> ARN formats
        self.arn_formats: dict[str, list[str]] = {}
        self._read_handlers(directory / "cloudformation-handler-permissions.tsv")
        self._read_rules(directory / "cloudformation-handler-rules.tsv")
        self._read_actions(directory / "iam-actions.tsv")

    # --- reading -----------------------------------------------------------------------------------

    @staticmethod
    def _rows(path: Path) -> list[list[str]]:
        rows = []
        for line in path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            rows.append(line.split("\t"))
        return rows

    def _read_handlers(self, path: Path) -> None:
        for row in self._rows(path):
            if len(row) < 3:
                continue
            type_name, handler, permissions = row[0], row[1], row[2]
            self.handlers.setdefault(type_name, {})[handler] = split_list(permissions)

    def _read_rules(self, path: Path) -> None:
        if not path.exists():
            logger.warning("localaws: %s is missing: no arn/target/excuse rules", path)
            return
        for number, row in enumerate(self._rows(path), 1):
            if len(row) < 4:
                logger.warning("localaws: %s: row %d has fewer than 4 columns: %s", path.name, number, row)
                continue
            kind, type_name, permission, value = (part.strip() for part in row[:4])
            rules = self.rules.setdefault(type_name, TypeRules())
            if kind in ("arn", "target"):
                resource_type, _, template = value.partition(" ")
                service, _, name = resource_type.partition(":")
                rule = ArnRule(service.lower(), name.lower(), template.strip())
                if kind == "arn":
                    rules.arns.append(rule)
                else:
                    rules.targets.setdefault(permission.lower(), []).append(rule)
            elif kind == "excuse":
                rules.excuses.append(Excuse(permission, value))
            elif kind == "handler":
                rules.handlers[permission] = split_list(value)
            else:
                logger.warning("localaws: %s: unknown row kind %r", path.name, kind)

    def _read_actions(self, path: Path) -> None:
        for row in self._rows(path):
            if len(row) < 2:
                continue
            if row[0].startswith("@"):
                self.arn_formats[row[0][1:].lower()] = split_list(row[1])
                continue
            self.scopes[row[0].lower()] = {
                name.rstrip("!").lower(): name.endswith("!") for name in split_list(row[1])
            }

    # --- requirements ------------------------------------------------------------------------------

    def permissions(self, type_name: str, operation: str) -> list[str] | None:
        """The permissions an operation (create/update/delete) on the type needs, before excuses;
        None when the data has no handler list for the type."""
        lists = dict(self.handlers.get(type_name) or {})
        for handler, actions in (self.rules.get(type_name) or TypeRules()).handlers.items():
            lists.setdefault(handler, actions)
        if not lists:
            return None
        found: list[str] = []
        for handler in HANDLERS[operation]:
            for action in lists.get(handler) or []:
                if action not in found:
                    found.append(action)
        return found

    def requests(
        self,
        type_name: str,
        operation: str,
        properties: dict[str, Any],
        *,
        name: str | None,
        name_property: str | None,
        physical_id: str | None,
        account: str,
        region: str,
        partition: str,
        other_properties: dict[str, Any] | None = None,
    ) -> list[Request]:
        """The IAM requests an operation makes, with resolved ARNs.

        `properties` are the resolved properties (for an update, the new ones; `other_properties`
        the old ones: a permission excused unless a property is set is needed if either sets it).
        """
        permissions = self.permissions(type_name, operation)
        if permissions is None:
            logger.warning("localaws: no handler permissions known for %s; nothing checked", type_name)
            return []
        rules = self.rules.get(type_name) or TypeRules()
        known = {**DEFAULTS.get(type_name, {}), **properties}
        values = Values(known, name, name_property, physical_id, account, region, partition)
        found: list[Request] = []
        for action in permissions:
            if not needed(rules.excuses, action, properties, other_properties):
                continue
            context = tuple(sorted(self.context(type_name, action, properties).items()))
            for resource in self.resources(rules, action, values):
                request = Request(action, resource, context)
                if request not in found:
                    found.append(request)
        return found

    def resources(self, rules: TypeRules, action: str, values: "Values") -> list[str | None]:
        targets = rules.targets.get(action.lower())
        if targets:
            # A target row whose property is not set names no resource (the emulator knows it is
            # unset, where the offline analysis must assume any).
            found = [arn for rule in targets for arn in values.arns(rule, unset_names_none=True)]
            if found:
                return found
            logger.warning("localaws: no target of %s is set; checked on *", action)
            return ["*"]
        service = action.split(":")[0].lower()
        scopes = self.scopes.get(action.lower(), set())
        own = [
            rule
            for rule in rules.arns
            if rule.service == service and rule.resource_type in scopes
        ]
        if own:
            return [arn for rule in own for arn in values.arns(rule)]
        return ["*"]

    @staticmethod
    def context(type_name: str, action: str, properties: dict[str, Any]) -> dict[str, str]:
        namespace = type_name.split("::")[1] if type_name.count("::") == 2 else ""
        lowered = action.lower()
        if lowered == "iam:passrole":
            return {
                "iam:PassedToService": PASSED_TO.get(namespace, f"{namespace.lower()}.amazonaws.com")
            }
        if lowered == "iam:createservicelinkedrole":
            if namespace == "ApplicationAutoScaling" and properties.get("ServiceNamespace"):
                service = f"{properties['ServiceNamespace']}.application-autoscaling.amazonaws.com"
            else:
                service = PASSED_TO.get(namespace, f"{namespace.lower()}.amazonaws.com")
            return {"iam:AWSServiceName": service}
        return {}


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


# --- excuses --------------------------------------------------------------------------------------


def needed(
    excuses: list[Excuse],
    action: str,
    properties: dict[str, Any],
    other: dict[str, Any] | None,
) -> bool:
    """Whether a permission is needed: yes unless excuse rows name it, then only when one of their
    conditions holds (on the new or, for an update, the old properties)."""
    relevant = [excuse for excuse in excuses if matches(excuse.pattern, action, ignore_case=True)]
    if not relevant:
        return True
    for excuse in relevant:
        if excuse.condition.strip().lower() == "never":
            continue
        for candidate in (properties, other):
            if candidate is not None and condition_holds(excuse.condition, candidate):
                return True
    return False


def condition_holds(condition: str, properties: dict[str, Any]) -> bool:
    path, has_value, wanted = condition.partition("=")
    values = lookup(properties, path.strip())
    if not has_value:
        return any(is_set(value) for value in values)
    return any(scalar_text(value) == wanted.strip() for value in values)


def is_set(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lookup(value: Any, path: str) -> list[Any]:
    """The values at a dotted property path; a list along the way contributes each element."""
    current = [value]
    for part in path.split("."):
        following = []
        for item in current:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict) and part in element:
                    following.append(element[part])
        current = following
    flat = []
    for item in current:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


# --- ARN templates --------------------------------------------------------------------------------


@dataclass
class Values:
    properties: dict[str, Any]
    name: str | None
    name_property: str | None
    physical_id: str | None
    account: str
    region: str
    partition: str

    def arns(self, rule: ArnRule, unset_names_none: bool = False) -> list[str | None]:
        """Every ARN the template names (a list-valued property gives one per element); None for a
        template needing the physical id of a resource not yet created. A property not set is `*`,
        or, with `unset_names_none`, makes the template name nothing."""
        placeholders = PLACEHOLDER.findall(rule.template)
        choices: list[list[str]] = []
        for placeholder in placeholders:
            found = self.value(placeholder)
            if found is None:
                return [None]
            if not found:
                if unset_names_none:
                    return []
                found = ["*"]
            choices.append(found)
        arns: list[str | None] = []
        for combination in itertools.product(*choices):
            replacements = iter(combination)
            arn = PLACEHOLDER.sub(lambda _: next(replacements), rule.template)
            if rule.service == "sagemaker":
                arn = lowercase_name(arn)
            if arn not in arns:
                arns.append(arn)
        return arns

    def value(self, placeholder: str) -> list[str] | None:
        if placeholder == "Partition":
            return [self.partition]
        if placeholder == "Region":
            return [self.region]
        if placeholder == "Account":
            return [self.account]
        if placeholder == "Ref":
            return [self.physical_id] if self.physical_id else None
        found = [value for value in lookup(self.properties, placeholder) if value is not None]
        if not found and placeholder == self.name_property and self.name:
            found = [self.name]  # the name CloudFormation generated
        if not found:
            return []
        texts = []
        for value in found:
            if isinstance(value, (dict, list)):
                logger.warning("localaws: ARN placeholder ${%s} is not a scalar: %r", placeholder, value)
                texts.append("*")
            else:
                texts.append(scalar_text(value))
        return texts


def lowercase_name(arn: str) -> str:
    """SageMaker puts resource names in ARNs in lowercase."""
    parts = arn.split(":", 5)
    if len(parts) == 6:
        parts[5] = parts[5].lower()
    return ":".join(parts)


_loaded: HandlerData | None = None


def load(directory: Path = DATA) -> HandlerData:
    """Reads the data files (the server calls this once, at start)."""
    global _loaded
    _loaded = HandlerData(directory)
    return _loaded


def data() -> HandlerData:
    return _loaded if _loaded is not None else load()
