"""Merges the shards preprocess.py writes on several instances into its outputs.

CLI:

    merge_records.py --shards DIR --output DIR

- `--shards`: a folder holding every `shard-IIIII-of-NNNNN/` folder of one run (at any depth,
  as the shards' S3 prefix is downloaded). Each holds one `.rec` part per record output and
  `part.json`; shard 0 also holds `index/` (classes.json, split.json, records.jsonl and the
  .lst files, which follow from the split alone). All N shards must be there, planned from the
  same manifest and arguments (`dataset_version` and `split_sha256` agree) with the same
  `--input-distribution`.
- `--output`: receives the folders preprocess.py writes on one instance (full/, train/, ...,
  index/, test-images/; each absent or empty), byte-identical to them; `.idx` is rebuilt by
  walking the records, and test-images/ is the JPEG of each test.rec record, named as test.lst
  names it.

How the parts are joined depends on how the shards got their images:
- replicated: each shard converted a contiguous run of the record order, so each output's parts
  are concatenated in shard order (RecordIO records are self-delimiting and every shard numbered
  its records from the output's first index);
- sharded: each shard converted the images it was given, anywhere in the record order; its part
  of an output holds its records in increasing index (the IRHeader id, the record's index in the
  whole output) and part.json lists those indices. Before writing anything, the lists must cover
  every index of every output exactly once: an image no shard converted (its file reached no
  instance) or one converted by two shards (the input was not really sharded) exits 2 naming its
  manifest path. The parts are then merged by index, a k-way merge reading one record of each
  part at a time.

Exit codes: 0 ok; 2 bad arguments, missing or inconsistent shards, images converted by no shard
or by several, or a part that is not valid RecordIO, naming the file; what was written is removed.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import re
import struct
import sys
from array import array
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
    RECORDS_FILE,
    REPLICATED,
    SHARD_KIND,
    SHARDED,
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

    @property
    def distribution(self) -> str:
        # Parts written before --input-distribution existed are replicated ones.
        return self.description.get("input_distribution", REPLICATED)


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
    distribution = description.get("input_distribution", REPLICATED)
    if distribution not in (REPLICATED, SHARDED):
        raise UsageError(f"{where}: `input_distribution` is neither {REPLICATED} nor {SHARDED}")
    numbers = [("shard",), ("shard_count",)]
    if distribution == REPLICATED:
        numbers += [("images", "begin"), ("images", "end")]
        numbers += [("records", name, key) for name in RECORD_OUTPUTS for key in ("first", "count")]
    else:
        numbers += [("records", name, "count") for name in RECORD_OUTPUTS]
    for keys in [*numbers, ("dataset_version",), ("split_sha256",)]:
        value: Any = description
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or (keys in numbers and not isinstance(value, int)):
            raise UsageError(f"{where}: `{'.'.join(keys)}` is missing or not a whole number")
    if distribution == SHARDED:
        for name in RECORD_OUTPUTS:
            records = description["records"][name]
            indices = records.get("indices")
            if not isinstance(indices, list) or not all(type(value) is int for value in indices):
                raise UsageError(f"{where}: `records.{name}.indices` is missing or not a list of whole numbers")
            if len(indices) != records["count"]:
                raise UsageError(f"{where}: `records.{name}` lists {len(indices)} indices, not its count {records['count']}")
            if any(later <= earlier for earlier, later in zip(indices, indices[1:])):
                raise UsageError(f"{where}: `records.{name}.indices` are not in increasing order")
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
        if not same_run or part.distribution != first.distribution:
            raise UsageError(
                f"argument --shards: `{part.folder}` and `{first.folder}` come from different runs "
                "(shard counts, manifests, split arguments or input distributions differ)"
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
    index_folder = ordered[0].folder / INDEX
    split_path = index_folder / SPLIT_FILE
    try:
        split_bytes = split_path.read_bytes()
    except OSError as error:
        raise UsageError(f"argument --shards: `{split_path}`: cannot read ({error.strerror})") from None
    if hashlib.sha256(split_bytes).hexdigest() != first.description["split_sha256"]:
        raise UsageError(f"argument --shards: `{split_path}` is not the split the shards were written for")
    totals = json.loads(split_bytes)["totals"]
    if first.distribution == SHARDED:
        check_coverage(ordered, totals, index_folder / RECORDS_FILE)
        return ordered
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
    for name in RECORD_OUTPUTS:
        if expected_record[name] != totals[name]:
            raise UsageError(
                f"argument --shards: the shards hold {expected_record[name]} {name} records; split.json says {totals[name]}"
            )
    return ordered


def _paths_of(records_file: Path, indices: set[int]) -> dict[int, str]:
    """The manifest path of each `full` record index in `indices`, from records.jsonl (read line by line)."""
    found: dict[int, str] = {}
    with open(records_file, "rb") as stream:
        for line in stream:
            record = json.loads(line)
            if record["output"] == RECORD_OUTPUTS[0] and record["index"] in indices:
                found[record["index"]] = record["path"]
    return found


def check_coverage(parts: Sequence[Part], totals: dict[str, int], records_file: Path) -> None:
    """Raises UsageError unless the parts of a sharded run hold every record of every output exactly once.

    An image no shard converted, or one two shards converted, is named by its manifest path.
    """
    for name in RECORD_OUTPUTS:
        total = totals[name]
        # The shard holding each record; -1: none yet. 4 bytes a record.
        owner = array("i", [-1]) * total
        twice: list[tuple[int, int, int]] = []
        for part in parts:
            indices = part.description["records"][name]["indices"]
            if indices and not 0 <= indices[0] <= indices[-1] < total:
                raise UsageError(
                    f"argument --shards: `{part.folder / PART_FILE}`: a {name} record index is outside 0-{total - 1}"
                )
            for index in indices:
                if owner[index] != -1:
                    twice.append((index, owner[index], part.index))
                else:
                    owner[index] = part.index
        missing = [index for index in range(total) if owner[index] == -1]
        if not missing and not twice:
            continue
        if name != RECORD_OUTPUTS[0]:
            # Every image is in `full`: with `full` complete, a gap elsewhere is a damaged part.
            raise UsageError(
                f"argument --shards: the shards' {name} records do not match split.json "
                f"({len(missing)} missing, {len(twice)} twice) although every image was converted once"
            )
        paths = _paths_of(records_file, set(missing) | {index for index, _, _ in twice})
        if missing:
            names = ", ".join(f"`{paths.get(index, index)}`" for index in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise UsageError(
                f"argument --shards: {len(missing)} manifest image(s) were converted by no shard: {names}{more}; "
                "with --input-distribution sharded each must be under --images on one instance "
                "(was the raw input changed or cut after data QA?)"
            )
        index, earlier, later = twice[0]
        more = f" (and {len(twice) - 1} more images)" if len(twice) > 1 else ""
        raise UsageError(
            f"argument --shards: `{paths.get(index, index)}` was converted by shards {earlier} and {later}{more}; "
            "with --input-distribution sharded each image must reach one instance only "
            "(was the raw input FullyReplicated?)"
        )


def read_records(source: Path, indices: Iterator[int], count: int) -> Iterator[tuple[int, bytes, bytes]]:
    """The records of the part `source`: (index, the record's bytes as stored, its payload).

    `indices` are the indices the records must carry (their IRHeader id), in order; checks each
    record is well formed.
    """
    where = f"argument --shards: `{source}`"
    with open(source, "rb") as stream:
        for index in indices:
            stored = []
            payload = b""
            expect_continuation = False
            while True:
                header = stream.read(PART_HEADER.size)
                if len(header) < PART_HEADER.size:
                    raise UsageError(f"{where}: ends inside record {index}; expected {count} records")
                magic, lrecord = PART_HEADER.unpack(header)
                cflag, length = lrecord >> 29, lrecord & LENGTH_MASK
                if magic != RECORDIO_MAGIC:
                    raise UsageError(f"{where}: no RecordIO magic where a part of record {index} should start")
                if (cflag in (2, 3)) != expect_continuation or cflag > 3:
                    raise UsageError(f"{where}: record {index} has a part with cflag {cflag} out of place")
                padded = length + (-length % 4)
                body = stream.read(padded)
                if len(body) < padded:
                    raise UsageError(f"{where}: ends inside record {index}")
                stored += [header, body]
                payload += (_MAGIC_BYTES if expect_continuation else b"") + body[:length]
                if cflag in (0, 3):
                    break
                expect_continuation = True
            if len(payload) < IMAGE_HEADER.size or IMAGE_HEADER.unpack_from(payload)[2] != index:
                raise UsageError(f"{where}: record {index} does not carry its index")
            yield index, b"".join(stored), payload
        if stream.read(1):
            raise UsageError(f"{where}: bytes after its {count} records")


def copy_records(source: Path, target: BinaryIO, offset: int, first: int, count: int) -> Iterator[tuple[int, bytes]]:
    """Appends the records of the part `source` to `target`; yields (byte offset in target, payload).

    Checks each record is well formed and carries the index it should (its IRHeader id).
    """
    for _, stored, payload in read_records(source, iter(range(first, first + count)), count):
        target.write(stored)
        yield offset, payload
        offset += len(stored)


def merge_by_index(parts: Sequence[Part], name: str, target: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Writes the records of every part of output `name` to `target` in index order (a k-way merge
    holding one record per part); yields (byte offset in target, payload)."""
    streams = []
    for part in parts:
        records = part.description["records"][name]
        streams.append(read_records(part.folder / f"{name}.rec", iter(records["indices"]), records["count"]))
    offset = 0
    for expected, (index, stored, payload) in enumerate(heapq.merge(*streams, key=lambda record: record[0])):
        # check_coverage made sure of it; a part that changed since would show here.
        if index != expected:
            raise UsageError(f"argument --shards: the {name} records jump from {expected - 1} to {index}")
        target.write(stored)
        yield offset, payload
        offset += len(stored)


def _records_in_order(parts: Sequence[Part], name: str, target: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Writes output `name`'s records to `target` in index order; yields (byte offset, payload)."""
    if parts[0].distribution == SHARDED:
        yield from merge_by_index(parts, name, target)
        return
    offset = 0
    for part in parts:
        records = part.description["records"][name]
        yield from copy_records(part.folder / f"{name}.rec", target, offset, records["first"], records["count"])
        offset = target.tell()


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
        rows = []
        with open(output / name / f"{name}.rec", "wb") as target:
            for start, payload in _records_in_order(parts, name, target):
                index = len(rows)
                rows.append(f"{index}\t{start}\n")
                if name == TEST:
                    (output / TEST_IMAGES / test_names[index]).write_bytes(payload[IMAGE_HEADER.size :])
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
