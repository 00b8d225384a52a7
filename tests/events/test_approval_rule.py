"""The model-approval rule of the ci stack against sample `SageMaker Model Package State Change`
events (the JSON files next to this test; see README.md).

For staging and prod, the rule's EventPattern is read from the golden template
tests/golden/<environment>/ci.yaml (resource ModelApprovedRule) and every sample is put through
two matchers that must agree with each other and with the expected outcome:

- moto's EventBridge: an event bus holding the rule, with an SQS queue as its target; the sample
  is sent with PutEvents and matches if it reaches the queue. (moto 5.2.5 accepts TestEventPattern
  but answers it with an empty response; should a later moto answer it, its Result must agree.)
- a small matcher written here for the subset of the pattern language the rule uses (exact values
  in arrays, nested objects), so that a moto matcher bug cannot hide a wrong pattern.

Only an approved package of one of the environment's own four groups may match: not a pending or
rejected one, not another project's group, not another environment's. The rule's InputTransformer
paths must resolve to non-empty strings in the approved event.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).resolve().parent
GOLDEN = REPO / "tests" / "golden"

PROJECT = "mlops-images"
MODELS = ("plants", "trees", "flowers", "grasses")
ACCOUNTS = {"staging": "222222222222", "prod": "333333333333"}
ENVIRONMENTS = tuple(ACCOUNTS)
REGION = "eu-west-1"
RULE = "ModelApprovedRule"

# The samples are written for staging; for_environment() moves them to another environment.
EXPECTED = {
    "model-package-approved": True,
    "model-package-pending": False,
    "model-package-rejected": False,
    "model-package-approved-other-project": False,
    "model-package-approved-other-environment": False,
}
SAMPLES = tuple(sorted(EXPECTED))


class _TolerantLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form tags (!Ref, !GetAtt, !Sub, ...) become their plain value."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _any_tag)


def load_rule(environment: str) -> dict[str, Any]:
    """The Properties of ModelApprovedRule in the environment's golden ci.yaml."""
    path = GOLDEN / environment / "ci.yaml"
    template = yaml.load(path.read_text(encoding="utf-8"), Loader=_TolerantLoader)
    resource = template["Resources"].get(RULE)
    assert resource is not None, f"{path} has no {RULE}"
    assert resource["Type"] == "AWS::Events::Rule"
    return resource["Properties"]


def environment_groups(environment: str) -> list[str]:
    return [f"{PROJECT}-{environment}-{model}" for model in MODELS]


def load_event(sample: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{sample}.json").read_text(encoding="utf-8"))


def for_environment(event: dict[str, Any], environment: str) -> dict[str, Any]:
    """The staging sample as the same event in `environment`: group names, ARNs and account."""
    text = json.dumps(event)
    text = text.replace(f"{PROJECT}-staging-", f"{PROJECT}-{environment}-")
    text = text.replace(ACCOUNTS["staging"], ACCOUNTS[environment])
    return json.loads(text)


def with_group(event: dict[str, Any], group: str) -> dict[str, Any]:
    """The event for the same package version in another group (group name and ARNs)."""
    old = event["detail"]["ModelPackageGroupName"]
    return json.loads(json.dumps(event).replace(f"/{old}/", f"/{group}/").replace(f'"{old}"', f'"{group}"'))


def sample_for(environment: str, sample: str) -> dict[str, Any]:
    return for_environment(load_event(sample), environment)


# --- the independent matcher ------------------------------------------------------------------


def reference_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for exact values only: every key of the pattern must be in the event;
    an array of values matches if the event's value (or, for an array in the event, one of its
    elements) equals one of them; an object recurses. Anything else (content filters such as
    prefix or exists, null) is refused, so a pattern using it cannot be judged by this matcher."""
    for key, condition in pattern.items():
        if isinstance(condition, dict):
            value = event.get(key)
            if not isinstance(value, dict) or not reference_matches(condition, value):
                return False
        elif isinstance(condition, list):
            for allowed in condition:
                if not isinstance(allowed, (str, int, float, bool)):
                    raise ValueError(f"{key}: only exact values are supported, not {allowed!r}")
            if key not in event:
                return False
            value = event[key]
            values = value if isinstance(value, list) else [value]
            if not any(type(v) is type(a) and v == a for v in values for a in condition):
                return False
        else:
            raise ValueError(f"{key}: a pattern's leaves must be arrays, not {condition!r}")
    return True


# --- moto's EventBridge -----------------------------------------------------------------------


class MotoRule:
    """The pattern as a rule on its own event bus in moto, delivering what it matches to an SQS
    queue."""

    def __init__(self, name: str, pattern: dict[str, Any]):
        self.pattern = json.dumps(pattern)
        self.events = boto3.client("events", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.bus = f"bus-{name}"
        self.events.create_event_bus(Name=self.bus)
        self.events.put_rule(Name=name, EventBusName=self.bus, EventPattern=self.pattern, State="ENABLED")
        self.queue_url = self.sqs.create_queue(QueueName=f"delivered-{name}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events.put_targets(Rule=name, EventBusName=self.bus, Targets=[{"Id": "delivered", "Arn": queue_arn}])

    def matches(self, event: dict[str, Any]) -> bool:
        sent = self.events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus,
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                    "Time": datetime.fromisoformat(event["time"].replace("Z", "+00:00")),
                }
            ]
        )
        assert sent["FailedEntryCount"] == 0, sent["Entries"]
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        assert len(messages) <= 1, f"one event was delivered {len(messages)} times"
        matched = bool(messages)
        if matched:
            delivered = json.loads(messages[0]["Body"])
            assert delivered["detail"] == event["detail"]
            assert delivered["resources"] == event["resources"]

        answer = self.events.test_event_pattern(EventPattern=self.pattern, Event=json.dumps(event))
        if "Result" in answer:
            assert answer["Result"] == matched, "moto's TestEventPattern and its delivery disagree"
        return matched


@pytest.fixture(scope="module")
def moto_rule() -> Iterator[Callable[[dict[str, Any]], MotoRule]]:
    """Gives the MotoRule of a pattern, one per distinct pattern, inside one moto session."""
    with mock_aws():
        rules: dict[str, MotoRule] = {}

        def get(pattern: dict[str, Any]) -> MotoRule:
            key = json.dumps(pattern, sort_keys=True)
            if key not in rules:
                rules[key] = MotoRule(f"rule-{len(rules)}", pattern)
            return rules[key]

        yield get


def both_match(moto_rule: Callable[[dict[str, Any]], MotoRule], pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether the pattern matches the event; moto and the reference matcher must agree."""
    by_moto = moto_rule(pattern).matches(event)
    by_reference = reference_matches(pattern, event)
    assert by_moto == by_reference, (
        f"moto says {by_moto}, the reference matcher {by_reference}, for group "
        f"{event['detail'].get('ModelPackageGroupName')!r} and status {event['detail'].get('ModelApprovalStatus')!r}"
    )
    return by_moto


