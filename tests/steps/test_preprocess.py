"""Tests for steps/preprocess.py, on small images generated with Pillow in a tmp folder.

The RecordIO checks do not trust the script: expected records are packed here by hand with
`struct`, and `read_rec` below is an independent reader that walks a .rec through its .idx.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

STEPS = Path(__file__).resolve().parents[2] / "steps"
SCRIPT = STEPS / "preprocess.py"
sys.path.insert(0, str(STEPS))

import data_quality  # noqa: E402
import preprocess  # noqa: E402

MAGIC = 0xCED7230A
RECORD_OUTPUTS = ["full", "train", "validation", "test", "tuning-train", "tuning-validation"]
SIZE = (16, 12)


# --- helpers ---------------------------------------------------------------------------------


def write_image(path: Path, *, size=(40, 30), colour=(200, 10, 10), image_format="PNG", mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fill = colour if mode == "RGB" else (*colour, 255)
    image = Image.new(mode, size, fill)
    image.save(path, format=image_format)
    return path


def manifest_line(images: Path, key: str, label: str) -> str:
    data = (images / key).read_bytes()
    with Image.open(images / key) as image:
        width, height = image.size
    return json.dumps(
        {
            "path": key,
            "uri": f"s3://bucket/raw/{key}",
            "label": label,
            "sha256": hashlib.sha256(data).hexdigest(),
            "width": width,
            "height": height,
        },
        sort_keys=True,
    )


def write_manifest(folder: Path, images: Path, items: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [manifest_line(images, key, label) + "\n" for key, label in items]
    (folder / "manifest.jsonl").write_text("".join(lines), encoding="utf-8")
    return folder


def make_dataset(root: Path, per_class: dict[str, int]) -> list[tuple[str, str]]:
    """`per_class[label]` distinct PNGs per label; returns (relative path, label) pairs."""
    items = []
    for class_number, (label, count) in enumerate(sorted(per_class.items())):
        for number in range(count):
            key = f"{label}/{number:03d}.png"
            write_image(root / key, colour=(class_number * 60 % 256, number * 7 % 256, 90))
            items.append((key, label))
    return items


def arguments(manifest: Path, images: Path, output: Path, **changes: str) -> list[str]:
    values = {
        "--manifest": str(manifest),
        "--images": str(images),
        "--output": str(output),
        "--image-width": str(SIZE[0]),
        "--image-height": str(SIZE[1]),
        "--train-ratio": "0.7",
        "--validation-ratio": "0.15",
        "--test-ratio": "0.15",
        "--tuning-fraction": "0.2",
    }
    for flag, value in changes.items():
        values["--" + flag.replace("_", "-")] = value
    return [part for pair in values.items() for part in pair]


def run_main(manifest: Path, images: Path, output: Path, **changes: str) -> int:
    return preprocess.main(arguments(manifest, images, output, **changes))


def read_lst(output: Path, name: str) -> list[tuple[int, int, str]]:
    rows = []
    for line in (output / "index" / f"{name}.lst").read_text(encoding="utf-8").splitlines():
        index, label, file_name = line.split("\t")
        rows.append((int(index), int(label), file_name))
    return rows


def read_idx(output: Path, name: str) -> list[tuple[int, int]]:
    text = (output / "index" / f"{name}.idx").read_text(encoding="utf-8")
    return [(int(key), int(offset)) for key, offset in (line.split("\t") for line in text.splitlines())]


def read_part(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(cflag, part bytes, offset of the next part) of the part at `offset`."""
    magic, lrecord = struct.unpack_from("<II", data, offset)
    assert magic == MAGIC, f"no RecordIO magic at byte {offset}"
    cflag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
    start = offset + 8
    end = start + length
    padded = end + (-length % 4)
    assert data[end:padded] == b"\0" * (padded - end), "padding is not zero"
    return cflag, data[start:end], padded


