"""Tests for steps/evaluate.py, on small hand-computed predictions files in a tmp folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "steps" / "evaluate.py"
sys.path.insert(0, str(SCRIPT.parent))

import evaluate  # noqa: E402

# Three classes; "c" is never predicted. Predicted: a, b, b, a.
TINY = [
    {"uri": "s3://b/test/a/1.jpg", "label": "a", "scores": {"a": 0.7, "b": 0.2, "c": 0.1}},
    {"uri": "s3://b/test/a/2.jpg", "label": "a", "scores": {"a": 0.3, "b": 0.6, "c": 0.1}},
    {"uri": "s3://b/test/b/1.jpg", "label": "b", "scores": {"a": 0.1, "b": 0.8, "c": 0.1}},
    {"uri": "s3://b/test/c/1.jpg", "label": "c", "scores": {"a": 0.5, "b": 0.4, "c": 0.1}},
]


def write_lines(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def metrics_of(records) -> dict:
    predictions = [evaluate.parse_line(json.dumps(record), number) for number, record in enumerate(records, 1)]
    return evaluate.evaluate(predictions)["multiclass_classification_metrics"]


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, check=False
    )


def test_hand_computed_metrics():
    metrics = metrics_of(TINY)
    assert metrics["accuracy"] == {"standard_deviation": "NaN", "value": 0.5}
    # Fewer than 5 classes: the true label is always within the top 5.
    assert metrics["top_5_accuracy"]["value"] == 1.0
    assert metrics["precision_per_class"] == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert metrics["recall_per_class"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert metrics["f1_per_class"] == pytest.approx({"a": 0.5, "b": 2 / 3, "c": 0.0})
    assert metrics["support_per_class"] == {"a": 2, "b": 1, "c": 1}
    assert metrics["weighted_f1"]["value"] == pytest.approx((0.5 * 2 + 2 / 3 * 1 + 0.0 * 1) / 4)
    assert metrics["confusion_matrix"] == {
        "a": {"a": 1, "b": 1, "c": 0},
        "b": {"a": 0, "b": 1, "c": 0},
        "c": {"a": 1, "b": 0, "c": 0},
    }


def test_top_5_with_more_than_5_classes():
    labels = ["a", "b", "c", "d", "e", "f"]
    # True label ranked 5th, then 6th.
    fifth = {name: score for name, score in zip(labels, [0.3, 0.25, 0.2, 0.15, 0.07, 0.03])}
    records = [
        {"uri": "u1", "label": "e", "scores": fifth},
        {"uri": "u2", "label": "f", "scores": fifth},
    ]
    metrics = metrics_of(records)
    assert metrics["accuracy"]["value"] == 0.0
    assert metrics["top_5_accuracy"]["value"] == 0.5


def test_ties_break_by_label_name():
    assert evaluate.ranking({"b": 0.5, "a": 0.5, "c": 0.1}) == ["a", "b", "c"]


def test_metric_path_exists():
    report = evaluate.evaluate(
        [evaluate.parse_line(json.dumps(record), number) for number, record in enumerate(TINY, 1)]
    )
    value = report
    for key in evaluate.DEFAULT_METRIC_PATH.split("."):
        value = value[key]
    assert evaluate.DEFAULT_METRIC_PATH == "multiclass_classification_metrics.accuracy.value"
    assert value == 0.5


def test_cli_writes_report_deterministically(tmp_path: Path):
    predictions = write_lines(tmp_path / "predictions.jsonl", TINY)
    first = tmp_path / "out1" / "evaluation" / "evaluation.json"
    second = tmp_path / "out2" / "evaluation.json"
    result = run_cli(
        "--model", "/opt/ml/processing/input/model",
        "--test", "/opt/ml/processing/input/test",
        "--predictions", str(predictions),
        "--output", str(first),
    )
    assert result.returncode == 0, result.stderr
    # Same predictions in another line order give the same bytes.
    shuffled = write_lines(tmp_path / "shuffled.jsonl", list(reversed(TINY)))
    assert run_cli("--predictions", str(shuffled), "--output", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text(encoding="utf-8")
    report = json.loads(text)
    assert text == json.dumps(report, indent=2, sort_keys=True) + "\n"
    assert report["multiclass_classification_metrics"]["accuracy"]["value"] == 0.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no predictions"),
        ("\n  \n", "has no predictions"),
        (json.dumps(TINY[0]) + "\n{not json\n", "line 2: not valid JSON"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        (json.dumps({"uri": "u", "label": "a"}) + "\n", "line 1: missing `scores`"),
        (json.dumps({"uri": "u", "label": "a", "scores": [0.5]}) + "\n", "line 1: `scores` is not"),
        (json.dumps({"uri": "u", "label": "a", "scores": {}}) + "\n", "line 1: `scores` is not"),
        (json.dumps({"uri": "u", "label": "a", "scores": {"a": "0.9"}}) + "\n", "line 1: score for `a`"),
        (json.dumps({"uri": "u", "label": "a", "scores": {"a": True}}) + "\n", "line 1: score for `a`"),
        ('{"uri": "u", "label": "a", "scores": {"a": NaN}}\n', "line 1: score for `a`"),
        (json.dumps(TINY[0]) + "\n" + json.dumps({"uri": "u", "label": "z", "scores": {"a": 1}}) + "\n",
         "line 2: label `z` is absent from scores"),
        (json.dumps({"uri": "u", "label": 3, "scores": {"a": 1}}) + "\n", "line 1: `label`"),
    ],
)
def test_bad_predictions_exit_2(tmp_path: Path, content: str, message: str):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(content, encoding="utf-8")
    output = tmp_path / "evaluation.json"
    result = run_cli("--predictions", str(predictions), "--output", str(output))
    assert result.returncode == 2
    assert "--predictions" in result.stderr
    assert message in result.stderr
    assert not output.exists()


def test_missing_predictions_file_exit_2(tmp_path: Path):
    result = run_cli("--predictions", str(tmp_path / "absent.jsonl"), "--output", str(tmp_path / "e.json"))
    assert result.returncode == 2
    assert "argument --predictions" in result.stderr and "does not exist" in result.stderr


def test_missing_predictions_argument_exit_2(tmp_path: Path):
    # What generate.rs passes today: no --predictions.
    result = run_cli("--model", "m", "--test", "t", "--output", str(tmp_path / "e.json"))
    assert result.returncode == 2
    assert "--predictions" in result.stderr


def test_output_is_a_folder_exit_2(tmp_path: Path):
    predictions = write_lines(tmp_path / "predictions.jsonl", TINY)
    result = run_cli("--predictions", str(predictions), "--output", str(tmp_path))
    assert result.returncode == 2
    assert "argument --output" in result.stderr
