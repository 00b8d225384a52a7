"""Image-model monitoring: the monitoring pipeline's one step, run on a schedule.

SageMaker Model Monitor reads tabular data only; this job monitors an image-classification
endpoint from its data capture instead. It reads the captured requests and answers, and writes,
to `--output`, a report on the latest window of traffic: how many requests, how confident the
model was, which classes it predicted and how far that distribution has moved from the one it
predicted on its test set (the class-drift PSI), and the sizes and formats of the images sent.
With `--report-uri` it also uploads the report to S3, and with `--publish` it sends the
headline numbers to CloudWatch.

CLI:

    monitor.py (--capture DIR | --capture-uri S3_PREFIX)
               (--classes FILE [--baseline FILE] | --package-arn ARN)
               --output FILE [--report-uri S3_PREFIX]
               --model NAME --environment NAME [--namespace NS] [--publish]
               [--low-confidence-threshold 0.6] [--window-hours 24]

The capture comes from a local folder (`--capture`) or from S3 (`--capture-uri`); the classes
and the baseline from local files (`--classes`, `--baseline`) or from the model package the
endpoint serves (`--package-arn`); the two choices are independent. The S3 forms are for
the scheduled job: it reads the capture itself, so an endpoint with no capture yet gives an
empty report (a Processing input with no S3 object would fail the job before it starts), and it
is told the package to compare against at each run, since that changes with each release.

Inputs:
- `--capture`: a folder of SageMaker data-capture files, at any depth (SageMaker writes
  `<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`); files not ending in `.jsonl` are ignored.
  One JSON object per line, as the SageMaker Developer Guide shows it ("Capture data from
  real-time endpoint", View Captured Data):

      {"captureData": {
           "endpointInput":  {"observedContentType": "application/x-image", "mode": "INPUT",
                              "data": "<the request body>", "encoding": "BASE64"},
           "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                              "data": "<the answer>", "encoding": "BASE64"}},
       "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-11-30T10:15:00Z"},
       "eventVersion": "0"}

  `data` is base64 when `encoding` is BASE64, and the body's text as-is when it is JSON or CSV
  (the content types an endpoint's CaptureContentTypeHeader names). The request body is the
  image; the answer is the image-classification algorithm's JSON: an array of class
  probabilities in class-index order, or an object `{"prediction": [...]}`. `inferenceTime` is
  ISO 8601 (`Z`, an offset, or none for UTC), with or without fractions of a second.
- `--capture-uri`: `s3://bucket/prefix/`, the endpoint's DataCaptureConfig DestinationS3Uri
  (or a folder under it); a prefix not ending in `/` gets one, so that `s3://b/capture` does not
  also take `s3://b/capture-old/`. Its objects are listed (ListObjectsV2, every page) and only
  the `.jsonl` ones are candidates. Of those whose key, relative to the prefix, has SageMaker's
  hour folder (`.../yyyy/mm/dd/hh/<name>.jsonl`, UTC), only the ones at most `--window-hours`
  plus one hour before the newest hour folder are read: the window follows the data, and the
  extra hour covers a folder's records up to hh:59:59 wherever in its hour the newest record
  falls. An object whose key has no such folder is always read. The records read are then
  windowed exactly as a folder's are (Records, below). No object is an empty capture: an empty
  report, exit 0. Object names in the report are keys relative to the prefix.
- `--classes`: the model's classes.json, a JSON array of the class names in class-index order.
- `--baseline` (optional): the model's evaluation report, evaluate.py's output. The baseline
  class distribution is what the model predicted on its test set: the column sums of
  `multiclass_classification_metrics.confusion_matrix` ({true: {predicted: count}}). A
  `--baseline` that is not given or names no file means no baseline: the report says so and
  drift is not computed.
- `--package-arn`: a model package ARN; DescribeModelPackage gives the classes.json, its
  customer metadata property `classes` (an `s3://` URI, as Register records it), and the
  evaluation report, its `ModelMetrics.ModelQuality.Statistics.S3Uri`, both read with S3
  GetObject. A package without `classes` is an error; one without model-quality statistics, or
  whose statistics object does not exist, has no baseline. An empty `--package-arn ""` says the
  endpoint serves no package yet: nothing is read, the report has no request and `package`
  null, `--report-uri` gets it, and nothing is published to CloudWatch.

Records:
- A line that is not JSON, lacks a field above, has an unknown encoding or bad base64, or
  whose answer is not JSON, not an array of finite numbers, or not as long as classes.json is
  malformed: counted and skipped, never fatal. The report lists the first 5 by file and line.
  Blank lines are skipped.
- Window: the records used are those whose inferenceTime is at most `--window-hours` before
  the newest inferenceTime in the capture (any record with a readable time counts for the
  newest), both ends included. The window follows the data, not the clock. Records before it
  are ignored, malformed or not; a malformed line without a readable time is always counted.
- Each record's predicted class is its highest probability's, ties going to the class name
  first in sort order; its confidence is that probability.

Report (JSON, keys sorted, indent 2, trailing newline):
- `model`, `environment`; `package` (the `--package-arn`, null without one or when empty);
  `window` {`start`, `end`} (ISO 8601 UTC, null without records);
  `requests` (records used); `malformed` {`count`, `examples`: [{`file`, `line`, `reason`}]}.
- `confidence` {`mean`, `p10`, `p50`, `p90`, `histogram`}: the histogram is 10 bins
  [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0], each {`from`, `to`, `count`}. Percentiles are
  nearest-rank: the smallest value with at least that share of the values at or below it.
- `low_confidence` {`threshold`, `count`, `share`}: records whose confidence is below
  `--low-confidence-threshold`.
- `predicted_classes` {class: count}, every class of classes.json, zeros included.
- `drift` {`baseline`, `psi`, `status`, `threshold`, `top_shifts`}: `status` is `no_baseline`
  without a baseline, `no_data` with no request, else `drift` when psi >= threshold and `ok`
  below it. `top_shifts` lists up to 5 classes whose live share differs from the baseline's,
  largest absolute difference first (ties by class name): {`class`, `baseline_share`,
  `live_share`}.
- `images` {`formats`, `width`, `height`, `bytes`}: `formats` counts `JPEG` (Pillow's `MPO`, a
  JPEG with a multi-picture segment, included), `PNG`, `other` and `unreadable` (not an image
  Pillow recognises). Width and height come from the image header (no pixel is decoded), over
  the readable images; `bytes` is the request body's size, over every request. Each has
  {`min`, `p50`, `max`}, null without images.
A statistic over no record is null.

Drift: the population stability index of the predicted-class distribution,

    PSI = sum over classes of (live - baseline) * ln(live / baseline)

on the classes' shares, each share floored at 1e-4 so that a class one side never predicts
gives a large finite term, not an infinite one. The usual reading is < 0.1 no change,
0.1-0.2 moderate, >= 0.2 significant, hence the threshold of 0.2: these are the bands
CapyMOA's PSI drift detector documents, with 0.2 its default threshold (it cites Wu and Olson,
"Enterprise risk management: coping with model risk in a large bank", Journal of the
Operational Research Society 61(2), 2010). Credit-scoring texts often put the significant band
at 0.25; 0.2 alarms earlier.

Report upload (`--report-uri s3://bucket/prefix/` only): the report's bytes, as written to
`--output`, go to `<prefix>latest.json`, the key `mlops-infra monitor` reads, and to
`<prefix><window end as YYYY/MM/DD/HHMMSS>.json` (S3 PutObject, ContentType application/json).
A report without a window (no record with a time) goes to `latest.json` only: the dated key
comes from the data, never from the clock.

Metrics (`--publish` only): one PutMetricData call to `--namespace` (default
`mlops-images/monitoring`), every datum with the dimensions Environment and Model and no
timestamp (CloudWatch stamps them on receipt): `Requests` (Count), `MeanConfidence` (None),
`LowConfidenceShare` (None, 0-1), `ClassDriftPSI` (None) and `MalformedRecords` (Count).
`MeanConfidence` and `LowConfidenceShare` are left out when there is no request,
`ClassDriftPSI` when there is no PSI (no baseline, or no request).

AWS: boto3 clients (S3, SageMaker, CloudWatch) are made only when an argument needs them. The
region is AWS_REGION, else AWS_DEFAULT_REGION, else boto3's own lookup; boto3 itself honours
AWS_ENDPOINT_URL. The job's role needs `cloudwatch:PutMetricData` for `--publish`;
`s3:ListBucket` on the capture prefix and `s3:GetObject` on its objects for `--capture-uri`;
`sagemaker:DescribeModelPackage` and `s3:GetObject` on the classes.json and evaluation report
for `--package-arn`; `s3:PutObject` under the prefix for `--report-uri`; and `kms:Decrypt` (and
`kms:GenerateDataKey` to write) on the buckets' key when they are KMS-encrypted. Without
`s3:ListBucket` over an object's key, S3 answers a missing object with AccessDenied, not
NoSuchKey: a missing evaluation report is then an error, not "no baseline".

Output depends only on the inputs' content (not on the clock, the host or the order files or
objects are listed in): the same inputs give byte-identical reports.

Exit codes: 0 ok; 1 uploading the report to `--report-uri` or publishing to CloudWatch failed
(`--output` is written first, and both are tried); 2 bad arguments, a missing, unreadable or
malformed `--classes`, a malformed `--baseline` file, an unreadable capture file or object, a
capture prefix that cannot be listed, or a `--package-arn` that cannot be described or whose
classes.json is missing, unreadable or malformed (or whose evaluation report is unreadable or
malformed), with a message naming the argument, the file, and for a package its URIs. Nothing
is written when exiting 2.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

CAPTURE_SUFFIX = ".jsonl"
DEFAULT_NAMESPACE = "mlops-images/monitoring"
DEFAULT_LOW_CONFIDENCE_THRESHOLD = 0.6
DEFAULT_WINDOW_HOURS = 24.0
# Ten years: past any capture a job is given, well within what timedelta holds.
MAX_WINDOW_HOURS = 87_600.0
# The capture objects read reach this much further back than the window from the newest hour
# folder: a folder holds its hour's records up to hh:59:59.
HOUR_FOLDER_MARGIN_HOURS = 1.0
# SageMaker's `.../yyyy/mm/dd/hh/<name>` at the end of a capture object's key.
HOUR_FOLDER = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\Z", re.ASCII)

S3_SCHEME = "s3://"
# The model package's customer metadata property naming its classes.json (as Register records it).
CLASSES_METADATA = "classes"
LATEST_REPORT = "latest.json"
REPORT_CONTENT_TYPE = "application/json"
# S3's error codes for an object that does not exist.
MISSING_OBJECT_CODES = ("NoSuchKey", "404", "NotFound")

PSI_THRESHOLD = 0.2
PSI_FLOOR = 1e-4
HISTOGRAM_BINS = 10
MAX_EXAMPLES = 5
TOP_SHIFTS = 5
PERCENTILES = (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))

ENCODINGS = ("BASE64", "JSON", "CSV")
# Pillow's name for a format -> the name reported. An MPO is a JPEG whose APP2 segment indexes
# further pictures; its first picture is the photo.
FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
OTHER_FORMAT = "other"
UNREADABLE = "unreadable"
IMAGE_FORMATS = ("JPEG", "PNG", OTHER_FORMAT, UNREADABLE)

STATUS_OK = "ok"
STATUS_DRIFT = "drift"
STATUS_NO_BASELINE = "no_baseline"
STATUS_NO_DATA = "no_data"

REPORT_KEY = "multiclass_classification_metrics"
CONFUSION_MATRIX = "confusion_matrix"

# CloudWatch: namespaces are 1-255 characters and may not start with `:` or `AWS/`;
# dimension values are 1-1024 characters.
MAX_NAMESPACE = 255
MAX_DIMENSION_VALUE = 1024

EXIT_OK = 0
EXIT_PUBLISH_FAILED = 1
EXIT_USAGE = 2

# A quoted value in a reason is cut to this many characters.
MAX_QUOTED = 40

TIME_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?", re.ASCII
)


class UsageError(Exception):
    """A bad argument, path or input file; the message names it."""


class Malformed(Exception):
    """A capture line that cannot be used; the message says why. `time` is the line's
    inferenceTime when it has a readable one."""

    def __init__(self, reason: str, time: datetime | None = None) -> None:
        super().__init__(reason)
        self.time = time


class StoreError(Exception):
    """An object store call that failed; the message says why."""


class ObjectMissing(StoreError):
    """The object does not exist."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key: an object's, or a prefix (empty, or ending in `/`)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        return S3Location(self.bucket, self.key + name)


