"""Spreading a step's work over the cores of an instance and over the instances of a job.

Shared by data_quality.py and preprocess.py: a process pool whose results come back in the
order of the tasks (so outputs never depend on the number of workers), the pixel limit each
image is opened under, and the shard this instance runs, from the command line or from
SageMaker Processing's resource config.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

from PIL import Image

# SageMaker Processing's description of the job's instances.
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")


def available_cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _context() -> Any:
    # fork starts workers in milliseconds and they inherit the imported modules; spawn where
    # fork is unavailable.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def map_in_order(function: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> Iterator[Any]:
    """`function` over `tasks` on up to `workers` processes; results in the tasks' order.

    With one worker (or one task) everything runs in this process. Closing the iterator early
    (an error in the caller's loop) terminates the workers.
    """
    if workers <= 1 or len(tasks) <= 1:
        yield from map(function, tasks)
        return
    processes = min(workers, len(tasks))
    # Chunks amortise inter-process traffic; small enough that work stays balanced at the end.
    chunk = max(1, min(16, len(tasks) // (processes * 8)))
    with _context().Pool(processes) as pool:
        yield from pool.imap(function, tasks, chunk)


@contextlib.contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to `max_pixels`, its warnings silenced, for one image.

    Pillow refuses more than twice its limit when opening and warns above it; the steps check
    the limit themselves from the header, so the warnings are noise. The previous limit is
    restored: with one worker the image is read in the caller's process.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def shard_name(index: int, count: int) -> str:
    """How a shard's output is named: `shard-00001-of-00003`."""
    return f"shard-{index:05d}-of-{count:05d}"


def read_resource_config(path: Path) -> tuple[int, int] | None:
    """(this host's position in `hosts`, number of hosts), or None if `path` does not exist.

    Raises ValueError, with a message naming the file, if it exists but is not what SageMaker
    writes.
    """
    where = f"`{path}`"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ValueError(f"{where}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not UTF-8 text") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: line {error.lineno}: not valid JSON ({error.msg})") from None
    hosts = config.get("hosts") if isinstance(config, dict) else None
    current = config.get("current_host") if isinstance(config, dict) else None
    if not isinstance(hosts, list) or not hosts or not all(isinstance(host, str) for host in hosts):
        raise ValueError(f"{where}: `hosts` is not a non-empty list of host names")
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"{where}: `hosts` lists a host twice")
    if current not in hosts:
        raise ValueError(f"{where}: `current_host` {json.dumps(current)} is not one of `hosts`")
    # SageMaker lists hosts as algo-1, algo-2, ...: their order, not a sort ("algo-10" < "algo-2").
    return hosts.index(current), len(hosts)


def choose_shard(index: int | None, count: int | None, resource_config: Path) -> tuple[int, int] | None:
    """(index, count) of the shard this instance runs, or None when it does all the work.

    Explicit --shard-index/--shard-count win (a count of 1 still makes a shard); otherwise a
    resource config with more than one host makes one shard per host. Raises ValueError naming
    the problem.
    """
    if (index is None) != (count is None):
        raise ValueError("arguments --shard-index and --shard-count: give both or neither")
    if index is not None and count is not None:
        if index >= count:
            raise ValueError(f"argument --shard-index: `{index}` must be below --shard-count `{count}`")
        return index, count
    found = read_resource_config(resource_config)
    if found is None or found[1] == 1:
        return None
    return found


# How the instances of a sharded step got their images: every one of them, or their own.
REPLICATED, SHARDED = "replicated", "sharded"


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` must be at least 1")
    return value


def natural(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"`{text}` must be at least 0")
    return value


def add_parallel_arguments(parser: argparse.ArgumentParser, work: str, merge_script: str) -> None:
    """The options both data steps share: workers, the shard, and how the input was distributed."""
    parser.add_argument("--workers", type=positive_int, help=f"processes {work}; default: the CPUs available")
    parser.add_argument("--shard-index", type=natural, help="this instance's shard, from 0 (with --shard-count)")
    parser.add_argument("--shard-count", type=positive_int, help=f"number of shards; writes a shard for {merge_script}")
    parser.add_argument(
        "--input-distribution",
        choices=(REPLICATED, SHARDED),
        default=REPLICATED,
        help="when sharded: every instance has every image (replicated, the default) or its own (sharded)",
    )
