"""The step scripts against the pipelines that run them: the rendered definitions in the golden
templates tests/golden/<environment>/pipeline-plants.yaml, in both layouts the generator writes:

- staging, `pipeline.processing.instance_count` 2: DataQuality on N instances (raw input
  ShardedByS3Key) → MergeManifests → Preprocess on N instances (raw input FullyReplicated, or
  ShardedByS3Key with `--input-distribution sharded`) → MergeRecords, which writes the datasets
  and holds the `DatasetSplit` property file;
- dev, one instance: DataQuality → Preprocess, which writes the datasets itself.

Staging is checked twice: as its golden stands, and with Preprocess's raw input rewritten
ShardedByS3Key with `--input-distribution sharded` (what the generator writes once Preprocess
reads its share of the photos; the rewrite changes nothing in a golden that already does).

Steps are found by type and entry point, never by position. Every script step's
ContainerArguments must parse with that script's own parser; the folders the arguments name
must be the step's ProcessingInputs/Outputs, wired to the steps that produce them; the training
jobs' `num_training_samples` must be read from the split.json the dataset step writes; and a
small generated dataset run through the scripts exactly as the pipeline invokes them (container
paths, SageMaker's resource config included, moved under a tmp folder; a multi-instance step run
once per instance, each with its share of a ShardedByS3Key input; the transform played by a
stand-in model) must give merged outputs byte-identical to one instance's and a report in which
CheckAccuracy's JsonGet path is a number.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from PIL import Image, ImageStat

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "steps"))

import data_quality  # noqa: E402
import evaluate  # noqa: E402
import merge_manifests  # noqa: E402
import merge_records  # noqa: E402
import preprocess  # noqa: E402

SCRIPTS = {
    "data_quality": data_quality,
    "preprocess": preprocess,
    "evaluate": evaluate,
    "merge_manifests": merge_manifests,
    "merge_records": merge_records,
}
# The scripts every pipeline runs; a sharded one adds a merge after each data step.
SINGLE_INSTANCE_SCRIPTS = ("data_quality", "preprocess", "evaluate")
MERGE_SCRIPTS = ("merge_manifests", "merge_records")
CODE_ENTRYPOINT = re.compile(r"^/opt/ml/processing/input/code/([A-Za-z0-9_]+)\.py$")
RECORDIO = "application/x-recordio"
# Where SageMaker Processing describes the job's instances to each container.
SAGEMAKER_RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
FULLY_REPLICATED, SHARDED_BY_KEY = "FullyReplicated", "ShardedByS3Key"

# The environments whose golden pipeline is checked, and the layout each must have.
SHARDED, SINGLE = "sharded", "single instance"
ENVIRONMENTS = {"staging": SHARDED, "dev": SINGLE}
MODEL = "plants"
# The case checking staging with Preprocess's raw input ShardedByS3Key.
SHARDED_PREPROCESS_INPUT = "staging-sharded-preprocess-input"


class _TolerantLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form tags (!Ref, !Sub, ...) become their plain value."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _any_tag)


def load_definition(golden: Path) -> dict:
    template = yaml.load(golden.read_text(encoding="utf-8"), Loader=_TolerantLoader)
    pipelines = [
        resource for resource in template["Resources"].values() if resource.get("Type") == "AWS::SageMaker::Pipeline"
    ]
    assert len(pipelines) == 1, f"{golden} should define one AWS::SageMaker::Pipeline"
    body = pipelines[0]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    assert isinstance(body, str), "PipelineDefinitionBody should be the definition's JSON text"
    return json.loads(body)


def all_steps(steps: list) -> Iterator[dict]:
    """Every step, including those nested in a Condition's branches."""
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from all_steps(step["Arguments"].get("IfSteps", []))
            yield from all_steps(step["Arguments"].get("ElseSteps", []))


def script_of(step: dict) -> str | None:
    if step["Type"] != "Processing":
        return None
    entrypoint = step["Arguments"]["AppSpecification"].get("ContainerEntrypoint") or []
    matches = [CODE_ENTRYPOINT.match(part) for part in entrypoint if isinstance(part, str)]
    found = [match.group(1) for match in matches if match]
    return found[-1] if found else None


def instance_count(step: dict) -> int:
    return step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]


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


def output_named(step: dict, name: str) -> dict:
    found = [item for item in outputs(step) if item["OutputName"] == name]
    assert len(found) == 1, f"{step['Name']} has no single ProcessingOutput named {name}"
    return found[0]


def output_reference(step: dict, output: dict) -> dict:
    return {"Get": f"Steps.{step['Name']}.ProcessingOutputConfig.Outputs['{output['OutputName']}'].S3Output.S3Uri"}


def property_files(step: dict) -> dict[str, dict]:
    return {entry["PropertyFileName"]: entry for entry in step.get("PropertyFiles", [])}