def read_record(data: bytes, offset: int) -> tuple[bytes, int]:
    """The payload of the record starting at `offset`, joining split parts, and the next offset."""
    cflag, payload, offset = read_part(data, offset)
    if cflag == 0:
        return payload, offset
    assert cflag == 1, f"a record starts with cflag {cflag}"
    while True:
        cflag, part, offset = read_part(data, offset)
        assert cflag in (2, 3), f"a continued record has cflag {cflag}"
        payload += struct.pack("<I", MAGIC) + part
        if cflag == 3:
            return payload, offset


def read_rec(output: Path, name: str) -> list[tuple[int, float, int, bytes]]:
    """(key, label, id, image bytes) of every record of `<name>.rec`, found through the .idx."""
    data = (output / name / f"{name}.rec").read_bytes()
    records = []
    expected_offset = 0
    for key, offset in read_idx(output, name):
        # The .idx offsets are the records, back to back: nothing between, nothing skipped.
        assert offset == expected_offset
        payload, expected_offset = read_record(data, offset)
        flag, label, record_id, id2 = struct.unpack_from("<IfQQ", payload)
        assert (flag, id2) == (0, 0)
        records.append((key, label, record_id, payload[24:]))
    assert expected_offset == len(data), "bytes after the last indexed record"
    return records


def hand_packed(label: int, index: int, image: bytes) -> bytes:
    payload = struct.pack("<IfQQ", 0, float(label), index, 0) + image
    return struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * (-len(payload) % 4)


def all_files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def pixel(jpeg: bytes, position: tuple[int, int]) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.convert("RGB").getpixel(position)


def close(actual, expected, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected))


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path, list[tuple[str, str]]]:
    """(manifest folder, images folder, items): 3 classes of 20 images."""
    images = tmp_path / "raw"
    items = make_dataset(images, {"daisy": 20, "rose": 20, "tulip": 20})
    return write_manifest(tmp_path / "manifest", images, items), images, items


# --- RecordIO, byte for byte -----------------------------------------------------------------


def test_tiny_case_rec_idx_and_lst_are_byte_exact(tmp_path: Path) -> None:
    images = tmp_path / "raw"
    write_image(images / "b" / "one.png", colour=(0, 0, 250))
    write_image(images / "a" / "one.png", colour=(250, 0, 0), size=(30, 40))
    manifest = write_manifest(tmp_path / "manifest", images, [("a/one.png", "a"), ("b/one.png", "b")])
    output = tmp_path / "out"
    # Everything in test, so each record's image is also a file in test-images/.
    changes = {"train_ratio": "0", "validation_ratio": "0", "test_ratio": "1"}
    assert run_main(manifest, images, output, **changes) == 0

    # Record order: SHA-256 of "<seed>:<path>", seed 0 by default.
    order = sorted(["a/one.png", "b/one.png"], key=lambda key: hashlib.sha256(f"0:{key}".encode()).hexdigest())
    labels = {"a/one.png": 0, "b/one.png": 1}
    jpegs = [(output / "test-images" / f"{index:05d}.jpg").read_bytes() for index in range(2)]
    expected = b"".join(hand_packed(labels[key], index, jpegs[index]) for index, key in enumerate(order))
    assert (output / "test" / "test.rec").read_bytes() == expected
    first = len(hand_packed(labels[order[0]], 0, jpegs[0]))
    assert (output / "index" / "test.idx").read_text() == f"0\t0\n1\t{first}\n"
    assert (output / "index" / "test.lst").read_text() == (
        f"0\t{labels[order[0]]}\t00000.jpg\n1\t{labels[order[1]]}\t00001.jpg\n"
    )
    # The full output holds the same records in the same order.
    assert (output / "full" / "full.rec").read_bytes() == expected
    for name in ("train", "validation", "tuning-train", "tuning-validation"):
        assert (output / name / f"{name}.rec").read_bytes() == b""
        assert (output / "index" / f"{name}.idx").read_text() == ""
    assert json.loads((output / "index" / "classes.json").read_text()) == ["a", "b"]
    # The images really are the sources, resized: red "a", blue "b".
    colours = {"a/one.png": (250, 0, 0), "b/one.png": (0, 0, 250)}
    for index, key in enumerate(order):
        with Image.open(io.BytesIO(jpegs[index])) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", SIZE, "RGB")
        assert close(pixel(jpegs[index], (8, 6)), colours[key])


