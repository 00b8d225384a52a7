"""The step scripts against the pipeline that runs them: the rendered definition in the golden
template tests/golden/staging/pipeline-plants.yaml.

Steps are found by type and entry point, never by position. Every script step's
ContainerArguments must parse with that script's own parser; the folders the arguments name
must be the step's ProcessingInputs/Outputs, wired to the steps that produce them; and a small
generated dataset run through the scripts exactly as the pipeline invokes them (container
paths moved under a tmp folder, the transform played by a stand-in model) must give a report
in which CheckAccuracy's JsonGet path is a number.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from PIL import Image, ImageStat

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "staging" / "pipeline-plants.yaml"
sys.path.insert(0, str(REPO / "steps"))

import data_quality  # noqa: E402
import evaluate  # noqa: E402
import preprocess  # noqa: E402

SCRIPTS = {"data_quality": data_quality, "preprocess": preprocess, "evaluate": evaluate}
CODE_ENTRYPOINT = re.compile(r"^/opt/ml/processing/input/code/([A-Za-z0-9_]+)\.py$")
RECORDIO = "application/x-recordio"


class _TolerantLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form tags (!Ref, !Sub, ...) become their plain value."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _any_tag)


def load_definition() -> dict:
    template = yaml.load(GOLDEN.read_text(encoding="utf-8"), Loader=_TolerantLoader)
    pipelines = [
        resource for resource in template["Resources"].values() if resource.get("Type") == "AWS::SageMaker::Pipeline"
    ]
    assert len(pipelines) == 1, f"{GOLDEN} should define one AWS::SageMaker::Pipeline"
    body = pipelines[0]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    assert isinstance(body, str), "PipelineDefinitionBody should be the definition's JSON text"
    return json.loads(body)


DEFINITION = load_definition()


def all_steps(steps: list) -> Iterator[dict]:
    """Every step, including those nested in a Condition's branches."""
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from all_steps(step["Arguments"].get("IfSteps", []))
            yield from all_steps(step["Arguments"].get("ElseSteps", []))


STEPS = list(all_steps(DEFINITION["Steps"]))


def steps_of_type(kind: str) -> list[dict]:
    return [step for step in STEPS if step["Type"] == kind]


def script_of(step: dict) -> str | None:
    if step["Type"] != "Processing":
        return None
    entrypoint = step["Arguments"]["AppSpecification"].get("ContainerEntrypoint") or []
    matches = [CODE_ENTRYPOINT.match(part) for part in entrypoint if isinstance(part, str)]
    found = [match.group(1) for match in matches if match]
    return found[-1] if found else None


def script_step(script: str) -> dict:
    found = [step for step in STEPS if script_of(step) == script]
    assert len(found) == 1, f"expected one Processing step running {script}.py, found {len(found)}"
    return found[0]


def only_step(kind: str) -> dict:
    found = steps_of_type(kind)
    assert len(found) == 1, f"expected one {kind} step, found {len(found)}"
    return found[0]


PARAMETERS = {parameter["Name"]: parameter.get("DefaultValue") for parameter in DEFINITION["Parameters"]}


