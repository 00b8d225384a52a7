"""Data QA and versioning: the pipeline's `DataQuality` step (see src/pipeline/generate.rs).

Reads the raw images, keeps those that pass the QA rules and writes, into `--output`:

- `manifest.jsonl`: one JSON object per kept image, lines sorted by the image's relative path,
  keys sorted: `{"height", "label", "path", "sha256", "uri", "width"}`. `path` is the image's
  POSIX path relative to `--input` (where `preprocess.py` finds it under its `--images`);
  `uri` is `--input-uri` joined with `path`, so the manifest names the S3 objects themselves.
- `summary.json`: the rules applied, where the labels came from, counts (kept, dropped per
  reason, kept/dropped per label), every dropped file with its reason, and every path a labels
  file lists that is not there.
- `version.txt`: the SHA-256 of manifest.jsonl's bytes. The same images with the same labels
  give the same manifest and so the same version; any kept image or label changing changes it.

CLI:

    data_quality.py --input DIR --input-uri s3://BUCKET/PREFIX --output DIR
                    --min-width PX --min-height PX --allowed-formats jpeg,png
                    [--labels FILE] [--classes LABEL,LABEL,...]

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

An image is kept only if it
1. has a label (else "unlabelled");
2. has a label in `--classes`, when given (else "unknown label");
3. decodes with Pillow: `verify()`, then reopened and fully loaded, so truncated files fail
   too (else "does not decode");
4. has an allowed format, judged by the decoded format, never the extension (else
   "format not allowed");
5. is at least `--min-width` wide and `--min-height` high (else "too small");
6. is not byte-for-byte identical (SHA-256) to an image already kept, files being visited in
   sorted relative-path order so the first one wins (else "duplicate").

Outputs depend only on the files' paths and bytes and on the arguments: no clock, no host, no
absolute paths, so the same inputs give byte-identical outputs.

Exit codes: 0 ok; 1 no image passed QA (the outputs are still written, for the summary);
2 bad arguments, paths or labels file, with a message naming the argument (and, for a labels
file, the line). Nothing is written when exiting 2.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

# What SageMaker's image-classification algorithm reads; matches the config's
# `pipeline.allowed_formats` validation (src/config/platform.rs).
SUPPORTED_FORMATS = ("jpeg", "png")

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
VERSION = "version.txt"

UNLABELLED = "unlabelled"
UNKNOWN_LABEL = "unknown label"
DOES_NOT_DECODE = "does not decode"
FORMAT_NOT_ALLOWED = "format not allowed"
TOO_SMALL = "too small"
DUPLICATE = "duplicate"
# In the order the checks run, so summary.json lists every reason, zero or not.
REASONS = (UNLABELLED, UNKNOWN_LABEL, DOES_NOT_DECODE, FORMAT_NOT_ALLOWED, TOO_SMALL, DUPLICATE)
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
class Arguments:
    input: Path
    input_uri: str
    output: Path
    rules: Rules
    labels: LabelsFile | None = None


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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors already exit 2; this keeps them in the same "error:" shape.
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` must be at least 1")
    return value


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
    parser.add_argument("--min-width", required=True, type=_positive_int, help="smallest width kept, in pixels")
    parser.add_argument("--min-height", required=True, type=_positive_int, help="smallest height kept, in pixels")
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
    return parser


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path."""
    raw = build_parser().parse_args(list(argv))

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

    input_folder = Path(raw.input)
    if not input_folder.exists():
        raise UsageError(f"argument --input: `{input_folder}` does not exist")
    if not input_folder.is_dir():
        raise UsageError(f"argument --input: `{input_folder}` is not a folder")

    input_uri = raw.input_uri
    if not input_uri.startswith("s3://") or not input_uri[len("s3://") :].split("/")[0]:
        raise UsageError(f"argument --input-uri: `{input_uri}` is not an S3 URI (s3://bucket/prefix)")

    output_folder = Path(raw.output)
    if output_folder.exists() and not output_folder.is_dir():
        raise UsageError(f"argument --output: `{output_folder}` exists and is not a folder")
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
        rules=Rules(raw.min_width, raw.min_height, tuple(sorted(set(formats))), classes),
        labels=labels,
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


def list_files(root: Path) -> list[str]:
    """Every regular file under `root`, as POSIX relative paths, in sorted order."""
    keys = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        relative = Path(folder).relative_to(root)
        for name in files:
            path = Path(folder) / name
            if path.is_file():
                keys.append((relative / name).as_posix())
    return sorted(keys)


def label_of(key: str) -> str | None:
    """The top-level folder a file sits in, or None for a file directly under the input."""
    parts = PurePosixPath(key).parts
    return parts[0] if len(parts) > 1 else None


def decode(path: Path) -> tuple[str, int, int]:
    """The decoded format (lowercase), width and height; raises if the image does not decode."""
    with Image.open(path) as image:
        image.verify()
    # verify() leaves the image unusable and does not decode pixel data, so reopen and load:
    # that catches truncated files verify() lets through.
    with Image.open(path) as image:
        image.load()
        return (image.format or "").lower(), image.width, image.height