MAGIC_BYTES = struct.pack("<I", MAGIC)


def header(cflag: int, length: int) -> bytes:
    return struct.pack("<II", MAGIC, (cflag << 29) | length)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", header(0, 0)),
        (b"abcde", header(0, 5) + b"abcde\0\0\0"),
        # Unaligned magic: one whole record.
        (b"a" + MAGIC_BYTES + b"bc", header(0, 7) + b"a" + MAGIC_BYTES + b"bc\0"),
        # Aligned magic at 4: cut there, the magic dropped.
        (b"abcd" + MAGIC_BYTES + b"efghi", header(1, 4) + b"abcd" + header(3, 5) + b"efghi\0\0\0"),
        # At 0, and two in a row.
        (MAGIC_BYTES + b"ab", header(1, 0) + header(3, 2) + b"ab\0\0"),
        (
            b"abcd" + MAGIC_BYTES + MAGIC_BYTES + b"ef",
            header(1, 4) + b"abcd" + header(2, 0) + header(3, 2) + b"ef\0\0",
        ),
        # A trailing aligned magic leaves an empty last part.
        (b"abcd" + MAGIC_BYTES, header(1, 4) + b"abcd" + header(3, 0)),
    ],
)
def test_records_split_at_aligned_magic_like_mxnet(payload: bytes, expected: bytes) -> None:
    packed = preprocess.pack_record(payload)
    assert packed == expected
    assert read_record(packed, 0) == (payload, len(packed))


def test_reader_recovers_labels_and_images_of_every_output(dataset, tmp_path: Path) -> None:
    manifest, images, items = dataset
    output = tmp_path / "out"
    assert run_main(manifest, images, output) == 0
    classes = json.loads((output / "index" / "classes.json").read_text())
    assert classes == ["daisy", "rose", "tulip"]
    label_of = dict(items)
    records_file = [json.loads(line) for line in (output / "index" / "records.jsonl").read_text().splitlines()]
    for name in RECORD_OUTPUTS:
        records = read_rec(output, name)
        lst = read_lst(output, name)
        sources = [record for record in records_file if record["output"] == name]
        assert len(records) == len(lst) == len(sources)
        for (key, label, record_id, jpeg), (index, lst_label, file_name), source in zip(records, lst, sources):
            assert key == record_id == index == source["index"]
            assert label == float(lst_label) == float(source["class"])
            assert file_name == source["name"] == f"{index:05d}.jpg"
            assert classes[lst_label] == label_of[source["path"]] == source["label"]
            assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
            if name == "test":
                assert (output / "test-images" / file_name).read_bytes() == jpeg
    # Every image is in full exactly once and in exactly one of train/validation/test.
    full_paths = [record["path"] for record in records_file if record["output"] == "full"]
    assert sorted(full_paths) == sorted(key for key, _ in items)
    split_paths = [record["path"] for record in records_file if record["output"] in ("train", "validation", "test")]
    assert sorted(split_paths) == sorted(full_paths)


