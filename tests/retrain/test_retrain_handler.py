"""Tests for retrain/handler.py: EventBridge image events and ticks in, pipeline starts, state
objects and metric lines out, against in-memory S3 (conditional writes that check and put
atomically, a new ETag on every write) and SageMaker (StartPipelineExecution idempotent by
ClientRequestToken) fakes, on a clock the tests move; and once against the local AWS."""

from __future__ import annotations

import copy
import importlib.util
import io
import itertools
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.response import StreamingBody

# --- the module, fakes, events ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# retrain/handler.py as the module `retrain_handler` (Lambda knows it as `handler`).
retrain = _load("retrain_handler", REPO / "retrain" / "handler.py")

DATA_BUCKET = "mlops-images-staging-data-222222222222"
TREES_PIPELINE = "mlops-images-staging-trees"
FLOWERS_PIPELINE = "mlops-images-staging-flowers"
TREES_INPUT = f"s3://{DATA_BUCKET}/raw/trees/"
FLOWERS_INPUT = f"s3://{DATA_BUCKET}/raw/flowers/"
START = datetime(2026, 12, 1, 7, 5, 9, tzinfo=timezone.utc)

CONFIG = {
    "bucket": DATA_BUCKET,
    "raw_prefix": "raw/",
    "state_prefix": "retrain/state/",
    "batch_size": 100,
    "quiet_minutes": 30,
    "pipeline_prefix": "mlops-images-staging-",
    "namespace": "mlops-images/staging/retrain",
    "environment": "staging",
}


def client_error(code: str, status: int, operation: str, message: str = "") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message or code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


def precondition_failed() -> ClientError:
    return client_error("PreconditionFailed", 412, "PutObject", "At least one of the pre-conditions you specified did not hold")


def conditional_conflict() -> ClientError:
    return client_error("ConditionalRequestConflict", 409, "PutObject", "A conflicting operation occurred")


class FakeS3:
    """Objects in memory. PutObject honours IfMatch (412 when the ETag differs, 404 NoSuchKey
    when there is no object) and IfNoneMatch="*" (412 when there is one), checking and putting
    under one lock as S3 does; every write gets a new ETag. `put_failures` are raised, in order,
    by the next PutObjects (None: that one goes through); with `missing_denied` a missing object
    reads as 403 AccessDenied (a caller without s3:ListBucket). `interleave` pauses after each
    read so threads overlap. ListObjectsV2 answers at most `page_size` keys (S3: 1000) and, when
    there are more, IsTruncated and an opaque NextContinuationToken for that listing only."""

    def __init__(self, missing_denied: bool = False, interleave: bool = False):
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.puts: list[dict] = []
        self.refused: list[str] = []
        self.put_failures: list[Exception] = []
        self.lists: list[dict] = []
        self.gets: list[str] = []
        self.page_size = 1000
        self._continuations: dict[str, tuple[str, str, str]] = {}
        self.missing_denied = missing_denied
        self.interleave = interleave
        self._etags = itertools.count(1)

    def get_object(self, *, Bucket: str, Key: str) -> dict:
        with self.lock:
            self.gets.append(Key)
            found = self.objects.get((Bucket, Key))
        if self.interleave:
            time.sleep(0.0002)
        if found is None:
            if self.missing_denied:
                raise client_error("AccessDenied", 403, "GetObject", "Access Denied")
            raise client_error("NoSuchKey", 404, "GetObject", "The specified key does not exist.")
        body, etag = found
        return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": etag, "ContentLength": len(body)}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **arguments: Any) -> dict:
        with self.lock:
            self.puts.append({"Bucket": Bucket, "Key": Key, "Body": Body, **arguments})
            failure = self.put_failures.pop(0) if self.put_failures else None
            if failure is not None:
                raise failure
            current = self.objects.get((Bucket, Key))
            if arguments.get("IfNoneMatch") == "*" and current is not None:
                self.refused.append("IfNoneMatch")
                raise precondition_failed()
            if "IfMatch" in arguments:
                if current is None:
                    self.refused.append("IfMatch (missing)")
                    raise client_error("NoSuchKey", 404, "PutObject", "The specified key does not exist.")
                if current[1] != arguments["IfMatch"]:
                    self.refused.append("IfMatch")
                    raise precondition_failed()
            etag = f'"{next(self._etags):032x}"'
            self.objects[(Bucket, Key)] = (Body, etag)
            return {"ETag": etag}

    def list_objects_v2(self, *, Bucket: str, Prefix: str, **arguments: Any) -> dict:
        self.lists.append({"Bucket": Bucket, "Prefix": Prefix, **arguments})
        limit = min(arguments.get("MaxKeys", 1000), self.page_size)
        with self.lock:
            keys = sorted(key for bucket, key in self.objects if bucket == Bucket and key.startswith(Prefix))
            after = ""
            if "ContinuationToken" in arguments:
                listing = self._continuations.get(arguments["ContinuationToken"])
                if listing is None or listing[:2] != (Bucket, Prefix):
                    raise client_error("InvalidArgument", 400, "ListObjectsV2", "The continuation token provided is incorrect")
                after = listing[2]
            keys = [key for key in keys if key > after]
            page = keys[:limit]
            answer = {"Contents": [{"Key": key} for key in page], "KeyCount": len(page), "IsTruncated": len(keys) > limit}
            if answer["IsTruncated"]:
                token = f"token-{len(self._continuations) + 1}"
                self._continuations[token] = (Bucket, Prefix, page[-1])
                answer["NextContinuationToken"] = token
        if not page:
            del answer["Contents"]  # S3 leaves Contents out of an empty page
        return answer

    def state(self, model: str) -> dict | None:
        found = self.objects.get((DATA_BUCKET, f"retrain/state/{model}.json"))
        return None if found is None else json.loads(found[0])

    def written(self) -> list[dict]:
        """The PutObjects that wrote."""
        return [put for put in self.puts if (put["Bucket"], put["Key"]) in self.objects]


