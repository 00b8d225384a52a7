"""Preprocessing: the pipeline's `Preprocess` step (see src/pipeline/generate.rs).

Reads the images `data_quality.py` kept, resizes them, splits them into train, validation and
test plus the tuning subsets, and packs each split as MXNet RecordIO for SageMaker's built-in
image-classification algorithm (channels of content type `application/x-recordio`).

CLI:

    preprocess.py --manifest DIR --images DIR --output DIR
                  --image-width PX --image-height PX
                  --train-ratio R --validation-ratio R --test-ratio R
                  --tuning-fraction F [--seed INT] [--num-classes N]
                  [--max-pixels N] [--workers N] [--shard-index I --shard-count N]
                  [--input-distribution replicated|sharded]

- `--manifest`: the folder data_quality.py wrote (or its `manifest.jsonl` itself). Each line
  is a JSON object; this script reads `path` (relative to `--images`), `label` and `sha256`
  and ignores other keys. An image's bytes must still have the manifest's SHA-256, so the
  images split are exactly the ones QA checked (the manifest's version).
- `--images`: the raw images folder (the same S3 prefix data_quality.py read).
- `--image-width`, `--image-height`: the size of every output image, in pixels (at least 1).
- `--train-ratio`, `--validation-ratio`, `--test-ratio`: shares of each class, each in [0, 1],
  adding up to 1 (within 1e-6, as the environment file is checked; they are read as exact decimals).
- `--tuning-fraction`: in (0, 1], the share of train and of validation the tuning jobs see.
- `--seed`: any integer, default 0; the same seed gives the same split.
- `--max-pixels`: the largest image accepted (width x height), default 80000000 as data QA's.
- `--workers`: processes converting images, default the CPUs available; records are written in
  record order, so the outputs do not depend on it.
- `--shard-index`/`--shard-count` (or SageMaker's resourceconfig.json listing several hosts):
  plan the whole split, convert only shard I's images and write
  `<output>/shards/shard-IIIII-of-NNNNN/` for merge_records.py (see docs/steps.md).
- `--input-distribution` (only when sharding): `replicated` (S3 FullyReplicated, the default):
  every instance has every image and converts shard I's contiguous run of the record order;
  `sharded` (S3 ShardedByS3Key): each instance has its own images and converts exactly the
  manifest entries whose file is under `--images`, numbering each record with its index in the
  whole output; the merge checks every entry was converted by exactly one instance.

Images: each is decoded with Pillow (a JPEG at the smallest 1/1, 1/2, 1/4 or 1/8 scale that
still covers the output), turned upright by its EXIF orientation, converted to 8-bit RGB
(16-bit grey scaled, not clipped; transparent pixels, colour-keyed ones included, white), scaled
with bicubic resampling so that it covers width x height while keeping its aspect ratio,
centre-cropped to exactly width x height, and encoded as baseline JPEG, quality 90, 4:2:0
chroma subsampling, without metadata.

Classes: the manifest's distinct labels sorted by Unicode code point; a class's index is its
position in that list (the float32 label of its records).

Split, per class, independently of the manifest's line order:
1. The class's images are ranked by SHA-256 of `<seed>:<path>` (hex, ascending; ties, which
   need a hash collision, by path).
2. Counts: each split's exact quota is n x share; every split gets the whole part of its
   quota, and the images left over (at most 2) go one each to the splits with the largest
   remaining fraction, ties in the order train, validation, test. A split with share 0 gets
   nothing. If that leaves train without an image of a class that has one and train's share is
   above 0, one moves to train from test, else from validation. So a class with one image goes
   to train, and with shares 0.7/0.15/0.15 a class of 2 images has both in train, of 3 has 2
   in train and 1 in validation, of 5 has 3/1/1.
3. The first `train` images of the ranking go to train, the next `validation` to validation,
   the rest to test.
4. Tuning subsets: of a class's m images in train (validation), the first
   max(1, round-half-up(m x fraction)) in the ranking, so every class present in a split is
   in its tuning subset. A split with no image of a class contributes none.
Within every output, records are ordered by the same hash across classes (classes are
interleaved); the record index is the position in that order, from 0.

Outputs, one folder per ProcessingOutput under `--output` (each must be absent or empty):

    full/full.rec                         every image
    train/train.rec, validation/validation.rec, test/test.rec
    tuning-train/tuning-train.rec, tuning-validation/tuning-validation.rec
    index/<output>.idx                    per .rec above: `<record index>\\t<byte offset>\\n`
    index/<output>.lst                    per .rec above: `<record index>\\t<class index>\\t<name>\\n`
    index/classes.json                    JSON array of the labels, in class-index order
    index/split.json                      seed, shares, image settings, per-output per-class counts,
                                          num_training_samples {train, tuning_train}
    index/records.jsonl                   per output and record: the source path and label
    test-images/<name>                    the test split's JPEGs, one file per record

A record's `<name>` is its index zero-padded to 5 digits (more if the output has more than
100000 records) plus `.jpg`, e.g. `00000.jpg`; in test.lst it names the file in test-images/,
which a batch transform reads (`application/x-image`), writing `<name>.out` per file. The .rec
folders hold nothing but their .rec, as they are training channels.

RecordIO layout (MXNet's `recordio.MXIndexedRecordIO` + `recordio.pack`, as im2rec writes):

    record  = part [part ...]
    part    = magic    uint32 LE 0xced7230a
              lrecord  uint32 LE (cflag << 29) | length
              data     `length` bytes
              padding  zero bytes up to a multiple of 4
    payload = flag uint32 LE (0) | label float32 LE (class index)
              | id uint64 LE (record index) | id2 uint64 LE (0)  -- struct `<IfQQ`, 24 bytes
              | JPEG bytes

A record is one part with cflag 0 holding the whole payload, unless the payload contains the
magic at an offset that is a multiple of 4: then, as MXNet's writer does so that readers can
find record boundaries by scanning for the magic, the payload is cut at each such magic, which
is dropped, into parts with cflag 1 (first), 2 (middle) and 3 (last); a reader joins the parts
putting the magic back between them. A .idx offset is the byte offset of the record's first
magic in the .rec.

Outputs depend only on the manifest's content, the images' bytes and the arguments (and the
Pillow build, which encodes the JPEGs): the same inputs give byte-identical files.

Exit codes: 0 ok; 2 bad arguments or input, with a message naming the argument: a manifest
line that is malformed (its file and 1-based line), an image listed but missing, changed,
undecodable or above --max-pixels (its path), a validation or test split that has a share but
would be empty (naming the classes too small to fill it). Files already written by a run that exits 2 are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, ImageOps

from parallel import (
    REPLICATED,
    RESOURCE_CONFIG,
    SHARDED,
    add_parallel_arguments,
    available_cpus,
    choose_shard,
    map_in_order,
    pixel_limit,
    positive_int,
    shard_name,
)

MANIFEST = "manifest.jsonl"

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
FULL = "full"
TUNING = {"tuning-train": TRAIN, "tuning-validation": VALIDATION}
# Every .rec output, in the order split.json and records.jsonl list them.
RECORD_OUTPUTS = (FULL, TRAIN, VALIDATION, TEST, "tuning-train", "tuning-validation")
INDEX = "index"
TEST_IMAGES = "test-images"
# The folders written under --output: the step's ProcessingOutputs.
OUTPUT_FOLDERS = RECORD_OUTPUTS + (INDEX, TEST_IMAGES)
CLASSES_FILE = "classes.json"
SPLIT_FILE = "split.json"
RECORDS_FILE = "records.jsonl"

DEFAULT_SEED = 0
JPEG_QUALITY = 90
# Pillow's code for 4:2:0 chroma subsampling.
JPEG_SUBSAMPLING = 2
NAME_DIGITS = 5
RATIO_TOLERANCE = Fraction(1, 10**6)

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
# MXNet's IRHeader: flag, label, id, id2.
IMAGE_HEADER = struct.Struct("<IfQQ")
# lrecord keeps the length in its low 29 bits.
MAX_PART_LENGTH = (1 << 29) - 1

_BICUBIC = getattr(Image, "Resampling", Image).BICUBIC
# Formats libjpeg can decode at 1/2, 1/4 or 1/8 scale (Image.draft); an MPO is a JPEG with a
# multi-picture segment.
DRAFT_FORMATS = ("JPEG", "MPO")
EXIF_ORIENTATION = 0x0112
# EXIF orientations that turn the picture a quarter turn: displayed width and height swap.
QUARTER_TURNS = (5, 6, 7, 8)
# Modes Pillow gives 16-bit greyscale PNGs (0-65535; "I" in older releases).
SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# The same default as data_quality.py's: an image QA kept never exceeds it.
DEFAULT_MAX_PIXELS = 80_000_000
SHARDS = "shards"
SHARD_KIND = "preprocess shard"
# How the instances of a sharded run got the raw images (the S3 input's distribution type).
PART_FILE = "part.json"

EXIT_OK = 0
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument, path or input; the message names it."""


