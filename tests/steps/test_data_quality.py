"""Tests for steps/data_quality.py, on small images generated with Pillow in a tmp folder."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "steps" / "data_quality.py"
sys.path.insert(0, str(SCRIPT.parent))

import data_quality  # noqa: E402

INPUT_URI = "s3://data-bucket/raw/flowers"
MIN_SIZE = 32


def write_image(path: Path, *, size=(48, 40), colour=(200, 10, 10), image_format="JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    # A pixel that differs per colour keeps images with different colours byte-distinct.
    image.putpixel((0, 0), tuple(255 - channel for channel in colour))
    image.save(path, format=image_format)
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """One file per QA outcome, and a class with a single example."""
    root = tmp_path / "raw"
    write_image(root / "cat" / "a.jpg", colour=(10, 20, 30))
    write_image(root / "cat" / "b.png", colour=(40, 50, 60), image_format="PNG")
    # Same bytes as cat/a.jpg, later in sorted order: the duplicate.
    (root / "cat" / "c_copy.jpg").write_bytes((root / "cat" / "a.jpg").read_bytes())
    (root / "cat" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    write_image(root / "cat" / "tiny.png", size=(8, 8), colour=(70, 80, 90), image_format="PNG")
    write_image(root / "dog" / "gif.jpg", colour=(100, 110, 120), image_format="GIF")
    write_image(root / "dog" / "wide.jpg", size=(64, 16), colour=(1, 2, 3))
    write_image(root / "owl" / "only.jpeg", colour=(130, 140, 150))
    write_image(root / "stray.jpg", colour=(160, 170, 180))
    return root


def run_main(root: Path, output: Path, *extra: str) -> int:
    return data_quality.main(
        [
            "--input", str(root),
            "--input-uri", INPUT_URI,
            "--output", str(output),
            "--min-width", str(MIN_SIZE),
            "--min-height", str(MIN_SIZE),
            "--allowed-formats", "jpeg,png",
            *extra,
        ]
    )  # fmt: skip


def read_manifest(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]


def read_summary(output: Path) -> dict:
    return json.loads((output / "summary.json").read_text())


def dropped_reasons(output: Path) -> dict[str, str]:
    prefix = INPUT_URI + "/"
    return {file["uri"].removeprefix(prefix): file["reason"] for file in read_summary(output)["dropped"]}


def test_keeps_valid_jpeg_and_png_and_a_single_example_class(dataset: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert run_main(dataset, output) == 0

    manifest = read_manifest(output)
    assert [entry["uri"] for entry in manifest] == [
        f"{INPUT_URI}/cat/a.jpg",
        f"{INPUT_URI}/cat/b.png",
        f"{INPUT_URI}/owl/only.jpeg",
    ]
    first = manifest[0]
    assert first == {
        "path": "cat/a.jpg",
        "uri": f"{INPUT_URI}/cat/a.jpg",
        "label": "cat",
        "sha256": hashlib.sha256((dataset / "cat" / "a.jpg").read_bytes()).hexdigest(),
        "width": 48,
        "height": 40,
    }
    assert manifest[2]["label"] == "owl"
    summary = read_summary(output)
    assert summary["labels"]["owl"] == {"kept": 1, "dropped": 0}


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("cat/corrupt.jpg", "does not decode"),
        ("cat/tiny.png", "too small"),
        ("dog/wide.jpg", "too small"),
        ("dog/gif.jpg", "format not allowed"),
        ("stray.jpg", "unlabelled"),
        ("cat/c_copy.jpg", "duplicate"),
    ],
)
def test_drops_file_with_reason(dataset: Path, tmp_path: Path, key: str, reason: str) -> None:
    output = tmp_path / "out"
    run_main(dataset, output)
    assert dropped_reasons(output)[key] == reason
    assert f"{INPUT_URI}/{key}" not in {entry["uri"] for entry in read_manifest(output)}


def test_summary_counts_per_reason_and_label(dataset: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    run_main(dataset, output)
    summary = read_summary(output)
    assert summary["counts"] == {
        "files": 9,
        "kept": 3,
        "dropped": 6,
        "dropped_by_reason": {
            "hidden": 0,
            "name not UTF-8": 0,
            "unlabelled": 1,
            "unknown label": 0,
            "not a file": 0,
            "does not decode": 1,
            "format not allowed": 1,
            "too large": 0,
            "too small": 2,
            "duplicate": 1,
        },
        "listed_but_missing": 0,
    }
    assert summary["labelling"] == {"source": "folders"}
    assert summary["rules"]["classes"] is None
    assert summary["listed_but_missing"] == []
    assert summary["labels"] == {
        "cat": {"kept": 2, "dropped": 3},
        "dog": {"kept": 0, "dropped": 2},
        "owl": {"kept": 1, "dropped": 0},
    }
    duplicate = next(file for file in summary["dropped"] if file["reason"] == "duplicate")
    assert duplicate["detail"] == "same bytes as `cat/a.jpg`"
    assert str(dataset) not in (output / "summary.json").read_text()


def test_version_is_sha256_of_manifest(dataset: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    run_main(dataset, output)
    version = (output / "version.txt").read_text().strip()
    assert version == hashlib.sha256((output / "manifest.jsonl").read_bytes()).hexdigest()
    assert read_summary(output)["version"] == version


def test_same_inputs_give_byte_identical_outputs(dataset: Path, tmp_path: Path) -> None:
    # A copy in another folder, written in another order: neither may change the outputs.
    copy = tmp_path / "elsewhere" / "raw"
    for path in sorted(dataset.rglob("*"), reverse=True):
        if path.is_file():
            target = copy / path.relative_to(dataset)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    run_main(dataset, tmp_path / "first")
    run_main(copy, tmp_path / "second")
    for name in ("manifest.jsonl", "summary.json", "version.txt"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_version_changes_when_an_image_changes(dataset: Path, tmp_path: Path) -> None:
    run_main(dataset, tmp_path / "before")
    write_image(dataset / "cat" / "b.png", colour=(41, 50, 60), image_format="PNG")
    run_main(dataset, tmp_path / "after")
    before = (tmp_path / "before" / "version.txt").read_text()
    after = (tmp_path / "after" / "version.txt").read_text()
    assert before != after


def test_truncated_jpeg_does_not_decode(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    good = write_image(root / "cat" / "good.jpg", size=(64, 64))
    data = good.read_bytes()
    (root / "cat" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    run_main(root, tmp_path / "out")
    assert dropped_reasons(tmp_path / "out")["cat/truncated.jpg"] == "does not decode"


def test_no_image_kept_exits_1_but_writes_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "raw"
    write_image(root / "stray.jpg")
    assert run_main(root, tmp_path / "out") == 1
    assert "no image" in capsys.readouterr().err
    assert read_summary(tmp_path / "out")["counts"]["kept"] == 0
    assert (tmp_path / "out" / "manifest.jsonl").read_bytes() == b""


def test_cli_runs_end_to_end(dataset: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, str(SCRIPT),
            "--input", str(dataset),
            "--input-uri", INPUT_URI + "/",  # A trailing slash must not double up in URIs.
            "--output", str(output),
            "--min-width", "32",
            "--min-height", "32",
            "--allowed-formats", "jpeg,png",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "kept 3 of 9" in result.stderr
    assert [entry["uri"] for entry in read_manifest(output)][0] == f"{INPUT_URI}/cat/a.jpg"


def test_allowed_formats_restricts_to_png(dataset: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    data_quality.main(
        [
            "--input", str(dataset), "--input-uri", INPUT_URI, "--output", str(output),
            "--min-width", "32", "--min-height", "32", "--allowed-formats", "png",
        ]
    )  # fmt: skip
    assert [entry["label"] for entry in read_manifest(output)] == ["cat"]
    assert dropped_reasons(output)["cat/a.jpg"] == "format not allowed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--input": "missing"}, "argument --input: `{tmp}/missing` does not exist"),
        ({"--input": "a-file"}, "argument --input: `{tmp}/a-file` is not a folder"),
        ({"--output": "a-file"}, "argument --output: `{tmp}/a-file` exists and is not a folder"),
        ({"--input-uri": "/local/path"}, "argument --input-uri: `/local/path` is not an S3 URI"),
        ({"--input-uri": "s3:///prefix"}, "argument --input-uri: `s3:///prefix` is not an S3 URI"),
        ({"--min-width": "0"}, "argument --min-width: `0` must be at least 1"),
        ({"--min-height": "tall"}, "argument --min-height: `tall` is not a whole number"),
        ({"--allowed-formats": "jpeg,gif"}, "argument --allowed-formats: unsupported format `gif`"),
        ({"--allowed-formats": " , "}, "argument --allowed-formats: no format given"),
    ],
)
def test_bad_argument_exits_2_naming_it(tmp_path: Path, change: dict[str, str], message: str) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "a-file").write_text("")
    arguments = {
        "--input": str(tmp_path / "raw"),
        "--input-uri": INPUT_URI,
        "--output": str(tmp_path / "out"),
        "--min-width": "32",
        "--min-height": "32",
        "--allowed-formats": "jpeg,png",
    }
    for flag, value in change.items():
        arguments[flag] = str(tmp_path / value) if flag in ("--input", "--output") else value
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *[part for pair in arguments.items() for part in pair]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert message.format(tmp=tmp_path) in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_argument_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert data_quality.main(["--input", str(tmp_path)]) == 2
    assert "the following arguments are required: --input-uri" in capsys.readouterr().err


# --- labels file and class allow-list -------------------------------------------------------


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """Images with no label folders: their labels can only come from a labels file."""
    root = tmp_path / "flat"
    write_image(root / "img" / "1.jpg", colour=(10, 10, 10))
    write_image(root / "img" / "2.jpg", colour=(20, 20, 20))
    write_image(root / "img" / "3.png", colour=(30, 30, 30), image_format="PNG")
    write_image(root / "4.jpg", colour=(40, 40, 40))
    return root


def manifest_labels(output: Path) -> dict[str, str]:
    return {entry["path"]: entry["label"] for entry in read_manifest(output)}


def test_labels_csv_gives_labels_and_drops_unlisted(flat: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nimg/1.jpg,cat\n\n./img/3.png, dog \n4.jpg,cat\n", encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(flat, output, "--labels", str(labels)) == 0
    assert manifest_labels(output) == {"4.jpg": "cat", "img/1.jpg": "cat", "img/3.png": "dog"}
    assert dropped_reasons(output) == {"img/2.jpg": "unlabelled"}
    summary = read_summary(output)
    assert summary["labelling"] == {
        "source": "labels file",
        "file": "labels.csv",
        "sha256": hashlib.sha256(labels.read_bytes()).hexdigest(),
        "entries": 3,
    }
    assert summary["dropped"][0]["detail"] == "not listed in `labels.csv`"


def test_labels_json_gives_labels(flat: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.JSON"
    labels.write_text(json.dumps({"img/2.jpg": "owl", "img/1.jpg": "cat"}, indent=1), encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(flat, output, "--labels", str(labels)) == 0
    assert manifest_labels(output) == {"img/1.jpg": "cat", "img/2.jpg": "owl"}
    assert dropped_reasons(output) == {"4.jpg": "unlabelled", "img/3.png": "unlabelled"}


def test_labels_file_overrides_label_folders(dataset: Path, tmp_path: Path) -> None:
    # cat/a.jpg sits in the "cat" folder; with a labels file only the file's label counts.
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\ncat/a.jpg,tabby\nstray.jpg,cat\n", encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(dataset, output, "--labels", str(labels)) == 0
    assert manifest_labels(output) == {"cat/a.jpg": "tabby", "stray.jpg": "cat"}
    assert dropped_reasons(output)["owl/only.jpeg"] == "unlabelled"


def test_listed_but_missing_paths_are_reported_not_fatal(flat: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nimg/1.jpg,cat\ngone/9.jpg,dog\nimg,cat\n", encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(flat, output, "--labels", str(labels)) == 0
    summary = read_summary(output)
    assert summary["listed_but_missing"] == [
        {"uri": f"{INPUT_URI}/gone/9.jpg", "label": "dog", "reason": "listed but missing"},
        # A folder is not an image file.
        {"uri": f"{INPUT_URI}/img", "label": "cat", "reason": "listed but missing"},
    ]
    assert summary["counts"]["listed_but_missing"] == 2
    assert summary["counts"]["files"] == 4
    assert manifest_labels(output) == {"img/1.jpg": "cat"}


def test_labels_file_inside_input_is_not_an_image(flat: Path, tmp_path: Path) -> None:
    labels = flat / "labels.csv"
    labels.write_text("path,label\nimg/1.jpg,cat\n", encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(flat, output, "--labels", str(labels)) == 0
    assert "labels.csv" not in dropped_reasons(output)
    assert read_summary(output)["counts"]["files"] == 4


def test_version_changes_when_a_label_changes(flat: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nimg/1.jpg,cat\n", encoding="utf-8")
    run_main(flat, tmp_path / "before", "--labels", str(labels))
    labels.write_text("path,label\nimg/1.jpg,dog\n", encoding="utf-8")
    run_main(flat, tmp_path / "after", "--labels", str(labels))
    assert (tmp_path / "before" / "version.txt").read_text() != (tmp_path / "after" / "version.txt").read_text()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("labels.csv", "path,label\nimg/1.jpg,cat\nimg/2.jpg\n", "line 3: expected 2 fields (path,label), found 1"),
        ("labels.csv", "path,label\nimg/1.jpg,cat,extra\n", "line 2: expected 2 fields (path,label), found 3"),
        ("labels.csv", "path,label\nimg/1.jpg,cat\n\nimg/2.jpg,\n", "line 4: label is empty"),
        ("labels.csv", "path,label\nimg/1.jpg,cats/tabby\n", "line 2: label `cats/tabby` contains `/`"),
        ("labels.csv", "file,class\nimg/1.jpg,cat\n", "line 1: expected the header `path,label`"),
        ("labels.csv", "", "empty; expected the header `path,label`"),
        ("labels.csv", "path,label\n../outside.jpg,cat\n", "line 2: `../outside.jpg` is not a relative path"),
        ("labels.csv", "path,label\n/abs/1.jpg,cat\n", "line 2: `/abs/1.jpg` is not a relative path"),
        (
            "labels.csv",
            "path,label\nimg/1.jpg,cat\n./img/1.jpg,dog\n",
            "line 3: `img/1.jpg` is already listed on line 2",
        ),
        ("labels.csv", 'path,label\n"img/1.jpg,cat\n', "not valid CSV"),
        ("labels.json", '{\n  "img/1.jpg": "cat",\n  "img/2.jpg": ""\n}\n', "line 3: label is empty"),
        ("labels.json", '{\n  "img/1.jpg": "cat",\n\n  "img/2.jpg": "a/b"\n}\n', "line 4: label `a/b` contains `/`"),
        ("labels.json", '{"img/1.jpg": 3}', "line 1: the label of `img/1.jpg` is not a string"),
        ("labels.json", '{"a.jpg": "cat",\n "a.jpg": "dog"}', "line 2: `a.jpg` is already listed on line 1"),
        ("labels.json", '{\n"a.jpg": "cat",\n', "line 3: not valid JSON"),
        ("labels.json", '["a.jpg", "cat"]', "expected a JSON object"),
        ("labels.txt", "a.jpg cat\n", "unsupported labels file type `.txt`"),
        ("labels", "a.jpg cat\n", "unsupported labels file type `(none)`"),
    ],
)
def test_bad_labels_file_exits_2_naming_file_and_line(
    flat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    labels = tmp_path / name
    labels.write_text(content, encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(flat, output, "--labels", str(labels)) == 2
    error = capsys.readouterr().err
    assert f"argument --labels: `{labels}`" in error
    assert message in error
    assert not output.exists()


def test_missing_labels_file_exits_2(flat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(flat, tmp_path / "out", "--labels", str(tmp_path / "absent.csv")) == 2
    assert f"argument --labels: `{tmp_path / 'absent.csv'}` does not exist" in capsys.readouterr().err


def test_classes_drops_unknown_labels_in_folder_layout(dataset: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert run_main(dataset, output, "--classes", "owl, cat,owl,bee") == 0
    reasons = dropped_reasons(output)
    assert reasons["dog/wide.jpg"] == "unknown label"
    assert reasons["dog/gif.jpg"] == "unknown label"
    assert reasons["stray.jpg"] == "unlabelled"
    assert {entry["label"] for entry in read_manifest(output)} == {"cat", "owl"}
    summary = read_summary(output)
    assert summary["rules"]["classes"] == ["bee", "cat", "owl"]
    # An allowed class without any image is listed, so its absence shows.
    assert summary["labels"]["bee"] == {"kept": 0, "dropped": 0}
    assert summary["counts"]["dropped_by_reason"]["unknown label"] == 2


def test_classes_with_labels_file(flat: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nimg/1.jpg,cat\nimg/2.jpg,dog\n", encoding="utf-8")
    output = tmp_path / "out"
    assert run_main(flat, output, "--labels", str(labels), "--classes", "dog") == 0
    assert manifest_labels(output) == {"img/2.jpg": "dog"}
    assert dropped_reasons(output)["img/1.jpg"] == "unknown label"


@pytest.mark.parametrize(
    ("value", "message"),
    [(" , ", "argument --classes: no label given"), ("cat,a/b", "argument --classes: label `a/b` contains `/`")],
)
def test_bad_classes_exit_2(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    assert run_main(dataset, tmp_path / "out", "--classes", value) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
