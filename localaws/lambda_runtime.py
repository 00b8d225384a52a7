"""Runs Lambda functions written in Python (runtimes python3.9 … python3.13) without Docker.

moto runs a function's code in a Docker container (and fails without Docker). Here the Invoke API
of a Python function with a .zip deployment package runs it in a subprocess of the emulator's own
Python, as Lambda runs it:

- The package (the zip moto stored from `ZipFile` or `S3Bucket`/`S3Key`) is unpacked once into
  `<state dir>/lambda/code/<SHA-256 of the zip>/`, the function's `LAMBDA_TASK_ROOT`; its layers
  likewise under `layers/`. `sys.path` is the code, then the layers (`python/` and
  `python/lib/pythonX.Y/site-packages/` of each), then a runtime folder holding only what Lambda's
  Python runtime adds: boto3, botocore, s3transfer, jmespath, dateutil, urllib3 and six (linked
  from the emulator's venv). The emulator's other packages are not importable, as on AWS.
- The environment is the function's variables plus those Lambda sets (`_HANDLER`, `AWS_REGION`,
  `AWS_DEFAULT_REGION`, `AWS_EXECUTION_ENV`, `AWS_LAMBDA_FUNCTION_NAME`, `…_MEMORY_SIZE`,
  `…_VERSION`, `AWS_LAMBDA_LOG_GROUP_NAME`, `AWS_LAMBDA_LOG_STREAM_NAME`, `LAMBDA_TASK_ROOT`,
  `LAMBDA_RUNTIME_DIR`, `TZ`, `LANG`, `PATH`, `PYTHONPATH`), the credentials of a session of the
  function's execution role, named after the function (from moto's STS, so with `--enforce-iam`
  the function's calls are checked against the role's policies), and `AWS_ENDPOINT_URL` pointing
  back at this emulator, so the SDK in the function calls it.
- The handler's module is imported (the init phase, up to 10 s, not counted in `Timeout`), then
  the handler is called with the event and a context object; it has the function's `Timeout`,
  after which its process group is killed and the invocation ends with Lambda's
  `Sandbox.Timedout` error.
- Its output (stdout and stderr, with the runtime's START/END/REPORT lines) goes to the
  function's log group (`/aws/lambda/<name>`, or `LoggingConfig.LogGroup`), one log stream per
  invocation, as Lambda writes it with the execution role (with `--enforce-iam`, only when the role
  may `logs:CreateLogGroup` (if missing), `logs:CreateLogStream` and `logs:PutLogEvents`).

The Invoke API answers as Lambda does: `RequestResponse` with the handler's result (status 200),
or its error `{errorMessage, errorType, requestId, stackTrace}` with `X-Amz-Function-Error:
Unhandled`; `X-Amz-Log-Result` (the log's last 4 KB) with `LogType: Tail`; `X-Amz-Executed-Version`;
`Event` answers 202 at once and runs the function in a background thread; `DryRun` answers 204 and
runs nothing. A payload that is not JSON is `InvalidRequestContentException`, an oversized one
`RequestTooLargeException`; a synchronous invocation beyond the function's reserved concurrency is
`TooManyRequestsException` (an asynchronous one waits; with 0 reserved it never runs). Functions
with other runtimes or container images keep moto's behaviour.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moto.core.exceptions import JsonRESTError

from . import iam

logger = logging.getLogger("localaws")

PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
BOOTSTRAP = Path(__file__).resolve().parent / "lambda_bootstrap.py"
# What Lambda's Python runtime can import besides the standard library and the function's code.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
LAMBDA_SERVICE = "lambda.amazonaws.com"
INIT_LIMIT_SECONDS = 10.0
# Invoke's quotas (Lambda quotas page): 6 MB synchronous, 256 KB asynchronous request payloads.
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 256 * 1024
RESPONSE_LIMIT = 6291556
LOG_TAIL_BYTES = 4096
INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")

# Where the emulator listens (set by install() from the server's --host/--port/--ssl).
ENDPOINT = "http://127.0.0.1:5000"
# Where unpacked code lives (set by install(): the state directory's lambda/ folder).
CACHE: Path | None = None
_cache_lock = threading.Lock()
_installed = False


class InvalidRequestContentException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidRequestContentException", message)


class RequestTooLargeException(JsonRESTError):
    code = 413

    def __init__(self, message: str):
        super().__init__("RequestTooLargeException", message)


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("ValidationException", message)


class TooManyRequestsException(JsonRESTError):
    """A synchronous invocation beyond the function's reserved concurrency (Invoke API errors)."""

    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")
        self.description = json.dumps(
            {
                "__type": "TooManyRequestsException",
                "message": "Rate Exceeded.",
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                "Type": "User",
            }
        )


