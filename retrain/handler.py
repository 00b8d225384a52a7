"""The retrain function: starts a model's pipeline once per batch of new images, not once per image.

EventBridge sends the function every "Object Created" event of the data bucket's raw images
and a scheduled tick every minute. A model's pipeline starts when `batch_size` new images have
arrived since its last run, or when at least one has and `quiet_minutes` have passed since the
latest, whichever comes first: a reviewer labelling 300 photos starts a few runs, not 300.
Entry point: `handler.handler`.

Configuration: the environment variable `RETRAIN_CONFIG`, a JSON document:

    {"bucket": "mlops-images-staging-data-222222222222", "raw_prefix": "raw/",
     "state_prefix": "retrain/state/", "pipeline_prefix": "mlops-images-staging-",
     "batch_size": 100, "quiet_minutes": 30,
     "namespace": "mlops-images/staging/retrain", "environment": "staging"}

`raw_prefix` and `state_prefix` are non-empty, end with "/" and do not contain one another
(a state write must never look like a new image). `batch_size` and `quiet_minutes` are
positive whole numbers. A model's pipeline is `pipeline_prefix` followed by the model's name
(`mlops-images-staging-trees`), and every run gets `s3://<bucket>/<raw_prefix><model>/` as the
pipeline parameter `InputDataUri`; the document does not list the models, so its size does not
grow with them (Lambda allows 4 KB of environment variables). A bad document raises ValueError
naming the field.

Events:

- `{"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name"},
  "object": {"key"}}, "id", "time"}`: one new image. Its model is the key's first path segment
  after `raw_prefix` (`raw/trees/oak/x.jpg` is an image of `trees`). An event of another
  bucket, a key outside `raw_prefix`, a key ending in "/" (a folder marker), a key directly
  under `raw_prefix` or a folder whose name cannot make a pipeline name is ignored: it counts
  nothing and raises nothing, and its metric line says why (`Ignored`). A folder that is no
  model's (no such pipeline) is counted, and its start fails with SageMaker's error, logged and
  counted in StartFailures at every attempt.
- `{"source": "aws.events", "detail-type": "Scheduled Event"}`: a tick; every model with a
  state object (ListObjectsV2 under `state_prefix`) is checked.
- Anything else raises ValueError, so it shows in the function's errors and dead-letter queue.

State: one object per model, `<state_prefix><model>.json` in `bucket`:

    {"version": 1, "revision": 42,
     "pending": 12, "first_at": "2026-12-01T07:05:09Z", "last_at": "2026-12-01T07:31:40Z",
     "batch": "8-20261201T070509Z", "batches": 8,
     "starting": {"token": <64 hex>, "batch": "7-20261201T061502Z", "images": 100,
                  "first_at": "2026-12-01T06:15:02Z", "last_at": "2026-12-01T07:02:11Z"} or null,
     "last_run": {"arn": <execution ARN>, "batch": "6-…", "token": <64 hex>, "images": 100,
                  "first_at": "…", "started_at": "2026-12-01T06:15:00Z"} or null}

- The open batch: `pending` images counted and not yet in any run, the first counted at
  `first_at` and the latest at `last_at`, under the batch id `batch`: `<n>-<first_at as
  YYYYmmddTHHMMSSZ>`, `n` counting the model's batches (`batches`). `pending` is 0 exactly when
  `batch`, `first_at` and `last_at` are null.
- `starting`: the batch whose run is being started, or null. `token` is the SageMaker
  `ClientRequestToken` of its start: the sha256 hex of `<pipeline>/<model>/<batch>`, fixed when
  the batch begins starting.
- `last_run`: the run most recently started, or null. `revision` counts the object's writes.

A missing object is the state of a model with nothing counted yet. Times are the function's
clock (UTC, to the second) when it counted an image, not the event's `time`.

Updates: every change is a read-modify-write with optimistic concurrency. GetObject gives the
state and its ETag; PutObject writes the new state with `IfMatch=<ETag>`, or with
`IfNoneMatch="*"` when there was no object. A write refused because the object changed
meanwhile (412 PreconditionFailed, 409 ConditionalRequestConflict, or 404 NoSuchKey when it was
deleted) is retried from a fresh read, at most 20 attempts, after a jittered sleep of at most
0.4 seconds. A GetObject answered 403 AccessDenied is taken for a missing object when listing
the key (ListObjectsV2 with the key as prefix) does not show it: S3 answers 403 rather than
404 for a missing object to a caller it does not let list the bucket. Writes send no encryption
parameters, so the bucket's default encryption (SSE-KMS with the data key) applies;
`ServerSideEncryption="aws:kms"` without a key id would choose the AWS managed key `aws/s3`
instead (S3 API reference, PutObject).

Starting a run, in three steps:

1. Begin: when the open batch is ready — `starting` is null and `pending` > 0, and either
   `pending` >= `batch_size` or `quiet_minutes` have passed since `last_at` — one write moves
   it into `starting` with its token and empties the open batch. On an image event the image
   is counted by the same write (the batch-size rule is what fires then); a tick writes only
   when a batch begins.
2. Start: StartPipelineExecution(PipelineName=<pipeline>, ClientRequestToken=<token>,
   PipelineParameters=[{"Name": "InputDataUri", "Value": <input_uri>}],
   PipelineExecutionDisplayName="retrain-<batch>",
   PipelineExecutionDescription="<images> new images since <first_at>"), every argument
   derived from the starting batch and the configuration alone.
3. Finish: one write, made only if the state read still shows `starting` with that token,
   sets `starting` null and `last_run` to the execution; if the open batch is ready by then, the
   same write begins it, and the function starts it too (at most 3 runs per model per
   invocation).

Whenever an invocation (image event or tick) finds `starting` set, it repeats steps 2 and 3
with the stored token. Invariants:

- Every counted image is in exactly one of the open batch, the starting batch or a started
  run; each write moves images between them whole, in one conditional write, so no image is
  lost or counted in two batches, whatever invocations race.
- At most one batch per model is starting; the next begins only after it has finished, so
  batches start in order, and images arriving meanwhile count towards the next batch.
- A starting batch's token and start arguments never change, so however many calls start it
  (concurrent invocations, retries after a failed start, a repeat after a finish write that
  failed once the start had succeeded) SageMaker starts one execution: ClientRequestToken makes
  StartPipelineExecution idempotent for as long as SageMaker keeps the token. A finish write
  that keeps failing for longer than that could start a second run for the batch.
- `starting` is cleared only after a start with its token has succeeded, by the one write
  that finds it still there: a batch is never dropped unstarted, and its run is counted
  (RunsStarted) by exactly one invocation.
- Every write increments `revision`, so no two writes of a state have the same body: even an
  ETag that is the body's MD5 (S3 without SSE-KMS; moto) never returns to a value read
  earlier, and a write conditional on it cannot succeed over a change made since that read.
- Counting is at least once: nothing raises after the write that counted an image (start and
  finish failures are logged, the state keeps `starting`, and the next event or tick retries),
  so Lambda never retries an event whose image was counted. A duplicate delivery by
  EventBridge, or a write whose answer was lost and was retried, counts an image twice; the
  batch then starts one image early.

Errors: a bad configuration, an unexpected event, a state object that is not a valid state,
or a state that could not be read or written before the image was counted raise (Lambda retries
the event; nothing was counted). On a tick every model with a state object is checked and the
first error is raised after all of them; a listing of `state_prefix` that fails raises before
any is checked.

Metrics: CloudWatch Embedded Metric Format lines on stdout, one per model an invocation handles
(an image event: its model; a tick: each model with a state object) and one for an ignored
event, in the configured namespace with dimensions [Environment] and [Environment, Model] (an
ignored event: [Environment] only): ImagesArrived, RunsStarted, StartFailures (Count). A line
also carries Trigger ("image" or "tick"), EventId and log fields: Key and Ignored (image
events), Pending (the open batch's images after the invocation), Starting (the batch still
starting, if any), ExecutionArn (the runs it started, comma-separated) and Error (a failure
that was logged, not raised).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

CONFIG_VARIABLE = "RETRAIN_CONFIG"
STATE_VERSION = 1
INPUT_PARAMETER = "InputDataUri"
WRITE_ATTEMPTS = 20
RETRY_BASE_SECONDS = 0.025
RETRY_MAX_DOUBLINGS = 4
STARTS_PER_INVOCATION = 3
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
CONFLICT_STATUSES = frozenset({409, 412})
DENIED_CODES = frozenset({"AccessDenied", "403"})
PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
PIPELINE_NAME_MAX = 256  # SageMaker's separate length limit: the pattern counts no hyphens
S3_SOURCE, CREATED = "aws.s3", "Object Created"
TICK_SOURCE, TICK = "aws.events", "Scheduled Event"


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A model as the function sees it: its name, its pipeline and the pipeline's input."""

    name: str
    pipeline: str
    input_uri: str


