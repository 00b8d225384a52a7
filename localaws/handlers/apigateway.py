"""CloudFormation handlers for API Gateway REST APIs, resources, methods, deployments, stages, account.

Backed by moto's API Gateway backend, so get_rest_api, get_resources, get_method (with its
integration), get_deployment and get_stage see what a stack made. A stack deleting an
AWS::ApiGateway::Account leaves the account settings as they are, as on AWS.
"""

from __future__ import annotations

from typing import Any

from moto.apigateway.exceptions import NotFoundException, StageStillActive
from moto.apigateway.models import APIGatewayBackend, apigateway_backends
from moto.apigateway.models import Stage as MotoStage
from moto.core.common_models import CloudFormationModel

from .base import ResourceHandler, changed, ignore_missing, json_text, require, tag_dict


class APIGatewayHandler(ResourceHandler):
    @property
    def backend(self) -> APIGatewayBackend:
        return apigateway_backends[self.account_id][self.region_name]

    def api(self, api_id: str):
        return self.backend.get_rest_api(api_id)


class RestApi(APIGatewayHandler, CloudFormationModel):
    TYPE = "AWS::ApiGateway::RestApi"
    ATTRIBUTES = ("RestApiId", "RootResourceId")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        if not properties.get("Name") and not properties.get("Body"):
            require(properties, self.TYPE, "Name")
        api = self.backend.create_rest_api(
            name=properties.get("Name", name),
            description=properties.get("Description", ""),
            api_key_source=properties.get("ApiKeySourceType"),
            endpoint_configuration=endpoint_configuration(properties),
            tags=tag_dict(properties),
            policy=json_text(properties["Policy"]) if properties.get("Policy") else None,
            minimum_compression_size=properties.get("MinimumCompressionSize"),
            disable_execute_api_endpoint=properties.get("DisableExecuteApiEndpoint"),
        )
        self.physical_id = api.id
        api.binaryMediaTypes = list(properties.get("BinaryMediaTypes") or [])
        if properties.get("Body"):
            self.backend.put_rest_api(
                api.id, properties["Body"], bool(properties.get("FailOnWarnings")), mode="overwrite"
            )

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        api = self.api(self.physical_id)
        api.name = new.get("Name", api.name)
        api.description = new.get("Description", "")
        api.binaryMediaTypes = list(new.get("BinaryMediaTypes") or [])
        api.policy = json_text(new["Policy"]) if new.get("Policy") else None
        api.minimum_compression_size = new.get("MinimumCompressionSize")
        api.disableExecuteApiEndpoint = bool(new.get("DisableExecuteApiEndpoint", False))
        api.api_key_source = new.get("ApiKeySourceType") or "HEADER"
        api.endpoint_configuration = endpoint_configuration(new) or {"types": ["EDGE"]}
        api.tags = tag_dict(new)
        if changed(old, new, "Body") and new.get("Body"):
            self.backend.put_rest_api(
                api.id, new["Body"], bool(new.get("FailOnWarnings")), mode="overwrite"
            )

    def destroy(self) -> None:
        # Deleting the API takes its resources, methods, deployments and stages with it.
        self.backend.apis.pop(self.physical_id, None)

    def attribute(self, name: str) -> Any:
        return {
            "RestApiId": self.physical_id,
            "RootResourceId": self.api(self.physical_id).root_resource_id,
        }[name]


def endpoint_configuration(properties: dict[str, Any]) -> dict[str, Any] | None:
    configuration = properties.get("EndpointConfiguration")
    if not configuration:
        return None
    converted: dict[str, Any] = {"types": list(configuration.get("Types") or ["EDGE"])}
    if configuration.get("VpcEndpointIds"):
        converted["vpcEndpointIds"] = list(configuration["VpcEndpointIds"])
    return converted


class Resource(APIGatewayHandler, CloudFormationModel):
    TYPE = "AWS::ApiGateway::Resource"
    CREATE_ONLY = ("ParentId", "PathPart", "RestApiId")
    ATTRIBUTES = ("ResourceId",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "ParentId", "PathPart", "RestApiId")
        self.api_id = properties["RestApiId"]
        resource = self.backend.create_resource(
            self.api_id, properties["ParentId"], properties["PathPart"]
        )
        self.physical_id = resource.id

    def destroy(self) -> None:
        api = self.backend.apis.get(self.api_id)
        if api is not None:
            api.resources.pop(self.physical_id, None)

    def attribute(self, name: str) -> Any:
        return self.physical_id


