"""CloudFormation handler for EventBridge rules (schedules, event patterns, targets), on moto's backend.

Targets are passed through as given, so a SageMaker pipeline target keeps its
SageMakerPipelineParameters and a CodeBuild target its Input; `list_targets_by_rule` shows them.
Ref is the rule ID: the name on the default bus, `bus|name` on another bus.

A ScheduleExpression EventBridge would refuse fails the rule with EventBridge's own error
(ValidationException "Parameter ScheduleExpression is not valid."): moto only checks that it
starts with `cron(` or looks like a rate. The grammar is the EventBridge user guide's ("Schedule
expressions for rules"), the one `mlops-infra validate` checks (src/config/schedule.rs).
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, events_backends

from .base import ResourceHandler, tag_list

DEFAULT_BUS = "default"

_PLURAL_UNITS = ("minutes", "hours", "days")
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (lowest, highest, names, wildcards beyond `, - *`) of minutes, hours, day-of-month, month,
# day-of-week and year.
_CRON_FIELDS = [
    (0, 59, [], "/"),
    (0, 23, [], "/"),
    (1, 31, [], "?/LW"),
    (1, 12, _MONTHS, "/"),
    (1, 7, _DAYS, "?L#"),
    (1970, 2199, [], "/"),
]


def schedule_expression_is_valid(expression: str) -> bool:
    """Whether EventBridge accepts `expression` as a rule's ScheduleExpression."""
    if expression.startswith("rate(") and expression.endswith(")"):
        parts = expression[len("rate(") : -1].split()
        value = _whole(parts[0]) if len(parts) == 2 else None
        if value is None or value < 1:
            return False
        unit = parts[1]
        return unit in ("minute", "hour", "day") if value == 1 else unit in _PLURAL_UNITS
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return False
    fields = expression[len("cron(") : -1].split()
    if len(fields) != len(_CRON_FIELDS):
        return False
    if not all(_cron_field_is_valid(text, *field) for text, field in zip(fields, _CRON_FIELDS)):
        return False
    return (fields[2] == "?") != (fields[4] == "?")


def _whole(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _cron_field_is_valid(text: str, low: int, high: int, names: list[str], wildcards: str) -> bool:
    if text == "?":
        return "?" in wildcards
    if "#" in text and "," in text:
        return False

    def value(item: str) -> bool:
        if item.upper() in names:
            return True
        number = _whole(item)
        return number is not None and low <= number <= high

    def value_or_range(item: str) -> bool:
        start, dash, end = item.partition("-")
        return value(start) and (not dash or value(end))

    for item in text.split(","):
        upper = item.upper()
        if "/" in item:
            start, _, step = item.partition("/")
            if "/" not in wildcards or not 1 <= (_whole(step) or 0) <= high:
                return False
            if start != "*" and not value_or_range(start):
                return False
        elif item == "*" or ("L" in wildcards and upper == "L"):
            continue
        elif "W" in wildcards and upper == "LW":
            continue
        elif "W" in wildcards and upper.endswith("W"):
            if not value(upper[:-1]):
                return False
        elif "#" in wildcards and upper.endswith("L"):
            if not value(upper[:-1]):
                return False
        elif "#" in item:
            day, _, nth = item.partition("#")
            if "#" not in wildcards or not (value(day) and 1 <= (_whole(nth) or 0) <= 5):
                return False
        elif not value_or_range(item):
            return False
    return True


class Rule(ResourceHandler, CloudFormationModel):
    TYPE = "AWS::Events::Rule"
    NAME_PROPERTY = "Name"
    NAME_MAX_LENGTH = 64
    CREATE_ONLY = ("Name",)
    ATTRIBUTES = ("Arn", "RuleName")

    @property
    def backend(self) -> EventsBackend:
        return events_backends[self.account_id][self.region_name]

    def create(self, name: str, properties: dict[str, Any]) -> None:
        self.name = name
        self.bus = properties.get("EventBusName") or DEFAULT_BUS
        self.put(properties, previous_target_ids=set())
        bus_name = self.bus.split("/")[-1]
        self.physical_id = name if bus_name == DEFAULT_BUS else f"{bus_name}|{name}"

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (new.get("EventBusName") or DEFAULT_BUS) != self.bus:
            # Moving to another bus is an update in place on AWS, with a new rule ID.
            self.destroy()
            self.create(self.name, new)
            return
        self.put(new, previous_target_ids={target["Id"] for target in old.get("Targets") or []})

    def put(self, properties: dict[str, Any], previous_target_ids: set[str]) -> None:
        schedule = properties.get("ScheduleExpression")
        if schedule is not None and not schedule_expression_is_valid(schedule):
            raise ValidationException("Parameter ScheduleExpression is not valid.")
        pattern = properties.get("EventPattern")
        rule = self.backend.put_rule(
            self.name,
            description=properties.get("Description"),
            event_bus_arn=self.bus,
            event_pattern=json.dumps(pattern) if isinstance(pattern, dict) else pattern,
            role_arn=properties.get("RoleArn"),
            scheduled_expression=properties.get("ScheduleExpression"),
            state=properties.get("State", "ENABLED"),
        )
        self.backend.tagger.delete_all_tags_for_resource(rule.arn)
        if properties.get("Tags"):
            self.backend.tagger.tag_resource(rule.arn, tag_list(properties))
        targets = properties.get("Targets") or []
        removed = previous_target_ids - {target["Id"] for target in targets}
        if removed:
            self.backend.remove_targets(self.name, self.bus, sorted(removed))
        if targets:
            self.backend.put_targets(self.name, self.bus, [dict(target) for target in targets])

    def destroy(self) -> None:
        try:
            rule = self.backend.describe_rule(self.name, self.bus)
        except Exception:  # the rule or its bus is gone already
            return
        if rule.targets:
            self.backend.remove_targets(
                self.name, self.bus, [target["Id"] for target in rule.targets]
            )
        self.backend.delete_rule(self.name, self.bus)

    def attribute(self, name: str) -> Any:
        rule = self.backend.describe_rule(self.name, self.bus)
        return {"Arn": rule.arn, "RuleName": rule.name}[name]
