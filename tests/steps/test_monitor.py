"""Tests for steps/monitor.py, on data-capture files written in a tmp folder, or held by an
in-memory object store, in SageMaker's format, with real image bytes (the payloads' photos, PNGs
and a GIF made with Pillow)."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "steps" / "monitor.py"
sys.path.insert(0, str(SCRIPT.parent))

import evaluate  # noqa: E402
import monitor  # noqa: E402

FLOWER = (REPO / "payloads" / "flower.jpg").read_bytes()
LEAF = (REPO / "payloads" / "leaf.jpg").read_bytes()
# A camera JPEG with a multi-picture segment: Pillow's format `MPO`.
MPO = (Path(__file__).parent / "samples" / "frame_size.mpo").read_bytes()

CLASSES = ["daisy", "rose", "tulip"]
END = datetime(2026, 11, 30, 10, 15, tzinfo=timezone.utc)
DIMENSIONS = [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "plants"}]


def picture(width: int, height: int, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 160, 60)).save(buffer, format=kind)
    return buffer.getvalue()


def at(hours_before: float = 0) -> str:
    return (END - timedelta(hours=hours_before)).strftime("%Y-%m-%dT%H:%M:%SZ")


def side(mode: str, content_type: str, data: str, encoding: str) -> dict[str, str]:
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def record(
    answer: Any,
    *,
    image: bytes = FLOWER,
    time: str | None = None,
    output_encoding: str = "BASE64",
    event: int = 0,
) -> dict[str, Any]:
    """A capture record as SageMaker writes it; `answer` is JSON-encoded unless it is a str."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    data = base64.b64encode(text.encode()).decode() if output_encoding == "BASE64" else text
    return {
        "captureData": {
            "endpointInput": side("INPUT", "application/x-image", base64.b64encode(image).decode(), "BASE64"),
            "endpointOutput": side("OUTPUT", "application/json", data, output_encoding),
        },
        "eventMetadata": {"eventId": f"00000000-0000-4000-8000-{event:012d}", "inferenceTime": time or at()},
        "eventVersion": "0",
    }


def line(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def file_bytes(lines: list[Any]) -> bytes:
    """A capture file of `lines`: records, or raw str/bytes lines."""
    encoded = [item if isinstance(item, bytes) else (item if isinstance(item, str) else line(item)).encode()
               for item in lines]
    return b"".join(item + b"\n" for item in encoded)


def write_capture(root: Path, files: dict[str, list[Any]]) -> Path:
    """Writes each file's lines (records, or raw str/bytes lines) under root/capture."""
    capture = root / "capture"
    capture.mkdir(parents=True)
    for name, lines in files.items():
        path = capture / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_bytes(lines))
    return capture


def baseline_report(root: Path, predicted: dict[str, int]) -> Path:
    """evaluate.py's report for a test set on which the model predicted `predicted` times each class."""
    predictions = [
        evaluate.Prediction(
            name=f"{label}-{number}", label=label, scores={name: float(name == label) for name in CLASSES}
        )
        for label, count in predicted.items()
        for number in range(count)
    ]
    path = root / "evaluation.json"
    path.write_text(evaluate.render(evaluate.evaluate(predictions)), encoding="utf-8")
    return path


class FakeCloudWatch:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def put_metric_data(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        if self.error is not None:
            raise self.error
        return {}


def never_called() -> Any:
    raise AssertionError("a CloudWatch client was made without --publish")


def arguments_for(root: Path, capture: Path, *extra: str, classes: Any = CLASSES) -> list[str]:
    classes_file = root / "classes.json"
    if not classes_file.exists():
        classes_file.write_text(json.dumps(classes), encoding="utf-8")
    return [
        "--capture", str(capture),
        "--classes", str(classes_file),
        "--output", str(root / "out" / "monitoring.json"),
        "--model", "plants",
        "--environment", "dev",
        *extra,
    ]  # fmt: skip


def monitor_report(
    root: Path, files: dict[str, list[Any]], *extra: str, client: FakeCloudWatch | None = None
) -> dict[str, Any]:
    capture = write_capture(root, files)
    factory = (lambda: client) if client is not None else never_called
    assert monitor.main(arguments_for(root, capture, *extra), client_factory=factory) == 0
    return json.loads((root / "out" / "monitoring.json").read_text(encoding="utf-8"))


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, check=False)


def psi_of(baseline: list[float], live: list[float]) -> float:
    return sum(
        (max(live_share, 1e-4) - max(base, 1e-4)) * math.log(max(live_share, 1e-4) / max(base, 1e-4))
        for base, live_share in zip(baseline, live)
    )


# --- the report ---------------------------------------------------------------------------------


def test_report_on_a_small_capture(tmp_path: Path):
    small, wide = picture(64, 48), picture(300, 200)
    files = {
        "plants-dev/AllTraffic/2026/11/30/10/a.jsonl": [
            record([0.7, 0.2, 0.1], image=FLOWER, time=at(2), event=1),
            record([0.1, 0.5, 0.4], image=LEAF, time=at(1), event=2),
        ],
        "plants-dev/AllTraffic/2026/11/30/09/b.jsonl": [
            record([0.05, 0.05, 0.9], image=small, time=at(3), event=3),
            record({"prediction": [0.2, 0.75, 0.05]}, image=wide, event=4),
        ],
    }
    baseline = baseline_report(tmp_path, {"daisy": 2, "rose": 1, "tulip": 1})
    report = monitor_report(tmp_path, files, "--baseline", str(baseline))
    histogram = [{"from": round(i / 10, 1), "to": round((i + 1) / 10, 1), "count": 0} for i in range(10)]
    for position, count in ((5, 1), (7, 2), (9, 1)):
        histogram[position]["count"] = count
    sizes = sorted([len(FLOWER), len(LEAF), len(small), len(wide)])
    assert report == {
        "model": "plants",
        "environment": "dev",
        "package": None,
        "window": {"start": "2026-11-29T10:15:00Z", "end": "2026-11-30T10:15:00Z"},
        "requests": 4,
        "malformed": {"count": 0, "examples": []},
        "confidence": {"mean": pytest.approx(0.7125), "p10": 0.5, "p50": 0.7, "p90": 0.9, "histogram": histogram},
        "low_confidence": {"threshold": 0.6, "count": 1, "share": 0.25},
        "predicted_classes": {"daisy": 1, "rose": 2, "tulip": 1},
        "drift": {
            "baseline": True,
            # Baseline shares 0.5/0.25/0.25, live 0.25/0.5/0.25: 0.25 ln 2 twice.
            "psi": pytest.approx(0.5 * math.log(2)),
            "status": "drift",
            "threshold": 0.2,
            "top_shifts": [
                {"class": "daisy", "baseline_share": 0.5, "live_share": 0.25},
                {"class": "rose", "baseline_share": 0.25, "live_share": 0.5},
            ],
        },
        "images": {
            "formats": {"JPEG": 2, "PNG": 2, "other": 0, "unreadable": 0},
            "width": {"min": 64, "p50": 224, "max": 300},
            "height": {"min": 48, "p50": 200, "max": 224},
            "bytes": {"min": sizes[0], "p50": sizes[1], "max": sizes[3]},
        },
    }


def test_empty_capture_gives_a_report_with_no_request(tmp_path: Path):
    baseline = baseline_report(tmp_path, {"daisy": 1, "rose": 1, "tulip": 1})
    client = FakeCloudWatch()
    # An empty capture file and a file that is not a capture file count for nothing.
    files: dict[str, list[Any]] = {"plants-dev/AllTraffic/2026/11/30/10/empty.jsonl": [], "notes.txt": ["hello"]}
    report = monitor_report(tmp_path, files, "--baseline", str(baseline), "--publish", client=client)
    assert report["requests"] == 0
    assert report["window"] == {"start": None, "end": None}
    assert report["malformed"] == {"count": 0, "examples": []}
    assert {key: report["confidence"][key] for key in ("mean", "p10", "p50", "p90")} == dict.fromkeys(
        ("mean", "p10", "p50", "p90")
    )
    assert [bin["count"] for bin in report["confidence"]["histogram"]] == [0] * 10
    assert report["low_confidence"] == {"threshold": 0.6, "count": 0, "share": None}
    assert report["predicted_classes"] == {"daisy": 0, "rose": 0, "tulip": 0}
    assert report["drift"] == {"baseline": True, "psi": None, "status": "no_data", "threshold": 0.2, "top_shifts": []}
    assert report["images"] == {
        "formats": {"JPEG": 0, "PNG": 0, "other": 0, "unreadable": 0},
        "width": {"min": None, "p50": None, "max": None},
        "height": {"min": None, "p50": None, "max": None},
        "bytes": {"min": None, "p50": None, "max": None},
    }
    # No confidence to report: only the counts are published.
    assert client.calls[0]["MetricData"] == [
        {"MetricName": "Requests", "Dimensions": DIMENSIONS, "Value": 0.0, "Unit": "Count"},
        {"MetricName": "MalformedRecords", "Dimensions": DIMENSIONS, "Value": 0.0, "Unit": "Count"},
    ]