@dataclass(frozen=True)
class Arguments:
    """The checked command line: exactly one of `capture` and `capture_uri`, and `classes`
    (with an optional `baseline`) or `package_arn` (empty when the endpoint serves nothing)."""

    output: Path
    model: str
    environment: str
    capture: Path | None = None
    capture_uri: S3Location | None = None
    classes: Path | None = None
    baseline: Path | None = None
    package_arn: str | None = None
    report_uri: S3Location | None = None
    namespace: str = DEFAULT_NAMESPACE
    publish: bool = False
    low_confidence_threshold: float = DEFAULT_LOW_CONFIDENCE_THRESHOLD
    window_hours: float = DEFAULT_WINDOW_HOURS

    @property
    def no_package(self) -> bool:
        """`--package-arn ""`: the endpoint serves no model package yet."""
        return self.package_arn == ""

    @property
    def uses_store(self) -> bool:
        """Whether an argument names S3: the capture, a model package or the report's upload."""
        return self.capture_uri is not None or bool(self.package_arn) or self.report_uri is not None


@dataclass(frozen=True)
class Model:
    """What the records are read against: the class names, the baseline's predicted count per
    class (None without a baseline), and the model package they come from (None without one)."""

    classes: list[str]
    baseline: list[int] | None
    package: str | None