@dataclass(frozen=True)
class RetrainConfig:
    """RETRAIN_CONFIG, checked."""

    bucket: str
    raw_prefix: str
    state_prefix: str
    batch_size: int
    quiet_minutes: int
    pipeline_prefix: str
    namespace: str
    environment: str

    @property
    def quiet(self) -> timedelta:
        return timedelta(minutes=self.quiet_minutes)

    def model(self, name: str) -> Model:
        """The model whose images are under `<raw_prefix><name>/`."""
        return Model(
            name=name,
            pipeline=f"{self.pipeline_prefix}{name}",
            input_uri=f"s3://{self.bucket}/{self.raw_prefix}{name}/",
        )

    def is_model_name(self, name: str) -> bool:
        """Whether a folder name makes a pipeline name with the prefix."""
        return bool(name) and "/" not in name and is_pipeline_name(f"{self.pipeline_prefix}{name}")

    def state_key(self, model: str) -> str:
        return f"{self.state_prefix}{model}.json"


def is_pipeline_name(name: str) -> bool:
    """Whether SageMaker takes this as a pipeline name (fullmatch: `$` alone also matches before
    a final newline)."""
    return len(name) <= PIPELINE_NAME_MAX and bool(PIPELINE_NAME.fullmatch(name))


def _text(document: dict, key: str, where: str = "") -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{CONFIG_VARIABLE}: `{where}{key}` must be a non-empty string")
    return value