@dataclass
class Outcome:
    """One invocation's end: the response payload, whether it is a function error, the log."""

    payload: bytes
    error: bool
    log: str
    request_id: str


# --- installation ---------------------------------------------------------------------------------


def install(argv: list[str] | None = None) -> None:
    """Replaces moto's Invoke for Python functions; `argv` is the server's (for its address)."""
    global _installed, ENDPOINT, CACHE
    if _installed:
        return
    ENDPOINT = endpoint_from(sys.argv[1:] if argv is None else argv)
    from localaws.launcher import State

    CACHE = State.from_environment().directory / "lambda"

    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    original_response_invoke = LambdaResponse.invoke
    original_function_invoke = LambdaFunction.invoke

    def response_invoke(self: Any) -> Any:
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        qualifier = (self.querystring.get("Qualifier") or [None])[0]
        fn = self.backend.get_function(function_name, qualifier)
        if not runs_here(fn):
            return original_response_invoke(self)
        return invoke_response(self, fn)

    def function_invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        """What moto's other services (SNS, SQS mappings …) call: runs it and answers the payload."""
        if not runs_here(self):
            return original_function_invoke(self, body, request_headers, response_headers)
        text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        outcome = execute(self, text or "{}")
        if outcome.error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return outcome.payload

    original_enrich = LambdaResponse._enrich_response

    def enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        # Invoke answers with the invocation's request id (the one in its log), not a new one.
        kept = headers.get("x-amzn-requestid")
        headers, body = original_enrich(headers, body)
        if kept:
            headers["x-amzn-requestid"] = kept
        return headers, body

    LambdaResponse.invoke = response_invoke
    LambdaResponse._enrich_response = staticmethod(enrich_response)
    LambdaFunction.invoke = function_invoke
    _installed = True


