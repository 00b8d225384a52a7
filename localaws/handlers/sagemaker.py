"""CloudFormation handlers for SageMaker: pipelines, model package groups, models, endpoints.

Backed by moto's SageMaker backend, so `describe_pipeline`, `describe_model`, `describe_endpoint` etc.
answer for what a stack created. moto 5.2.5 has no DeleteModelPackageGroup and no model package
group policy API: the group is removed from moto's store directly, and the policy is only kept here.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel
from moto.core.utils import utcnow
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ValidationError as SageMakerValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.utilities.utils import get_partition

from .base import ResourceHandler, ignore_missing, require, tag_list


class SageMakerHandler(ResourceHandler):
    """Shared access to moto's SageMaker backend and to the tags every SageMaker type carries."""

    NAME_MAX_LENGTH = 63

    @property
    def backend(self) -> SageMakerModelBackend:
        return sagemaker_backends[self.account_id][self.region_name]

    def retag(self, arn: str, new: dict[str, Any]) -> None:
        self.backend._get_resource_from_arn(arn).tags = tag_list(new)


class Pipeline(SageMakerHandler, CloudFormationModel):
    TYPE = "AWS::SageMaker::Pipeline"
    NAME_PROPERTY = "PipelineName"
    NAME_MAX_LENGTH = 256
    CREATE_ONLY = ("PipelineName",)
    ATTRIBUTES = ()  # the real type has no GetAtt attributes; Ref is the pipeline name

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "PipelineName", "PipelineDefinition", "RoleArn")
        self.backend.create_pipeline(
            pipeline_name=name,
            pipeline_display_name=properties.get("PipelineDisplayName"),
            pipeline_definition=self.definition(properties["PipelineDefinition"]),
            pipeline_definition_s3_location=None,
            pipeline_description=properties.get("PipelineDescription"),
            role_arn=properties["RoleArn"],
            tags=tag_list(properties),
            parallelism_configuration=properties.get("ParallelismConfiguration"),
        )
        self.physical_id = name

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        pipeline = self.backend.pipelines[self.physical_id]
        # Set directly: moto's update_pipeline skips empty values, so a removed description would stay.
        pipeline.pipeline_definition = self.definition(new["PipelineDefinition"])
        pipeline.pipeline_display_name = new.get("PipelineDisplayName") or self.physical_id
        pipeline.pipeline_description = new.get("PipelineDescription")
        pipeline.role_arn = new["RoleArn"]
        pipeline.parallelism_configuration = new.get("ParallelismConfiguration")
        pipeline.tags = tag_list(new)
        pipeline.last_modified_time = utcnow()

    def destroy(self) -> None:
        ignore_missing(
            lambda: self.backend.delete_pipeline(self.physical_id), SageMakerValidationError
        )

    def definition(self, value: Any) -> str:
        """The definition as JSON text, from `PipelineDefinitionBody` or an S3 object in moto's S3."""
        if not isinstance(value, dict) or len(value) != 1:
            raise ValidationError(
                message="PipelineDefinition must hold exactly one of PipelineDefinitionBody or "
                "PipelineDefinitionS3Location"
            )
        if "PipelineDefinitionBody" in value:
            body = value["PipelineDefinitionBody"]
            if not isinstance(body, str):
                # As on AWS: the schema types the body as a string (use Fn::Sub or Fn::ToJsonString).
                raise ValidationError(
                    message="PipelineDefinitionBody must be a string holding the JSON definition, "
                    f"not {type(body).__name__}"
                )
        elif "PipelineDefinitionS3Location" in value:
            location = value["PipelineDefinitionS3Location"]
            require(location, "PipelineDefinitionS3Location", "Bucket", "Key")
            s3 = s3_backends[self.account_id][get_partition(self.region_name)]
            stored = s3.get_object(
                location["Bucket"], location["Key"], version_id=location.get("Version")
            )
            if stored is None:
                raise ValidationError(
                    message=f"s3://{location['Bucket']}/{location['Key']} does not exist"
                )
            body = stored.value.decode("utf-8")
        else:
            raise ValidationError(message=f"unknown PipelineDefinition key {next(iter(value))}")
        try:
            json.loads(body)
        except ValueError as error:
            raise ValidationError(
                message=f"the pipeline definition is not valid JSON: {error}"
            ) from error
        return body