@dataclass(frozen=True)
class Arguments:
    manifest: Path
    images: Path
    output: Path
    width: int
    height: int
    ratios: dict[str, Fraction]
    tuning_fraction: Fraction
    seed: int
    # The classes the training jobs are configured for (their `num_classes`); None: unchecked.
    num_classes: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 1
    # (index, count) of the shard this instance writes; None: it writes the outputs themselves.
    shard: tuple[int, int] | None = None
    # When sharded: REPLICATED (every instance has every image) or SHARDED (each has its own).
    input_distribution: str = REPLICATED


@dataclass(frozen=True)
class Entry:
    """One manifest line."""

    path: str
    label: str
    sha256: str
    line: int


@dataclass
class Plan:
    """Which images go where, before any image is read."""

    classes: list[str]
    # Every image, in record order (the seeded hash order).
    ordered: list[Entry]
    # Path -> its split (train, validation or test).
    split_of: dict[str, str]
    # Paths in the tuning subsets.
    tuning: set[str]
    # Output -> label -> count.
    counts: dict[str, dict[str, int]]

    def outputs_of(self, entry: Entry) -> list[str]:
        split = self.split_of[entry.path]
        outputs = [FULL, split]
        if entry.path in self.tuning:
            outputs.append("tuning-" + split)
        return outputs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors already exit 2; this keeps them in the same "error:" shape.
        self.print_usage(sys.stderr)
        raise UsageError(message)