def endpoint_from(argv: list[str]) -> str:
    """The URL the server answers on, from moto's server arguments."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    parser.add_argument("-s", "--ssl", action="store_true")
    parser.add_argument("-c", "--ssl-cert")
    known, _ = parser.parse_known_args(argv)
    host = "127.0.0.1" if known.host in ("0.0.0.0", "", "::") else known.host
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if known.ssl or known.ssl_cert else "http"
    return f"{scheme}://{host}:{known.port}"


def runs_here(fn: Any) -> bool:
    """Whether this module runs the function: a Python runtime and a .zip package."""
    return fn.run_time in PYTHON_RUNTIMES and getattr(fn, "package_type", "Zip") == "Zip"


# --- the Invoke API -------------------------------------------------------------------------------


def invoke_response(response: Any, fn: Any) -> tuple[int, dict[str, str], bytes | str]:
    headers = response.headers
    invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type not in INVOCATION_TYPES:
        raise ValidationException(
            f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed "
            "to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        )
    log_type = headers.get("X-Amz-Log-Type") or "None"
    if log_type not in ("None", "Tail"):
        raise ValidationException(
            f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
            "constraint: Member must satisfy enum value set: [None, Tail]"
        )
    raw = response.raw_body if isinstance(getattr(response, "raw_body", None), bytes) else None
    body = raw if raw is not None else (response.body or b"")
    if isinstance(body, str):
        body = body.encode("utf-8")
    limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    if len(body) > limit:
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        )
    try:
        text = body.decode("utf-8") if body else "{}"
        json.loads(text)
    except ValueError as error:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {error}"
        ) from None
    client_context = headers.get("X-Amz-Client-Context")
    if client_context:
        try:
            client_context = base64.b64decode(client_context, validate=True).decode("utf-8")
            json.loads(client_context)
        except ValueError:
            raise InvalidRequestContentException(
                "Client context must be a valid Base64-encoded JSON object."
            ) from None
    version = str(fn.version)
    answer_headers = {"X-Amz-Executed-Version": version, "content-type": "application/json"}
    if invocation_type == "DryRun":
        return 204, {**answer_headers, "status": "204"}, b""
    if invocation_type == "Event":
        request_id = str(uuid.uuid4())
        options = {"client_context": client_context, "request_id": request_id, "wait_for_slot": True}
        threading.Thread(
            target=execute_logged,
            args=(fn, text),
            kwargs=options,
            name=f"lambda-event-{fn.function_name}",
            daemon=True,
        ).start()
        answer_headers.pop("X-Amz-Executed-Version")
        return 202, {**answer_headers, "status": "202", "x-amzn-requestid": request_id}, b""
    if not take_slot(fn, wait=False):
        raise TooManyRequestsException()
    try:
        outcome = execute(fn, text, client_context=client_context)
    finally:
        release_slot(fn)
    payload = outcome.payload
    if len(payload) > RESPONSE_LIMIT:
        payload = json.dumps(
            {
                "errorMessage": f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
        ).encode()
        outcome.error = True
    answer_headers["x-amzn-requestid"] = outcome.request_id
    if outcome.error:
        answer_headers["X-Amz-Function-Error"] = "Unhandled"
    if log_type == "Tail":
        tail = outcome.log.encode("utf-8")[-LOG_TAIL_BYTES:]
        answer_headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode("ascii")
    return 200, answer_headers, payload


# --- one invocation -------------------------------------------------------------------------------


def execute_logged(fn: Any, event: str, wait_for_slot: bool = False, **options: Any) -> None:
    """An asynchronous invocation: its failures reach the server log only, as nobody waits for it.
    Beyond the reserved concurrency it waits for a running invocation to end; with a reserved
    concurrency of 0 it never runs (Lambda throttles it until the event expires)."""
    if not take_slot(fn, wait=wait_for_slot):
        logger.warning("localaws: %s (Event) throttled: reserved concurrency is 0", fn.function_name)
        return
    try:
        outcome = execute(fn, event, **options)
        if outcome.error:
            logger.warning("localaws: %s (Event) failed: %s", fn.function_name, outcome.payload.decode(errors="replace"))
    except Exception:
        logger.exception("localaws: %s (Event) could not run", fn.function_name)
    finally:
        release_slot(fn)


_running: dict[str, int] = {}
_running_changed = threading.Condition()


def reserved(fn: Any) -> int | None:
    value = getattr(fn, "reserved_concurrency", None)
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def take_slot(fn: Any, wait: bool) -> bool:
    """Counts the invocation against the function's reserved concurrency, if it has one."""
    limit = reserved(fn)
    name = slot_key(fn)
    with _running_changed:
        while limit is not None and _running.get(name, 0) >= limit:
            if not wait or limit == 0:
                return False
            _running_changed.wait()
            limit = reserved(fn)
        _running[name] = _running.get(name, 0) + 1
        return True


def release_slot(fn: Any) -> None:
    with _running_changed:
        _running[slot_key(fn)] = max(0, _running.get(slot_key(fn), 0) - 1)
        _running_changed.notify_all()


def slot_key(fn: Any) -> str:
    """A function's versions share its concurrency."""
    return f"{fn.account_id}:{fn.region}:{fn.function_name}"