class FakeSageMaker:
    """StartPipelineExecution on the given pipelines. A ClientRequestToken already used answers
    the execution it started (the same arguments) or ValidationException (others); a token
    outside 32 to 128 characters is a ValidationException. `failures` are raised, in order, by
    the next calls."""

    def __init__(self, pipelines: list[str]):
        self.lock = threading.Lock()
        self.pipelines = set(pipelines)
        self.calls: list[dict] = []
        self.executions: list[dict] = []
        self.by_token: dict[str, dict] = {}
        self.failures: list[Exception] = []

    def start_pipeline_execution(self, **arguments: Any) -> dict:
        with self.lock:
            self.calls.append(arguments)
            if self.failures:
                raise self.failures.pop(0)
            name = arguments["PipelineName"]
            if name not in self.pipelines:
                raise client_error("ResourceNotFound", 400, "StartPipelineExecution", f"Pipeline {name} does not exist")
            token = arguments["ClientRequestToken"]
            if not 32 <= len(token) <= 128:
                raise client_error("ValidationException", 400, "StartPipelineExecution", "bad token")
            if token in self.by_token:
                execution = self.by_token[token]
                if execution["arguments"] != arguments:
                    raise client_error("ValidationException", 400, "StartPipelineExecution", "token reused")
                return {"PipelineExecutionArn": execution["arn"]}
            arn = (
                f"arn:aws:sagemaker:eu-west-1:222222222222:pipeline/{name}/execution/"
                f"{len(self.executions) + 1:012d}"
            )
            execution = {"arn": arn, "arguments": arguments}
            self.executions.append(execution)
            self.by_token[token] = execution
            return {"PipelineExecutionArn": arn}

    def of(self, pipeline: str) -> list[dict]:
        return [execution for execution in self.executions if execution["arguments"]["PipelineName"] == pipeline]


class Clock:
    """A UTC clock the tests move."""

    def __init__(self, at: datetime = START):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Aws:
    s3: FakeS3
    sagemaker: FakeSageMaker
    clock: Clock
    sleeps: list[float]


@pytest.fixture(autouse=True)
def fresh_container():
    """Each test starts as a new Lambda container: no configuration, clients or clock."""
    retrain.reset()
    yield
    retrain.reset()


@pytest.fixture
def aws() -> Aws:
    return Aws(FakeS3(), FakeSageMaker([TREES_PIPELINE, FLOWERS_PIPELINE]), Clock(), [])


def config_with(**changes: Any) -> dict:
    document = copy.deepcopy(CONFIG)
    document.update(changes)
    return document


def parsed(**changes: Any):
    return retrain.parse_config(json.dumps(config_with(**changes)))


_event_ids = itertools.count(1)


def image_event(key: str = "raw/trees/oak/photo.jpg", bucket: str = DATA_BUCKET) -> dict:
    """An S3 "Object Created" event as EventBridge delivers it."""
    number = next(_event_ids)
    return {
        "version": "0",
        "id": f"17793124-05d4-b198-2fde-7ededc63b{number:03d}",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "222222222222",
        "time": "2026-12-01T07:05:09Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 52431, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "222222222222",
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        },
    }


def tick() -> dict:
    """The scheduled tick as EventBridge delivers it."""
    return {
        "version": "0",
        "id": f"53dc4d37-cffa-4f76-80c9-8b7d4a4d2{next(_event_ids):03d}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "222222222222",
        "time": "2026-12-01T07:06:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:222222222222:rule/mlops-images-staging-retrain-quiet-check"],
        "detail": {},
    }


def images(count: int, model: str = "trees") -> list[dict]:
    return [image_event(f"raw/{model}/oak/photo-{n:04d}.jpg") for n in range(count)]


def process(aws: Aws, event: dict, config=None, sleep=None):
    """One event through retrain.process with the fakes; its outcomes (errors raised)."""
    clients = retrain.Clients(s3=aws.s3, sagemaker=aws.sagemaker)
    outcomes, errors = retrain.process(
        event, config or parsed(), clients, now=aws.clock, sleep=sleep or aws.sleeps.append
    )
    if errors:
        raise errors[0]
    return outcomes


def deliver(aws: Aws, events: list[dict], config=None) -> list:
    """Events one after another, each at the clock's time; all their outcomes."""
    return [outcome for event in events for outcome in process(aws, event, config)]


def total(outcomes: list, attribute: str) -> int:
    return sum(getattr(outcome, attribute) for outcome in outcomes)


def metric_lines(capsys) -> list[dict]:
    """The Embedded Metric Format documents printed since the last read."""
    documents = []
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line)
        assert "_aws" in document, line
        documents.append(document)
    return documents


def assert_started_once_per_batch(aws: Aws, pipeline: str = TREES_PIPELINE) -> list[dict]:
    """Each execution of the pipeline has its own token; answers them, oldest first."""
    executions = aws.sagemaker.of(pipeline)
    tokens = [execution["arguments"]["ClientRequestToken"] for execution in executions]
    assert len(set(tokens)) == len(tokens)
    return executions


# --- bursts ----------------------------------------------------------------------------------


def test_200_images_with_batch_size_200_start_exactly_one_run(aws):
    config = parsed(batch_size=200)
    outcomes = deliver(aws, images(199), config)
    assert aws.sagemaker.calls == []
    outcomes += deliver(aws, images(1), config)

    (execution,) = assert_started_once_per_batch(aws)
    assert execution["arguments"]["PipelineExecutionDescription"] == "200 new images since 2026-12-01T07:05:09Z"
    assert (total(outcomes, "images_arrived"), total(outcomes, "runs_started")) == (200, 1)
    state = aws.s3.state("trees")
    assert state["pending"] == 0 and state["starting"] is None
    assert state["last_run"]["images"] == 200
    assert state["last_run"]["arn"] == execution["arn"]
    assert aws.sagemaker.of(FLOWERS_PIPELINE) == []


def test_200_images_with_batch_size_100_start_exactly_two_runs(aws):
    outcomes = deliver(aws, images(200))

    first, second = assert_started_once_per_batch(aws)
    assert [outcome.runs_started for outcome in outcomes].count(1) == 2
    assert outcomes[99].execution_arns == (first["arn"],)
    assert outcomes[199].execution_arns == (second["arn"],)
    assert first["arguments"]["PipelineExecutionDisplayName"] == "retrain-1-20261201T070509Z"
    assert second["arguments"]["PipelineExecutionDisplayName"] == "retrain-2-20261201T070509Z"
    state = aws.s3.state("trees")
    assert (state["pending"], state["batches"], state["last_run"]["images"]) == (0, 2, 100)
    assert total(outcomes, "images_arrived") == 200