def check(
    root: Path, rules: Rules, labels: LabelsFile | None = None
) -> tuple[list[Kept], list[Dropped], list[Missing]]:
    """Applies the QA rules to every file under `root`, in sorted path order."""
    kept: list[Kept] = []
    dropped: list[Dropped] = []
    kept_by_digest: dict[str, str] = {}
    keys = list_files(root)
    if labels is not None and labels.key_inside_input is not None:
        keys = [key for key in keys if key != labels.key_inside_input]
    for key in keys:
        if labels is None:
            label = label_of(key)
            unlabelled = "file is not inside a label folder"
        else:
            label = labels.labels.get(key)
            unlabelled = f"not listed in `{labels.name}`"
        if label is None:
            dropped.append(Dropped(key, None, UNLABELLED, unlabelled))
            continue
        if rules.classes is not None and label not in rules.classes:
            dropped.append(Dropped(key, label, UNKNOWN_LABEL, f"`{label}` is not in --classes"))
            continue
        path = root / key
        try:
            data = path.read_bytes()
        except OSError as error:
            dropped.append(Dropped(key, label, DOES_NOT_DECODE, f"cannot be read: {error.strerror}"))
            continue
        try:
            image_format, width, height = decode(path)
        except Exception as error:  # Pillow raises many types for bad data; all mean the same here.
            detail = str(error) or type(error).__name__
            dropped.append(Dropped(key, label, DOES_NOT_DECODE, _relative_detail(detail, root)))
            continue
        if image_format not in rules.allowed_formats:
            dropped.append(
                Dropped(
                    key,
                    label,
                    FORMAT_NOT_ALLOWED,
                    f"decoded as `{image_format or 'unknown'}`; allowed: {', '.join(rules.allowed_formats)}",
                )
            )
            continue
        if width < rules.min_width or height < rules.min_height:
            dropped.append(
                Dropped(
                    key,
                    label,
                    TOO_SMALL,
                    f"{width}x{height} is below the minimum {rules.min_width}x{rules.min_height}",
                )
            )
            continue
        digest = hashlib.sha256(data).hexdigest()
        first = kept_by_digest.get(digest)
        if first is not None:
            dropped.append(Dropped(key, label, DUPLICATE, f"same bytes as `{first}`"))
            continue
        kept_by_digest[digest] = key
        kept.append(Kept(key, label, digest, width, height))

    missing: list[Missing] = []
    if labels is not None:
        present = set(keys)
        missing = [Missing(key, label) for key, label in sorted(labels.labels.items()) if key not in present]
    return kept, dropped, missing


def _relative_detail(detail: str, root: Path) -> str:
    # Pillow's messages can name the absolute path, which would make outputs depend on where
    # the input was mounted.
    return detail.replace(str(root) + os.sep, "")


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


def render_summary(
    arguments: Arguments, kept: list[Kept], dropped: list[Dropped], missing: list[Missing], version: str
) -> bytes:
    labels: dict[str, dict[str, int]] = {}
    # With an allow-list, every allowed class is listed, even one with no image at all.
    for name in arguments.rules.classes or ():
        labels[name] = {"kept": 0, "dropped": 0}
    for image in kept:
        labels.setdefault(image.label, {"kept": 0, "dropped": 0})["kept"] += 1
    for file in dropped:
        if file.label is not None:
            labels.setdefault(file.label, {"kept": 0, "dropped": 0})["dropped"] += 1
    dropped_by_reason = {reason: 0 for reason in REASONS}
    for file in dropped:
        dropped_by_reason[file.reason] += 1
    if arguments.labels is None:
        labelling: dict[str, object] = {"source": "folders"}
    else:
        labelling = {
            "source": "labels file",
            "file": arguments.labels.name,
            "sha256": arguments.labels.sha256,
            "entries": len(arguments.labels.labels),
        }
    summary = {
        "version": version,
        "input_uri": arguments.input_uri,
        "labelling": labelling,
        "rules": {
            "min_width": arguments.rules.min_width,
            "min_height": arguments.rules.min_height,
            "allowed_formats": list(arguments.rules.allowed_formats),
            "classes": None if arguments.rules.classes is None else list(arguments.rules.classes),
        },
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
                "uri": join_uri(arguments.input_uri, file.key),
                "label": file.label,
                "reason": file.reason,
                "detail": file.detail,
            }
            for file in sorted(dropped, key=lambda file: file.key)
        ],
        "listed_but_missing": [
            {"uri": join_uri(arguments.input_uri, entry.key), "label": entry.label, "reason": LISTED_BUT_MISSING}
            for entry in missing
        ],
    }
    return (json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def run(arguments: Arguments) -> int:
    kept, dropped, missing = check(arguments.input, arguments.rules, arguments.labels)
    manifest = render_manifest(kept, arguments.input_uri)
    version = hashlib.sha256(manifest).hexdigest()
    summary = render_summary(arguments, kept, dropped, missing, version)

    arguments.output.mkdir(parents=True, exist_ok=True)
    (arguments.output / MANIFEST).write_bytes(manifest)
    (arguments.output / SUMMARY).write_bytes(summary)
    (arguments.output / VERSION).write_bytes(f"{version}\n".encode("ascii"))

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
        assert arguments.labels is not None
        print(
            f"  {len(missing)} path(s) listed in `{arguments.labels.name}` but missing, "
            f"e.g. `{missing[0].key}`; see {SUMMARY}",
            file=sys.stderr,
        )
    if not kept:
        print(
            f"error: no image under `{arguments.input}` passed QA\n"
            f"hint: see {arguments.output / SUMMARY} for why each file was dropped",
            file=sys.stderr,
        )
        return EXIT_NOTHING_KEPT
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run(arguments)


if __name__ == "__main__":
    sys.exit(main())
