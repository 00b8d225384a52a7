"""Model evaluation: the pipeline's `Evaluate` step (see src/pipeline/generate.rs).

Reads the model's predictions on the test split and writes, to `--output`, the evaluation
report that `CheckAccuracy` reads (property file `EvaluationReport`, JsonGet path
`pipeline.metric_path`, by default `multiclass_classification_metrics.accuracy.value`) and
that `Register` attaches to the model package as its model-quality statistics. Its shape is
SageMaker's model-quality one, keys sorted:

    {"multiclass_classification_metrics": {
        "accuracy":           {"standard_deviation": "NaN", "value": <top-1 accuracy>},
        "top_5_accuracy":     {"standard_deviation": "NaN", "value": <top-5 accuracy>},
        "weighted_f1":        {"standard_deviation": "NaN", "value": <support-weighted F1>},
        "precision_per_class": {<label>: <precision>},
        "recall_per_class":    {<label>: <recall>},
        "f1_per_class":        {<label>: <F1>},
        "support_per_class":   {<label>: <test images with that true label>},
        "confusion_matrix":    {<true label>: {<predicted label>: <count>}}}}

Input: `--predictions`, a JSON Lines file, one object per test image:

    {"uri": "s3://.../cat/0001.jpg", "label": "cat", "scores": {"cat": 0.9, "dog": 0.1}}

Producing it (a batch transform over the test split, or loading the model and scoring each
image) is NOT part of this script. `--model` and `--test`, which generate.rs passes, are
accepted so that invocation parses, but are not read.

Metrics:
- The classes are every label seen in any line's `scores` (a true label must be among its
  own line's scores). Per-class maps and the confusion matrix list every class, zeros included.
- Ranking: scores descending, ties broken by label name ascending, so the output never
  depends on dict order. Top-1 is the first; top-5 is the first min(5, number of classes).
- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R); each is 0 when its
  denominator is 0 (a class never predicted has precision 0, a class never true has recall 0).
- weighted F1 = sum(F1 * support) / number of images.

Output depends only on the predictions' content (not on line order beyond ties, not on the
clock or host): the same predictions give byte-identical reports.

Exit codes: 0 ok; 2 bad arguments or input, with a message naming the argument (and, for a
bad predictions line, its 1-based line number).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

REPORT_KEY = "multiclass_classification_metrics"
DEFAULT_METRIC_PATH = "multiclass_classification_metrics.accuracy.value"
TOP_K = 5

EXIT_OK = 0
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument, path or input; the message names it."""


@dataclass(frozen=True)
class Arguments:
    predictions: Path
    output: Path


@dataclass(frozen=True)
class Prediction:
    uri: str
    label: str
    scores: dict[str, float]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="evaluate.py",
        description="Compute classification metrics from test-split predictions and write evaluation.json.",
    )
    parser.add_argument(
        "--predictions",
        required=True,
        help="JSON Lines file, one {uri, label, scores} object per test image",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="the report file to write (the pipeline passes .../evaluation/evaluation.json); its folder is created",
    )
    parser.add_argument("--model", help="model artifacts folder; accepted for the pipeline's invocation, not read")
    parser.add_argument("--test", help="test split folder; accepted for the pipeline's invocation, not read")
    return parser


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path."""
    raw = _parser().parse_args(list(argv))
    predictions = Path(raw.predictions)
    if not predictions.exists():
        raise UsageError(f"argument --predictions: `{predictions}` does not exist")
    if not predictions.is_file():
        raise UsageError(f"argument --predictions: `{predictions}` is not a file")
    output = Path(raw.output)
    if output.is_dir():
        raise UsageError(f"argument --output: `{output}` is a folder; expected the report's file path")
    return Arguments(predictions=predictions, output=output)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_line(text: str, number: int) -> Prediction:
    """One predictions line; raises UsageError naming the line number."""
    where = f"argument --predictions: line {number}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise UsageError(f"{where}: expected a JSON object with uri, label and scores")
    for key in ("uri", "label", "scores"):
        if key not in record:
            raise UsageError(f"{where}: missing `{key}`")
    uri, label, scores = record["uri"], record["label"], record["scores"]
    if not isinstance(uri, str):
        raise UsageError(f"{where}: `uri` is not a string")
    if not isinstance(label, str) or not label:
        raise UsageError(f"{where}: `label` is not a non-empty string")
    if not isinstance(scores, dict) or not scores:
        raise UsageError(f"{where}: `scores` is not a non-empty map of label to number")
    for name, value in scores.items():
        if not _is_number(value):
            raise UsageError(f"{where}: score for `{name}` is not a finite number: {json.dumps(value)}")
    if label not in scores:
        raise UsageError(f"{where}: label `{label}` is absent from scores")
    return Prediction(uri=uri, label=label, scores={name: float(value) for name, value in scores.items()})


def read_predictions(path: Path) -> list[Prediction]:
    """Every non-blank line of `path`; raises UsageError if none or any is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"argument --predictions: `{path}`: cannot read ({error})") from None
    predictions = [
        parse_line(line, number) for number, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if not predictions:
        raise UsageError(f"argument --predictions: `{path}` has no predictions")
    return predictions


def ranking(scores: dict[str, float]) -> list[str]:
    """Labels by score descending, ties by label ascending."""
    return sorted(scores, key=lambda name: (-scores[name], name))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _metric(value: float) -> dict[str, Any]:
    return {"standard_deviation": "NaN", "value": value}


def evaluate(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """The report for `predictions` (non-empty, each label among its scores)."""
    classes = sorted({name for prediction in predictions for name in prediction.scores})
    matrix = {true: {predicted: 0 for predicted in classes} for true in classes}
    top1 = top5 = 0
    for prediction in predictions:
        ranked = ranking(prediction.scores)
        matrix[prediction.label][ranked[0]] += 1
        top1 += ranked[0] == prediction.label
        top5 += prediction.label in ranked[:TOP_K]
    total = len(predictions)

    precision, recall, f1, support = {}, {}, {}, {}
    for name in classes:
        true_positives = matrix[name][name]
        predicted = sum(matrix[true][name] for true in classes)
        actual = sum(matrix[name].values())
        precision[name] = _ratio(true_positives, predicted)
        recall[name] = _ratio(true_positives, actual)
        f1[name] = _ratio(2 * precision[name] * recall[name], precision[name] + recall[name])
        support[name] = actual
    weighted_f1 = _ratio(sum(f1[name] * support[name] for name in classes), total)

    return {
        REPORT_KEY: {
            "accuracy": _metric(top1 / total),
            "confusion_matrix": matrix,
            "f1_per_class": f1,
            "precision_per_class": precision,
            "recall_per_class": recall,
            "support_per_class": support,
            "top_5_accuracy": _metric(top5 / total),
            "weighted_f1": _metric(weighted_f1),
        }
    }


def render(report: dict[str, Any]) -> str:
    """The report's bytes: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def run(arguments: Arguments) -> int:
    report = evaluate(read_predictions(arguments.predictions))
    try:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(render(report), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"argument --output: `{arguments.output}`: {error.strerror}") from None
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_arguments(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