@pytest.mark.parametrize("batch_size", [200, 50])
def test_200_images_from_8_threads_are_each_counted_once_and_start_each_batch_once(aws, batch_size):
    aws.s3.interleave = True
    config = parsed(batch_size=batch_size)
    events = images(200)
    outcomes: list = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(share: list[dict]) -> None:
        try:
            for event in share:
                result = process(aws, event, config, sleep=lambda seconds: time.sleep(seconds / 10))
                with lock:
                    outcomes.extend(result)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(events[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert aws.s3.refused, "the threads never raced; the test proves nothing"
    executions = assert_started_once_per_batch(aws)
    state = aws.s3.state("trees")
    assert state["starting"] is None
    images_in_runs = [
        int(execution["arguments"]["PipelineExecutionDescription"].split()[0]) for execution in executions
    ]
    # No image lost or counted twice; each batch full when it began; each run counted once.
    assert sum(images_in_runs) + state["pending"] == 200
    assert all(count >= batch_size for count in images_in_runs)
    assert total(outcomes, "images_arrived") == 200
    assert total(outcomes, "runs_started") == len(executions)
    if batch_size == 200:
        assert len(executions) == 1 and state["pending"] == 0
    # Every start call (concurrent repeats included) was for a batch that started once.
    assert {call["ClientRequestToken"] for call in aws.sagemaker.calls} == set(aws.sagemaker.by_token)


# --- quiet periods ---------------------------------------------------------------------------


def test_a_trickle_starts_one_run_once_the_images_have_gone_quiet(aws):
    for _ in range(3):
        deliver(aws, images(1))
        aws.clock.advance(minutes=5)
    # The latest image was counted 5 minutes ago; 24 more make 29 of the 30 quiet minutes.
    aws.clock.advance(minutes=24)
    (before,) = process(aws, tick())
    assert aws.sagemaker.calls == [] and before.runs_started == 0
    assert (before.model, before.pending) == ("trees", 3)

    aws.clock.advance(minutes=1)
    (due,) = process(aws, tick())
    (execution,) = assert_started_once_per_batch(aws)
    assert due.runs_started == 1 and due.execution_arns == (execution["arn"],)
    assert execution["arguments"]["PipelineExecutionDescription"] == "3 new images since 2026-12-01T07:05:09Z"
    assert aws.s3.state("trees")["last_run"]["started_at"] == "2026-12-01T07:45:09Z"

    aws.clock.advance(minutes=1)
    writes = len(aws.s3.written())
    (after,) = process(aws, tick())
    aws.clock.advance(days=3)
    process(aws, tick())
    assert len(aws.sagemaker.executions) == 1 and after.runs_started == 0
    assert len(aws.s3.written()) == writes, "a tick with nothing to start writes nothing"


def test_a_tick_before_any_image_lists_the_states_and_does_nothing_else(aws):
    outcomes = process(aws, tick())
    assert outcomes == []
    assert aws.s3.lists == [{"Bucket": DATA_BUCKET, "Prefix": "retrain/state/"}]
    assert aws.s3.gets == [] and aws.s3.puts == [] and aws.sagemaker.calls == []


def test_a_tick_checks_every_model_with_a_state_object_and_no_other(aws):
    deliver(aws, images(2, "trees") + images(5, "flowers"))
    # Objects under the state prefix that are no model's state, and a raw folder of no state.
    for key in ("retrain/state/notes.txt", "retrain/state/old/grasses.json", "retrain/state/bad_name.json", "retrain/state/.json"):
        aws.s3.objects[(DATA_BUCKET, key)] = (b"{", '"x"')
    aws.s3.objects[(DATA_BUCKET, "raw/grasses/x.jpg")] = (b"jpeg", '"y"')
    aws.sagemaker.pipelines.add("mlops-images-staging-grasses")
    aws.clock.advance(minutes=30)
    aws.s3.gets.clear()

    outcomes = process(aws, tick())  # the stray objects would raise StateError if read
    # In the listing's order (S3 lists keys in UTF-8 binary order).
    assert [(outcome.model, outcome.runs_started) for outcome in outcomes] == [("flowers", 1), ("trees", 1)]
    assert set(aws.s3.gets) == {"retrain/state/flowers.json", "retrain/state/trees.json"}
    assert {call["PipelineName"] for call in aws.sagemaker.calls} == {FLOWERS_PIPELINE, TREES_PIPELINE}
    (flowers,) = aws.sagemaker.of(FLOWERS_PIPELINE)
    assert flowers["arguments"]["PipelineParameters"] == [{"Name": "InputDataUri", "Value": FLOWERS_INPUT}]
    assert flowers["arguments"]["PipelineExecutionDescription"].startswith("5 new images")
    (trees,) = aws.sagemaker.of(TREES_PIPELINE)
    assert trees["arguments"]["PipelineParameters"] == [{"Name": "InputDataUri", "Value": TREES_INPUT}]


def test_counted_models_follows_the_listing_across_pages(aws):
    models = ["alder", "birch", "cedar", "elm", "fir"]
    for model in models:
        aws.sagemaker.pipelines.add(f"mlops-images-staging-{model}")
        deliver(aws, images(1, model))
    aws.s3.objects[(DATA_BUCKET, "retrain/state/bad_name.json")] = (b"{", '"x"')
    aws.s3.objects[(DATA_BUCKET, "retrain/statement.json")] = (b"{", '"x"')  # outside the prefix
    aws.s3.page_size = 2
    aws.s3.lists.clear()

    assert retrain.counted_models(aws.s3, parsed()) == models
    # alder, bad_name | birch, cedar | elm, fir: three pages, each asked with the previous token.
    assert aws.s3.lists == [
        {"Bucket": DATA_BUCKET, "Prefix": "retrain/state/"},
        {"Bucket": DATA_BUCKET, "Prefix": "retrain/state/", "ContinuationToken": "token-1"},
        {"Bucket": DATA_BUCKET, "Prefix": "retrain/state/", "ContinuationToken": "token-2"},
    ]
    # A tick checks the models of every page.
    del aws.s3.objects[(DATA_BUCKET, "retrain/state/bad_name.json")]
    aws.clock.advance(minutes=30)
    outcomes = process(aws, tick())
    assert [(outcome.model, outcome.runs_started) for outcome in outcomes] == [(model, 1) for model in models]


def test_a_failed_listing_on_a_tick_raises_and_checks_nothing(aws):
    deliver(aws, images(1))
    aws.clock.advance(minutes=30)

    def denied(**arguments):
        raise client_error("AccessDenied", 403, "ListObjectsV2", "Access Denied")

    aws.s3.list_objects_v2 = denied
    with pytest.raises(ClientError, match="AccessDenied"):
        process(aws, tick())
    assert aws.sagemaker.calls == [] and aws.s3.state("trees")["pending"] == 1


def test_an_image_restarts_the_quiet_period(aws):
    deliver(aws, images(1))
    aws.clock.advance(minutes=29)
    deliver(aws, images(1))
    aws.clock.advance(minutes=29)
    process(aws, tick())
    assert aws.sagemaker.calls == []
    aws.clock.advance(minutes=1)
    process(aws, tick())
    (execution,) = aws.sagemaker.executions
    assert execution["arguments"]["PipelineExecutionDescription"].startswith("2 new images")


# --- failed and interrupted starts -----------------------------------------------------------


def test_a_failed_start_is_retried_by_the_next_tick_with_the_same_token(aws):
    config = parsed(batch_size=3)
    aws.sagemaker.failures.append(client_error("ThrottlingException", 400, "StartPipelineExecution", "Rate exceeded"))
    outcomes = deliver(aws, images(3), config)  # the third begins the batch; its start fails

    assert outcomes[2].start_failures == 1 and outcomes[2].runs_started == 0
    assert "ThrottlingException" in outcomes[2].error and outcomes[2].starting == "1-20261201T070509Z"
    state = aws.s3.state("trees")
    assert state["starting"]["images"] == 3 and state["pending"] == 0
    assert aws.sagemaker.executions == []

    aws.clock.advance(minutes=1)
    (retried,) = process(aws, tick(), config)
    first_call, second_call = aws.sagemaker.calls
    assert first_call == second_call  # the same token and arguments
    assert retried.runs_started == 1 and retried.start_failures == 0 and retried.error is None
    (execution,) = aws.sagemaker.executions
    assert execution["arguments"]["PipelineExecutionDescription"] == "3 new images since 2026-12-01T07:05:09Z"
    state = aws.s3.state("trees")
    assert state["starting"] is None
    assert state["last_run"]["images"] == 3
    assert state["last_run"]["token"] == first_call["ClientRequestToken"]


def test_images_arriving_while_a_start_fails_count_towards_the_next_batch(aws):
    config = parsed(batch_size=3)
    for _ in range(3):
        aws.sagemaker.failures.append(client_error("ServiceUnavailable", 503, "StartPipelineExecution"))
    outcomes = deliver(aws, images(4), config)  # the fourth retries the start, which fails again
    assert [outcome.start_failures for outcome in outcomes] == [0, 0, 1, 1]
    state = aws.s3.state("trees")
    assert (state["starting"]["images"], state["pending"], state["batch"]) == (3, 1, "2-20261201T070509Z")

    # The sixth image fills batch 2 while batch 1 is still starting; its start of batch 1
    # succeeds, and the write recording it begins batch 2, which it starts too.
    outcomes = deliver(aws, images(2), config)
    assert [(outcome.start_failures, outcome.runs_started) for outcome in outcomes] == [(1, 0), (0, 2)]
    first, second = assert_started_once_per_batch(aws)
    assert first["arguments"]["PipelineExecutionDescription"].startswith("3 new images")
    assert second["arguments"]["PipelineExecutionDisplayName"] == "retrain-2-20261201T070509Z"
    assert aws.s3.state("trees")["pending"] == 0


def test_a_run_started_but_not_recorded_is_recorded_later_without_a_second_run(aws):
    config = parsed(batch_size=2)
    deliver(aws, images(1), config)
    # The second image's write (which begins the batch) goes through; the one recording the run fails.
    aws.s3.put_failures += [None, client_error("InternalError", 500, "PutObject", "We encountered an internal error")]
    (outcome,) = process(aws, images(1)[0], config)
    assert outcome.images_arrived == 1 and outcome.runs_started == 0 and outcome.start_failures == 0
    assert "started, not recorded" in outcome.error
    assert aws.s3.state("trees")["starting"] is not None

    (recorded,) = process(aws, tick(), config)
    assert len(aws.sagemaker.calls) == 2 and len(aws.sagemaker.executions) == 1
    assert recorded.runs_started == 1
    assert aws.s3.state("trees")["last_run"]["arn"] == aws.sagemaker.executions[0]["arn"]


def test_a_start_that_keeps_failing_is_retried_at_every_tick_and_never_raises(aws):
    config = parsed(batch_size=1)
    aws.sagemaker.pipelines.clear()  # ResourceNotFound, every time
    deliver(aws, images(1), config)
    for _ in range(3):
        aws.clock.advance(minutes=1)
        (trees,) = process(aws, tick(), config)
        assert trees.model == "trees" and trees.start_failures == 1 and "ResourceNotFound" in trees.error
    assert len({call["ClientRequestToken"] for call in aws.sagemaker.calls}) == 1
    assert len(aws.sagemaker.calls) == 4


def test_an_unknown_models_start_fails_is_logged_counted_and_retried_at_the_next_tick(aws):
    """A folder with a model's name but no pipeline: its images are counted and its start
    fails with SageMaker's error at every attempt; once the pipeline exists, a tick starts it."""
    config = parsed(batch_size=2)
    outcomes = deliver(aws, images(2, "grasses"), config)
    assert [(outcome.model, outcome.images_arrived, outcome.start_failures) for outcome in outcomes] == [
        ("grasses", 1, 0),
        ("grasses", 1, 1),
    ]
    failed = outcomes[1]
    assert "ResourceNotFound" in failed.error and "mlops-images-staging-grasses" in failed.error
    assert failed.starting == "1-20261201T070509Z" and failed.runs_started == 0
    assert aws.s3.state("grasses")["starting"]["images"] == 2
    (call,) = aws.sagemaker.calls
    assert call["PipelineName"] == "mlops-images-staging-grasses"
    assert call["PipelineParameters"] == [{"Name": "InputDataUri", "Value": f"s3://{DATA_BUCKET}/raw/grasses/"}]

    aws.clock.advance(minutes=1)
    (retried,) = process(aws, tick(), config)
    assert (retried.model, retried.start_failures, retried.runs_started) == ("grasses", 1, 0)
    assert "ResourceNotFound" in retried.error

    aws.sagemaker.pipelines.add("mlops-images-staging-grasses")
    aws.clock.advance(minutes=1)
    (started,) = process(aws, tick(), config)
    assert (started.start_failures, started.runs_started, started.error) == (0, 1, None)
    assert len({call["ClientRequestToken"] for call in aws.sagemaker.calls}) == 1 and len(aws.sagemaker.calls) == 3
    (execution,) = aws.sagemaker.of("mlops-images-staging-grasses")
    assert aws.s3.state("grasses")["last_run"]["arn"] == execution["arn"]
    assert aws.s3.state("grasses")["starting"] is None


def test_a_connection_failure_on_start_is_a_start_failure(aws):
    config = parsed(batch_size=1)
    aws.sagemaker.failures.append(EndpointConnectionError(endpoint_url="https://api.sagemaker"))
    (outcome,) = process(aws, images(1)[0], config)
    assert outcome.start_failures == 1 and "EndpointConnectionError" in outcome.error


# --- the start call and the token ------------------------------------------------------------


def test_the_start_call_names_the_pipeline_input_and_batch(aws):
    deliver(aws, images(100))
    (call,) = aws.sagemaker.calls
    token = call.pop("ClientRequestToken")
    assert call == {
        "PipelineName": TREES_PIPELINE,
        "PipelineParameters": [{"Name": "InputDataUri", "Value": TREES_INPUT}],
        "PipelineExecutionDisplayName": "retrain-1-20261201T070509Z",
        "PipelineExecutionDescription": "100 new images since 2026-12-01T07:05:09Z",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}", call["PipelineExecutionDisplayName"])


def test_tokens_are_deterministic_and_differ_by_pipeline_model_and_batch():
    trees = retrain.Model("trees", TREES_PIPELINE, TREES_INPUT)
    token = retrain.start_token(trees, "1-20261201T070509Z")
    assert token == retrain.start_token(trees, "1-20261201T070509Z")
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,128}", token)
    others = {
        retrain.start_token(trees, "2-20261201T070509Z"),
        retrain.start_token(trees, "1-20261201T070510Z"),
        retrain.start_token(retrain.Model("trees", "mlops-images-prod-trees", TREES_INPUT), "1-20261201T070509Z"),
        retrain.start_token(retrain.Model("oaks", TREES_PIPELINE, TREES_INPUT), "1-20261201T070509Z"),
    }
    assert token not in others and len(others) == 4


# --- the state object ------------------------------------------------------------------------


def test_a_run_is_recorded_only_over_the_batch_it_started():
    config = parsed(batch_size=2)
    trees = config.model("trees")
    at = START
    starting = retrain.begin(retrain.count_image(retrain.count_image(retrain.State(), at), at), trees)
    token = starting.starting.token
    assert retrain.finish(starting, "another-token", "arn:x", at, config, trees) is None
    assert retrain.finish(retrain.State(), token, "arn:x", at, config, trees) is None
    recorded = retrain.finish(starting, token, "arn:x", at, config, trees)
    assert recorded.starting is None and recorded.last_run.images == 2 and recorded.last_run.arn == "arn:x"


def test_readiness_needs_an_image_nothing_starting_and_a_full_or_quiet_batch():
    config = parsed(batch_size=3)
    trees = config.model("trees")
    one = retrain.count_image(retrain.State(), START)
    assert not retrain.is_ready(retrain.State(), START + timedelta(days=1), config)
    assert not retrain.is_ready(one, START + timedelta(minutes=29, seconds=59), config)
    assert retrain.is_ready(one, START + timedelta(minutes=30), config)
    full = retrain.count_image(retrain.count_image(one, START), START)
    assert retrain.is_ready(full, START, config)
    waiting = retrain.count_image(retrain.begin(full, trees), START)
    assert not retrain.is_ready(waiting, START + timedelta(days=1), config)
    # A clock that steps back does not move the latest image earlier.
    later = retrain.count_image(one, START - timedelta(minutes=5))
    assert later.last_at == START and later.first_at == START



def test_state_writes_are_conditional_on_what_was_read(aws):
    deliver(aws, images(3))
    first, second, third = aws.s3.puts
    assert first["IfNoneMatch"] == "*" and "IfMatch" not in first
    assert second["IfMatch"] == f'"{1:032x}"' and third["IfMatch"] == f'"{2:032x}"'
    for put in aws.s3.puts:
        assert put["Key"] == "retrain/state/trees.json" and put["Bucket"] == DATA_BUCKET
        assert put["ContentType"] == "application/json"
        # The bucket's default encryption (its own KMS key) applies: no encryption parameters.
        assert not {"ServerSideEncryption", "SSEKMSKeyId"} & set(put)


def test_the_state_document(aws):
    config = parsed(batch_size=3)
    deliver(aws, images(3), config)
    aws.clock.advance(minutes=2)
    deliver(aws, images(1), config)
    assert aws.s3.state("trees") == {
        "version": 1,
        "revision": 5,
        "pending": 1,
        "first_at": "2026-12-01T07:07:09Z",
        "last_at": "2026-12-01T07:07:09Z",
        "batch": "2-20261201T070709Z",
        "batches": 2,
        "starting": None,
        "last_run": {
            "arn": aws.sagemaker.executions[0]["arn"],
            "batch": "1-20261201T070509Z",
            "token": aws.sagemaker.calls[0]["ClientRequestToken"],
            "images": 3,
            "first_at": "2026-12-01T07:05:09Z",
            "started_at": "2026-12-01T07:05:09Z",
        },
    }
    body = aws.s3.objects[(DATA_BUCKET, "retrain/state/trees.json")][0]
    assert retrain.state_document(retrain.parse_state(body.decode())) == json.loads(body)


@pytest.mark.parametrize("failure", [precondition_failed, conditional_conflict])
def test_a_refused_write_is_retried_from_a_fresh_read(aws, failure):
    deliver(aws, images(1))
    aws.s3.put_failures += [failure(), failure()]
    (outcome,) = process(aws, images(1)[0])
    assert outcome.images_arrived == 1
    assert aws.s3.state("trees")["pending"] == 2
    assert len(aws.sagemaker.calls) == 0
    assert len(aws.sleeps) == 2 and all(0 <= pause <= 0.4 for pause in aws.sleeps)


def test_a_state_deleted_between_read_and_write_is_created_again(aws):
    deliver(aws, images(1))
    aws.s3.put_failures.append(client_error("NoSuchKey", 404, "PutObject"))
    deliver(aws, images(1))
    assert aws.s3.state("trees")["pending"] == 2


def test_a_state_that_keeps_changing_fails_after_20_attempts_and_counts_nothing(aws, capsys):
    aws.s3.put_failures += [precondition_failed() for _ in range(20)]
    with pytest.raises(retrain.StateError, match="changed under each of 20 attempts"):
        process(aws, images(1)[0])
    assert len(aws.s3.puts) == 20 and len(aws.sleeps) == 19
    assert aws.s3.state("trees") is None
    deliver(aws, images(1))  # Lambda's retry of the event counts it
    assert aws.s3.state("trees")["pending"] == 1


def test_another_s3_error_on_the_count_raises_and_counts_nothing(aws):
    aws.s3.put_failures.append(client_error("AccessDenied", 403, "PutObject", "Access Denied"))
    with pytest.raises(ClientError, match="AccessDenied"):
        process(aws, images(1)[0])
    assert aws.s3.state("trees") is None and aws.sleeps == []


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"{", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"version": 2}', "`version` is 2"),
        (json.dumps({"version": 1, "revision": 1, "pending": -1, "batches": 0}).encode(), "`pending`"),
        (
            json.dumps({"version": 1, "revision": 1, "pending": 2, "batches": 1, "first_at": None, "last_at": None, "batch": None}).encode(),
            "exactly when `pending` is above 0",
        ),
        (
            json.dumps(
                {"version": 1, "revision": 1, "pending": 0, "batches": 1, "starting": {"token": "t", "batch": "b", "images": 1, "first_at": "yesterday", "last_at": "2026-12-01T07:05:09Z"}}
            ).encode(),
            "`starting.first_at` is not an ISO 8601 time",
        ),
        (b"\xff", "not UTF-8"),
    ],
)
def test_a_state_object_that_is_not_a_state_is_an_error_naming_it(aws, body, problem):
    aws.s3.objects[(DATA_BUCKET, "retrain/state/trees.json")] = (body, '"x"')
    with pytest.raises(retrain.StateError) as raised:
        process(aws, images(1)[0])
    message = str(raised.value)
    assert f"s3://{DATA_BUCKET}/retrain/state/trees.json" in message and problem in message
    assert aws.s3.puts == []