def test_an_empty_capture_folder_exits_0(tmp_path: Path):
    (tmp_path / "capture").mkdir()
    output = tmp_path / "report.json"
    (tmp_path / "classes.json").write_text(json.dumps(CLASSES))
    result = run_cli(
        "--capture", str(tmp_path / "capture"), "--classes", str(tmp_path / "classes.json"),
        "--output", str(output), "--model", "plants", "--environment", "dev",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text())["requests"] == 0
    assert "monitor: 0 requests (no record with a time); 0 malformed" in result.stderr


# --- malformed lines ----------------------------------------------------------------------------


def without(path: str) -> dict[str, Any]:
    value = record([0.2, 0.3, 0.5])
    *parents, last = path.split(".")
    target = value
    for key in parents:
        target = target[key]
    del target[last]
    return value


def with_output(data: str, encoding: str = "BASE64") -> dict[str, Any]:
    value = record([0.2, 0.3, 0.5])
    value["captureData"]["endpointOutput"].update(data=data, encoding=encoding)
    return value


def with_time(time: Any) -> dict[str, Any]:
    value = record([0.2, 0.3, 0.5])
    value["eventMetadata"]["inferenceTime"] = time
    return value


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


MALFORMED = [
    pytest.param('{"captureData": ', "not JSON (Expecting value)", id="not-json"),
    pytest.param("[1, 2, 3]", "not a JSON object", id="not-an-object"),
    pytest.param("[" * 100_000 + "]" * 100_000, "not JSON (nested too deeply)", id="nested-too-deeply"),
    pytest.param(b'\xff{"captureData": {}}', "not UTF-8 text", id="not-utf8"),
    pytest.param(without("captureData"), "missing `captureData`", id="no-capture-data"),
    pytest.param(without("captureData.endpointInput"), "missing `captureData.endpointInput`", id="no-input"),
    pytest.param(without("captureData.endpointOutput"), "missing `captureData.endpointOutput`", id="no-output"),
    pytest.param(
        without("captureData.endpointOutput.data"), "missing `captureData.endpointOutput.data`", id="no-output-data"
    ),
    pytest.param(
        without("captureData.endpointInput.encoding"), "missing `captureData.endpointInput.encoding`", id="no-encoding"
    ),
    pytest.param(without("eventMetadata"), "missing `eventMetadata`", id="no-metadata"),
    pytest.param(without("eventMetadata.inferenceTime"), "missing `eventMetadata.inferenceTime`", id="no-time"),
    pytest.param(
        with_time("yesterday"), "`eventMetadata.inferenceTime` `yesterday` is not an ISO 8601 time", id="bad-time"
    ),
    pytest.param(
        with_time("2026-13-01T00:00:00Z"),
        "`eventMetadata.inferenceTime` `2026-13-01T00:00:00Z` is not an ISO 8601 time",
        id="impossible-time",
    ),
    pytest.param(with_time(1764497700), "`eventMetadata.inferenceTime` is not a string", id="time-not-string"),
    pytest.param(
        with_output("not base64!"), "`captureData.endpointOutput.data` is not valid base64", id="bad-base64-output"
    ),
    pytest.param(
        with_output("[0.2, 0.3, 0.5]", "GZIP"),
        "`captureData.endpointOutput.encoding` `GZIP` is not one of BASE64, JSON, CSV",
        id="unknown-encoding",
    ),
    pytest.param(with_output(b64("<html>busy</html>")), "answer is not JSON", id="answer-not-json"),
    pytest.param(
        with_output('{"scores": [0.2, 0.3, 0.5]}', "JSON"),
        "answer is not a JSON array of class probabilities",
        id="answer-not-array",
    ),
    pytest.param(
        with_output(b64("[0.5, 0.5]")), "answer has 2 probabilities, but --classes has 3 classes", id="too-short"
    ),
    pytest.param(
        with_output("[0.1, 0.2, 0.3, 0.4]", "CSV"),
        "answer has 4 probabilities, but --classes has 3 classes",
        id="too-long",
    ),
    pytest.param(
        with_output('[0.5, "0.3", 0.2]', "JSON"), 'answer probability 1 is not a finite number: "0.3"', id="string"
    ),
    pytest.param(
        with_output("[0.5, 0.3, NaN]", "JSON"), "answer probability 2 is not a finite number: NaN", id="nan"
    ),
]


@pytest.mark.parametrize(("bad", "reason"), MALFORMED)
def test_a_malformed_line_is_counted_and_the_rest_used(tmp_path: Path, bad: Any, reason: str):
    files = {"2026/11/30/10/capture.jsonl": [record([0.8, 0.1, 0.1], event=1), bad, record([0.1, 0.1, 0.8], event=2)]}
    report = monitor_report(tmp_path, files)
    assert report["requests"] == 2
    assert report["predicted_classes"] == {"daisy": 1, "rose": 0, "tulip": 1}
    assert report["malformed"]["count"] == 1
    [example] = report["malformed"]["examples"]
    assert (example["file"], example["line"]) == ("2026/11/30/10/capture.jsonl", 2)
    assert example["reason"].startswith(reason), example["reason"]


def test_bad_base64_image_is_malformed(tmp_path: Path):
    bad = record([0.2, 0.3, 0.5])
    bad["captureData"]["endpointInput"]["data"] = "%%% not base64 %%%"
    report = monitor_report(tmp_path, {"c.jsonl": [bad, record([0.2, 0.3, 0.5])]})
    assert report["requests"] == 1
    assert report["malformed"]["examples"] == [
        {"file": "c.jsonl", "line": 1, "reason": "`captureData.endpointInput.data` is not valid base64"}
    ]


def test_malformed_examples_are_the_first_five_by_file_and_line(tmp_path: Path):
    good = record([0.6, 0.3, 0.1])
    files = {
        "b.jsonl": ["oops", good, "[]", "", "{", good],
        "a/c.jsonl": [good, "1", "null", good, '"text"', "true"],
    }
    report = monitor_report(tmp_path, files)
    assert report["requests"] == 4
    assert report["malformed"]["count"] == 7
    assert [(example["file"], example["line"]) for example in report["malformed"]["examples"]] == [
        ("a/c.jsonl", 2),
        ("a/c.jsonl", 3),
        ("a/c.jsonl", 5),
        ("a/c.jsonl", 6),
        ("b.jsonl", 1),
    ]
    assert monitor.MAX_EXAMPLES == 5


def test_a_long_value_is_cut_in_the_reason(tmp_path: Path):
    report = monitor_report(tmp_path, {"c.jsonl": [with_time("x" * 5000)]})
    [example] = report["malformed"]["examples"]
    assert example["reason"] == f"`eventMetadata.inferenceTime` `{'x' * 40}...` is not an ISO 8601 time"


# --- baseline and drift -------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", [None, "absent.json"], ids=["not-given", "missing-file"])
def test_no_baseline(tmp_path: Path, baseline: str | None):
    client = FakeCloudWatch()
    extra = ["--publish"] + (["--baseline", str(tmp_path / baseline)] if baseline else [])
    report = monitor_report(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05])]}, *extra, client=client)
    assert report["drift"] == {
        "baseline": False,
        "psi": None,
        "status": "no_baseline",
        "threshold": 0.2,
        "top_shifts": [],
    }
    names = [datum["MetricName"] for datum in client.calls[0]["MetricData"]]
    assert names == ["Requests", "MeanConfidence", "LowConfidenceShare", "MalformedRecords"]


def test_drift_when_every_request_is_one_class(tmp_path: Path):
    baseline = baseline_report(tmp_path, {"daisy": 10, "rose": 10, "tulip": 10})
    live = [record([0.9, 0.05, 0.05], event=number) for number in range(6)]
    report = monitor_report(tmp_path, {"c.jsonl": live}, "--baseline", str(baseline))
    third = 1 / 3
    drift = report["drift"]
    assert drift["psi"] == pytest.approx(psi_of([third] * 3, [1.0, 0.0, 0.0]))
    # Floored at 1e-4: large, not infinite.
    assert drift["psi"] == pytest.approx((1 - third) * math.log(3) + 2 * (1e-4 - third) * math.log(3e-4))
    assert drift["status"] == "drift"
    assert drift["top_shifts"] == [
        {"class": "daisy", "baseline_share": pytest.approx(third), "live_share": 1.0},
        {"class": "rose", "baseline_share": pytest.approx(third), "live_share": 0.0},
        {"class": "tulip", "baseline_share": pytest.approx(third), "live_share": 0.0},
    ]


