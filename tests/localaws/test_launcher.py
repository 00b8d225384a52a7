"""scripts/local-aws start/stop/status/env: one server per state directory, and stop kills only it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import run_script, start_server


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A stopped child of ours stays a zombie until reaped; it no longer counts as alive.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_start_is_idempotent_and_stop_ends_the_server(tmp_path: Path):
    url = start_server(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert answers(url)
        pid = int((tmp_path / "pid").read_text())
        assert (tmp_path / "url").read_text().strip() == url
        assert (tmp_path / "server.log").exists()

        again = run_script(tmp_path, "start")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1] == url
        assert "already running" in again.stderr
        # The venv is current, so no second install happened.
        assert "installing" not in again.stderr
        assert int((tmp_path / "pid").read_text()) == pid

        status = run_script(tmp_path, "status")
        assert (status.returncode, status.stdout.strip()) == (0, url)

        environment = run_script(tmp_path, "env")
        assert environment.returncode == 0
        assert environment.stdout.splitlines()[:3] == [
            f"export AWS_ENDPOINT_URL={url}",
            "export AWS_ACCESS_KEY_ID=testing",
            "export AWS_SECRET_ACCESS_KEY=testing",
        ]
        assert any(
            line.startswith("export AWS_REGION=") for line in environment.stdout.splitlines()
        )
    finally:
        stopped = run_script(tmp_path, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid)
    assert not answers(url)
    assert not (tmp_path / "pid").exists()
    assert run_script(tmp_path, "status").returncode == 3
    assert run_script(tmp_path, "env").returncode == 1


def test_stop_leaves_a_process_that_is_not_our_server_alone(tmp_path: Path):
    # A stale pid file whose pid now belongs to some other program.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "pid").write_text(f"{bystander.pid}\n")
        (tmp_path / "url").write_text("http://127.0.0.1:1\n")
        stopped = run_script(tmp_path, "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert "left alone" in stopped.stderr
        assert bystander.poll() is None
        assert not (tmp_path / "pid").exists()
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_stop_leaves_another_state_directorys_server_alone(tmp_path: Path, local_aws):
    # The session's server is a local-aws server, but this state directory recorded another port.
    (tmp_path / "pid").write_text(f"{local_aws.pid}\n")
    (tmp_path / "url").write_text("http://127.0.0.1:1\n")
    stopped = run_script(tmp_path, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "left alone" in stopped.stderr
    assert alive(local_aws.pid)
    assert answers(local_aws.url)


def test_start_reports_a_server_that_cannot_listen(tmp_path: Path):
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]
        started = time.monotonic()
        result = run_script(tmp_path, "start", "--port", str(port))
    assert result.returncode == 1
    assert "exited" in result.stderr and "server.log" in result.stderr
    assert result.stdout == ""
    assert time.monotonic() - started < 60
    assert not (tmp_path / "pid").exists()


@pytest.mark.parametrize("command", ["stop", "status"])
def test_commands_on_a_never_started_state_directory_say_not_running(tmp_path: Path, command: str):
    result = run_script(tmp_path, command)
    assert "not running" in result.stderr
    assert result.returncode == (0 if command == "stop" else 3)
