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
            "unlabelled": 1,
            "does not decode": 1,
            "format not allowed": 1,
            "too small": 2,
            "duplicate": 1,
        },
    }
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
