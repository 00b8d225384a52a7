"""Checks Lambda makes on CreateFunction, UpdateFunctionConfiguration and UpdateFunctionCode that
moto does not, with Lambda's errors, so a function the emulator accepts is one AWS accepts:

- the execution role must exist (moto checks this) and its trust policy must let
  `lambda.amazonaws.com` call `sts:AssumeRole` (moto did not look at it): else
  `InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda.`;
- a .zip package must be a zip archive (`InvalidParameterValueException: Could not unzip uploaded
  file. Please check your file, then try to upload again.`), and one in S3 must exist (moto
  answered HTTP 500 for a missing bucket or key; Lambda: `Error occurred while GetObject. S3 Error
  Code: NoSuchKey. …`);
- environment variables must not use Lambda's reserved keys (`AWS_REGION`, `AWS_ACCESS_KEY_ID` …);
- `Timeout` is 1 to 900 seconds and `MemorySize` 128 to 10240 MB (`ValidationException`).

`LoggingConfig` is kept on the function (moto dropped it), so the runtime (lambda_runtime.py)
writes to its `LogGroup`, and GetFunctionConfiguration returns it as Lambda does.
"""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

from moto.core.exceptions import JsonRESTError

from . import iam

LAMBDA_SERVICE = "lambda.amazonaws.com"
_installed = False


class InvalidParameterValueException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidParameterValueException", message)


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("ValidationException", message)


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    create_function = LambdaBackend.create_function
    update_configuration = LambdaBackend.update_function_configuration
    update_code = LambdaBackend.update_function_code
    get_configuration = LambdaFunction.get_configuration

    def checked_create(self: Any, spec: dict[str, Any]) -> Any:
        check_configuration(self.account_id, spec, spec.get("FunctionName") or "")
        if spec.get("PackageType", "Zip") == "Zip":
            check_code(self.account_id, self.region_name, spec.get("Code") or {})
        fn = create_function(self, spec)
        fn.logging_config = logging_config(spec.get("LoggingConfig"), fn.function_name)
        return fn

    def checked_update_configuration(self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        fn = self.get_function(function_name, qualifier)
        check_configuration(self.account_id, body, fn.function_name)
        if "LoggingConfig" in body:
            fn.logging_config = logging_config(body["LoggingConfig"], fn.function_name)
        return update_configuration(self, function_name, qualifier, body)

    def checked_update_code(self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        fn = self.get_function(function_name, qualifier)
        if fn.package_type == "Zip" and not body.get("DryRun"):
            check_code(self.account_id, self.region_name, body)
        return update_code(self, function_name, qualifier, body)

    def configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = get_configuration(self, on_create)
        config["LoggingConfig"] = getattr(self, "logging_config", None) or logging_config(
            None, self.function_name
        )
        return config

    LambdaBackend.create_function = checked_create
    LambdaBackend.update_function_configuration = checked_update_configuration
    LambdaBackend.update_function_code = checked_update_code
    LambdaFunction.get_configuration = configuration
    _installed = True


def logging_config(given: dict[str, Any] | None, function_name: str) -> dict[str, Any]:
    """LoggingConfig as GetFunctionConfiguration returns it: Text format and the default group
    unless set."""
    config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"}
    config.update({key: value for key, value in (given or {}).items() if value})
    return config


def check_configuration(account: str, spec: dict[str, Any], function_name: str) -> None:
    from .lambda_runtime import RESERVED

    for key, low, high in (("Timeout", 1, 900), ("MemorySize", 128, 10240)):
        value = spec.get(key)
        if value is None:
            continue
        field = key[0].lower() + key[1:]
        if int(value) > high:
            raise ValidationException(
                f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
                f"constraint: Member must have value less than or equal to {high}"
            )
        if int(value) < low:
            raise ValidationException(
                f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
                f"constraint: Member must have value greater than or equal to {low}"
            )
    variables = ((spec.get("Environment") or {}).get("Variables")) or {}
    reserved = [key for key in variables if key in RESERVED]
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            f"for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    role_arn = spec.get("Role")
    if role_arn:
        check_role(account, role_arn)


def check_role(account: str, role_arn: str) -> None:
    """The role must exist and trust Lambda (a malformed ARN is left to moto's own check)."""
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        return
    partition = parts[1] or "aws"
    role = iam.find_role(parts[4], partition, role_arn)
    if role is None or not iam.trusts(role, LAMBDA_SERVICE, {"aws:SourceAccount": account}):
        raise InvalidParameterValueException(
            "The role defined for the function cannot be assumed by Lambda."
        )


def check_code(account: str, region: str, code: dict[str, Any]) -> None:
    """The package must be a zip archive Lambda can read."""
    from moto.s3.exceptions import MissingBucket, MissingKey
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    if "ZipFile" in code and code["ZipFile"] is not None:
        data = code["ZipFile"]
        if isinstance(data, str):
            data = data.encode("ascii", errors="ignore")
        try:
            data = base64.b64decode(data, validate=False)
        except ValueError:
            data = b""
    elif code.get("S3Bucket") and code.get("S3Key"):
        backend = s3_backends[account][get_partition(region)]
        try:
            key = backend.get_object(code["S3Bucket"], code["S3Key"], version_id=code.get("S3ObjectVersion"))
        except MissingBucket:
            raise InvalidParameterValueException(
                "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: "
                "The specified bucket does not exist"
            ) from None
        except MissingKey:
            key = None
        if key is None:
            raise InvalidParameterValueException(
                "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: "
                "The specified key does not exist."
            )
        data = key.value
    else:
        return
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise InvalidParameterValueException(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        )
