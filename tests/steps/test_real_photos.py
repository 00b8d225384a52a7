"""The data steps on the files real datasets hold: camera JPEGs with MPF segments, EXIF
rotations, 16-bit and colour-keyed PNGs, truncated and corrupt JPEGs, hidden folders, odd
names and entries that are not files, oversized images; and the errors a person meets.

The images are real files from tests/steps/samples/ (see its README for where each came from);
the tests only cut, corrupt, copy or link them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

STEPS = Path(__file__).resolve().parents[2] / "steps"
SAMPLES = Path(__file__).resolve().parent / "samples"
sys.path.insert(0, str(STEPS))

import data_quality  # noqa: E402
import preprocess  # noqa: E402

INPUT_URI = "s3://data-bucket/raw/photos"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def quality(root: Path, output: Path, *extra: str, min_size: int = 1, formats: str = "jpeg,png") -> int:
    return data_quality.main(
        [
            "--input", str(root), "--input-uri", INPUT_URI, "--output", str(output),
            "--min-width", str(min_size), "--min-height", str(min_size), "--allowed-formats", formats,
            "--workers", "1", *extra,
        ]
    )  # fmt: skip


def manifest(output: Path) -> dict[str, dict]:
    lines = (output / "manifest.jsonl").read_bytes().decode("utf-8").split("\n")
    return {entry["path"]: entry for entry in (json.loads(line) for line in lines if line)}


def summary(output: Path) -> dict:
    return json.loads((output / "summary.json").read_bytes().decode("utf-8"))


def dropped(output: Path) -> dict[str, tuple[str, str]]:
    prefix = INPUT_URI + "/"
    return {file["uri"][len(prefix) :]: (file["reason"], file["detail"]) for file in summary(output)["dropped"]}


def preprocess_one(tmp_path: Path, name: str, data: bytes, size=(16, 12), *extra: str) -> tuple[int, Path]:
    """Runs one image through preprocess.py into the test split; (exit code, output folder)."""
    images = tmp_path / "raw"
    put(images / "x" / name, data)
    folder = tmp_path / "manifest"
    folder.mkdir()
    line = {"path": f"x/{name}", "label": "x", "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    output = tmp_path / "out"
    code = preprocess.main(
        [
            "--manifest", str(folder), "--images", str(images), "--output", str(output),
            "--image-width", str(size[0]), "--image-height", str(size[1]),
            "--train-ratio", "0", "--validation-ratio", "0", "--test-ratio", "1", "--tuning-fraction", "1",
            "--workers", "1", *extra,
        ]
    )  # fmt: skip
    return code, output


def output_image(output: Path) -> Image.Image:
    with Image.open(output / "test-images" / "00000.jpg") as image:
        return image.convert("RGB")


def close(actual, expected, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected))


# --- MPO: a JPEG with a multi-picture segment ---------------------------------------------------


def test_a_camera_jpeg_with_an_mpf_segment_is_a_jpeg(tmp_path: Path) -> None:
    data = sample("frame_size.mpo")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "MPO"  # What Pillow calls it: the reason it was dropped before.
    root = tmp_path / "raw"
    put(root / "camera" / "IMG_0001.JPG", data)
    output = tmp_path / "out"
    assert quality(root, output, formats="jpeg") == 0
    entry = manifest(output)["camera/IMG_0001.JPG"]
    assert (entry["width"], entry["height"]) == (56, 70)
    # A PNG-only rule still drops it, as a JPEG.
    assert quality(root, tmp_path / "png-only", formats="png") == 1
    assert dropped(tmp_path / "png-only")["camera/IMG_0001.JPG"] == (
        "format not allowed",
        "decoded as `jpeg`; allowed: png",
    )

    code, converted = preprocess_one(tmp_path / "pre", "IMG_0001.JPG", data)
    assert code == 0
    assert output_image(converted).size == (16, 12)


# --- EXIF orientation ------------------------------------------------------------------------------


def test_size_and_minimum_size_rule_use_the_displayed_orientation(tmp_path: Path) -> None:
    # Stored 2x1 with orientation 8 (rotate 90 degrees to display): displayed 1 wide, 2 high.
    data = sample("orientation_rectangle.jpg")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (2, 1) and image.getexif()[0x0112] == 8
    root = tmp_path / "raw"
    put(root / "phone" / "portrait.jpg", data)

    assert quality(root, tmp_path / "kept") == 0
    entry = manifest(tmp_path / "kept")["phone/portrait.jpg"]
    assert (entry["width"], entry["height"]) == (1, 2)

    # At least 2 wide: the stored width passes, the displayed one does not.
    code = data_quality.main(
        [
            "--input", str(root), "--input-uri", INPUT_URI, "--output", str(tmp_path / "wide"),
            "--min-width", "2", "--min-height", "1", "--allowed-formats", "jpeg", "--workers", "1",
        ]
    )  # fmt: skip
    assert code == 1
    assert dropped(tmp_path / "wide")["phone/portrait.jpg"] == ("too small", "1x2 is below the minimum 2x1")


# --- 16-bit and colour-keyed PNGs --------------------------------------------------------------------


def test_16_bit_grey_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path: Path) -> None:
    data = sample("gray16.png")
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "I;16"
        image.load()
        source = list(image.getdata())
        converted = preprocess.to_rgb(image)
    assert converted.mode == "RGB"
    assert list(converted.getdata()) == [(round(value / 257),) * 3 for value in source]

    # Through the script: white at the top, mid grey in the middle, black at the bottom.
    code, output = preprocess_one(tmp_path, "scan.png", data)
    assert code == 0
    image = output_image(output)
    assert close(image.getpixel((8, 0)), (255, 255, 255), tolerance=20)
    assert close(image.getpixel((8, 6)), (128, 128, 128), tolerance=20)
    assert close(image.getpixel((8, 11)), (0, 0, 0), tolerance=20)


def colour_key_cases(tmp_path: Path) -> list[tuple[str, bytes]]:
    # l_trns.png's key is 255, white already; the same image keyed on black (written by Pillow's
    # PNG encoder, a plain tRNS chunk) shows whether a grey key becomes white.
    with Image.open(SAMPLES / "l_trns.png") as image:
        black_key = io.BytesIO()
        image.save(black_key, format="PNG", transparency=0)
    return [
        ("rgb_trns.png", sample("rgb_trns.png")),
        ("l_trns.png", sample("l_trns.png")),
        ("l_trns_black_key.png", black_key.getvalue()),
        ("i_trns.png", sample("i_trns.png")),
    ]


@pytest.mark.parametrize("case", range(4))
def test_colour_key_pixels_become_white_and_others_keep_their_colour(tmp_path: Path, case: int) -> None:
    name, data = colour_key_cases(tmp_path)[case]
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        key = image.info["transparency"]
        source = list(image.getdata())
        mode = image.mode
        converted = list(preprocess.to_rgb(image).getdata())

    def opaque(value) -> tuple[int, int, int]:
        if mode == "RGB":
            return value
        if mode == "I;16":
            return (round(value / 257),) * 3
        return (value,) * 3

    keyed = [index for index, value in enumerate(source) if value == key]
    assert keyed and len(keyed) < len(source), "the sample should have keyed and unkeyed pixels"
    expected = [(255, 255, 255) if value == key else opaque(value) for value in source]
    assert converted == expected


def test_colour_key_becomes_white_through_the_script(tmp_path: Path) -> None:
    data = sample("rgb_trns.png")
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        key = image.info["transparency"]
        width, height = image.size
        pixels = image.load()
    # A pixel deep inside a keyed region, so resizing and JPEG cannot blur other colours into it.
    centre = next(
        (x, y)
        for y in range(3, height - 3)
        for x in range(3, width - 3)
        if all(pixels[x + dx, y + dy] == key for dx in range(-3, 4) for dy in range(-3, 4))
    )
    code, output = preprocess_one(tmp_path, "keyed.png", data, (width, height))
    assert code == 0
    assert close(output_image(output).getpixel(centre), (255, 255, 255))


# --- truncated and corrupt JPEGs, decoded at reduced scale --------------------------------------------


def full_scale_fails(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:
        return True
    return False


def fails(function, *arguments) -> bool:
    try:
        function(*arguments)
    except Exception:
        return True
    return False


def corruptions(data: bytes, seed: int, count: int) -> list[bytes]:
    """Truncations, noise in the entropy-coded data, an early end-of-image marker, header damage."""
    start_of_scan = data.find(b"\xff\xda")
    assert start_of_scan > 0
    generator = random.Random(seed)
    cases = []
    for number in range(count):
        damaged = bytearray(data)
        kind = number % 4
        if kind == 0:
            damaged = damaged[: generator.randrange(start_of_scan, len(data) - 2)]
        elif kind == 1:
            for _ in range(20):
                damaged[generator.randrange(start_of_scan + 20, len(damaged) - 2)] = generator.randrange(256)
        elif kind == 2:
            position = generator.randrange(start_of_scan + 20, len(damaged) - 2)
            damaged[position : position + 2] = b"\xff\xd9"
        else:
            damaged[generator.randrange(2, start_of_scan)] = generator.randrange(256)
        cases.append(bytes(damaged))
    return cases


@pytest.mark.parametrize("name", ["hopper.jpg", "hopper_progressive.jpg", "flower.jpg", "frame_size.mpo"])
def test_reduced_scale_decoding_fails_exactly_where_full_scale_decoding_fails(name: str) -> None:
    cases = corruptions(sample(name), seed=7, count=48)
    full = [full_scale_fails(data) for data in cases]
    # The test means something only if some damaged files decode and others do not.
    assert any(full) and not all(full), full
    assert [fails(data_quality.decode, data) for data in cases] == full
    assert [fails(preprocess.to_jpeg, data, 16, 12) for data in cases] == full


def test_data_quality_decodes_jpegs_at_reduced_scale_and_still_drops_truncated_and_corrupt_ones(
    tmp_path: Path,
) -> None:
    flower = sample("flower.jpg")
    start_of_scan = flower.find(b"\xff\xda")
    # A start-of-frame marker in the middle of the entropy-coded data: libjpeg stops with an error.
    middle = (start_of_scan + len(flower)) // 2
    corrupt = bytearray(flower)
    corrupt[middle : middle + 2] = b"\xff\xc0"
    root = tmp_path / "raw"
    put(root / "flowers" / "whole.jpg", flower)
    put(root / "flowers" / "cut-at-half.jpg", flower[: (start_of_scan + len(flower)) // 2])
    put(root / "flowers" / "cut-before-end.jpg", flower[:-300])
    put(root / "flowers" / "marker-in-scan.jpg", bytes(corrupt))
    put(root / "flowers" / "truncated-upload.jpg", sample("truncated_jpeg.jpg"))
    assert all(full_scale_fails((root / "flowers" / name).read_bytes()) for name in
               ("cut-at-half.jpg", "cut-before-end.jpg", "marker-in-scan.jpg", "truncated-upload.jpg"))  # fmt: skip

    output = tmp_path / "out"
    assert quality(root, output) == 0
    assert list(manifest(output)) == ["flowers/whole.jpg"]
    reasons = dropped(output)
    for name in ("cut-at-half.jpg", "cut-before-end.jpg", "marker-in-scan.jpg", "truncated-upload.jpg"):
        assert reasons[f"flowers/{name}"][0] == "does not decode", name
    assert "truncated" in reasons["flowers/truncated-upload.jpg"][1]


# --- what is under --input ----------------------------------------------------------------------------


def test_hidden_folders_and_files_are_dropped_and_never_win_the_duplicate_check(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    photo = sample("hopper.jpg")
    put(root / "cat" / "hopper.jpg", photo)
    # Jupyter's copy sorts before the real one: it used to become a class and keep the image.
    put(root / ".ipynb_checkpoints" / "hopper-checkpoint.jpg", photo)
    put(root / "cat" / ".ipynb_checkpoints" / "hopper-checkpoint.jpg", photo)
    put(root / "cat" / ".DS_Store", b"\0\0\0\1Bud1")
    output = tmp_path / "out"
    assert quality(root, output) == 0
    assert list(manifest(output)) == ["cat/hopper.jpg"]
    reasons = dropped(output)
    for key in (".ipynb_checkpoints/hopper-checkpoint.jpg", "cat/.ipynb_checkpoints/hopper-checkpoint.jpg", "cat/.DS_Store"):
        assert reasons[key] == ("hidden", "a folder or file whose name starts with `.`"), key
    result = summary(output)
    assert ".ipynb_checkpoints" not in result["labels"]
    assert result["labels"]["cat"] == {"kept": 1, "dropped": 0}
    assert result["counts"]["files"] == 4
    assert result["counts"]["dropped_by_reason"]["hidden"] == 3
    assert result["counts"]["dropped_by_reason"]["duplicate"] == 0


def test_links_that_lead_nowhere_and_pipes_are_counted_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    put(root / "cat" / "real.jpg", sample("hopper.jpg"))
    (root / "dog").mkdir()
    (root / "cat" / "loop.jpg").symlink_to("loop.jpg")
    (root / "cat" / "dangling.jpg").symlink_to("gone.jpg")
    (root / "cat" / "folder-link").symlink_to(root / "dog")
    (root / "cat" / "to-real.jpg").symlink_to("real.jpg")
    os.mkfifo(root / "cat" / "pipe.jpg")
    output = tmp_path / "out"
    # With a named pipe present, a reader that opened every file would block here forever.
    assert quality(root, output) == 0
    reasons = dropped(output)
    assert reasons["cat/loop.jpg"] == ("not a file", "symbolic link loop")
    assert reasons["cat/dangling.jpg"] == ("not a file", "symbolic link to a missing target")
    assert reasons["cat/folder-link"] == ("not a file", "symbolic link to a folder (links to folders are not followed)")
    assert reasons["cat/pipe.jpg"] == ("not a file", "named pipe (FIFO)")
    # A link to a file is read as the file: a duplicate of it here.
    assert reasons["cat/to-real.jpg"][0] == "duplicate"
    counts = summary(output)["counts"]
    assert counts["files"] == 6
    assert counts["dropped_by_reason"]["not a file"] == 4


def test_names_that_are_not_utf8_are_dropped_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    put(root / "cat" / "ok.jpg", sample("hopper.jpg"))
    raw_root = os.fsencode(root)
    os.makedirs(os.path.join(raw_root, b"cat"), exist_ok=True)
    with open(os.path.join(raw_root, b"cat", b"caf\xe9.jpg"), "wb") as stream:  # Latin-1 "café"
        stream.write(sample("flower.jpg"))
    os.makedirs(os.path.join(raw_root, b"\xff\xfe"))
    with open(os.path.join(raw_root, b"\xff\xfe", b"x.jpg"), "wb") as stream:
        stream.write(sample("truncated_jpeg.jpg"))
    output = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, str(STEPS / "data_quality.py"), "--input", str(root), "--input-uri", INPUT_URI,
            "--output", str(output), "--min-width", "1", "--min-height", "1", "--allowed-formats", "jpeg",
        ],
        capture_output=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    assert list(manifest(output)) == ["cat/ok.jpg"]
    reasons = dropped(output)  # summary.json is valid UTF-8 and names the files readably
    assert reasons["cat/caf\\xe9.jpg"] == ("name not UTF-8", "S3 keys are UTF-8; rename the file")
    assert reasons["\\xff\\xfe/x.jpg"][0] == "name not UTF-8"
    assert summary(output)["counts"]["files"] == 3


def test_names_with_unicode_line_separators_survive_from_data_quality_to_preprocess(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    names = ["cat/line\u2028separator.jpg", "cat/next\u0085line.jpg", "cat/para\u2029graph.jpg", "cat/form\x0cfeed.jpg"]
    photo = sample("flower.jpg")
    for number, name in enumerate(names):
        put(root / name, photo + bytes([number]))  # distinct bytes, same picture
    for number in range(6):
        put(root / "dog\u2028folder" / f"{number}.jpg", sample("hopper.jpg") + bytes([number]))
    quality_output = tmp_path / "quality"
    assert quality(root, quality_output) == 0
    assert set(manifest(quality_output)) == {*names, *(f"dog\u2028folder/{number}.jpg" for number in range(6))}

    output = tmp_path / "out"
    code = preprocess.main(
        [
            "--manifest", str(quality_output), "--images", str(root), "--output", str(output),
            "--image-width", "16", "--image-height", "12", "--train-ratio", "0.5", "--validation-ratio", "0.25",
            "--test-ratio", "0.25", "--tuning-fraction", "1", "--workers", "1",
        ]
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in (output / "index" / "records.jsonl").read_bytes().decode().split("\n") if line]
    assert {record["path"] for record in records if record["output"] == "full"} == set(manifest(quality_output))
    assert json.loads((output / "index" / "classes.json").read_bytes()) == ["cat", "dog\u2028folder"]


# --- outputs that cannot be written -----------------------------------------------------------------------


def run_script(script: str, arguments: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(STEPS / script), *arguments], capture_output=True, text=True, check=False
    )


def quality_arguments(root: Path, output: Path) -> list[str]:
    return [
        "--input", str(root), "--input-uri", INPUT_URI, "--output", str(output),
        "--min-width", "1", "--min-height", "1", "--allowed-formats", "jpeg",
    ]  # fmt: skip


def test_data_quality_output_below_a_file_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    put(root / "cat" / "a.jpg", sample("hopper.jpg"))
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    result = run_script("data_quality.py", quality_arguments(root, tmp_path / "notes.txt" / "manifest"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        f"error: argument --output: `{tmp_path / 'notes.txt' / 'manifest'}` is below "
        f"`{tmp_path / 'notes.txt'}`, which is not a folder"
    ) in result.stderr


def test_data_quality_output_holding_a_folder_named_like_an_output_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    put(root / "cat" / "a.jpg", sample("hopper.jpg"))
    output = tmp_path / "out"
    (output / "summary.json").mkdir(parents=True)
    result = run_script("data_quality.py", quality_arguments(root, output))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: argument --output: `{output / 'summary.json'}` exists and is not a file" in result.stderr
    # Nothing written: not even the manifest, which comes first.
    assert sorted(path.name for path in output.iterdir()) == ["summary.json"]


def test_preprocess_output_below_a_file_is_a_clear_error(tmp_path: Path) -> None:
    images = tmp_path / "raw"
    put(images / "x" / "a.jpg", sample("hopper.jpg"))
    folder = tmp_path / "manifest"
    folder.mkdir()
    line = {"path": "x/a.jpg", "label": "x", "sha256": hashlib.sha256(sample("hopper.jpg")).hexdigest()}
    (folder / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    (tmp_path / "notes.txt").write_text("")
    output = tmp_path / "notes.txt" / "datasets"
    result = run_script(
        "preprocess.py",
        [
            "--manifest", str(folder), "--images", str(images), "--output", str(output),
            "--image-width", "8", "--image-height", "8", "--train-ratio", "1", "--validation-ratio", "0",
            "--test-ratio", "0", "--tuning-fraction", "1",
        ],
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"is below `{tmp_path / 'notes.txt'}`, which is not a folder" in result.stderr


# --- splits too small to train on ------------------------------------------------------------------------


def small_classes(tmp_path: Path, per_class: dict[str, int]) -> tuple[Path, Path]:
    images = tmp_path / "raw"
    lines = []
    for label, count in per_class.items():
        for number in range(count):
            data = sample("hopper.jpg") + label.encode() + bytes([number])
            put(images / label / f"{number}.jpg", data)
            lines.append(json.dumps({"path": f"{label}/{number}.jpg", "label": label,
                                     "sha256": hashlib.sha256(data).hexdigest()}) + "\n")  # fmt: skip
    folder = tmp_path / "manifest"
    folder.mkdir()
    (folder / "manifest.jsonl").write_text("".join(lines))
    return folder, images


def split_arguments(folder: Path, images: Path, output: Path, shares: tuple[str, str, str]) -> list[str]:
    return [
        "--manifest", str(folder), "--images", str(images), "--output", str(output),
        "--image-width", "8", "--image-height", "8", "--train-ratio", shares[0],
        "--validation-ratio", shares[1], "--test-ratio", shares[2], "--tuning-fraction", "0.5",
    ]  # fmt: skip


def test_an_empty_test_split_fails_preprocess_naming_the_small_classes(tmp_path: Path) -> None:
    folder, images = small_classes(tmp_path, {"cat": 4, "dog": 3})
    output = tmp_path / "out"
    result = run_script("preprocess.py", split_arguments(folder, images, output, ("0.7", "0.15", "0.15")))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: argument --test-ratio: the test split would be empty: with shares 0.7/0.15/0.15 "
        "(train/validation/test) a class needs at least 5 images to put one in test, and every class has "
        "fewer: cat (4), dog (3); add images to these classes, or set --test-ratio to 0"
    )
    assert not output.exists()
    # One class big enough, and there is a test split.
    folder, images = small_classes(tmp_path / "bigger", {"cat": 5, "dog": 3})
    assert run_script("preprocess.py", split_arguments(folder, images, output, ("0.7", "0.15", "0.15"))).returncode == 0


def test_an_empty_validation_split_fails_preprocess(tmp_path: Path) -> None:
    folder, images = small_classes(tmp_path, {"cat": 3, "dog": 2, "owl": 1})
    output = tmp_path / "out"
    result = run_script("preprocess.py", split_arguments(folder, images, output, ("0.8", "0.1", "0.1")))
    assert result.returncode == 2
    assert "argument --validation-ratio: the validation split would be empty" in result.stderr
    assert "a class needs at least 4 images" in result.stderr
    assert "cat (3), dog (2), owl (1)" in result.stderr
    # A share of 0 asks for no split: that is not an error.
    assert run_script("preprocess.py", split_arguments(folder, images, output, ("1", "0", "0"))).returncode == 0


# --- decompression bombs ------------------------------------------------------------------------------------


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: a few KB that decode to width x height bytes."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte 0, then the packed pixels
    pixels = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def peak_rss_kib_of(arguments: list[str]) -> tuple[int, subprocess.CompletedProcess]:
    """Runs `arguments` in a fresh process tree; (peak resident memory of the run in KiB, result)."""
    measure = (
        "import json, resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, result.returncode, result.stderr]))\n"
    )
    result = subprocess.run([sys.executable, "-c", measure, *arguments], capture_output=True, text=True, check=True)
    peak, code, stderr = json.loads(result.stdout)
    return peak, subprocess.CompletedProcess(arguments, code, "", stderr)


def test_a_decompression_bomb_is_dropped_before_it_is_decoded(tmp_path: Path) -> None:
    bomb = png_bomb(10_000, 10_000)
    assert len(bomb) < 20_000  # 12 KB on disk, 100 megapixels
    root = tmp_path / "raw"
    put(root / "cat" / "bomb.png", bomb)
    put(root / "cat" / "photo.jpg", sample("hopper.jpg"))
    output = tmp_path / "out"
    command = [sys.executable, str(STEPS / "data_quality.py"), *quality_arguments(root, output)]
    command[command.index("jpeg")] = "jpeg,png"
    peak, result = peak_rss_kib_of([*command, "--workers", "1"])
    assert result.returncode == 0, result.stderr
    assert dropped(output)["cat/bomb.png"] == (
        "too large",
        f"10000x10000 is 100000000 pixels, above --max-pixels {data_quality.DEFAULT_MAX_PIXELS}",
    )
    assert summary(output)["rules"]["max_pixels"] == 80_000_000
    # Decoding it takes 100 MB at least (Pillow keeps a byte per 1-bit pixel); Python and Pillow
    # alone take about 25 MB.
    assert peak < 64 * 1024, f"peak RSS {peak} KiB: the image was decoded"


def test_max_pixels_is_an_inclusive_limit(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    put(root / "cat" / "photo.jpg", sample("hopper.jpg"))  # 128 x 128 = 16384 pixels
    assert quality(root, tmp_path / "at", "--max-pixels", "16384") == 0
    assert quality(root, tmp_path / "below", "--max-pixels", "16383") == 1
    assert dropped(tmp_path / "below")["cat/photo.jpg"] == (
        "too large",
        "128x128 is 16384 pixels, above --max-pixels 16383",
    )


def test_preprocess_refuses_an_image_above_max_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = preprocess_one(tmp_path, "photo.jpg", sample("hopper.jpg"), (8, 8), "--max-pixels", "16383")
    assert code == 2
    assert (
        f"error: argument --images: `{tmp_path / 'raw' / 'x' / 'photo.jpg'}` (manifest line 1): "
        "128x128 is 16384 pixels, above --max-pixels 16383; data_quality.py with the same --max-pixels drops such images"
    ) in capsys.readouterr().err
    assert not output.exists()
    code, _ = preprocess_one(tmp_path / "at", "photo.jpg", sample("hopper.jpg"), (8, 8), "--max-pixels", "16384")
    assert code == 0


def test_both_steps_default_to_the_same_pixel_limit() -> None:
    assert preprocess.DEFAULT_MAX_PIXELS == data_quality.DEFAULT_MAX_PIXELS
    assert data_quality.build_parser().parse_args(["--input", "i", "--input-uri", "s3://b", "--output", "o",
                                                   "--min-width", "1", "--min-height", "1",
                                                   "--allowed-formats", "jpeg"]).max_pixels == 80_000_000  # fmt: skip


def test_the_pixel_limit_of_one_image_does_not_leak_into_the_caller(tmp_path: Path) -> None:
    # With one worker, images are read in the calling process: Pillow's global limit must be
    # what it was before, not the last --max-pixels.
    before = Image.MAX_IMAGE_PIXELS
    root = tmp_path / "raw"
    put(root / "cat" / "photo.jpg", sample("hopper.jpg"))
    assert quality(root, tmp_path / "out", "--max-pixels", "5000") == 1
    assert Image.MAX_IMAGE_PIXELS == before
    code, _ = preprocess_one(tmp_path / "pre", "photo.jpg", sample("hopper.jpg"), (8, 8), "--max-pixels", "5000")
    assert code == 2
    assert Image.MAX_IMAGE_PIXELS == before