def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None


def _fraction(text: str) -> Fraction:
    # Exact, so 0.1 x 20 images is 2, not 2.0000000000000004.
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None


def _share(text: str) -> Fraction:
    value = _fraction(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"`{text}` must be between 0 and 1")
    return value


def _tuning_fraction(text: str) -> Fraction:
    value = _fraction(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"`{text}` must be above 0 and at most 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line; parsing only, the checks on paths are parse_arguments'."""
    parser = _Parser(
        prog="preprocess.py",
        description="Resize the QA'd images, split them and pack each split as RecordIO.",
    )
    parser.add_argument("--manifest", required=True, help="data_quality.py's output folder (or its manifest.jsonl)")
    parser.add_argument("--images", required=True, help="raw images folder; manifest paths are relative to it")
    parser.add_argument("--output", required=True, help="folder to write one sub-folder per output into")
    parser.add_argument("--image-width", required=True, type=positive_int, help="output width, in pixels")
    parser.add_argument("--image-height", required=True, type=positive_int, help="output height, in pixels")
    parser.add_argument("--train-ratio", required=True, type=_share, help="share of each class in train, 0-1")
    parser.add_argument(
        "--validation-ratio", required=True, type=_share, help="share of each class in validation, 0-1"
    )
    parser.add_argument("--test-ratio", required=True, type=_share, help="share of each class in test, 0-1")
    parser.add_argument(
        "--tuning-fraction",
        required=True,
        type=_tuning_fraction,
        help="share of train and of validation in the tuning subsets, in (0, 1]",
    )
    parser.add_argument(
        "--seed", type=_integer, default=DEFAULT_SEED, help=f"seed of the split (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--num-classes",
        type=positive_int,
        help="the classes the training jobs expect (their num_classes); the manifest must have exactly these",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"largest image accepted, in pixels (width x height); default {DEFAULT_MAX_PIXELS}, as data QA's",
    )
    add_parallel_arguments(parser, "resizing images", "merge_records.py")
    return parser


def check_output_parent(output: Path) -> None:
    """Raises UsageError unless `output` is, or can be made, a folder."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"argument --output: `{output}` exists and is not a folder")
    ancestor = output
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"argument --output: `{output}` is below `{ancestor}`, which is not a folder")


def check_empty_folders(folders: Sequence[Path]) -> None:
    for folder in folders:
        if (folder.exists() or folder.is_symlink()) and (not folder.is_dir() or any(folder.iterdir())):
            # Stale files would end up in a training channel or in the batch transform's input.
            raise UsageError(f"argument --output: `{folder}` exists and is not an empty folder")


def parse_arguments(argv: Sequence[str], resource_config: Path | None = None) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path.

    `resource_config`: SageMaker's description of the job's instances (default RESOURCE_CONFIG).
    """
    raw = build_parser().parse_args(list(argv))
    resource_config = RESOURCE_CONFIG if resource_config is None else resource_config
    try:
        shard = choose_shard(raw.shard_index, raw.shard_count, resource_config)
    except ValueError as error:
        raise UsageError(str(error)) from None

    ratios = {TRAIN: raw.train_ratio, VALIDATION: raw.validation_ratio, TEST: raw.test_ratio}
    total = sum(ratios.values())
    if abs(total - 1) > RATIO_TOLERANCE:
        shares = " + ".join(str(float(value)) for value in ratios.values())
        raise UsageError(
            f"arguments --train-ratio, --validation-ratio, --test-ratio: {shares} adds up to "
            f"{float(total)}, not 1"
        )

    manifest = Path(raw.manifest)
    if manifest.is_dir():
        manifest = manifest / MANIFEST
        if not manifest.is_file():
            raise UsageError(f"argument --manifest: `{raw.manifest}` has no {MANIFEST}")
    elif not manifest.exists():
        raise UsageError(f"argument --manifest: `{manifest}` does not exist")

    images = Path(raw.images)
    if not images.exists():
        raise UsageError(f"argument --images: `{images}` does not exist")
    if not images.is_dir():
        raise UsageError(f"argument --images: `{images}` is not a folder")

    output = Path(raw.output)
    check_output_parent(output)
    try:
        if output.resolve().is_relative_to(images.resolve()):
            raise UsageError(f"argument --output: `{output}` is inside --images `{images}`")
    except OSError as error:
        raise UsageError(f"argument --output: `{output}`: {error.strerror}") from None
    if shard is None:
        check_empty_folders([output / name for name in OUTPUT_FOLDERS])
    else:
        check_output_parent(output / SHARDS)
        check_empty_folders([output / SHARDS / shard_name(*shard)])

    return Arguments(
        manifest=manifest,
        images=images,
        output=output,
        width=raw.image_width,
        height=raw.image_height,
        ratios=ratios,
        tuning_fraction=raw.tuning_fraction,
        seed=raw.seed,
        num_classes=raw.num_classes,
        max_pixels=raw.max_pixels,
        workers=raw.workers or available_cpus(),
        shard=shard,
        input_distribution=raw.input_distribution,
    )


def _is_relative_key(text: str) -> bool:
    """Whether `text` is a normalised relative POSIX path that stays inside its root."""
    if not text or text.startswith("/"):
        return False
    path = PurePosixPath(text)
    return ".." not in path.parts and path.as_posix() == text and text != "."


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(char in "0123456789abcdef" for char in value)


def read_manifest(path: Path) -> tuple[list[Entry], str]:
    """The manifest's entries and the SHA-256 of its bytes; raises UsageError naming the line."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as error:
        raise UsageError(f"argument --manifest: `{path}`: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"argument --manifest: `{path}`: not UTF-8 text") from None
    entries: list[Entry] = []
    lines: dict[str, int] = {}
    # JSON Lines ends lines with \n only: str.splitlines() would also split at U+2028, U+0085
    # and other characters a path or label may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"argument --manifest: `{path}` line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: expected a JSON object with path, label and sha256")
        for key in ("path", "label", "sha256"):
            if key not in record:
                raise UsageError(f"{where}: missing `{key}`")
        image_path, label, digest = record["path"], record["label"], record["sha256"]
        if not isinstance(image_path, str) or not _is_relative_key(image_path):
            raise UsageError(f"{where}: `path` is not a normalised relative path: {json.dumps(image_path)}")
        if not isinstance(label, str) or not label:
            raise UsageError(f"{where}: `label` is not a non-empty string")
        if not _is_sha256(digest):
            raise UsageError(f"{where}: `sha256` is not 64 lowercase hex digits")
        if image_path in lines:
            raise UsageError(f"{where}: `{image_path}` is already listed on line {lines[image_path]}")
        lines[image_path] = number
        entries.append(Entry(path=image_path, label=label, sha256=digest, line=number))
    if not entries:
        raise UsageError(f"argument --manifest: `{path}` lists no image")
    return entries, hashlib.sha256(data).hexdigest()


def rank_key(seed: int, entry: Entry) -> tuple[str, str]:
    """The seeded, order-independent sort key of an image."""
    return hashlib.sha256(f"{seed}:{entry.path}".encode()).hexdigest(), entry.path


def split_counts(count: int, ratios: dict[str, Fraction]) -> dict[str, int]:
    """How many of a class's `count` images go to each split (see the module docstring)."""
    total = sum(ratios.values())
    quotas = {split: count * ratios[split] / total for split in SPLITS}
    counts = {split: math.floor(quota) for split, quota in quotas.items()}
    left = count - sum(counts.values())
    by_remainder = sorted(SPLITS, key=lambda split: (-(quotas[split] - counts[split]), SPLITS.index(split)))
    for split in by_remainder[:left]:
        counts[split] += 1
    if count and ratios[TRAIN] > 0 and counts[TRAIN] == 0:
        donor = TEST if counts[TEST] else VALIDATION
        counts[donor] -= 1
        counts[TRAIN] += 1
    return counts


def tuning_count(count: int, fraction: Fraction) -> int:
    """How many of a class's `count` images in a split go to its tuning subset."""
    if count == 0:
        return 0
    return max(1, math.floor(count * fraction + Fraction(1, 2)))


def plan_split(entries: Sequence[Entry], ratios: dict[str, Fraction], fraction: Fraction, seed: int) -> Plan:
    classes = sorted({entry.label for entry in entries})
    ordered = sorted(entries, key=lambda entry: rank_key(seed, entry))
    split_of: dict[str, str] = {}
    tuning: set[str] = set()
    counts: dict[str, dict[str, int]] = {output: {} for output in RECORD_OUTPUTS}
    by_class: dict[str, list[Entry]] = {label: [] for label in classes}
    for entry in ordered:
        by_class[entry.label].append(entry)
    for label in classes:
        ranked = by_class[label]
        sizes = split_counts(len(ranked), ratios)
        start = 0
        for split in SPLITS:
            members = ranked[start : start + sizes[split]]
            start += sizes[split]
            for entry in members:
                split_of[entry.path] = split
            counts[split][label] = len(members)
            subset = f"tuning-{split}"
            if subset in TUNING:
                chosen = members[: tuning_count(len(members), fraction)]
                tuning.update(entry.path for entry in chosen)
                counts[subset][label] = len(chosen)
        counts[FULL][label] = len(ranked)
    return Plan(classes=classes, ordered=ordered, split_of=split_of, tuning=tuning, counts=counts)


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB: 16-bit grey scaled to 8 bits (not clipped), transparent pixels white.

    Transparency is an alpha channel, a palette's transparent entries or a PNG colour key (tRNS
    on a grey or RGB image: every pixel of exactly that value is transparent).
    """
    if image.mode in SIXTEEN_BIT_GREY:
        alpha = None
        if image.info.get("transparency") is not None:
            # Pillow matches the key against the 16-bit values.
            alpha = image.convert("RGBA").getchannel("A")
        # 0-65535 to 0-255, rounded: 65535 / 257 = 255.
        grey = image.convert("I").point(lambda value: value * (1 / 257) + 0.5).convert("L")
        image = grey if alpha is None else Image.merge("LA", (grey, alpha))
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or image.info.get("transparency") is not None
    if not transparent:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


class TooLarge(Exception):
    """An image with more pixels than --max-pixels; the message says how many."""


def draft_size(stored: tuple[int, int], target: tuple[int, int], orientation: object) -> tuple[int, int]:
    """The size, in the stored orientation, that covers `target` once the EXIF orientation is applied."""
    width, height = stored
    target_width, target_height = (target[1], target[0]) if orientation in QUARTER_TURNS else target
    if target_width * height >= target_height * width:
        # The width binds: scaled to the target width, the height covers the target height.
        return target_width, max(1, -(-height * target_width // width))
    return max(1, -(-width * target_height // height)), target_height


def to_jpeg(data: bytes, width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """`data` decoded, upright, RGB, scaled to cover width x height, centre-cropped, as JPEG.

    A JPEG is decoded at the smallest of 1/1, 1/2, 1/4 or 1/8 scale that still covers the
    output (libjpeg's DCT-domain downscaling), then resized as any image is.
    """
    # The limit is checked here, from the header, before any pixel is decoded.
    with pixel_limit(max_pixels):
        try:
            opened = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise TooLarge(f"{error}; the limit is --max-pixels {max_pixels}") from None
        with opened:
            stored_width, stored_height = opened.size
            if stored_width * stored_height > max_pixels:
                raise TooLarge(
                    f"{stored_width}x{stored_height} is {stored_width * stored_height} pixels, "
                    f"above --max-pixels {max_pixels}"
                )
            if opened.format in DRAFT_FORMATS:
                orientation = opened.getexif().get(EXIF_ORIENTATION)
                opened.draft("RGB", draft_size(opened.size, (width, height), orientation))
            opened.load()
            image = ImageOps.exif_transpose(opened)
    image = to_rgb(image)
    image = ImageOps.fit(image, (width, height), method=_BICUBIC, centering=(0.5, 0.5))
    encoded = io.BytesIO()
    image.save(
        encoded,
        format="JPEG",
        quality=JPEG_QUALITY,
        subsampling=JPEG_SUBSAMPLING,
        optimize=False,
        progressive=False,
    )
    return encoded.getvalue()


def _part(cflag: int, data: bytes) -> bytes:
    if len(data) > MAX_PART_LENGTH:
        raise ValueError(f"a RecordIO part holds at most {MAX_PART_LENGTH} bytes, not {len(data)}")
    padding = b"\0" * (-len(data) % 4)
    return _MAGIC_BYTES + struct.pack("<I", (cflag << 29) | len(data)) + data + padding


def pack_record(payload: bytes) -> bytes:
    """One RecordIO record holding `payload`, split at aligned magics as MXNet's writer does."""
    parts = []
    begin = 0
    position = payload.find(_MAGIC_BYTES)
    while position != -1:
        if position % 4 == 0:
            parts.append(_part(1 if begin == 0 else 2, payload[begin:position]))
            begin = position + 4
            position = payload.find(_MAGIC_BYTES, begin)
        else:
            position = payload.find(_MAGIC_BYTES, position + 1)
    parts.append(_part(3 if begin else 0, payload[begin:]))
    return b"".join(parts)


def image_payload(class_index: int, record_index: int, jpeg: bytes) -> bytes:
    """MXNet's `recordio.pack` of a single-label image: the IRHeader, then the image bytes."""
    return IMAGE_HEADER.pack(0, float(class_index), record_index, 0) + jpeg


def record_name(index: int, count: int) -> str:
    """A record's file name: its index zero-padded to the output's width, plus `.jpg`."""
    digits = max(NAME_DIGITS, len(str(max(count - 1, 0))))
    return f"{index:0{digits}d}.jpg"


class RecordWriter:
    """Appends records to one .rec and remembers what its .idx needs."""

    def __init__(self, stream: BinaryIO, count: int, first: int = 0) -> None:
        self.stream = stream
        # Records in the whole output (names are padded to its width); this writer's first index.
        self.count = count
        self.first = first
        self.offset = 0
        # (record index, byte offset)
        self.records: list[tuple[int, int]] = []

    def append(self, class_index: int, jpeg: bytes, index: int | None = None) -> str:
        """Appends a record numbered `index` (default: the one after the last) and returns its name."""
        if index is None:
            index = self.first + len(self.records)
        record = pack_record(image_payload(class_index, index, jpeg))
        self.stream.write(record)
        self.records.append((index, self.offset))
        self.offset += len(record)
        return record_name(index, self.count)

    def idx(self) -> str:
        return "".join(f"{index}\t{offset}\n" for index, offset in self.records)


def process_image(task: tuple[str, str, int, int, int]) -> tuple[bool, bytes | str]:
    """Reads, checks and converts one image; runs in a worker process, so takes and returns plain data.

    (True, JPEG bytes), or (False, what is wrong, to follow the image's name in a message).
    """
    path, digest, width, height, max_pixels = task
    if not os.path.isfile(path):
        return False, " does not exist"
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        return False, f": cannot read ({error.strerror})"
    if hashlib.sha256(data).hexdigest() != digest:
        return False, ": its bytes no longer have the manifest's sha256; it changed after QA"
    try:
        return True, to_jpeg(data, width, height, max_pixels)
    except TooLarge as error:
        return False, f": {error}; data_quality.py with the same --max-pixels drops such images"
    except Exception as error:  # Pillow raises many types for bad data; all mean the same here.
        return False, f" does not decode: {str(error) or type(error).__name__}"


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def render_split(arguments: Arguments, plan: Plan, dataset_version: str) -> bytes:
    return _json_bytes(
        {
            "seed": arguments.seed,
            "ratios": {split: float(share) for split, share in arguments.ratios.items()},
            "tuning_fraction": float(arguments.tuning_fraction),
            "dataset_version": dataset_version,
            "image": {
                "width": arguments.width,
                "height": arguments.height,
                "format": "jpeg",
                "jpeg_quality": JPEG_QUALITY,
                "resize": "cover, centre crop",
            },
            "classes": plan.classes,
            "counts": {output: plan.counts[output] for output in RECORD_OUTPUTS},
            "totals": {output: sum(plan.counts[output].values()) for output in RECORD_OUTPUTS},
            # The image-classification algorithm's `num_training_samples` for the training job
            # (train channel) and the tuning jobs (tuning-train), for a pipeline's JsonGet.
            "num_training_samples": {
                "train": sum(plan.counts[TRAIN].values()),
                "tuning_train": sum(plan.counts["tuning-train"].values()),
            },
        }
    )


def members_of(plan: Plan) -> dict[str, list[Entry]]:
    """Each output's images, in record order."""
    members: dict[str, list[Entry]] = {name: [] for name in RECORD_OUTPUTS}
    for entry in plan.ordered:
        for name in plan.outputs_of(entry):
            members[name].append(entry)
    return members


def render_index(arguments: Arguments, plan: Plan, dataset_version: str) -> dict[str, bytes]:
    """The files of index/ that follow from the plan alone: all but the .idx files."""
    class_index = {label: index for index, label in enumerate(plan.classes)}
    members = members_of(plan)
    files: dict[str, bytes] = {}
    lines: list[str] = []
    for name in RECORD_OUTPUTS:
        total = len(members[name])
        rows = []
        for index, entry in enumerate(members[name]):
            record = record_name(index, total)
            rows.append(f"{index}\t{class_index[entry.label]}\t{record}\n")
            lines.append(
                json.dumps(
                    {
                        "output": name,
                        "index": index,
                        "name": record,
                        "class": class_index[entry.label],
                        "label": entry.label,
                        "path": entry.path,
                        "sha256": entry.sha256,
                    },
                    sort_keys=True,
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                + "\n"
            )
        files[f"{name}.lst"] = "".join(rows).encode("utf-8")
    files[CLASSES_FILE] = _json_bytes(plan.classes)
    files[SPLIT_FILE] = render_split(arguments, plan, dataset_version)
    files[RECORDS_FILE] = "".join(lines).encode("utf-8")
    return files


def shard_range(count: int, shard: tuple[int, int]) -> tuple[int, int]:
    """The images (positions in record order) shard `index` of `shards` converts: a contiguous run."""
    index, shards = shard
    return index * count // shards, (index + 1) * count // shards


def record_indices(plan: Plan, wanted: Sequence[bool] | None = None) -> list[tuple[Entry, list[tuple[str, int]]]]:
    """Each image of the record order (those `wanted[position]` only) with its (output, record index) pairs."""
    counters = {name: 0 for name in RECORD_OUTPUTS}
    items = []
    for position, entry in enumerate(plan.ordered):
        places = []
        for name in plan.outputs_of(entry):
            places.append((name, counters[name]))
            counters[name] += 1
        if wanted is None or wanted[position]:
            items.append((entry, places))
    return items


def pack_images(
    arguments: Arguments, plan: Plan, begin: int, end: int, rec_paths: dict[str, Path], test_images: Path | None
) -> dict[str, RecordWriter]:
    """Converts the images at positions [begin, end) of the record order and appends their records."""
    first = {name: 0 for name in RECORD_OUTPUTS}
    for entry in plan.ordered[:begin]:
        for name in plan.outputs_of(entry):
            first[name] += 1
    items = [(entry, [(name, None) for name in plan.outputs_of(entry)]) for entry in plan.ordered[begin:end]]
    return convert_images(arguments, plan, items, rec_paths, test_images, first)


def convert_images(
    arguments: Arguments,
    plan: Plan,
    items: Sequence[tuple[Entry, Sequence[tuple[str, int | None]]]],
    rec_paths: dict[str, Path],
    test_images: Path | None,
    first: dict[str, int] | None = None,
) -> dict[str, RecordWriter]:
    """Converts each item's image and appends its records, numbered as given (None: the next index).

    Items come in record order, so every .rec receives its records in increasing index.
    """
    class_index = {label: index for index, label in enumerate(plan.classes)}
    totals = {name: sum(counts.values()) for name, counts in plan.counts.items()}
    first = first or {name: 0 for name in RECORD_OUTPUTS}
    entries = [entry for entry, _ in items]
    tasks = [
        (str(arguments.images / entry.path), entry.sha256, arguments.width, arguments.height, arguments.max_pixels)
        for entry in entries
    ]
    with contextlib.ExitStack() as stack:
        writers = {
            name: RecordWriter(stack.enter_context(open(rec_paths[name], "wb")), totals[name], first[name])
            for name in RECORD_OUTPUTS
        }
        results = stack.enter_context(contextlib.closing(map_in_order(process_image, tasks, arguments.workers)))
        for (entry, places), (converted, value) in zip(items, results):
            if not converted:
                assert isinstance(value, str)
                raise UsageError(f"argument --images: `{arguments.images / entry.path}` (manifest line {entry.line}){value}")
            assert isinstance(value, bytes)
            for name, index in places:
                try:
                    record = writers[name].append(class_index[entry.label], value, index)
                except ValueError as error:
                    raise UsageError(
                        f"argument --images: `{arguments.images / entry.path}`: {error}; "
                        "try a smaller --image-width/--image-height"
                    ) from None
                if name == TEST and test_images is not None:
                    (test_images / record).write_bytes(value)
    return writers


def write_outputs(arguments: Arguments, plan: Plan, dataset_version: str) -> None:
    output = arguments.output
    for name in OUTPUT_FOLDERS:
        (output / name).mkdir(parents=True, exist_ok=True)
    rec_paths = {name: output / name / f"{name}.rec" for name in RECORD_OUTPUTS}
    writers = pack_images(arguments, plan, 0, len(plan.ordered), rec_paths, output / TEST_IMAGES)
    index = output / INDEX
    for name in RECORD_OUTPUTS:
        (index / f"{name}.idx").write_text(writers[name].idx(), encoding="utf-8")
    for file_name, data in render_index(arguments, plan, dataset_version).items():
        (index / file_name).write_bytes(data)


def received(images: Path, plan: Plan) -> list[bool]:
    """For each image of the record order, whether its file (or anything at its path) is under `images`."""
    return [os.path.lexists(images / entry.path) for entry in plan.ordered]


def write_shard(arguments: Arguments, plan: Plan, dataset_version: str) -> str:
    """Writes this instance's shard for merge_records.py; returns what it converted, for the log."""
    assert arguments.shard is not None
    index, count = arguments.shard
    folder = arguments.output / SHARDS / shard_name(index, count)
    folder.mkdir(parents=True, exist_ok=True)
    rec_paths = {name: folder / f"{name}.rec" for name in RECORD_OUTPUTS}
    index_files = render_index(arguments, plan, dataset_version)
    part: dict[str, object] = {
        "kind": SHARD_KIND,
        "shard": index,
        "shard_count": count,
        "dataset_version": dataset_version,
        # Every shard planned the same split: the merge checks they agree.
        "split_sha256": hashlib.sha256(index_files[SPLIT_FILE]).hexdigest(),
    }
    if arguments.input_distribution == SHARDED:
        # Whatever images this instance was given: each record keeps its index in the whole
        # output (its IRHeader id, and listed here), so the merge can interleave the parts.
        items = record_indices(plan, received(arguments.images, plan))
        writers = convert_images(arguments, plan, items, rec_paths, None)
        part["input_distribution"] = SHARDED
        part["records"] = {
            name: {"count": len(writers[name].records), "indices": [number for number, _ in writers[name].records]}
            for name in RECORD_OUTPUTS
        }
        # One line: the index lists are long.
        part_bytes = (json.dumps(part, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        done = f"converted the {len(items)} of {len(plan.ordered)} images found under --images"
    else:
        begin, end = shard_range(len(plan.ordered), arguments.shard)
        writers = pack_images(arguments, plan, begin, end, rec_paths, None)
        part["images"] = {"begin": begin, "end": end}
        part["records"] = {
            name: {"first": writers[name].first, "count": len(writers[name].records)} for name in RECORD_OUTPUTS
        }
        part_bytes = _json_bytes(part)
        done = f"converted images {begin}-{end - 1} of {len(plan.ordered)}"
    if index == 0:
        # The index files follow from the plan, the same on every instance: one copy is enough.
        (folder / INDEX).mkdir(exist_ok=True)
        for file_name, data in index_files.items():
            (folder / INDEX / file_name).write_bytes(data)
    (folder / PART_FILE).write_bytes(part_bytes)
    return done


def remove_written(folders: Sequence[Path], created: Sequence[Path]) -> None:
    """Removes what a failed run wrote: the files in `folders` (absent or empty before it)."""
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file():
                    path.unlink()
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def smallest_class_for(split: str, ratios: dict[str, Fraction]) -> int:
    """The fewest images a class needs for `split` (share above 0) to get one of them."""
    bound = math.ceil(sum(ratios.values()) / ratios[split])
    for count in range(1, min(bound, 100_000) + 1):
        if split_counts(count, ratios)[split] > 0:
            return count
    return bound


def check_splits_not_empty(plan: Plan, ratios: dict[str, Fraction]) -> None:
    """Raises UsageError if validation or test has a share but no image: training would fail hours later."""
    for split in (VALIDATION, TEST):
        if ratios[split] == 0 or any(plan.counts[split].values()):
            continue
        need = smallest_class_for(split, ratios)
        shares = "/".join(f"{float(ratios[name]):g}" for name in SPLITS)
        sizes = ", ".join(f"{label} ({plan.counts[FULL][label]})" for label in plan.classes[:10])
        more = f" and {len(plan.classes) - 10} more" if len(plan.classes) > 10 else ""
        raise UsageError(
            f"argument --{split}-ratio: the {split} split would be empty: with shares {shares} "
            f"(train/validation/test) a class needs at least {need} images to put one in {split}, and "
            f"every class has fewer: {sizes}{more}; add images to these classes, or set --{split}-ratio to 0"
        )


def run(arguments: Arguments) -> int:
    entries, dataset_version = read_manifest(arguments.manifest)
    labels = sorted({entry.label for entry in entries})
    if arguments.num_classes is not None and len(labels) != arguments.num_classes:
        # Caught here, before tuning and training spend hours on a model of the wrong shape.
        raise UsageError(
            f"argument --num-classes: the training jobs expect {arguments.num_classes} classes, "
            f"but the manifest has {len(labels)} ({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''}); "
            "set the model's `num_classes` in the environment file, or fix the images' labels"
        )
    plan = plan_split(entries, arguments.ratios, arguments.tuning_fraction, arguments.seed)
    check_splits_not_empty(plan, arguments.ratios)
    output = arguments.output
    if arguments.shard is None:
        folders = [output / name for name in OUTPUT_FOLDERS]
        cleaned = folders
    else:
        shard_folder = output / SHARDS / shard_name(*arguments.shard)
        folders = [output / SHARDS, shard_folder, shard_folder / INDEX]
        cleaned = [shard_folder / INDEX, shard_folder]
    created = [folder for folder in [output, *folders] if not folder.exists()]
    try:
        if arguments.shard is None:
            write_outputs(arguments, plan, dataset_version)
        else:
            done = write_shard(arguments, plan, dataset_version)
    except OSError as error:
        remove_written(cleaned, created)
        raise UsageError(f"argument --output: `{output}`: {error.strerror or error}") from None
    except BaseException:
        remove_written(cleaned, created)
        raise

    # Progress and results go to stderr (the processing job's log); the files are the data.
    totals = ", ".join(f"{name} {sum(plan.counts[name].values())}" for name in RECORD_OUTPUTS)
    if arguments.shard is None:
        print(f"preprocess: {len(plan.classes)} classes; records: {totals}", file=sys.stderr)
    else:
        index, count = arguments.shard
        print(
            f"preprocess: shard {index} of {count}: {done}; "
            f"{len(plan.classes)} classes; records of all shards: {totals}; run merge_records.py on every shard",
            file=sys.stderr,
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_arguments(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
