"""CloudFormation handlers for Application Auto Scaling targets and policies (moto's backend).

A scalable target's Ref is `ResourceId|ScalableDimension|ServiceNamespace`, the id CloudFormation
generates; a scaling policy can name its target by that id (ScalingTargetId) or by the three parts.
"""

from __future__ import annotations

from typing import Any

from moto.applicationautoscaling.models import (
    ApplicationAutoscalingBackend,
    applicationautoscaling_backends,
)
from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel

from .base import ResourceHandler, require


class AutoScalingHandler(ResourceHandler):
    @property
    def backend(self) -> ApplicationAutoscalingBackend:
        return applicationautoscaling_backends[self.account_id][self.region_name]


class ScalableTarget(AutoScalingHandler, CloudFormationModel):
    TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"
    CREATE_ONLY = ("ResourceId", "ScalableDimension", "ServiceNamespace")
    ATTRIBUTES = ("Id",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(
            properties,
            self.TYPE,
            "ResourceId",
            "ServiceNamespace",
            "ScalableDimension",
            "MinCapacity",
            "MaxCapacity",
        )
        self.key = (
            properties["ServiceNamespace"],
            properties["ResourceId"],
            properties["ScalableDimension"],
        )
        self.physical_id = f"{self.key[1]}|{self.key[2]}|{self.key[0]}"
        self.update({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        namespace, resource_id, dimension = self.key
        # RegisterScalableTarget on an existing target updates it, as on AWS.
        self.backend.register_scalable_target(
            namespace,
            resource_id,
            dimension,
            min_capacity=int(new["MinCapacity"]),
            max_capacity=int(new["MaxCapacity"]),
            role_arn=new.get("RoleARN"),
            suspended_state=new.get("SuspendedState"),
        )
        for action in old.get("ScheduledActions") or []:
            self.backend.delete_scheduled_action(
                namespace, action["ScheduledActionName"], resource_id, dimension
            )
        for action in new.get("ScheduledActions") or []:
            self.backend.put_scheduled_action(
                namespace,
                action["Schedule"],
                action.get("Timezone"),
                action["ScheduledActionName"],
                resource_id,
                dimension,
                action.get("StartTime"),
                action.get("EndTime"),
                action.get("ScalableTargetAction"),
            )

    def destroy(self) -> None:
        namespace, resource_id, dimension = self.key
        for action in self.properties.get("ScheduledActions") or []:
            self.backend.delete_scheduled_action(
                namespace, action["ScheduledActionName"], resource_id, dimension
            )
        if resource_id in self.backend.targets.get(dimension, {}):
            self.backend.deregister_scalable_target(namespace, resource_id, dimension)

    def attribute(self, name: str) -> Any:
        return self.physical_id


class ScalingPolicy(AutoScalingHandler, CloudFormationModel):
    TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"
    CREATE_ONLY = (
        "PolicyName",
        "ServiceNamespace",
        "ResourceId",
        "ScalableDimension",
        "ScalingTargetId",
    )
    ATTRIBUTES = ("Arn",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "PolicyName", "PolicyType")
        if properties.get("ScalingTargetId"):
            resource_id, dimension, namespace = properties["ScalingTargetId"].split("|")
        else:
            require(properties, self.TYPE, "ResourceId", "ScalableDimension", "ServiceNamespace")
            resource_id = properties["ResourceId"]
            dimension = properties["ScalableDimension"]
            namespace = properties["ServiceNamespace"]
        if resource_id not in self.backend.targets.get(dimension, {}):
            raise ValidationError(
                message=f"No scalable target registered for service namespace: {namespace}, "
                f"resource ID: {resource_id}, scalable dimension: {dimension}"
            )
        self.key = (properties["PolicyName"], namespace, resource_id, dimension)
        self.physical_id = self.put(properties).policy_arn

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        # moto mints a new ARN on every put; AWS keeps the policy's ARN, and so do we.
        self.put(new).policy_arn = self.physical_id

    def put(self, properties: dict[str, Any]):
        policy_type = properties["PolicyType"]
        body = (
            properties.get("StepScalingPolicyConfiguration")
            if policy_type == "StepScaling"
            else properties.get("TargetTrackingScalingPolicyConfiguration")
        )
        return self.backend.put_scaling_policy(*self.key, policy_body=body, policy_type=policy_type)

    def destroy(self) -> None:
        try:
            self.backend.delete_scaling_policy(*self.key)
        except Exception:  # already gone (its target was deregistered first)
            pass

    def attribute(self, name: str) -> Any:
        return self.physical_id
