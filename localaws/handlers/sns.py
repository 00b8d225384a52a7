"""CloudFormation handlers for SNS topics and topic policies, backed by moto's SNS backend.

A topic update changes its attributes, subscriptions and tags in place (moto's own handler deletes
and recreates the topic, losing its subscriptions and policy). Deleting a topic policy restores each
topic's default policy, as on AWS.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.sns.exceptions import TopicNotFound
from moto.sns.models import SNSBackend, sns_backends

from .base import ResourceHandler, ignore_missing, json_text, require, tag_dict

# Topic properties that are SNS topic attributes, with moto's attribute names.
TOPIC_ATTRIBUTES = {
    "DisplayName": "display_name",
    "KmsMasterKeyId": "kms_master_key_id",
    "FifoTopic": "fifo_topic",
    "ContentBasedDeduplication": "content_based_deduplication",
    "SignatureVersion": "signature_version",
    "TracingConfig": "tracing_config",
}


class SNSHandler(ResourceHandler):
    @property
    def backend(self) -> SNSBackend:
        return sns_backends[self.account_id][self.region_name]


class Topic(SNSHandler, CloudFormationModel):
    TYPE = "AWS::SNS::Topic"
    NAME_PROPERTY = "TopicName"
    NAME_MAX_LENGTH = 256
    CREATE_ONLY = ("TopicName", "FifoTopic")
    ATTRIBUTES = ("TopicArn", "TopicName", "DisplayName")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        if properties.get("FifoTopic") and not name.endswith(".fifo"):
            name = f"{name[: self.NAME_MAX_LENGTH - 5]}.fifo"
        topic = self.backend.create_topic(name, tags=tag_dict(properties))
        self.name = name
        self.physical_id = topic.arn
        self.update({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        topic = self.backend.get_topic(self.physical_id)
        for key, attribute in TOPIC_ATTRIBUTES.items():
            if key in new or key in old:
                setattr(topic, attribute, new.get(key, "" if key != "FifoTopic" else False))
        topic._tags = tag_dict(new)
        wanted = {(item["Protocol"], item["Endpoint"]) for item in new.get("Subscription") or []}
        existing = {
            (subscription.protocol, subscription.endpoint): subscription.arn
            for subscription in self.backend._get_topic_subscriptions(topic)
        }
        for key, subscription_arn in existing.items():
            if key not in wanted:
                self.backend.unsubscribe(subscription_arn)
        for protocol, endpoint in sorted(wanted - existing.keys()):
            self.backend.subscribe(self.physical_id, endpoint, protocol)

    def destroy(self) -> None:
        self.backend.delete_topic(self.physical_id)

    def attribute(self, name: str) -> Any:
        return {
            "TopicArn": self.physical_id,
            "TopicName": self.name,
            "DisplayName": self.properties.get("DisplayName", ""),
        }[name]


class TopicPolicy(SNSHandler, CloudFormationModel):
    """Sets the policy of each topic listed; Ref and Id are a generated id."""

    TYPE = "AWS::SNS::TopicPolicy"
    ATTRIBUTES = ("Id",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "PolicyDocument", "Topics")
        self.physical_id = name
        self.update({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for topic_arn in set(old.get("Topics") or []) - set(new.get("Topics") or []):
            self.restore_default(topic_arn)
        for topic_arn in new["Topics"]:
            self.backend.set_topic_attribute(topic_arn, "policy", json_text(new["PolicyDocument"]))

    def destroy(self) -> None:
        for topic_arn in self.properties.get("Topics") or []:
            ignore_missing(
                lambda topic_arn=topic_arn: self.restore_default(topic_arn), TopicNotFound
            )

    def restore_default(self, topic_arn: str) -> None:
        topic = self.backend.get_topic(topic_arn)
        topic._policy_json = topic._create_default_topic_policy(
            self.region_name, self.account_id, topic.name
        )

    def attribute(self, name: str) -> Any:
        return self.physical_id
