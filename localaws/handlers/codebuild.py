"""CloudFormation handler for CodeBuild projects, backed by moto's CodeBuild backend.

CloudFormation spells project settings in PascalCase (`Source: {Type, BuildSpec}`), the CodeBuild API
in camelCase (`source: {type, buildspec}`); `api_shape` converts. moto has no UpdateProject, so an
update rebuilds the project record in place (keeping its creation date and build history).
"""

from __future__ import annotations

from typing import Any

from moto.codebuild.models import CodeBuild, CodeBuildBackend, codebuild_backends
from moto.core.common_models import CloudFormationModel
from moto.core.utils import unix_time

from .base import ResourceHandler, require, tag_list

# Keys whose API spelling is not just the first letter lowered.
API_KEY_EXCEPTIONS = {"BuildSpec": "buildspec"}


def api_shape(value: Any) -> Any:
    """CloudFormation's PascalCase property tree as the CodeBuild API's camelCase one."""
    if isinstance(value, dict):
        return {
            API_KEY_EXCEPTIONS.get(key, key[:1].lower() + key[1:]): api_shape(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [api_shape(item) for item in value]
    return value


class Project(ResourceHandler, CloudFormationModel):
    TYPE = "AWS::CodeBuild::Project"
    NAME_PROPERTY = "Name"
    CREATE_ONLY = ("Name",)
    ATTRIBUTES = ("Arn", "Id")

    @property
    def backend(self) -> CodeBuildBackend:
        return codebuild_backends[self.account_id][self.region_name]

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "Artifacts", "ServiceRole", "Environment", "Source")
        self.physical_id = name
        self.backend.codebuild_projects[name] = self.record(properties)
        self.backend.build_history.setdefault(name, [])

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        created = self.backend.codebuild_projects[self.physical_id].project_metadata["created"]
        project = self.record(new)
        project.project_metadata["created"] = created
        project.project_metadata["lastModifiedDate"] = unix_time()
        self.backend.codebuild_projects[self.physical_id] = project

    def record(self, properties: dict[str, Any]) -> CodeBuild:
        project = CodeBuild(
            self.account_id,
            self.region_name,
            project_name=self.physical_id,
            description=properties.get("Description"),
            project_source=api_shape(properties["Source"]),
            artifacts=api_shape(properties["Artifacts"]),
            environment=api_shape(properties["Environment"]),
            serviceRole=properties["ServiceRole"],
            tags=[{"key": tag["Key"], "value": tag["Value"]} for tag in tag_list(properties)],
            cache=api_shape(properties.get("Cache")),
            timeout=properties.get("TimeoutInMinutes", 60),
            queued_timeout=properties.get("QueuedTimeoutInMinutes", 480),
            source_version=properties.get("SourceVersion"),
            logs_config=api_shape(properties.get("LogsConfig")),
            vpc_config=api_shape(properties.get("VpcConfig")),
        )
        if properties.get("EncryptionKey"):
            project.project_metadata["encryptionKey"] = properties["EncryptionKey"]
        if properties.get("ConcurrentBuildLimit"):
            project.project_metadata["concurrentBuildLimit"] = properties["ConcurrentBuildLimit"]
        return project

    def destroy(self) -> None:
        self.backend.codebuild_projects.pop(self.physical_id, None)
        self.backend.build_history.pop(self.physical_id, None)

    def attribute(self, name: str) -> Any:
        return {
            "Arn": self.backend.codebuild_projects[self.physical_id].arn,
            "Id": self.physical_id,
        }[name]
