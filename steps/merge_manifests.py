"""Merges the shards data_quality.py writes on several instances into its three outputs.

CLI:

    merge_manifests.py --shards DIR --output DIR

- `--shards`: a folder holding every `shard-IIIII-of-NNNNN.jsonl` of one run (at any depth, as
  the shards' S3 prefix is downloaded). All N shards of one run must be there: the same shard
  count, the same rules, input URI and labelling, each index once, no file in two shards.
- `--output`: receives `manifest.jsonl`, `summary.json` and `version.txt`, byte-identical to
  what data_quality.py writes when one instance checks every file: the duplicate rule runs here,
  over every shard's files in sorted path order, and a path a labels file lists is "listed but
  missing" only if no shard has it.

Exit codes, as data_quality.py's: 0 ok; 1 no image passed QA (the outputs are still written);
2 bad arguments, missing or inconsistent shards, naming the file; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_quality import (
    EXIT_NOTHING_KEPT,
    EXIT_USAGE,
    MANIFEST,
    REASONS,
    SHARD_KIND,
    SUMMARY,
    VERSION,
    Dropped,
    Header,
    Kept,
    Missing,
    UsageError,
    _Parser,
    apply_duplicates,
    check_output_folder,
    print_nothing_kept,
    report,
    rules_from_json,
    write_files,
)

SHARD_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.jsonl$")


@dataclass
class ShardFile:
    path: Path
    index: int
    count: int
    # The header line, less the shard's own index.
    run: dict[str, Any]
    results: list[Kept | Dropped]
    missing: dict[str, str]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="merge_manifests.py",
        description="Merge data_quality.py's shards into one manifest, summary and version.",
    )
    parser.add_argument("--shards", required=True, help="folder holding every shard-*-of-*.jsonl of one run")
    parser.add_argument("--output", required=True, help="folder to write the manifest, summary and version into")
    return parser


def read_shard(path: Path) -> ShardFile:
    """Parses one shard file; raises UsageError naming the file and line."""
    where = f"argument --shards: `{path}`"
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as error:
        raise UsageError(f"{where}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not a shard data_quality.py wrote (not ASCII)") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{where}: line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: line {number}: expected a JSON object")
        records.append(record)
    if not records or records[0].get("kind") != SHARD_KIND:
        raise UsageError(f"{where}: line 1: not a shard data_quality.py wrote (no `kind: {SHARD_KIND}` header)")
    header = dict(records[0])
    index, count = header.pop("shard", None), header.pop("shard_count", None)
    if not isinstance(index, int) or not isinstance(count, int) or not 0 <= index < count:
        raise UsageError(f"{where}: line 1: `shard` and `shard_count` are not a shard index below a count")
    results: list[Kept | Dropped] = []
    missing: dict[str, str] = {}
    try:
        for number, record in enumerate(records[1:], start=2):
            if "missing" in record:
                missing[record["missing"]] = record["label"]
            elif "sha256" in record:
                results.append(
                    Kept(record["key"], record["label"], record["sha256"], record["width"], record["height"])
                )
            elif record.get("reason") in REASONS:
                results.append(Dropped(record["key"], record["label"], record["reason"], record["detail"]))
            else:
                raise KeyError("reason")
    except KeyError as error:
        raise UsageError(f"{where}: line {number}: missing or unknown {error}") from None
    return ShardFile(path, index, count, header, results, missing)


def read_shards(folder: Path) -> list[ShardFile]:
    """Every shard of one run, in index order; raises UsageError unless they are complete and agree."""
    if not folder.is_dir():
        raise UsageError(f"argument --shards: `{folder}` is not a folder")
    paths = sorted(path for path in folder.rglob("shard-*-of-*.jsonl") if SHARD_FILE.match(path.name))
    if not paths:
        raise UsageError(f"argument --shards: `{folder}` holds no shard-*-of-*.jsonl")
    shards = [read_shard(path) for path in paths]
    first = shards[0]
    by_index: dict[int, ShardFile] = {}
    for shard in shards:
        if shard.count != first.count or shard.run != first.run:
            raise UsageError(
                f"argument --shards: `{shard.path}` and `{first.path}` come from different runs "
                "(shard counts, rules, input URI or labels differ)"
            )
        if shard.index in by_index:
            raise UsageError(
                f"argument --shards: `{shard.path}` and `{by_index[shard.index].path}` are both shard {shard.index}"
            )
        by_index[shard.index] = shard
    absent = [index for index in range(first.count) if index not in by_index]
    if absent:
        names = ", ".join(str(index) for index in absent[:10])
        raise UsageError(
            f"argument --shards: `{folder}` lacks shard(s) {names} of {first.count}; "
            "did every instance of the data QA job finish?"
        )
    ordered = [by_index[index] for index in range(first.count)]
    seen: dict[str, int] = {}
    for shard in ordered:
        for result in shard.results:
            if result.key in seen:
                raise UsageError(
                    f"argument --shards: `{result.key}` was checked by shards {seen[result.key]} and {shard.index}; "
                    "with --input-distribution sharded each instance must get its own files (ShardedByS3Key)"
                )
            seen[result.key] = shard.index
    return ordered


def merge(shards: Sequence[ShardFile]) -> tuple[Header, list[Kept], list[Dropped], list[Missing], str]:
    """What one instance would have found: kept, dropped and missing over all shards."""
    run = shards[0].run
    header = Header(run["input_uri"], run["labelling"], rules_from_json(run["rules"]))
    kept, dropped = apply_duplicates(result for shard in shards for result in shard.results)
    # A path is missing only if every instance missed it (with sharded input each sees a part).
    missing_keys = set(shards[0].missing)
    for shard in shards[1:]:
        missing_keys &= set(shard.missing)
    missing = [Missing(key, shards[0].missing[key]) for key in sorted(missing_keys)]
    labels_name = run["labelling"].get("file", "")
    return header, kept, dropped, missing, labels_name


def main(argv: Sequence[str] | None = None) -> int:
    try:
        raw = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        output = Path(raw.output)
        check_output_folder(output, (MANIFEST, SUMMARY, VERSION))
        shards = read_shards(Path(raw.shards))
        header, kept, dropped, missing, labels_name = merge(shards)
        print(f"merge manifests: {len(shards)} shard(s)", file=sys.stderr)
        files, code = report(header, kept, dropped, missing, output, labels_name)
        write_files(output, files)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if code == EXIT_NOTHING_KEPT:
        print_nothing_kept(f"in the {len(shards)} shard(s) under `{raw.shards}`", output)
    return code


if __name__ == "__main__":
    sys.exit(main())
