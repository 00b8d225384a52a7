"""Data QA and versioning: the pipeline's `DataQuality` step (see src/pipeline/generate.rs).

Reads the raw images, keeps those that pass the QA rules and writes, into `--output`:

- `manifest.jsonl`: one JSON object per kept image, lines sorted by the image's relative path,
  keys sorted: `{"height", "label", "path", "sha256", "uri", "width"}`. `path` is the image's
  POSIX path relative to `--input` (where `preprocess.py` finds it under its `--images`);
  `uri` is `--input-uri` joined with `path`, so the manifest names the S3 objects themselves.
  `width` and `height` are as displayed, after the EXIF orientation.
- `summary.json`: the rules applied, where the labels came from, counts (kept, dropped per
  reason, kept/dropped per label), every dropped file with its reason, and every path a labels
  file lists that is not there.
- `version.txt`: the SHA-256 of manifest.jsonl's bytes. The same images with the same labels
  give the same manifest and so the same version; any kept image or label changing changes it.

CLI:

    data_quality.py --input DIR --input-uri s3://BUCKET/PREFIX --output DIR
                    --min-width PX --min-height PX --allowed-formats jpeg,png
                    [--labels FILE] [--classes LABEL,LABEL,...]
                    [--max-pixels N] [--workers N]
                    [--shard-index I --shard-count N] [--input-distribution replicated|sharded]

Labels come from one of two layouts.

Folder per label (no `--labels`): the top-level sub-folder's name is the label:

    <input>/cat/0001.jpg  -> label "cat"
    <input>/dog/a/b.png   -> label "dog" (deeper folders belong to their top-level label)
    <input>/stray.jpg     -> dropped as "unlabelled"

Labels file (`--labels FILE`), chosen by the file's extension:

- `.csv`: a header row `path,label`, then one row per image; `path` is relative to `--input`.
  Blank rows are skipped.
- `.json`: one object, `{"<relative path>": "<label>", ...}`.

Surrounding spaces are trimmed from paths and labels.

With a labels file, labels come from it only (folder names mean nothing): an image it does not
list is dropped as "unlabelled"; a path it lists that is not a file under `--input` is
reported in summary.json's `listed_but_missing` (and on stderr) and is otherwise ignored. A
labels file that sits inside `--input` is not itself treated as an image. Paths are relative
POSIX paths (`./` and repeated `/` are normalised away; absolute paths and `..` are errors).
A row that is malformed, a path listed twice, an empty label or a label containing `/` exits
2, naming the file and the 1-based line.

`--classes` is an allow-list of labels, for either layout; an image whose label is not in it
is dropped as "unknown label".

Every entry under `--input` is counted; it is kept only if
1. no part of its path starts with `.` (else "hidden": `.ipynb_checkpoints/`, `.DS_Store`);
2. its path is valid UTF-8, as S3 keys are (else "name not UTF-8");
3. it has a label (else "unlabelled");
4. its label is in `--classes`, when given (else "unknown label");
5. it is a regular file or a symbolic link to one (else "not a file": a dangling link, a link
   loop, a link to a folder, which is not followed, a named pipe, a socket or a device);
6. Pillow recognises it as an image (else "does not decode");
7. its format, judged from the file's content, never its extension, is allowed (else "format
   not allowed"); a JPEG with a multi-picture (MPF) segment, which Pillow calls `MPO`, is a
   JPEG;
8. it has at most `--max-pixels` pixels (else "too large"), checked from the header before
   any pixel is decoded;
9. it decodes: `verify()`, then the whole entropy-coded stream is decoded (JPEGs at 1/8 scale
   with libjpeg's DCT-domain downscaling, which still reads every coefficient, so truncated or
   corrupt files fail as at full scale) (else "does not decode");
10. it is at least `--min-width` wide and `--min-height` high as displayed, after its EXIF
    orientation (else "too small");
11. it is not byte-for-byte identical (SHA-256) to an image already kept, files being visited
    in sorted relative-path order so the first one wins (else "duplicate").

Files are checked by `--workers` processes (default: the CPUs this process may use); results
are merged in sorted path order, so the outputs do not depend on the number of workers.

Sharding: with `--shard-index I --shard-count N`, or when SageMaker Processing runs the job on
more than one instance (/opt/ml/config/resourceconfig.json lists more than one host; the
instance's position in `hosts` is its shard), the script checks only its share of the files and
writes `<output>/shards/shard-IIIII-of-NNNNN.jsonl` instead of the three outputs above;
`merge_manifests.py` merges every shard into exactly the manifest, summary and version one
instance would have written. `--input-distribution` says how the instances got the images:
`replicated` (S3 FullyReplicated, the default): every instance has every file and checks those
at positions I, I+N, I+2N, ... of the sorted listing; `sharded` (S3 ShardedByS3Key): each
instance has its own files and checks all of them.

Outputs depend only on the files' paths and bytes and on the arguments: no clock, no host, no
absolute paths, so the same inputs give byte-identical outputs.

Exit codes: 0 ok; 1 no image passed QA (the outputs are still written, for the summary);
2 bad arguments, paths or labels file, with a message naming the argument (and, for a labels
file, the line). Nothing is written when exiting 2.
"""

