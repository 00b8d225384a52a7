"""CloudFormation handlers for KMS keys and aliases, backed by moto's KMS backend.

As on AWS, deleting a key from a stack schedules its deletion (PendingWindowInDays, 7-30, default 30)
instead of removing it: DescribeKey then reports KeyState PendingDeletion.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.kms.models import KmsBackend, kms_backends

from .base import ResourceHandler, changed, json_text, require, tag_dict

DEFAULT_PENDING_WINDOW_DAYS = 30


class KMSHandler(ResourceHandler):
    @property
    def backend(self) -> KmsBackend:
        return kms_backends[self.account_id][self.region_name]


def kms_tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"TagKey": key, "TagValue": value} for key, value in tag_dict(properties).items()]


class Key(KMSHandler, CloudFormationModel):
    TYPE = "AWS::KMS::Key"
    # Not createOnly in the schema, but the documentation says these require replacement.
    CREATE_ONLY = ("KeySpec", "KeyUsage", "MultiRegion", "Origin")
    ATTRIBUTES = ("Arn", "KeyId")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        policy = properties.get("KeyPolicy")
        key = self.backend.create_key(
            policy=json_text(policy) if policy is not None else None,
            key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=properties.get("Description", ""),
            tags=kms_tags(properties),
            multi_region=bool(properties.get("MultiRegion", False)),
            origin=properties.get("Origin", "AWS_KMS"),
        )
        self.physical_id = key.id
        self.apply_state({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key_id = self.physical_id
        if changed(old, new, "Description"):
            self.backend.update_key_description(key_id, new.get("Description", ""))
        if changed(old, new, "KeyPolicy") and new.get("KeyPolicy") is not None:
            self.backend.put_key_policy(key_id, json_text(new["KeyPolicy"]))
        if changed(old, new, "Tags"):
            self.backend.untag_resource(key_id, list(tag_dict(old)))
            self.backend.tag_resource(key_id, tag_dict(new))
        self.apply_state(old, new)

    def apply_state(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key_id = self.physical_id
        enabled = new.get("Enabled", True)
        if enabled != old.get("Enabled", True) or not old:
            (self.backend.enable_key if enabled else self.backend.disable_key)(key_id)
        rotation = bool(new.get("EnableKeyRotation", False))
        if rotation != bool(old.get("EnableKeyRotation", False)) or not old:
            if rotation:
                self.backend.enable_key_rotation(key_id)
            else:
                self.backend.disable_key_rotation(key_id)

    def destroy(self) -> None:
        if self.physical_id in self.backend.keys:
            window = int(self.properties.get("PendingWindowInDays", DEFAULT_PENDING_WINDOW_DAYS))
            self.backend.schedule_key_deletion(self.physical_id, window)

    def attribute(self, name: str) -> Any:
        return {"Arn": self.backend.keys[self.physical_id].arn, "KeyId": self.physical_id}[name]


class Alias(KMSHandler, CloudFormationModel):
    TYPE = "AWS::KMS::Alias"
    NAME_PROPERTY = "AliasName"
    CREATE_ONLY = ("AliasName",)
    ATTRIBUTES = ()  # Ref is the alias name; the real type has no GetAtt attributes

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "AliasName", "TargetKeyId")
        self.backend.create_alias(properties["TargetKeyId"], name)
        self.physical_id = name

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.backend.update_alias(new["TargetKeyId"], self.physical_id)

    def destroy(self) -> None:
        self.backend.delete_alias(self.physical_id)