def test_record_channels_hold_only_their_rec_and_test_images_match_test_lst(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    output = tmp_path / "out"
    assert run_main(manifest, images, output) == 0
    assert sorted(path.name for path in output.iterdir()) == sorted(preprocess.OUTPUT_FOLDERS)
    for name in RECORD_OUTPUTS:
        assert [path.name for path in (output / name).iterdir()] == [f"{name}.rec"]
    names = [file_name for _, _, file_name in read_lst(output, "test")]
    assert sorted(path.name for path in (output / "test-images").iterdir()) == names
    index_files = {path.name for path in (output / "index").iterdir()}
    expected = {f"{name}.{suffix}" for name in RECORD_OUTPUTS for suffix in ("idx", "lst")}
    assert index_files == expected | {"classes.json", "split.json", "records.jsonl"}


# --- split rules -------------------------------------------------------------------------------


def split_json(output: Path) -> dict:
    return json.loads((output / "index" / "split.json").read_text())


def test_stratified_counts_per_class(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    output = tmp_path / "out"
    assert run_main(manifest, images, output, seed="7") == 0
    split = split_json(output)
    for label in ("daisy", "rose", "tulip"):
        assert split["counts"]["full"][label] == 20
        assert split["counts"]["train"][label] == 14
        assert split["counts"]["validation"][label] == 3
        assert split["counts"]["test"][label] == 3
        # 14 x 0.2 = 2.8 -> 3; 3 x 0.2 = 0.6 -> 1.
        assert split["counts"]["tuning-train"][label] == 3
        assert split["counts"]["tuning-validation"][label] == 1
    assert split["totals"] == {
        "full": 60, "train": 42, "validation": 9, "test": 9, "tuning-train": 9, "tuning-validation": 3,
    }  # fmt: skip
    assert split["seed"] == 7
    assert split["ratios"] == {"train": 0.7, "validation": 0.15, "test": 0.15}
    assert split["tuning_fraction"] == 0.2
    assert split["image"]["width"] == SIZE[0] and split["image"]["height"] == SIZE[1]
    assert split["dataset_version"] == hashlib.sha256((manifest / "manifest.jsonl").read_bytes()).hexdigest()
    # split.json's counts are what the .lst files hold.
    classes = split["classes"]
    for name in RECORD_OUTPUTS:
        per_class = Counter(classes[label] for _, label, _ in read_lst(output, name))
        assert {label: per_class[label] for label in classes} == split["counts"][name]


def test_tuning_subsets_are_inside_their_split(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    output = tmp_path / "out"
    assert run_main(manifest, images, output) == 0
    records = [json.loads(line) for line in (output / "index" / "records.jsonl").read_text().splitlines()]
    paths = {name: {r["path"] for r in records if r["output"] == name} for name in RECORD_OUTPUTS}
    assert paths["tuning-train"] < paths["train"]
    assert paths["tuning-validation"] < paths["validation"]


@pytest.mark.parametrize(
    ("count", "ratios", "expected"),
    [
        (1, ("0.7", "0.15", "0.15"), (1, 0, 0)),
        (2, ("0.7", "0.15", "0.15"), (2, 0, 0)),
        (3, ("0.7", "0.15", "0.15"), (2, 1, 0)),
        (5, ("0.7", "0.15", "0.15"), (3, 1, 1)),
        (10, ("0.7", "0.15", "0.15"), (7, 2, 1)),
        (20, ("0.8", "0.1", "0.1"), (16, 2, 2)),
        (3, ("0.8", "0.1", "0.1"), (3, 0, 0)),
        # Train's share is tiny: the largest remainder goes to test, then one moves to train.
        (1, ("0.1", "0.1", "0.8"), (1, 0, 0)),
        (2, ("0.1", "0.1", "0.8"), (1, 0, 1)),
        # A split with share 0 gets nothing, even when train does not get the only image.
        (1, ("0", "0.5", "0.5"), (0, 1, 0)),
        (7, ("0", "0", "1"), (0, 0, 7)),
        # Exact decimals: 0.1 x 30 is 3, not 3.0000000000000004 or 2.9999999999999996.
        (30, ("0.7", "0.2", "0.1"), (21, 6, 3)),
    ],
)
def test_split_counts(count: int, ratios: tuple[str, str, str], expected: tuple[int, int, int]) -> None:
    shares = dict(zip(("train", "validation", "test"), (preprocess.Fraction(value) for value in ratios)))
    counts = preprocess.split_counts(count, shares)
    assert (counts["train"], counts["validation"], counts["test"]) == expected


@pytest.mark.parametrize(("count", "expected"), [(0, 0), (1, 1), (2, 1), (4, 1), (12, 2), (13, 3), (14, 3)])
def test_tuning_count_rounds_half_up_with_at_least_one(count: int, expected: int) -> None:
    # fraction 0.2: 12 x 0.2 = 2.4 -> 2, 13 x 0.2 = 2.6 -> 3.
    assert preprocess.tuning_count(count, preprocess.Fraction("0.2")) == expected


def test_tuning_count_half_rounds_up() -> None:
    assert preprocess.tuning_count(5, preprocess.Fraction("0.5")) == 3
    assert preprocess.tuning_count(3, preprocess.Fraction("0.5")) == 2
    assert preprocess.tuning_count(4, preprocess.Fraction("1")) == 4


def test_class_with_one_example_goes_to_train_and_tuning_train(tmp_path: Path) -> None:
    images = tmp_path / "raw"
    items = make_dataset(images, {"common": 10, "rare": 1})
    manifest = write_manifest(tmp_path / "manifest", images, items)
    output = tmp_path / "out"
    assert run_main(manifest, images, output) == 0
    counts = split_json(output)["counts"]
    assert [counts[name]["rare"] for name in RECORD_OUTPUTS] == [1, 1, 0, 0, 1, 0]
    assert counts["tuning-validation"]["common"] == 1


def test_same_seed_gives_identical_bytes_other_seed_another_split(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    assert run_main(manifest, images, tmp_path / "first") == 0
    assert run_main(manifest, images, tmp_path / "second") == 0
    first, second = all_files(tmp_path / "first"), all_files(tmp_path / "second")
    assert len(first) == 6 + 12 + 3 + 9  # .rec files, .idx/.lst, index JSON files, test images
    assert first == second

    assert run_main(manifest, images, tmp_path / "third", seed="1") == 0
    third = all_files(tmp_path / "third")
    assert third["index/records.jsonl"] != first["index/records.jsonl"]
    # Another assignment, the same stratified counts.
    assert split_json(tmp_path / "third")["counts"] == split_json(tmp_path / "first")["counts"]


def test_manifest_line_order_does_not_matter(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    lines = (manifest / "manifest.jsonl").read_text().splitlines(keepends=True)
    random.Random(3).shuffle(lines)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "manifest.jsonl").write_text("".join(lines))
    assert run_main(manifest, images, tmp_path / "sorted") == 0
    assert run_main(shuffled, images, tmp_path / "shuffled-out") == 0
    first, second = all_files(tmp_path / "sorted"), all_files(tmp_path / "shuffled-out")
    # Only the dataset version, the manifest's own hash, differs.
    split_first, split_second = (json.loads(files.pop("index/split.json")) for files in (first, second))
    assert split_first.pop("dataset_version") != split_second.pop("dataset_version")
    assert split_first == split_second
    assert first == second


# --- images ------------------------------------------------------------------------------------


def single_test_image(tmp_path: Path, write) -> bytes:
    """Runs one image (written by `write(path)`) through the script; returns its JPEG."""
    images = tmp_path / "raw"
    write(images / "x" / "image.png")
    manifest = write_manifest(tmp_path / "manifest", images, [("x/image.png", "x")])
    output = tmp_path / "out"
    changes = {"train_ratio": "0", "validation_ratio": "0", "test_ratio": "1"}
    assert run_main(manifest, images, output, **changes) == 0
    return (output / "test-images" / "00000.jpg").read_bytes()


def test_resize_covers_then_crops_the_centre(tmp_path: Path) -> None:
    def three_bands(path: Path) -> None:
        # 60x20: red 0-10 | green 10-50 | blue 50-60. Covering 16x12 keeps the full height and
        # the centre 26.7 columns (16.7-43.3), all green; a plain resize would keep the red and
        # blue edges.
        image = Image.new("RGB", (60, 20), (255, 0, 0))
        image.paste((0, 255, 0), (10, 0, 50, 20))
        image.paste((0, 0, 255), (50, 0, 60, 20))
        path.parent.mkdir(parents=True)
        image.save(path)

    jpeg = single_test_image(tmp_path, three_bands)
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.size == SIZE
    for position in [(0, 0), (15, 11), (8, 6), (0, 11)]:
        assert close(pixel(jpeg, position), (0, 255, 0), tolerance=40), position


def test_tiny_image_is_scaled_up(tmp_path: Path) -> None:
    jpeg = single_test_image(tmp_path, lambda path: write_image(path, size=(1, 1), colour=(10, 200, 30)))
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.size == SIZE
    assert close(pixel(jpeg, (8, 6)), (10, 200, 30))


def test_transparent_pixels_become_white_and_grey_becomes_rgb(tmp_path: Path) -> None:
    def opaque(path: Path) -> None:
        write_image(path, mode="RGBA", colour=(0, 0, 0))

    assert close(pixel(single_test_image(tmp_path / "a", opaque), (8, 6)), (0, 0, 0))

    def clear(path: Path) -> None:
        path.parent.mkdir(parents=True)
        Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(path)

    assert close(pixel(single_test_image(tmp_path / "b", clear), (8, 6)), (255, 255, 255))

    def grey(path: Path) -> None:
        path.parent.mkdir(parents=True)
        Image.new("L", (20, 20), 100).save(path)

    jpeg = single_test_image(tmp_path / "c", grey)
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.mode == "RGB"
    assert close(pixel(jpeg, (8, 6)), (100, 100, 100))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    def source() -> Image.Image:
        image = Image.new("RGB", (40, 20), (255, 0, 0))
        image.paste((0, 0, 255), (0, 0, 10, 20))
        return image

    def rotated_by_exif(path: Path) -> None:
        path.parent.mkdir(parents=True)
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
        source().save(path, exif=exif)

    def rotated_by_hand(path: Path) -> None:
        path.parent.mkdir(parents=True)
        source().transpose(Image.Transpose.ROTATE_270).save(path)

    assert single_test_image(tmp_path / "a", rotated_by_exif) == single_test_image(tmp_path / "b", rotated_by_hand)


def test_runs_on_data_quality_output(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    # 5 and 4 images: enough for a test image at 0.7/0.15/0.15 (an empty test split is an error).
    make_dataset(raw, {"cat": 5, "dog": 4})
    (raw / "cat" / "broken.png").write_bytes(b"not an image")
    quality = tmp_path / "quality"
    assert data_quality.main(
        [
            "--input", str(raw), "--input-uri", "s3://bucket/raw/pets/", "--output", str(quality),
            "--min-width", "8", "--min-height", "8", "--allowed-formats", "png",
        ]
    ) == 0  # fmt: skip
    output = tmp_path / "out"
    assert run_main(quality, raw, output) == 0
    split = split_json(output)
    assert split["counts"]["full"] == {"cat": 5, "dog": 4}
    assert split["dataset_version"] == (quality / "version.txt").read_text().strip()


def test_cli_with_the_pipeline_flags(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    output = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments(manifest, images, output, image_width="224", image_height="224")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "preprocess: 3 classes; records: full 60, train 42" in result.stderr
    with Image.open(output / "test-images" / "00000.jpg") as image:
        assert image.size == (224, 224)


# --- bad input -----------------------------------------------------------------------------------


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train_ratio": "0.7", "validation_ratio": "0.2"}, "--test-ratio: 0.7 + 0.2 + 0.15 adds up to 1.05, not 1"),
        ({"train_ratio": "0.70001"}, "adds up to"),
        ({"test_ratio": "1.5"}, "argument --test-ratio: `1.5` must be between 0 and 1"),
        ({"test_ratio": "-0.1"}, "argument --test-ratio: `-0.1` must be between 0 and 1"),
        ({"train_ratio": "most"}, "argument --train-ratio: `most` is not a number"),
        ({"validation_ratio": "nan"}, "argument --validation-ratio: `nan` is not a number"),
        ({"tuning_fraction": "0"}, "argument --tuning-fraction: `0` must be above 0 and at most 1"),
        ({"tuning_fraction": "1.01"}, "argument --tuning-fraction: `1.01` must be above 0 and at most 1"),
        ({"image_width": "0"}, "argument --image-width: `0` must be at least 1"),
        ({"image_height": "tall"}, "argument --image-height: `tall` is not a whole number"),
        ({"seed": "x"}, "argument --seed: `x` is not a whole number"),
    ],
)
def test_bad_argument_exits_2_naming_it(dataset, tmp_path: Path, changes: dict[str, str], message: str) -> None:
    manifest, images, _ = dataset
    output = tmp_path / "out"
    result = run_cli(arguments(manifest, images, output, **changes))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_ratios_within_tolerance_are_accepted(dataset, tmp_path: Path) -> None:
    manifest, images, _ = dataset
    thirds = {"train_ratio": "0.3333333333", "validation_ratio": "0.3333333333", "test_ratio": "0.3333333334"}
    assert run_main(manifest, images, tmp_path / "out", **thirds) == 0
    near = {"train_ratio": "0.3333333333", "validation_ratio": "0.3333333333", "test_ratio": "0.3333333333"}
    assert run_main(manifest, images, tmp_path / "out2", **near) == 0  # off by 1e-10


def test_paths_exit_2_naming_them(dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, images, _ = dataset
    assert run_main(tmp_path / "absent", images, tmp_path / "o1") == 2
    assert f"argument --manifest: `{tmp_path / 'absent'}` does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_main(tmp_path / "empty", images, tmp_path / "o2") == 2
    assert f"argument --manifest: `{tmp_path / 'empty'}` has no manifest.jsonl" in capsys.readouterr().err
    assert run_main(manifest, tmp_path / "nowhere", tmp_path / "o3") == 2
    assert f"argument --images: `{tmp_path / 'nowhere'}` does not exist" in capsys.readouterr().err
    assert run_main(manifest, images, images / "out") == 2
    assert "is inside --images" in capsys.readouterr().err
    stale = tmp_path / "o4" / "train"
    stale.mkdir(parents=True)
    (stale / "old.rec").write_bytes(b"stale")
    assert run_main(manifest, images, tmp_path / "o4") == 2
    assert f"argument --output: `{stale}` exists and is not an empty folder" in capsys.readouterr().err
    # The manifest file itself works as --manifest too.
    assert run_main(manifest / "manifest.jsonl", images, tmp_path / "o5") == 0


def good_line(images: Path, key: str = "daisy/000.png", label: str = "daisy") -> str:
    return manifest_line(images, key, label)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1: not valid JSON"),
        (["GOOD", "", "[1]"], "line 3: expected a JSON object"),
        (['{"label": "a", "sha256": "' + "0" * 64 + '"}'], "line 1: missing `path`"),
        (['{"path": "a.png", "sha256": "' + "0" * 64 + '"}'], "line 1: missing `label`"),
        (['{"path": "a.png", "label": "a"}'], "line 1: missing `sha256`"),
        (['{"path": "../a.png", "label": "a", "sha256": "' + "0" * 64 + '"}'], "line 1: `path` is not"),
        (['{"path": "/a.png", "label": "a", "sha256": "' + "0" * 64 + '"}'], "line 1: `path` is not"),
        (['{"path": "a//b.png", "label": "a", "sha256": "' + "0" * 64 + '"}'], "line 1: `path` is not"),
        (['{"path": "a.png", "label": "", "sha256": "' + "0" * 64 + '"}'], "line 1: `label` is not"),
        (['{"path": "a.png", "label": "a", "sha256": "abc"}'], "line 1: `sha256` is not"),
        (["GOOD", "GOOD"], "line 2: `daisy/000.png` is already listed on line 1"),
        (["", "  "], "lists no image"),
    ],
)
def test_bad_manifest_exits_2_naming_file_and_line(dataset, tmp_path: Path, lines: list[str], message: str) -> None:
    _, images, _ = dataset
    folder = tmp_path / "bad"
    folder.mkdir()
    text = "".join((good_line(images) if line == "GOOD" else line) + "\n" for line in lines)
    (folder / "manifest.jsonl").write_text(text, encoding="utf-8")
    output = tmp_path / "out"
    result = run_cli(arguments(folder, images, output))
    assert result.returncode == 2
    assert f"argument --manifest: `{folder / 'manifest.jsonl'}`" in result.stderr
    assert message in result.stderr
    assert not output.exists()


def image_problem(tmp_path: Path, break_it) -> tuple[subprocess.CompletedProcess, Path]:
    images = tmp_path / "raw"
    items = make_dataset(images, {"a": 6, "b": 6})
    manifest = write_manifest(tmp_path / "manifest", images, items)
    # A corrupt file whose manifest hash matches, so it is decoding that fails.
    broken = break_it(images)
    if broken is not None:
        lines = (manifest / "manifest.jsonl").read_text().splitlines()
        lines.append(manifest_line_for_bytes(images, broken))
        (manifest / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    output = tmp_path / "out"
    return run_cli(arguments(manifest, images, output)), output


def manifest_line_for_bytes(images: Path, key: str) -> str:
    digest = hashlib.sha256((images / key).read_bytes()).hexdigest()
    return json.dumps({"path": key, "label": "a", "sha256": digest})


def test_listed_image_missing_exits_2_naming_it(tmp_path: Path) -> None:
    result, output = image_problem(tmp_path, lambda images: (images / "b" / "002.png").unlink())
    assert result.returncode == 2
    assert f"argument --images: `{tmp_path / 'raw' / 'b' / '002.png'}` (manifest line 9) does not exist" in (
        result.stderr
    )
    # Nothing half-written is left behind.
    assert not output.exists()


def test_undecodable_image_exits_2_naming_it(tmp_path: Path) -> None:
    def corrupt(images: Path) -> str | None:
        (images / "a" / "zz-corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
        return "a/zz-corrupt.png"

    result, output = image_problem(tmp_path, corrupt)
    assert result.returncode == 2
    assert f"`{tmp_path / 'raw' / 'a' / 'zz-corrupt.png'}` (manifest line 13) does not decode" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_image_changed_after_qa_exits_2_naming_it(tmp_path: Path) -> None:
    def change(images: Path) -> None:
        write_image(images / "a" / "001.png", colour=(1, 2, 3))

    result, _ = image_problem(tmp_path, change)
    assert result.returncode == 2
    assert f"`{tmp_path / 'raw' / 'a' / '001.png'}` (manifest line 2)" in result.stderr
    assert "no longer have the manifest's sha256" in result.stderr


def test_failed_run_keeps_existing_empty_output_folders(dataset, tmp_path: Path) -> None:
    manifest, images, items = dataset
    output = tmp_path / "out"
    (output / "train").mkdir(parents=True)
    (images / items[-1][0]).unlink()
    assert run_main(manifest, images, output) == 2
    assert [path.name for path in output.iterdir()] == ["train"]
    assert list((output / "train").iterdir()) == []


def test_a_class_count_other_than_the_training_jobs_expect_stops_before_writing(
    dataset, tmp_path: Path, capsys
) -> None:
    manifest, images, _ = dataset
    output = tmp_path / "out"
    assert run_main(manifest, images, output, num_classes="40") == 2
    message = capsys.readouterr().err
    assert "the training jobs expect 40 classes, but the manifest has 3 (daisy, rose, tulip)" in message
    assert "`num_classes`" in message
    assert not output.exists()
    assert run_main(manifest, images, output, num_classes="3") == 0
