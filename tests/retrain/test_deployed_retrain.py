"""The retrain function as deployed: staging (with a batch of 20) applied by mlops-infra to the
local AWS with IAM enforced, then the function invoked as EventBridge invokes it, so it runs with
its own role's credentials and every call it makes is checked against the role's policy.

25 "Object Created" events delivered 5 at a time (concurrent invocations racing on the state
object) start exactly one run of the trees pipeline and leave 5 images counted for the next
batch; a tick before the quiet period starts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "target" / "debug" / "mlops-infra"
ACCOUNT = "222222222222"
REGION = "eu-west-1"
FUNCTION = "mlops-images-staging-retrain"
DATA = f"mlops-images-staging-data-{ACCOUNT}"

sys.path.insert(0, str(REPO / "tests" / "localaws"))
from conftest import client_as, run_script  # noqa: E402


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    assert TOOL.exists(), f"{TOOL} is not built: run `cargo build` first"
    project = tmp_path_factory.mktemp("project")
    for folder in ("environments", "templates", "steps", "router", "retrain", "payloads"):
        shutil.copytree(REPO / folder, project / folder)
    staging = project / "environments" / "staging.yaml"
    staging.write_text(staging.read_text() + "review:\n  retrain_batch_size: 20\n")
    state_dir = tmp_path_factory.mktemp("local-aws-retrain")
    started = subprocess.run(
        [str(REPO / "scripts" / "local-aws"), "start", "--enforce-iam"],
        env=dict(os.environ, LOCAL_AWS_STATE_DIR=str(state_dir), MOTO_ACCOUNT_ID=ACCOUNT),
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        applied = subprocess.run(
            [str(TOOL), "-C", str(project), "apply", "staging", "--yes"],
            env=dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                     AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=REGION, NO_COLOR="1"),
            capture_output=True, text=True, timeout=600, check=False,
        )
        assert applied.returncode == 0, applied.stderr
        yield url
    finally:
        run_script(state_dir, "stop")


def image_event(index: int) -> dict:
    return {
        "version": "0", "id": f"event-{index}", "source": "aws.s3", "detail-type": "Object Created",
        "account": ACCOUNT, "region": REGION, "time": "2026-12-01T07:00:00Z",
        "resources": [f"arn:aws:s3:::{DATA}"],
        "detail": {"bucket": {"name": DATA}, "object": {"key": f"raw/trees/oak/{index:03}.jpg", "size": 1024}},
    }


def invoke(url: str, event: dict) -> dict:
    answer = client_as(url, "lambda", REGION).invoke(FunctionName=FUNCTION, Payload=json.dumps(event).encode())
    payload = answer["Payload"].read().decode()
    assert "FunctionError" not in answer, payload
    return json.loads(payload)


def test_a_burst_of_images_starts_one_run_through_the_deployed_role(deployed):
    url = deployed
    s3 = client_as(url, "s3", REGION)
    sagemaker = client_as(url, "sagemaker", REGION)
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(lambda index: invoke(url, image_event(index)), range(25)))
    executions = sagemaker.list_pipeline_executions(PipelineName="mlops-images-staging-trees")
    summaries = executions["PipelineExecutionSummaries"]
    assert len(summaries) == 1, summaries
    state = json.loads(s3.get_object(Bucket=DATA, Key="retrain/state/trees.json")["Body"].read())
    assert (state["pending"], state["starting"]) == (5, None)
    assert state["last_run"]["images"] == 20
    assert state["last_run"]["arn"] == summaries[0]["PipelineExecutionArn"]
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=summaries[0]["PipelineExecutionArn"])
    assert described["PipelineExecutionDescription"].startswith("20 new images since ")

    # The scheduled check before the quiet period: nothing starts, the count stays.
    invoke(url, {"version": "0", "id": "tick-1", "source": "aws.events", "detail-type": "Scheduled Event",
                 "account": ACCOUNT, "region": REGION, "time": "2026-12-01T07:01:00Z", "detail": {}})
    executions = sagemaker.list_pipeline_executions(PipelineName="mlops-images-staging-trees")
    assert len(executions["PipelineExecutionSummaries"]) == 1
    state = json.loads(s3.get_object(Bucket=DATA, Key="retrain/state/trees.json")["Body"].read())
    assert state["pending"] == 5
