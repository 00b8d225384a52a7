"""The handlers cover every type the platform uses, and agree with CloudFormation's resource schemas."""

from __future__ import annotations

import pytest

# The resource types mlops-infra's templates use (the issue "A local AWS for the quick start").
PLATFORM_TYPES = """
AWS::KMS::Key AWS::KMS::Alias AWS::S3::Bucket AWS::S3::BucketPolicy AWS::IAM::Role AWS::IAM::Policy
AWS::IAM::ManagedPolicy AWS::SageMaker::ModelPackageGroup AWS::SageMaker::Pipeline AWS::SageMaker::Model
AWS::SageMaker::EndpointConfig AWS::SageMaker::Endpoint AWS::Events::Rule AWS::ApiGateway::RestApi
AWS::ApiGateway::Resource AWS::ApiGateway::Method AWS::ApiGateway::Deployment AWS::ApiGateway::Stage
AWS::ApiGateway::Account AWS::Logs::LogGroup AWS::CodeBuild::Project AWS::SNS::Topic AWS::SNS::TopicPolicy
AWS::CloudWatch::Alarm AWS::CloudWatch::Dashboard AWS::ApplicationAutoScaling::ScalableTarget
AWS::ApplicationAutoScaling::ScalingPolicy AWS::SSM::Parameter AWS::Lambda::Function
AWS::Lambda::Permission
""".split()

# Properties the documentation says replace the resource though the schema does not list them.
DOCUMENTED_REPLACEMENTS = {"AWS::KMS::Key": {"KeySpec", "KeyUsage", "MultiRegion", "Origin"}}


def test_every_platform_type_is_served_by_our_handler():
    from moto.cloudformation.parsing import get_model_map

    from localaws.handlers import HANDLERS

    assert sorted(HANDLERS) == sorted(PLATFORM_TYPES)
    model_map = get_model_map()
    for resource_type, handler in HANDLERS.items():
        assert model_map[resource_type] is handler, resource_type


@pytest.mark.parametrize("resource_type", PLATFORM_TYPES)
def test_getatt_attributes_and_create_only_properties_match_the_schema(resource_type: str):
    # cfn-lint carries AWS's resource provider schemas (localaws/requirements.txt pins it).
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    from localaws.handlers import HANDLERS

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type)
    handler = HANDLERS[resource_type]
    allowed = {name for name in schema.get_atts.keys() if "." not in name}
    read_only = {
        pointer.split("/")[2]
        for pointer in schema.schema.get("readOnlyProperties", [])
        if pointer.count("/") == 2
    }
    assert set(handler.ATTRIBUTES) <= allowed, "attributes the real type does not have"
    assert read_only & allowed <= set(handler.ATTRIBUTES), "attributes the real type has"
    create_only = {
        pointer.split("/")[2] for pointer in schema.schema.get("createOnlyProperties", [])
    }
    assert set(handler.CREATE_ONLY) == create_only | DOCUMENTED_REPLACEMENTS.get(
        resource_type, set()
    )