def test_a_missing_state_read_as_access_denied_is_missing_when_the_key_is_not_listed(aws):
    aws.s3.missing_denied = True
    deliver(aws, images(2))
    assert aws.s3.state("trees")["pending"] == 2
    assert aws.s3.lists == [{"Bucket": DATA_BUCKET, "Prefix": "retrain/state/trees.json", "MaxKeys": 1}]


def test_access_denied_on_a_listed_state_is_raised(aws):
    deliver(aws, images(1))
    original = aws.s3.get_object

    def denied(**arguments):
        raise client_error("AccessDenied", 403, "GetObject", "Access Denied")

    aws.s3.get_object = denied
    with pytest.raises(ClientError, match="AccessDenied"):
        process(aws, images(1)[0])
    aws.s3.get_object = original
    assert aws.s3.state("trees")["pending"] == 1


def test_a_tick_goes_on_past_a_broken_model_and_raises_after(aws, capsys, monkeypatch):
    monkeypatch.setenv(retrain.CONFIG_VARIABLE, json.dumps(config_with()))
    retrain.set_clients(s3=aws.s3, sagemaker=aws.sagemaker)
    retrain.set_clock(now=aws.clock, sleep=aws.sleeps.append)
    aws.s3.objects[(DATA_BUCKET, "retrain/state/trees.json")] = (b"{", '"x"')
    retrain.handler(images(1, "flowers")[0], None)
    aws.clock.advance(minutes=30)
    capsys.readouterr()
    with pytest.raises(retrain.StateError, match="trees.json"):
        retrain.handler(tick(), None)
    flowers, trees = metric_lines(capsys)
    assert trees["Model"] == "trees" and "StateError" in trees["Error"] and trees["RunsStarted"] == 0
    assert flowers["Model"] == "flowers" and flowers["RunsStarted"] == 1 and "Error" not in flowers