NO_MODEL = Model(classes=[], baseline=None, package=None)


@dataclass(frozen=True)
class Request:
    """A usable record: the answer's top class and the image's facts."""

    time: datetime
    predicted: int
    confidence: float
    image_format: str
    width: int | None
    height: int | None
    size: int


@dataclass(frozen=True)
class Problem:
    """A malformed line; `time` is None when the line has no readable inferenceTime."""

    file: str
    line: int
    reason: str
    time: datetime | None


@dataclass(frozen=True)
class Capture:
    requests: list[Request]
    problems: list[Problem]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"`{text}` is not a finite number")
    return value


def share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"`{text}` must be between 0 and 1")
    return value


def positive_hours(text: str) -> float:
    """An argparse type: a number of hours above 0, at most MAX_WINDOW_HOURS."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"`{text}` must be above 0")
    if value > MAX_WINDOW_HOURS:
        raise argparse.ArgumentTypeError(f"`{text}` must be at most {MAX_WINDOW_HOURS:g}")
    return value


def parse_s3_uri(text: str) -> S3Location:
    """`s3://bucket/key` as a location (the key may be empty); raises ValueError."""
    if not text.startswith(S3_SCHEME):
        raise ValueError(text)
    bucket, _, key = text[len(S3_SCHEME) :].partition("/")
    if not bucket or bucket != bucket.strip():
        raise ValueError(text)
    return S3Location(bucket, key)


def s3_prefix(text: str) -> S3Location:
    """An argparse type: `s3://bucket/prefix/`; a prefix without its trailing `/` gets one."""
    try:
        location = parse_s3_uri(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not an s3://bucket/prefix/ URI") from None
    if location.key and not location.key.endswith("/"):
        location = location.child("/")
    return location


def build_parser() -> argparse.ArgumentParser:
    """The command line; parsing only, the checks on paths and names are parse_arguments'."""
    parser = _Parser(
        prog="monitor.py",
        description="Monitor an image-classification endpoint from its data capture and write a report.",
    )
    capture = parser.add_mutually_exclusive_group(required=True)
    capture.add_argument("--capture", help="folder of SageMaker data-capture files (*.jsonl, at any depth)")
    capture.add_argument(
        "--capture-uri",
        type=s3_prefix,
        help="s3://bucket/prefix/ of SageMaker data-capture objects; those of the window's hour folders are read",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--classes", help="the model's classes.json: class names in class-index order")
    model.add_argument(
        "--package-arn",
        help="the model package whose classes.json and evaluation report are used; empty if none is served",
    )
    parser.add_argument(
        "--baseline",
        help="the model's evaluation report (evaluate.py's); drift is not computed if absent or missing",
    )
    parser.add_argument("--output", required=True, help="the report file to write; its folder is created")
    parser.add_argument(
        "--report-uri",
        type=s3_prefix,
        help="s3://bucket/prefix/ to upload the report to, as latest.json and as <window end>.json",
    )
    parser.add_argument("--model", required=True, help="the model's name: the report's and the Model dimension")
    parser.add_argument(
        "--environment", required=True, help="the environment's name: the report's and the Environment dimension"
    )
    parser.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"CloudWatch namespace of the metrics (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument("--publish", action="store_true", help="send the metrics to CloudWatch")
    parser.add_argument(
        "--low-confidence-threshold",
        type=share,
        default=DEFAULT_LOW_CONFIDENCE_THRESHOLD,
        help=f"a confidence below this is low, 0-1 (default {DEFAULT_LOW_CONFIDENCE_THRESHOLD})",
    )
    parser.add_argument(
        "--window-hours",
        type=positive_hours,
        default=DEFAULT_WINDOW_HOURS,
        help=f"hours of traffic up to the newest record that are used (default {DEFAULT_WINDOW_HOURS:g})",
    )
    return parser


def _name(flag: str, value: str) -> str:
    if not value.strip():
        raise UsageError(f"argument {flag}: must not be empty")
    if len(value) > MAX_DIMENSION_VALUE:
        raise UsageError(f"argument {flag}: longer than {MAX_DIMENSION_VALUE} characters")
    return value


def _namespace(value: str) -> str:
    if not value or len(value) > MAX_NAMESPACE:
        raise UsageError(f"argument --namespace: `{value}` must be 1 to {MAX_NAMESPACE} characters")
    if value.startswith(":") or value.startswith("AWS/"):
        raise UsageError(f"argument --namespace: `{value}` may not start with `:` or `AWS/`")
    return value


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path."""
    raw = build_parser().parse_args(list(argv))
    capture = Path(raw.capture) if raw.capture is not None else None
    if capture is not None and not capture.exists():
        raise UsageError(f"argument --capture: `{capture}` does not exist")
    if capture is not None and not capture.is_dir():
        raise UsageError(f"argument --capture: `{capture}` is not a folder")
    output = Path(raw.output)
    if output.is_dir():
        raise UsageError(f"argument --output: `{output}` is a folder; expected the report's file path")
    if raw.baseline is not None and raw.package_arn is not None:
        raise UsageError("argument --baseline: not allowed with argument --package-arn")
    baseline = Path(raw.baseline) if raw.baseline else None
    if baseline is not None and baseline.is_dir():
        raise UsageError(f"argument --baseline: `{baseline}` is a folder; expected the evaluation report")
    return Arguments(
        capture=capture,
        capture_uri=raw.capture_uri,
        classes=Path(raw.classes) if raw.classes is not None else None,
        baseline=baseline,
        package_arn=raw.package_arn,
        report_uri=raw.report_uri,
        output=output,
        model=_name("--model", raw.model),
        environment=_name("--environment", raw.environment),
        namespace=_namespace(raw.namespace),
        publish=raw.publish,
        low_confidence_threshold=raw.low_confidence_threshold,
        window_hours=raw.window_hours,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_json(where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{where}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise UsageError(f"{where}: not valid JSON (nested too deeply)") from None


def _read_json(flag: str, path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"argument {flag}: `{path}` does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"argument {flag}: `{path}`: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"argument {flag}: `{path}`: not UTF-8 text") from None
    return _parse_json(f"argument {flag}: `{path}`", text)


def check_classes(classes: Any, where: str) -> list[str]:
    """classes.json's content: a non-empty JSON array of distinct, non-empty class names."""
    if not isinstance(classes, list) or not classes:
        raise UsageError(f"{where}: expected a non-empty JSON array of class names")
    for position, name in enumerate(classes):
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where}: entry {position} is not a non-empty string")
    if len(set(classes)) != len(classes):
        repeated = next(name for name in classes if classes.count(name) > 1)
        raise UsageError(f"{where}: class `{repeated}` is listed twice")
    return classes


