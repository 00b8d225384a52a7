"""localaws/latency.py: the table, the scaling, the doc copy, and what install() wraps.

No timing is measured: the sleeps go to an injected function that records them.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from localaws import latency

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """Each test installs into its own fake classes, from a model that is off."""
    monkeypatch.setattr(latency, "_installed", False)
    monkeypatch.setattr(latency, "_state", {"scale": 0.0, "api_scale": 0.0})


# --- the table ------------------------------------------------------------------------------------


def template_types() -> set[str]:
    paths = list((REPO_ROOT / "templates").glob("*.tera")) + list(
        (REPO_ROOT / "tests" / "golden" / "staging").glob("*.yaml")
    )
    pattern = re.compile(r"Type:\s*['\"]?(AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)")
    return {match for path in paths for match in pattern.findall(path.read_text())}


def test_every_type_the_templates_use_has_a_row():
    used = template_types()
    assert "AWS::SageMaker::Endpoint" in used, "the scan finds the templates' types"
    missing = sorted(used - set(latency.RESOURCE_SECONDS))
    assert not missing, f"add rows to RESOURCE_SECONDS for {missing}"


def test_every_handler_type_has_a_row():
    from localaws.handlers import HANDLERS

    missing = sorted(set(HANDLERS) - set(latency.RESOURCE_SECONDS))
    assert not missing, f"add rows to RESOURCE_SECONDS for {missing}"


def test_every_row_has_a_source_and_sane_times():
    for name, row in [*latency.RESOURCE_SECONDS.items(), ("default", latency.DEFAULT_TIMING)]:
        assert row.source.strip(), name
        for operation in latency.OPERATIONS:
            assert 0 < row.seconds(operation) <= 3600, (name, operation)
    for service, (milliseconds, source) in latency.API_MILLISECONDS.items():
        assert 0 < milliseconds < 1000 and source.strip(), service


def test_lookup():
    assert latency.resource_seconds("AWS::SageMaker::Endpoint", "create") == 480
    assert latency.resource_seconds("AWS::SageMaker::Endpoint", "update") == 600
    assert latency.resource_seconds("AWS::KMS::Key", "create") == 75
    assert latency.resource_seconds("AWS::IAM::Role", "delete") == 10
    # A type not in the table takes the default.
    assert latency.resource_seconds("AWS::Foo::Bar", "update") == latency.DEFAULT_TIMING.update
    with pytest.raises(ValueError):
        latency.resource_seconds("AWS::IAM::Role", "replace")
    assert latency.api_seconds("s3") == 0.03
    assert latency.api_seconds("IAM") == 0.1
    assert latency.api_seconds("cloudformation") == latency.API_MILLISECONDS["default"][0] / 1000
    assert latency.api_seconds(None) == latency.api_seconds("default")


def test_the_endpoint_takes_minutes_and_iam_waits_for_propagation():
    assert latency.resource_seconds("AWS::SageMaker::Endpoint", "create") >= 300
    assert latency.resource_seconds("AWS::SageMaker::Endpoint", "update") > latency.resource_seconds(
        "AWS::SageMaker::Endpoint", "create"
    )
    assert latency.resource_seconds("AWS::IAM::Role", "create") >= 10


# --- scaling --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0.0), ("", 0.0), ("0", 0.0), ("0.02", 0.02), (" 1 ", 1.0), ("fast", 0.0),
     ("-1", 0.0), ("nan", 0.0), ("inf", 0.0)],
)
def test_parse_scale(value, expected):
    assert latency.parse_scale(value) == expected


def test_scales_from_the_environment():
    assert latency.scales_from({}) == (0.0, 0.0)
    assert latency.scales_from({latency.SCALE_VARIABLE: "0"}) == (0.0, 0.0)
    assert latency.scales_from({latency.SCALE_VARIABLE: "0.01"}) == (0.01, 0.01)
    assert latency.scales_from(
        {latency.SCALE_VARIABLE: "0.01", latency.API_SCALE_VARIABLE: "1"}
    ) == (0.01, 1.0)
    # The API factor alone does not turn the model on.
    assert latency.scales_from({latency.API_SCALE_VARIABLE: "1"}) == (0.0, 0.0)
    assert latency.scaled(600, 0.02) == pytest.approx(12)
    assert latency.scaled(600, 0) == 0


def test_service_of_a_signed_request():
    signed = {
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20240101/eu-west-1/"
        "cloudformation/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
    }
    assert latency.service_of(signed) == "cloudformation"
    assert latency.service_of({}) == "default"
    assert latency.service_of({"HTTP_AUTHORIZATION": "garbage"}) == "default"


# --- the doc copy ---------------------------------------------------------------------------------


def test_the_doc_table_is_the_dict():
    text = (REPO_ROOT / "docs" / "local-aws.md").read_text()
    match = re.search(
        r"<!-- latency-table:start -->\n(.*?)\n<!-- latency-table:end -->", text, re.DOTALL
    )
    assert match, "docs/local-aws.md has the latency table between its markers"
    assert match.group(1) == latency.markdown_table(), (
        "regenerate the table in docs/local-aws.md with `python3 -m localaws.latency`"
    )


# --- install --------------------------------------------------------------------------------------


class FakeBase:
    TYPE = "AWS::SNS::Topic"

    def __init__(self):
        self.calls: list[str] = []

    def create(self, name, properties):
        self.calls.append("create")
        self.update({}, properties)  # as some handlers do: nested, must not wait twice

    def update(self, old, new):
        self.calls.append("update")

    def destroy(self):
        self.calls.append("destroy")


class FakeEndpoint(FakeBase):
    TYPE = "AWS::SageMaker::Endpoint"


class FakeDispatcher:
    def __call__(self, environ, start_response):
        start_response("200 OK", [])
        return [b"moto"]


def fakes():
    # Fresh classes per test, since install() replaces their methods.
    base = type("Topic", (FakeBase,), {})
    endpoint = type("Endpoint", (FakeEndpoint,), {})
    dispatcher = type("Dispatcher", (FakeDispatcher,), {})
    return base, endpoint, dispatcher


def test_off_by_default_wraps_nothing():
    topic, endpoint, dispatcher = fakes()
    slept: list[float] = []
    for environment in ({}, {latency.SCALE_VARIABLE: "0"}, {latency.SCALE_VARIABLE: "no"}):
        assert not latency.install(environment, slept.append, [topic, endpoint], dispatcher)
    assert "create" in vars(FakeBase) and "create" not in vars(topic)
    assert dispatcher.__call__ is FakeDispatcher.__call__
    topic().create("n", {})
    dispatcher()({"PATH_INFO": "/"}, lambda *_: None)
    assert slept == []


def test_resource_operations_wait_their_scaled_time():
    topic, endpoint, dispatcher = fakes()
    slept: list[float] = []
    assert latency.install({latency.SCALE_VARIABLE: "0.01"}, slept.append, [topic, endpoint], dispatcher)
    resource = endpoint()
    resource.create("name", {})
    assert resource.calls == ["create", "update"], "the original hooks still run"
    assert slept == [pytest.approx(4.8)], "one wait, the create's: the nested update does not wait"
    slept.clear()
    resource.update({"a": 1}, {"a": 2})
    resource.destroy()
    assert slept == [pytest.approx(6.0), pytest.approx(1.2)]
    slept.clear()
    topic().destroy()
    assert slept == [pytest.approx(0.03)]


def test_a_failed_operation_does_not_wait():
    topic, endpoint, dispatcher = fakes()

    def fail(self):
        raise RuntimeError("boom")

    topic.destroy = fail
    slept: list[float] = []
    latency.install({latency.SCALE_VARIABLE: "1"}, slept.append, [topic], dispatcher)
    with pytest.raises(RuntimeError):
        topic().destroy()
    assert slept == []
    # The next operation on this thread waits again (the nesting guard was reset).
    topic().update({}, {"a": 1})
    assert slept == [3]


def call(dispatcher, environ):
    statuses: list[str] = []
    body = dispatcher()(environ, lambda status, headers: statuses.append(status))
    return statuses[0], b"".join(body)


def test_api_requests_wait_by_service_and_moto_api_does_not():
    topic, endpoint, dispatcher = fakes()
    slept: list[float] = []
    latency.install(
        {latency.SCALE_VARIABLE: "0.02", latency.API_SCALE_VARIABLE: "1"},
        slept.append,
        [topic],
        dispatcher,
    )
    s3 = {"PATH_INFO": "/bucket/key", "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 "
          "Credential=testing/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=x"}
    assert call(dispatcher, s3) == ("200 OK", b"moto")
    assert call(dispatcher, {"PATH_INFO": "/moto-api/"}) == ("200 OK", b"moto")
    assert slept == [pytest.approx(0.03)]
    topic().destroy()
    assert slept[-1] == pytest.approx(0.06), "resources use the other factor"


def test_the_control_endpoint_reads_and_sets_the_factors():
    topic, endpoint, dispatcher = fakes()
    slept: list[float] = []
    latency.install({latency.SCALE_VARIABLE: "0.02"}, slept.append, [topic], dispatcher)
    status, body = call(dispatcher, {"PATH_INFO": latency.CONTROL_PATH, "REQUEST_METHOD": "GET"})
    assert status == "200 OK" and json.loads(body) == {"scale": 0.02, "api_scale": 0.02}
    payload = json.dumps({"api_scale": 1}).encode()
    status, body = call(
        dispatcher,
        {
            "PATH_INFO": latency.CONTROL_PATH,
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(len(payload)),
            "wsgi.input": io.BytesIO(payload),
        },
    )
    assert status == "200 OK" and json.loads(body) == {"scale": 0.02, "api_scale": 1.0}
    assert slept == [], "the control endpoint does not wait"
    call(dispatcher, {"PATH_INFO": "/"})
    assert slept == [pytest.approx(0.03)]
    bad = b'{"scale": -1}'
    status, _ = call(
        dispatcher,
        {
            "PATH_INFO": latency.CONTROL_PATH,
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(len(bad)),
            "wsgi.input": io.BytesIO(bad),
        },
    )
    assert status.startswith("400")
    assert latency.current() == {"scale": 0.02, "api_scale": 1.0}


# --- a stack's resources in parallel --------------------------------------------------------------


TEMPLATE_RESOURCES = {
    "Key": {"Type": "AWS::KMS::Key"},
    "Alias": {"Type": "AWS::KMS::Alias", "Properties": {"TargetKeyId": {"Ref": "Key"}}},
    "Bucket": {
        "Type": "AWS::S3::Bucket",
        "Properties": {"KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]}},
    },
    "Topic": {"Type": "AWS::SNS::Topic"},
    "Role": {"Type": "AWS::IAM::Role", "DependsOn": "Topic"},
    "Policy": {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyDocument": {"Fn::Sub": "${Bucket.Arn}/* ${!Literal} ${AWS::Region}"}},
    },
}


def test_related_resources_follow_every_kind_of_reference_both_ways():
    from localaws.engine import references

    related = latency.related_resources(TEMPLATE_RESOURCES, references)
    assert related == {
        "Key": {"Alias", "Bucket"},
        "Alias": {"Key"},
        "Bucket": {"Key", "Policy"},
        "Topic": {"Role"},
        "Role": {"Topic"},
        "Policy": {"Bucket"},
    }


def test_a_schedule_waits_for_the_longest_chain_not_the_sum():
    from localaws.engine import references

    schedule = latency.Schedule("op", 100.0, latency.related_resources(TEMPLATE_RESOURCES, references))
    # moto's order: dependencies first. The wait is until start + the resource's finish.
    assert schedule.wait("Key", 75, now=100.0) == 75  # 0 → 75
    assert schedule.wait("Topic", 3, now=175.0) == 0  # 0 → 3: long done by now
    assert schedule.wait("Alias", 15, now=175.0) == 15  # after Key: 75 → 90
    assert schedule.wait("Bucket", 10, now=190.0) == 0  # after Key: 75 → 85, overlapped with Alias
    assert schedule.wait("Role", 15, now=190.0) == 0  # after Topic: 3 → 18
    assert schedule.wait("Policy", 15, now=190.0) == 10  # after Bucket: 85 → 100
    assert schedule.finish == {"Key": 75, "Topic": 3, "Alias": 90, "Bucket": 85, "Role": 18, "Policy": 100}
    # A deletion in the same operation (a replacement's cleanup) follows what it is related to.
    assert schedule.wait("Bucket", 5, now=200.0) == 5  # after Policy: 100 → 105


class Stack:
    pass


def test_a_schedule_follows_the_template_being_applied_as_it_changes():
    """An update deletes what the old template had and creates what the new one has: each
    resource waits for those it is related to in its own template."""
    old = {"Old": {"Gone"}, "Gone": {"Old"}}
    new = {"Key": {"Alias"}, "Alias": {"Key"}}
    schedule = latency.Schedule("op", 0.0, {})
    schedule.relate(old)
    assert schedule.wait("Gone", 5, now=0.0) == 5
    assert schedule.wait("Old", 5, now=5.0) == 5  # after Gone: 5 → 10
    schedule.relate(new)
    schedule.relate(new)  # the same map again: nothing to add
    assert schedule.merged == [old, new]
    assert schedule.wait("Key", 75, now=10.0) == 65  # unrelated to the deletions: 0 → 75
    assert schedule.wait("Alias", 15, now=75.0) == 15  # after Key: 75 → 90
    assert schedule.related == {"Old": {"Gone"}, "Gone": {"Old"}, "Key": {"Alias"}, "Alias": {"Key"}}


class ResourceMap:
    def __init__(self, resources):
        self._resource_json_map = resources


def test_the_resources_applied_are_the_resource_maps_not_the_stacks_template_yet():
    """A change set runs before the stack's template becomes its own (a stack created by a change
    set has none until then): moto's resource map holds what is being applied."""
    stack = Stack()
    stack.template_dict = {}
    stack.resource_map = ResourceMap(TEMPLATE_RESOURCES)
    assert latency.applying_resources(stack) is TEMPLATE_RESOURCES
    # Without a resource map (or an empty one), the stack's template.
    stack.resource_map = ResourceMap({})
    stack.template_dict = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    assert latency.applying_resources(stack) == {"Topic": {"Type": "AWS::SNS::Topic"}}
    del stack.resource_map
    assert latency.applying_resources(stack) == {"Topic": {"Type": "AWS::SNS::Topic"}}