# --- events ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, reason",
    [
        (image_event(bucket="mlops-images-staging-artifacts-222222222222"), "is not the data bucket"),
        (image_event("review/pending/plants/x.jpg"), "key is outside `raw/`"),
        (image_event("raw/trees/oak/"), "key is a folder marker"),
        (image_event("raw/photo.jpg"), "key names no model folder"),
        (image_event("raw//photo.jpg"), "key names no model folder"),
        (image_event("rawtrees/x.jpg"), "key is outside"),
        (image_event("raw/bad_name/x.jpg"), "folder `bad_name` cannot name a model (its pipeline would be `mlops-images-staging-bad_name`)"),
        (image_event("raw/trees.v2/x.jpg"), "folder `trees.v2` cannot name a model"),
        (image_event("raw/trees-/x.jpg"), "folder `trees-` cannot name a model"),
        (image_event("raw/trees\n/x.jpg"), "folder `trees\n` cannot name a model"),
        # 21 characters of prefix and 236 of folder: one more than a pipeline name's 256.
        (image_event(f"raw/{'a' * 236}/x.jpg"), f"folder `{'a' * 236}` cannot name a model"),
    ],
)
def test_images_of_no_possible_model_are_ignored(aws, event, reason):
    (outcome,) = process(aws, event)
    assert reason in outcome.ignored and outcome.model is None
    assert outcome.images_arrived == 0
    assert aws.s3.puts == [] and aws.sagemaker.calls == []
    assert process(aws, tick()) == [], "an ignored image leaves no state for a tick to check"