def read_classes(path: Path) -> list[str]:
    """`--classes`: a non-empty JSON array of distinct, non-empty class names."""
    return check_classes(_read_json("--classes", path), f"argument --classes: `{path}`")


def baseline_counts(report: Any, classes: Sequence[str], where: str, classes_name: str) -> list[int]:
    """An evaluation report's predicted count per class, in class-index order; `classes_name`
    names where `classes` came from in messages."""
    metrics = report.get(REPORT_KEY) if isinstance(report, dict) else None
    matrix = metrics.get(CONFUSION_MATRIX) if isinstance(metrics, dict) else None
    if not isinstance(matrix, dict):
        raise UsageError(f"{where}: no `{REPORT_KEY}.{CONFUSION_MATRIX}` object")
    counts = {name: 0 for name in classes}
    for true, row in sorted(matrix.items()):
        if true not in counts:
            raise UsageError(f"{where}: class `{true}` is not in {classes_name}")
        if not isinstance(row, dict):
            raise UsageError(f"{where}: row `{true}` of the confusion matrix is not an object")
        for predicted, count in sorted(row.items()):
            if predicted not in counts:
                raise UsageError(f"{where}: class `{predicted}` is not in {classes_name}")
            if not _is_number(count) or count < 0 or count != int(count):
                raise UsageError(
                    f"{where}: count [{true}][{predicted}] is not a whole number of images: {json.dumps(count)}"
                )
            counts[predicted] += int(count)
    missing = [name for name in classes if name not in matrix]
    if missing:
        raise UsageError(f"{where}: class `{missing[0]}` of {classes_name} has no row in the confusion matrix")
    if not sum(counts.values()):
        raise UsageError(f"{where}: the confusion matrix counts no image")
    return [counts[name] for name in classes]


def read_baseline(path: Path | None, classes: Sequence[str]) -> list[int] | None:
    """`--baseline`'s predicted count per class, in class-index order; None without a baseline file."""
    if path is None or not path.exists():
        return None
    return baseline_counts(_read_json("--baseline", path), classes, f"argument --baseline: `{path}`", "--classes")


def local_model(classes_path: Path, baseline_path: Path | None) -> Model:
    """The model of `--classes` and `--baseline`."""
    classes = read_classes(classes_path)
    return Model(classes, read_baseline(baseline_path, classes), None)


# --- S3 and the model package -----------------------------------------------------------------


