"""The data steps on several cores and several instances give the bytes one core gives.

Worker counts (1, 2, 3) and shard counts (1, 2, 3; replicated or sharded input; shards from
--shard-index/--shard-count or from SageMaker's resourceconfig.json) must not change a byte of
the manifest, the summary, the dataset version, the RecordIO files, their indexes or the test
images.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import pytest
from PIL import Image

STEPS = Path(__file__).resolve().parents[2] / "steps"
SAMPLES = Path(__file__).resolve().parent / "samples"
sys.path.insert(0, str(STEPS))

import data_quality  # noqa: E402
import merge_manifests  # noqa: E402
import merge_records  # noqa: E402
import parallel  # noqa: E402
import preprocess  # noqa: E402

INPUT_URI = "s3://data-bucket/raw/photos"


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def image_bytes(size: tuple[int, int], colour: tuple[int, int, int], image_format: str) -> bytes:
    import io

    image = Image.new("RGB", size, colour)
    image.putpixel((0, 0), tuple(255 - channel for channel in colour))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of real and generated images, with every kind of drop along the way."""
    root = tmp_path_factory.mktemp("parallel") / "raw"
    photos = [(SAMPLES / name).read_bytes() for name in ("hopper.jpg", "flower.jpg", "frame_size.mpo")]
    for label_number, label in enumerate(("cat", "dog", "owl")):
        for number in range(9):
            colour = (label_number * 80, number * 25, 100)
            image_format = "PNG" if number % 3 == 0 else "JPEG"
            suffix = "png" if image_format == "PNG" else "jpg"
            put(root / label / f"{number:02d}.{suffix}", image_bytes((40 + number, 36), colour, image_format))
        put(root / label / "photo.jpg", photos[label_number])
    # Duplicates whose first copy (by path) sits at various shard positions.
    put(root / "owl" / "zz-copy.jpg", (root / "cat" / "01.jpg").read_bytes())
    put(root / "cat" / "00-copy.jpg", (root / "owl" / "08.jpg").read_bytes())
    put(root / "dog" / "broken.jpg", (SAMPLES / "truncated_jpeg.jpg").read_bytes())
    put(root / "dog" / "tiny.png", image_bytes((8, 8), (1, 2, 3), "PNG"))
    put(root / "dog" / "anim.gif", image_bytes((40, 40), (4, 5, 6), "GIF"))
    put(root / ".ipynb_checkpoints" / "photo-checkpoint.jpg", photos[0])
    put(root / "stray.jpg", photos[1])
    (root / "cat" / "dangling.jpg").symlink_to("nowhere.jpg")
    return root


def quality_arguments(root: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--input", str(root), "--input-uri", INPUT_URI, "--output", str(output),
        "--min-width", "32", "--min-height", "32", "--allowed-formats", "jpeg,png", *extra,
    ]  # fmt: skip


def quality_files(output: Path) -> dict[str, bytes]:
    return {name: (output / name).read_bytes() for name in ("manifest.jsonl", "summary.json", "version.txt")}


