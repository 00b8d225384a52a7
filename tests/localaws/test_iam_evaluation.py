"""The emulator's IAM policy evaluation (localaws/iam.py) and its reading of the handler data
(localaws/handler_permissions.py), in process, on synthetic policies and rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from localaws import handler_permissions, iam

ROLE = "arn:aws:sts::123456789012:assumed-role/deployer/AWSCloudFormation"


def identity(*statements, boundary=None) -> iam.Identity:
    return iam.Identity(
        arn=ROLE,
        account="123456789012",
        policies=[{"Version": "2012-10-17", "Statement": list(statements)}],
        boundary={"Statement": boundary} if boundary is not None else None,
    )


def allowed(who: iam.Identity, action: str, resource: str = "*", **context) -> bool:
    return iam.authorize(who, action, resource, context) is None


def test_actions_match_case_insensitively_with_wildcards():
    who = identity({"Effect": "Allow", "Action": ["S3:Get*", "ssm:?etParameter"], "Resource": "*"})
    assert allowed(who, "s3:GetObject")
    assert allowed(who, "ssm:GetParameter")
    assert not allowed(who, "ssm:GetParameters")
    assert not allowed(who, "s3:PutObject")


def test_resources_match_case_sensitively_and_not_resource_excludes():
    who = identity(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data-*"},
        {"Effect": "Allow", "Action": "kms:*", "NotResource": "arn:aws:kms:*:*:key/secret"},
    )
    assert allowed(who, "s3:GetObject", "arn:aws:s3:::data-1")
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::Data-1")
    assert not allowed(who, "s3:GetObject", "arn:aws:s3:::other")
    assert allowed(who, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/open")
    assert not allowed(who, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/secret")


def test_a_deny_wins_and_says_so():
    who = identity(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": ["s3:*"], "Resource": "*"},
    )
    assert allowed(who, "s3:PutObject")
    denial = iam.authorize(who, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")
    assert denial.message() == (
        f"User: {ROLE} is not authorized to perform: sqs:SendMessage on resource: "
        "arn:aws:sqs:us-east-1:1:q with an explicit deny in an identity-based policy"
    )
    assert iam.authorize(identity(), "kms:CreateKey").message() == (
        f"User: {ROLE} is not authorized to perform: kms:CreateKey because no identity-based "
        "policy allows the kms:CreateKey action"
    )


def test_the_boundary_must_allow_too():
    who = identity(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        boundary=[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    )
    assert allowed(who, "s3:GetObject")
    assert "no permissions boundary allows" in iam.authorize(who, "sns:Publish").message()


@pytest.mark.parametrize(
    ("condition", "context", "grants"),
    [
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, {"iam:PassedToService": "sagemaker.amazonaws.com"}, True),
        ({"StringEquals": {"iam:PassedToService": ["events.amazonaws.com", "sagemaker.amazonaws.com"]}}, {"iam:PassedToService": "sagemaker.amazonaws.com"}, True),
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, {"iam:PassedToService": "events.amazonaws.com"}, False),
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, {}, False),
        ({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, {}, True),
        ({"StringLike": {"iam:AWSServiceName": "*.application-autoscaling.amazonaws.com"}}, {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}, True),
        ({"StringNotEquals": {"aws:SourceAccount": "999999999999"}}, {"aws:SourceAccount": "123456789012"}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudformation:*:123456789012:stack/*"}}, {"aws:SourceArn": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"}, True),
        ({"ForAnyValue:StringLike": {"kms:ViaService": ["s3.*.amazonaws.com"]}}, {"kms:ViaService": "s3.us-east-1.amazonaws.com"}, True),
        ({"ForAnyValue:StringLike": {"kms:ViaService": ["s3.*.amazonaws.com"]}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {}, True),
        # A key the emulator cannot evaluate never grants.
        ({"StringLike": {"cloudwatch:namespace": "aws/sagemaker/*"}}, {}, False),
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, {}, False),
    ],
)
def test_conditions(condition, context, grants):
    who = identity({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*", "Condition": condition})
    assert allowed(who, "iam:PassRole", "arn:aws:iam::123456789012:role/r", **context) is grants


def test_a_deny_whose_condition_cannot_be_evaluated_applies():
    who = identity(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:CalledVia": "x"}}},
    )
    assert not allowed(who, "s3:GetObject")
    assert allowed(who, "sqs:SendMessage")


def test_root_may_do_everything():
    assert allowed(iam.Identity(arn="arn:aws:iam::1:root", account="1", root=True), "iam:DeleteRole")


class Role:
    arn = "arn:aws:iam::123456789012:role/r"

    def __init__(self, trust):
        self.assume_role_policy_document = trust


def test_trust_policies():
    trusting = {"Statement": [{"Effect": "Allow", "Principal": {"Service": ["cloudformation.amazonaws.com"]}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]}
    assert iam.trusts(Role(trusting), "cloudformation.amazonaws.com", {"aws:SourceAccount": "123456789012"})
    assert not iam.trusts(Role(trusting), "cloudformation.amazonaws.com", {"aws:SourceAccount": "999999999999"})
    assert not iam.trusts(Role(trusting), "sagemaker.amazonaws.com", {"aws:SourceAccount": "123456789012"})


# --- the data files ---------------------------------------------------------------------------------

HANDLERS = """\
Test::Widget::Thing\tcreate\twidget:CreateThing,widget:TagThing,widget:DescribeKey,iam:PassRole,widget:Never
Test::Widget::Thing\tread\twidget:GetThing
Test::Widget::Thing\tupdate\twidget:UpdateThing
Test::Widget::Thing\tdelete\twidget:DeleteThing
"""
RULES = """\
# comment
arn\tTest::Widget::Thing\t-\twidget:thing arn:${Partition}:widget:${Region}:${Account}:thing/${ThingName}\treason
arn\tTest::Widget::Thing\t-\twidget:thing-id arn:${Partition}:widget:${Region}:${Account}:thing-id/${Ref}\treason
target\tTest::Widget::Thing\tiam:PassRole\tiam:role ${Roles}\treason
target\tTest::Widget::Thing\twidget:DescribeKey\twidget:key ${Encryption.KeyArn}\treason
excuse\tTest::Widget::Thing\twidget:Tag*\tTags\treason
excuse\tTest::Widget::Thing\twidget:DescribeKey\tEncryption.Enabled=true\treason
excuse\tTest::Widget::Thing\twidget:Never\tnever\treason
handler\tTest::Widget::Other\tcreate\twidget:CreateOther\treason
"""
ACTIONS = """\
@widget:thing\tarn:${Partition}:widget:${Region}:${Account}:thing/${ThingName}
widget:CreateThing\tthing!
widget:TagThing\tthing
widget:GetThing\tthing-id
widget:UpdateThing\tthing
widget:DeleteThing\t
widget:DescribeKey\tkey
iam:PassRole\trole!
"""


@pytest.fixture
def data(tmp_path: Path) -> handler_permissions.HandlerData:
    (tmp_path / "cloudformation-handler-permissions.tsv").write_text(HANDLERS)
    (tmp_path / "cloudformation-handler-rules.tsv").write_text(RULES)
    (tmp_path / "iam-actions.tsv").write_text(ACTIONS)
    return handler_permissions.HandlerData(tmp_path)


def requests(data, operation, properties, physical_id=None, old=None):
    found = data.requests(
        "Test::Widget::Thing",
        operation,
        properties,
        name="generated-Name",
        name_property="ThingName",
        physical_id=physical_id,
        account="123456789012",
        region="eu-west-1",
        partition="aws",
        other_properties=old,
    )
    return [(request.action, request.resource, dict(request.context)) for request in found]


def test_create_needs_create_and_read_with_excuses_targets_and_own_arns(data):
    thing = "arn:aws:widget:eu-west-1:123456789012:thing/generated-Name"
    assert requests(data, "create", {"Roles": ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"]}) == [
        ("widget:CreateThing", thing, {}),
        ("iam:PassRole", "arn:aws:iam::1:role/a", {"iam:PassedToService": "widget.amazonaws.com"}),
        ("iam:PassRole", "arn:aws:iam::1:role/b", {"iam:PassedToService": "widget.amazonaws.com"}),
        # needs the physical id: checked once the resource exists
        ("widget:GetThing", None, {}),
    ]
    assert requests(
        data,
        "create",
        {"ThingName": "Mine", "Tags": [{"Key": "a", "Value": "b"}], "Encryption": {"Enabled": True, "KeyArn": "arn:k"}},
        physical_id="id-1",
    ) == [
        ("widget:CreateThing", "arn:aws:widget:eu-west-1:123456789012:thing/Mine", {}),
        ("widget:TagThing", "arn:aws:widget:eu-west-1:123456789012:thing/Mine", {}),
        ("widget:DescribeKey", "arn:k", {}),
        ("iam:PassRole", "*", {"iam:PassedToService": "widget.amazonaws.com"}),  # no Roles: on *
        ("widget:GetThing", "arn:aws:widget:eu-west-1:123456789012:thing-id/id-1", {}),
    ]


def test_update_and_delete(data):
    assert [action for action, _, _ in requests(data, "update", {}, "id", old={"Tags": [1]})] == [
        "widget:UpdateThing",
        "widget:GetThing",
    ]
    assert requests(data, "delete", {}, "id") == [
        ("widget:DeleteThing", "*", {}),
        ("widget:GetThing", "arn:aws:widget:eu-west-1:123456789012:thing-id/id", {}),
    ]


def test_handler_rows_give_types_without_a_schema_their_lists(data):
    assert data.permissions("Test::Widget::Other", "create") == ["widget:CreateOther"]
    assert data.permissions("Test::Widget::Unknown", "create") is None


def test_the_project_data_reads():
    data = handler_permissions.HandlerData()
    assert "sagemaker:CreateEndpoint" in data.permissions("AWS::SageMaker::Endpoint", "create")
    assert data.scopes["sagemaker:createendpoint"] == {"endpoint": True, "endpoint-config": True}
    assert data.arn_formats["sagemaker:endpoint-config"] == [
        "arn:${Partition}:sagemaker:${Region}:${Account}:endpoint-config/${EndpointConfigName}"
    ]