@contextmanager
def _store_errors() -> Iterator[None]:
    """Turns boto3's errors into StoreError, and a missing object's into ObjectMissing."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        raise (ObjectMissing if code in MISSING_OBJECT_CODES else StoreError)(str(error)) from None
    except BotoCoreError as error:
        raise StoreError(str(error)) from None


class S3Store:
    """The object store: lists, reads and writes S3 objects with a boto3 S3 client. Tests give
    run() an in-memory store with the same three methods, raising StoreError and ObjectMissing."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def list(self, bucket: str, prefix: str) -> list[str]:
        """The keys under `prefix`, from every ListObjectsV2 page."""
        keys: list[str] = []
        with _store_errors():
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", ()))
        return keys

    def read(self, bucket: str, key: str) -> bytes:
        with _store_errors():
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        with _store_errors():
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def _object_text(store: Any, uri: str, where: str) -> str | None:
    """The UTF-8 text of the object at `uri`; None when it does not exist."""
    try:
        location = parse_s3_uri(uri)
    except ValueError:
        raise UsageError(f"{where}: not an s3://bucket/key URI") from None
    try:
        body = store.read(location.bucket, location.key)
    except ObjectMissing:
        return None
    except StoreError as error:
        raise UsageError(f"{where}: cannot read ({error})") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None


def describe_package(client_factory: Callable[[], Any], arn: str) -> dict[str, Any]:
    """DescribeModelPackage's answer for `arn`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client_factory().describe_model_package(ModelPackageName=arn)
    except (BotoCoreError, ClientError) as error:
        raise UsageError(f"argument --package-arn: `{arn}`: cannot describe the model package ({error})") from None


def _statistics_uri(described: dict[str, Any]) -> str | None:
    """The package's ModelMetrics.ModelQuality.Statistics.S3Uri: its evaluation report."""
    value: Any = described
    for key in ("ModelMetrics", "ModelQuality", "Statistics", "S3Uri"):
        value = value.get(key) if isinstance(value, dict) else None
    return value or None


def package_model(arn: str, store: Any, sagemaker_factory: Callable[[], Any]) -> Model:
    """The model of a model package: its classes.json (customer metadata `classes`) and its
    evaluation report (model-quality statistics), the latter optional."""
    described = describe_package(sagemaker_factory, arn)
    package = f"argument --package-arn: model package `{arn}`"
    classes_uri = (described.get("CustomerMetadataProperties") or {}).get(CLASSES_METADATA)
    if not classes_uri:
        raise UsageError(
            f"{package} has no customer metadata property `{CLASSES_METADATA}` (the s3:// URI of its classes.json)"
        )
    where = f"{package}: classes `{classes_uri}`"
    text = _object_text(store, classes_uri, where)
    if text is None:
        raise UsageError(f"{where} does not exist")
    classes = check_classes(_parse_json(where, text), where)
    statistics_uri = _statistics_uri(described)
    if statistics_uri is None:
        return Model(classes, None, arn)
    where = f"{package}: evaluation report `{statistics_uri}`"
    text = _object_text(store, statistics_uri, where)
    if text is None:
        return Model(classes, None, arn)
    return Model(classes, baseline_counts(_parse_json(where, text), classes, where, "its classes.json"), arn)


# --- capture records --------------------------------------------------------------------------


def _quoted(text: str) -> str:
    """`text` in backquotes, cut to MAX_QUOTED characters."""
    return f"`{text}`" if len(text) <= MAX_QUOTED else f"`{text[:MAX_QUOTED]}...`"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time, as UTC: `Z`, an offset or none (UTC); raises ValueError."""
    match = TIME_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=timezone.utc)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        try:
            moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        except OverflowError:
            raise ValueError(text) from None
    return moment


def format_time(moment: datetime) -> str:
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _field(value: Any, path: str, kind: type) -> Any:
    """`value`'s field at the dotted `path`, which must be of `kind`; raises Malformed."""
    current = value
    walked = []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(current, dict) or key not in current:
            raise Malformed(f"missing `{'.'.join(walked)}`")
        current = current[key]
    if not isinstance(current, kind):
        raise Malformed(f"`{path}` is not a {'string' if kind is str else 'JSON object'}")
    return current


def payload(record: dict[str, Any], side: str) -> bytes:
    """The body captured at `captureData.<side>`, decoded from its encoding."""
    where = f"captureData.{side}"
    data = _field(record, f"{where}.data", str)
    encoding = _field(record, f"{where}.encoding", str)
    if encoding.upper() == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Malformed(f"`{where}.data` is not valid base64") from None
    if encoding.upper() in ENCODINGS:
        return data.encode("utf-8", "surrogatepass")
    raise Malformed(f"`{where}.encoding` {_quoted(encoding)} is not one of {', '.join(ENCODINGS)}")


def probabilities(body: bytes, class_count: int) -> list[float]:
    """The answer's class probabilities; raises Malformed."""
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise Malformed("answer is not JSON") from None
    if isinstance(answer, dict) and "prediction" in answer:
        answer = answer["prediction"]
    if not isinstance(answer, list):
        raise Malformed("answer is not a JSON array of class probabilities")
    if len(answer) != class_count:
        raise Malformed(f"answer has {len(answer)} probabilities, but --classes has {class_count} classes")
    for position, value in enumerate(answer):
        if not _is_number(value):
            raise Malformed(f"answer probability {position} is not a finite number: {json.dumps(value)}")
    return [float(value) for value in answer]


def top_class(scores: Sequence[float], classes: Sequence[str]) -> int:
    """The index of the highest score; ties go to the class name first in sort order."""
    return min(range(len(scores)), key=lambda index: (-scores[index], classes[index]))


def image_facts(data: bytes) -> tuple[str, int | None, int | None]:
    """The image's reported format and its header's width and height (None when unreadable)."""
    # Only the header is read, so no pixel buffer needs Pillow's decompression-bomb limit: a huge
    # image is reported with its size, not as unreadable.
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                name = image.format or ""
    except Exception:  # Pillow raises many types for bad data; all mean unreadable here.
        return UNREADABLE, None, None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return FORMAT_NAMES.get(name, OTHER_FORMAT), width, height


