"""Model evaluation: the pipeline's `Evaluate` step (see src/pipeline/generate.rs).

Joins the batch transform's predictions on the test images with the test split's labels and
writes, to `--output`, the evaluation report that `CheckAccuracy` reads (property file
`EvaluationReport`, JsonGet path `pipeline.metric_path`, by default
`multiclass_classification_metrics.accuracy.value`) and that `Register` attaches to the model
package as its model-quality statistics. Its shape is SageMaker's model-quality one, keys
sorted, labels being the class names of classes.json:

    {"multiclass_classification_metrics": {
        "accuracy":           {"standard_deviation": "NaN", "value": <top-1 accuracy>},
        "top_5_accuracy":     {"standard_deviation": "NaN", "value": <top-5 accuracy>},
        "weighted_f1":        {"standard_deviation": "NaN", "value": <support-weighted F1>},
        "precision_per_class": {<label>: <precision>},
        "recall_per_class":    {<label>: <recall>},
        "f1_per_class":        {<label>: <F1>},
        "support_per_class":   {<label>: <test images with that true label>},
        "confusion_matrix":    {<true label>: {<predicted label>: <count>}}}}

CLI:

    evaluate.py --predictions DIR --index DIR --output FILE

Inputs:
- `--index`: preprocess.py's index folder. `classes.json` is a JSON array of the class names
  in class-index order; `test.lst` has one line per test image, `<record index>\\t<class
  index>\\t<name>` (the class index a whole number, written `2` or, as im2rec does, `2.000000`).
- `--predictions`: the batch transform's output over preprocess.py's `test-images/`: for each
  test.lst `<name>`, a file `<name>.out` whose body is the image-classification algorithm's
  answer for `Accept: application/json`, a JSON array of class probabilities in class-index
  order (an object `{"prediction": [...]}` is read the same way). Files whose names do not end
  in `.out` are ignored.

Each of these exits 2 naming the file: classes.json or test.lst missing or malformed (test.lst
with its 1-based line, including a class index out of range or a name listed twice), a listed
image without its `.out`, an `.out` that is not JSON or not an array of finite numbers as long
as classes.json, and an `.out` for an image test.lst does not list.

Metrics:
- The classes are classes.json's. Per-class maps and the confusion matrix list every class,
  zeros included.
- Ranking: probabilities descending, ties broken by class name ascending. Top-1 is the first;
  top-5 is the first min(5, number of classes).
- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R); each is 0 when its
  denominator is 0 (a class never predicted has precision 0, a class never true has recall 0).
- weighted F1 = sum(F1 * support) / number of images.

Output depends only on the inputs' content (not on the clock, the host or the order files
are listed in): the same inputs give byte-identical reports.

Exit codes: 0 ok; 2 bad arguments or input, with a message naming the argument and the file
(and, for test.lst, the line). Nothing is written when exiting 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_KEY = "multiclass_classification_metrics"
DEFAULT_METRIC_PATH = "multiclass_classification_metrics.accuracy.value"
TOP_K = 5

EXIT_OK = 0
EXIT_USAGE = 2


CLASSES_FILE = "classes.json"
TEST_LIST = "test.lst"
PREDICTION_SUFFIX = ".out"


class UsageError(Exception):
    """A bad argument, path or input; the message names it."""


@dataclass(frozen=True)
class Arguments:
    predictions: Path
    index: Path
    output: Path


@dataclass(frozen=True)
class Prediction:
    name: str
    label: str
    scores: dict[str, float]


@dataclass(frozen=True)
class TestImage:
    line: int
    name: str
    class_index: int


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line; parsing only, the checks on paths are parse_arguments'."""
    parser = _Parser(
        prog="evaluate.py",
        description="Compute classification metrics from the test images' predictions and write evaluation.json.",
    )
    parser.add_argument(
        "--predictions",
        required=True,
        help="batch transform output folder: <name>.out per test image, a JSON array of class probabilities",
    )
    parser.add_argument("--index", required=True, help="preprocess.py's index folder (test.lst, classes.json)")
    parser.add_argument(
        "--output",
        required=True,
        help="the report file to write (the pipeline passes .../evaluation/evaluation.json); its folder is created",
    )
    return parser


