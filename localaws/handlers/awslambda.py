"""CloudFormation handlers for Lambda functions and their permissions, backed by moto's Lambda backend.

moto's own handlers: a function ignored `Tags`, `Layers`, `Architectures`, `LoggingConfig` …,
took generated names longer than Lambda's 64 characters, and updated a renamed function in place;
a permission had no statement id of its own (so no `Ref`), could not be deleted and stayed in the
function's policy after the stack was gone. Neither recorded events or was checked against the
stack's role. Here a function is created through CreateFunction (with the checks of
localaws/lambda_functions.py: a role Lambda can assume, a readable .zip package), updated in place
(configuration, code, tags, reserved concurrency) and replaced when its name or package type
changes; a permission is a statement (`Sid` = the physical id, `<stack>-<LogicalId>-<RANDOM>`) in
the function's resource policy, replaced when any property changes, removed with the resource.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.awslambda.exceptions import (
    GenericResourcNotFound,
    UnknownFunctionException,
    UnknownPolicyException,
)
from moto.awslambda.models import LambdaBackend, LambdaFunction, make_function_arn
from moto.awslambda.utils import get_backend
from moto.core.common_models import CloudFormationModel

from .base import ResourceHandler, ignore_missing, require, tag_dict

# Properties moto's UpdateFunctionConfiguration applies, with the value an unset one returns to.
CONFIGURATION_DEFAULTS: dict[str, Any] = {
    "Description": "",
    "Handler": None,
    "MemorySize": 128,
    "Role": None,
    "Runtime": None,
    "Timeout": 3,
    "VpcConfig": None,
    "Environment": {"Variables": {}},
    "Layers": [],
    "LoggingConfig": None,
}
INTEGERS = ("MemorySize", "Timeout", "ReservedConcurrentExecutions")


class LambdaHandler(ResourceHandler):
    @property
    def backend(self) -> LambdaBackend:
        return get_backend(self.account_id, self.region_name)


class Function(LambdaHandler, CloudFormationModel):
    TYPE = "AWS::Lambda::Function"
    NAME_PROPERTY = "FunctionName"
    NAME_MAX_LENGTH = 64
    CREATE_ONLY = ("FunctionName", "PackageType", "TenancyConfig")
    ATTRIBUTES = ("Arn", "SnapStartResponse")

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "Code", "Role")
        properties = numbers(properties)
        spec: dict[str, Any] = {
            "FunctionName": name,
            "Code": package(properties["Code"], properties.get("Runtime")),
            "Role": properties["Role"],
        }
        for key in (
            "Handler",
            "Runtime",
            "Description",
            "MemorySize",
            "Timeout",
            "Environment",
            "Layers",
            "Architectures",
            "EphemeralStorage",
            "TracingConfig",
            "VpcConfig",
            "KmsKeyArn",
            "PackageType",
            "ImageConfig",
            "LoggingConfig",
            "ReservedConcurrentExecutions",
            "CodeSigningConfigArn",
        ):
            if properties.get(key) is not None:
                spec[key] = properties[key]
        if properties.get("Tags"):
            spec["Tags"] = tag_dict(properties)
        self.backend.create_function(spec)
        self.physical_id = name

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        old, new = numbers(old), numbers(new)
        body = {
            key: new.get(key, default)
            for key, default in CONFIGURATION_DEFAULTS.items()
            if old.get(key) != new.get(key)
        }
        if "Environment" in body:
            body["Environment"] = {"Variables": (body["Environment"] or {}).get("Variables") or {}}
        if body:
            self.backend.update_function_configuration(self.physical_id, None, body)
        fn = self.function
        if old.get("Architectures") != new.get("Architectures"):
            fn.architectures = new.get("Architectures") or ["x86_64"]
        if old.get("EphemeralStorage") != new.get("EphemeralStorage"):
            fn.ephemeral_storage = int((new.get("EphemeralStorage") or {}).get("Size", 512))
        if old.get("TracingConfig") != new.get("TracingConfig"):
            fn.tracing_config = new.get("TracingConfig") or {"Mode": "PassThrough"}
        if old.get("KmsKeyArn") != new.get("KmsKeyArn"):
            fn.kms_key_arn = new.get("KmsKeyArn")
        if old.get("Code") != new.get("Code"):
            self.backend.update_function_code(
                self.physical_id, None, package(new["Code"], new.get("Runtime"))
            )
        if old.get("Tags") != new.get("Tags"):
            fn.tags = tag_dict(new)
        if old.get("ReservedConcurrentExecutions") != new.get("ReservedConcurrentExecutions"):
            if new.get("ReservedConcurrentExecutions") is None:
                self.backend.delete_function_concurrency(self.physical_id)
            else:
                self.backend.put_function_concurrency(
                    self.physical_id, str(new["ReservedConcurrentExecutions"])
                )

    def destroy(self) -> None:
        ignore_missing(lambda: self.backend.delete_function(self.physical_id), UnknownFunctionException)

    @property
    def function(self) -> LambdaFunction:
        return self.backend.get_function(self.physical_id)

    def attribute(self, name: str) -> Any:
        if name == "Arn":
            return make_function_arn(self.region_name, self.account_id, self.physical_id)
        return {"ApplyOn": "None", "OptimizationStatus": "Off"}


class Permission(LambdaHandler, CloudFormationModel):
    """A statement of the function's resource-based policy; Ref and Id are its statement id."""

    TYPE = "AWS::Lambda::Permission"
    NAME_MAX_LENGTH = 100
    CREATE_ONLY = (
        "Action",
        "EventSourceToken",
        "FunctionName",
        "FunctionUrlAuthType",
        "InvokedViaFunctionUrl",
        "Principal",
        "PrincipalOrgID",
        "SourceAccount",
        "SourceArn",
    )
    ATTRIBUTES = ("Id",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "FunctionName", "Action", "Principal")
        statement = {"StatementId": name}
        for key in (
            "Action",
            "Principal",
            "SourceArn",
            "SourceAccount",
            "EventSourceToken",
            "PrincipalOrgID",
            "FunctionUrlAuthType",
        ):
            if properties.get(key) not in (None, ""):
                statement[key] = properties[key]
        self.backend.add_permission(properties["FunctionName"], None, json.dumps(statement))
        self.physical_id = name

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        pass  # every property is create-only: any change replaces the permission

    def destroy(self) -> None:
        ignore_missing(
            lambda: self.backend.remove_permission(self.properties["FunctionName"], self.physical_id),
            UnknownFunctionException,
            UnknownPolicyException,
            GenericResourcNotFound,
        )

    def attribute(self, name: str) -> Any:
        return self.physical_id

    def authorize(self, operation, properties, name, old=None, created=False) -> None:
        # The data's ARN template takes the function's name; the property may hold its ARN.
        super().authorize(
            operation,
            with_function_name(properties),
            name,
            with_function_name(old) if old is not None else None,
            created,
        )