def _prefix(document: dict, key: str) -> str:
    prefix = _text(document, key)
    if not prefix.endswith("/"):
        raise ValueError(f'{CONFIG_VARIABLE}: `{key}` must end with "/" (it is `{prefix}`)')
    return prefix


def _positive_whole(document: dict, key: str) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{CONFIG_VARIABLE}: `{key}` must be a positive whole number")
    return value


def parse_config(text: str) -> RetrainConfig:
    """RETRAIN_CONFIG's JSON as a RetrainConfig; raises ValueError naming the bad field."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{CONFIG_VARIABLE} is not valid JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{CONFIG_VARIABLE} must be a JSON object")
    bucket = _text(document, "bucket")
    raw_prefix = _prefix(document, "raw_prefix")
    state_prefix = _prefix(document, "state_prefix")
    if state_prefix.startswith(raw_prefix) or raw_prefix.startswith(state_prefix):
        raise ValueError(
            f"{CONFIG_VARIABLE}: `state_prefix` (`{state_prefix}`) and `raw_prefix` (`{raw_prefix}`) "
            "must not contain one another: a state write would count as a new image"
        )
    pipeline_prefix = _text(document, "pipeline_prefix")
    if not is_pipeline_name(f"{pipeline_prefix}model"):
        raise ValueError(
            f"{CONFIG_VARIABLE}: `pipeline_prefix` must start a SageMaker pipeline name "
            f"(letters, digits and inner hyphens), not `{pipeline_prefix}`"
        )
    return RetrainConfig(
        bucket=bucket,
        raw_prefix=raw_prefix,
        state_prefix=state_prefix,
        batch_size=_positive_whole(document, "batch_size"),
        quiet_minutes=_positive_whole(document, "quiet_minutes"),
        pipeline_prefix=pipeline_prefix,
        namespace=_text(document, "namespace"),
        environment=_text(document, "environment"),
    )


# --- per-container state: configuration, clients, clock -------------------------------------


class Clients:
    """The AWS clients, each created at its first use unless given."""

    def __init__(self, s3: Any = None, sagemaker: Any = None):
        self._s3 = s3
        self._sagemaker = sagemaker

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            self._sagemaker = boto3.client("sagemaker")
        return self._sagemaker


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


_config: RetrainConfig | None = None
_clients: Clients | None = None
_injected_clients: dict[str, Any] = {}
_now: Callable[[], datetime] = utc_now
_sleep: Callable[[float], None] = time.sleep


def set_clients(*, s3: Any = None, sagemaker: Any = None) -> None:
    """Uses these clients instead of boto3's (those given; the others stay boto3's)."""
    global _clients
    given = {"s3": s3, "sagemaker": sagemaker}
    _injected_clients.update({name: client for name, client in given.items() if client is not None})
    _clients = None


def set_clock(*, now: Callable[[], datetime] | None = None, sleep: Callable[[float], None] | None = None) -> None:
    """Uses this clock (UTC) and this sleep instead of the system's (those given)."""
    global _now, _sleep
    _now = now or _now
    _sleep = sleep or _sleep