# --- the pattern's groups ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_pattern_lists_exactly_the_environment_groups(environment: str) -> None:
    groups = load_rule(environment)["EventPattern"]["detail"]["ModelPackageGroupName"]
    expected = environment_groups(environment)
    strangers = [group for group in groups if group not in expected]
    assert not strangers, f"{environment}'s rule listens to groups that are not its own: {strangers}"
    assert len(groups) == len(set(groups)), f"duplicate groups: {groups}"
    assert sorted(groups) == sorted(expected)


# --- the samples ------------------------------------------------------------------------------


def test_samples_are_the_expected_files() -> None:
    assert sorted(path.stem for path in EVENTS.glob("*.json")) == sorted(SAMPLES)
    for sample in SAMPLES:
        event = load_event(sample)
        assert event["source"] == "aws.sagemaker"
        assert event["detail-type"] == "SageMaker Model Package State Change"
        assert event["resources"] == [event["detail"]["ModelPackageArn"]]
        group, version = event["detail"]["ModelPackageGroupName"], event["detail"]["ModelPackageVersion"]
        assert event["detail"]["ModelPackageArn"] == (
            f"arn:aws:sagemaker:{event['region']}:{event['account']}:model-package/{group}/{version}"
        )


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_only_approved_packages_of_the_environment_match(moto_rule, environment: str, sample: str) -> None:
    pattern = load_rule(environment)["EventPattern"]
    event = sample_for(environment, sample)
    assert both_match(moto_rule, pattern, event) is EXPECTED[sample], (
        f"{environment}'s rule should {'match' if EXPECTED[sample] else 'ignore'} {sample}"
    )


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_an_approved_package_of_each_group_matches(moto_rule, environment: str, model: str) -> None:
    pattern = load_rule(environment)["EventPattern"]
    event = with_group(sample_for(environment, "model-package-approved"), f"{PROJECT}-{environment}-{model}")
    assert both_match(moto_rule, pattern, event)