def execute(
    fn: Any, event: str, client_context: str | None = None, request_id: str | None = None
) -> Outcome:
    """Runs the function once with the event (JSON text); never raises for the function's faults."""
    request_id = request_id or str(uuid.uuid4())
    code_dir = unpacked(fn.code_bytes, "code")
    layer_dirs = [unpacked(layer.code_bytes, "layers") for layer in layer_versions(fn)]
    runtime_dir = runtime_packages()
    python_dir = f"python{fn.run_time.removeprefix('python')}"
    layer_paths = []
    for layer_dir in reversed(layer_dirs):  # a later layer's files win, as in /opt
        layer_paths += [str(layer_dir / "python"), str(layer_dir / "python" / "lib" / python_dir / "site-packages")]
    stream = log_stream_name(fn)
    group = log_group_name(fn)
    credentials = role_credentials(fn)
    environment = function_environment(fn, code_dir, runtime_dir, layer_dirs, group, stream, credentials)

    control_read, control_write = os.pipe()
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [sys.executable, "-B", "-S", "-u", str(BOOTSTRAP), str(control_write), json.dumps(layer_paths)],
            cwd=code_dir,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(control_write,),
            start_new_session=True,
        )
    finally:
        os.close(control_write)
    output = bytearray()
    messages: list[dict[str, Any]] = []
    arrived = threading.Condition()

    def read_output() -> None:
        for chunk in iter(lambda: process.stdout.read1(65536), b""):
            output.extend(chunk)

    def read_control() -> None:
        with os.fdopen(control_read, "r", encoding="utf-8") as control:
            for line in control:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                with arrived:
                    messages.append(message)
                    arrived.notify_all()
        with arrived:
            messages.append({"type": "closed"})
            arrived.notify_all()

    readers = [
        threading.Thread(target=read_output, daemon=True),
        threading.Thread(target=read_control, daemon=True),
    ]
    for reader in readers:
        reader.start()

    def wait_for(deadline: float) -> dict[str, Any] | None:
        with arrived:
            while not messages:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                arrived.wait(remaining)
            return messages.pop(0)

    timeout = float(fn.timeout)
    # Init up to 10 s; beyond that Lambda initialises again within the invocation's timeout.
    message = wait_for(started + INIT_LIMIT_SECONDS + timeout)
    invoke_deadline = None
    if message is not None and message.get("type") == "ready":
        now = time.monotonic()
        invoke_deadline = min(now, started + INIT_LIMIT_SECONDS) + timeout
        deadline_ms = int(time.time() * 1000 + (invoke_deadline - now) * 1000)
        invocation = {
            "request_id": request_id,
            "event": event,
            "deadline_ms": deadline_ms,
            "invoked_function_arn": fn.function_arn,
            "client_context": client_context,
        }
        try:
            process.stdin.write((json.dumps(invocation) + "\n").encode("utf-8"))
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        message = wait_for(invoke_deadline)
    timed_out = message is None
    if timed_out:
        kill(process)
    try:
        process.stdin.close()
    except OSError:
        pass
    status = wait_exit(process, kill_after=5.0)
    # What the handler left running (Lambda freezes it with the environment; here it would only
    # hold the output open): stopped with the invocation.
    kill(process)
    for reader in readers:
        reader.join(timeout=5.0)
    log = output.decode("utf-8", errors="replace")

    if timed_out:
        elapsed = time.monotonic() - (invoke_deadline - timeout if invoke_deadline else started)
        if invoke_deadline is None:
            log += f"START RequestId: {request_id} Version: {fn.version}\n"
        log += (
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {request_id} "
            f"Task timed out after {timeout:.2f} seconds\n"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {elapsed * 1000:.2f} ms\t"
            f"Billed Duration: {int(timeout * 1000)} ms\tMemory Size: {fn.memory_size} MB\t"
            "Status: timeout\n"
        )
        payload = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
        }
        outcome = Outcome(json.dumps(payload).encode(), True, log, request_id)
    elif message.get("type") == "result":
        data = message["payload"]
        payload = base64.b64decode(data) if message.get("base64") else data.encode("utf-8")
        outcome = Outcome(payload, False, log, request_id)
    elif message.get("type") in ("error", "init_error"):
        error = message["error"]
        if message["type"] == "init_error":
            log += (
                f"START RequestId: {request_id} Version: {fn.version}\n"
                f"END RequestId: {request_id}\n"
                f"REPORT RequestId: {request_id}\tDuration: {(time.monotonic() - started) * 1000:.2f} ms\t"
                f"Memory Size: {fn.memory_size} MB\tStatus: error\tError Type: {error.get('errorType')}\n"
            )
        outcome = Outcome(json.dumps(error).encode("utf-8"), True, log, request_id)
    else:  # the process ended without an answer (sys.exit, os._exit, a crash)
        reason = f"signal: {signal.Signals(-status).name.lower().removeprefix('sig')}" if status < 0 else f"exit status {status}"
        reason = reason.replace("signal: kill", "signal: killed")
        error_message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
        log += f"{error_message}\nRuntime.ExitError\nEND RequestId: {request_id}\n"
        payload = {"errorType": "Runtime.ExitError", "errorMessage": error_message}
        outcome = Outcome(json.dumps(payload).encode(), True, log, request_id)
    write_log(fn, group, stream, outcome.log, credentials)
    return outcome