def test_the_longest_folder_name_that_makes_a_pipeline_name_is_a_model(aws):
    name = "a" * 235
    (outcome,) = process(aws, image_event(f"raw/{name}/x.jpg"))
    assert (outcome.model, outcome.ignored, outcome.images_arrived) == (name, None, 1)
    assert aws.s3.state(name)["pending"] == 1


def test_the_model_is_the_first_segment_after_the_raw_prefix(aws):
    (outcome,) = process(aws, image_event("raw/trees/oak/deep/x.jpg"))
    assert outcome.model == "trees" and outcome.images_arrived == 1
    config = parsed(raw_prefix="incoming/photos/")
    (outcome,) = process(aws, image_event("incoming/photos/flowers/rose.png"), config)
    assert outcome.model == "flowers"


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}},
        {"source": "aws.events", "detail-type": "EC2 Instance State-change Notification"},
        {"Records": [{"eventSource": "aws:s3"}]},
        {},
        [],
        None,
    ],
)
def test_other_events_raise(aws, event):
    with pytest.raises(ValueError, match="takes S3 `Object Created` events|not an EventBridge event"):
        process(aws, event)


@pytest.mark.parametrize(
    "detail",
    [{}, {"bucket": {"name": DATA_BUCKET}}, {"object": {"key": "raw/trees/x.jpg"}}, None, {"bucket": {"name": DATA_BUCKET}, "object": {"key": ""}}],
)
def test_an_image_event_without_bucket_and_key_raises(aws, detail):
    event = image_event()
    event["detail"] = detail
    with pytest.raises(ValueError, match="names no bucket and key"):
        process(aws, event)


