"""Data QA and versioning: the pipeline's `DataQuality` step (see src/pipeline/generate.rs).

Reads the raw images, keeps those that pass the QA rules and writes, into `--output`:

- `manifest.jsonl`: one JSON object per kept image, lines sorted by the image's relative path,
  keys sorted: `{"height", "label", "sha256", "uri", "width"}`. `uri` is `--input-uri` joined
  with the image's path relative to `--input`, so the manifest names the S3 objects themselves.
- `summary.json`: the rules applied, counts (kept, dropped per reason, kept/dropped per label)
  and every dropped file with its reason.
- `version.txt`: the SHA-256 of manifest.jsonl's bytes. The same images give the same
  manifest and so the same version; any kept image changing changes it.

Input layout: one sub-folder per label, the folder's name being the label:

    <input>/cat/0001.jpg  -> label "cat"
    <input>/dog/a/b.png   -> label "dog" (deeper folders belong to their top-level label)
    <input>/stray.jpg     -> dropped as "unlabelled"

A labels CSV (file name -> label) is not supported yet; only the folder layout is.

An image is kept only if it
1. sits inside a label folder (else "unlabelled");
2. decodes with Pillow: `verify()`, then reopened and fully loaded, so truncated files fail
   too (else "does not decode");
3. has an allowed format, judged by the decoded format, never the extension (else
   "format not allowed");
4. is at least `--min-width` wide and `--min-height` high (else "too small");
5. is not byte-for-byte identical (SHA-256) to an image already kept, files being visited in
   sorted relative-path order so the first one wins (else "duplicate").

Outputs depend only on the files' paths and bytes and on the arguments: no clock, no host, no
absolute paths, so the same inputs give byte-identical outputs.

Exit codes: 0 ok; 1 no image passed QA (the outputs are still written, for the summary);
2 bad arguments or paths, with a message naming the argument.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from PIL import Image

# What SageMaker's image-classification algorithm reads; matches the config's
# `pipeline.allowed_formats` validation (src/config/platform.rs).
SUPPORTED_FORMATS = ("jpeg", "png")

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
VERSION = "version.txt"

UNLABELLED = "unlabelled"
DOES_NOT_DECODE = "does not decode"
FORMAT_NOT_ALLOWED = "format not allowed"
TOO_SMALL = "too small"
DUPLICATE = "duplicate"
# In the order the checks run, so summary.json lists every reason, zero or not.
REASONS = (UNLABELLED, DOES_NOT_DECODE, FORMAT_NOT_ALLOWED, TOO_SMALL, DUPLICATE)

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


@dataclass(frozen=True)
class Arguments:
    input: Path
    input_uri: str
    output: Path
    rules: Rules


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


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="data_quality.py",
        description="Check raw images against the QA rules and write the dataset manifest.",
    )
    parser.add_argument("--input", required=True, help="folder of raw images, one sub-folder per label")
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
    return parser


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """Parses and checks `argv`; raises UsageError naming the bad argument or path."""
    raw = _parser().parse_args(list(argv))

    formats = [part.strip().lower() for part in raw.allowed_formats.split(",") if part.strip()]
    if not formats:
        raise UsageError("argument --allowed-formats: no format given; expected e.g. `jpeg,png`")
    unknown = [name for name in formats if name not in SUPPORTED_FORMATS]
    if unknown:
        raise UsageError(
            f"argument --allowed-formats: unsupported format `{unknown[0]}`; "
            f"supported: {', '.join(SUPPORTED_FORMATS)}"
        )

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

    return Arguments(
        input=input_folder,
        input_uri=input_uri,
        output=output_folder,
        # Sorted and deduplicated so summary.json does not depend on how the list was written.
        rules=Rules(raw.min_width, raw.min_height, tuple(sorted(set(formats)))),
    )


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


def check(root: Path, rules: Rules) -> tuple[list[Kept], list[Dropped]]:
    """Applies the QA rules to every file under `root`, in sorted path order."""
    kept: list[Kept] = []
    dropped: list[Dropped] = []
    kept_by_digest: dict[str, str] = {}
    for key in list_files(root):
        label = label_of(key)
        if label is None:
            dropped.append(Dropped(key, None, UNLABELLED, "file is not inside a label folder"))
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
    return kept, dropped


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


def render_summary(arguments: Arguments, kept: list[Kept], dropped: list[Dropped], version: str) -> bytes:
    labels: dict[str, dict[str, int]] = {}
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
        "input_uri": arguments.input_uri,
        "rules": {
            "min_width": arguments.rules.min_width,
            "min_height": arguments.rules.min_height,
            "allowed_formats": list(arguments.rules.allowed_formats),
        },
        "counts": {
            "files": len(kept) + len(dropped),
            "kept": len(kept),
            "dropped": len(dropped),
            "dropped_by_reason": dropped_by_reason,
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
    }
    return (json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def run(arguments: Arguments) -> int:
    kept, dropped = check(arguments.input, arguments.rules)
    manifest = render_manifest(kept, arguments.input_uri)
    version = hashlib.sha256(manifest).hexdigest()
    summary = render_summary(arguments, kept, dropped, version)

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
