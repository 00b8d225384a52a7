"""Fixtures for the local AWS tests: a server started through scripts/local-aws, and boto3 clients.

The session's server runs with its own state directory (LOCAL_AWS_STATE_DIR) on a free port, so the
tests neither reuse nor stop a server a developer started by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "local-aws"
REGION = "us-east-1"

# The in-process tests (handler metadata) import localaws like the server does.
sys.path.insert(0, str(REPO_ROOT))


def run_script(
    state_dir: Path, *arguments: str, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Runs scripts/local-aws as a user does, against the given state directory."""
    environment = dict(os.environ, LOCAL_AWS_STATE_DIR=str(state_dir))
    return subprocess.run(
        [str(SCRIPT), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def client_as(url: str, service: str, region: str, credentials: dict[str, str] | None = None, **config):
    """A boto3 client of the emulator at `url` signing with `credentials` (an STS `Credentials`
    shape; the account root's `testing` keys when None); `config` goes to botocore's Config."""
    from botocore.config import Config

    credentials = credentials or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
        config=Config(**config),
    )


def start_server(state_dir: Path, *arguments: str) -> str:
    result = run_script(state_dir, "start", *arguments)
    assert result.returncode == 0, f"start failed:\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Server:
    url: str
    state_dir: Path

    @property
    def pid(self) -> int:
        return int((self.state_dir / "pid").read_text())


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory):
    """A server started for this test session; stopped at its end."""
    state_dir = tmp_path_factory.mktemp("local-aws-state")
    server = Server(start_server(state_dir), state_dir)
    try:
        yield server
    finally:
        stopped = run_script(state_dir, "stop")
        assert stopped.returncode == 0, stopped.stderr


class Clients:
    """boto3 clients against the local endpoint, with the dummy credentials the docs give."""

    def __init__(self, url: str):
        self.url = url
        self._cache: dict[str, object] = {}

    def __call__(self, service: str):
        if service not in self._cache:
            self._cache[service] = boto3.client(
                service,
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._cache[service]


@pytest.fixture(scope="session")
def aws(local_aws: Server) -> Clients:
    return Clients(local_aws.url)