# --- configuration ---------------------------------------------------------------------------


def test_the_configuration_is_parsed():
    config = parsed()
    assert config.pipeline_prefix == "mlops-images-staging-"
    assert config.model("trees") == retrain.Model("trees", TREES_PIPELINE, TREES_INPUT)
    assert config.model("flowers") == retrain.Model("flowers", FLOWERS_PIPELINE, FLOWERS_INPUT)
    assert (config.batch_size, config.quiet, config.state_key("trees")) == (
        100,
        timedelta(minutes=30),
        "retrain/state/trees.json",
    )
    other = parsed(pipeline_prefix="shop-prod-", raw_prefix="incoming/photos/")
    assert other.model("trees") == retrain.Model(
        "trees", "shop-prod-trees", f"s3://{DATA_BUCKET}/incoming/photos/trees/"
    )


@pytest.mark.parametrize(
    "name, is_model",
    [
        ("trees", True),
        ("oak-trees", True),
        ("Trees2", True),
        ("a" * 235, True),
        ("", False),
        ("a_b", False),
        ("a/b", False),
        ("trees.v2", False),
        ("trees-", False),
        ("trees\n", False),
        ("a" * 236, False),
    ],
)
def test_a_folder_is_a_model_when_it_makes_a_pipeline_name(name, is_model):
    assert parsed().is_model_name(name) is is_model


def _without(key: str) -> dict:
    document = config_with()
    del document[key]
    return document


@pytest.mark.parametrize(
    "document, field",
    [
        (_without("bucket"), "`bucket`"),
        (config_with(bucket=""), "`bucket`"),
        (config_with(raw_prefix="raw"), "`raw_prefix` must end with"),
        (config_with(state_prefix=None), "`state_prefix`"),
        (config_with(state_prefix="raw/state/"), "`state_prefix`"),
        (config_with(raw_prefix="retrain/", state_prefix="retrain/state/"), "must not contain one another"),
        (config_with(batch_size=0), "`batch_size`"),
        (config_with(batch_size=True), "`batch_size`"),
        (config_with(batch_size=1.5), "`batch_size`"),
        (_without("quiet_minutes"), "`quiet_minutes`"),
        (config_with(quiet_minutes=-1), "`quiet_minutes`"),
        (_without("pipeline_prefix"), "`pipeline_prefix`"),
        (config_with(pipeline_prefix="mlops_images-"), "`pipeline_prefix` must start a SageMaker pipeline name"),
        (config_with(pipeline_prefix="mlops-images-staging\n"), "`pipeline_prefix` must start a SageMaker pipeline name"),
        # 252 characters and "model" make 257: too long, though the pattern counts no hyphens.
        (config_with(pipeline_prefix="a-" * 126), "`pipeline_prefix` must start a SageMaker pipeline name"),
        (_without("namespace"), "`namespace`"),
        (config_with(environment=7), "`environment`"),
    ],
)
def test_a_bad_configuration_names_the_field(document, field):
    with pytest.raises(ValueError, match=re.escape(field)) as raised:
        retrain.parse_config(json.dumps(document))
    assert str(raised.value).startswith("RETRAIN_CONFIG")


@pytest.mark.parametrize("text, problem", [("{", "is not valid JSON"), ("[]", "must be a JSON object")])
def test_a_configuration_that_is_not_an_object_is_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        retrain.parse_config(text)


def test_the_handler_raises_without_a_configuration(aws, monkeypatch):
    monkeypatch.delenv(retrain.CONFIG_VARIABLE, raising=False)
    with pytest.raises(ValueError, match="RETRAIN_CONFIG is not set"):
        retrain.handler(tick(), None)


def test_the_configuration_mlops_infra_renders_is_accepted():
    """The document src/retrain.rs writes (its unit test pins the same keys)."""
    config = retrain.parse_config(json.dumps(CONFIG))
    trees = config.model("trees")
    assert (trees.pipeline, trees.input_uri) == (TREES_PIPELINE, TREES_INPUT)
    assert not config.is_model_name("a_b"), "a pipeline name has no underscores"


# --- metrics ---------------------------------------------------------------------------------


def assert_embedded_metric_format(document: dict) -> None:
    """The document follows the EMF specification: a directive whose every dimension and
    metric is a member of the root, dimension values strings, metric values numbers."""
    metadata = document["_aws"]
    assert set(metadata) == {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(metadata["Timestamp"], int)
    (directive,) = metadata["CloudWatchMetrics"]
    assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
    for dimension_set in directive["Dimensions"]:
        for dimension in dimension_set:
            assert isinstance(document[dimension], str)
    for metric in directive["Metrics"]:
        assert set(metric) == {"Name", "Unit"}
        value = document[metric["Name"]]
        assert isinstance(value, (int, float)) and not isinstance(value, bool)


METRICS = [
    {"Name": "ImagesArrived", "Unit": "Count"},
    {"Name": "RunsStarted", "Unit": "Count"},
    {"Name": "StartFailures", "Unit": "Count"},
]


@pytest.fixture
def handler_aws(aws, monkeypatch) -> Aws:
    """The fakes injected into the handler, RETRAIN_CONFIG with batch_size 2."""
    monkeypatch.setenv(retrain.CONFIG_VARIABLE, json.dumps(config_with(batch_size=2)))
    retrain.set_clients(s3=aws.s3, sagemaker=aws.sagemaker)
    retrain.set_clock(now=aws.clock, sleep=aws.sleeps.append)
    return aws


def test_an_image_prints_one_metric_line(handler_aws, capsys):
    first, second = images(2)
    retrain.handler(first, None)
    capsys.readouterr()
    before = int(time.time() * 1000)
    answer = retrain.handler(second, None)
    after = int(time.time() * 1000)

    (document,) = metric_lines(capsys)
    assert_embedded_metric_format(document)
    assert before <= document["_aws"]["Timestamp"] <= after
    assert document["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "mlops-images/staging/retrain",
            "Dimensions": [["Environment"], ["Environment", "Model"]],
            "Metrics": METRICS,
        }
    ]
    del document["_aws"]
    (execution,) = handler_aws.sagemaker.executions
    assert document == {
        "Environment": "staging",
        "Trigger": "image",
        "Model": "trees",
        "EventId": second["id"],
        "Key": "raw/trees/oak/photo-0001.jpg",
        "Pending": 0,
        "ExecutionArn": execution["arn"],
        "ImagesArrived": 1,
        "RunsStarted": 1,
        "StartFailures": 0,
    }
    assert answer["outcomes"][0]["execution_arns"] == [execution["arn"]]