def kill(process: subprocess.Popen) -> None:
    """Kills the function's process and whatever it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            process.kill()
        except ProcessLookupError:
            pass


def wait_exit(process: subprocess.Popen, kill_after: float) -> int:
    try:
        return process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        kill(process)
        return process.wait()


# --- code and runtime folders ---------------------------------------------------------------------


def cache_root() -> Path:
    if CACHE is None:
        from localaws.launcher import State

        return State.from_environment().directory / "lambda"
    return CACHE


def unpacked(archive: bytes, kind: str) -> Path:
    """The zip's files, unpacked once into a folder named after its SHA-256."""
    import hashlib

    digest = hashlib.sha256(archive).hexdigest()
    target = cache_root() / kind / digest
    if target.is_dir():
        return target
    with _cache_lock:
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{digest}.{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            import io

            with zipfile.ZipFile(io.BytesIO(archive)) as package:
                for member in package.infolist():
                    path = Path(package.extract(member, staging))
                    mode = (member.external_attr >> 16) & 0o777
                    if mode and not member.is_dir():
                        path.chmod(mode | 0o400)
            os.rename(staging, target)
        except FileExistsError:
            shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def runtime_packages() -> Path:
    """A folder exposing only the packages Lambda's Python runtime provides (links to the venv's)."""
    folder = cache_root() / "runtime"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    with _cache_lock:
        if marker.exists():
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        for name in RUNTIME_PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                logger.warning("localaws: %s is not installed; Lambda functions cannot import it", name)
                continue
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            link = folder / source.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source)
        marker.touch()
    return folder


def layer_versions(fn: Any) -> list[Any]:
    from moto.awslambda.utils import get_backend

    backend = get_backend(fn.account_id, fn.region)
    found = []
    for layer in fn.layers or []:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is not None and getattr(version, "code_bytes", b""):
            found.append(version)
    return found


# --- environment and credentials ------------------------------------------------------------------

# Lambda's reserved environment variables (Lambda guide, "Defined runtime environment variables").
RESERVED = (
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
)


