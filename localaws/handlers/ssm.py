"""CloudFormation handler for SSM parameters, backed by moto's SSM backend.

An update overwrites the value in place (a new parameter version), as on AWS; moto's own handler
deletes and recreates the parameter, and names an unnamed one None.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel
from moto.ssm.exceptions import ParameterNotFound
from moto.ssm.models import SimpleSystemManagerBackend, ssm_backends

from .base import ResourceHandler, changed, ignore_missing, require, tag_dict


def parameter_tags(properties: dict[str, Any]) -> dict[str, str]:
    """This type's Tags is a map (`{key: value}`), unlike most types' list; both shapes are accepted."""
    tags = properties.get("Tags") or {}
    return (
        {key: str(value) for key, value in tags.items()}
        if isinstance(tags, dict)
        else tag_dict(properties)
    )


class Parameter(ResourceHandler, CloudFormationModel):
    TYPE = "AWS::SSM::Parameter"
    NAME_PROPERTY = "Name"
    NAME_MAX_LENGTH = 2048
    CREATE_ONLY = ("Name",)
    ATTRIBUTES = ("Arn", "Type", "Value", "Name")

    @property
    def backend(self) -> SimpleSystemManagerBackend:
        return ssm_backends[self.account_id][self.region_name]

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "Type", "Value")
        self.physical_id = name
        self.put(properties, overwrite=False)
        if properties.get("Tags"):
            self.backend.add_tags_to_resource("Parameter", name, parameter_tags(properties))

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.put(new, overwrite=True)
        if changed(old, new, "Tags"):
            self.backend.remove_tags_from_resource(
                "Parameter", self.physical_id, list(parameter_tags(old))
            )
            self.backend.add_tags_to_resource("Parameter", self.physical_id, parameter_tags(new))

    def put(self, properties: dict[str, Any], overwrite: bool) -> None:
        if properties["Type"] not in ("String", "StringList"):
            # moto would store a SecureString; CloudFormation cannot create one.
            raise ValidationError(
                message=f"Type {properties['Type']} is not supported by {self.TYPE}: "
                "use String or StringList"
            )
        self.backend.put_parameter(
            name=self.physical_id,
            description=properties.get("Description"),
            value=str(properties["Value"]),
            parameter_type=properties["Type"],
            allowed_pattern=properties.get("AllowedPattern"),
            keyid=None,
            overwrite=overwrite,
            tags=[],
            data_type=properties.get("DataType", "text"),
            tier=properties.get("Tier"),
            policies=properties.get("Policies"),
        )

    def destroy(self) -> None:
        ignore_missing(lambda: self.backend.delete_parameter(self.physical_id), ParameterNotFound)

    def attribute(self, name: str) -> Any:
        parameter = self.backend.get_parameter(self.physical_id)
        return {
            "Arn": f"arn:aws:ssm:{self.region_name}:{self.account_id}:parameter/"
            + self.physical_id.lstrip("/"),
            "Type": parameter.parameter_type,
            "Value": parameter.value,
            "Name": self.physical_id,
        }[name]
