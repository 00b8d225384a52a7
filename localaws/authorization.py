"""Direct API calls checked against the caller's IAM policies (`scripts/local-aws start
--enforce-iam`, which starts the server with moto's `INITIAL_NO_AUTH_ACTION_COUNT=0`).

moto's access control (moto/core/authorization.py, moto/iam/access_control.py) decides each request
once that count is reached. Against AWS it is wrong for the calls the platform makes, so its decision
is replaced here, keeping its gate (the count) and its signature check:

- Root credentials. moto looks the access key up among IAM users' keys and assumed-role sessions;
  the `testing` keys scripts/local-aws prints are neither, so moto refused every request made with
  them (InvalidClientTokenId). Here keys that are neither a user's nor a session's are the
  account's root, as plain credentials are everywhere else in the emulator, and root may do all.
  An assumed-role session of a role that does not exist in the emulator (moto lets AssumeRole
  succeed for any ARN) has no policies to evaluate and is treated as root too (logged).
- The resource. moto checks most actions against `*` only, so a policy scoped to ARNs (as the
  platform's roles are) allowed nothing. Here the resource ARN is derived from the request: moto's
  own resource when it has one (S3 buckets and objects, IAM, STS), else the action's resource types
  in data/iam-actions.tsv, filled from the request's parameters (a parameter holding an ARN of that
  type, or one named like the ARN format's placeholder). When none can be derived the request is
  checked against `*` (stricter than AWS) and logged.
- The action. IAM prefixes differ from signing names (CloudWatch signs as `monitoring`); API
  Gateway's IAM actions are the HTTP method on the path's ARN (`apigateway:GET` on
  `arn:aws:apigateway:us-east-1::/restapis/...`), not moto's operation name.
- The evaluation: iam.py (conditions, NotAction/NotResource, boundaries, session policies), where
  moto treated an unmatched condition as a Deny and ignored conditions it did not know. The error
  is AWS's AccessDenied (AccessDeniedException for JSON protocols) with its message.
- The signature. moto signs the request again over `request.data`, which werkzeug leaves empty for
  a form body (it parses it into `request.form`), so moto re-encoded the parsed parameters with
  botocore's `urlencode` (a space as `+`). A client that encodes otherwise (the Rust SDK writes
  `%20`) was refused with SignatureDoesNotMatch although AWS accepts its request. Here the body as
  it arrived (kept by `keep_wire_body`) is what the signature is checked over.
- The error's shape. moto's errors are `<ErrorResponse><Errors><Error>`, which neither the Query
  protocol (`<ErrorResponse><Error>`) nor EC2's (`<Response><Errors><Error>`) nor JSON is; SDKs
  other than botocore found no error code in it. Refusals are written in the request's protocol.
"""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.parse
import uuid
from typing import Any, Callable
from xml.sax.saxutils import escape

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError as RESTError
from moto.core.request import determine_request_protocol
from moto.core.utils import get_service_model
from moto.iam.access_control import IAMRequestBase, S3IAMRequest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.utilities.utils import get_partition

from . import handler_permissions, iam

logger = logging.getLogger("localaws")

# Signing name -> IAM action prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}
# Operations whose IAM action has another name (Lambda's Invoke is authorised as InvokeFunction).
IAM_ACTION = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeWithResponseStream": "lambda:InvokeFunction",
}
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
# Called as `resolver(action, parameters, region, account)` for a CloudFormation action scoped to
# stacks whose request names them indirectly (stack_refactor.py: a refactor's id, its stack
# definitions); the first list of ARNs answered is what the request is checked on.
STACK_RESOURCES: list[Callable[[str, dict[str, Any], str, str], list[str] | None]] = []
# The environ key holding a request's body as it arrived.
WIRE_BODY = "localaws.wire_body"
# Content types werkzeug parses into `request.form`, leaving `request.data` empty.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize
    IAMRequestBase._create_aws_request = _create_aws_request
    original_call = DomainDispatcherApplication.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        keep_wire_body(environ)
        return original_call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = call
    _installed = True