def reset() -> None:
    """Forgets the container's configuration, clients and clock, as a new container."""
    global _config, _clients, _now, _sleep
    _config = None
    _clients = None
    _injected_clients.clear()
    _now = utc_now
    _sleep = time.sleep


def _container_config() -> RetrainConfig:
    global _config
    if _config is None:
        text = os.environ.get(CONFIG_VARIABLE)
        if text is None:
            raise ValueError(f"{CONFIG_VARIABLE} is not set")
        _config = parse_config(text)
    return _config


def _container_clients() -> Clients:
    global _clients
    if _clients is None:
        _clients = Clients(**_injected_clients)
    return _clients


# --- the state of a model --------------------------------------------------------------------


@dataclass(frozen=True)
class Starting:
    """The batch whose run is being started: its id, start token, images and their times."""

    token: str
    batch: str
    images: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class LastRun:
    """The run most recently started."""

    arn: str
    batch: str
    token: str
    images: int
    first_at: datetime
    started_at: datetime


@dataclass(frozen=True)
class State:
    """A model's state object (see the module's documentation); the default is a missing one."""

    pending: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    batch: str | None = None
    batches: int = 0
    starting: Starting | None = None
    last_run: LastRun | None = None
    revision: int = 0


def _utc(moment: datetime) -> datetime:
    """The moment in UTC to the second; a naive datetime is taken as UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return f"{_utc(moment):%Y-%m-%dT%H:%M:%SZ}"


def batch_id(number: int, first_at: datetime) -> str:
    """`<n>-<YYYYmmddTHHMMSSZ>`: the model's n-th batch and when its first image was counted."""
    return f"{number}-{_utc(first_at):%Y%m%dT%H%M%SZ}"


def start_token(model: Model, batch: str) -> str:
    """The ClientRequestToken of a batch's start: 64 hex digits, the same at every attempt."""
    return hashlib.sha256(f"{model.pipeline}/{model.name}/{batch}".encode("utf-8")).hexdigest()


def _time_text(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def state_document(state: State) -> dict:
    """The state as its object's JSON document."""
    starting = state.starting
    last_run = state.last_run
    return {
        "version": STATE_VERSION,
        "revision": state.revision,
        "pending": state.pending,
        "first_at": _time_text(state.first_at),
        "last_at": _time_text(state.last_at),
        "batch": state.batch,
        "batches": state.batches,
        "starting": None
        if starting is None
        else {
            "token": starting.token,
            "batch": starting.batch,
            "images": starting.images,
            "first_at": iso(starting.first_at),
            "last_at": iso(starting.last_at),
        },
        "last_run": None
        if last_run is None
        else {
            "arn": last_run.arn,
            "batch": last_run.batch,
            "token": last_run.token,
            "images": last_run.images,
            "first_at": iso(last_run.first_at),
            "started_at": iso(last_run.started_at),
        },
    }


class _Reader:
    """Reads fields of a state document, raising ValueError naming the field that is wrong."""

    def __init__(self, document: Any, where: str):
        if not isinstance(document, dict):
            raise ValueError(f"`{where}` is not an object" if where else "not a JSON object")
        self.document = document
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def count(self, key: str, minimum: int = 0) -> int:
        value = self.document.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"`{self._name(key)}` is not a whole number of at least {minimum}")
        return value

    def text(self, key: str, optional: bool = False) -> str | None:
        value = self.document.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError(f"`{self._name(key)}` is not a non-empty string")
        return value

    def time(self, key: str, optional: bool = False) -> datetime | None:
        text = self.text(key, optional)
        if text is None:
            return None
        try:
            return _utc(datetime.fromisoformat(text))
        except ValueError:
            raise ValueError(f"`{self._name(key)}` is not an ISO 8601 time") from None

    def part(self, key: str) -> _Reader | None:
        value = self.document.get(key)
        return None if value is None else _Reader(value, self._name(key))


