"""Merges the shards preprocess.py writes on several instances into its outputs.

CLI:

    merge_records.py --shards DIR --output DIR

- `--shards`: a folder holding every `shard-IIIII-of-NNNNN/` folder of one run (at any depth,
  as the shards' S3 prefix is downloaded). Each holds one `.rec` part per record output and
  `part.json`; shard 0 also holds `index/` (classes.json, split.json, records.jsonl and the
  .lst files, which follow from the split alone). All N shards must be there, planned from the
  same manifest and arguments (`dataset_version` and `split_sha256` agree), their images
  contiguous runs of the record order.
- `--output`: receives the folders preprocess.py writes on one instance (full/, train/, ...,
  index/, test-images/; each absent or empty), byte-identical to them: each output's parts are
  concatenated in shard order (RecordIO records are self-delimiting and every shard numbered its
  records from the output's first index), `.idx` is rebuilt by walking the records, and
  test-images/ is the JPEG of each test.rec record, named as test.lst names it.

Exit codes: 0 ok; 2 bad arguments, missing or inconsistent shards, or a part that is not valid
RecordIO, naming the file; what was written is removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from preprocess import (
    EXIT_OK,
    EXIT_USAGE,
    IMAGE_HEADER,
    INDEX,
    OUTPUT_FOLDERS,
    PART_FILE,
    RECORD_OUTPUTS,
    RECORDIO_MAGIC,
    SHARD_KIND,
    SPLIT_FILE,
    TEST,
    TEST_IMAGES,
    UsageError,
    _MAGIC_BYTES,
    _Parser,
    check_empty_folders,
    check_output_parent,
    remove_written,
)

SHARD_FOLDER = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
PART_HEADER = struct.Struct("<II")
LENGTH_MASK = (1 << 29) - 1


@dataclass
class Part:
    folder: Path
    index: int
    count: int
    description: dict[str, Any]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="merge_records.py",
        description="Merge preprocess.py's shards into one set of RecordIO outputs, index files and test images.",
    )
    parser.add_argument("--shards", required=True, help="folder holding every shard-*-of-*/ folder of one run")
    parser.add_argument("--output", required=True, help="folder to write one sub-folder per output into")
    return parser


def read_part(folder: Path) -> Part:
    path = folder / PART_FILE
    where = f"argument --shards: `{path}`"
    try:
        description = json.loads(path.read_bytes())
    except OSError as error:
        raise UsageError(f"{where}: cannot read ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UsageError(f"{where}: not valid JSON") from None
    if not isinstance(description, dict) or description.get("kind") != SHARD_KIND:
        raise UsageError(f"{where}: not a shard preprocess.py wrote (no `kind: {SHARD_KIND}`)")
    numbers = [("shard",), ("shard_count",), ("images", "begin"), ("images", "end")]
    numbers += [("records", name, key) for name in RECORD_OUTPUTS for key in ("first", "count")]
    for keys in [*numbers, ("dataset_version",), ("split_sha256",)]:
        value: Any = description
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or (keys in numbers and not isinstance(value, int)):
            raise UsageError(f"{where}: `{'.'.join(keys)}` is missing or not a whole number")
    return Part(folder, description["shard"], description["shard_count"], description)


def read_parts(folder: Path) -> list[Part]:
    """Every shard of one run, in index order; raises UsageError unless complete and consistent."""
    if not folder.is_dir():
        raise UsageError(f"argument --shards: `{folder}` is not a folder")
    folders = sorted(path.parent for path in folder.rglob(PART_FILE) if SHARD_FOLDER.match(path.parent.name))
    if not folders:
        raise UsageError(f"argument --shards: `{folder}` holds no shard-*-of-*/{PART_FILE}")
    parts = [read_part(path) for path in folders]
    first = parts[0]
    by_index: dict[int, Part] = {}
    for part in parts:
        same_run = all(
            part.description[key] == first.description[key] for key in ("shard_count", "dataset_version", "split_sha256")
        )
        if not same_run:
            raise UsageError(
                f"argument --shards: `{part.folder}` and `{first.folder}` come from different runs "
                "(shard counts, manifests or split arguments differ)"
            )
        if part.index in by_index:
            raise UsageError(f"argument --shards: `{part.folder}` and `{by_index[part.index].folder}` are both shard {part.index}")
        by_index[part.index] = part
    absent = [index for index in range(first.count) if index not in by_index]
    if absent:
        names = ", ".join(str(index) for index in absent[:10])
        raise UsageError(
            f"argument --shards: `{folder}` lacks shard(s) {names} of {first.count}; "
            "did every instance of the preprocess job finish?"
        )
    ordered = [by_index[index] for index in range(first.count)]
    # Contiguous runs of images and, per output, of records, from 0.
    expected_image = 0
    expected_record = {name: 0 for name in RECORD_OUTPUTS}
    for part in ordered:
        images = part.description["images"]
        if images["begin"] != expected_image:
            raise UsageError(f"argument --shards: `{part.folder / PART_FILE}`: its images start at {images['begin']}, not {expected_image}")
        expected_image = images["end"]
        for name in RECORD_OUTPUTS:
            records = part.description["records"][name]
            if records["first"] != expected_record[name]:
                raise UsageError(
                    f"argument --shards: `{part.folder / PART_FILE}`: its {name} records start at "
                    f"{records['first']}, not {expected_record[name]}"
                )
            expected_record[name] += records["count"]
    index_folder = ordered[0].folder / INDEX
    split_path = index_folder / SPLIT_FILE
    try:
        split_bytes = split_path.read_bytes()
    except OSError as error:
        raise UsageError(f"argument --shards: `{split_path}`: cannot read ({error.strerror})") from None
    if hashlib.sha256(split_bytes).hexdigest() != first.description["split_sha256"]:
        raise UsageError(f"argument --shards: `{split_path}` is not the split the shards were written for")
    totals = json.loads(split_bytes)["totals"]
    for name in RECORD_OUTPUTS:
        if expected_record[name] != totals[name]:
            raise UsageError(
                f"argument --shards: the shards hold {expected_record[name]} {name} records; split.json says {totals[name]}"
            )
    return ordered


def copy_records(source: Path, target: BinaryIO, offset: int, first: int, count: int) -> Iterator[tuple[int, bytes]]:
    """Appends the records of the part `source` to `target`; yields (byte offset in target, payload).

    Checks each record is well formed and carries the index it should (its IRHeader id).
    """
    where = f"argument --shards: `{source}`"
    with open(source, "rb") as stream:
        for number in range(count):
            start = offset
            payload = b""
            expect_continuation = False
            while True:
                header = stream.read(PART_HEADER.size)
                if len(header) < PART_HEADER.size:
                    raise UsageError(f"{where}: ends inside record {first + number}; expected {count} records")
                magic, lrecord = PART_HEADER.unpack(header)
                cflag, length = lrecord >> 29, lrecord & LENGTH_MASK
                if magic != RECORDIO_MAGIC:
                    raise UsageError(f"{where}: no RecordIO magic where a part of record {first + number} should start")
                if (cflag in (2, 3)) != expect_continuation or cflag > 3:
                    raise UsageError(f"{where}: record {first + number} has a part with cflag {cflag} out of place")
                padded = length + (-length % 4)
                body = stream.read(padded)
                if len(body) < padded:
                    raise UsageError(f"{where}: ends inside record {first + number}")
                target.write(header)
                target.write(body)
                offset += PART_HEADER.size + padded
                payload += (_MAGIC_BYTES if expect_continuation else b"") + body[:length]
                if cflag in (0, 3):
                    break
                expect_continuation = True
            if len(payload) < IMAGE_HEADER.size or IMAGE_HEADER.unpack_from(payload)[2] != first + number:
                raise UsageError(f"{where}: record {first + number} does not carry its index")
            yield start, payload
        if stream.read(1):
            raise UsageError(f"{where}: bytes after its {count} records")


def write_merged(parts: Sequence[Part], output: Path) -> int:
    """Writes every output folder; returns the number of test images."""
    for name in OUTPUT_FOLDERS:
        (output / name).mkdir(parents=True, exist_ok=True)
    source_index = parts[0].folder / INDEX
    for path in sorted(source_index.iterdir()):
        if path.is_file():
            (output / INDEX / path.name).write_bytes(path.read_bytes())
    test_names = [line.split("\t")[2] for line in (output / INDEX / f"{TEST}.lst").read_text(encoding="utf-8").splitlines()]
    for name in RECORD_OUTPUTS:
        offset = 0
        rows = []
        with open(output / name / f"{name}.rec", "wb") as target:
            for part in parts:
                records = part.description["records"][name]
                for start, payload in copy_records(
                    part.folder / f"{name}.rec", target, offset, records["first"], records["count"]
                ):
                    index = len(rows)
                    rows.append(f"{index}\t{start}\n")
                    if name == TEST:
                        (output / TEST_IMAGES / test_names[index]).write_bytes(payload[IMAGE_HEADER.size :])
                offset = target.tell()
        (output / INDEX / f"{name}.idx").write_text("".join(rows), encoding="utf-8")
    return len(test_names)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        raw = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        output = Path(raw.output)
        check_output_parent(output)
        check_empty_folders([output / name for name in OUTPUT_FOLDERS])
        parts = read_parts(Path(raw.shards))
        folders = [output / name for name in OUTPUT_FOLDERS]
        created = [folder for folder in [output, *folders] if not folder.exists()]
        try:
            tests = write_merged(parts, output)
        except OSError as error:
            remove_written(folders, created)
            raise UsageError(f"argument --output: `{output}`: {error.strerror or error}") from None
        except BaseException:
            remove_written(folders, created)
            raise
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"merge records: {len(parts)} shard(s); {tests} test images", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