def test_a_failed_start_shows_in_the_metric_line(handler_aws, capsys):
    handler_aws.sagemaker.failures.append(client_error("ThrottlingException", 400, "StartPipelineExecution"))
    for event in images(2):
        retrain.handler(event, None)
    _, document = metric_lines(capsys)
    assert (document["ImagesArrived"], document["RunsStarted"], document["StartFailures"]) == (1, 0, 1)
    assert document["Starting"] == "1-20261201T070509Z"
    assert "ThrottlingException" in document["Error"]


def test_a_tick_prints_one_metric_line_per_model_with_a_state(handler_aws, capsys):
    for event in images(2, "trees") + images(1, "flowers"):
        retrain.handler(event, None)  # trees' batch of 2 starts at once
    handler_aws.clock.advance(minutes=30)
    capsys.readouterr()
    event = tick()
    answer = retrain.handler(event, None)
    flowers, trees = metric_lines(capsys)
    for document in (flowers, trees):
        assert_embedded_metric_format(document)
        assert document["Trigger"] == "tick" and document["ImagesArrived"] == 0
        assert document["EventId"] == event["id"]
    assert (trees["Model"], trees["RunsStarted"], trees["Pending"]) == ("trees", 0, 0)
    assert (flowers["Model"], flowers["RunsStarted"], flowers["Pending"]) == ("flowers", 1, 0)
    assert [outcome["model"] for outcome in answer["outcomes"]] == ["flowers", "trees"]


def test_a_tick_with_no_state_prints_no_line(handler_aws, capsys):
    assert retrain.handler(tick(), None) == {"outcomes": []}
    assert capsys.readouterr().out == ""


def test_an_unknown_models_failed_start_shows_in_its_metric_line(handler_aws, capsys):
    for event in images(2, "grasses"):
        retrain.handler(event, None)
    _, document = metric_lines(capsys)
    assert_embedded_metric_format(document)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Environment"], ["Environment", "Model"]]
    assert (document["Model"], document["ImagesArrived"], document["RunsStarted"], document["StartFailures"]) == (
        "grasses",
        1,
        0,
        1,
    )
    assert "ResourceNotFound" in document["Error"] and "Ignored" not in document
    handler_aws.clock.advance(minutes=1)
    retrain.handler(tick(), None)
    (document,) = metric_lines(capsys)
    assert (document["Model"], document["Trigger"], document["StartFailures"]) == ("grasses", "tick", 1)
    assert document["Starting"] == "1-20261201T070509Z"


def test_an_ignored_image_prints_a_line_without_the_model_dimension(handler_aws, capsys):
    retrain.handler(image_event("raw/bad_name/x.jpg"), None)
    (document,) = metric_lines(capsys)
    assert_embedded_metric_format(document)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Environment"]]
    assert "Model" not in document
    assert document["Ignored"] == (
        "folder `bad_name` cannot name a model (its pipeline would be `mlops-images-staging-bad_name`)"
    )
    assert (document["ImagesArrived"], document["RunsStarted"], document["StartFailures"]) == (0, 0, 0)


def test_an_unexpected_event_prints_no_line_and_raises(handler_aws, capsys):
    with pytest.raises(ValueError):
        retrain.handler({"source": "aws.s3", "detail-type": "Object Deleted"}, None)
    assert capsys.readouterr().out == ""


def test_reset_forgets_the_injected_clients_and_clock(handler_aws):
    retrain.reset()
    assert retrain._injected_clients == {} and retrain._now is retrain.utc_now
    assert retrain._sleep is time.sleep


# --- against the local AWS (moto's server) ---------------------------------------------------

LOCAL_PIPELINE_DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://x/raw/trees/"}],
    "Steps": [],
}


@pytest.fixture(scope="module")
def local_aws_clients(tmp_path_factory):
    """boto3 S3 and SageMaker clients of a local AWS server started for this module."""
    localaws = _load("localaws_conftest_for_retrain", REPO / "tests" / "localaws" / "conftest.py")
    state_dir = tmp_path_factory.mktemp("local-aws-retrain")
    url = localaws.start_server(state_dir)
    try:
        yield localaws.client_as(url, "s3", localaws.REGION), localaws.client_as(url, "sagemaker", localaws.REGION)
    finally:
        stopped = localaws.run_script(state_dir, "stop")
        assert stopped.returncode == 0, stopped.stderr


def test_against_the_local_aws_a_full_batch_starts_one_run(local_aws_clients):
    s3, sagemaker = local_aws_clients
    s3.create_bucket(Bucket=DATA_BUCKET)
    sagemaker.create_pipeline(
        PipelineName=TREES_PIPELINE,
        PipelineDefinition=json.dumps(LOCAL_PIPELINE_DEFINITION),
        RoleArn="arn:aws:iam::123456789012:role/mlops-images-staging-pipeline",
    )
    config = parsed(batch_size=3)
    clients = retrain.Clients(s3=s3, sagemaker=sagemaker)
    outcomes = []
    for event in images(4):
        found, errors = retrain.process(event, config, clients, sleep=lambda seconds: None)
        assert errors == []
        outcomes += found

    assert [outcome.runs_started for outcome in outcomes] == [0, 0, 1, 0]
    summaries = sagemaker.list_pipeline_executions(PipelineName=TREES_PIPELINE)["PipelineExecutionSummaries"]
    assert [summary["PipelineExecutionArn"] for summary in summaries] == list(outcomes[2].execution_arns)
    execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=summaries[0]["PipelineExecutionArn"])
    assert execution["PipelineExecutionDisplayName"].startswith("retrain-1-")
    assert execution["PipelineExecutionDescription"].startswith("3 new images since ")
    state = json.loads(s3.get_object(Bucket=DATA_BUCKET, Key="retrain/state/trees.json")["Body"].read())
    assert (state["pending"], state["starting"], state["revision"]) == (1, None, 5)
    assert retrain.counted_models(s3, config) == ["trees"]
    assert state["last_run"]["arn"] == summaries[0]["PipelineExecutionArn"]
    # A stale ETag is refused by the emulator as by S3.
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=DATA_BUCKET, Key="retrain/state/trees.json", Body=b"{}", IfMatch='"stale"')