def _folder(flag: str, text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise UsageError(f"argument {flag}: `{path}` does not exist")
    if not path.is_dir():
        raise UsageError(f"argument {flag}: `{path}` is not a folder")
    return path


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path."""
    raw = build_parser().parse_args(list(argv))
    predictions = _folder("--predictions", raw.predictions)
    index = _folder("--index", raw.index)
    output = Path(raw.output)
    if output.is_dir():
        raise UsageError(f"argument --output: `{output}` is a folder; expected the report's file path")
    return Arguments(predictions=predictions, index=index, output=output)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_text(flag: str, path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"argument {flag}: `{path}` does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"argument {flag}: `{path}`: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"argument {flag}: `{path}`: not UTF-8 text") from None


def read_classes(index: Path) -> list[str]:
    """classes.json: a non-empty JSON array of distinct, non-empty class names."""
    path = index / CLASSES_FILE
    text = _read_text("--index", path)
    where = f"argument --index: `{path}`"
    try:
        classes = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(classes, list) or not classes:
        raise UsageError(f"{where}: expected a non-empty JSON array of class names")
    for position, name in enumerate(classes):
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where}: entry {position} is not a non-empty string")
    if len(set(classes)) != len(classes):
        repeated = next(name for name in classes if classes.count(name) > 1)
        raise UsageError(f"{where}: class `{repeated}` is listed twice")
    return classes


def _class_index(text: str) -> int | None:
    """A test.lst label as a whole number (`2` or `2.000000`), or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value != int(value):
        return None
    return int(value)


def read_test_list(index: Path, class_count: int) -> list[TestImage]:
    """test.lst's images; raises UsageError naming the line of a malformed one."""
    path = index / TEST_LIST
    text = _read_text("--index", path)
    images: list[TestImage] = []
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"argument --index: `{path}` line {number}"
        fields = line.split("\t")
        if len(fields) != 3:
            raise UsageError(
                f"{where}: expected 3 tab-separated fields (index, class index, name), found {len(fields)}"
            )
        _, label, name = fields
        class_index = _class_index(label)
        if class_index is None:
            raise UsageError(f"{where}: class index `{label}` is not a whole number")
        if not 0 <= class_index < class_count:
            raise UsageError(
                f"{where}: class index {class_index} is out of range; classes.json has {class_count} classes"
            )
        if not name or "/" in name or name in (".", ".."):
            raise UsageError(f"{where}: `{name}` is not a file name")
        if name in lines:
            raise UsageError(f"{where}: `{name}` is already listed on line {lines[name]}")
        lines[name] = number
        images.append(TestImage(line=number, name=name, class_index=class_index))
    if not images:
        raise UsageError(f"argument --index: `{path}` lists no test image")
    return images


def read_probabilities(path: Path, class_count: int) -> list[float]:
    """One `.out` file's class probabilities; raises UsageError naming the file."""
    where = f"argument --predictions: `{path}`"
    text = _read_text("--predictions", path)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{where}: not valid JSON ({error.msg})") from None
    if isinstance(body, dict) and "prediction" in body:
        body = body["prediction"]
    if not isinstance(body, list):
        raise UsageError(f"{where}: expected a JSON array of class probabilities")
    if len(body) != class_count:
        raise UsageError(f"{where}: {len(body)} probabilities, but classes.json has {class_count} classes")
    for position, value in enumerate(body):
        if not _is_number(value):
            raise UsageError(f"{where}: probability {position} is not a finite number: {json.dumps(value)}")
    return [float(value) for value in body]


def read_predictions(arguments: Arguments) -> list[Prediction]:
    """Every test image's prediction, joined to its true label."""
    classes = read_classes(arguments.index)
    images = read_test_list(arguments.index, len(classes))
    expected = {image.name + PREDICTION_SUFFIX for image in images}
    try:
        outputs = sorted(
            path.relative_to(arguments.predictions).as_posix()
            for path in arguments.predictions.rglob("*" + PREDICTION_SUFFIX)
            if path.is_file()
        )
    except OSError as error:
        raise UsageError(f"argument --predictions: `{arguments.predictions}`: {error.strerror}") from None
    extra = [name for name in outputs if name not in expected]
    if extra:
        raise UsageError(
            f"argument --predictions: `{arguments.predictions / extra[0]}` is not a prediction for an image "
            f"in {TEST_LIST}" + (f" ({len(extra)} such files)" if len(extra) > 1 else "")
        )
    predictions = []
    for image in images:
        path = arguments.predictions / (image.name + PREDICTION_SUFFIX)
        if not path.is_file():
            raise UsageError(
                f"argument --predictions: `{path}` does not exist; {TEST_LIST} line {image.line} lists `{image.name}`"
            )
        probabilities = read_probabilities(path, len(classes))
        predictions.append(
            Prediction(
                name=image.name,
                label=classes[image.class_index],
                scores=dict(zip(classes, probabilities)),
            )
        )
    return predictions


def ranking(scores: dict[str, float]) -> list[str]:
    """Labels by score descending, ties by label ascending."""
    return sorted(scores, key=lambda name: (-scores[name], name))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _metric(value: float) -> dict[str, Any]:
    return {"standard_deviation": "NaN", "value": value}


def evaluate(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """The report for `predictions` (non-empty; each scores every class, its label among them)."""
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
    predictions = read_predictions(arguments)
    report = evaluate(predictions)
    try:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(render(report), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"argument --output: `{arguments.output}`: {error.strerror}") from None
    accuracy = report[REPORT_KEY]["accuracy"]["value"]
    print(f"evaluate: {len(predictions)} test images; accuracy {accuracy:.4f}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_arguments(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