def with_function_name(properties: dict[str, Any]) -> dict[str, Any]:
    """The properties with FunctionName as a bare name (from an ARN or a partial ARN)."""
    value = properties.get("FunctionName")
    if not isinstance(value, str) or ":" not in value:
        return properties
    parts = value.split(":")
    if value.startswith("arn:") and len(parts) >= 7:
        name = parts[6]
    elif len(parts) >= 3 and parts[1] == "function":
        name = parts[2]
    else:
        name = parts[0]
    return {**properties, "FunctionName": name}


def numbers(properties: dict[str, Any]) -> dict[str, Any]:
    """Integer properties as integers (a parameter passes them as text)."""
    converted = dict(properties)
    for key in INTEGERS:
        if isinstance(converted.get(key), str) and converted[key].strip().lstrip("-").isdigit():
            converted[key] = int(converted[key])
    storage = converted.get("EphemeralStorage")
    if isinstance(storage, dict) and isinstance(storage.get("Size"), str):
        converted["EphemeralStorage"] = {**storage, "Size": int(storage["Size"])}
    return converted


def package(code: dict[str, Any], runtime: str | None) -> dict[str, Any]:
    """The `Code` property as CreateFunction's `Code` (UpdateFunctionCode's body).

    Inline `ZipFile` source becomes a package holding `index.py` (or `index.js` for Node.js) and,
    for Python and Node.js, the `cfnresponse` module, as CloudFormation packages it."""
    if code.get("ZipFile") is not None:
        source = code["ZipFile"]
        if runtime and runtime.startswith("nodejs"):
            import io
            import zipfile

            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("index.js", source)
            archive_bytes = buffer.getvalue()
        else:
            archive_bytes = LambdaFunction._create_zipfile_from_plaintext_code(source)
        return {"ZipFile": base64.b64encode(archive_bytes).decode("ascii")}
    found = {key: code[key] for key in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri") if code.get(key)}
    return found