def parse_line(text: str, classes: Sequence[str]) -> Request:
    """One capture line as a Request; raises Malformed, with the line's time when it has one."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise Malformed(f"not JSON ({error.msg})") from None
    except RecursionError:
        raise Malformed("not JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise Malformed("not a JSON object")
    stamp = _field(record, "eventMetadata.inferenceTime", str)
    try:
        time = parse_time(stamp)
    except ValueError:
        raise Malformed(f"`eventMetadata.inferenceTime` {_quoted(stamp)} is not an ISO 8601 time") from None
    try:
        image = payload(record, "endpointInput")
        scores = probabilities(payload(record, "endpointOutput"), len(classes))
    except Malformed as error:
        raise Malformed(str(error), time) from None
    predicted = top_class(scores, classes)
    image_format, width, height = image_facts(image)
    return Request(
        time=time,
        predicted=predicted,
        confidence=scores[predicted],
        image_format=image_format,
        width=width,
        height=height,
        size=len(image),
    )


def capture_files(root: Path) -> list[str]:
    """The capture files under `root`, as sorted POSIX paths relative to it."""
    try:
        return sorted(
            path.relative_to(root).as_posix() for path in root.rglob("*" + CAPTURE_SUFFIX) if path.is_file()
        )
    except OSError as error:
        raise UsageError(f"argument --capture: `{root}`: {error.strerror}") from None


def parse_lines(name: str, lines: Iterable[bytes], classes: Sequence[str]) -> Capture:
    """The records of the capture file or object `name`, given as its lines."""
    requests: list[Request] = []
    problems: list[Problem] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            requests.append(parse_line(raw.decode("utf-8"), classes))
        except UnicodeDecodeError:
            problems.append(Problem(name, number, "not UTF-8 text", None))
        except Malformed as error:
            problems.append(Problem(name, number, str(error), error.time))
    return Capture(requests, problems)


def read_file(root: Path, name: str, classes: Sequence[str]) -> Capture:
    path = root / name
    try:
        with path.open("rb") as lines:
            return parse_lines(name, lines, classes)
    except OSError as error:
        raise UsageError(f"argument --capture: `{path}`: cannot read ({error.strerror})") from None


def joined(captures: Iterable[Capture]) -> Capture:
    requests: list[Request] = []
    problems: list[Problem] = []
    for capture in captures:
        requests.extend(capture.requests)
        problems.extend(capture.problems)
    return Capture(requests, problems)


def read_capture(root: Path, classes: Sequence[str]) -> Capture:
    """Every record under `root`, files in sorted path order."""
    return joined(read_file(root, name, classes) for name in capture_files(root))


def hour_folder(name: str) -> datetime | None:
    """The UTC hour of the `yyyy/mm/dd/hh/` folder holding the object `name`; None without one."""
    match = HOUR_FOLDER.search(name)
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=timezone.utc)
    except ValueError:
        return None


def objects_to_read(names: Iterable[str], hours: float) -> tuple[list[str], datetime | None]:
    """The capture objects to read, sorted: of the `.jsonl` ones, those whose hour folder is at
    most `hours` + HOUR_FOLDER_MARGIN_HOURS before the newest hour folder, and those without an
    hour folder. Also that earliest hour folder read, None when no object has an hour folder."""
    candidates = sorted(name for name in names if name.endswith(CAPTURE_SUFFIX))
    folders = {name: hour_folder(name) for name in candidates}
    known = [hour for hour in folders.values() if hour is not None]
    if not known:
        return candidates, None
    earliest = hours_before(max(known), hours + HOUR_FOLDER_MARGIN_HOURS)
    chosen = [name for name in candidates if folders[name] is None or folders[name] >= earliest]
    return chosen, earliest


def read_capture_uri(store: Any, location: S3Location, classes: Sequence[str], hours: float) -> Capture:
    """The records of the capture objects under `location` that objects_to_read picks, in key
    order, each named by its key relative to the prefix."""
    where = f"argument --capture-uri: `{location}`"
    try:
        keys = store.list(location.bucket, location.key)
    except StoreError as error:
        raise UsageError(f"{where}: cannot list ({error})") from None
    names = [key[len(location.key) :] for key in keys if key.startswith(location.key)]
    chosen, earliest = objects_to_read(names, hours)
    listed = sum(1 for name in names if name.endswith(CAPTURE_SUFFIX))
    since = "" if earliest is None else f", hour folders from {format_time(earliest)} on"
    print(f"monitor: reading {len(chosen)} of {listed} capture objects under {location}{since}", file=sys.stderr)
    captures = []
    for name in chosen:
        try:
            body = store.read(location.bucket, location.key + name)
        except StoreError as error:
            raise UsageError(f"argument --capture-uri: `{location.child(name)}`: cannot read ({error})") from None
        captures.append(parse_lines(name, io.BytesIO(body), classes))
    return joined(captures)


def hours_before(moment: datetime, hours: float) -> datetime:
    """`moment` less `hours`, or the earliest time when that is before year 1."""
    try:
        return moment - timedelta(hours=hours)
    except OverflowError:
        return datetime.min.replace(tzinfo=timezone.utc)


def window_of(capture: Capture, hours: float) -> tuple[datetime, datetime] | None:
    """[newest time - hours, newest time], or None when no record has a time."""
    times = [request.time for request in capture.requests]
    times.extend(problem.time for problem in capture.problems if problem.time is not None)
    if not times:
        return None
    end = max(times)
    return hours_before(end, hours), end


def in_window(capture: Capture, window: tuple[datetime, datetime] | None) -> Capture:
    """The records inside `window`, and the malformed lines inside it or without a time."""
    if window is None:
        return capture
    start, end = window
    return Capture(
        [request for request in capture.requests if start <= request.time <= end],
        [problem for problem in capture.problems if problem.time is None or start <= problem.time <= end],
    )


# --- statistics -------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of `ordered` at or below it."""
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[rank - 1]