def parse_state(text: str) -> State:
    """A state object's text as a State; raises ValueError saying what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg})") from None
    top = _Reader(document, "")
    if document.get("version") != STATE_VERSION:
        raise ValueError(f"`version` is {document.get('version')!r}, not {STATE_VERSION}")
    state = State(
        pending=top.count("pending"),
        first_at=top.time("first_at", optional=True),
        last_at=top.time("last_at", optional=True),
        batch=top.text("batch", optional=True),
        batches=top.count("batches"),
        revision=top.count("revision"),
    )
    empty = state.pending == 0
    if any((value is None) != empty for value in (state.batch, state.first_at, state.last_at)):
        raise ValueError("`batch`, `first_at` and `last_at` must be set exactly when `pending` is above 0")
    starting = top.part("starting")
    if starting is not None:
        state = replace(
            state,
            starting=Starting(
                token=starting.text("token"),
                batch=starting.text("batch"),
                images=starting.count("images", minimum=1),
                first_at=starting.time("first_at"),
                last_at=starting.time("last_at"),
            ),
        )
    last_run = top.part("last_run")
    if last_run is not None:
        state = replace(
            state,
            last_run=LastRun(
                arn=last_run.text("arn"),
                batch=last_run.text("batch"),
                token=last_run.text("token"),
                images=last_run.count("images", minimum=1),
                first_at=last_run.time("first_at"),
                started_at=last_run.time("started_at"),
            ),
        )
    return state


# --- what happens to a state (pure) ----------------------------------------------------------


def count_image(state: State, at: datetime) -> State:
    """The state with one more image in its open batch, opening a batch when there is none."""
    if state.pending == 0:
        number = state.batches + 1
        return replace(state, pending=1, first_at=at, last_at=at, batch=batch_id(number, at), batches=number)
    return replace(state, pending=state.pending + 1, last_at=max(state.last_at, at))


def is_ready(state: State, at: datetime, config: RetrainConfig) -> bool:
    """Whether the open batch should begin starting now: nothing is starting, it holds an image,
    and it is full or its latest image is `quiet_minutes` old."""
    if state.starting is not None or state.pending == 0:
        return False
    return state.pending >= config.batch_size or at - state.last_at >= config.quiet


def begin(state: State, model: Model) -> State:
    """The state with its open batch moved into `starting`, under the batch's token."""
    starting = Starting(
        token=start_token(model, state.batch),
        batch=state.batch,
        images=state.pending,
        first_at=state.first_at,
        last_at=state.last_at,
    )
    return replace(state, pending=0, first_at=None, last_at=None, batch=None, starting=starting)


def begin_if_ready(state: State, at: datetime, config: RetrainConfig, model: Model) -> State:
    return begin(state, model) if is_ready(state, at, config) else state


def finish(state: State, token: str, arn: str, at: datetime, config: RetrainConfig, model: Model) -> State | None:
    """The state with the run of the batch starting under `token` recorded (and the open batch
    begun when it is ready); None when that batch is no longer starting (already recorded)."""
    starting = state.starting
    if starting is None or starting.token != token:
        return None
    last_run = LastRun(
        arn=arn,
        batch=starting.batch,
        token=token,
        images=starting.images,
        first_at=starting.first_at,
        started_at=at,
    )
    return begin_if_ready(replace(state, starting=None, last_run=last_run), at, config, model)


# --- the state object in S3 ------------------------------------------------------------------


