"""EventBridge rules refuse the schedule expressions AWS refuses, with AWS's error.

The examples come from the EventBridge user guide ("Schedule expressions for rules" and the
rate expression reference); mlops-infra's `validate` refuses the same ones (src/config/schedule.rs).
"""

from __future__ import annotations

import json
import uuid

import pytest

ACCEPTED = [
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(1 day)",
    "rate(7 days)",
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 0 L * ? *)",
    "cron(0 0 3W * ? *)",
    "cron(0 0 ? * 6L *)",
    "cron(0,30 * * JAN,FEB,MAR ? 2030-2199)",
]

REFUSED = [
    "rate(0 days)",
    "rate(1 days)",
    "rate(1 hours)",
    "rate(5 hour)",
    "rate(2 weeks)",
    "rate(1.5 hours)",
    "cron(0 0 * * * *)",
    "cron(0 0 ? * ? *)",
    "cron(0 0 1 * MON *)",
    "cron(0 3 * * 1)",
    "cron(60 0 * * ? *)",
    "cron(0 24 * * ? *)",
    "cron(0 0 32 * ? *)",
    "cron(0 0 * 13 ? *)",
    "cron(0 0 ? * 8 *)",
    "cron(0 0 * * ? 2200)",
    "cron(? 0 * * ? *)",
    "cron(0 0 ? * 1/2 *)",
    "cron(0 0 ? * 3#1,6#3 *)",
    "cron(0 0 ? * 3#6 *)",
    "cron(0/0 * * * ? *)",
    "every week",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_the_guides_expressions_are_accepted(expression: str):
    from localaws.handlers.events import schedule_expression_is_valid

    assert schedule_expression_is_valid(expression)


@pytest.mark.parametrize("expression", REFUSED)
def test_expressions_eventbridge_refuses_are_refused(expression: str):
    from localaws.handlers.events import schedule_expression_is_valid

    assert not schedule_expression_is_valid(expression)


def rule_template(expression: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Schedule": {
                    "Type": "AWS::Events::Rule",
                    "Properties": {"ScheduleExpression": expression, "State": "ENABLED"},
                }
            }
        }
    )


def test_a_rule_with_an_invalid_schedule_fails_with_eventbridges_error(aws):
    stack = f"schedule-{uuid.uuid4().hex[:8]}"
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=rule_template("rate(1 days)"))
    status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    assert status == "ROLLBACK_COMPLETE"
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    [reason] = [
        event.get("ResourceStatusReason", "")
        for event in events
        if event["LogicalResourceId"] == "Schedule" and event["ResourceStatus"] == "CREATE_FAILED"
    ]
    assert "Parameter ScheduleExpression is not valid." in reason
    assert "ValidationException" in reason


def test_a_rule_with_a_valid_schedule_is_created(aws):
    stack = f"schedule-{uuid.uuid4().hex[:8]}"
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=rule_template("rate(1 day)"))
    status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"
    [rule] = [
        rule
        for rule in aws("events").list_rules()["Rules"]
        if rule["Name"].startswith(f"{stack}-Schedule")
    ]
    assert rule["ScheduleExpression"] == "rate(1 day)"