def test_handlers_in_one_stack_operation_overlap_and_a_new_operation_starts_its_own_clock():
    topic, endpoint, dispatcher = fakes()
    slept: list[float] = []
    now = [0.0]
    stack = Stack()
    operation = ["op-1"]
    related = {"Endpoint": {"Topic"}, "Topic": {"Endpoint"}, "Other": set()}

    def locate(handler):
        return stack, operation[0], lambda: related

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    latency.install(
        {latency.SCALE_VARIABLE: "0.01"}, sleep, [topic, endpoint], dispatcher, lambda: now[0], locate
    )
    first, second, third = topic(), endpoint(), topic()
    first.logical_id, second.logical_id, third.logical_id = "Topic", "Endpoint", "Other"
    first.create("t", {})  # 0.03
    second.create("e", {})  # after Topic: 0.03 + 4.8
    third.create("o", {})  # unrelated: done at 0.03, already past
    assert slept == [pytest.approx(0.03), pytest.approx(4.8)]
    assert now[0] == pytest.approx(4.83)
    operation[0] = "op-2"
    third.destroy()
    assert slept[-1] == pytest.approx(0.03), "a new operation: its own clock from now"


def test_outside_a_stack_operation_the_whole_time_is_waited():
    topic, endpoint, dispatcher = fakes()
    slept: list[float] = []
    latency.install(
        {latency.SCALE_VARIABLE: "0.01"}, slept.append, [topic], dispatcher, lambda: 0.0, lambda handler: None
    )
    resource = topic()
    resource.create("a", {})
    resource.create("b", {})
    assert slept == [pytest.approx(0.03), pytest.approx(0.03)]