class Pipeline:
    """One golden pipeline definition and the lookups the tests make in it."""

    def __init__(self, environment: str, sharded_preprocess_input: bool = False) -> None:
        self.environment = environment
        self.golden = REPO / "tests" / "golden" / environment / f"pipeline-{MODEL}.yaml"
        self.definition = load_definition(self.golden)
        self.steps = list(all_steps(self.definition["Steps"]))
        self.parameters = {
            parameter["Name"]: parameter.get("DefaultValue") for parameter in self.definition["Parameters"]
        }
        self.variant = ""
        if sharded_preprocess_input:
            self.shard_preprocess_input()

    def __repr__(self) -> str:
        return f"Pipeline({self.environment}{self.variant})"

    def shard_preprocess_input(self) -> None:
        """Rewrites Preprocess as the generator will write it: raw input ShardedByS3Key, told so."""
        self.variant = ", sharded preprocess input"
        step = self.script_step("preprocess")
        input_at(step, self.flag(step, "--images"))["S3Input"]["S3DataDistributionType"] = SHARDED_BY_KEY
        arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
        if "--input-distribution" in arguments:
            arguments[arguments.index("--input-distribution") + 1] = preprocess.SHARDED
        else:
            arguments += ["--input-distribution", preprocess.SHARDED]

    def steps_of_type(self, kind: str) -> list[dict]:
        return [step for step in self.steps if step["Type"] == kind]

    def script_step(self, script: str) -> dict:
        found = [step for step in self.steps if script_of(step) == script]
        assert len(found) == 1, (
            f"{self.environment}: expected one Processing step running {script}.py, found {len(found)}"
        )
        return found[0]

    def only_step(self, kind: str) -> dict:
        found = self.steps_of_type(kind)
        assert len(found) == 1, f"{self.environment}: expected one {kind} step, found {len(found)}"
        return found[0]

    def resolve(self, value: Any) -> str:
        """An argument as the container sees it: parameters take their default; others a marker."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("Get"), str):
            reference = value["Get"]
            if reference.startswith("Parameters."):
                return str(self.parameters[reference[len("Parameters.") :]])
            return f"<{reference}>"
        return f"<{json.dumps(value)}>"

    def container_arguments(self, step: dict) -> list[str]:
        return [self.resolve(value) for value in step["Arguments"]["AppSpecification"].get("ContainerArguments", [])]

    def flag(self, step: dict, name: str) -> str:
        arguments = self.container_arguments(step)
        assert name in arguments, f"{self.environment}: {step['Name']} does not pass {name}"
        return arguments[arguments.index(name) + 1]

    def parsed(self, script: str) -> Any:
        return SCRIPTS[script].build_parser().parse_args(self.container_arguments(self.script_step(script)))

    # The layout: the data steps' instance count decides it.

    @property
    def data_instances(self) -> int:
        return instance_count(self.script_step("data_quality"))

    @property
    def sharded(self) -> bool:
        return self.data_instances > 1

    def expected_scripts(self) -> tuple[str, ...]:
        return SINGLE_INSTANCE_SCRIPTS + (MERGE_SCRIPTS if self.sharded else ())

    def manifest_step(self) -> dict:
        """The step whose output is the dataset manifest (manifest.jsonl, summary, version)."""
        return self.script_step("merge_manifests" if self.sharded else "data_quality")

    def dataset_step(self) -> dict:
        """The step whose outputs are the datasets (full/, train/, ..., index/, test-images/)."""
        return self.script_step("merge_records" if self.sharded else "preprocess")

    def dataset_output(self, folder: str) -> dict:
        step = self.dataset_step()
        return output_at(step, f"{self.flag(step, '--output')}/{folder}")

    def dataset_reference(self, folder: str) -> dict:
        return output_reference(self.dataset_step(), self.dataset_output(folder))


PIPELINES = {environment: Pipeline(environment) for environment in ENVIRONMENTS}
PIPELINES[SHARDED_PREPROCESS_INPUT] = Pipeline("staging", sharded_preprocess_input=True)
SHARDED_ENVIRONMENTS = [case for case, pipeline in PIPELINES.items() if ENVIRONMENTS[pipeline.environment] == SHARDED]


@pytest.fixture(params=list(PIPELINES))
def pipeline(request: pytest.FixtureRequest) -> Pipeline:
    return PIPELINES[request.param]


@pytest.fixture(params=SHARDED_ENVIRONMENTS)
def sharded_pipeline(request: pytest.FixtureRequest) -> Pipeline:
    return PIPELINES[request.param]


def configured_processing_instances(environment: str) -> int:
    config = yaml.safe_load((REPO / "environments" / f"{environment}.yaml").read_text(encoding="utf-8"))
    processing = ((config or {}).get("pipeline") or {}).get("processing") or {}
    return processing.get("instance_count", 1)


# --- the layout ----------------------------------------------------------------------------------


def test_each_golden_pipeline_has_the_layout_of_its_instance_count(pipeline: Pipeline) -> None:
    # Both layouts are covered: staging's data steps run on several instances, dev's on one.
    configured = configured_processing_instances(pipeline.environment)
    assert pipeline.data_instances == configured
    assert pipeline.sharded == (ENVIRONMENTS[pipeline.environment] == SHARDED)
    assert instance_count(pipeline.script_step("preprocess")) == configured
    # The merges and the evaluation do not shard: on more instances each would write the whole
    # output to the same prefix.
    for script in ("evaluate", *(MERGE_SCRIPTS if pipeline.sharded else ())):
        assert instance_count(pipeline.script_step(script)) == 1, script


def test_every_processing_step_with_step_code_runs_one_of_ours(pipeline: Pipeline) -> None:
    scripts = [script_of(step) for step in pipeline.steps_of_type("Processing")]
    assert sorted(script for script in scripts if script) == sorted(pipeline.expected_scripts())


def test_the_scripts_read_sagemakers_resource_config() -> None:
    # Without --shard-index/--shard-count a data step finds its shard where SageMaker Processing
    # describes the job's hosts; the end-to-end run below points these constants at a test file.
    for module in (data_quality, preprocess):
        assert PurePosixPath(module.RESOURCE_CONFIG) == PurePosixPath(SAGEMAKER_RESOURCE_CONFIG)


# --- the arguments parse -------------------------------------------------------------------------


SCRIPT_CASES = [
    pytest.param(environment, script, id=f"{environment}-{script}")
    for environment, pipeline in PIPELINES.items()
    for script in sorted(pipeline.expected_scripts())
]


@pytest.mark.parametrize(("environment", "script"), SCRIPT_CASES)
def test_container_arguments_parse_with_the_scripts_parser(environment: str, script: str) -> None:
    pipeline = PIPELINES[environment]
    arguments = pipeline.container_arguments(pipeline.script_step(script))
    try:
        SCRIPTS[script].build_parser().parse_args(arguments)
    except SCRIPTS[script].UsageError as error:
        pytest.fail(f"{script}.py rejects {environment}'s arguments {arguments}: {error}")


def test_no_step_names_its_shard_in_its_arguments(pipeline: Pipeline) -> None:
    # Every instance of a job gets the same ContainerArguments, so a shard passed there would be
    # every instance's; the shard must come from the resource config.
    for script in pipeline.expected_scripts():
        arguments = pipeline.container_arguments(pipeline.script_step(script))
        assert "--shard-index" not in arguments and "--shard-count" not in arguments, (script, arguments)


def test_preprocess_arguments_are_valid_values(pipeline: Pipeline) -> None:
    # Beyond parsing: the shares add up, as preprocess.py checks before reading anything.
    raw = pipeline.parsed("preprocess")
    assert abs(raw.train_ratio + raw.validation_ratio + raw.test_ratio - 1) <= preprocess.RATIO_TOLERANCE


def test_data_quality_and_preprocess_limit_pixels_alike(pipeline: Pipeline) -> None:
    # Preprocess refuses a manifest image above its own limit: the limits must be the same.
    assert pipeline.parsed("data_quality").max_pixels == pipeline.parsed("preprocess").max_pixels


# --- the folders are wired -----------------------------------------------------------------------


def test_every_container_path_argument_is_an_input_or_an_output(pipeline: Pipeline) -> None:
    for script in pipeline.expected_scripts():
        step = pipeline.script_step(script)
        inside = [PurePosixPath(item["S3Input"]["LocalPath"]) for item in inputs(step)]
        inside += [PurePosixPath(item["S3Output"]["LocalPath"]) for item in outputs(step)]
        output_paths = [PurePosixPath(item["S3Output"]["LocalPath"]) for item in outputs(step)]
        for argument in pipeline.container_arguments(step):
            if not argument.startswith("/opt/ml/"):
                continue
            path = PurePosixPath(argument)
            # A path in an input or output, or the folder holding a step's outputs (--output).
            ok = any(path == root or root in path.parents for root in inside) or any(
                path in output.parents for output in output_paths
            )
            assert ok, f"{pipeline.environment}: {step['Name']} names {argument}, neither an input nor an output"


def test_data_quality_reads_the_input_prefix_and_writes_its_output(pipeline: Pipeline) -> None:
    step = pipeline.script_step("data_quality")
    raw = input_at(step, pipeline.flag(step, "--input"))
    assert raw["S3Input"]["S3Uri"] == {"Get": "Parameters.InputDataUri"}
    # The manifest's URIs are built from the same prefix the images come from.
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--input-uri") + 1] == raw["S3Input"]["S3Uri"]
    output_at(step, pipeline.flag(step, "--output"))


# The data steps' raw images input: (script, the flag naming it).
RAW_IMAGE_INPUTS = (("data_quality", "--input"), ("preprocess", "--images"))


@pytest.mark.parametrize(("script", "flag"), RAW_IMAGE_INPUTS)
def test_the_data_steps_are_told_how_their_images_are_distributed(pipeline: Pipeline, script: str, flag: str) -> None:
    step = pipeline.script_step(script)
    raw = input_at(step, pipeline.flag(step, flag))["S3Input"]
    parsed = pipeline.parsed(script)
    module = SCRIPTS[script]
    # replicated on a sharded input would convert (check) only part of each instance's share, or
    # fail on the images it lacks; sharded on a replicated one would do every image N times (and
    # the merges refuse that).
    expected = module.SHARDED if raw["S3DataDistributionType"] == SHARDED_BY_KEY else module.REPLICATED
    assert parsed.input_distribution == expected, (script, raw["S3DataDistributionType"])
    assert raw["S3DataDistributionType"] in (FULLY_REPLICATED, SHARDED_BY_KEY)
    if script == "data_quality" and pipeline.sharded:
        assert raw["S3DataDistributionType"] == SHARDED_BY_KEY
    if script == "data_quality" and parsed.labels is not None and raw["S3DataDistributionType"] == SHARDED_BY_KEY:
        # A labels file must reach every instance whole: not inside the sharded input.
        labels = input_at(step, str(PurePosixPath(parsed.labels).parent))["S3Input"]
        assert labels["S3DataDistributionType"] == FULLY_REPLICATED


def test_only_the_raw_images_of_the_data_steps_may_be_sharded_by_key(pipeline: Pipeline) -> None:
    # Every other input must reach each instance whole: the shards to merge, the manifest (every
    # preprocess instance plans the whole split from it), the index.
    raw_inputs = [(pipeline.script_step(script), flag) for script, flag in RAW_IMAGE_INPUTS]
    for step in pipeline.steps_of_type("Processing"):
        for item in inputs(step):
            if any(step is raw_step and item["S3Input"]["LocalPath"] == pipeline.flag(raw_step, flag)
                   for raw_step, flag in raw_inputs):  # fmt: skip
                continue
            assert item["S3Input"]["S3DataDistributionType"] == FULLY_REPLICATED, (step["Name"], item["InputName"])


def test_merge_manifests_reads_every_data_quality_shard(sharded_pipeline: Pipeline) -> None:
    pipeline = sharded_pipeline
    step, quality = pipeline.script_step("merge_manifests"), pipeline.script_step("data_quality")
    shards = input_at(step, pipeline.flag(step, "--shards"))
    quality_output = output_at(quality, pipeline.flag(quality, "--output"))
    assert shards["S3Input"]["S3Uri"] == output_reference(quality, quality_output)
    output_at(step, pipeline.flag(step, "--output"))


def test_preprocess_reads_the_manifest_and_the_same_images(pipeline: Pipeline) -> None:
    step, quality, source = (
        pipeline.script_step("preprocess"),
        pipeline.script_step("data_quality"),
        pipeline.manifest_step(),
    )
    manifest = input_at(step, pipeline.flag(step, "--manifest"))
    manifest_output = output_at(source, pipeline.flag(source, "--output"))
    assert manifest["S3Input"]["S3Uri"] == output_reference(source, manifest_output)
    images = input_at(step, pipeline.flag(step, "--images"))
    assert images["S3Input"]["S3Uri"] == input_at(quality, pipeline.flag(quality, "--input"))["S3Input"]["S3Uri"]


def test_preprocess_outputs_are_the_folders_it_writes(pipeline: Pipeline) -> None:
    step = pipeline.script_step("preprocess")
    root = pipeline.flag(step, "--output")
    local_paths = sorted(output["S3Output"]["LocalPath"] for output in outputs(step))
    # On several instances preprocess writes only its shard, under <output>/shards/.
    folders = (preprocess.SHARDS,) if pipeline.sharded else preprocess.OUTPUT_FOLDERS
    assert local_paths == sorted(f"{root}/{folder}" for folder in folders)


def test_merge_records_reads_every_preprocess_shard_and_writes_the_datasets(sharded_pipeline: Pipeline) -> None:
    pipeline = sharded_pipeline
    step, source = pipeline.script_step("merge_records"), pipeline.script_step("preprocess")
    shards = input_at(step, pipeline.flag(step, "--shards"))
    source_output = output_at(source, f"{pipeline.flag(source, '--output')}/{preprocess.SHARDS}")
    assert shards["S3Input"]["S3Uri"] == output_reference(source, source_output)
    root = pipeline.flag(step, "--output")
    local_paths = sorted(output["S3Output"]["LocalPath"] for output in outputs(step))
    assert local_paths == sorted(f"{root}/{folder}" for folder in preprocess.OUTPUT_FOLDERS)


def training_channels(pipeline: Pipeline) -> list[tuple[str, dict]]:
    channels = []
    for step in pipeline.steps_of_type("Training"):
        channels += [(step["Name"], channel) for channel in step["Arguments"]["InputDataConfig"]]
    for step in pipeline.steps_of_type("Tuning"):
        definition = step["Arguments"]["TrainingJobDefinition"]
        channels += [(step["Name"], channel) for channel in definition["InputDataConfig"]]
    return channels


def test_training_channels_read_record_io_outputs_only(pipeline: Pipeline) -> None:
    record_outputs = [pipeline.dataset_reference(name) for name in preprocess.RECORD_OUTPUTS]
    channels = training_channels(pipeline)
    assert channels, "no Training or Tuning step"
    for step_name, channel in channels:
        source = channel["DataSource"]["S3DataSource"]["S3Uri"]
        assert source in record_outputs, f"{step_name} channel {channel['ChannelName']} reads {source}"
        assert channel.get("ContentType") == RECORDIO


def test_image_shape_matches_the_preprocessed_size(pipeline: Pipeline) -> None:
    step = pipeline.script_step("preprocess")
    expected = f"3,{pipeline.flag(step, '--image-height')},{pipeline.flag(step, '--image-width')}"
    shapes = [
        training["Arguments"]["HyperParameters"]["image_shape"] for training in pipeline.steps_of_type("Training")
    ]
    shapes += [
        tuning["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]["image_shape"]
        for tuning in pipeline.steps_of_type("Tuning")
    ]
    assert shapes and all(shape == expected for shape in shapes), shapes


def test_transform_scores_the_test_images_as_json(pipeline: Pipeline) -> None:
    transform = pipeline.only_step("Transform")["Arguments"]
    source = transform["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == pipeline.dataset_reference(preprocess.TEST_IMAGES)
    assert source.get("S3DataType", "S3Prefix") == "S3Prefix"
    assert transform["TransformInput"]["ContentType"] == "application/x-image"
    # One request per file: each test image is a whole request body.
    assert transform["TransformInput"].get("SplitType", "None") == "None"
    assert transform["TransformOutput"].get("Accept", "application/json") == "application/json"


def test_evaluate_reads_the_transform_output_and_the_index(pipeline: Pipeline) -> None:
    step, transform = pipeline.script_step("evaluate"), pipeline.only_step("Transform")
    predictions = input_at(step, pipeline.flag(step, "--predictions"))
    assert predictions["S3Input"]["S3Uri"] == {"Get": f"Steps.{transform['Name']}.TransformOutput.S3OutputPath"}
    index = input_at(step, pipeline.flag(step, "--index"))
    assert index["S3Input"]["S3Uri"] == pipeline.dataset_reference(preprocess.INDEX)


def test_property_files_name_outputs_of_their_step(pipeline: Pipeline) -> None:
    for step in pipeline.steps_of_type("Processing"):
        names = {output["OutputName"] for output in outputs(step)}
        for name, entry in property_files(step).items():
            assert entry["OutputName"] in names, f"{step['Name']}'s property file {name} names no output of it"


def report_location(pipeline: Pipeline) -> tuple[dict, dict, str]:
    """(Evaluate step, its report's ProcessingOutput, the report's file name)."""
    step = pipeline.script_step("evaluate")
    report = PurePosixPath(pipeline.flag(step, "--output"))
    return step, output_at(step, str(report.parent)), report.name


def test_report_is_the_property_file_check_accuracy_reads_and_register_attaches(pipeline: Pipeline) -> None:
    step, output, file_name = report_location(pipeline)
    condition = pipeline.only_step("Condition")
    json_gets = [condition["Arguments"]["Conditions"][0][side] for side in ("LeftValue", "RightValue")]
    json_get = next(value["Std:JsonGet"] for value in json_gets if isinstance(value, dict) and "Std:JsonGet" in value)
    reference = json_get["PropertyFile"]["Get"]
    prefix = f"Steps.{step['Name']}.PropertyFiles."
    assert reference.startswith(prefix), reference
    property_file = property_files(step)[reference[len(prefix) :]]
    assert property_file["OutputName"] == output["OutputName"]
    assert property_file["FilePath"] == file_name

    register = pipeline.only_step("RegisterModel")
    statistics = register["Arguments"]["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["S3Uri"] == {"Std:Join": {"On": "/", "Values": [output_reference(step, output), file_name]}}


# The training jobs' num_training_samples: (step type, where its hyperparameters are, the
# split.json path it must read, its train channel's dataset output).
NUM_TRAINING_SAMPLES = {
    "Tuning": (("TrainingJobDefinition", "StaticHyperParameters"), "num_training_samples.tuning_train", "tuning-train"),
    "Training": (("HyperParameters",), "num_training_samples.train", "train"),
}


def num_training_samples_json_get(step: dict) -> dict:
    """The Std:JsonGet a training step's `num_training_samples` hyperparameter is joined from."""
    hyperparameters = step["Arguments"]
    for key in NUM_TRAINING_SAMPLES[step["Type"]][0]:
        hyperparameters = hyperparameters[key]
    value = hyperparameters["num_training_samples"]
    # Hyperparameters are strings: the JSON number is wrapped in a Std:Join with no separator.
    assert isinstance(value, dict) and set(value) == {"Std:Join"}, value
    join = value["Std:Join"]
    assert join["On"] == "" and len(join["Values"]) == 1, join
    (only,) = join["Values"]
    assert set(only) == {"Std:JsonGet"}, only
    return only["Std:JsonGet"]