def all_files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def single(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Data QA's outputs from one worker on one instance: what every other run must match."""
    output = tmp_path_factory.mktemp("single") / "out"
    assert data_quality.main(quality_arguments(raw, output, "--workers", "1")) == 0
    files = quality_files(output)
    summary = json.loads(files["summary.json"])
    # The fixture exercises every path: kept files, each kind of drop, duplicates.
    assert summary["counts"]["kept"] == 30
    assert {reason for reason, count in summary["counts"]["dropped_by_reason"].items() if count} == {
        "hidden", "unlabelled", "not a file", "does not decode", "format not allowed", "too small", "duplicate",
    }  # fmt: skip
    return files


# --- workers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 3])
def test_data_quality_outputs_do_not_depend_on_the_number_of_workers(
    raw: Path, single: dict[str, bytes], tmp_path: Path, workers: int
) -> None:
    output = tmp_path / "out"
    assert data_quality.main(quality_arguments(raw, output, "--workers", str(workers))) == 0
    assert quality_files(output) == single


def preprocess_arguments(manifest: Path, images: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--manifest", str(manifest), "--images", str(images), "--output", str(output),
        "--image-width", "24", "--image-height", "20", "--train-ratio", "0.6", "--validation-ratio", "0.2",
        "--test-ratio", "0.2", "--tuning-fraction", "0.5", "--seed", "3", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def manifest_folder(raw: Path, single: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "manifest.jsonl").write_bytes(single["manifest.jsonl"])
    return folder


@pytest.fixture(scope="module")
def single_records(raw: Path, manifest_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    output = tmp_path_factory.mktemp("records") / "out"
    assert preprocess.main(preprocess_arguments(manifest_folder, raw, output, "--workers", "1")) == 0
    files = all_files(output)
    totals = json.loads(files["index/split.json"])["totals"]
    assert all(totals[name] > 0 for name in preprocess.RECORD_OUTPUTS), totals
    return files


@pytest.mark.parametrize("workers", [2, 3])
def test_preprocess_outputs_do_not_depend_on_the_number_of_workers(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path, workers: int
) -> None:
    output = tmp_path / "out"
    assert preprocess.main(preprocess_arguments(manifest_folder, raw, output, "--workers", str(workers))) == 0
    assert all_files(output) == single_records


def test_an_error_in_a_worker_stops_the_run_and_names_the_first_bad_image(
    raw: Path, single: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "raw"
    shutil.copytree(raw, images, symlinks=True)
    manifest = [json.loads(line) for line in single["manifest.jsonl"].decode().splitlines()]
    # Two images changed after QA: the message names the one first in record order.
    changed = [entry["path"] for entry in manifest[:2]]
    for path in changed:
        (images / path).write_bytes(b"changed")
    folder = tmp_path / "manifest"
    folder.mkdir()
    (folder / "manifest.jsonl").write_bytes(single["manifest.jsonl"])
    output = tmp_path / "out"
    assert preprocess.main(preprocess_arguments(folder, images, output, "--workers", "3")) == 2
    ranked = sorted(changed, key=lambda path: hashlib.sha256(f"3:{path}".encode()).hexdigest())
    error = capsys.readouterr().err
    assert f"`{images / ranked[0]}`" in error and "it changed after QA" in error
    assert not output.exists()


# --- data QA shards -----------------------------------------------------------------------------------


def run_quality_shards(raw_folders: list[Path], tmp_path: Path, *extra: str) -> Path:
    """Runs one data QA shard per folder of `raw_folders` and merges them; returns the merged output."""
    count = len(raw_folders)
    shards = tmp_path / "shards"
    for index, folder in enumerate(raw_folders):
        # Each instance writes under its own --output; the job uploads them all to one prefix.
        instance_output = tmp_path / f"instance-{index}"
        arguments = quality_arguments(folder, instance_output, "--shard-index", str(index), "--shard-count", str(count))
        assert data_quality.main([*arguments, "--workers", "2", *extra]) == 0
        assert not (instance_output / "manifest.jsonl").exists()
        for path in (instance_output / "shards").iterdir():
            put(shards / "shards" / path.name, path.read_bytes())
    merged = tmp_path / "merged"
    assert merge_manifests.main(["--shards", str(shards), "--output", str(merged)]) == 0
    return merged


@pytest.mark.parametrize("count", [1, 2, 3])
def test_data_quality_shards_merge_into_the_single_instance_outputs(
    raw: Path, single: dict[str, bytes], tmp_path: Path, count: int
) -> None:
    merged = run_quality_shards([raw] * count, tmp_path)
    assert quality_files(merged) == single


@pytest.mark.parametrize("count", [2, 3])
def test_data_quality_shards_of_sharded_input_merge_into_the_single_instance_outputs(
    raw: Path, single: dict[str, bytes], tmp_path: Path, count: int
) -> None:
    # As S3 ShardedByS3Key does: each instance gets its own files (here: by a hash of the key).
    folders = [tmp_path / f"input-{index}" for index in range(count)]
    for path in sorted(raw.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        key = path.relative_to(raw).as_posix()
        target = folders[int(hashlib.sha256(key.encode()).hexdigest(), 16) % count] / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(path.readlink())
        else:
            shutil.copyfile(path, target)
    for folder in folders:
        folder.mkdir(exist_ok=True)
    merged = run_quality_shards(folders, tmp_path, "--input-distribution", "sharded")
    assert quality_files(merged) == single


def test_labels_file_paths_are_missing_only_if_no_shard_has_them(raw: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\ncat/01.jpg,a\ndog/02.jpg,b\nowl/photo.jpg,c\ngone.jpg,a\n", encoding="utf-8")
    single_output = tmp_path / "single"
    assert data_quality.main(quality_arguments(raw, single_output, "--labels", str(labels), "--workers", "1")) == 0
    # Sharded input: each shard misses most listed paths, the merge only the one nobody has.
    folders = [tmp_path / "input-0", tmp_path / "input-1"]
    for index, key in enumerate(["cat/01.jpg", "dog/02.jpg", "owl/photo.jpg"]):
        put(folders[index % 2] / key, (raw / key).read_bytes())
    merged = run_quality_shards(folders, tmp_path / "run", "--input-distribution", "sharded", "--labels", str(labels))
    assert quality_files(merged)["manifest.jsonl"] == quality_files(single_output)["manifest.jsonl"]
    summary = json.loads(quality_files(merged)["summary.json"])
    assert [entry["uri"] for entry in summary["listed_but_missing"]] == [f"{INPUT_URI}/gone.jpg"]


def test_the_resource_config_makes_each_instance_a_shard(
    raw: Path, single: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "resourceconfig.json"
    shards = tmp_path / "shards"
    hosts = ["algo-1", "algo-2", "algo-3"]
    for host in hosts:
        config.write_text(json.dumps({"current_host": host, "hosts": hosts, "network_interface_name": "eth0"}))
        monkeypatch.setattr(data_quality, "RESOURCE_CONFIG", config)
        assert data_quality.main(quality_arguments(raw, shards, "--workers", "1")) == 0
    assert sorted(path.name for path in (shards / "shards").iterdir()) == [
        "shard-00000-of-00003.jsonl", "shard-00001-of-00003.jsonl", "shard-00002-of-00003.jsonl",
    ]  # fmt: skip
    merged = tmp_path / "merged"
    assert merge_manifests.main(["--shards", str(shards), "--output", str(merged)]) == 0
    assert quality_files(merged) == single


def test_one_host_in_the_resource_config_is_a_plain_run(raw: Path, single: dict[str, bytes], tmp_path: Path) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    arguments = data_quality.parse_arguments(quality_arguments(raw, tmp_path / "out"), resource_config=config)
    assert arguments.shard is None
    assert data_quality.run(arguments) == 0
    assert quality_files(tmp_path / "out") == single


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"current_host": "algo-9", "hosts": ["algo-1", "algo-2"]}, '`current_host` "algo-9" is not one of `hosts`'),
        ({"current_host": "algo-1", "hosts": []}, "`hosts` is not a non-empty list of host names"),
        ({"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]}, "`hosts` lists a host twice"),
    ],
)
def test_a_malformed_resource_config_exits_2_naming_it(tmp_path: Path, config: dict, message: str) -> None:
    path = tmp_path / "resourceconfig.json"
    path.write_text(json.dumps(config))
    with pytest.raises(data_quality.UsageError, match="resourceconfig.json`: " + message.replace("(", r"\(")):
        data_quality.parse_arguments(quality_arguments(tmp_path, tmp_path / "out"), resource_config=path)


def test_resource_config_hosts_keep_their_order_not_a_sort(tmp_path: Path) -> None:
    path = tmp_path / "resourceconfig.json"
    hosts = [f"algo-{number}" for number in range(1, 12)]
    path.write_text(json.dumps({"current_host": "algo-10", "hosts": hosts}))
    assert parallel.read_resource_config(path) == (9, 11)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shard-index", "1"], "arguments --shard-index and --shard-count: give both or neither"),
        (["--shard-index", "3", "--shard-count", "3"], "argument --shard-index: `3` must be below --shard-count `3`"),
        (["--shard-index", "-1", "--shard-count", "3"], "argument --shard-index: `-1` must be at least 0"),
        (["--workers", "0"], "argument --workers: `0` must be at least 1"),
    ],
)
def test_bad_shard_and_worker_options_exit_2(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert data_quality.main(quality_arguments(raw, tmp_path / "out", *extra)) == 2
    assert message in capsys.readouterr().err
    assert preprocess.main(preprocess_arguments(tmp_path, raw, tmp_path / "pre", *extra)) == 2
    assert message in capsys.readouterr().err


def test_merging_incomplete_or_mixed_shards_exits_2_naming_the_problem(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(3):
        assert data_quality.main(
            quality_arguments(raw, tmp_path / "run", "--shard-index", str(index), "--shard-count", "3", "--workers", "1")
        ) == 0  # fmt: skip
    shards = tmp_path / "run" / "shards"
    (shards / "shard-00001-of-00003.jsonl").rename(tmp_path / "aside.jsonl")
    output = tmp_path / "merged"
    assert merge_manifests.main(["--shards", str(shards), "--output", str(output)]) == 2
    assert "lacks shard(s) 1 of 3; did every instance of the data QA job finish?" in capsys.readouterr().err
    assert not output.exists()

    # A shard from a run with other rules.
    assert data_quality.main(
        quality_arguments(raw, tmp_path / "other", "--shard-index", "1", "--shard-count", "3", "--max-pixels", "5000",
                          "--workers", "1")
    ) == 0  # fmt: skip
    shutil.copy(tmp_path / "other" / "shards" / "shard-00001-of-00003.jsonl", shards)
    assert merge_manifests.main(["--shards", str(shards), "--output", str(output)]) == 2
    assert "come from different runs" in capsys.readouterr().err
    assert not output.exists()

    # The same files checked twice: input said to be sharded that was in fact replicated.
    for index in range(2):
        assert data_quality.main(
            quality_arguments(raw, tmp_path / "twice", "--shard-index", str(index), "--shard-count", "2",
                              "--workers", "1", "--input-distribution", "sharded")
        ) == 0  # fmt: skip
    assert merge_manifests.main(["--shards", str(tmp_path / "twice"), "--output", str(output)]) == 2
    assert "was checked by shards 0 and 1; with --input-distribution sharded" in capsys.readouterr().err
    assert not output.exists()


# --- preprocess shards ----------------------------------------------------------------------------------


def run_preprocess_shards(raw: Path, manifest_folder: Path, tmp_path: Path, count: int) -> Path:
    shards = tmp_path / "shards"
    for index in range(count):
        instance_output = tmp_path / f"instance-{index}"
        arguments = preprocess_arguments(
            manifest_folder, raw, instance_output, "--shard-index", str(index), "--shard-count", str(count),
            "--workers", str(1 + index % 2),
        )  # fmt: skip
        assert preprocess.main(arguments) == 0
        assert sorted(path.name for path in instance_output.iterdir()) == ["shards"]
        shutil.copytree(instance_output / "shards", shards, dirs_exist_ok=True)
    merged = tmp_path / "merged"
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 0
    return merged


@pytest.mark.parametrize("count", [1, 2, 3])
def test_preprocess_shards_merge_into_the_single_instance_outputs(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path, count: int
) -> None:
    merged = run_preprocess_shards(raw, manifest_folder, tmp_path, count)
    assert all_files(merged) == single_records


def test_preprocess_shards_split_the_images_into_contiguous_runs(
    raw: Path, manifest_folder: Path, tmp_path: Path
) -> None:
    run_preprocess_shards(raw, manifest_folder, tmp_path, 3)
    parts = [
        json.loads((tmp_path / "shards" / f"shard-0000{index}-of-00003" / "part.json").read_text())
        for index in range(3)
    ]
    assert [(part["images"]["begin"], part["images"]["end"]) for part in parts] == [(0, 10), (10, 20), (20, 30)]
    # Only shard 0 carries the index files, which follow from the split alone.
    assert (tmp_path / "shards" / "shard-00000-of-00003" / "index" / "split.json").is_file()
    assert not (tmp_path / "shards" / "shard-00001-of-00003" / "index").exists()


def test_preprocess_shard_from_the_resource_config(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path, monkeypatch
) -> None:
    config = tmp_path / "resourceconfig.json"
    output = tmp_path / "output"
    for host in ("algo-1", "algo-2"):
        config.write_text(json.dumps({"current_host": host, "hosts": ["algo-1", "algo-2"]}))
        monkeypatch.setattr(preprocess, "RESOURCE_CONFIG", config)
        assert preprocess.main(preprocess_arguments(manifest_folder, raw, output, "--workers", "1")) == 0
    merged = tmp_path / "merged"
    assert merge_records.main(["--shards", str(output / "shards"), "--output", str(merged)]) == 0
    assert all_files(merged) == single_records


def test_merging_incomplete_or_mixed_preprocess_shards_exits_2(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = tmp_path / "out" / "shards"
    for index in (0, 2):
        assert preprocess.main(
            preprocess_arguments(manifest_folder, raw, tmp_path / "out", "--shard-index", str(index),
                                 "--shard-count", "3", "--workers", "1")
        ) == 0  # fmt: skip
    merged = tmp_path / "merged"
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 2
    assert "lacks shard(s) 1 of 3; did every instance of the preprocess job finish?" in capsys.readouterr().err
    assert not merged.exists()
    # Shard 1 of a run with another seed: a different split.
    assert preprocess.main(
        preprocess_arguments(manifest_folder, raw, tmp_path / "other", "--shard-index", "1", "--shard-count", "3",
                             "--workers", "1") + ["--seed", "4"]
    ) == 0  # fmt: skip
    shutil.copytree(tmp_path / "other" / "shards", shards, dirs_exist_ok=True)
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 2
    assert "come from different runs" in capsys.readouterr().err
    assert not merged.exists()


def test_merge_rebuilds_the_index_of_records_split_at_an_aligned_magic(tmp_path: Path) -> None:
    magic = struct.pack("<I", preprocess.RECORDIO_MAGIC)
    # Payload = 24-byte header + JPEG bytes; put the magic at an aligned offset inside the JPEG.
    jpegs = [b"\xff\xd8" + b"ab" + magic + b"cdef\xff\xd9", b"\xff\xd8xy\xff\xd9", b"\xff\xd8" + b"12" + magic + magic]
    records = [preprocess.pack_record(preprocess.image_payload(0, index, jpeg)) for index, jpeg in enumerate(jpegs)]
    assert len(records[0]) > 8 + len(jpegs[0]) + 24 - 4  # split into parts, the magic dropped
    target_path = tmp_path / "merged.rec"
    source = tmp_path / "part.rec"
    source.write_bytes(b"".join(records))
    with open(target_path, "wb") as target:
        found = list(merge_records.copy_records(source, target, 0, 0, 3))
    assert target_path.read_bytes() == b"".join(records)
    offsets = [0, len(records[0]), len(records[0]) + len(records[1])]
    assert [(start, payload[24:]) for start, payload in found] == list(zip(offsets, jpegs))


# --- preprocess shards of a sharded (ShardedByS3Key) input ---------------------------------------------


def manifest_paths(manifest_folder: Path) -> list[str]:
    lines = (manifest_folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["path"] for line in lines]


def spread(raw: Path, folders: list[Path], owners_of: dict[str, list[int]], default: int = 0) -> None:
    """Copies each file of `raw` into the folders of its owners (`owners_of[key]`, else [default])."""
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(raw.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        key = path.relative_to(raw).as_posix()
        for owner in owners_of.get(key, [default]):
            target = folders[owner] / key
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                target.symlink_to(path.readlink())
            else:
                shutil.copyfile(path, target)


def owners(strategy: str, keys: list[str], count: int) -> dict[str, list[int]]:
    """Which instance receives each key: the ways a ShardedByS3Key input might spread them."""
    if strategy == "hash":
        return {key: [int(hashlib.sha256(key.encode()).hexdigest(), 16) % count] for key in keys}
    if strategy == "round-robin":
        return {key: [position % count] for position, key in enumerate(sorted(keys))}
    if strategy == "all-on-last":
        return {key: [count - 1] for key in keys}
    if strategy == "uneven":
        # Most on the first instance, a few on the second, one on the last.
        ordered = sorted(keys)
        return {key: [0 if position < len(keys) - 4 else (count - 1 if position == len(keys) - 1 else 1)]
                for position, key in enumerate(ordered)}  # fmt: skip
    raise AssertionError(strategy)


def run_sharded_input_preprocess(
    folders: list[Path], manifest_folder: Path, tmp_path: Path, *extra: str
) -> tuple[Path, Path]:
    """Runs one preprocess shard per raw folder with --input-distribution sharded; returns (shards, merged)."""
    count = len(folders)
    shards = tmp_path / "shards"
    for index, folder in enumerate(folders):
        instance_output = tmp_path / f"instance-{index}"
        arguments = preprocess_arguments(
            manifest_folder, folder, instance_output, "--shard-index", str(index), "--shard-count", str(count),
            "--workers", str(1 + index % 2), "--input-distribution", "sharded", *extra,
        )  # fmt: skip
        assert preprocess.main(arguments) == 0
        assert sorted(path.name for path in instance_output.iterdir()) == ["shards"]
        shutil.copytree(instance_output / "shards", shards, dirs_exist_ok=True)
    return shards, tmp_path / "merged"


@pytest.mark.parametrize(
    ("count", "strategy"),
    [(1, "hash"), (2, "hash"), (3, "hash"), (2, "round-robin"), (3, "round-robin"), (2, "all-on-last"),
     (3, "all-on-last"), (3, "uneven")],
)  # fmt: skip
def test_preprocess_shards_of_sharded_input_merge_into_the_single_instance_outputs(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path, count: int, strategy: str
) -> None:
    keys = [path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file() or path.is_symlink()]
    folders = [tmp_path / f"input-{index}" for index in range(count)]
    spread(raw, folders, owners(strategy, keys, count))
    shards, merged = run_sharded_input_preprocess(folders, manifest_folder, tmp_path)
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 0
    assert all_files(merged) == single_records
    # Each shard converted exactly the manifest images it was given, all records numbered globally.
    paths = manifest_paths(manifest_folder)
    seen = []
    for index in range(count):
        folder = shards / preprocess.shard_name(index, count)
        part = json.loads((folder / "part.json").read_text(encoding="utf-8"))
        assert part["input_distribution"] == "sharded" and "images" not in part
        given = sorted(path for path in paths if (folders[index] / path).exists())
        full = part["records"]["full"]["indices"]
        assert full == sorted(full) and len(full) == len(given)
        seen += full
        # The IRHeader id of each record is the index listed for it.
        rec = (folder / "full.rec").read_bytes()
        ids, offset = [], 0
        while offset < len(rec):
            _, lrecord = struct.unpack_from("<II", rec, offset)
            length = lrecord & ((1 << 29) - 1)
            if lrecord >> 29 in (0, 1):
                ids.append(struct.unpack_from("<IfQQ", rec, offset + 8)[2])
            offset += 8 + length + (-length % 4)
        assert ids == full
    assert sorted(seen) == list(range(len(paths)))


def test_an_instance_given_no_manifest_image_writes_an_empty_part(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path
) -> None:
    keys = [path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file() or path.is_symlink()]
    folders = [tmp_path / "input-0", tmp_path / "input-1"]
    spread(raw, folders, {key: [1] for key in keys})
    shards, merged = run_sharded_input_preprocess(folders, manifest_folder, tmp_path)
    part = json.loads((shards / "shard-00000-of-00002" / "part.json").read_text(encoding="utf-8"))
    assert all(part["records"][name] == {"count": 0, "indices": []} for name in preprocess.RECORD_OUTPUTS)
    assert (shards / "shard-00000-of-00002" / "full.rec").read_bytes() == b""
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 0
    assert all_files(merged) == single_records


def test_an_image_on_no_instance_fails_the_merge_naming_it(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file() or path.is_symlink()]
    paths = manifest_paths(manifest_folder)
    lost = [paths[4], paths[17]]
    folders = [tmp_path / "input-0", tmp_path / "input-1"]
    spread(raw, folders, {key: ([] if key in lost else [position % 2]) for position, key in enumerate(keys)})
    shards, merged = run_sharded_input_preprocess(folders, manifest_folder, tmp_path)
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 2
    error = capsys.readouterr().err
    assert "2 manifest image(s) were converted by no shard" in error
    assert all(f"`{path}`" in error for path in lost), error
    assert not merged.exists()


def test_an_image_on_two_instances_fails_the_merge_naming_it(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file() or path.is_symlink()]
    twice = manifest_paths(manifest_folder)[9]
    folders = [tmp_path / f"input-{index}" for index in range(3)]
    spread(raw, folders, {key: ([0, 2] if key == twice else [position % 3]) for position, key in enumerate(keys)})
    shards, merged = run_sharded_input_preprocess(folders, manifest_folder, tmp_path)
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 2
    error = capsys.readouterr().err
    assert f"`{twice}` was converted by shards 0 and 2" in error and "FullyReplicated" in error
    assert not merged.exists()


def test_every_image_on_every_instance_with_sharded_input_fails_the_merge(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The input was FullyReplicated but the step was told it was sharded.
    shards, merged = run_sharded_input_preprocess([raw, raw], manifest_folder, tmp_path)
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 2
    assert "was converted by shards 0 and 1 (and 29 more images)" in capsys.readouterr().err
    assert not merged.exists()


def test_a_changed_image_still_stops_a_sharded_input_shard(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "input-0"
    shutil.copytree(raw, images, symlinks=True)
    changed = manifest_paths(manifest_folder)[3]
    (images / changed).write_bytes(b"changed")
    arguments = preprocess_arguments(
        manifest_folder, images, tmp_path / "out", "--shard-index", "0", "--shard-count", "2",
        "--input-distribution", "sharded",
    )  # fmt: skip
    assert preprocess.main(arguments) == 2
    assert f"`{images / changed}`" in capsys.readouterr().err
    assert not (tmp_path / "out" / "shards" / "shard-00000-of-00002").exists()


def test_shards_of_replicated_and_sharded_input_do_not_merge(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    for index, distribution in enumerate(("replicated", "sharded")):
        assert preprocess.main(
            preprocess_arguments(manifest_folder, raw, output, "--shard-index", str(index), "--shard-count", "2",
                                 "--workers", "1", "--input-distribution", distribution)
        ) == 0  # fmt: skip
    merged = tmp_path / "merged"
    assert merge_records.main(["--shards", str(output / "shards"), "--output", str(merged)]) == 2
    assert "come from different runs" in capsys.readouterr().err
    assert not merged.exists()


def test_replicated_input_shards_are_unchanged_by_the_option(
    raw: Path, manifest_folder: Path, tmp_path: Path
) -> None:
    # The default and an explicit `replicated` write the same bytes, in today's part format.
    written = []
    for name, extra in (("default", []), ("explicit", ["--input-distribution", "replicated"])):
        output = tmp_path / name
        for index in range(2):
            assert preprocess.main(
                preprocess_arguments(manifest_folder, raw, output, "--shard-index", str(index), "--shard-count", "2",
                                     "--workers", "1", *extra)
            ) == 0  # fmt: skip
        written.append(all_files(output))
    assert written[0] == written[1]
    part = json.loads(written[0]["shards/shard-00001-of-00002/part.json"])
    assert sorted(part) == ["dataset_version", "images", "kind", "records", "shard", "shard_count", "split_sha256"]
    assert part["images"] == {"begin": 15, "end": 30}
    assert written[0]["shards/shard-00001-of-00002/part.json"].startswith(b'{\n  "dataset_version"')


def test_sharded_input_shards_from_the_resource_config(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path, monkeypatch
) -> None:
    keys = [path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file() or path.is_symlink()]
    folders = [tmp_path / "input-0", tmp_path / "input-1"]
    spread(raw, folders, owners("hash", keys, 2))
    config = tmp_path / "resourceconfig.json"
    output = tmp_path / "output"
    for position, host in enumerate(("algo-1", "algo-2")):
        config.write_text(json.dumps({"current_host": host, "hosts": ["algo-1", "algo-2"]}))
        monkeypatch.setattr(preprocess, "RESOURCE_CONFIG", config)
        arguments = preprocess_arguments(manifest_folder, folders[position], output, "--input-distribution", "sharded")
        assert preprocess.main([*arguments, "--workers", "1"]) == 0
    merged = tmp_path / "merged"
    assert merge_records.main(["--shards", str(output / "shards"), "--output", str(merged)]) == 0
    assert all_files(merged) == single_records


def test_sharded_input_without_shards_is_a_plain_run(
    raw: Path, manifest_folder: Path, single_records: dict[str, bytes], tmp_path: Path
) -> None:
    output = tmp_path / "out"
    assert preprocess.main(
        preprocess_arguments(manifest_folder, raw, output, "--workers", "1", "--input-distribution", "sharded")
    ) == 0  # fmt: skip
    assert all_files(output) == single_records


def test_a_sharded_part_whose_records_are_out_of_order_exits_2(
    raw: Path, manifest_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [path.relative_to(raw).as_posix() for path in raw.rglob("*") if path.is_file() or path.is_symlink()]
    folders = [tmp_path / "input-0", tmp_path / "input-1"]
    spread(raw, folders, owners("round-robin", keys, 2))
    shards, merged = run_sharded_input_preprocess(folders, manifest_folder, tmp_path)
    part_file = shards / "shard-00001-of-00002" / "part.json"
    part = json.loads(part_file.read_text(encoding="utf-8"))
    indices = part["records"]["full"]["indices"]
    indices[0], indices[1] = indices[1], indices[0]
    part_file.write_text(json.dumps(part), encoding="utf-8")
    assert merge_records.main(["--shards", str(shards), "--output", str(merged)]) == 2
    assert "`records.full.indices` are not in increasing order" in capsys.readouterr().err
    assert not merged.exists()