class StateError(Exception):
    """A model's state object that cannot be used, or that kept changing under every attempt."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _is_conflict(error: ClientError) -> bool:
    return _code(error) in CONFLICT_CODES or _status(error) in CONFLICT_STATUSES


def _listed_or_raise(s3: Any, bucket: str, key: str, denied: ClientError) -> bool:
    """Whether the bucket lists an object with exactly this key; raises `denied` (the read's
    403) when the listing is refused too."""
    try:
        answer = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except ClientError:
        raise denied from None
    return any(item.get("Key") == key for item in answer.get("Contents", []))


def read_state(s3: Any, config: RetrainConfig, model: str) -> tuple[State, str | None]:
    """The model's state and its object's ETag; a fresh State and None when there is no object."""
    key = config.state_key(model)
    try:
        answer = s3.get_object(Bucket=config.bucket, Key=key)
    except ClientError as error:
        if _code(error) == "NoSuchKey":
            return State(), None
        # S3 answers 403 for a missing object to a caller it does not let list the bucket.
        if _code(error) in DENIED_CODES and not _listed_or_raise(s3, config.bucket, key, error):
            return State(), None
        raise
    try:
        return parse_state(answer["Body"].read().decode("utf-8")), answer["ETag"]
    except (UnicodeDecodeError, ValueError) as error:
        problem = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else str(error)
        raise StateError(
            f"The retrain state s3://{config.bucket}/{key} is not valid: {problem}; fix the object, "
            "or delete it to count afresh (the images counted so far are forgotten)."
        ) from None


def write_state(s3: Any, config: RetrainConfig, model: str, state: State, etag: str | None) -> None:
    """Writes the state if its object is still the one read (`etag`; None: still missing).
    Raises ClientError, a conflict among them (see _is_conflict) when the object changed."""
    condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
    # No encryption parameters: the bucket's default (SSE-KMS with the data key) applies, where
    # ServerSideEncryption="aws:kms" alone would choose the AWS managed key aws/s3 instead.
    s3.put_object(
        Bucket=config.bucket,
        Key=config.state_key(model),
        Body=json.dumps(state_document(state), separators=(",", ":")).encode("utf-8"),
        ContentType="application/json",
        **condition,
    )


def retry_delay(attempt: int) -> float:
    """A jittered pause before the attempt after `attempt` (0-based): at most 0.4 seconds."""
    return random.uniform(0, RETRY_BASE_SECONDS * 2 ** min(attempt, RETRY_MAX_DOUBLINGS))


def update_state(
    s3: Any,
    config: RetrainConfig,
    model: str,
    change: Callable[[State], State | None],
    sleep: Callable[[float], None],
) -> tuple[State, bool]:
    """Applies `change` to the model's state, read-modify-write, retried from a fresh read while
    another write gets in between. `change` answers the new state, or None for no write. Answers
    the state as it is now and whether this call wrote it; raises StateError after
    WRITE_ATTEMPTS conflicts, and what S3 raises otherwise."""
    for attempt in range(WRITE_ATTEMPTS):
        current, etag = read_state(s3, config, model)
        changed = change(current)
        if changed is None:
            return current, False
        changed = replace(changed, revision=current.revision + 1)
        try:
            write_state(s3, config, model, changed, etag)
            return changed, True
        except ClientError as error:
            if not _is_conflict(error):
                raise
        if attempt + 1 < WRITE_ATTEMPTS:
            sleep(retry_delay(attempt))
    raise StateError(
        f"The retrain state s3://{config.bucket}/{config.state_key(model)} changed under each of "
        f"{WRITE_ATTEMPTS} attempts to update it (too many writers at once)."
    )


# --- starting runs ---------------------------------------------------------------------------


def start_run(sagemaker: Any, model: Model, starting: Starting) -> str:
    """Starts the batch's run (idempotently, by its token); answers the execution ARN."""
    answer = sagemaker.start_pipeline_execution(
        PipelineName=model.pipeline,
        ClientRequestToken=starting.token,
        PipelineParameters=[{"Name": INPUT_PARAMETER, "Value": model.input_uri}],
        PipelineExecutionDisplayName=f"retrain-{starting.batch}",
        PipelineExecutionDescription=f"{starting.images} new images since {iso(starting.first_at)}",
    )
    return answer["PipelineExecutionArn"]


@dataclass(frozen=True)
class Outcome:
    """What an invocation did for one model (or, without a model, with an ignored event)."""

    model: str | None
    trigger: str
    event_id: str | None = None
    key: str | None = None
    ignored: str | None = None
    images_arrived: int = 0
    runs_started: int = 0
    start_failures: int = 0
    pending: int | None = None
    starting: str | None = None
    execution_arns: tuple[str, ...] = ()
    error: str | None = None

    def summary(self) -> dict:
        """The outcome as the handler answers it."""
        return {
            "model": self.model,
            "ignored": self.ignored,
            "images_arrived": self.images_arrived,
            "runs_started": self.runs_started,
            "start_failures": self.start_failures,
            "pending": self.pending,
            "starting": self.starting,
            "execution_arns": list(self.execution_arns),
            "error": self.error,
        }


