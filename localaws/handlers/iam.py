"""CloudFormation handlers for IAM roles, inline policies and managed policies (moto's IAM backend).

Updates reach the role's trust policy, inline policies, attached managed policies and tags, which
moto's own Role handler leaves unchanged; a managed policy's document change becomes a new default
policy version, as on AWS.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend, iam_backends
from moto.utilities.utils import get_partition

from .base import ResourceHandler, changed, ignore_missing, json_text, require, tag_list

# IAM keeps at most five versions of a managed policy.
MAX_POLICY_VERSIONS = 5


class IAMHandler(ResourceHandler):
    @property
    def backend(self) -> IAMBackend:
        return iam_backends[self.account_id][get_partition(self.region_name)]


class Role(IAMHandler, CloudFormationModel):
    TYPE = "AWS::IAM::Role"
    NAME_PROPERTY = "RoleName"
    NAME_MAX_LENGTH = 64
    CREATE_ONLY = ("Path", "RoleName")
    ATTRIBUTES = ("Arn", "RoleId")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "AssumeRolePolicyDocument")
        self.backend.create_role(
            role_name=name,
            assume_role_policy_document=json_text(properties["AssumeRolePolicyDocument"]),
            path=properties.get("Path", "/"),
            permissions_boundary=properties.get("PermissionsBoundary"),
            description=properties.get("Description", ""),
            tags=tag_list(properties),
            max_session_duration=properties.get("MaxSessionDuration", 3600),
        )
        self.physical_id = name
        self.apply_policies({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        name = self.physical_id
        if changed(old, new, "AssumeRolePolicyDocument"):
            self.backend.update_assume_role_policy(name, json_text(new["AssumeRolePolicyDocument"]))
        if changed(old, new, "Description", "MaxSessionDuration"):
            self.backend.update_role(
                name, new.get("Description", ""), new.get("MaxSessionDuration", 3600)
            )
        if changed(old, new, "PermissionsBoundary"):
            # (moto's Role.permissions_boundary is a read-only view of permissions_boundary_arn)
            self.backend.get_role(name).permissions_boundary_arn = new.get("PermissionsBoundary")
        if changed(old, new, "Tags"):
            self.backend.untag_role(name, [tag["Key"] for tag in tag_list(old)])
            self.backend.tag_role(name, tag_list(new))
        self.apply_policies(old, new)

    def apply_policies(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        name = self.physical_id
        old_inline = {
            item["PolicyName"]: item["PolicyDocument"] for item in old.get("Policies") or []
        }
        new_inline = {
            item["PolicyName"]: item["PolicyDocument"] for item in new.get("Policies") or []
        }
        for policy_name in old_inline.keys() - new_inline.keys():
            self.backend.delete_role_policy(name, policy_name)
        for policy_name, document in new_inline.items():
            if old_inline.get(policy_name) != document:
                self.backend.put_role_policy(name, policy_name, json_text(document))
        old_managed = set(old.get("ManagedPolicyArns") or [])
        new_managed = set(new.get("ManagedPolicyArns") or [])
        for arn in old_managed - new_managed:
            self.backend.detach_role_policy(arn, name)
        for arn in sorted(new_managed - old_managed):
            self.backend.attach_role_policy(arn, name)

    def destroy(self) -> None:
        name = self.physical_id
        for arn in self.properties.get("ManagedPolicyArns") or []:
            ignore_missing(
                lambda arn=arn: self.backend.detach_role_policy(arn, name), NotFoundException
            )
        for item in self.properties.get("Policies") or []:
            ignore_missing(
                lambda item=item: self.backend.delete_role_policy(name, item["PolicyName"]),
                NotFoundException,
            )
        # A DeleteConflict (another resource's policy still attached) propagates: moto's engine then
        # retries after deleting the rest, which is CloudFormation's dependency order in effect.
        ignore_missing(lambda: self.backend.delete_role(name), NotFoundException)

    def attribute(self, name: str) -> Any:
        role = self.backend.get_role(self.physical_id)
        return {"Arn": role.arn, "RoleId": role.id}[name]


class Policy(IAMHandler, CloudFormationModel):
    """An inline policy put into each of its roles, users and groups; Ref is a generated id."""

    TYPE = "AWS::IAM::Policy"
    NAME_MAX_LENGTH = 128
    ATTRIBUTES = ("Id",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "PolicyName", "PolicyDocument")
        if not any(properties.get(key) for key in ("Roles", "Users", "Groups")):
            raise_missing_principals(self.TYPE)
        self.backend.create_inline_policy(
            name,
            properties["PolicyName"],
            json_text(properties["PolicyDocument"]),
            properties.get("Groups") or [],
            properties.get("Roles") or [],
            properties.get("Users") or [],
        )
        self.physical_id = name

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.backend.update_inline_policy(
            self.physical_id,
            new["PolicyName"],
            json_text(new["PolicyDocument"]),
            new.get("Groups") or [],
            new.get("Roles") or [],
            new.get("Users") or [],
        )

    def destroy(self) -> None:
        policy = self.backend.inline_policies.pop(self.physical_id, None)
        if policy is None:
            return
        # Principals deleted before this policy have taken their copies with them.
        for role in policy.role_names or []:
            ignore_missing(
                lambda role=role: self.backend.delete_role_policy(role, policy.policy_name),
                NotFoundException,
            )
        for user in policy.user_names or []:
            ignore_missing(
                lambda user=user: self.backend.delete_user_policy(user, policy.policy_name),
                NotFoundException,
            )
        for group in policy.group_names or []:
            ignore_missing(
                lambda group=group: self.backend.delete_group_policy(group, policy.policy_name),
                NotFoundException,
            )

    def attribute(self, name: str) -> Any:
        return self.physical_id


class ManagedPolicy(IAMHandler, CloudFormationModel):
    TYPE = "AWS::IAM::ManagedPolicy"
    NAME_PROPERTY = "ManagedPolicyName"
    NAME_MAX_LENGTH = 128
    CREATE_ONLY = ("ManagedPolicyName", "Description", "Path")
    ATTRIBUTES = (
        "PolicyArn",
        "AttachmentCount",
        "CreateDate",
        "DefaultVersionId",
        "IsAttachable",
        "PermissionsBoundaryUsageCount",
        "PolicyId",
        "UpdateDate",
    )

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "PolicyDocument")
        policy = self.backend.create_policy(
            description=properties.get("Description", ""),
            path=properties.get("Path", "/"),
            policy_document=json_text(properties["PolicyDocument"]),
            policy_name=name,
            tags=[],
        )
        self.physical_id = policy.arn
        self.attach({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if changed(old, new, "PolicyDocument"):
            policy = self.backend.get_policy(self.physical_id)
            if len(policy.versions) >= MAX_POLICY_VERSIONS:
                oldest = next(v for v in policy.versions if not v.is_default)
                self.backend.delete_policy_version(self.physical_id, oldest.version_id)
            self.backend.create_policy_version(
                self.physical_id, json_text(new["PolicyDocument"]), set_as_default=True
            )
        self.attach(old, new)

    def attach(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        arn = self.physical_id
        for key, attach, detach in (
            ("Roles", self.backend.attach_role_policy, self.backend.detach_role_policy),
            ("Users", self.backend.attach_user_policy, self.backend.detach_user_policy),
            ("Groups", self.backend.attach_group_policy, self.backend.detach_group_policy),
        ):
            before, after = set(old.get(key) or []), set(new.get(key) or [])
            for principal in before - after:
                ignore_missing(
                    lambda detach=detach, principal=principal: detach(arn, principal),
                    NotFoundException,
                )
            for principal in sorted(after - before):
                attach(arn, principal)

    def destroy(self) -> None:
        try:
            policy = self.backend.get_policy(self.physical_id)
        except NotFoundException:
            return
        self.attach(self.properties, {})
        for version in list(policy.versions):
            if not version.is_default:
                self.backend.delete_policy_version(self.physical_id, version.version_id)
        self.backend.delete_policy(self.physical_id)

    def attribute(self, name: str) -> Any:
        policy = self.backend.get_policy(self.physical_id)
        return {
            "PolicyArn": policy.arn,
            "AttachmentCount": policy.attachment_count,
            "CreateDate": policy.create_date,
            "DefaultVersionId": policy.default_version_id,
            "IsAttachable": True,
            "PermissionsBoundaryUsageCount": 0,
            "PolicyId": policy.id,
            "UpdateDate": policy.update_date,
        }[name]


def raise_missing_principals(resource_type: str) -> None:
    from moto.cloudformation.exceptions import ValidationError

    raise ValidationError(message=f"{resource_type} needs at least one of Roles, Users or Groups")
