"""The Python runtime one Lambda invocation runs in: imports the handler, calls it once with the
event, and reports the result or the error as AWS's Python runtime (awslambdaric) does.

Started by localaws/lambda_runtime.py as `python -B -S -u lambda_bootstrap.py CONTROL_FD
LAYER_PATHS_JSON`, with the function's environment and its unpacked code as the working
directory (`LAMBDA_TASK_ROOT`). Standard library only: the function sees its own code, its
layers and the runtime's packages (`LAMBDA_RUNTIME_DIR`: boto3 and its dependencies), not this
emulator's.

The exchange with the emulator:
- on the control pipe (one JSON object per line): `{"type": "ready"}` once the handler's module is
  imported (the init phase), `{"type": "init_error", "error": …}` if that failed, then
  `{"type": "result", "payload": …, "base64": …}` or `{"type": "error", "error": …}`;
- on stdin, after `ready`: the invocation, `{"request_id", "event", "deadline_ms",
  "invoked_function_arn", "client_context"}` (`event` is the payload's JSON text);
- stdout and stderr are the function's log, with the runtime's `START`, `END` and `REPORT` lines.
"""

import decimal
import importlib
import json
import logging
import math
import os
import resource
import sys
import time
import traceback

THIS_FILE = os.path.abspath(__file__)
ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"
# awslambdaric's FaultException types.
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

_request_id = None


class Fault(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def fault_result(exc_info, request_id=None):
    """An exception as the runtime reports it, without the runtime's own frames."""
    error_type, value, tb = exc_info
    frames = traceback.extract_tb(tb)
    for index, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != THIS_FILE:
            frames = frames[index:]
            break
    else:
        frames = []
    return make_error(str(value), error_type.__name__, traceback.format_list(frames), request_id)


def log_error(error):
    """The runtime's `[ERROR]` log entry: one CloudWatch event (lines joined by a carriage return)."""
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description]
    stack_trace = error.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(ERROR_LOG_IDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        return True


class StdoutHandler(logging.Handler):
    def emit(self, record):
        sys.stdout.write(self.format(record))


def setup_logging():
    """The root logger as the runtime sets it up: its tab-separated format, UTC times, and the
    level from AWS_LAMBDA_LOG_LEVEL (else the logging module's default, WARNING)."""
    logging.Formatter.converter = time.gmtime
    handler = StdoutHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)


def get_handler(handler):
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as error:
        raise Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {error}")
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {module_name} as a handler module",
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise Fault(IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {error}")
    except SyntaxError as error:
        trace = ['  File "%s" Line %s\n    %s' % (error.filename, error.lineno, error.text)]
        raise Fault(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {error}", trace
        )
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault(HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'")


class Encoder(json.JSONEncoder):
    """The runtime's response encoding: Decimal as a number, and (python3.12) Unicode unescaped."""

    def __init__(self):
        super().__init__(ensure_ascii=os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12")

    def default(self, value):
        if isinstance(value, decimal.Decimal):
            return math.nan if value.is_nan() else float(value)
        return super().default(value)


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client:
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def from_dict(cls, values):
    if values is None:
        return None
    made = cls()
    for name in cls.__slots__:
        setattr(made, name, values.get(name))
    return made


class LambdaContext:
    """The handler's `context`, with the attributes and methods of the runtime's."""

    def __init__(self, request_id, client_context, deadline_ms, invoked_function_arn):
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
        self.client_context = from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = from_dict(Client, self.client_context.client)
        self.identity = from_dict(CognitoIdentity, {})
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, message):
        sys.stdout.write(str(message))


def send(control, message):
    control.write(json.dumps(message) + "\n")
    control.flush()


def main():
    global _request_id
    control = os.fdopen(int(sys.argv[1]), "w")
    layers = json.loads(sys.argv[2])
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    # Lambda's order: the function's code, then its layers, then the runtime's packages.
    sys.path[0:1] = [task_root, *layers]
    sys.argv = [sys.argv[0]]
    setup_logging()
    started = time.monotonic()
    try:
        handler = get_handler(os.environ["_HANDLER"])
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace)
        log_error(error)
        send(control, {"type": "init_error", "error": error})
        sys.exit(1)
    except Exception:
        error = fault_result(sys.exc_info())
        log_error(error)
        send(control, {"type": "init_error", "error": error})
        sys.exit(1)
    init_ms = (time.monotonic() - started) * 1000
    send(control, {"type": "ready"})

    invocation = json.loads(sys.stdin.readline())
    _request_id = request_id = invocation["request_id"]
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    sys.stdout.write(f"START RequestId: {request_id} Version: {version}\n")
    started = time.monotonic()
    message = None
    try:
        client_context = None
        if invocation.get("client_context"):
            try:
                client_context = json.loads(invocation["client_context"])
            except Exception as error:
                raise Fault(LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse Client Context JSON: {error}")
        context = LambdaContext(
            request_id, client_context, invocation["deadline_ms"], invocation["invoked_function_arn"]
        )
        try:
            event = json.loads(invocation["event"])
        except Exception as error:
            raise Fault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {error}")
        response = handler(event, context)
        if isinstance(response, bytes):
            import base64

            message = {"type": "result", "payload": base64.b64encode(response).decode(), "base64": True}
        else:
            try:
                payload = Encoder().encode(response)
            except Exception as error:
                raise Fault(MARSHAL_ERROR, f"Unable to marshal response: {error}")
            message = {"type": "result", "payload": payload, "base64": False}
    except Fault as fault:
        message = {"type": "error", "error": make_error(fault.message, fault.error_type, fault.trace, request_id)}
    except Exception:
        message = {"type": "error", "error": fault_result(sys.exc_info(), request_id)}
    if message["type"] == "error":
        log_error(message["error"])
    duration = (time.monotonic() - started) * 1000
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    sys.stdout.write(f"END RequestId: {request_id}\n")
    sys.stdout.write(
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {memory} MB\t"
        f"Max Memory Used: {used} MB\tInit Duration: {init_ms:.2f} ms\t\n"
    )
    sys.stdout.flush()
    send(control, message)


if __name__ == "__main__":
    main()