class Method(APIGatewayHandler, CloudFormationModel):
    """A method with its integration and responses; Ref is a generated id, as on AWS."""

    TYPE = "AWS::ApiGateway::Method"
    CREATE_ONLY = ("RestApiId", "ResourceId", "HttpMethod")
    ATTRIBUTES = ()

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "RestApiId", "ResourceId", "HttpMethod")
        self.physical_id = name
        self.target = (properties["RestApiId"], properties["ResourceId"], properties["HttpMethod"])
        self.put(properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        # PutMethod replaces the method's settings; its integration and responses are put again.
        self.backend.delete_method(*self.target)
        self.put(new)

    def put(self, properties: dict[str, Any]) -> None:
        api_id, resource_id, http_method = self.target
        self.backend.put_method(
            api_id,
            resource_id,
            http_method,
            properties.get("AuthorizationType", "NONE"),
            api_key_required=properties.get("ApiKeyRequired"),
            request_parameters=properties.get("RequestParameters"),
            request_models=properties.get("RequestModels"),
            operation_name=properties.get("OperationName"),
            authorizer_id=properties.get("AuthorizerId"),
            authorization_scopes=properties.get("AuthorizationScopes"),
            request_validator_id=properties.get("RequestValidatorId"),
        )
        for response in properties.get("MethodResponses") or []:
            self.backend.put_method_response(
                api_id,
                resource_id,
                http_method,
                str(response["StatusCode"]),
                response.get("ResponseModels"),
                response.get("ResponseParameters"),
            )
        integration = properties.get("Integration")
        if not integration:
            return
        self.backend.put_integration(
            api_id,
            resource_id,
            http_method,
            integration["Type"],
            integration.get("Uri"),
            integration.get("IntegrationHttpMethod"),
            credentials=integration.get("Credentials"),
            request_templates=integration.get("RequestTemplates"),
            passthrough_behavior=integration.get("PassthroughBehavior"),
            cache_namespace=integration.get("CacheNamespace"),
            timeout_in_millis=integration.get("TimeoutInMillis"),
            request_parameters=integration.get("RequestParameters"),
            content_handling=integration.get("ContentHandling"),
            connection_type=integration.get("ConnectionType"),
        )
        for response in integration.get("IntegrationResponses") or []:
            self.backend.put_integration_response(
                api_id,
                resource_id,
                http_method,
                str(response["StatusCode"]),
                response.get("SelectionPattern"),
                response.get("ResponseTemplates"),
                response.get("ResponseParameters"),
                content_handling=response.get("ContentHandling"),
            )

    def destroy(self) -> None:
        ignore_missing(
            lambda: self.backend.delete_method(*self.target), NotFoundException, KeyError
        )


class Deployment(APIGatewayHandler, CloudFormationModel):
    TYPE = "AWS::ApiGateway::Deployment"
    CREATE_ONLY = ("DeploymentCanarySettings", "RestApiId")
    ATTRIBUTES = ("DeploymentId",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "RestApiId")
        self.api_id = properties["RestApiId"]
        self.stage_name = properties.get("StageName") or ""
        deployment = self.backend.create_deployment(
            self.api_id, self.stage_name, properties.get("Description", "")
        )
        self.physical_id = deployment.id
        if self.stage_name:
            describe_stage(self.api(self.api_id).stages[self.stage_name], properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        api = self.api(self.api_id)
        api.deployments[self.physical_id].description = new.get("Description", "")
        stage_name = new.get("StageName") or ""
        if stage_name and stage_name not in api.stages:
            self.backend.create_stage(self.api_id, stage_name, self.physical_id)
        if stage_name:
            describe_stage(api.stages[stage_name], new)
        self.stage_name = stage_name

    def destroy(self) -> None:
        api = self.backend.apis.get(self.api_id)
        if api is None or self.physical_id not in api.deployments:
            return
        stage = api.stages.get(self.stage_name)
        if stage is not None and stage.deployment_id == self.physical_id:
            # The stage this deployment created through StageName goes with it.
            api.stages.pop(self.stage_name)
        if any(stage.deployment_id == self.physical_id for stage in api.stages.values()):
            # As on AWS: a stage still points here; moto's engine retries once the stage is deleted.
            raise StageStillActive()
        api.deployments.pop(self.physical_id)

    def attribute(self, name: str) -> Any:
        return self.physical_id


def describe_stage(stage: MotoStage, properties: dict[str, Any]) -> None:
    """Applies a Deployment's StageDescription to the stage its StageName created."""
    description = properties.get("StageDescription") or {}
    stage.description = description.get("Description", "")
    stage.variables = dict(description.get("Variables") or {})
    stage.tracing_enabled = description.get("TracingEnabled")
    stage.cache_cluster_enabled = description.get("CacheClusterEnabled", False)
    stage.tags = tag_dict(description)
    stage.method_settings = {}
    stage.access_log_settings = None
    configure_stage(stage, description)


class Stage(APIGatewayHandler, CloudFormationModel):
    TYPE = "AWS::ApiGateway::Stage"
    NAME_PROPERTY = "StageName"
    NAME_MAX_LENGTH = 128
    CREATE_ONLY = ("RestApiId", "StageName")
    ATTRIBUTES = ()  # Ref is the stage name; the real type has no GetAtt attributes

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "RestApiId", "DeploymentId")
        self.api_id = properties["RestApiId"]
        stage = self.backend.create_stage(
            self.api_id,
            name,
            properties["DeploymentId"],
            variables=dict(properties.get("Variables") or {}),
            description=properties.get("Description", ""),
            cacheClusterEnabled=properties.get("CacheClusterEnabled", False),
            cacheClusterSize=properties.get("CacheClusterSize"),
            tags=tag_dict(properties),
            tracing_enabled=properties.get("TracingEnabled"),
        )
        self.physical_id = name
        configure_stage(stage, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        stage = self.backend.get_stage(self.api_id, self.physical_id)
        stage.deployment_id = new["DeploymentId"]
        stage.variables = dict(new.get("Variables") or {})
        stage.description = new.get("Description", "")
        stage.cache_cluster_enabled = new.get("CacheClusterEnabled", False)
        stage.cache_cluster_size = new.get("CacheClusterSize")
        stage.tracing_enabled = new.get("TracingEnabled")
        stage.tags = tag_dict(new)
        stage.method_settings = {}
        stage.access_log_settings = None
        configure_stage(stage, new)

    def destroy(self) -> None:
        api = self.backend.apis.get(self.api_id)
        if api is not None:
            api.stages.pop(self.physical_id, None)


def configure_stage(stage: MotoStage, settings: dict[str, Any]) -> None:
    """Applies MethodSettings and AccessLogSetting, which a Stage and a StageDescription share."""
    for setting in settings.get("MethodSettings") or []:
        path = setting.get("ResourcePath", "/*")
        # The API's key for "/*" and "*" is "*/*"; other paths escape "/" as "~1".
        resource = "*" if path == "/*" else path.lstrip("/").replace("/", "~1")
        key = f"{resource}/{setting.get('HttpMethod', '*')}"
        entry = stage._get_default_method_settings()
        for source, target in (
            ("MetricsEnabled", "metricsEnabled"),
            ("LoggingLevel", "loggingLevel"),
            ("DataTraceEnabled", "dataTraceEnabled"),
            ("ThrottlingBurstLimit", "throttlingBurstLimit"),
            ("ThrottlingRateLimit", "throttlingRateLimit"),
            ("CachingEnabled", "cachingEnabled"),
            ("CacheTtlInSeconds", "cacheTtlInSeconds"),
            ("CacheDataEncrypted", "cacheDataEncrypted"),
        ):
            if source in setting:
                entry[target] = setting[source]
        stage.method_settings[key] = entry
    access_log = settings.get("AccessLogSetting")
    if access_log:
        stage.access_log_settings = {
            "destinationArn": access_log.get("DestinationArn"),
            "format": access_log.get("Format"),
        }


class Account(APIGatewayHandler, CloudFormationModel):
    """The region's API Gateway settings; Ref and Id are a generated id, as on AWS."""

    TYPE = "AWS::ApiGateway::Account"
    ATTRIBUTES = ("Id",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        self.physical_id = name
        self.update({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.backend.update_account(
            [{"op": "replace", "path": "/cloudwatchRoleArn", "value": new.get("CloudWatchRoleArn")}]
        )

    def destroy(self) -> None:
        pass

    def attribute(self, name: str) -> Any:
        return self.physical_id