from __future__ import annotations

import argparse
import csv
import errno
import hashlib
import io
import json
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

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

# What SageMaker's image-classification algorithm reads; matches the config's
# `pipeline.allowed_formats` validation (src/config/platform.rs).
SUPPORTED_FORMATS = ("jpeg", "png")
# Pillow's name for a format -> the format it is. An MPO is a JPEG whose APP2 segment indexes
# further pictures (phones and cameras add a preview or a depth map); its first picture is the
# photo, and every JPEG decoder reads it as one.
FORMAT_ALIASES = {"mpo": "jpeg"}
# Formats libjpeg can decode at 1/2, 1/4 or 1/8 scale (Image.draft).
DRAFT_FORMATS = ("JPEG", "MPO")
EXIF_ORIENTATION = 0x0112
# EXIF orientations that turn the picture a quarter turn: displayed width and height swap.
QUARTER_TURNS = (5, 6, 7, 8)

# Above any common camera (61 MP full frame, 64 MP phone sensors at 9248x6936) and below
# Pillow's own warning threshold (89.5 MP). An image at the limit needs about 4 bytes a pixel
# (320 MB) to decode as RGBA in each worker.
DEFAULT_MAX_PIXELS = 80_000_000

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
VERSION = "version.txt"
SHARDS = "shards"
SHARD_KIND = "data-quality shard"

HIDDEN = "hidden"
BAD_NAME = "name not UTF-8"
UNLABELLED = "unlabelled"
UNKNOWN_LABEL = "unknown label"
NOT_A_FILE = "not a file"
DOES_NOT_DECODE = "does not decode"
FORMAT_NOT_ALLOWED = "format not allowed"
TOO_LARGE = "too large"
TOO_SMALL = "too small"
DUPLICATE = "duplicate"
# In the order the checks run, so summary.json lists every reason, zero or not.
REASONS = (
    HIDDEN,
    BAD_NAME,
    UNLABELLED,
    UNKNOWN_LABEL,
    NOT_A_FILE,
    DOES_NOT_DECODE,
    FORMAT_NOT_ALLOWED,
    TOO_LARGE,
    TOO_SMALL,
    DUPLICATE,
)
# A path a labels file lists that is not a file under --input (reported, not a dropped file).
LISTED_BUT_MISSING = "listed but missing"

CSV_HEADER = ["path", "label"]
LABELS_FORMATS = (".csv", ".json")

EXIT_OK = 0
EXIT_NOTHING_KEPT = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument or path; the message names it."""


@dataclass(frozen=True)
class Rules:
    min_width: int
    min_height: int
    allowed_formats: tuple[str, ...]
    # The allow-list of labels, sorted; None keeps every label.
    classes: tuple[str, ...] | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class LabelsFile:
    """A parsed `--labels` file."""

    name: str
    sha256: str
    # Normalised relative path -> label.
    labels: dict[str, str]
    # The file's own key relative to --input, when it sits inside it.
    key_inside_input: str | None = None


@dataclass(frozen=True)
class Shard:
    """This instance's share of the work: shard `index` of `count`."""

    index: int
    count: int
    # How the instances got the images: REPLICATED (all of them) or SHARDED (their own).
    distribution: str = REPLICATED

    @property
    def file_name(self) -> str:
        return shard_file_name(self.index, self.count)


@dataclass(frozen=True)
class Arguments:
    input: Path
    input_uri: str
    output: Path
    rules: Rules
    labels: LabelsFile | None = None
    workers: int = 1
    # None: one instance does everything and writes the outputs themselves.
    shard: Shard | None = None