def test_no_drift_on_the_baselines_distribution(tmp_path: Path):
    baseline = baseline_report(tmp_path, {"daisy": 4, "rose": 2, "tulip": 2})
    answers = [[0.9, 0.05, 0.05]] * 2 + [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    live = [record(answer, event=number) for number, answer in enumerate(answers)]
    report = monitor_report(tmp_path, {"c.jsonl": live}, "--baseline", str(baseline))
    assert report["drift"] == {"baseline": True, "psi": 0.0, "status": "ok", "threshold": 0.2, "top_shifts": []}


def test_a_moderate_shift_is_below_the_threshold(tmp_path: Path):
    baseline = baseline_report(tmp_path, {"daisy": 10, "rose": 10, "tulip": 10})
    answers = [[0.9, 0.05, 0.05]] * 4 + [[0.1, 0.8, 0.1]] * 3 + [[0.1, 0.1, 0.8]] * 3
    live = [record(answer, event=number) for number, answer in enumerate(answers)]
    report = monitor_report(tmp_path, {"c.jsonl": live}, "--baseline", str(baseline))
    assert report["drift"]["psi"] == pytest.approx(psi_of([1 / 3] * 3, [0.4, 0.3, 0.3]))
    assert 0 < report["drift"]["psi"] < 0.1
    assert report["drift"]["status"] == "ok"
    assert [shift["class"] for shift in report["drift"]["top_shifts"]] == ["daisy", "rose", "tulip"]


@pytest.mark.parametrize(("value", "status"), [(0.2, "drift"), (0.19999, "ok"), (3.5, "drift"), (0.0, "ok")])
def test_drift_status_at_the_threshold(monkeypatch: pytest.MonkeyPatch, value: float, status: str):
    monkeypatch.setattr(monitor, "psi", lambda baseline, live: value)
    assert monitor.drift_summary(CLASSES, [1, 1, 1], [3, 0, 0])["status"] == status


def test_psi_is_symmetric_and_finite_with_empty_classes():
    assert monitor.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert monitor.psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(monitor.psi([0.0, 0.5, 0.5], [0.5, 0.5, 0.0]))
    assert math.isfinite(monitor.psi([1.0, 0.0], [0.0, 1.0]))


def test_top_shifts_are_at_most_five(tmp_path: Path):
    classes = [f"c{index}" for index in range(8)]
    evaluation = {
        "multiclass_classification_metrics": {
            "confusion_matrix": {true: {predicted: int(true == predicted) for predicted in classes} for true in classes}
        }
    }
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation))
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    capture = write_capture(tmp_path, {"c.jsonl": [record([1.0] + [0.0] * 7)]})
    arguments = arguments_for(tmp_path, capture, "--baseline", str(tmp_path / "evaluation.json"))
    assert monitor.main(arguments, client_factory=never_called) == 0
    shifts = json.loads((tmp_path / "out" / "monitoring.json").read_text())["drift"]["top_shifts"]
    assert [shift["class"] for shift in shifts] == ["c0", "c1", "c2", "c3", "c4"]


# --- confidence and the window ------------------------------------------------------------------


def test_low_confidence_share(tmp_path: Path):
    tops = [0.34, 0.55, 0.6, 0.61, 0.95]
    live = [record([top, (1 - top) / 2, (1 - top) / 2], event=number) for number, top in enumerate(tops)]
    report = monitor_report(tmp_path / "default", {"c.jsonl": live})
    # 0.6 itself is not below the threshold.
    assert report["low_confidence"] == {"threshold": 0.6, "count": 2, "share": 0.4}
    assert report["confidence"]["p50"] == 0.6
    client = FakeCloudWatch()
    report = monitor_report(
        tmp_path / "raised", {"c.jsonl": live}, "--low-confidence-threshold", "0.7", "--publish", client=client
    )
    assert report["low_confidence"] == {"threshold": 0.7, "count": 4, "share": 0.8}
    [share] = [datum for datum in client.calls[0]["MetricData"] if datum["MetricName"] == "LowConfidenceShare"]
    assert share["Value"] == 0.8


def test_ties_go_to_the_first_class_name():
    assert monitor.top_class([0.4, 0.4, 0.2], ["tulip", "daisy", "rose"]) == 1


def test_window_is_the_hours_before_the_newest_record(tmp_path: Path):
    bad_answer = {"captureData": record([0.5, 0.5])["captureData"]}
    old_bad = dict(bad_answer, eventMetadata={"eventId": "x", "inferenceTime": at(50)})
    files = {
        "2026/11/28/08/old.jsonl": [record([0.9, 0.05, 0.05], time=at(30), event=1), old_bad],
        "2026/11/29/10/edge.jsonl": [
            record([0.9, 0.05, 0.05], time=at(24), event=2),  # on the window's start: included
            record([0.05, 0.9, 0.05], time="2026-11-29T11:15:00.250Z", event=3),
        ],
        "2026/11/30/10/new.jsonl": [
            # The newest: 10:15Z written with an offset.
            record([0.05, 0.05, 0.9], time="2026-11-30T11:15:00+01:00", event=4),
            record([0.05, 0.05, 0.9], time=at(1), event=5),
            # No readable time: counted whatever the window.
            "not json",
        ],
    }
    report = monitor_report(tmp_path / "day", files)
    assert report["window"] == {"start": "2026-11-29T10:15:00Z", "end": "2026-11-30T10:15:00Z"}
    assert report["requests"] == 4
    assert report["predicted_classes"] == {"daisy": 1, "rose": 1, "tulip": 2}
    assert report["malformed"]["count"] == 1

    report = monitor_report(tmp_path / "three-days", files, "--window-hours", "72")
    assert report["window"] == {"start": "2026-11-27T10:15:00Z", "end": "2026-11-30T10:15:00Z"}
    assert report["requests"] == 5
    assert [example["reason"] for example in report["malformed"]["examples"]] == [
        "answer has 2 probabilities, but --classes has 3 classes",
        "not JSON (Expecting value)",
    ]

    report = monitor_report(tmp_path / "half-hour", files, "--window-hours", "0.5")
    assert report["window"] == {"start": "2026-11-30T09:45:00Z", "end": "2026-11-30T10:15:00Z"}
    assert report["requests"] == 1


def test_a_window_reaching_before_year_1_starts_there(tmp_path: Path):
    report = monitor_report(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05], time="0001-01-01T05:00:00Z")]})
    assert report["window"] == {"start": "0001-01-01T00:00:00Z", "end": "0001-01-01T05:00:00Z"}
    assert report["requests"] == 1


def test_times_read_as_utc():
    utc = datetime(2026, 11, 30, 10, 15, tzinfo=timezone.utc)
    assert monitor.parse_time("2026-11-30T10:15:00Z") == utc
    assert monitor.parse_time("2026-11-30T10:15:00") == utc
    assert monitor.parse_time("2026-11-30T05:15:00-05:00") == utc
    assert monitor.parse_time("2026-11-30T10:15:00.123456789Z") == utc.replace(microsecond=123456)
    assert monitor.format_time(utc.replace(microsecond=250000)) == "2026-11-30T10:15:00.25Z"
    for text in (
        "2026-11-30",
        "2026-11-30 10:15:00Z",
        "2026-02-30T10:15:00Z",
        "2026-11-30T10:15:00+0100",
        "2026-11-30T10:15:00Z\n",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ):
        with pytest.raises(ValueError):
            monitor.parse_time(text)


# --- encodings and images -----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["BASE64", "JSON", "CSV"])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_answer_encodings(tmp_path: Path, encoding: str, shape: str):
    answer: Any = [0.1, 0.7, 0.2] if shape == "array" else {"prediction": [0.1, 0.7, 0.2]}
    value = record(answer, output_encoding=encoding)
    if encoding == "CSV":
        value["captureData"]["endpointOutput"]["observedContentType"] = "text/csv"
    report = monitor_report(tmp_path, {"c.jsonl": [value]})
    assert report["malformed"]["count"] == 0
    assert report["predicted_classes"] == {"daisy": 0, "rose": 1, "tulip": 0}
    assert report["confidence"]["mean"] == 0.7