def resolve(value: Any) -> str:
    """An argument as the container sees it: parameters take their default; others a marker."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Get"), str):
        reference = value["Get"]
        if reference.startswith("Parameters."):
            return str(PARAMETERS[reference[len("Parameters.") :]])
        return f"<{reference}>"
    return f"<{json.dumps(value)}>"


def container_arguments(step: dict) -> list[str]:
    return [resolve(value) for value in step["Arguments"]["AppSpecification"].get("ContainerArguments", [])]


def flag(step: dict, name: str) -> str:
    arguments = container_arguments(step)
    assert name in arguments, f"{step['Name']} does not pass {name}"
    return arguments[arguments.index(name) + 1]


def inputs(step: dict) -> list[dict]:
    return step["Arguments"].get("ProcessingInputs", [])


def outputs(step: dict) -> list[dict]:
    return step["Arguments"]["ProcessingOutputConfig"]["Outputs"]


def input_at(step: dict, local_path: str) -> dict:
    found = [item for item in inputs(step) if item["S3Input"]["LocalPath"] == local_path]
    assert len(found) == 1, f"{step['Name']} has no single ProcessingInput at {local_path}"
    return found[0]


def output_at(step: dict, local_path: str) -> dict:
    found = [item for item in outputs(step) if item["S3Output"]["LocalPath"] == local_path]
    assert len(found) == 1, f"{step['Name']} has no single ProcessingOutput at {local_path}"
    return found[0]


def output_reference(step: dict, output: dict) -> dict:
    return {"Get": f"Steps.{step['Name']}.ProcessingOutputConfig.Outputs['{output['OutputName']}'].S3Output.S3Uri"}


def preprocess_output(folder: str) -> dict:
    step = script_step("preprocess")
    return output_reference(step, output_at(step, f"{flag(step, '--output')}/{folder}"))


# --- the arguments parse -------------------------------------------------------------------------


def test_every_processing_step_with_step_code_runs_one_of_ours() -> None:
    scripts = [script_of(step) for step in steps_of_type("Processing")]
    assert sorted(script for script in scripts if script) == sorted(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_container_arguments_parse_with_the_scripts_parser(script: str) -> None:
    arguments = container_arguments(script_step(script))
    try:
        SCRIPTS[script].build_parser().parse_args(arguments)
    except SCRIPTS[script].UsageError as error:
        pytest.fail(f"{script}.py rejects the pipeline's arguments {arguments}: {error}")


def test_preprocess_arguments_are_valid_values() -> None:
    # Beyond parsing: the shares add up, as preprocess.py checks before reading anything.
    step = script_step("preprocess")
    raw = preprocess.build_parser().parse_args(container_arguments(step))
    assert abs(raw.train_ratio + raw.validation_ratio + raw.test_ratio - 1) <= preprocess.RATIO_TOLERANCE


# --- the folders are wired -----------------------------------------------------------------------


def test_data_quality_reads_the_input_prefix_and_writes_its_output() -> None:
    step = script_step("data_quality")
    raw = input_at(step, flag(step, "--input"))
    assert raw["S3Input"]["S3Uri"] == {"Get": "Parameters.InputDataUri"}
    # The manifest's URIs are built from the same prefix the images come from.
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--input-uri") + 1] == raw["S3Input"]["S3Uri"]
    output_at(step, flag(step, "--output"))


def test_preprocess_reads_the_manifest_and_the_same_images() -> None:
    step, quality = script_step("preprocess"), script_step("data_quality")
    manifest = input_at(step, flag(step, "--manifest"))
    quality_output = output_at(quality, flag(quality, "--output"))
    assert manifest["S3Input"]["S3Uri"] == output_reference(quality, quality_output)
    images = input_at(step, flag(step, "--images"))
    assert images["S3Input"]["S3Uri"] == input_at(quality, flag(quality, "--input"))["S3Input"]["S3Uri"]


def test_preprocess_outputs_are_the_folders_it_writes() -> None:
    step = script_step("preprocess")
    root = flag(step, "--output")
    local_paths = sorted(output["S3Output"]["LocalPath"] for output in outputs(step))
    assert local_paths == sorted(f"{root}/{folder}" for folder in preprocess.OUTPUT_FOLDERS)


def training_channels() -> list[tuple[str, dict]]:
    channels = []
    for step in steps_of_type("Training"):
        channels += [(step["Name"], channel) for channel in step["Arguments"]["InputDataConfig"]]
    for step in steps_of_type("Tuning"):
        definition = step["Arguments"]["TrainingJobDefinition"]
        channels += [(step["Name"], channel) for channel in definition["InputDataConfig"]]
    return channels


def test_training_channels_read_record_io_outputs_only() -> None:
    record_outputs = [preprocess_output(name) for name in preprocess.RECORD_OUTPUTS]
    channels = training_channels()
    assert channels, "no Training or Tuning step"
    for step_name, channel in channels:
        source = channel["DataSource"]["S3DataSource"]["S3Uri"]
        assert source in record_outputs, f"{step_name} channel {channel['ChannelName']} reads {source}"
        assert channel.get("ContentType") == RECORDIO


def test_image_shape_matches_the_preprocessed_size() -> None:
    step = script_step("preprocess")
    expected = f"3,{flag(step, '--image-height')},{flag(step, '--image-width')}"
    shapes = [training["Arguments"]["HyperParameters"]["image_shape"] for training in steps_of_type("Training")]
    shapes += [
        tuning["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]["image_shape"]
        for tuning in steps_of_type("Tuning")
    ]
    assert shapes and all(shape == expected for shape in shapes), shapes


def test_transform_scores_the_test_images_as_json() -> None:
    transform = only_step("Transform")["Arguments"]
    source = transform["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == preprocess_output(preprocess.TEST_IMAGES)
    assert source.get("S3DataType", "S3Prefix") == "S3Prefix"
    assert transform["TransformInput"]["ContentType"] == "application/x-image"
    # One request per file: each test image is a whole request body.
    assert transform["TransformInput"].get("SplitType", "None") == "None"
    assert transform["TransformOutput"].get("Accept", "application/json") == "application/json"


def test_evaluate_reads_the_transform_output_and_the_index() -> None:
    step, transform = script_step("evaluate"), only_step("Transform")
    predictions = input_at(step, flag(step, "--predictions"))
    assert predictions["S3Input"]["S3Uri"] == {"Get": f"Steps.{transform['Name']}.TransformOutput.S3OutputPath"}
    index = input_at(step, flag(step, "--index"))
    assert index["S3Input"]["S3Uri"] == preprocess_output(preprocess.INDEX)


def report_location() -> tuple[dict, dict, str]:
    """(Evaluate step, its report's ProcessingOutput, the report's file name)."""
    step = script_step("evaluate")
    report = PurePosixPath(flag(step, "--output"))
    return step, output_at(step, str(report.parent)), report.name


def test_report_is_the_property_file_check_accuracy_reads_and_register_attaches() -> None:
    step, output, file_name = report_location()
    condition = only_step("Condition")
    json_gets = [condition["Arguments"]["Conditions"][0][side] for side in ("LeftValue", "RightValue")]
    json_get = next(value["Std:JsonGet"] for value in json_gets if isinstance(value, dict) and "Std:JsonGet" in value)
    reference = json_get["PropertyFile"]["Get"]
    prefix = f"Steps.{step['Name']}.PropertyFiles."
    assert reference.startswith(prefix), reference
    files = {entry["PropertyFileName"]: entry for entry in step.get("PropertyFiles", [])}
    property_file = files[reference[len(prefix) :]]
    assert property_file["OutputName"] == output["OutputName"]
    assert property_file["FilePath"] == file_name

    register = only_step("RegisterModel")
    statistics = register["Arguments"]["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["S3Uri"] == {"Std:Join": {"On": "/", "Values": [output_reference(step, output), file_name]}}


# --- a small dataset through the scripts, invoked as the pipeline invokes them -------------------


CLASS_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210)}


def make_raw_images(root: Path, per_class: int = 10) -> None:
    for label, colour in CLASS_COLOURS.items():
        for number in range(per_class):
            shade = tuple(min(255, channel + number * 3) for channel in colour)
            image = Image.new("RGB", (48 + number, 40), shade)
            image.putpixel((0, 0), (number, number, number))
            path = root / label / f"{number:02d}.{'png' if number % 2 else 'jpg'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)


def local(path: str, root: Path) -> str:
    """A container path moved under `root`; other arguments unchanged."""
    return str(root / path.lstrip("/")) if path.startswith("/opt/ml/") else path


def reference_key(value: Any) -> str:
    return value["Get"] if isinstance(value, dict) and "Get" in value else json.dumps(value)


def run_processing(step: dict, store: dict[str, Path], root: Path) -> None:
    """Runs a script step like a processing job: inputs copied in, outputs published to `store`."""
    code_folder = str(PurePosixPath(step["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1]).parent)
    for item in inputs(step):
        local_path = item["S3Input"]["LocalPath"]
        if local_path == code_folder:
            continue
        source = store[reference_key(item["S3Input"]["S3Uri"])]
        shutil.copytree(source, local(local_path, root))
    for item in outputs(step):
        Path(local(item["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
    arguments = [local(argument, root) for argument in container_arguments(step)]
    module = SCRIPTS[script_of(step) or ""]
    assert module.main(arguments) == 0, f"{step['Name']} failed on {arguments}"
    for item in outputs(step):
        store[reference_key(output_reference(step, item))] = Path(local(item["S3Output"]["LocalPath"], root))


def rec_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """(class index, image bytes) of each whole (cflag 0) record of a .rec, read sequentially."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        magic, lrecord = struct.unpack_from("<II", data, offset)
        assert magic == 0xCED7230A and lrecord >> 29 == 0
        length = lrecord & ((1 << 29) - 1)
        payload = data[offset + 8 : offset + 8 + length]
        offset += 8 + length + (-length % 4)
        _, label, _, _ = struct.unpack_from("<IfQQ", payload)
        yield int(label), payload[24:]