def keep_wire_body(environ: dict[str, Any]) -> None:
    """Reads a body werkzeug would parse away (a form) or moto would change (a compressed one)
    once, keeps its bytes in the environ and gives the application a stream of the same bytes."""
    content_type = (environ.get("CONTENT_TYPE") or "").lower()
    if not (content_type.startswith(FORM_TYPES) or environ.get("HTTP_CONTENT_ENCODING")):
        return
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        length = None
    if length is not None:
        body = stream.read(length) if length > 0 else b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()  # chunked: the server ends the stream
    else:
        return
    environ[WIRE_BODY] = body
    environ["wsgi.input"] = io.BytesIO(body)


def wire_body(response: Any) -> bytes | None:
    """The request's body exactly as the client sent (and signed) it, when known."""
    request = getattr(response, "normalized_request", None)
    environ = getattr(request, "environ", None) or {}
    if WIRE_BODY in environ:
        return environ[WIRE_BODY]
    content_type = (response.headers.get("Content-Type") or "").lower()
    if content_type.startswith(FORM_TYPES) or response.headers.get("Content-Encoding"):
        return None  # parsed or decompressed: not what was signed
    raw = getattr(response, "raw_body", None)
    return raw if isinstance(raw, bytes) else None


def _create_aws_request(self: Any) -> Any:
    """moto's IAMRequestBase._create_aws_request, over the body as it was sent when known.

    moto passed `body or data`: for an empty body (a GET) the parsed parameters, which botocore
    then encodes as a body the client never sent."""
    from botocore.awsrequest import AWSRequest

    wire = getattr(self, "_wire_body", None)
    if wire is None:
        return _moto_create_aws_request(self)
    signed_headers = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed_headers, self._headers)
    request = AWSRequest(method=self._method, url=self._path, data=wire, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


_moto_create_aws_request = IAMRequestBase._create_aws_request


def _authenticate_and_authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    try:
        _decide(self, iam_request_cls, resource)
    except RESTError as error:
        if issubclass(iam_request_cls, S3IAMRequest):
            raise  # S3's own error shape
        raise in_protocol(self, error) from None


def _decide(self: Any, iam_request_cls: type, resource: str) -> None:
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    authorization = self.headers.get("Authorization") or ""
    match = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/", authorization)
    if not match:
        raise access_denied(self, "Missing Authentication Token", "MissingAuthenticationTokenException")
    access_key, region, signing_name = match.groups()
    partition = get_partition(region)
    identity = iam.caller(access_key, self.current_account, partition)
    if identity.root:
        return
    # moto's request object finds the session's (or user's) secret and checks the signature.
    iam_request = iam_request_cls(
        account_id=self.current_account,
        method=self.method,
        path=self.raw_path + (f"?{self.uri.split('?', 1)[1]}" if "?" in self.uri else ""),
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=self._get_action(),
    )
    iam_request._wire_body = wire_body(self)
    iam_request.check_signature()
    action, derived = request_action(self, signing_name, region, partition)
    if action == "sts:GetCallerIdentity":
        return  # always allowed, even with an explicit Deny, as on AWS
    if resource != "*":
        resources = [resource]
    elif derived:
        resources = [derived]
    else:
        resources = resources_of(self, action, region, partition, identity.account)
    denial = next(
        (
            found
            for found in (
                iam.authorize(identity, action, arn, request_context(self, action, region))
                for arn in resources
            )
            if found is not None
        ),
        None,
    )
    if denial is None:
        return
    logger.info("localaws: %s", denial.message())
    if signing_name == "s3":
        iam_request._raise_access_denied()
    raise access_denied(self, denial.message())


def request_context(response: Any, action: str, region: str) -> dict[str, str]:
    """The condition keys a request carries: `aws:RequestedRegion`, and for a bucket listing the
    `prefix` it asks for as `s3:prefix` (absent when it asks for none, as on AWS: the S3 user
    guide's "Amazon S3 condition key examples", a listing without the prefix a policy names is
    not granted)."""
    context = {"aws:RequestedRegion": region}
    if action == "s3:ListBucket" and "?" in response.uri:
        query = urllib.parse.parse_qs(response.uri.split("?", 1)[1], keep_blank_values=True)
        if "prefix" in query:
            context["s3:prefix"] = query["prefix"][0]
    return context


def access_denied(response: Any, message: str, code: str | None = None) -> Exception:
    json_protocol = bool(response.headers.get("X-Amz-Target")) or "json" in (
        response.headers.get("Content-Type") or ""
    )
    if json_protocol:
        error = JsonRESTError(code or "AccessDeniedException", message)
    else:
        error = RESTError(code or "AccessDenied", message)
    error.code = 400 if json_protocol else 403
    return error


# moto's codes for a refused signature or key, and AWS's for JSON protocols.
JSON_CODES = {
    "SignatureDoesNotMatch": "InvalidSignatureException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "AccessDenied": "AccessDeniedException",
    "MissingAuthenticationToken": "MissingAuthenticationTokenException",
}
XML_CODES = {json_code: code for code, json_code in JSON_CODES.items()}


def protocol_of(response: Any) -> str | None:
    """The request's protocol as botocore names it (query, ec2, json, rest-json, rest-xml)."""
    content_type = response.headers.get("Content-Type") or ""
    if response.headers.get("X-Amz-Target") or "json" in content_type:
        return "json"
    try:
        model = get_service_model(response.boto3_service_name)
        return determine_request_protocol(model, content_type.split(";")[0].strip())
    except Exception:  # an unknown service or protocol: leave moto's error as it is
        return None


def in_protocol(response: Any, error: Any) -> Exception:
    """The refusal written as the request's protocol writes errors (moto wrote every one as
    `<ErrorResponse><Errors><Error>`)."""
    protocol = protocol_of(response)
    # call_action answers an authorisation error with these headers and the error's body.
    headers = getattr(response, "response_headers", None)
    headers = headers if isinstance(headers, dict) else {}
    code, message, status = error.error_type, error.message, error.code
    if protocol in ("json", "rest-json"):
        converted = JsonRESTError(JSON_CODES.get(code, code), message)
        headers["X-Amzn-ErrorType"] = converted.error_type
    elif protocol in ("query", "ec2", "rest-xml"):
        converted = RESTError(XML_CODES.get(code, code), message)
        converted.description = error_xml(protocol, XML_CODES.get(code, code), message)
    else:
        return error
    converted.code = status
    headers["Content-Type"] = converted.content_type
    return converted


def error_xml(protocol: str, code: str, message: str) -> str:
    """An error as the Query and REST-XML protocols (`<ErrorResponse><Error>`) or EC2's
    (`<Response><Errors><Error>`) write it; moto puts the request id into `<RequestId>`."""
    if protocol == "ec2":
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


def request_action(response: Any, signing_name: str, region: str, partition: str) -> tuple[str, str | None]:
    """The IAM action of the request, and its resource when the action itself fixes it."""
    prefix = IAM_PREFIX.get(signing_name, signing_name)
    if prefix == "apigateway":
        path = response.raw_path.split("?", 1)[0]
        return f"apigateway:{response.method}", f"arn:{partition}:apigateway:{region}::{path}"
    operation = response._get_action()
    operation = operation[0] if isinstance(operation, list) else operation
    action = f"{prefix}:{operation}"
    return IAM_ACTION.get(action, action), None


def request_parameters(response: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, values in (getattr(response, "querystring", None) or {}).items():
        if values:
            found[key] = values[0] if isinstance(values, list) else values
    body = getattr(response, "body", None)
    if body:
        try:
            decoded = json.loads(body)
        except (TypeError, ValueError):
            decoded = None
        if isinstance(decoded, dict):
            found.update(decoded)
    found.update(getattr(response, "uri_match", None) or {})
    return found


def resources_of(response: Any, action: str, region: str, partition: str, account: str) -> list[str]:
    """The ARNs the request acts on (each must be allowed, as AWS checks every resource of a
    request), from data/iam-actions.tsv and the request's parameters."""
    data = handler_permissions.data()
    service = action.split(":")[0]
    types = data.scopes.get(action.lower())
    if not types:
        return ["*"]  # the action takes only "*"
    parameters = request_parameters(response)
    if service == "cloudformation" and "stack" in types:
        for resolver in STACK_RESOURCES:
            stacks = resolver(action, parameters, region, account)
            if stacks:
                return stacks
        stack = cloudformation_stack_arn(parameters, region, account)
        if stack:
            return [stack]
    found = []
    for resource_type in types:
        for template in data.arn_formats.get(f"{service}:{resource_type}", []):
            arn = fill(template, parameters, partition, region, account)
            if arn:
                found.append(arn.lower() if service == "sagemaker" else arn)
                break
    if not found and any(types.values()):
        logger.warning(
            "localaws: no resource derived for %s from %s; checked on *", action, sorted(parameters)
        )
    if not found:
        return ["*"]
    return found


def cloudformation_stack_arn(parameters: dict[str, Any], region: str, account: str) -> str | None:
    """The stack a CloudFormation request acts on, as IAM sees it: AWS authorises change-set
    calls given only a change set's ARN (DescribeChangeSet, ExecuteChangeSet,
    DeleteChangeSet) on the stack that change set belongs to, and calls naming a stack by
    name on that stack's ARN."""
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[account][region]
    change_set = parameters.get("ChangeSetName")
    if isinstance(change_set, str) and change_set.startswith("arn:"):
        found = backend.change_sets.get(change_set)
        if found is not None:
            return found.stack_id
    name = parameters.get("StackName")
    if isinstance(name, str) and name:
        if name.startswith("arn:"):
            return name
        for stack in list(backend.stacks.values()):
            if stack.name == name and not stack.status.startswith("DELETE_COMPLETE"):
                return stack.stack_id
    return None


def fill(template: str, parameters: dict[str, Any], partition: str, region: str, account: str) -> str | None:
    """The template with its placeholders taken from the request, or None."""
    # A parameter that already holds an ARN of this shape.
    pattern = "^" + PLACEHOLDER.sub(
        lambda m: {"Partition": re.escape(partition), "Region": "[^:]*", "Account": "[^:]*"}.get(
            m.group(1), ".+"
        ),
        re.escape(template).replace(r"\$\{", "${").replace(r"\}", "}"),
    ) + "$"
    for value in parameters.values():
        if isinstance(value, str) and value.startswith("arn:") and re.match(pattern, value):
            return value
    lowered = {key.lower(): value for key, value in parameters.items()}
    filled = []

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        fixed = {"Partition": partition, "Region": region, "Account": account}
        if name in fixed:
            return fixed[name]
        for candidate in candidates(name):
            value = lowered.get(candidate.lower())
            if isinstance(value, str) and value:
                filled.append(name)
                return value.lstrip("/") if name.endswith("WithoutLeadingSlash") else value
        # Not in the request (a stack's id, say): any value, as the offline analysis reads it;
        # only a policy allowing every value there covers it.
        return "*"

    arn = PLACEHOLDER.sub(value_of, template)
    return arn if filled else None


def candidates(placeholder: str) -> list[str]:
    """Request parameter names that may hold a placeholder's value: the name itself, without a
    qualifier, then its shorter endings (`ParameterNameWithoutLeadingSlash` -> `ParameterName`,
    `Name`), as APIs often call the resource's name just `Name`."""
    bare = re.sub(r"(WithoutLeadingSlash|WithPath)$", "", placeholder)
    words = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", bare)
    return [placeholder, bare] + ["".join(words[index:]) for index in range(1, len(words))]