@pytest.mark.parametrize("encoding", ["JSON", "CSV"])
def test_a_request_captured_as_text_is_taken_as_is(tmp_path: Path, encoding: str):
    value = record([0.1, 0.7, 0.2])
    value["captureData"]["endpointInput"].update(data="0.5,1.5,2.5", encoding=encoding)
    report = monitor_report(tmp_path, {"c.jsonl": [value]})
    assert report["requests"] == 1
    assert report["images"]["formats"]["unreadable"] == 1
    assert report["images"]["bytes"] == {"min": 11, "p50": 11, "max": 11}


def test_image_formats_and_sizes(tmp_path: Path):
    images = [FLOWER, LEAF, MPO, picture(640, 480), picture(32, 16), picture(10, 12, "GIF"), b"not an image", b""]
    # The sizes Pillow reads from the headers, as reported.
    expected = []
    for data in images[:6]:
        with Image.open(io.BytesIO(data)) as image:
            expected.append(image.size)
    live = [record([0.2, 0.3, 0.5], image=data, event=number) for number, data in enumerate(images)]
    report = monitor_report(tmp_path, {"c.jsonl": live})
    assert report["images"]["formats"] == {"JPEG": 3, "PNG": 2, "other": 1, "unreadable": 2}
    widths = sorted(width for width, _ in expected)
    heights = sorted(height for _, height in expected)
    sizes = sorted(len(data) for data in images)
    assert report["images"]["width"] == {"min": widths[0], "p50": widths[2], "max": widths[-1]}
    assert report["images"]["height"] == {"min": heights[0], "p50": heights[2], "max": heights[-1]}
    assert report["images"]["bytes"] == {"min": 0, "p50": sizes[3], "max": sizes[-1]}
    assert (224, 224) in expected and (640, 480) in expected


def test_only_the_header_is_read(tmp_path: Path):
    # A PNG cut after its header: the size is there, the pixels are not.
    whole = picture(400, 300)
    report = monitor_report(tmp_path, {"c.jsonl": [record([0.2, 0.3, 0.5], image=whole[:64])]})
    assert report["images"]["formats"]["PNG"] == 1
    assert report["images"]["width"] == {"min": 400, "p50": 400, "max": 400}


def test_a_huge_image_is_reported_with_its_size(tmp_path: Path):
    # A PNG whose header says 100000x100000, far past Pillow's decompression-bomb limit.
    data = bytearray(picture(8, 8))
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    limit = Image.MAX_IMAGE_PIXELS
    report = monitor_report(tmp_path, {"c.jsonl": [record([0.2, 0.3, 0.5], image=bytes(data))]})
    assert report["images"]["formats"]["PNG"] == 1
    assert report["images"]["width"] == {"min": 100_000, "p50": 100_000, "max": 100_000}
    assert Image.MAX_IMAGE_PIXELS == limit


def test_percentiles_are_nearest_rank():
    values = [float(value) for value in range(1, 11)]
    assert [monitor.percentile(values, fraction) for fraction in (0.1, 0.5, 0.9, 1.0)] == [1.0, 5.0, 9.0, 10.0]
    assert monitor.percentile([3.0], 0.1) == 3.0
    assert monitor.percentile([1.0, 2.0, 3.0], 0.9) == 3.0


# --- determinism and the command line -----------------------------------------------------------


def deterministic_case() -> list[dict[str, Any]]:
    images = [FLOWER, LEAF, picture(50, 40), picture(90, 70, "GIF")]
    return [
        record(
            [0.1 + 0.07 * (number % 5), 0.4, 0.5 - 0.07 * (number % 5)],
            image=images[number % 4],
            time=at(number * 1.5),
            event=number,
        )
        for number in range(20)
    ]