@pytest.mark.parametrize(
    ("rule_environment", "event_environment"),
    [(rule, event) for rule in ENVIRONMENTS for event in ENVIRONMENTS if rule != event],
)
def test_an_approval_in_another_environment_does_not_match(
    moto_rule, rule_environment: str, event_environment: str
) -> None:
    pattern = load_rule(rule_environment)["EventPattern"]
    event = sample_for(event_environment, "model-package-approved")
    assert not both_match(moto_rule, pattern, event)
    # Nor when it arrives in this environment's account: the group alone must keep it out.
    event["account"] = ACCOUNTS[rule_environment]
    assert not both_match(moto_rule, pattern, event)


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        node = event
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _drop(path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        node = event
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


MUTATIONS = {
    "status Rejected": _set(("detail", "ModelApprovalStatus"), "Rejected"),
    "status PendingManualApproval": _set(("detail", "ModelApprovalStatus"), "PendingManualApproval"),
    "status lower case": _set(("detail", "ModelApprovalStatus"), "approved"),
    "no status": _drop(("detail", "ModelApprovalStatus")),
    "group with a suffix": lambda event: event["detail"].update(
        ModelPackageGroupName=event["detail"]["ModelPackageGroupName"] + "-old"
    ),
    "group upper case": lambda event: event["detail"].update(
        ModelPackageGroupName=event["detail"]["ModelPackageGroupName"].upper()
    ),
    "no group": _drop(("detail", "ModelPackageGroupName")),
    "another detail-type": _set(("detail-type",), "SageMaker Model State Change"),
    "another source": _set(("source",), "aws.codebuild"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_changing_the_approved_event_stops_the_match(moto_rule, environment: str, mutation: str) -> None:
    pattern = load_rule(environment)["EventPattern"]
    approved = sample_for(environment, "model-package-approved")
    assert both_match(moto_rule, pattern, approved), "the unchanged approved event should match"
    changed = copy.deepcopy(approved)
    MUTATIONS[mutation](changed)
    assert not both_match(moto_rule, pattern, changed), (
        f"{environment}'s rule matched the approved event with {mutation}"
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_looser_pattern_would_be_caught(moto_rule, environment: str) -> None:
    """The samples tell a wrong pattern from the right one: without the status filter the rejected
    and pending samples match, with another environment's groups the approved one does not."""
    pattern = load_rule(environment)["EventPattern"]
    without_status = copy.deepcopy(pattern)
    without_status["detail"].pop("ModelApprovalStatus", None)
    assert both_match(moto_rule, without_status, sample_for(environment, "model-package-rejected"))
    assert both_match(moto_rule, without_status, sample_for(environment, "model-package-pending"))

    other = next(name for name in ENVIRONMENTS if name != environment)
    wrong_groups = copy.deepcopy(pattern)
    wrong_groups["detail"]["ModelPackageGroupName"] = environment_groups(other)
    assert not both_match(moto_rule, wrong_groups, sample_for(environment, "model-package-approved"))


def test_the_reference_matcher_refuses_what_it_cannot_judge() -> None:
    event = load_event("model-package-approved")
    with pytest.raises(ValueError):
        reference_matches({"detail": {"ModelPackageGroupName": [{"prefix": "mlops-images-"}]}}, event)


# --- the target's input -----------------------------------------------------------------------


def walk_json_path(document: Any, path: str) -> Any:
    """Resolves a plain dotted path ($.a.b.c); other JSON path syntax is refused."""
    assert re.fullmatch(r"\$(\.[A-Za-z0-9_-]+)+", path), f"not a plain dotted path: {path!r}"
    node = document
    for key in path.split(".")[1:]:
        assert isinstance(node, dict) and key in node, f"{path} does not resolve: no {key!r}"
        node = node[key]
    return node


def render_input_template(template: str, values: dict[str, str]) -> str:
    """EventBridge's substitution for string values: a placeholder standing for a whole JSON value,
    quoted or not, becomes that value as a JSON string."""
    text = re.sub(r'"<([A-Za-z0-9_]+)>"', lambda m: json.dumps(values[m.group(1)]), template)
    return re.sub(r"<([A-Za-z0-9_]+)>", lambda m: json.dumps(values[m.group(1)]), text)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_target_input_resolves_in_the_approved_event(environment: str) -> None:
    rule = load_rule(environment)
    event = sample_for(environment, "model-package-approved")
    (target,) = rule["Targets"]
    transformer = target["InputTransformer"]
    paths = transformer["InputPathsMap"]
    assert {"$.detail.ModelPackageGroupName", "$.detail.ModelPackageArn"} <= set(paths.values())

    values = {name: walk_json_path(event, path) for name, path in paths.items()}
    for name, value in values.items():
        assert isinstance(value, str) and value, f"{name} ({paths[name]}) should be a non-empty string, got {value!r}"
    by_path = {paths[name]: value for name, value in values.items()}
    assert by_path["$.detail.ModelPackageGroupName"] in environment_groups(environment)
    assert by_path["$.detail.ModelPackageArn"] == event["resources"][0]

    placeholders = set(re.findall(r"<([A-Za-z0-9_.-]+)>", transformer["InputTemplate"]))
    assert placeholders <= set(paths), f"placeholders without a path: {placeholders - set(paths)}"
    sent = json.loads(render_input_template(transformer["InputTemplate"], values))
    overrides = sent["environmentVariablesOverride"]
    assert {entry["value"] for entry in overrides} >= {
        by_path["$.detail.ModelPackageGroupName"],
        by_path["$.detail.ModelPackageArn"],
    }