@dataclass(frozen=True)
class Kept:
    key: str
    label: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Dropped:
    key: str
    label: str | None
    reason: str
    detail: str


@dataclass(frozen=True)
class Missing:
    key: str
    label: str


@dataclass(frozen=True)
class Listed:
    """An entry under --input: a file to check, or (with `problem`) something that is not one."""

    key: str
    # Why the entry is not a regular file (a "not a file" detail), or None.
    problem: str | None = None


@dataclass(frozen=True)
class Header:
    """What the summary says about the run, beyond the files: the same in every shard."""

    input_uri: str
    labelling: dict[str, Any]
    rules: Rules


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors already exit 2; this keeps them in the same "error:" shape.
        self.print_usage(sys.stderr)
        raise UsageError(message)




def build_parser() -> argparse.ArgumentParser:
    """The command line; parsing only, the checks on values and paths are parse_arguments'."""
    parser = _Parser(
        prog="data_quality.py",
        description="Check raw images against the QA rules and write the dataset manifest.",
    )
    parser.add_argument(
        "--input", required=True, help="folder of raw images, one sub-folder per label unless --labels is given"
    )
    parser.add_argument(
        "--input-uri",
        required=True,
        help="the S3 URI --input was copied from; manifest URIs are this plus the relative path",
    )
    parser.add_argument("--output", required=True, help="folder to write the manifest, summary and version into")
    parser.add_argument("--min-width", required=True, type=positive_int, help="smallest width kept, in pixels")
    parser.add_argument("--min-height", required=True, type=positive_int, help="smallest height kept, in pixels")
    parser.add_argument(
        "--allowed-formats",
        required=True,
        help=f"comma-separated decoded formats to keep, from: {', '.join(SUPPORTED_FORMATS)}",
    )
    parser.add_argument(
        "--labels",
        help="labels file, .csv (header `path,label`) or .json ({path: label}); paths relative to --input",
    )
    parser.add_argument("--classes", help="comma-separated labels to keep; images with other labels are dropped")
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"largest image kept, in pixels (width x height); default {DEFAULT_MAX_PIXELS}",
    )
    add_parallel_arguments(parser, "checking images", "merge_manifests.py")
    return parser


def shard_file_name(index: int, count: int) -> str:
    return f"{shard_name(index, count)}.jsonl"


