"""Tests for steps/evaluate.py, on small hand-computed transform outputs in a tmp folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "steps" / "evaluate.py"
sys.path.insert(0, str(SCRIPT.parent))

import evaluate  # noqa: E402

CLASSES = ["a", "b", "c"]
# (true class, probabilities in class order). Three classes; "c" is never predicted.
# Predicted: a, b, b, a.
TINY = [
    ("a", [0.7, 0.2, 0.1]),
    ("a", [0.3, 0.6, 0.1]),
    ("b", [0.1, 0.8, 0.1]),
    ("c", [0.5, 0.4, 0.1]),
]


def write_case(
    root: Path,
    rows,
    classes=CLASSES,
    *,
    order: list[int] | None = None,
    bodies: dict[int, str] | None = None,
) -> tuple[Path, Path]:
    """Writes index/{classes.json,test.lst} and predictions/<name>.out; returns both folders.

    `order` lists rows in another test.lst order (names follow the row, as preprocess.py's
    record indices would); `bodies` replaces the .out body of some rows.
    """
    index, predictions = root / "index", root / "predictions"
    index.mkdir(parents=True)
    predictions.mkdir(parents=True)
    (index / "classes.json").write_text(json.dumps(classes), encoding="utf-8")
    lines = []
    for position, row in enumerate(order if order is not None else range(len(rows))):
        label, probabilities = rows[row]
        name = f"{row:05d}.jpg"
        lines.append(f"{position}\t{classes.index(label)}\t{name}\n")
        body = (bodies or {}).get(row, json.dumps(probabilities))
        (predictions / f"{name}.out").write_text(body, encoding="utf-8")
    (index / "test.lst").write_text("".join(lines), encoding="utf-8")
    return predictions, index


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, check=False
    )


def report_of(tmp_path: Path, rows, classes=CLASSES) -> dict:
    predictions, index = write_case(tmp_path / "case", rows, classes)
    output = tmp_path / "evaluation.json"
    assert evaluate.main(["--predictions", str(predictions), "--index", str(index), "--output", str(output)]) == 0
    return json.loads(output.read_text(encoding="utf-8"))


def metrics_of(tmp_path: Path, rows, classes=CLASSES) -> dict:
    return report_of(tmp_path, rows, classes)["multiclass_classification_metrics"]


def test_hand_computed_metrics(tmp_path: Path):
    metrics = metrics_of(tmp_path, TINY)
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


def test_labels_are_class_names_in_class_index_order(tmp_path: Path):
    # Class index 0 is "rose": the first probability is rose's, whatever the names' order.
    classes = ["rose", "daisy"]
    metrics = metrics_of(tmp_path, [("rose", [0.9, 0.1]), ("daisy", [0.8, 0.2])], classes)
    assert metrics["confusion_matrix"] == {"daisy": {"daisy": 0, "rose": 1}, "rose": {"daisy": 0, "rose": 1}}
    assert metrics["recall_per_class"] == {"daisy": 0.0, "rose": 1.0}


def test_class_without_test_images_is_listed_with_zeros(tmp_path: Path):
    metrics = metrics_of(tmp_path, [("a", [0.9, 0.05, 0.05])])
    assert metrics["support_per_class"] == {"a": 1, "b": 0, "c": 0}
    assert metrics["confusion_matrix"]["c"] == {"a": 0, "b": 0, "c": 0}


def test_top_5_with_more_than_5_classes(tmp_path: Path):
    classes = ["a", "b", "c", "d", "e", "f"]
    # True label ranked 5th, then 6th.
    fifth = [0.3, 0.25, 0.2, 0.15, 0.07, 0.03]
    metrics = metrics_of(tmp_path, [("e", fifth), ("f", fifth)], classes)
    assert metrics["accuracy"]["value"] == 0.0
    assert metrics["top_5_accuracy"]["value"] == 0.5


def test_ties_break_by_label_name(tmp_path: Path):
    assert evaluate.ranking({"b": 0.5, "a": 0.5, "c": 0.1}) == ["a", "b", "c"]
    # Class index 0 is "b"; a tie with "a" still predicts "a".
    metrics = metrics_of(tmp_path, [("a", [0.5, 0.5])], ["b", "a"])
    assert metrics["accuracy"]["value"] == 1.0


def test_metric_path_exists(tmp_path: Path):
    value = report_of(tmp_path, TINY)
    for key in evaluate.DEFAULT_METRIC_PATH.split("."):
        value = value[key]
    assert evaluate.DEFAULT_METRIC_PATH == "multiclass_classification_metrics.accuracy.value"
    assert value == 0.5


def test_prediction_object_and_im2rec_labels_are_read(tmp_path: Path):
    predictions, index = write_case(tmp_path, TINY, bodies={0: '{"prediction": [0.7, 0.2, 0.1]}'})
    lines = (index / "test.lst").read_text().splitlines()
    # im2rec writes labels as floats.
    lines[2] = lines[2].replace("\t1\t", "\t1.000000\t")
    (index / "test.lst").write_text("\n".join(lines) + "\n")
    (predictions / "notes.txt").write_text("not a prediction")  # ignored: not .out
    output = tmp_path / "e.json"
    assert run_cli("--predictions", str(predictions), "--index", str(index), "--output", str(output)).returncode == 0
    assert json.loads(output.read_text())["multiclass_classification_metrics"]["accuracy"]["value"] == 0.5


def test_cli_writes_report_deterministically(tmp_path: Path):
    predictions, index = write_case(tmp_path / "one", TINY)
    first = tmp_path / "out1" / "evaluation" / "evaluation.json"
    result = run_cli("--predictions", str(predictions), "--index", str(index), "--output", str(first))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "evaluate: 4 test images; accuracy 0.5000" in result.stderr
    # The same images listed in another order give the same bytes.
    predictions, index = write_case(tmp_path / "two", TINY, order=[3, 1, 0, 2])
    second = tmp_path / "out2" / "evaluation.json"
    assert run_cli("--predictions", str(predictions), "--index", str(index), "--output", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text(encoding="utf-8")
    report = json.loads(text)
    assert text == json.dumps(report, indent=2, sort_keys=True) + "\n"
    assert report["multiclass_classification_metrics"]["accuracy"]["value"] == 0.5


def case_error(tmp_path: Path, change) -> tuple[subprocess.CompletedProcess, Path, Path, Path]:
    predictions, index = write_case(tmp_path / "case", TINY)
    change(predictions, index)
    output = tmp_path / "evaluation.json"
    result = run_cli("--predictions", str(predictions), "--index", str(index), "--output", str(output))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert not output.exists()
    return result, predictions, index, output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ('{"scores": [0.1, 0.2, 0.7]}', "expected a JSON array of class probabilities"),
        ("[0.5, 0.5]", "2 probabilities, but classes.json has 3 classes"),
        ("[0.5, 0.3, 0.1, 0.1]", "4 probabilities, but classes.json has 3 classes"),
        ("[0.5, NaN, 0.1]", "probability 1 is not a finite number: NaN"),
        ("[0.5, 0.1, Infinity]", "probability 2 is not a finite number: Infinity"),
        ("[1e999, 0.1, 0.1]", "probability 0 is not a finite number"),
        ('[0.5, "0.3", 0.2]', 'probability 1 is not a finite number: "0.3"'),
        ("[true, 0.3, 0.2]", "probability 0 is not a finite number: true"),
    ],
)
def test_bad_prediction_file_exits_2_naming_it(tmp_path: Path, body: str, message: str):
    def change(predictions: Path, _: Path) -> None:
        (predictions / "00002.jpg.out").write_text(body, encoding="utf-8")

    result, predictions, _, _ = case_error(tmp_path, change)
    assert f"argument --predictions: `{predictions / '00002.jpg.out'}`: {message}" in result.stderr


def test_missing_prediction_exits_2_naming_it(tmp_path: Path):
    result, predictions, _, _ = case_error(tmp_path, lambda predictions, _: (predictions / "00001.jpg.out").unlink())
    assert f"`{predictions / '00001.jpg.out'}` does not exist; test.lst line 2 lists `00001.jpg`" in result.stderr


def test_prediction_for_an_unlisted_image_exits_2_naming_it(tmp_path: Path):
    def change(predictions: Path, _: Path) -> None:
        (predictions / "00009.jpg.out").write_text("[0.1, 0.2, 0.7]")
        (predictions / "sub").mkdir()
        (predictions / "sub" / "00000.jpg.out").write_text("[0.1, 0.2, 0.7]")

    result, predictions, _, _ = case_error(tmp_path, change)
    assert f"`{predictions / '00009.jpg.out'}` is not a prediction for an image in test.lst (2 such files)" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("lst", "message"),
    [
        ("0\t0\t00000.jpg\n1\t3\t00001.jpg\n", "line 2: class index 3 is out of range; classes.json has 3 classes"),
        ("0\t-1\t00000.jpg\n", "line 1: class index -1 is out of range"),
        ("0\t0.5\t00000.jpg\n", "line 1: class index `0.5` is not a whole number"),
        ("0\tnan\t00000.jpg\n", "line 1: class index `nan` is not a whole number"),
        ("0\tdaisy\t00000.jpg\n", "line 1: class index `daisy` is not a whole number"),
        ("0\t0\n", "line 1: expected 3 tab-separated fields (index, class index, name), found 2"),
        ("0 0 00000.jpg\n", "line 1: expected 3 tab-separated fields"),
        ("0\t0\tsub/00000.jpg\n", "line 1: `sub/00000.jpg` is not a file name"),
        ("0\t0\t00000.jpg\n\n1\t1\t00000.jpg\n", "line 3: `00000.jpg` is already listed on line 1"),
        ("\n", "lists no test image"),
    ],
)
def test_bad_test_list_exits_2_naming_line(tmp_path: Path, lst: str, message: str):
    def change(predictions: Path, index: Path) -> None:
        (index / "test.lst").write_text(lst, encoding="utf-8")
        for path in predictions.iterdir():
            path.unlink()
        (predictions / "00000.jpg.out").write_text("[0.1, 0.2, 0.7]")

    result, _, index, _ = case_error(tmp_path, change)
    assert f"argument --index: `{index / 'test.lst'}`" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (None, "classes.json` does not exist"),
        ("{not json", "classes.json`: not valid JSON"),
        ("[]", "expected a non-empty JSON array of class names"),
        ('{"a": 0}', "expected a non-empty JSON array of class names"),
        ('["a", "", "c"]', "entry 1 is not a non-empty string"),
        ('["a", "b", "a"]', "class `a` is listed twice"),
    ],
)
def test_bad_classes_exit_2_naming_file(tmp_path: Path, classes: str | None, message: str):
    def change(_: Path, index: Path) -> None:
        if classes is None:
            (index / "classes.json").unlink()
        else:
            (index / "classes.json").write_text(classes, encoding="utf-8")

    result, _, _, _ = case_error(tmp_path, change)
    assert "argument --index: " in result.stderr
    assert message in result.stderr


def test_missing_test_list_exits_2(tmp_path: Path):
    result, _, index, _ = case_error(tmp_path, lambda _, index: (index / "test.lst").unlink())
    assert f"argument --index: `{index / 'test.lst'}` does not exist" in result.stderr


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--predictions", "argument --predictions: `{path}` does not exist"), ("--index", "argument --index: `{path}`")],
)
def test_missing_folder_exit_2(tmp_path: Path, flag: str, message: str):
    predictions, index = write_case(tmp_path / "case", TINY)
    values = {"--predictions": str(predictions), "--index": str(index), "--output": str(tmp_path / "e.json")}
    values[flag] = str(tmp_path / "absent")
    result = run_cli(*[part for pair in values.items() for part in pair])
    assert result.returncode == 2
    assert message.format(path=tmp_path / "absent") in result.stderr


def test_predictions_must_be_a_folder(tmp_path: Path):
    _, index = write_case(tmp_path / "case", TINY)
    result = run_cli("--predictions", str(index / "test.lst"), "--index", str(index), "--output", str(tmp_path / "e"))
    assert result.returncode == 2
    assert "argument --predictions" in result.stderr and "is not a folder" in result.stderr


def test_old_arguments_are_rejected(tmp_path: Path):
    # The former invocation: model artifacts and the test split instead of transform output.
    result = run_cli("--model", "m", "--test", "t", "--output", str(tmp_path / "e.json"))
    assert result.returncode == 2
    assert "the following arguments are required: --predictions, --index" in result.stderr


def test_output_is_a_folder_exit_2(tmp_path: Path):
    predictions, index = write_case(tmp_path / "case", TINY)
    result = run_cli("--predictions", str(predictions), "--index", str(index), "--output", str(tmp_path))
    assert result.returncode == 2
    assert "argument --output" in result.stderr