def _failure_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def start_ready_runs(
    state: State,
    model: Model,
    config: RetrainConfig,
    clients: Clients,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    outcome: Outcome,
) -> Outcome:
    """Starts the run of the batch `state` shows starting, records it, and goes on while the
    record begins another. Never raises for AWS or state failures: the state keeps `starting`
    and the failure is in the outcome, for the next invocation to retry."""
    started: list[str] = []
    failures = 0
    error = None
    for _ in range(STARTS_PER_INVOCATION):
        starting = state.starting
        if starting is None:
            break
        try:
            arn = start_run(clients.sagemaker, model, starting)
        except (ClientError, BotoCoreError) as failure:
            failures += 1
            error = (
                f"pipeline `{model.pipeline}` not started for batch {starting.batch} "
                f"(token {starting.token}); the next image or tick retries: {_failure_text(failure)}"
            )
            break
        at = _utc(now())
        try:
            state, recorded = update_state(
                clients.s3,
                config,
                model.name,
                lambda current: finish(current, starting.token, arn, at, config, model),
                sleep,
            )
        except (ClientError, BotoCoreError, StateError) as failure:
            error = (
                f"run {arn} of batch {starting.batch} started, not recorded; the next image or "
                f"tick records it (same token, same run): {_failure_text(failure)}"
            )
            break
        if not recorded:
            break  # another invocation recorded this run (and counted it)
        started.append(arn)
    return replace(
        outcome,
        runs_started=len(started),
        start_failures=failures,
        pending=state.pending,
        starting=state.starting.batch if state.starting else None,
        execution_arns=tuple(started),
        error=error,
    )


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """An image event: the object's bucket and key, and the event's id."""

    bucket: str
    key: str
    event_id: str | None


def classify_event(event: Any) -> str:
    """"image" or "tick"; raises ValueError for any other event."""
    if not isinstance(event, dict):
        raise ValueError(f"The retrain function got a {type(event).__name__}, not an EventBridge event")
    source, kind = event.get("source"), event.get("detail-type")
    if (source, kind) == (S3_SOURCE, CREATED):
        return "image"
    if (source, kind) == (TICK_SOURCE, TICK):
        return "tick"
    raise ValueError(
        f"The retrain function takes S3 `{CREATED}` events and `{TICK}` ticks from EventBridge, "
        f"not source `{source}` detail-type `{kind}`; check the targets of the rules that invoke it."
    )


def read_image_event(event: dict) -> Image:
    """The bucket and key of an S3 "Object Created" event; raises ValueError when it has none."""
    detail = event.get("detail")
    bucket = (detail.get("bucket") or {}).get("name") if isinstance(detail, dict) else None
    key = (detail.get("object") or {}).get("key") if isinstance(detail, dict) else None
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise ValueError(
            f"The `{CREATED}` event {event.get('id')} names no bucket and key "
            "(`detail.bucket.name`, `detail.object.key`)."
        )
    return Image(bucket=bucket, key=key, event_id=event.get("id"))


def image_model(image: Image, config: RetrainConfig) -> tuple[str | None, str | None]:
    """The model an image belongs to (its folder's name), or None and why it is ignored."""
    if image.bucket != config.bucket:
        return None, f"bucket `{image.bucket}` is not the data bucket `{config.bucket}`"
    if not image.key.startswith(config.raw_prefix):
        return None, f"key is outside `{config.raw_prefix}`"
    if image.key.endswith("/"):
        return None, "key is a folder marker"
    segment, slash, _ = image.key[len(config.raw_prefix) :].partition("/")
    if not slash or not segment:
        return None, f"key names no model folder under `{config.raw_prefix}`"
    if not config.is_model_name(segment):
        return None, f"folder `{segment}` cannot name a model (its pipeline would be `{config.pipeline_prefix}{segment}`)"
    return segment, None