class ModelPackageGroup(SageMakerHandler, CloudFormationModel):
    TYPE = "AWS::SageMaker::ModelPackageGroup"
    NAME_PROPERTY = "ModelPackageGroupName"
    CREATE_ONLY = ("ModelPackageGroupName", "ModelPackageGroupDescription")
    ATTRIBUTES = ("ModelPackageGroupArn", "CreationTime", "ModelPackageGroupStatus")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "ModelPackageGroupName")
        self.physical_id = self.backend.create_model_package_group(
            model_package_group_name=name,
            model_package_group_description=properties.get("ModelPackageGroupDescription"),
            tags=tag_list(properties),
        )
        self.name = name
        # No moto API stores or returns a group policy; this record is all there is.
        self.policy = properties.get("ModelPackageGroupPolicy")

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.retag(self.physical_id, new)
        self.policy = new.get("ModelPackageGroupPolicy")

    def destroy(self) -> None:
        self.backend.model_package_groups.pop(self.name, None)

    def attribute(self, name: str) -> Any:
        group = self.backend.describe_model_package_group(self.name)
        return {
            "ModelPackageGroupArn": group.arn,
            "CreationTime": group.creation_time,
            "ModelPackageGroupStatus": group.model_package_group_status,
        }[name]


class Model(SageMakerHandler, CloudFormationModel):
    TYPE = "AWS::SageMaker::Model"
    NAME_PROPERTY = "ModelName"
    CREATE_ONLY = (
        "ExecutionRoleArn",
        "EnableNetworkIsolation",
        "InferenceExecutionConfig",
        "PrimaryContainer",
        "ModelName",
        "VpcConfig",
        "Containers",
    )
    ATTRIBUTES = ("ModelArn", "ModelName")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        if not properties.get("PrimaryContainer") and not properties.get("Containers"):
            raise ValidationError(message=f"{self.TYPE} needs PrimaryContainer or Containers")
        model = self.backend.create_model(
            model_name=name,
            execution_role_arn=properties.get("ExecutionRoleArn"),
            primary_container=properties.get("PrimaryContainer"),
            vpc_config=properties.get("VpcConfig"),
            containers=properties.get("Containers"),
            tags=tag_list(properties),
        )
        self.name = name
        self.physical_id = model.arn

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.retag(self.physical_id, new)

    def destroy(self) -> None:
        self.backend._models.pop(self.name, None)

    def attribute(self, name: str) -> Any:
        return {"ModelArn": self.physical_id, "ModelName": self.name}[name]


class EndpointConfig(SageMakerHandler, CloudFormationModel):
    TYPE = "AWS::SageMaker::EndpointConfig"
    NAME_PROPERTY = "EndpointConfigName"
    CREATE_ONLY = (
        "KmsKeyId",
        "AsyncInferenceConfig",
        "ExecutionRoleArn",
        "ShadowProductionVariants",
        "EnableNetworkIsolation",
        "ProductionVariants",
        "DataCaptureConfig",
        "ExplainerConfig",
        "MetricsConfig",
        "EndpointConfigName",
        "VpcConfig",
    )
    ATTRIBUTES = ("EndpointConfigArn", "EndpointConfigName")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "ProductionVariants")
        config = self.backend.create_endpoint_config(
            endpoint_config_name=name,
            production_variants=properties["ProductionVariants"],
            data_capture_config=properties.get("DataCaptureConfig") or {},
            async_inference_config=properties.get("AsyncInferenceConfig") or {},
            tags=tag_list(properties),
            kms_key_id=properties.get("KmsKeyId"),
        )
        self.name = name
        self.physical_id = config.endpoint_config_arn

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.retag(self.physical_id, new)

    def destroy(self) -> None:
        self.backend.endpoint_configs.pop(self.name, None)

    def attribute(self, name: str) -> Any:
        return {"EndpointConfigArn": self.physical_id, "EndpointConfigName": self.name}[name]


class Endpoint(SageMakerHandler, CloudFormationModel):
    TYPE = "AWS::SageMaker::Endpoint"
    NAME_PROPERTY = "EndpointName"
    CREATE_ONLY = ("EndpointName",)
    ATTRIBUTES = ("EndpointArn", "EndpointName")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "EndpointConfigName")
        endpoint = self.backend.create_endpoint(
            endpoint_name=name,
            endpoint_config_name=properties["EndpointConfigName"],
            tags=tag_list(properties),
        )
        self.name = name
        self.physical_id = endpoint.arn

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        endpoint = self.backend.endpoints[self.name]
        if old.get("EndpointConfigName") != new.get("EndpointConfigName"):
            # What UpdateEndpoint does (moto has no update_endpoint): switch to the new config's variants.
            config = self.backend.describe_endpoint_config(new["EndpointConfigName"])
            endpoint.endpoint_config_name = new["EndpointConfigName"]
            endpoint.production_variants = endpoint._process_production_variants(
                config["ProductionVariants"]
            )
            endpoint.data_capture_config = config["DataCaptureConfig"]
            endpoint.last_modified_time = utcnow()
        endpoint.tags = tag_list(new)

    def destroy(self) -> None:
        self.backend.endpoints.pop(self.name, None)

    def attribute(self, name: str) -> Any:
        return {"EndpointArn": self.physical_id, "EndpointName": self.name}[name]
