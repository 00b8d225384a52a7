"""CloudFormation handler for CloudWatch Logs log groups, backed by moto's Logs backend."""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.models import LogsBackend, logs_backends

from .base import ResourceHandler, changed, ignore_missing, tag_dict


class LogGroup(ResourceHandler, CloudFormationModel):
    TYPE = "AWS::Logs::LogGroup"
    NAME_PROPERTY = "LogGroupName"
    NAME_MAX_LENGTH = 512
    CREATE_ONLY = ("LogGroupName",)
    ATTRIBUTES = ("Arn",)

    @property
    def backend(self) -> LogsBackend:
        return logs_backends[self.account_id][self.region_name]

    def create(self, name: str, properties: dict[str, Any]) -> None:
        self.backend.create_log_group(
            name,
            tag_dict(properties),
            RetentionInDays=properties.get("RetentionInDays"),
            kmsKeyId=properties.get("KmsKeyId"),
        )
        self.physical_id = name

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        group = self.backend.groups[self.physical_id]
        if changed(old, new, "RetentionInDays"):
            if new.get("RetentionInDays"):
                self.backend.put_retention_policy(self.physical_id, new["RetentionInDays"])
            else:
                self.backend.delete_retention_policy(self.physical_id)
        group.kms_key_id = new.get("KmsKeyId")
        if changed(old, new, "Tags"):
            self.backend.untag_resource(group.arn, list(tag_dict(old)))
            self.backend.tag_resource(group.arn, tag_dict(new))

    def destroy(self) -> None:
        ignore_missing(
            lambda: self.backend.delete_log_group(self.physical_id), ResourceNotFoundException
        )

    def attribute(self, name: str) -> Any:
        # CloudFormation's Arn ends in ":*" (it covers the group's streams); the Logs API's does not.
        return f"{self.backend.groups[self.physical_id].arn}:*"