def on_image(
    event: dict,
    config: RetrainConfig,
    clients: Clients,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> Outcome:
    """Counts the image, begins its batch when full, and starts what is starting."""
    image = read_image_event(event)
    name, ignored = image_model(image, config)
    outcome = Outcome(model=name, trigger="image", event_id=image.event_id, key=image.key, ignored=ignored)
    if name is None:
        return outcome
    model = config.model(name)
    at = _utc(now())
    state, _ = update_state(
        clients.s3,
        config,
        name,
        lambda current: begin_if_ready(count_image(current, at), at, config, model),
        sleep,
    )
    # The image is counted: from here on nothing raises (a retried event would count it again).
    counted = replace(outcome, images_arrived=1)
    return start_ready_runs(state, model, config, clients, now, sleep, counted)


def counted_models(s3: Any, config: RetrainConfig) -> list[str]:
    """The models with a state object: those that have counted images."""
    names: list[str] = []
    token: str | None = None
    while True:
        arguments = {"Bucket": config.bucket, "Prefix": config.state_prefix}
        if token:
            arguments["ContinuationToken"] = token
        page = s3.list_objects_v2(**arguments)
        for item in page.get("Contents", []):
            name = item["Key"][len(config.state_prefix) :].removesuffix(".json")
            if item["Key"].endswith(".json") and config.is_model_name(name):
                names.append(name)
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return names


def on_tick(
    event: dict,
    config: RetrainConfig,
    clients: Clients,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> tuple[list[Outcome], list[Exception]]:
    """Checks every model with a state: begins a batch that is ready, starts what is starting.
    Answers each model's outcome and the errors met (one model's error does not stop others)."""
    outcomes: list[Outcome] = []
    errors: list[Exception] = []
    for name in counted_models(clients.s3, config):
        model = config.model(name)
        outcome = Outcome(model=name, trigger="tick", event_id=event.get("id"))
        at = _utc(now())
        try:
            state, _ = update_state(
                clients.s3,
                config,
                name,
                lambda current: begin(current, model) if is_ready(current, at, config) else None,
                sleep,
            )
        except (ClientError, BotoCoreError, StateError) as error:
            errors.append(error)
            outcomes.append(replace(outcome, error=_failure_text(error)))
            continue
        outcomes.append(start_ready_runs(state, model, config, clients, now, sleep, outcome))
    return outcomes, errors


# --- metrics ---------------------------------------------------------------------------------


def metrics_document(config: RetrainConfig, outcome: Outcome, timestamp_ms: int) -> dict:
    """One Embedded Metric Format document for an outcome."""
    dimensions = [["Environment"], ["Environment", "Model"]] if outcome.model else [["Environment"]]
    metrics = [
        ("ImagesArrived", outcome.images_arrived),
        ("RunsStarted", outcome.runs_started),
        ("StartFailures", outcome.start_failures),
    ]
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": config.namespace,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": "Count"} for name, _ in metrics],
                }
            ],
        },
        "Environment": config.environment,
        "Trigger": outcome.trigger,
    }
    optional = {
        "Model": outcome.model,
        "EventId": outcome.event_id,
        "Key": outcome.key,
        "Ignored": outcome.ignored,
        "Pending": outcome.pending,
        "Starting": outcome.starting,
        "ExecutionArn": ", ".join(outcome.execution_arns) or None,
        "Error": outcome.error,
    }
    document.update({name: value for name, value in optional.items() if value is not None})
    document.update(dict(metrics))
    return document


def print_metrics(config: RetrainConfig, outcomes: list[Outcome]) -> None:
    timestamp_ms = int(time.time() * 1000)
    for outcome in outcomes:
        print(json.dumps(metrics_document(config, outcome, timestamp_ms), separators=(",", ":")), flush=True)


# --- entry point -----------------------------------------------------------------------------


def process(
    event: Any,
    config: RetrainConfig,
    clients: Clients,
    now: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Outcome], list[Exception]]:
    """One event: its outcomes (one per model handled, or one for an ignored event) and the
    errors a tick met. Raises ValueError for an unexpected event, and an image event's errors."""
    if classify_event(event) == "image":
        return [on_image(event, config, clients, now, sleep)], []
    return on_tick(event, config, clients, now, sleep)


def handler(event: Any, context: Any) -> dict:
    """The Lambda entry point: handles the event, prints its metric lines, answers a summary."""
    config = _container_config()
    outcomes, errors = process(event, config, _container_clients(), _now, _sleep)
    print_metrics(config, outcomes)
    if errors:
        raise errors[0]
    return {"outcomes": [outcome.summary() for outcome in outcomes]}
