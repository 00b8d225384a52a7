"""CloudFormation handlers for S3 buckets and bucket policies, backed by moto's S3 backend.

A bucket handles the configuration our templates set (encryption, versioning, public access block,
lifecycle rules, ownership controls, access logging, EventBridge notifications, tags); other bucket
properties are accepted and logged in the server log as not modelled. As on AWS,
deleting a bucket that still holds objects fails.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.exceptions import BucketNotEmpty, MissingBucket
from moto.s3.models import S3Backend, s3_backends
from moto.utilities.utils import get_partition

from .base import ResourceHandler, ignore_missing, json_text, logger, require, tag_dict

# The bucket properties this handler applies; anything else is recorded but has no effect.
MODELLED_BUCKET_PROPERTIES = {
    "BucketName",
    "BucketEncryption",
    "VersioningConfiguration",
    "PublicAccessBlockConfiguration",
    "LifecycleConfiguration",
    "OwnershipControls",
    "LoggingConfiguration",
    "NotificationConfiguration",
    "Tags",
}


class S3Handler(ResourceHandler):
    @property
    def backend(self) -> S3Backend:
        return s3_backends[self.account_id][get_partition(self.region_name)]


class Bucket(S3Handler, CloudFormationModel):
    TYPE = "AWS::S3::Bucket"
    NAME_PROPERTY = "BucketName"
    NAME_MAX_LENGTH = 63
    CREATE_ONLY = ("BucketName", "BucketNamePrefix", "BucketNamespace")
    ATTRIBUTES = ("Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        self.backend.create_bucket(name, self.region_name)
        self.physical_id = name
        self.configure({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.configure(old, new)

    def configure(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        name = self.physical_id
        bucket = self.backend.get_bucket(name)
        not_modelled = sorted(set(new) - MODELLED_BUCKET_PROPERTIES)
        if not_modelled:
            logger.warning("%s: bucket properties not modelled: %s", self.logical_id, not_modelled)
        if "BucketEncryption" in new:
            self.backend.put_bucket_encryption(name, encryption(new["BucketEncryption"]))
        elif "BucketEncryption" in old:
            self.backend.delete_bucket_encryption(name)
        if "VersioningConfiguration" in new:
            self.backend.put_bucket_versioning(name, new["VersioningConfiguration"]["Status"])
        elif (old.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            # A versioned bucket can only be suspended, never made unversioned again.
            self.backend.put_bucket_versioning(name, "Suspended")
        if "PublicAccessBlockConfiguration" in new:
            self.backend.put_public_access_block(name, new["PublicAccessBlockConfiguration"])
        elif "PublicAccessBlockConfiguration" in old:
            self.backend.delete_public_access_block(name)
        if "LifecycleConfiguration" in new:
            rules = [
                lifecycle_rule(rule) for rule in new["LifecycleConfiguration"].get("Rules", [])
            ]
            self.backend.put_bucket_lifecycle(name, rules)
        elif "LifecycleConfiguration" in old:
            self.backend.delete_bucket_lifecycle(name)
        if "OwnershipControls" in new or "OwnershipControls" in old:
            rules = (new.get("OwnershipControls") or {}).get("Rules") or [{}]
            bucket.ownership_rule = rules[0].get("ObjectOwnership")
        if "LoggingConfiguration" in new or "LoggingConfiguration" in old:
            bucket.logging = self.logging(new.get("LoggingConfiguration"))
        if "NotificationConfiguration" in new or "NotificationConfiguration" in old:
            notifications = new.get("NotificationConfiguration") or {}
            event_bridge = (notifications.get("EventBridgeConfiguration") or {}).get(
                "EventBridgeEnabled"
            )
            others = sorted(set(notifications) - {"EventBridgeConfiguration"})
            if others:
                logger.warning("%s: notification kinds not modelled: %s", self.logical_id, others)
            bucket.set_notification_configuration(
                {"EventBridgeConfiguration": {}} if str(event_bridge).lower() == "true" else None
            )
        if "Tags" in new or "Tags" in old:
            self.backend.put_bucket_tagging(name, tag_dict(new))

    def logging(self, configuration: dict[str, Any] | None) -> dict[str, Any]:
        """CloudFormation's LoggingConfiguration as the S3 API's BucketLoggingStatus.

        Set directly: moto's PutBucketLogging also demands log-delivery permissions on the target,
        which a stack usually grants in a bucket policy created after this bucket.
        """
        if not configuration:
            return {}
        target = configuration.get("DestinationBucketName") or self.physical_id
        if target not in self.backend.buckets:
            raise MissingBucket(bucket=target)
        return {"TargetBucket": target, "TargetPrefix": configuration.get("LogFilePrefix", "")}

    def destroy(self) -> None:
        bucket = self.backend.buckets.get(self.physical_id)
        if bucket is None:
            return
        if bucket.keys:
            # As on AWS, the stack's deletion fails here; moto's delete_bucket would return silently.
            raise BucketNotEmpty(self.physical_id)
        self.backend.delete_bucket(self.physical_id)

    def attribute(self, name: str) -> Any:
        bucket = self.backend.get_bucket(self.physical_id)
        return {
            "Arn": bucket.arn,
            "DomainName": bucket.domain_name,
            "DualStackDomainName": bucket.dual_stack_domain_name,
            "RegionalDomainName": bucket.regional_domain_name,
            "WebsiteURL": bucket.website_url,
        }[name]


def encryption(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's BucketEncryption as the structure moto's PutBucketEncryption stores."""
    rules = properties.get("ServerSideEncryptionConfiguration") or []
    if not rules:
        return {"Rule": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}}
    rule = rules[0]
    by_default = dict(rule.get("ServerSideEncryptionByDefault") or {"SSEAlgorithm": "AES256"})
    stored: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": by_default}
    if "BucketKeyEnabled" in rule:
        stored["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower()
    return {"Rule": stored}


def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One CloudFormation lifecycle rule in the shape of the S3 API (as moto parses it from XML)."""
    converted: dict[str, Any] = {"ID": rule.get("Id"), "Status": rule["Status"]}
    converted["Filter"] = {"Prefix": rule.get("Prefix") or ""}
    expiration = {
        key: rule[source]
        for key, source in (
            ("Days", "ExpirationInDays"),
            ("Date", "ExpirationDate"),
            ("ExpiredObjectDeleteMarker", "ExpiredObjectDeleteMarker"),
        )
        if source in rule
    }
    if expiration:
        converted["Expiration"] = expiration
    transitions = rule.get("Transitions") or ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        converted["Transition"] = [
            {
                key: transition[source]
                for key, source in (
                    ("Days", "TransitionInDays"),
                    ("Date", "TransitionDate"),
                    ("StorageClass", "StorageClass"),
                )
                if source in transition
            }
            for transition in transitions
        ]
    if "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]
        }
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = dict(rule["NoncurrentVersionExpiration"])
    noncurrent_transitions = rule.get("NoncurrentVersionTransitions") or []
    if noncurrent_transitions:
        converted["NoncurrentVersionTransition"] = [
            {"NoncurrentDays": item["TransitionInDays"], "StorageClass": item["StorageClass"]}
            for item in noncurrent_transitions
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = dict(rule["AbortIncompleteMultipartUpload"])
    return converted


class BucketPolicy(S3Handler, CloudFormationModel):
    TYPE = "AWS::S3::BucketPolicy"
    CREATE_ONLY = ("Bucket",)
    ATTRIBUTES = ()  # no GetAtt on the real type; Ref is the bucket name

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "Bucket", "PolicyDocument")
        self.physical_id = properties["Bucket"]
        self.update({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.backend.put_bucket_policy(
            self.physical_id, json_text(new["PolicyDocument"]).encode("utf-8")
        )

    def destroy(self) -> None:
        ignore_missing(lambda: self.backend.delete_bucket_policy(self.physical_id), MissingBucket)
