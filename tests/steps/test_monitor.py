"""Tests for steps/monitor.py, on data-capture files written in a tmp folder in SageMaker's format,
with real image bytes (the payloads' photos, PNGs and a GIF made with Pillow)."""

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


def write_capture(root: Path, files: dict[str, list[Any]]) -> Path:
    """Writes each file's lines (records, or raw str/bytes lines) under root/capture."""
    capture = root / "capture"
    capture.mkdir(parents=True)
    for name, lines in files.items():
        path = capture / name
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = [item if isinstance(item, bytes) else (item if isinstance(item, str) else line(item)).encode()
                   for item in lines]
        path.write_bytes(b"".join(item + b"\n" for item in encoded))
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
    assert "the following arguments are required: --classes, --model, --environment" in result.stderr


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