def mean_colour(image: Image.Image) -> list[float]:
    return ImageStat.Stat(image.convert("RGB")).mean


def train_stand_in_model(train_rec: Path) -> dict[int, list[float]]:
    """A nearest-centroid 'model' learned from the train channel's records and their labels."""
    sums: dict[int, list[list[float]]] = {}
    for label, jpeg in rec_records(train_rec):
        with Image.open(io.BytesIO(jpeg)) as image:
            sums.setdefault(label, []).append(mean_colour(image))
    return {label: [sum(channel) / len(colours) for channel in zip(*colours)] for label, colours in sums.items()}


def run_transform(step: dict, model: dict[int, list[float]], store: dict[str, Path], root: Path) -> None:
    """What the batch transform does: one `<file>.out` of class probabilities per input file."""
    arguments = step["Arguments"]
    source = store[reference_key(arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])]
    target = root / "transform-output"
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        with Image.open(path) as image:
            colour = mean_colour(image)
        closeness = [-math.dist(colour, model[label]) / 10 for label in range(len(model))]
        weights = [math.exp(value - max(closeness)) for value in closeness]
        body = json.dumps([weight / sum(weights) for weight in weights])
        (target / f"{path.relative_to(source).as_posix()}.out").write_text(body, encoding="utf-8")
    store[f"Steps.{step['Name']}.TransformOutput.S3OutputPath"] = target


