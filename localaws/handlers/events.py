"""CloudFormation handler for EventBridge rules (schedules, event patterns, targets), on moto's backend.

Targets are passed through as given, so a SageMaker pipeline target keeps its
SageMakerPipelineParameters and a CodeBuild target its Input; `list_targets_by_rule` shows them.
Ref is the rule ID: the name on the default bus, `bus|name` on another bus.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.events.models import EventsBackend, events_backends

from .base import ResourceHandler, tag_list

DEFAULT_BUS = "default"


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