def test_report_bytes_do_not_depend_on_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    records = deterministic_case()
    baseline = baseline_report(tmp_path, {"daisy": 3, "rose": 5, "tulip": 2})
    first = write_capture(tmp_path / "one", {"a/x.jsonl": records[:7], "b/y.jsonl": records[7:13], "z.jsonl": records[13:]})
    shuffled = records[::-1]
    second = write_capture(
        tmp_path / "two",
        {"2026/11/29/q.jsonl": shuffled[:10], "2026/11/30/10/r.jsonl": shuffled[10:15], "s.jsonl": shuffled[15:]},
    )
    original = Path.rglob

    def reversed_listing(self: Path, pattern: str) -> list[Path]:
        return sorted(original(self, pattern), reverse=True)

    outputs = []
    for capture, listing in ((first, original), (first, reversed_listing), (second, reversed_listing)):
        monkeypatch.setattr(monitor.Path, "rglob", listing)
        output = tmp_path / f"report-{len(outputs)}.json"
        arguments = arguments_for(tmp_path, capture, "--baseline", str(baseline))
        arguments[arguments.index("--output") + 1] = str(output)
        assert monitor.main(arguments, client_factory=never_called) == 0
        monkeypatch.setattr(monitor.Path, "rglob", original)
        outputs.append(output.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    text = outputs[0].decode("utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_cli_writes_the_report_and_logs_a_summary(tmp_path: Path):
    capture = write_capture(tmp_path, {"c.jsonl": deterministic_case() + ["oops"]})
    baseline = baseline_report(tmp_path, {"daisy": 3, "rose": 5, "tulip": 2})
    output = tmp_path / "out" / "monitoring" / "report.json"
    (tmp_path / "classes.json").write_text(json.dumps(CLASSES))
    result = run_cli(
        "--capture", str(capture), "--classes", str(tmp_path / "classes.json"), "--baseline", str(baseline),
        "--output", str(output), "--model", "plants", "--environment", "dev",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    report = json.loads(output.read_text())
    # One record every 1.5 hours: the 17 of the last 24 hours, both ends included.
    assert report["requests"] == 17
    assert (
        "monitor: 17 requests (from 2026-11-29T10:15:00Z to 2026-11-30T10:15:00Z, 3 older records ignored); 1 malformed"
        in result.stderr
    )
    assert f"class drift: {report['drift']['status']} (PSI {report['drift']['psi']:.4f}, threshold 0.2)" in result.stderr
    assert "malformed: c.jsonl:21: not JSON" in result.stderr


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (None, "classes.json` does not exist"),
        ("{not json", "classes.json`: not valid JSON"),
        (b"\xff\xfe[]", "classes.json`: not UTF-8 text"),
        ("[]", "expected a non-empty JSON array of class names"),
        ('{"daisy": 0}', "expected a non-empty JSON array of class names"),
        ('["daisy", "", "tulip"]', "entry 1 is not a non-empty string"),
        ('["daisy", 2]', "entry 1 is not a non-empty string"),
        ('["daisy", "rose", "daisy"]', "class `daisy` is listed twice"),
    ],
)
def test_bad_classes_exit_2_and_write_nothing(tmp_path: Path, classes: Any, message: str):
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.2, 0.3, 0.5])]})
    classes_file = tmp_path / "classes.json"
    if isinstance(classes, bytes):
        classes_file.write_bytes(classes)
    elif classes is not None:
        classes_file.write_text(classes, encoding="utf-8")
    output = tmp_path / "out" / "report.json"
    result = run_cli(
        "--capture", str(capture), "--classes", str(classes_file), "--output", str(output),
        "--model", "plants", "--environment", "dev", "--publish",
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: argument --classes: `{classes_file}" in result.stderr
    assert message in result.stderr
    assert not output.exists() and not output.parent.exists()


def baseline_with(matrix: Any) -> str:
    return json.dumps({"multiclass_classification_metrics": {"confusion_matrix": matrix}})


FULL_ROWS = {name: {other: 1 for other in CLASSES} for name in CLASSES}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"accuracy": 0.9}', "no `multiclass_classification_metrics.confusion_matrix` object"),
        ('{"multiclass_classification_metrics": []}', "no `multiclass_classification_metrics.confusion_matrix`"),
        (baseline_with(dict(FULL_ROWS, lily={"daisy": 1})), "class `lily` is not in --classes"),
        (baseline_with(dict(FULL_ROWS, daisy={"lily": 1})), "class `lily` is not in --classes"),
        (baseline_with({"daisy": {"daisy": 1}, "rose": {"rose": 1}}), "class `tulip` of --classes has no row"),
        (baseline_with(dict(FULL_ROWS, rose={"rose": -1})), "count [rose][rose] is not a whole number of images: -1"),
        (baseline_with(dict(FULL_ROWS, rose={"rose": 0.5})), "count [rose][rose] is not a whole number"),
        (baseline_with(dict(FULL_ROWS, rose=[1, 2])), "row `rose` of the confusion matrix is not an object"),
        (baseline_with({name: {} for name in CLASSES}), "the confusion matrix counts no image"),
    ],
)
def test_a_malformed_baseline_exits_2(tmp_path: Path, body: str, message: str, capsys: pytest.CaptureFixture):
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.2, 0.3, 0.5])]})
    baseline = tmp_path / "evaluation.json"
    baseline.write_text(body, encoding="utf-8")
    arguments = arguments_for(tmp_path, capture, "--baseline", str(baseline))
    assert monitor.main(arguments, client_factory=never_called) == 2
    assert f"error: argument --baseline: `{baseline}`: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--low-confidence-threshold", "1.5"], "argument --low-confidence-threshold: `1.5` must be between 0 and 1"),
        (["--low-confidence-threshold", "high"], "argument --low-confidence-threshold: `high` is not a number"),
        (["--window-hours", "0"], "argument --window-hours: `0` must be above 0"),
        (["--window-hours", "nan"], "argument --window-hours: `nan` is not a finite number"),
        (["--window-hours", "1e9"], "argument --window-hours: `1e9` must be at most 87600"),
        (["--model", " "], "argument --model: must not be empty"),
        (["--environment", ""], "argument --environment: must not be empty"),
        (["--namespace", "AWS/SageMaker"], "argument --namespace: `AWS/SageMaker` may not start with `:` or `AWS/`"),
        (["--namespace", "n" * 256], "argument --namespace: "),
        (["--unknown", "x"], "unrecognized arguments: --unknown x"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, change: list[str], message: str, capsys: pytest.CaptureFixture):
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.2, 0.3, 0.5])]})
    arguments = arguments_for(tmp_path, capture)
    if change[0] in arguments:
        arguments[arguments.index(change[0]) + 1] = change[1]
    else:
        arguments.extend(change)
    assert monitor.main(arguments, client_factory=never_called) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.2, 0.3, 0.5])]})
    cases = [
        ("--capture", str(tmp_path / "absent"), f"argument --capture: `{tmp_path / 'absent'}` does not exist"),
        ("--capture", str(capture / "c.jsonl"), f"argument --capture: `{capture / 'c.jsonl'}` is not a folder"),
        ("--output", str(tmp_path), f"argument --output: `{tmp_path}` is a folder"),
        ("--baseline", str(tmp_path), f"argument --baseline: `{tmp_path}` is a folder"),
    ]
    for flag, value, message in cases:
        arguments = arguments_for(tmp_path, capture)
        if flag in arguments:
            arguments[arguments.index(flag) + 1] = value
        else:
            arguments.extend([flag, value])
        assert monitor.main(arguments, client_factory=never_called) == 2, flag
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_arguments_exit_2(tmp_path: Path):
    result = run_cli("--capture", str(tmp_path), "--output", str(tmp_path / "r.json"))
    assert result.returncode == 2
    assert "the following arguments are required: --model, --environment" in result.stderr
    names = ["--output", str(tmp_path / "r.json"), "--model", "m", "--environment", "e"]
    result = run_cli("--capture", str(tmp_path), *names)
    assert result.returncode == 2
    assert "one of the arguments --classes --package-arn is required" in result.stderr
    result = run_cli("--classes", str(tmp_path), *names)
    assert result.returncode == 2
    assert "one of the arguments --capture --capture-uri is required" in result.stderr


def test_pipeline_arguments_parse():
    arguments = [
        "--capture", "/opt/ml/processing/input/capture",
        "--classes", "/opt/ml/processing/input/model/classes.json",
        "--baseline", "/opt/ml/processing/input/baseline/evaluation.json",
        "--output", "/opt/ml/processing/output/monitoring/monitoring.json",
        "--model", "plants", "--environment", "dev", "--publish",
        "--low-confidence-threshold", "0.6", "--window-hours", "24",
    ]  # fmt: skip
    parsed = monitor.build_parser().parse_args(arguments)
    assert parsed.publish and parsed.window_hours == 24.0 and parsed.namespace == "mlops-images/monitoring"


# --- CloudWatch ---------------------------------------------------------------------------------


def test_published_metric_data(tmp_path: Path):
    baseline = baseline_report(tmp_path, {"daisy": 10, "rose": 10, "tulip": 10})
    live = [record([0.9, 0.05, 0.05], event=1), record([0.5, 0.3, 0.2], event=2), "oops"]
    client = FakeCloudWatch()
    report = monitor_report(
        tmp_path, {"c.jsonl": live}, "--baseline", str(baseline), "--publish", "--namespace", "plants/monitoring",
        client=client,
    )  # fmt: skip
    assert client.calls == [
        {
            "Namespace": "plants/monitoring",
            "MetricData": [
                {"MetricName": "Requests", "Dimensions": DIMENSIONS, "Value": 2.0, "Unit": "Count"},
                {"MetricName": "MeanConfidence", "Dimensions": DIMENSIONS, "Value": 0.7, "Unit": "None"},
                {"MetricName": "LowConfidenceShare", "Dimensions": DIMENSIONS, "Value": 0.5, "Unit": "None"},
                {
                    "MetricName": "ClassDriftPSI",
                    "Dimensions": DIMENSIONS,
                    "Value": report["drift"]["psi"],
                    "Unit": "None",
                },
                {"MetricName": "MalformedRecords", "Dimensions": DIMENSIONS, "Value": 1.0, "Unit": "Count"},
            ],
        }
    ]
    assert report["drift"]["psi"] == pytest.approx(psi_of([1 / 3] * 3, [1.0, 0.0, 0.0]))


def test_default_namespace(tmp_path: Path):
    client = FakeCloudWatch()
    monitor_report(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05])]}, "--publish", client=client)
    assert client.calls[0]["Namespace"] == "mlops-images/monitoring"


def test_nothing_is_sent_without_publish(tmp_path: Path):
    # never_called fails the test if a client is made.
    report = monitor_report(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05])]})
    assert report["requests"] == 1


def test_a_refused_publish_exits_1_after_writing_the_report(tmp_path: Path, capsys: pytest.CaptureFixture):
    from botocore.exceptions import ClientError

    refusal = ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutMetricData")
    client = FakeCloudWatch(refusal)
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05])]})
    arguments = arguments_for(tmp_path, capture, "--publish")
    assert monitor.main(arguments, client_factory=lambda: client) == 1
    assert json.loads((tmp_path / "out" / "monitoring.json").read_text())["requests"] == 1
    error = capsys.readouterr().err
    assert "error: publishing to CloudWatch namespace `mlops-images/monitoring` failed" in error
    assert "AccessDenied" in error


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
    ],
)
def test_region_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, environment: dict, expected: str):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert monitor.region() == expected
    assert monitor.cloudwatch_client().meta.region_name == expected


# --- S3: the capture, the model package and the report upload -----------------------------------

BUCKET = "artifacts"
CAPTURE_PREFIX = "data-capture/plants/plants-dev/"
CAPTURE_URI = f"s3://{BUCKET}/{CAPTURE_PREFIX}"
REPORT_URI = f"s3://{BUCKET}/monitoring/plants/"
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/plants-dev/3"
CLASSES_KEY = "plants-dev/pipelines-abc/datasets/index/classes.json"
EVALUATION_KEY = "plants-dev/pipelines-abc/evaluation/evaluation.json"


class FakeStore:
    """An in-memory object store with S3Store's methods; records what it was asked."""

    def __init__(self, objects: dict[str, bytes] | None = None, refused: tuple[str, ...] = ()) -> None:
        # "bucket/key" -> body
        self.objects = dict(objects or {})
        self.refused = refused
        self.listed: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.writes: list[tuple[str, bytes, str]] = []

    def _check(self, bucket: str, key: str) -> None:
        if f"{bucket}/{key}" in self.refused:
            raise monitor.StoreError("An error occurred (AccessDenied): Access Denied")

    def list(self, bucket: str, prefix: str) -> list[str]:
        self._check(bucket, prefix)
        self.listed.append((bucket, prefix))
        # Listed in reverse: the report must not depend on the order.
        return sorted(
            (path.split("/", 1)[1] for path in self.objects if path.startswith(f"{bucket}/{prefix}")), reverse=True
        )

    def read(self, bucket: str, key: str) -> bytes:
        self._check(bucket, key)
        self.reads.append(f"{bucket}/{key}")
        if f"{bucket}/{key}" not in self.objects:
            raise monitor.ObjectMissing("An error occurred (NoSuchKey): The specified key does not exist.")
        return self.objects[f"{bucket}/{key}"]

    def write(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._check(bucket, key)
        self.writes.append((f"{bucket}/{key}", body, content_type))
        self.objects[f"{bucket}/{key}"] = body

    def read_keys(self, prefix: str = CAPTURE_PREFIX) -> list[str]:
        """The keys read under `prefix`, relative to it."""
        start = f"{BUCKET}/{prefix}"
        return [path[len(start) :] for path in self.reads if path.startswith(start)]


class FakeSageMaker:
    def __init__(self, packages: dict[str, dict[str, Any]]) -> None:
        self.packages = packages
        self.calls: list[dict[str, Any]] = []

    def describe_model_package(self, **arguments: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls.append(arguments)
        if arguments["ModelPackageName"] not in self.packages:
            error = {"Error": {"Code": "ValidationException", "Message": "Model Package does not exist."}}
            raise ClientError(error, "DescribeModelPackage")
        return self.packages[arguments["ModelPackageName"]]


def no_store() -> Any:
    raise AssertionError("an object store was made with no S3 argument")


def no_sagemaker() -> Any:
    raise AssertionError("a SageMaker client was made without --package-arn")


def capture_objects(files: dict[str, list[Any]], prefix: str = CAPTURE_PREFIX) -> dict[str, bytes]:
    return {f"{BUCKET}/{prefix}{name}": file_bytes(lines) for name, lines in files.items()}


def package(classes: bool = True, statistics: bool = True) -> dict[str, Any]:
    """DescribeModelPackage's answer for a package Register made."""
    described: dict[str, Any] = {"ModelPackageArn": PACKAGE_ARN, "ModelApprovalStatus": "Approved"}
    if classes:
        described["CustomerMetadataProperties"] = {"classes": f"s3://{BUCKET}/{CLASSES_KEY}"}
    if statistics:
        described["ModelMetrics"] = {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{EVALUATION_KEY}"}
            }
        }
    return described


def package_objects(root: Path, predicted: dict[str, int], classes: Any = CLASSES) -> dict[str, bytes]:
    """The package's classes.json and evaluation report, as the store holds them."""
    return {
        f"{BUCKET}/{CLASSES_KEY}": json.dumps(classes).encode(),
        f"{BUCKET}/{EVALUATION_KEY}": baseline_report(root, predicted).read_bytes(),
    }


def s3_arguments(root: Path, *extra: str, capture: str = CAPTURE_URI, package_arn: str | None = None) -> list[str]:
    """Arguments reading the capture from S3, and the classes from --classes unless `package_arn`."""
    root.mkdir(parents=True, exist_ok=True)
    if package_arn is None:
        (root / "classes.json").write_text(json.dumps(CLASSES), encoding="utf-8")
        model = ["--classes", str(root / "classes.json")]
    else:
        model = ["--package-arn", package_arn]
    return [
        "--capture-uri", capture, *model,
        "--output", str(root / "out" / "monitoring.json"),
        "--model", "plants", "--environment", "dev",
        *extra,
    ]  # fmt: skip


def run_s3(
    root: Path,
    arguments: list[str],
    store: FakeStore,
    sagemaker: FakeSageMaker | None = None,
    client: FakeCloudWatch | None = None,
    expected: int = 0,
) -> dict[str, Any] | None:
    status = monitor.main(
        arguments,
        client_factory=(lambda: client) if client is not None else never_called,
        store_factory=lambda: store,
        sagemaker_factory=(lambda: sagemaker) if sagemaker is not None else no_sagemaker,
    )
    assert status == expected
    output = root / "out" / "monitoring.json"
    return json.loads(output.read_text(encoding="utf-8")) if output.exists() else None


def hour_key(hours_before: float, name: str) -> str:
    """The key, relative to the prefix, of a capture file in the hour folder of END - hours_before."""
    return (END - timedelta(hours=hours_before)).strftime(f"plants-dev/AllTraffic/%Y/%m/%d/%H/{name}")


def test_s3_capture_reads_only_the_window_hour_folders(tmp_path: Path):
    # The newest hour folder is 2026/11/30/10; a 24-hour window reads back to 2026/11/29/09.
    files = {
        hour_key(72, "old.jsonl"): [record([0.9, 0.05, 0.05], time=at(72), event=1)],
        hour_key(26, "before.jsonl"): [record([0.9, 0.05, 0.05], time=at(25.75), event=2)],
        # The extra hour: read, its record before the window.
        hour_key(25, "margin.jsonl"): [record([0.05, 0.9, 0.05], time=at(24.5), event=3)],
        hour_key(24, "start.jsonl"): [record([0.05, 0.9, 0.05], time=at(24), event=4), "oops"],
        hour_key(0, "newest.jsonl"): [
            record([0.05, 0.05, 0.9], event=5),
            record([0.9, 0.05, 0.05], time=at(0.5), event=6),
        ],
        hour_key(0, "notes.txt"): ["not a capture file"],
    }
    store = FakeStore(capture_objects(files))
    report = run_s3(tmp_path, s3_arguments(tmp_path), store)
    assert store.listed == [(BUCKET, CAPTURE_PREFIX)]
    assert store.read_keys() == sorted(
        [hour_key(25, "margin.jsonl"), hour_key(24, "start.jsonl"), hour_key(0, "newest.jsonl")]
    )
    assert report["window"] == {"start": "2026-11-29T10:15:00Z", "end": "2026-11-30T10:15:00Z"}
    assert report["requests"] == 3
    assert report["predicted_classes"] == {"daisy": 1, "rose": 1, "tulip": 1}
    assert report["malformed"]["examples"] == [
        {"file": hour_key(24, "start.jsonl"), "line": 2, "reason": "not JSON (Expecting value)"}
    ]
    # The same report as on the whole capture in a folder: the objects left unread hold no
    # record of the window.
    local = monitor_report(tmp_path / "local", files)
    assert report == local


def test_s3_capture_window_reaches_back_with_the_window(tmp_path: Path):
    files = {
        hour_key(hours, f"h{hours}.jsonl"): [record([0.9, 0.05, 0.05], time=at(hours))] for hours in (0, 5, 30, 50)
    }
    store = FakeStore(capture_objects(files))
    report = run_s3(tmp_path, s3_arguments(tmp_path, "--window-hours", "48"), store)
    assert store.read_keys() == sorted(hour_key(hours, f"h{hours}.jsonl") for hours in (0, 5, 30))
    assert report["requests"] == 3


def test_s3_capture_keys_without_an_hour_folder_are_read(tmp_path: Path):
    files = {
        hour_key(0, "newest.jsonl"): [record([0.9, 0.05, 0.05], event=1)],
        hour_key(100, "old.jsonl"): [record([0.9, 0.05, 0.05], time=at(100), event=2)],
        "manual.jsonl": ["not json", record([0.05, 0.9, 0.05], time=at(1), event=3)],
        "plants-dev/AllTraffic/2026/13/40/10/impossible-date.jsonl": [record([0.05, 0.05, 0.9], time=at(2))],
        "plants-dev/AllTraffic/2026/11/30/extra.jsonl": [record([0.05, 0.05, 0.9], time=at(200))],
    }
    store = FakeStore(capture_objects(files))
    report = run_s3(tmp_path, s3_arguments(tmp_path), store)
    assert store.read_keys() == sorted(
        [
            hour_key(0, "newest.jsonl"),
            "manual.jsonl",
            "plants-dev/AllTraffic/2026/13/40/10/impossible-date.jsonl",
            "plants-dev/AllTraffic/2026/11/30/extra.jsonl",
        ]
    )
    # extra.jsonl's record is read, then left out by the record window.
    assert report["requests"] == 3
    assert report["malformed"]["examples"] == [
        {"file": "manual.jsonl", "line": 1, "reason": "not JSON (Expecting value)"}
    ]

    # No key with an hour folder: every capture object is read.
    flat = {"a.jsonl": [record([0.9, 0.05, 0.05])], "b/c.jsonl": [record([0.9, 0.05, 0.05])]}
    store = FakeStore(capture_objects(flat))
    report = run_s3(tmp_path / "flat", s3_arguments(tmp_path / "flat"), store)
    assert store.read_keys() == ["a.jsonl", "b/c.jsonl"]
    assert report["requests"] == 2


def test_hour_folders():
    assert monitor.hour_folder("ep/AllTraffic/2026/11/30/09/x.jsonl") == datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
    assert monitor.hour_folder("2026/11/30/09/x.jsonl") == datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
    for name in ("ep/2026/11/30/x.jsonl", "ep/2026/11/30/24/x.jsonl", "ep/2026/02/30/01/x.jsonl",
                 "ep/2026/11/30/09/deeper/x.jsonl", "ep/a2026/11/30/09/x.jsonl", "x.jsonl"):  # fmt: skip
        assert monitor.hour_folder(name) is None, name


@pytest.mark.parametrize(
    "objects", [{}, {f"{BUCKET}/elsewhere/2026/11/30/10/a.jsonl": b"{}\n"}], ids=["none", "elsewhere"]
)
def test_s3_capture_with_no_object_is_an_empty_report(tmp_path: Path, objects: dict[str, bytes]):
    store = FakeStore(objects)
    client = FakeCloudWatch()
    report = run_s3(tmp_path, s3_arguments(tmp_path, "--publish"), store, client=client)
    assert store.reads == []
    (tmp_path / "empty").mkdir()
    local = monitor_report(tmp_path / "empty", {}, "--publish", client=FakeCloudWatch())
    assert report == local
    assert report["requests"] == 0 and report["window"] == {"start": None, "end": None}
    assert [datum["MetricName"] for datum in client.calls[0]["MetricData"]] == ["Requests", "MalformedRecords"]


def test_s3_capture_prefix_gets_its_slash(tmp_path: Path):
    files = {hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05])]}
    objects = capture_objects(files)
    objects.update(capture_objects(files, prefix=CAPTURE_PREFIX.rstrip("/") + "-old/"))
    store = FakeStore(objects)
    report = run_s3(tmp_path, s3_arguments(tmp_path, capture=CAPTURE_URI.rstrip("/")), store)
    assert store.listed == [(BUCKET, CAPTURE_PREFIX)]
    assert report["requests"] == 1


def test_s3_capture_that_cannot_be_listed_or_read_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    files = {hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05])]}
    store = FakeStore(capture_objects(files), refused=(f"{BUCKET}/{CAPTURE_PREFIX}",))
    assert run_s3(tmp_path, s3_arguments(tmp_path), store, expected=2) is None
    assert f"error: argument --capture-uri: `{CAPTURE_URI}`: cannot list (An error occurred (AccessDenied)" in (
        capsys.readouterr().err
    )
    store = FakeStore(capture_objects(files), refused=(f"{BUCKET}/{CAPTURE_PREFIX}{hour_key(0, 'a.jsonl')}",))
    assert run_s3(tmp_path, s3_arguments(tmp_path), store, expected=2) is None
    unreadable = f"{CAPTURE_URI}{hour_key(0, 'a.jsonl')}"
    assert f"error: argument --capture-uri: `{unreadable}`: cannot read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_package_mode_reads_classes_and_baseline(tmp_path: Path):
    files = {hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05], event=1), record([0.1, 0.8, 0.1], event=2)]}
    objects = capture_objects(files)
    objects.update(package_objects(tmp_path, {"daisy": 10, "rose": 10, "tulip": 10}))
    store = FakeStore(objects)
    sagemaker = FakeSageMaker({PACKAGE_ARN: package()})
    client = FakeCloudWatch()
    report = run_s3(tmp_path, s3_arguments(tmp_path, "--publish", package_arn=PACKAGE_ARN), store, sagemaker, client)
    assert sagemaker.calls == [{"ModelPackageName": PACKAGE_ARN}]
    assert f"{BUCKET}/{CLASSES_KEY}" in store.reads and f"{BUCKET}/{EVALUATION_KEY}" in store.reads
    assert report["package"] == PACKAGE_ARN
    assert report["predicted_classes"] == {"daisy": 1, "rose": 1, "tulip": 0}
    assert report["drift"]["baseline"] is True
    assert report["drift"]["psi"] == pytest.approx(psi_of([1 / 3] * 3, [0.5, 0.5, 0.0]))
    assert [datum["MetricName"] for datum in client.calls[0]["MetricData"]] == [
        "Requests", "MeanConfidence", "LowConfidenceShare", "ClassDriftPSI", "MalformedRecords",
    ]  # fmt: skip
    # The same report as from the same files given locally, but for the package.
    local = monitor_report(tmp_path / "local", files, "--baseline", str(tmp_path / "evaluation.json"))
    assert report == dict(local, package=PACKAGE_ARN)


def test_package_mode_with_a_local_capture(tmp_path: Path):
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05])]})
    store = FakeStore(package_objects(tmp_path, {"daisy": 1, "rose": 1, "tulip": 1}))
    arguments = [
        "--capture", str(capture), "--package-arn", PACKAGE_ARN, "--output", str(tmp_path / "out" / "monitoring.json"),
        "--model", "plants", "--environment", "dev",
    ]  # fmt: skip
    report = run_s3(tmp_path, arguments, store, FakeSageMaker({PACKAGE_ARN: package()}))
    assert report["package"] == PACKAGE_ARN and report["requests"] == 1 and report["drift"]["baseline"] is True


@pytest.mark.parametrize("case", ["no-model-metrics", "statistics-object-missing"])
def test_package_without_a_baseline(tmp_path: Path, case: str):
    objects = capture_objects({hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05])]})
    objects[f"{BUCKET}/{CLASSES_KEY}"] = json.dumps(CLASSES).encode()
    store = FakeStore(objects)
    sagemaker = FakeSageMaker({PACKAGE_ARN: package(statistics=case == "statistics-object-missing")})
    client = FakeCloudWatch()
    report = run_s3(tmp_path, s3_arguments(tmp_path, "--publish", package_arn=PACKAGE_ARN), store, sagemaker, client)
    assert report["package"] == PACKAGE_ARN
    assert report["drift"] == {
        "baseline": False, "psi": None, "status": "no_baseline", "threshold": 0.2, "top_shifts": []
    }  # fmt: skip
    assert "ClassDriftPSI" not in [datum["MetricName"] for datum in client.calls[0]["MetricData"]]


CLASSES_URI = f"s3://{BUCKET}/{CLASSES_KEY}"
EVALUATION_URI = f"s3://{BUCKET}/{EVALUATION_KEY}"
PACKAGE_WHERE = f"argument --package-arn: model package `{PACKAGE_ARN}`"


@pytest.mark.parametrize(
    ("described", "objects", "refused", "message"),
    [
        pytest.param(
            package(classes=False), {}, (),
            f"{PACKAGE_WHERE} has no customer metadata property `classes` (the s3:// URI of its classes.json)",
            id="no-classes-metadata",
        ),
        pytest.param(
            dict(package(), CustomerMetadataProperties={"classes": "/tmp/classes.json"}), {}, (),
            f"{PACKAGE_WHERE}: classes `/tmp/classes.json`: not an s3://bucket/key URI",
            id="classes-not-s3",
        ),
        pytest.param(
            package(), {}, (), f"{PACKAGE_WHERE}: classes `{CLASSES_URI}` does not exist", id="classes-missing"
        ),
        pytest.param(
            package(), {CLASSES_KEY: b"[]"}, (CLASSES_KEY,),
            f"{PACKAGE_WHERE}: classes `{CLASSES_URI}`: cannot read (An error occurred (AccessDenied)",
            id="classes-refused",
        ),
        pytest.param(
            package(), {CLASSES_KEY: b"{oops"}, (), f"{PACKAGE_WHERE}: classes `{CLASSES_URI}`: not valid JSON",
            id="classes-not-json",
        ),
        pytest.param(
            package(), {CLASSES_KEY: b"\xff[]"}, (), f"{PACKAGE_WHERE}: classes `{CLASSES_URI}`: not UTF-8 text",
            id="classes-not-utf8",
        ),
        pytest.param(
            package(), {CLASSES_KEY: b'["daisy", "daisy"]'}, (),
            f"{PACKAGE_WHERE}: classes `{CLASSES_URI}`: class `daisy` is listed twice",
            id="classes-repeated",
        ),
        pytest.param(
            package(), {CLASSES_KEY: json.dumps(CLASSES).encode(), EVALUATION_KEY: b"[]"}, (EVALUATION_KEY,),
            f"{PACKAGE_WHERE}: evaluation report `{EVALUATION_URI}`: cannot read (An error occurred (AccessDenied)",
            id="evaluation-refused",
        ),
        pytest.param(
            package(),
            {CLASSES_KEY: json.dumps(CLASSES).encode(), EVALUATION_KEY: baseline_with({"daisy": {"lily": 1}}).encode()},
            (),
            f"{PACKAGE_WHERE}: evaluation report `{EVALUATION_URI}`: class `lily` is not in its classes.json",
            id="evaluation-malformed",
        ),
    ],
)  # fmt: skip
def test_a_package_without_usable_classes_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, described: dict, objects: dict, refused: tuple, message: str
):
    store = FakeStore(
        dict(capture_objects({hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05])]}),
             **{f"{BUCKET}/{key}": body for key, body in objects.items()}),
        refused=tuple(f"{BUCKET}/{key}" for key in refused),
    )  # fmt: skip
    sagemaker = FakeSageMaker({PACKAGE_ARN: described})
    arguments = s3_arguments(tmp_path, "--publish", "--report-uri", REPORT_URI, package_arn=PACKAGE_ARN)
    assert run_s3(tmp_path, arguments, store, sagemaker, expected=2) is None
    error = capsys.readouterr().err
    assert f"error: {message}" in error, error
    assert "Traceback" not in error
    assert store.writes == [] and not (tmp_path / "out").exists()


def test_a_package_that_cannot_be_described_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    store = FakeStore()
    arguments = s3_arguments(tmp_path, package_arn=PACKAGE_ARN + "0")
    assert run_s3(tmp_path, arguments, store, FakeSageMaker({PACKAGE_ARN: package()}), expected=2) is None
    error = capsys.readouterr().err
    assert f"error: argument --package-arn: `{PACKAGE_ARN}0`: cannot describe the model package (" in error
    assert "ValidationException" in error
    assert store.listed == []


def test_an_empty_package_writes_a_report_and_publishes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture):
    store = FakeStore(capture_objects({hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05])]}))
    arguments = s3_arguments(tmp_path, "--publish", "--report-uri", REPORT_URI, package_arn="")
    # never_called and no_sagemaker fail the test if CloudWatch or SageMaker is called.
    report = run_s3(tmp_path, arguments, store)
    assert report["package"] is None
    assert report["requests"] == 0
    assert report["window"] == {"start": None, "end": None}
    assert report["predicted_classes"] == {}
    assert store.listed == [] and store.reads == []
    # The upload tells `mlops-infra monitor` that no package is served, instead of leaving an
    # older package's report as the latest.
    assert [path for path, _, _ in store.writes] == [f"{BUCKET}/monitoring/plants/latest.json"]
    assert store.writes[0][1] == (tmp_path / "out" / "monitoring.json").read_bytes()
    error = capsys.readouterr().err
    assert "--package-arn is empty: the endpoint serves no model package, nothing is read" in error
    assert "nothing published to CloudWatch: no model package is served" in error


def test_report_uri_gets_latest_and_the_dated_report(tmp_path: Path):
    files = {
        hour_key(0, "a.jsonl"): [
            record([0.9, 0.05, 0.05], time="2026-11-30T10:15:07.5Z"),
            record([0.1, 0.8, 0.1], time=at(3)),
        ]
    }
    store = FakeStore(capture_objects(files))
    report = run_s3(tmp_path, s3_arguments(tmp_path, "--report-uri", REPORT_URI), store)
    written = (tmp_path / "out" / "monitoring.json").read_bytes()
    assert report["window"]["end"] == "2026-11-30T10:15:07.5Z"
    assert store.writes == [
        (f"{BUCKET}/monitoring/plants/latest.json", written, "application/json"),
        (f"{BUCKET}/monitoring/plants/2026/11/30/101507.json", written, "application/json"),
    ]


def test_report_uri_without_a_window_gets_latest_only(tmp_path: Path):
    store = FakeStore()
    run_s3(tmp_path, s3_arguments(tmp_path, "--report-uri", f"s3://{BUCKET}/monitoring/plants"), store)
    assert [path for path, _, _ in store.writes] == [f"{BUCKET}/monitoring/plants/latest.json"]


def test_a_refused_upload_exits_1_after_writing_the_report(tmp_path: Path, capsys: pytest.CaptureFixture):
    files = {hour_key(0, "a.jsonl"): [record([0.9, 0.05, 0.05])]}
    store = FakeStore(capture_objects(files), refused=(f"{BUCKET}/monitoring/plants/latest.json",))
    client = FakeCloudWatch()
    arguments = s3_arguments(tmp_path, "--report-uri", REPORT_URI, "--publish")
    report = run_s3(tmp_path, arguments, store, client=client, expected=1)
    assert report["requests"] == 1
    error = capsys.readouterr().err
    assert f"error: uploading the report to `{REPORT_URI}latest.json` failed: An error occurred (AccessDenied)" in error
    # CloudWatch is still tried.
    assert len(client.calls) == 1


def test_local_mode_makes_no_aws_client(tmp_path: Path):
    capture = write_capture(tmp_path, {"c.jsonl": [record([0.9, 0.05, 0.05])]})
    arguments = arguments_for(tmp_path, capture)
    assert monitor.main(arguments, never_called, store_factory=no_store, sagemaker_factory=no_sagemaker) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--capture", "DIR"], "argument --capture: not allowed with argument --capture-uri"),
        (["--classes", "classes.json"], "argument --classes: not allowed with argument --package-arn"),
        (["--baseline", "evaluation.json"], "argument --baseline: not allowed with argument --package-arn"),
        (["--capture-uri", "/data/capture"], "argument --capture-uri: `/data/capture` is not an s3://bucket/prefix/"),
        (["--capture-uri", "s3:///capture/"], "argument --capture-uri: `s3:///capture/` is not an s3://bucket/prefix/"),
        (["--report-uri", "https://bucket/x"], "argument --report-uri: `https://bucket/x` is not an s3://bucket/prefix/"),
    ],
)
def test_s3_arguments_exclude_the_local_ones(
    tmp_path: Path, change: list[str], message: str, capsys: pytest.CaptureFixture
):
    (tmp_path / "DIR").mkdir()
    arguments = s3_arguments(tmp_path, package_arn=PACKAGE_ARN)
    if change[0] in arguments:
        arguments[arguments.index(change[0]) + 1] = change[1]
    else:
        arguments.extend(change)
    arguments = [str(tmp_path / "DIR") if item == "DIR" else item for item in arguments]
    assert monitor.main(arguments, never_called, store_factory=no_store, sagemaker_factory=no_sagemaker) == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_pipeline_s3_arguments_parse():
    # As the monitoring pipeline passes them, with the ModelPackageArn parameter's default.
    arguments = [
        "--capture-uri", "s3://plants-artifacts/data-capture/plants/plants-dev-endpoint/",
        "--package-arn", "",
        "--output", "/opt/ml/processing/output/report/report.json",
        "--report-uri", "s3://plants-artifacts/monitoring/plants/",
        "--model", "plants", "--environment", "dev", "--namespace", "mlops-images/dev/monitoring",
        "--low-confidence-threshold", "0.6", "--window-hours", "24", "--publish",
    ]  # fmt: skip
    parsed = monitor.parse_arguments(arguments)
    assert parsed.capture_uri == monitor.S3Location("plants-artifacts", "data-capture/plants/plants-dev-endpoint/")
    assert parsed.report_uri == monitor.S3Location("plants-artifacts", "monitoring/plants/")
    assert parsed.package_arn == "" and parsed.no_package and parsed.capture is None and parsed.classes is None