def parse_shard(index: int | None, count: int | None, distribution: str, resource_config: Path) -> Shard | None:
    """The shard this instance checks, or None when it does everything."""
    try:
        found = choose_shard(index, count, resource_config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return None if found is None else Shard(found[0], found[1], distribution)


def check_output_folder(output: Path, names: Iterable[str]) -> None:
    """Raises UsageError unless `output` can be a folder holding files `names`."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"argument --output: `{output}` exists and is not a folder")
    ancestor = output
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"argument --output: `{output}` is below `{ancestor}`, which is not a folder")
    for name in names:
        target = output / name
        if (target.exists() or target.is_symlink()) and not target.is_file():
            raise UsageError(f"argument --output: `{target}` exists and is not a file")


def parse_arguments(argv: Sequence[str], resource_config: Path | None = None) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path.

    `resource_config`: SageMaker's description of the job's instances (default RESOURCE_CONFIG).
    """
    raw = build_parser().parse_args(list(argv))
    resource_config = RESOURCE_CONFIG if resource_config is None else resource_config

    formats = [part.strip().lower() for part in raw.allowed_formats.split(",") if part.strip()]
    if not formats:
        raise UsageError("argument --allowed-formats: no format given; expected e.g. `jpeg,png`")
    unknown = [name for name in formats if name not in SUPPORTED_FORMATS]
    if unknown:
        raise UsageError(
            f"argument --allowed-formats: unsupported format `{unknown[0]}`; "
            f"supported: {', '.join(SUPPORTED_FORMATS)}"
        )

    classes = None if raw.classes is None else parse_classes(raw.classes)
    shard = parse_shard(raw.shard_index, raw.shard_count, raw.input_distribution, resource_config)

    input_folder = Path(raw.input)
    if not input_folder.exists():
        raise UsageError(f"argument --input: `{input_folder}` does not exist")
    if not input_folder.is_dir():
        raise UsageError(f"argument --input: `{input_folder}` is not a folder")

    input_uri = raw.input_uri
    if not input_uri.startswith("s3://") or not input_uri[len("s3://") :].split("/")[0]:
        raise UsageError(f"argument --input-uri: `{input_uri}` is not an S3 URI (s3://bucket/prefix)")

    output_folder = Path(raw.output)
    if shard is None:
        check_output_folder(output_folder, (MANIFEST, SUMMARY, VERSION))
    else:
        check_output_folder(output_folder, ())
        check_output_folder(output_folder / SHARDS, (shard.file_name,))
    try:
        if output_folder.resolve().is_relative_to(input_folder.resolve()):
            raise UsageError(f"argument --output: `{output_folder}` is inside --input `{input_folder}`")
    except OSError as error:
        raise UsageError(f"argument --output: `{output_folder}`: {error.strerror}") from None

    labels = None if raw.labels is None else read_labels(Path(raw.labels), input_folder)

    return Arguments(
        input=input_folder,
        input_uri=input_uri,
        output=output_folder,
        # Sorted and deduplicated so summary.json does not depend on how the list was written.
        rules=Rules(raw.min_width, raw.min_height, tuple(sorted(set(formats))), classes, raw.max_pixels),
        labels=labels,
        workers=raw.workers or available_cpus(),
        shard=shard,
    )


def label_problem(label: str) -> str | None:
    """Why `label` cannot be a label, or None. Labels become class names and folder-like keys."""
    if not label:
        return "label is empty"
    if "/" in label:
        return f"label `{label}` contains `/`"
    return None


def parse_classes(text: str) -> tuple[str, ...]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("argument --classes: no label given; expected e.g. `cat,dog`")
    for name in names:
        problem = label_problem(name)
        if problem:
            raise UsageError(f"argument --classes: {problem}")
    return tuple(sorted(set(names)))


def normalise_key(text: str) -> str | None:
    """`text` as a relative POSIX path (`./` and `//` removed), or None if it is not one."""
    if not text or text.startswith("/"):
        return None
    path = PurePosixPath(text)
    if ".." in path.parts or path.as_posix() == ".":
        return None
    return path.as_posix()


def read_labels(path: Path, input_folder: Path) -> LabelsFile:
    """Parses a labels file; raises UsageError naming the file and, for a bad entry, its line."""
    where = f"argument --labels: `{path}`"
    suffix = path.suffix.lower()
    if suffix not in LABELS_FORMATS:
        raise UsageError(f"{where}: unsupported labels file type `{path.suffix or '(none)'}`; expected .csv or .json")
    if not path.is_file():
        raise UsageError(f"{where} does not exist" if not path.exists() else f"{where} is not a file")
    try:
        data = path.read_bytes()
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        text = data.decode("utf-8-sig")
    except OSError as error:
        raise UsageError(f"{where}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None
    entries = _csv_entries(text, where) if suffix == ".csv" else _json_entries(text, where)

    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, raw_path, label in entries:
        key = normalise_key(raw_path)
        if key is None:
            raise UsageError(f"{where}: line {line}: `{raw_path}` is not a relative path inside --input")
        problem = label_problem(label)
        if problem:
            raise UsageError(f"{where}: line {line}: {problem}")
        if key in labels:
            raise UsageError(f"{where}: line {line}: `{key}` is already listed on line {first_line[key]}")
        labels[key] = label
        first_line[key] = line

    key_inside_input = None
    try:
        resolved, root = path.resolve(), input_folder.resolve()
        if resolved.is_relative_to(root):
            key_inside_input = resolved.relative_to(root).as_posix()
    except OSError as error:
        raise UsageError(f"{where}: {error.strerror}") from None
    return LabelsFile(
        name=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        labels=labels,
        key_inside_input=key_inside_input,
    )


def _csv_entries(text: str, where: str) -> list[tuple[int, str, str]]:
    """(line, path, label) per data row of a `path,label` CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    entries = []
    header_seen = False
    try:
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            fields = [field.strip() for field in row]
            if not header_seen:
                if fields != CSV_HEADER:
                    raise UsageError(
                        f"{where}: line {reader.line_num}: expected the header `path,label`, found `{','.join(row)}`"
                    )
                header_seen = True
                continue
            if len(fields) != 2:
                raise UsageError(
                    f"{where}: line {reader.line_num}: expected 2 fields (path,label), found {len(fields)}"
                )
            entries.append((reader.line_num, fields[0], fields[1]))
    except csv.Error as error:
        raise UsageError(f"{where}: line {reader.line_num}: not valid CSV ({error})") from None
    if not header_seen:
        raise UsageError(f"{where}: empty; expected the header `path,label`")
    return entries


def _json_entries(text: str, where: str) -> list[tuple[int, str, str]]:
    """(line, path, label) per member of a `{path: label}` JSON object, in file order."""
    decoder = json.JSONDecoder()
    try:
        document = decoder.decode(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{where}: line {error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise UsageError(f"{where}: expected a JSON object mapping relative paths to labels")
    # json keeps neither positions nor repeated keys, so walk the (already valid) object again to
    # find each member's line.
    entries = []
    skip = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]
    index = skip(text, 0).end() + 1  # past `{`
    while True:
        index = skip(text, index).end()
        if text[index] == "}":
            break
        if text[index] == ",":
            index = skip(text, index + 1).end()
        line = text.count("\n", 0, index) + 1
        key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
        index = skip(text, index).end() + 1  # past `:`
        value, index = decoder.raw_decode(text, skip(text, index).end())
        if not isinstance(value, str):
            raise UsageError(f"{where}: line {line}: the label of `{key}` is not a string")
        entries.append((line, key.strip(), value.strip()))
    return entries


def _not_a_file(path: str) -> str:
    """Why the entry at `path`, which is neither a folder nor a readable file, is not a file."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        return f"cannot be examined: {error.strerror}"
    if stat.S_ISLNK(mode):
        try:
            target = os.stat(path).st_mode
        except FileNotFoundError:
            return "symbolic link to a missing target"
        except OSError as error:
            if error.errno == errno.ELOOP:
                return "symbolic link loop"
            return f"symbolic link that cannot be followed: {error.strerror}"
        if stat.S_ISDIR(target):
            return "symbolic link to a folder (links to folders are not followed)"
        return f"symbolic link to a {_kind(target)}"
    return _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "not a regular file"


def list_input(root: Path) -> list[Listed]:
    """Every entry under `root` but folders, as POSIX relative paths, in sorted order.

    Links to folders are reported, not followed (they could loop); nothing is opened, so a named
    pipe cannot block the listing.
    """
    found: list[Listed] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        folder = os.path.join(root, relative) if relative else str(root)
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            raise UsageError(f"argument --input: cannot list `{folder}`: {error.strerror}") from None
        for entry in entries:
            key = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(key)
                    continue
                if entry.is_file():
                    found.append(Listed(key))
                    continue
            except OSError:
                pass
            found.append(Listed(key, _not_a_file(entry.path)))
    return sorted(found, key=lambda listed: listed.key)


def list_files(root: Path) -> list[str]:
    """Every regular file under `root` (or link to one), as POSIX relative paths, sorted."""
    return [listed.key for listed in list_input(root) if listed.problem is None]


def label_of(key: str) -> str | None:
    """The top-level folder a file sits in, or None for a file directly under the input."""
    parts = PurePosixPath(key).parts
    return parts[0] if len(parts) > 1 else None


def is_hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


def printable_key(key: str) -> str:
    """`key` with bytes that are not UTF-8 (kept by the file system as surrogates) as `\\xNN`."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def image_format(image: Image.Image) -> str:
    name = (image.format or "").lower()
    return FORMAT_ALIASES.get(name, name)


def _error_detail(error: Exception) -> str:
    return str(error) or type(error).__name__


# A file's result from inspect(): ("kept", sha256, width, height) or ("dropped", reason, detail).
Inspection = tuple


def inspect(task: tuple[str, tuple[str, ...], int]) -> Inspection:
    """Reads, hashes and decodes one file; runs in a worker process, so takes and returns plain data."""
    path, allowed_formats, max_pixels = task
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        return ("dropped", DOES_NOT_DECODE, f"cannot be read: {error.strerror}")
    digest = hashlib.sha256(data).hexdigest()
    with pixel_limit(max_pixels):
        try:
            with Image.open(io.BytesIO(data)) as image:
                found_format = image_format(image)
                width, height = image.size
        except Image.DecompressionBombError as error:
            return ("dropped", TOO_LARGE, f"{_error_detail(error)}; the limit is --max-pixels {max_pixels}")
        except Exception as error:  # Pillow raises many types for bad data; all mean the same here.
            return ("dropped", DOES_NOT_DECODE, _error_detail(error))
        if found_format not in allowed_formats:
            return (
                "dropped",
                FORMAT_NOT_ALLOWED,
                f"decoded as `{found_format or 'unknown'}`; allowed: {', '.join(allowed_formats)}",
            )
        if width * height > max_pixels:
            return (
                "dropped",
                TOO_LARGE,
                f"{width}x{height} is {width * height} pixels, above --max-pixels {max_pixels}",
            )
        try:
            width, height = decode(data)
        except Exception as error:  # Pillow raises many types for bad data; all mean the same here.
            return ("dropped", DOES_NOT_DECODE, _error_detail(error))
    return ("kept", digest, width, height)


def decode(data: bytes) -> tuple[int, int]:
    """Decodes `data` as cheaply as a full check allows; returns the displayed width and height.

    verify() checks what it can without decoding (PNG chunk checksums) and leaves the image
    unusable, so the image is reopened and loaded: that catches truncated files verify() lets
    through. JPEGs load at 1/8 scale: libjpeg still decodes every entropy-coded coefficient and
    only skips most of the inverse DCT, so a truncated or corrupt stream fails as it would at
    full scale.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if image.format in DRAFT_FORMATS:
            image.draft(None, (1, 1))
        image.load()
        # After load(): a PNG's eXIf chunk may follow its pixel data.
        if image.getexif().get(EXIF_ORIENTATION) in QUARTER_TURNS:
            width, height = height, width
    return width, height


def select_files(listed: list[Listed], shard: Shard | None) -> list[Listed]:
    """The entries this instance checks."""
    if shard is None or shard.distribution == SHARDED:
        return listed
    return listed[shard.index :: shard.count]


def check_files(
    root: Path, listed: Sequence[Listed], rules: Rules, labels: LabelsFile | None, workers: int
) -> list[Kept | Dropped]:
    """Each entry's result before the duplicate rule (which needs every shard), in `listed`'s order."""
    results: list[Kept | Dropped | None] = []
    to_inspect: list[tuple[int, str]] = []
    for listed_entry in listed:
        key = listed_entry.key
        if is_hidden(key):
            results.append(Dropped(printable_key(key), None, HIDDEN, "a folder or file whose name starts with `.`"))
            continue
        if not is_utf8(key):
            results.append(Dropped(printable_key(key), None, BAD_NAME, "S3 keys are UTF-8; rename the file"))
            continue
        if labels is None:
            label = label_of(key)
            unlabelled = "file is not inside a label folder"
        else:
            label = labels.labels.get(key)
            unlabelled = f"not listed in `{labels.name}`"
        if label is None:
            results.append(Dropped(key, None, UNLABELLED, unlabelled))
            continue
        if rules.classes is not None and label not in rules.classes:
            results.append(Dropped(key, label, UNKNOWN_LABEL, f"`{label}` is not in --classes"))
            continue
        if listed_entry.problem is not None:
            results.append(Dropped(key, label, NOT_A_FILE, listed_entry.problem))
            continue
        results.append(None)
        to_inspect.append((len(results) - 1, label))

    tasks = [(str(root / listed[position].key), rules.allowed_formats, rules.max_pixels) for position, _ in to_inspect]
    for (position, label), outcome in zip(to_inspect, map_in_order(inspect, tasks, workers)):
        key = listed[position].key
        if outcome[0] == "dropped":
            results[position] = Dropped(key, label, outcome[1], outcome[2])
            continue
        _, digest, width, height = outcome
        if width < rules.min_width or height < rules.min_height:
            results[position] = Dropped(
                key, label, TOO_SMALL, f"{width}x{height} is below the minimum {rules.min_width}x{rules.min_height}"
            )
            continue
        results[position] = Kept(key, label, digest, width, height)
    return [result for result in results if result is not None]


def apply_duplicates(results: Iterable[Kept | Dropped]) -> tuple[list[Kept], list[Dropped]]:
    """Drops each candidate whose bytes an earlier kept image has, visiting them in path order."""
    kept: list[Kept] = []
    dropped: list[Dropped] = []
    kept_by_digest: dict[str, str] = {}
    for result in sorted(results, key=lambda result: result.key):
        if isinstance(result, Dropped):
            dropped.append(result)
            continue
        first = kept_by_digest.get(result.sha256)
        if first is not None:
            dropped.append(Dropped(result.key, result.label, DUPLICATE, f"same bytes as `{first}`"))
            continue
        kept_by_digest[result.sha256] = result.key
        kept.append(result)
    return kept, dropped


def missing_from(labels: LabelsFile | None, present: Iterable[str]) -> list[Missing]:
    """The paths the labels file lists that are not among `present`."""
    if labels is None:
        return []
    present_keys = set(present)
    return [Missing(key, label) for key, label in sorted(labels.labels.items()) if key not in present_keys]


def listing(root: Path, labels: LabelsFile | None) -> list[Listed]:
    listed = list_input(root)
    if labels is not None and labels.key_inside_input is not None:
        listed = [entry for entry in listed if entry.key != labels.key_inside_input]
    return listed


def check(
    root: Path, rules: Rules, labels: LabelsFile | None = None, workers: int = 1
) -> tuple[list[Kept], list[Dropped], list[Missing]]:
    """Applies the QA rules to every entry under `root`, in sorted path order."""
    listed = listing(root, labels)
    kept, dropped = apply_duplicates(check_files(root, listed, rules, labels, workers))
    return kept, dropped, missing_from(labels, (entry.key for entry in listed))


def join_uri(prefix: str, key: str) -> str:
    return f"{prefix.rstrip('/')}/{key}"


def render_manifest(kept: list[Kept], input_uri: str) -> bytes:
    lines = [
        json.dumps(
            {
                "path": image.key,
                "uri": join_uri(input_uri, image.key),
                "label": image.label,
                "sha256": image.sha256,
                "width": image.width,
                "height": image.height,
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for image in sorted(kept, key=lambda image: image.key)
    ]
    return "".join(lines).encode("utf-8")


def labelling_of(labels: LabelsFile | None) -> dict[str, Any]:
    if labels is None:
        return {"source": "folders"}
    return {"source": "labels file", "file": labels.name, "sha256": labels.sha256, "entries": len(labels.labels)}


def rules_json(rules: Rules) -> dict[str, Any]:
    return {
        "min_width": rules.min_width,
        "min_height": rules.min_height,
        "allowed_formats": list(rules.allowed_formats),
        "classes": None if rules.classes is None else list(rules.classes),
        "max_pixels": rules.max_pixels,
    }


def rules_from_json(value: dict[str, Any]) -> Rules:
    classes = value["classes"]
    return Rules(
        min_width=value["min_width"],
        min_height=value["min_height"],
        allowed_formats=tuple(value["allowed_formats"]),
        classes=None if classes is None else tuple(classes),
        max_pixels=value["max_pixels"],
    )


def render_summary(
    header: Header, kept: list[Kept], dropped: list[Dropped], missing: list[Missing], version: str
) -> bytes:
    labels: dict[str, dict[str, int]] = {}
    # With an allow-list, every allowed class is listed, even one with no image at all.
    for name in header.rules.classes or ():
        labels[name] = {"kept": 0, "dropped": 0}
    for image in kept:
        labels.setdefault(image.label, {"kept": 0, "dropped": 0})["kept"] += 1
    for file in dropped:
        if file.label is not None:
            labels.setdefault(file.label, {"kept": 0, "dropped": 0})["dropped"] += 1
    dropped_by_reason = {reason: 0 for reason in REASONS}
    for file in dropped:
        dropped_by_reason[file.reason] += 1
    summary = {
        "version": version,
        "input_uri": header.input_uri,
        "labelling": header.labelling,
        "rules": rules_json(header.rules),
        "counts": {
            "files": len(kept) + len(dropped),
            "kept": len(kept),
            "dropped": len(dropped),
            "dropped_by_reason": dropped_by_reason,
            "listed_but_missing": len(missing),
        },
        "labels": {label: labels[label] for label in sorted(labels)},
        "dropped": [
            {
                "uri": join_uri(header.input_uri, file.key),
                "label": file.label,
                "reason": file.reason,
                "detail": file.detail,
            }
            for file in sorted(dropped, key=lambda file: file.key)
        ],
        "listed_but_missing": [
            {"uri": join_uri(header.input_uri, entry.key), "label": entry.label, "reason": LISTED_BUT_MISSING}
            for entry in missing
        ],
    }
    return (json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_files(output: Path, files: dict[str, bytes]) -> None:
    """Writes `files` into `output`; on failure removes what it wrote and raises UsageError."""
    created_folder = not output.exists()
    written: list[Path] = []
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = output / name
            written.append(path)
            path.write_bytes(data)
    except OSError as error:
        for path in written:
            if path.is_file():
                path.unlink()
        if created_folder:
            try:
                output.rmdir()
            except OSError:
                pass
        where = error.filename or output
        raise UsageError(f"argument --output: cannot write `{where}`: {error.strerror or error}") from None


def report(
    header: Header, kept: list[Kept], dropped: list[Dropped], missing: list[Missing], output: Path, labels_name: str
) -> tuple[dict[str, bytes], int]:
    """The three outputs, and the exit code, after printing the results to stderr."""
    manifest = render_manifest(kept, header.input_uri)
    version = hashlib.sha256(manifest).hexdigest()
    files = {
        MANIFEST: manifest,
        SUMMARY: render_summary(header, kept, dropped, missing, version),
        VERSION: f"{version}\n".encode("ascii"),
    }
    # Progress and results go to stderr (the processing job's log); the files are the data.
    print(
        f"data quality: kept {len(kept)} of {len(kept) + len(dropped)} files; version {version}",
        file=sys.stderr,
    )
    for reason in REASONS:
        count = sum(1 for file in dropped if file.reason == reason)
        if count:
            print(f"  dropped {count}: {reason}", file=sys.stderr)
    if missing:
        print(
            f"  {len(missing)} path(s) listed in `{labels_name}` but missing, e.g. `{missing[0].key}`; see {SUMMARY}",
            file=sys.stderr,
        )
    return files, EXIT_OK if kept else EXIT_NOTHING_KEPT


def print_nothing_kept(where: str, output: Path) -> None:
    print(
        f"error: no image {where} passed QA\nhint: see {output / SUMMARY} for why each file was dropped",
        file=sys.stderr,
    )


def _json_line(value: object) -> str:
    # ASCII: a file name that is not UTF-8 survives as an escaped surrogate.
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n"


def render_shard(
    header: Header, shard: Shard, results: Sequence[Kept | Dropped], missing: Sequence[Missing]
) -> bytes:
    """A shard file: a header line, one line per file checked, one per labels-file path not found."""
    lines = [
        _json_line(
            {
                "kind": SHARD_KIND,
                "shard": shard.index,
                "shard_count": shard.count,
                "input_distribution": shard.distribution,
                "input_uri": header.input_uri,
                "labelling": header.labelling,
                "rules": rules_json(header.rules),
            }
        )
    ]
    for result in results:
        if isinstance(result, Kept):
            lines.append(
                _json_line(
                    {
                        "key": result.key,
                        "label": result.label,
                        "sha256": result.sha256,
                        "width": result.width,
                        "height": result.height,
                    }
                )
            )
        else:
            lines.append(
                _json_line({"key": result.key, "label": result.label, "reason": result.reason, "detail": result.detail})
            )
    for entry in missing:
        lines.append(_json_line({"missing": entry.key, "label": entry.label}))
    return "".join(lines).encode("ascii")


def run(arguments: Arguments) -> int:
    header = Header(arguments.input_uri, labelling_of(arguments.labels), arguments.rules)
    listed = listing(arguments.input, arguments.labels)
    mine = select_files(listed, arguments.shard)
    results = check_files(arguments.input, mine, arguments.rules, arguments.labels, arguments.workers)
    # A labels-file path another instance has is missing here only; the merge keeps the paths
    # every shard misses.
    missing = missing_from(arguments.labels, (entry.key for entry in listed))
    labels_name = arguments.labels.name if arguments.labels else ""

    if arguments.shard is not None:
        shard = arguments.shard
        write_files(arguments.output / SHARDS, {shard.file_name: render_shard(header, shard, results, missing)})
        candidates = sum(1 for result in results if isinstance(result, Kept))
        print(
            f"data quality: shard {shard.index} of {shard.count}: checked {len(results)} of {len(listed)} files, "
            f"{candidates} pass before the duplicate check; run merge_manifests.py on every shard",
            file=sys.stderr,
        )
        return EXIT_OK

    kept, dropped = apply_duplicates(results)
    files, code = report(header, kept, dropped, missing, arguments.output, labels_name)
    write_files(arguments.output, files)
    if code == EXIT_NOTHING_KEPT:
        print_nothing_kept(f"under `{arguments.input}`", arguments.output)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
        return run(arguments)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
