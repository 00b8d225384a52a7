"""Starts, stops and reports the local AWS server that scripts/local-aws drives (stdlib only).

This module runs under whatever ``python3`` calls scripts/local-aws, before the project venv exists,
so it must not import moto or boto3. State lives in one directory (``.local-aws/`` in the repo root,
or ``$LOCAL_AWS_STATE_DIR``): ``pid``, ``url`` and ``server.log``.

stdout carries data only (the URL, or ``export`` lines); progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "localaws" / "requirements.txt"
VENV = REPO_ROOT / ".venv"
# The hash of the requirements last installed into the venv; pip runs again only when it differs.
REQUIREMENTS_STAMP = VENV / ".local-aws-requirements.sha256"
SERVER_MODULE = "localaws.server"
DEFAULT_REGION = "us-east-1"
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 10.0
# Exit status of `status` when no server runs, as LSB init scripts use it.
EXIT_NOT_RUNNING = 3


class LauncherError(Exception):
    """A failure the user can act on; the message says what happened, the hint what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class State:
    """The files that describe one server: where it listens and which process it is."""

    directory: Path

    @classmethod
    def from_environment(cls) -> "State":
        configured = os.environ.get("LOCAL_AWS_STATE_DIR")
        return cls(Path(configured).resolve() if configured else REPO_ROOT / ".local-aws")

    @property
    def pid_file(self) -> Path:
        return self.directory / "pid"

    @property
    def url_file(self) -> Path:
        return self.directory / "url"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def lock_file(self) -> Path:
        return self.directory / "lock"

    def read(self) -> tuple[int, str] | None:
        """The recorded (pid, url), or None when nothing (or something unreadable) is recorded."""
        try:
            pid = int(self.pid_file.read_text().strip())
            url = self.url_file.read_text().strip()
        except (OSError, ValueError):
            return None
        return (pid, url) if url else None

    def write(self, pid: int, url: str) -> None:
        self.url_file.write_text(url + "\n")
        self.pid_file.write_text(f"{pid}\n")

    def clear(self) -> None:
        for path in (self.pid_file, self.url_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @contextlib.contextmanager
    def locked(self):
        """Serialises start/stop so two callers never launch two servers for one state directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def say(message: str) -> None:
    print(f"local-aws: {message}", file=sys.stderr, flush=True)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].rstrip("/"))


def process_arguments(pid: int) -> list[str] | None:
    """The command line of a live process, or None when it does not exist (or is not readable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
    except OSError:
        return None
    # No /proc (macOS): ask ps, which prints nothing for a missing pid.
    result = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.split() or None


def is_our_server(pid: int, url: str) -> bool:
    """True only for a live `python -m localaws.server --port N` whose port is the recorded one.

    The pid file can outlive the server, and the pid can be reused by any other process: this check is
    what keeps `stop` from killing something that is not ours.
    """
    arguments = process_arguments(pid)
    if not arguments or SERVER_MODULE not in arguments:
        return False
    try:
        return arguments[arguments.index("--port") + 1] == str(port_of(url))
    except (ValueError, IndexError):
        return False


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv() -> Path:
    """Creates .venv if missing and installs the pinned requirements when they changed.

    Other tooling (cfn-lint) installs into the same venv, so an existing venv is extended, never wiped.
    """
    python = VENV / "bin" / "python"
    if not python.exists():
        say(f"creating the virtualenv {VENV}")
        run_quietly([sys.executable, "-m", "venv", str(VENV)], "creating the virtualenv failed")
    wanted = requirements_hash()
    try:
        installed = REQUIREMENTS_STAMP.read_text().strip()
    except OSError:
        installed = ""
    if installed != wanted:
        say(f"installing {REQUIREMENTS.relative_to(REPO_ROOT)} into {VENV} (first run: about 30 s)")
        run_quietly(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
                str(REQUIREMENTS),
            ],
            "pip could not install the emulator's requirements",
        )
        REQUIREMENTS_STAMP.write_text(wanted + "\n")
    return python


def run_quietly(command: list[str], failure: str) -> None:
    # Progress of pip and venv goes to stderr: stdout is kept for the URL.
    result = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, check=False)
    if result.returncode != 0:
        raise LauncherError(
            f"{failure} (exit status {result.returncode}): {' '.join(command)}",
            "check that PyPI is reachable and python3 has the venv module (apt-get install python3-venv)",
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def enforce_iam_requested(flag: bool) -> bool:
    """`start --enforce-iam`, or LOCAL_AWS_ENFORCE_IAM=1 in the environment."""
    return flag or os.environ.get("LOCAL_AWS_ENFORCE_IAM", "").lower() in ("1", "true", "yes")


def latency_scale_requested(flag: float | None) -> float | None:
    """`start --latency-scale S` (else LOCAL_AWS_LATENCY_SCALE, inherited by the server as is)."""
    if flag is None:
        return None
    if flag < 0 or flag != flag or flag == float("inf"):
        raise LauncherError(
            f"--latency-scale {flag} is not a finite number >= 0", "e.g. --latency-scale 0.02"
        )
    return flag


def launch(
    python: Path,
    state: State,
    port: int,
    enforce_iam: bool = False,
    latency_scale: float | None = None,
) -> tuple[int, str]:
    """Starts one server process, detached from this one, and waits until it answers."""
    url = f"http://127.0.0.1:{port}"
    environment = dict(os.environ)
    if latency_scale is not None:
        # localaws/latency.py reads it; 0 turns the model off even if the caller's env set it.
        environment["LOCAL_AWS_LATENCY_SCALE"] = f"{latency_scale:g}"
    if enforce_iam:
        # moto's access control checks every request after the first N; localaws/authorization.py
        # decides them (root keys keep full access).
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), environment.get("PYTHONPATH", "")) if part
    )
    with open(state.log_file, "ab") as log:
        process = subprocess.Popen(
            [str(python), "-m", SERVER_MODULE, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A session of its own: the server outlives this script and ignores the terminal's Ctrl-C.
            start_new_session=True,
        )
    state.write(process.pid, url)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            state.clear()
            raise LauncherError(
                f"the server exited with status {process.returncode} before answering on {url}; "
                f"last lines of {state.log_file}:\n{log_tail(state.log_file)}"
            )
        if answers(url):
            return process.pid, url
        time.sleep(0.2)
    terminate(process.pid)
    state.clear()
    raise LauncherError(
        f"the server did not answer GET {url}/moto-api/ within {READY_TIMEOUT_SECONDS:.0f} s",
        f"read {state.log_file}",
    )


def terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        # Reap it first if it is our own child (a server started by this process), so it is not a zombie.
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    arguments = process_arguments(pid)
    return arguments is not None


def running(state: State) -> tuple[int, str] | None:
    """The (pid, url) of a live server of ours for this state directory, or None."""
    recorded = state.read()
    if recorded and is_our_server(*recorded):
        return recorded
    return None


def start(
    state: State, port: int | None, enforce_iam: bool = False, latency_scale: float | None = None
) -> str:
    with state.locked():
        current = running(state)
        if current:
            pid, url = current
            if port is not None and port != port_of(url):
                raise LauncherError(
                    f"already running on {url} (pid {pid}), not on port {port}",
                    "run `scripts/local-aws stop` first to move it to another port",
                )
            say(f"already running (pid {pid})")
            if enforce_iam:
                say("it keeps the IAM mode it was started with; `stop` first to change it")
            if latency_scale is not None:
                say("it keeps the latency model it was started with; `stop` first to change it")
            return url
        state.clear()
        python = ensure_venv()
        # A free port can be taken between the probe and the server's bind; try a few.
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            try:
                pid, url = launch(
                    python,
                    state,
                    port if port is not None else free_port(),
                    enforce_iam,
                    latency_scale,
                )
                mode = " (direct API calls checked against IAM)" if enforce_iam else ""
                scale = (
                    latency_scale
                    if latency_scale is not None
                    else os.environ.get("LOCAL_AWS_LATENCY_SCALE", "")
                )
                if scale not in ("", None) and str(scale).strip() not in ("0", "0.0"):
                    mode += f" (latency model on, scale {scale})"
                say(f"started (pid {pid}){mode}; log: {state.log_file}")
                return url
            except LauncherError:
                if attempt == attempts - 1:
                    raise
                say("the server did not come up; retrying on another port")
    raise AssertionError("unreachable")


def stop(state: State) -> None:
    with state.locked():
        recorded = state.read()
        if recorded is None:
            say("not running")
            state.clear()
            return
        pid, url = recorded
        if not is_our_server(pid, url):
            if alive(pid):
                say(
                    f"pid {pid} in {state.pid_file} is not the local-aws server for {url}; left alone"
                )
            else:
                say("not running (removed a stale pid file)")
            state.clear()
            return
        terminate(pid)
        state.clear()
        say(f"stopped (pid {pid})")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def environment_lines(url: str) -> list[str]:
    chosen = region()
    return [
        f"export AWS_ENDPOINT_URL={url}",
        "export AWS_ACCESS_KEY_ID=testing",
        "export AWS_SECRET_ACCESS_KEY=testing",
        f"export AWS_REGION={chosen}",
        f"export AWS_DEFAULT_REGION={chosen}",
    ]


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/local-aws",
        description="A local AWS (moto server plus mlops-infra's CloudFormation handlers) on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser(
        "start", help="install (first time) and start the server; print its URL last on stdout"
    )
    start_parser.add_argument("--port", type=int, help="listen on this port instead of a free one")
    start_parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="check every direct API call against the caller's IAM policies (root keys may do "
        "all; also LOCAL_AWS_ENFORCE_IAM=1). Stack operations are always checked.",
    )
    start_parser.add_argument(
        "--latency-scale",
        type=float,
        metavar="S",
        help="turn the latency model on: API calls and resource operations take their AWS time "
        "times S, e.g. 0.02 (sets LOCAL_AWS_LATENCY_SCALE for the server, which is otherwise "
        "inherited from this environment; 0 turns it off). See docs/local-aws.md",
    )
    commands.add_parser(
        "install",
        help="create .venv and install the pinned requirements if they changed; no server",
    )
    commands.add_parser("stop", help="stop the server this state directory started, and only it")
    commands.add_parser("status", help="print the URL and exit 0 if running; exit 3 if not")
    commands.add_parser("env", help="print `export AWS_...` lines for eval")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    state = State.from_environment()
    try:
        if arguments.command == "start":
            print(
                start(
                    state,
                    arguments.port,
                    enforce_iam_requested(arguments.enforce_iam),
                    latency_scale_requested(arguments.latency_scale),
                ),
                flush=True,
            )
        elif arguments.command == "install":
            print(ensure_venv(), flush=True)
        elif arguments.command == "stop":
            stop(state)
        elif arguments.command == "status":
            current = running(state)
            if current is None:
                say("not running")
                return EXIT_NOT_RUNNING
            say(f"running (pid {current[0]})")
            print(current[1])
        elif arguments.command == "env":
            current = running(state)
            if current is None:
                raise LauncherError("not running", "run `scripts/local-aws start` first")
            print("\n".join(environment_lines(current[1])))
    except LauncherError as error:
        say(f"error: {error}")
        if error.hint:
            say(f"hint: {error.hint}")
        return 1
    return 0