@pytest.mark.parametrize("kind", sorted(NUM_TRAINING_SAMPLES))
def test_num_training_samples_reads_the_split_property_file_of_the_dataset_step(pipeline: Pipeline, kind: str) -> None:
    step, dataset = pipeline.only_step(kind), pipeline.dataset_step()
    json_get = num_training_samples_json_get(step)
    assert json_get["Path"] == NUM_TRAINING_SAMPLES[kind][1]
    reference = json_get["PropertyFile"]["Get"]
    prefix = f"Steps.{dataset['Name']}.PropertyFiles."
    assert reference.startswith(prefix), f"{step['Name']} reads {reference}, not a property file of {dataset['Name']}"
    property_file = property_files(dataset)[reference[len(prefix) :]]
    assert property_file["OutputName"] == pipeline.dataset_output(preprocess.INDEX)["OutputName"]
    assert property_file["FilePath"] == preprocess.SPLIT_FILE
    # ... and its train channel is the output those records are counted in.
    channels = step["Arguments"].get("InputDataConfig") or step["Arguments"]["TrainingJobDefinition"]["InputDataConfig"]
    train = next(channel for channel in channels if channel["ChannelName"] == "train")
    assert train["DataSource"]["S3DataSource"]["S3Uri"] == pipeline.dataset_reference(NUM_TRAINING_SAMPLES[kind][2])