def test_check_accuracy_path_is_a_number_in_a_report_from_the_pipeline_invocation(tmp_path: Path) -> None:
    raw = tmp_path / "s3" / "raw"
    make_raw_images(raw)
    store: dict[str, Path] = {"Parameters.InputDataUri": raw}
    run_processing(script_step("data_quality"), store, tmp_path / "data-quality")
    run_processing(script_step("preprocess"), store, tmp_path / "preprocess")

    train_step = only_step("Training")
    train_channel = next(c for c in train_step["Arguments"]["InputDataConfig"] if c["ChannelName"] == "train")
    train_folder = store[reference_key(train_channel["DataSource"]["S3DataSource"]["S3Uri"])]
    (train_rec,) = list(train_folder.iterdir())
    model = train_stand_in_model(train_rec)
    run_transform(only_step("Transform"), model, store, tmp_path / "transform")
    run_processing(script_step("evaluate"), store, tmp_path / "evaluate")

    step, output, file_name = report_location()
    report_file = store[reference_key(output_reference(step, output))] / file_name
    report = json.loads(report_file.read_text(encoding="utf-8"))
    condition = only_step("Condition")["Arguments"]["Conditions"][0]
    path = condition["LeftValue"]["Std:JsonGet"]["Path"]
    value: Any = report
    for key in path.split("."):
        assert isinstance(value, dict) and key in value, f"`{path}` does not resolve in {report_file}"
        value = value[key]
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    # The stand-in model tells the colours apart, so labels survived every hop: folder names,
    # manifest, class indices in the records, test.lst, classes.json and the report.
    assert value == 1.0
    metrics = report["multiclass_classification_metrics"]
    assert sorted(metrics["support_per_class"]) == sorted(CLASS_COLOURS)
    test_images = store[reference_key(preprocess_output(preprocess.TEST_IMAGES))]
    assert sum(metrics["support_per_class"].values()) == len(list(test_images.iterdir())) > 0


def test_the_entrypoint_installs_the_requirements_then_runs_the_script_with_its_arguments(tmp_path: Path):
    import os
    import subprocess

    step = script_step("data_quality")
    entrypoint = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint[-1] == "/opt/ml/processing/input/code/data_quality.py"
    code = tmp_path / "code"
    code.mkdir()
    # The real pins: already installed in the project venv, so pip needs no network here.
    shutil.copy(REPO / "steps" / "requirements.txt", code / "requirements.txt")
    (code / "data_quality.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    venv = Path(sys.executable).parent
    environment = dict(os.environ, PATH=f"{venv}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [*entrypoint[:-1], str(code / "data_quality.py"), "--input", "a folder/with spaces", "--x=1"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["--input", "a folder/with spaces", "--x=1"]

    # A requirement that cannot be installed stops the step before the script runs.
    (code / "requirements.txt").write_text("this-package-does-not-exist-anywhere==0.0.0\n")
    failed = subprocess.run(
        [*entrypoint[:-1], str(code / "data_quality.py")],
        capture_output=True,
        text=True,
        env=dict(environment, PIP_NO_INDEX="1"),
        check=False,
    )
    assert failed.returncode != 0
    assert "[]" not in failed.stdout