def spread(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"min": None, "p50": None, "max": None}
    return {"min": ordered[0], "p50": percentile(ordered, 0.5), "max": ordered[-1]}


def histogram(values: Iterable[float]) -> list[dict[str, Any]]:
    """Counts in [0, 0.1), ..., [0.9, 1.0]; values outside 0-1 fall in the end bins."""
    counts = [0] * HISTOGRAM_BINS
    for value in values:
        counts[min(max(int(value * HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)] += 1
    return [
        {"from": round(index / HISTOGRAM_BINS, 1), "to": round((index + 1) / HISTOGRAM_BINS, 1), "count": count}
        for index, count in enumerate(counts)
    ]


def confidence_summary(confidences: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(confidences)
    summary: dict[str, Any] = {
        "histogram": histogram(ordered),
        "mean": math.fsum(ordered) / len(ordered) if ordered else None,
    }
    for key, fraction in PERCENTILES:
        summary[key] = percentile(ordered, fraction) if ordered else None
    return summary


def shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [count / total for count in counts]


def psi(baseline: Sequence[float], live: Sequence[float]) -> float:
    """The population stability index of two share distributions, shares floored at PSI_FLOOR."""
    total = 0.0
    for base_share, live_share in zip(baseline, live):
        base_share, live_share = max(base_share, PSI_FLOOR), max(live_share, PSI_FLOOR)
        total += (live_share - base_share) * math.log(live_share / base_share)
    return total


def drift_summary(classes: Sequence[str], baseline: Sequence[int] | None, live: Sequence[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "baseline": baseline is not None,
        "psi": None,
        "threshold": PSI_THRESHOLD,
        "top_shifts": [],
    }
    if baseline is None:
        summary["status"] = STATUS_NO_BASELINE
        return summary
    if not sum(live):
        summary["status"] = STATUS_NO_DATA
        return summary
    base_shares, live_shares = shares(baseline), shares(live)
    value = psi(base_shares, live_shares)
    shifts = sorted(
        (index for index in range(len(classes)) if base_shares[index] != live_shares[index]),
        key=lambda index: (-abs(live_shares[index] - base_shares[index]), classes[index]),
    )
    summary.update(
        psi=value,
        status=STATUS_DRIFT if value >= PSI_THRESHOLD else STATUS_OK,
        top_shifts=[
            {"class": classes[index], "baseline_share": base_shares[index], "live_share": live_shares[index]}
            for index in shifts[:TOP_SHIFTS]
        ],
    )
    return summary


def images_summary(requests: Sequence[Request]) -> dict[str, Any]:
    formats = {name: 0 for name in IMAGE_FORMATS}
    for request in requests:
        formats[request.image_format] += 1
    return {
        "formats": formats,
        "width": spread(request.width for request in requests if request.width is not None),
        "height": spread(request.height for request in requests if request.height is not None),
        "bytes": spread(request.size for request in requests),
    }


def build_report(
    arguments: Arguments, model: Model, capture: Capture, window: tuple[datetime, datetime] | None
) -> dict[str, Any]:
    """The report on the records of `capture` (already limited to `window`)."""
    classes = model.classes
    requests = capture.requests
    confidences = [request.confidence for request in requests]
    predicted = [0] * len(classes)
    for request in requests:
        predicted[request.predicted] += 1
    low = sum(1 for confidence in confidences if confidence < arguments.low_confidence_threshold)
    problems = sorted(capture.problems, key=lambda problem: (problem.file, problem.line))
    return {
        "model": arguments.model,
        "environment": arguments.environment,
        "package": model.package,
        "window": {
            "start": format_time(window[0]) if window else None,
            "end": format_time(window[1]) if window else None,
        },
        "requests": len(requests),
        "malformed": {
            "count": len(problems),
            "examples": [
                {"file": problem.file, "line": problem.line, "reason": problem.reason}
                for problem in problems[:MAX_EXAMPLES]
            ],
        },
        "confidence": confidence_summary(confidences),
        "low_confidence": {
            "threshold": arguments.low_confidence_threshold,
            "count": low,
            "share": low / len(requests) if requests else None,
        },
        "predicted_classes": dict(zip(classes, predicted)),
        "drift": drift_summary(classes, model.baseline, predicted),
        "images": images_summary(requests),
    }


def render(report: dict[str, Any]) -> str:
    """The report's bytes: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


# --- CloudWatch -------------------------------------------------------------------------------


def metric_data(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's metrics as PutMetricData's MetricData."""
    dimensions = [
        {"Name": "Environment", "Value": report["environment"]},
        {"Name": "Model", "Value": report["model"]},
    ]
    metrics: list[tuple[str, Any, str]] = [("Requests", report["requests"], "Count")]
    if report["requests"]:
        metrics.append(("MeanConfidence", report["confidence"]["mean"], "None"))
        metrics.append(("LowConfidenceShare", report["low_confidence"]["share"], "None"))
    if report["drift"]["psi"] is not None:
        metrics.append(("ClassDriftPSI", report["drift"]["psi"], "None"))
    metrics.append(("MalformedRecords", report["malformed"]["count"], "Count"))
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit}
        for name, value, unit in metrics
    ]


def publish(report: dict[str, Any], namespace: str, client: Any) -> list[dict[str, Any]]:
    """Sends the report's metrics with `client` (a boto3 CloudWatch client); returns them."""
    data = metric_data(report)
    client.put_metric_data(Namespace=namespace, MetricData=data)
    return data


def region() -> str | None:
    """AWS_REGION, else AWS_DEFAULT_REGION; None leaves the choice to boto3."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _client(service: str) -> Any:
    import boto3

    # boto3 reads AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) itself.
    return boto3.client(service, region_name=region())


def cloudwatch_client() -> Any:
    return _client("cloudwatch")


def sagemaker_client() -> Any:
    return _client("sagemaker")


def s3_store() -> S3Store:
    return S3Store(_client("s3"))


# --- main -------------------------------------------------------------------------------------


def write_report(output: Path, text: str) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"argument --output: `{output}`: {error.strerror}") from None


def report_keys(prefix: S3Location, window: tuple[datetime, datetime] | None) -> list[str]:
    """`<prefix>latest.json` and, with a window, `<prefix><window end as YYYY/MM/DD/HHMMSS>.json`."""
    keys = [prefix.key + LATEST_REPORT]
    if window is not None:
        end = window[1]
        keys.append(f"{prefix.key}{end.year:04d}/{end.month:02d}/{end.day:02d}/{end:%H%M%S}.json")
    return keys


def upload_report(
    store: Any, prefix: S3Location, text: str, window: tuple[datetime, datetime] | None
) -> int:
    """Uploads the report's bytes to each of report_keys; EXIT_PUBLISH_FAILED, with the reason,
    when S3 refuses."""
    body = text.encode("utf-8")
    for key in report_keys(prefix, window):
        try:
            store.write(prefix.bucket, key, body, REPORT_CONTENT_TYPE)
        except StoreError as error:
            print(f"error: uploading the report to `s3://{prefix.bucket}/{key}` failed: {error}", file=sys.stderr)
            return EXIT_PUBLISH_FAILED
        print(f"  uploaded to s3://{prefix.bucket}/{key}", file=sys.stderr)
    return EXIT_OK


def _log(report: dict[str, Any], capture: Capture, used: Capture) -> None:
    window = report["window"]
    older = len(capture.requests) + len(capture.problems) - len(used.requests) - len(used.problems)
    if window["end"] is None:
        span = "no record with a time"
    else:
        span = f"from {window['start']} to {window['end']}, {older} older records ignored"
    lines = [f"monitor: {report['requests']} requests ({span}); {report['malformed']['count']} malformed"]
    if report["requests"]:
        lines.append(
            f"  mean confidence {report['confidence']['mean']:.4f};"
            f" {report['low_confidence']['count']} below {report['low_confidence']['threshold']:g}"
        )
    drift = report["drift"]
    psi_text = "" if drift["psi"] is None else f" (PSI {drift['psi']:.4f}, threshold {drift['threshold']:g})"
    lines.append(f"  class drift: {drift['status']}{psi_text}")
    for example in report["malformed"]["examples"]:
        lines.append(f"  malformed: {example['file']}:{example['line']}: {example['reason']}")
    print("\n".join(lines), file=sys.stderr)


def load(
    arguments: Arguments, store: Any, sagemaker_factory: Callable[[], Any]
) -> tuple[Model, Capture]:
    """The model and the whole capture the arguments name; nothing for an empty --package-arn."""
    if arguments.no_package:
        print("monitor: --package-arn is empty: the endpoint serves no model package, nothing is read", file=sys.stderr)
        return NO_MODEL, Capture([], [])
    if arguments.package_arn is not None:
        model = package_model(arguments.package_arn, store, sagemaker_factory)
    else:
        assert arguments.classes is not None  # parse_arguments: --classes or --package-arn
        model = local_model(arguments.classes, arguments.baseline)
    if arguments.capture_uri is not None:
        capture = read_capture_uri(store, arguments.capture_uri, model.classes, arguments.window_hours)
    else:
        assert arguments.capture is not None  # parse_arguments: --capture or --capture-uri
        capture = read_capture(arguments.capture, model.classes)
    return model, capture


def run(
    arguments: Arguments,
    client_factory: Callable[[], Any] = cloudwatch_client,
    store_factory: Callable[[], Any] = s3_store,
    sagemaker_factory: Callable[[], Any] = sagemaker_client,
) -> int:
    """Reads, reports, uploads and publishes; `client_factory` makes the CloudWatch client,
    `store_factory` the object store (an S3Store) and `sagemaker_factory` the SageMaker client."""
    store = store_factory() if arguments.uses_store else None
    model, capture = load(arguments, store, sagemaker_factory)
    window = window_of(capture, arguments.window_hours)
    used = in_window(capture, window)
    report = build_report(arguments, model, used, window)
    text = render(report)
    write_report(arguments.output, text)
    _log(report, capture, used)
    status = EXIT_OK
    if arguments.report_uri is not None:
        status = max(status, upload_report(store, arguments.report_uri, text, window))
    if arguments.publish and arguments.no_package:
        print("  nothing published to CloudWatch: no model package is served", file=sys.stderr)
    elif arguments.publish:
        status = max(status, publish_metrics(report, arguments.namespace, client_factory))
    return status


def publish_metrics(report: dict[str, Any], namespace: str, client_factory: Callable[[], Any]) -> int:
    """Publishes the report's metrics; EXIT_PUBLISH_FAILED, with the reason, when AWS refuses."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        data = publish(report, namespace, client_factory())
    except (BotoCoreError, ClientError) as error:
        print(f"error: publishing to CloudWatch namespace `{namespace}` failed: {error}", file=sys.stderr)
        return EXIT_PUBLISH_FAILED
    names = ", ".join(datum["MetricName"] for datum in data)
    print(f"  published to CloudWatch namespace `{namespace}`: {names}", file=sys.stderr)
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None,
    client_factory: Callable[[], Any] = cloudwatch_client,
    store_factory: Callable[[], Any] = s3_store,
    sagemaker_factory: Callable[[], Any] = sagemaker_client,
) -> int:
    try:
        arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
        return run(arguments, client_factory, store_factory, sagemaker_factory)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