# --- a small dataset through the scripts, invoked as the pipeline invokes them -------------------


PALETTE = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210), "yellow": (210, 200, 30)}


def class_colours(pipeline: Pipeline) -> dict[str, tuple[int, int, int]]:
    """As many colour classes as the pipeline's --num-classes asks for (3 when not given)."""
    count = pipeline.parsed("preprocess").num_classes or 3
    assert count <= len(PALETTE)
    return dict(list(PALETTE.items())[:count])


def make_raw_images(root: Path, colours: dict[str, tuple[int, int, int]], per_class: int = 10) -> None:
    for label, colour in colours.items():
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


def files_under(folder: Path) -> dict[str, bytes]:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in files}


def owner_of(key: str, instances: int) -> int:
    """The instance a ShardedByS3Key input gives object `key` to.

    SageMaker gives each object to exactly one instance but does not say which; a hash of the
    key spreads them in an order the scripts cannot rely on (not the sorted listing's I, I+N, ...).
    """
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % instances


@dataclass
class Instance:
    host: str
    root: Path
    received: dict[str, list[str]] = field(default_factory=dict)  # input name → keys copied in


def run_processing(
    pipeline: Pipeline, step: dict, store: dict[str, Path], root: Path, instances: int | None = None
) -> list[Instance]:
    """Runs a script step like a processing job on each of its instances.

    Each instance gets its own copy of the container's folders under `root/<host>`: its inputs
    (the whole prefix, or its share of a ShardedByS3Key one), SageMaker's resource config naming
    every host and its own, and its outputs, which are then uploaded to the output's prefix in
    `store` (every instance to the same prefix, as SageMaker does; a file two instances wrote
    would be overwritten, so that fails). `instances` overrides the step's InstanceCount; a run
    so overridden publishes nothing (a reference run to compare with).
    """
    count = instance_count(step) if instances is None else instances
    hosts = [f"algo-{number}" for number in range(1, count + 1)]
    module = SCRIPTS[script_of(step) or ""]
    code_folder = str(PurePosixPath(step["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1]).parent)
    ran = []
    for position, host in enumerate(hosts):
        instance = Instance(host, root / host)
        config = Path(local(SAGEMAKER_RESOURCE_CONFIG, instance.root))
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"current_host": host, "hosts": hosts, "network_interface_name": "eth0"}))
        for item in inputs(step):
            s3_input = item["S3Input"]
            if s3_input["LocalPath"] == code_folder:
                continue
            source = store[reference_key(s3_input["S3Uri"])]
            keys = sorted(files_under(source))
            if s3_input["S3DataDistributionType"] == SHARDED_BY_KEY:
                keys = [key for key in keys if owner_of(key, count) == position]
            else:
                assert s3_input["S3DataDistributionType"] == FULLY_REPLICATED
            target = Path(local(s3_input["LocalPath"], instance.root))
            target.mkdir(parents=True)
            for key in keys:
                (target / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / key, target / key)
            instance.received[item["InputName"]] = keys
        for item in outputs(step):
            Path(local(item["S3Output"]["LocalPath"], instance.root)).mkdir(parents=True, exist_ok=True)
        arguments = [local(argument, instance.root) for argument in pipeline.container_arguments(step)]
        with pytest.MonkeyPatch.context() as patch:
            # The scripts that shard read SageMaker's resource config from this constant.
            if hasattr(module, "RESOURCE_CONFIG"):
                patch.setattr(module, "RESOURCE_CONFIG", config)
            assert module.main(arguments) == 0, f"{step['Name']} on {host} of {count} failed on {arguments}"
        ran.append(instance)
    if instances is None:
        for item in outputs(step):
            key = reference_key(output_reference(step, item))
            prefix = store.setdefault(key, root / "s3" / item["OutputName"])
            prefix.mkdir(parents=True, exist_ok=True)
            for instance in ran:
                written = Path(local(item["S3Output"]["LocalPath"], instance.root))
                for name in files_under(written):
                    assert not (prefix / name).exists(), f"{step['Name']}: two instances upload {key}/{name}"
                    (prefix / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(written / name, prefix / name)
    return ran


def rec_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """(class index, image bytes) of each record of a .rec, read sequentially (parts joined)."""
    data = path.read_bytes()
    offset, payload = 0, None
    while offset < len(data):
        magic, lrecord = struct.unpack_from("<II", data, offset)
        assert magic == 0xCED7230A
        cflag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
        part = data[offset + 8 : offset + 8 + length]
        offset += 8 + length + (-length % 4)
        if cflag in (0, 1):
            assert payload is None
            payload = part
        else:
            assert payload is not None
            payload += struct.pack("<I", magic) + part
        if cflag in (0, 3):
            _, label, _, _ = struct.unpack_from("<IfQQ", payload)
            yield int(label), payload[24:]
            payload = None
    assert payload is None


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


def json_path(document: Any, path: str, where: Path) -> Any:
    value = document
    for key in path.split("."):
        assert isinstance(value, dict) and key in value, f"`{path}` does not resolve in {where}"
        value = value[key]
    return value


def channel_folder(step: dict, name: str, store: dict[str, Path]) -> Path:
    channels = step["Arguments"].get("InputDataConfig") or step["Arguments"]["TrainingJobDefinition"]["InputDataConfig"]
    channel = next(channel for channel in channels if channel["ChannelName"] == name)
    return store[reference_key(channel["DataSource"]["S3DataSource"]["S3Uri"])]


def check_sharded_data_quality(pipeline: Pipeline, ran: list[Instance], raw: Path) -> None:
    """Each instance checked exactly the files it was given, and together every file once."""
    step = pipeline.script_step("data_quality")
    raw_input = input_at(step, pipeline.flag(step, "--input"))["InputName"]
    count = len(ran)
    seen: list[str] = []
    for position, instance in enumerate(ran):
        given = instance.received[raw_input]
        assert given, f"{instance.host} got no image; use more images"
        shard = Path(local(pipeline.flag(step, "--output"), instance.root)) / data_quality.SHARDS
        assert sorted(path.name for path in shard.iterdir()) == [data_quality.shard_file_name(position, count)]
        text = (shard / data_quality.shard_file_name(position, count)).read_text(encoding="ascii")
        header, *lines = (json.loads(line) for line in text.splitlines())
        assert (header["shard"], header["shard_count"]) == (position, count)
        assert header["input_distribution"] == data_quality.SHARDED
        checked = [line["key"] for line in lines if "key" in line]
        assert sorted(checked) == given, f"{instance.host} checked other files than the ones it was given"
        seen += checked
    assert sorted(seen) == sorted(files_under(raw))


def check_sharded_preprocess(pipeline: Pipeline, ran: list[Instance], raw: Path) -> None:
    """Each instance got every image (FullyReplicated) or only its share (ShardedByS3Key), and
    converted its run of records or exactly the images it got."""
    step = pipeline.script_step("preprocess")
    raw_input = input_at(step, pipeline.flag(step, "--images"))
    sharded_input = raw_input["S3Input"]["S3DataDistributionType"] == SHARDED_BY_KEY
    every = sorted(files_under(raw))
    count = len(ran)
    converted: list[int] = []
    for position, instance in enumerate(ran):
        given = instance.received[raw_input["InputName"]]
        shard = Path(local(pipeline.flag(step, "--output"), instance.root)) / preprocess.SHARDS
        assert sorted(path.name for path in shard.iterdir()) == [preprocess.shard_name(position, count)]
        part = json.loads((shard / preprocess.shard_name(position, count) / preprocess.PART_FILE).read_text())
        assert (part["shard"], part["shard_count"]) == (position, count)
        full = part["records"][preprocess.FULL]
        if sharded_input:
            assert given and given != every, f"{instance.host} should get only its share of the images"
            assert part["input_distribution"] == preprocess.SHARDED
            # Every raw image passed QA here, so each one received is one converted.
            assert full["count"] == len(full["indices"]) == len(given), instance.host
            converted += full["indices"]
        else:
            assert given == every, f"{instance.host} should get every image"
            assert "input_distribution" not in part
            converted += range(full["first"], full["first"] + full["count"])
    assert sorted(converted) == list(range(len(every)))


@pytest.mark.parametrize("environment", list(PIPELINES))
def test_a_small_dataset_through_the_pipeline_invocation(environment: str, tmp_path: Path) -> None:
    pipeline = PIPELINES[environment]
    colours = class_colours(pipeline)
    raw = tmp_path / "s3" / "raw"
    make_raw_images(raw, colours)
    store: dict[str, Path] = {"Parameters.InputDataUri": raw}

    # The manifest: data QA on each instance, merged when there are several.
    quality = pipeline.script_step("data_quality")
    ran = run_processing(pipeline, quality, store, tmp_path / "data-quality")
    assert len(ran) == pipeline.data_instances
    if pipeline.sharded:
        check_sharded_data_quality(pipeline, ran, raw)
        run_processing(pipeline, pipeline.script_step("merge_manifests"), store, tmp_path / "merge-manifests")
        # The merged manifest is the one a single instance checking every file writes.
        (single,) = run_processing(pipeline, quality, store, tmp_path / "data-quality-single", instances=1)
        manifest = pipeline.manifest_step()
        manifest_output = output_at(manifest, pipeline.flag(manifest, "--output"))
        merged = store[reference_key(output_reference(manifest, manifest_output))]
        assert files_under(merged) == files_under(Path(local(pipeline.flag(quality, "--output"), single.root)))

    # The datasets: preprocess on each instance (each with every image, or with its share of a
    # ShardedByS3Key input), merged when several.
    step = pipeline.script_step("preprocess")
    ran = run_processing(pipeline, step, store, tmp_path / "preprocess")
    if pipeline.sharded:
        check_sharded_preprocess(pipeline, ran, raw)
        run_processing(pipeline, pipeline.script_step("merge_records"), store, tmp_path / "merge-records")
        (single,) = run_processing(pipeline, step, store, tmp_path / "preprocess-single", instances=1)
        single_output = Path(local(pipeline.flag(step, "--output"), single.root))
        for folder in preprocess.OUTPUT_FOLDERS:
            merged = files_under(store[reference_key(pipeline.dataset_reference(folder))])
            assert merged, folder
            assert merged == files_under(single_output / folder), f"merged {folder}/ differs from one instance's"

    # num_training_samples: each JsonGet path is an integer in the split.json the dataset step
    # wrote, the number of records in the job's train channel.
    dataset = pipeline.dataset_step()
    for kind, (_, _, channel_output) in NUM_TRAINING_SAMPLES.items():
        training = pipeline.only_step(kind)
        json_get = num_training_samples_json_get(training)
        property_file = property_files(dataset)[json_get["PropertyFile"]["Get"].rsplit(".", 1)[1]]
        index_output = output_named(dataset, property_file["OutputName"])
        index_folder = store[reference_key(output_reference(dataset, index_output))]
        split_file = index_folder / property_file["FilePath"]
        value = json_path(json.loads(split_file.read_text(encoding="utf-8")), json_get["Path"], split_file)
        assert isinstance(value, int) and not isinstance(value, bool), value
        (channel_rec,) = list(channel_folder(training, "train", store).iterdir())
        assert value == len(list(rec_records(channel_rec))) > 0, (kind, channel_output)

    train_folder = channel_folder(pipeline.only_step("Training"), "train", store)
    (train_rec,) = list(train_folder.iterdir())
    model = train_stand_in_model(train_rec)
    run_transform(pipeline.only_step("Transform"), model, store, tmp_path / "transform")
    run_processing(pipeline, pipeline.script_step("evaluate"), store, tmp_path / "evaluate")

    step, output, file_name = report_location(pipeline)
    report_file = store[reference_key(output_reference(step, output))] / file_name
    report = json.loads(report_file.read_text(encoding="utf-8"))
    condition = pipeline.only_step("Condition")["Arguments"]["Conditions"][0]
    value = json_path(report, condition["LeftValue"]["Std:JsonGet"]["Path"], report_file)
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    # The stand-in model tells the colours apart, so labels survived every hop: folder names,
    # manifest (and its shards), class indices in the records, test.lst, classes.json and the report.
    assert value == 1.0
    metrics = report["multiclass_classification_metrics"]
    assert sorted(metrics["support_per_class"]) == sorted(colours)
    test_images = store[reference_key(pipeline.dataset_reference(preprocess.TEST_IMAGES))]
    assert sum(metrics["support_per_class"].values()) == len(list(test_images.iterdir())) > 0


def test_the_entrypoint_installs_the_requirements_then_runs_the_script_with_its_arguments(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    steps = [pipeline.script_step(script) for script in pipeline.expected_scripts()]
    entrypoints = [step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] for step in steps]
    # Every script step runs the same bootstrap, on its own script in the code input.
    for step, entrypoint in zip(steps, entrypoints):
        assert entrypoint[:-1] == entrypoints[0][:-1], step["Name"]
        code_input = input_at(step, str(PurePosixPath(entrypoint[-1]).parent))
        assert code_input["S3Input"]["S3DataDistributionType"] == FULLY_REPLICATED
    entrypoint = pipeline.script_step("data_quality")["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
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


# The monitoring pipeline each endpoint stack defines: one step running monitor.py.

import monitor  # noqa: E402


def monitoring_step(environment: str, model: str) -> tuple[dict, dict]:
    """The endpoint stack's monitoring pipeline: its Monitor step, and its parameters' defaults."""
    golden = REPO / "tests" / "golden" / environment / f"endpoint-{model}.yaml"
    template = yaml.load(golden.read_text(encoding="utf-8"), Loader=_TolerantLoader)
    body = template["Resources"]["MonitoringPipeline"]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    definition = json.loads(body)
    (step,) = definition["Steps"]
    defaults = {parameter["Name"]: parameter.get("DefaultValue") for parameter in definition["Parameters"]}
    return step, defaults


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_the_monitoring_step_runs_monitor_with_arguments_its_parser_takes(environment: str) -> None:
    step, defaults = monitoring_step(environment, "trees")
    assert script_of(step) == "monitor"
    assert instance_count(step) == 1
    package = "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-trees/3"
    arguments = []
    for value in step["Arguments"]["AppSpecification"]["ContainerArguments"]:
        if value == {"Get": "Parameters.ModelPackageArn"}:
            # The schedule passes the package the endpoint serves; the default is empty.
            assert defaults["ModelPackageArn"] == ""
            value = package
        assert isinstance(value, str), value
        arguments.append(value)
    parsed = monitor.parse_arguments(arguments)
    assert parsed.package_arn == package
    assert parsed.capture_uri.key.startswith("data-capture/trees/"), parsed.capture_uri
    assert parsed.report_uri.key == "monitoring/trees/", parsed.report_uri
    assert parsed.publish
    # The capture is read by the script itself: only the code is an input, so an endpoint
    # with no traffic yet fails no job.
    assert [entry["InputName"] for entry in inputs(step)] == ["code"]