def function_environment(
    fn: Any,
    code_dir: Path,
    runtime_dir: Path,
    layer_dirs: list[Path],
    group: str,
    stream: str,
    credentials: dict[str, str],
) -> dict[str, str]:
    bins = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    bins += [str(layer / "bin") for layer in layer_dirs]
    environment = {
        "PATH": ":".join(bins),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": str(runtime_dir),
        "LD_LIBRARY_PATH": ":".join(str(layer / "lib") for layer in layer_dirs),
        # Keep this machine's ~/.aws out of the function's SDK.
        "AWS_CONFIG_FILE": str(runtime_dir / ".aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(runtime_dir / ".aws-credentials-absent"),
    }
    if not environment["LD_LIBRARY_PATH"]:
        del environment["LD_LIBRARY_PATH"]
    environment.update({key: str(value) for key, value in (fn.environment_vars or {}).items()})
    environment.update(
        {
            "_HANDLER": fn.handler or "",
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_ACCESS_KEY": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        }
    )
    # The emulator is the function's AWS: no other endpoint applies.
    for key in [key for key in environment if key.startswith("AWS_ENDPOINT_URL")]:
        del environment[key]
    environment.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
    environment["AWS_ENDPOINT_URL"] = ENDPOINT
    return environment


_sessions: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
_sessions_lock = threading.Lock()


class RoleCannotBeAssumed(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        )


def role_credentials(fn: Any) -> dict[str, str]:
    """Credentials of a session of the function's role (session name: the function's name),
    from moto's STS, as Lambda assumes the role; reused while valid, as Lambda caches them."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    partition = get_partition(fn.region)
    role_account = fn.role.split(":")[4] if fn.role.count(":") >= 5 else fn.account_id
    role = iam.find_role(role_account, partition, fn.role)
    context = {"aws:SourceAccount": fn.account_id, "aws:SourceArn": fn.function_arn}
    if role is None or not iam.trusts(role, LAMBDA_SERVICE, context):
        raise RoleCannotBeAssumed()
    key = (fn.function_arn, fn.role)
    with _sessions_lock:
        cached = _sessions.get(key)
        if cached and cached[0] > time.time() + 900 + 60:
            return cached[1]
        duration = 3600
        session = sts_backends[fn.account_id][partition].assume_role(
            region_name=fn.region,
            role_session_name=fn.function_name,
            role_arn=fn.role,
            policy=None,
            duration=duration,
            external_id=None,
        )
        credentials = {
            "AccessKeyId": session.access_key_id,
            "SecretAccessKey": session.secret_access_key,
            "SessionToken": session.session_token,
        }
        _sessions[key] = (time.time() + duration, credentials)
        return credentials


# --- logs -----------------------------------------------------------------------------------------


def log_group_name(fn: Any) -> str:
    config = getattr(fn, "logging_config", None) or {}
    return config.get("LogGroup") or f"/aws/lambda/{fn.function_name}"


def log_stream_name(fn: Any) -> str:
    today = datetime.now(timezone.utc)
    return f"{today:%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"


def enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def write_log(fn: Any, group: str, stream: str, text: str, credentials: dict[str, str]) -> None:
    """Writes the invocation's output to CloudWatch Logs, one event per line, as the role may."""
    from moto.logs.models import logs_backends
    from moto.utilities.utils import get_partition

    backend = logs_backends[fn.account_id][fn.region]
    lines = [line for line in text.split("\n") if line]
    if not lines:
        return
    if enforcing():
        partition = get_partition(fn.region)
        identity = iam.caller(credentials["AccessKeyId"], fn.account_id, partition)
        group_arn = f"arn:{partition}:logs:{fn.region}:{fn.account_id}:log-group:{group}"
        stream_arn = f"{group_arn}:log-stream:{stream}"
        needed = [("logs:CreateLogStream", stream_arn), ("logs:PutLogEvents", stream_arn)]
        if group not in backend.groups:
            needed.insert(0, ("logs:CreateLogGroup", group_arn))
        for action, arn in needed:
            denial = iam.authorize(identity, action, arn, {"aws:RequestedRegion": fn.region})
            if denial is not None:
                logger.warning("localaws: %s: %s; its output is not logged", fn.function_name, denial.message())
                return
    try:
        backend.ensure_log_group(group)
        backend.create_log_stream(group, stream)
        now = int(time.time() * 1000)
        backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])
    except Exception as error:  # a log that cannot be written never fails the invocation
        logger.warning("localaws: writing %s's log to %s failed: %s", fn.function_name, group, error)