# --- the S3 store over boto3 --------------------------------------------------------------------


def stubbed_s3() -> tuple[Any, Any]:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_s3_store_lists_every_page_reads_and_writes():
    from botocore.response import StreamingBody

    client, stubber = stubbed_s3()
    stubber.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "p/a.jsonl"}, {"Key": "p/b.jsonl"}], "IsTruncated": True, "NextContinuationToken": "t"},
        {"Bucket": "b", "Prefix": "p/"},
    )
    stubber.add_response(
        "list_objects_v2", {"Contents": [{"Key": "p/c.jsonl"}], "IsTruncated": False},
        {"Bucket": "b", "Prefix": "p/", "ContinuationToken": "t"},
    )  # fmt: skip
    stubber.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 0}, {"Bucket": "b", "Prefix": "q/"})
    stubber.add_response(
        "get_object", {"Body": StreamingBody(io.BytesIO(b"line\n"), 5)}, {"Bucket": "b", "Key": "p/a.jsonl"}
    )
    stubber.add_response(
        "put_object", {}, {"Bucket": "b", "Key": "r/latest.json", "Body": b"{}\n", "ContentType": "application/json"}
    )
    with stubber:
        store = monitor.S3Store(client)
        assert store.list("b", "p/") == ["p/a.jsonl", "p/b.jsonl", "p/c.jsonl"]
        assert store.list("b", "q/") == []
        assert store.read("b", "p/a.jsonl") == b"line\n"
        store.write("b", "r/latest.json", b"{}\n", "application/json")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "error"), [("NoSuchKey", 404, "ObjectMissing"), ("AccessDenied", 403, "StoreError")]
)
def test_s3_store_errors(code: str, status: int, error: str):
    client, stubber = stubbed_s3()
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=status)
    with stubber, pytest.raises(monitor.StoreError) as raised:
        monitor.S3Store(client).read("b", "k")
    assert type(raised.value).__name__ == error
    assert code in str(raised.value)


def test_clients_take_region_and_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    for client in (monitor.sagemaker_client(), monitor.s3_store()._client, monitor.cloudwatch_client()):
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.endpoint_url == "http://127.0.0.1:4566"
