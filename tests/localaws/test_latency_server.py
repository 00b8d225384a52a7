"""The latency model in the running server: a stack operation's resources wait on the stack's
clock in the order of the template being applied.

Only lower bounds are checked, from the stack's own events: a model that waits at least its table's
time, never a speed."""

from __future__ import annotations

import json

from conftest import client_as, run_script, start_server

from localaws import latency

SCALE = 0.01
CHAIN = {
    "Resources": {
        "Key": {"Type": "AWS::KMS::Key"},
        "Alias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": "alias/chain", "TargetKeyId": {"Ref": "Key"}},
        },
    }
}


def test_a_stack_created_by_a_change_set_waits_for_its_longest_chain(tmp_path):
    """Until a change set has run, the stack's own template is the empty one of a stack in
    REVIEW_IN_PROGRESS: the alias must still wait for its key, as in the change set's template."""
    url = start_server(tmp_path, "--latency-scale", str(SCALE))
    try:
        cloudformation = client_as(url, "cloudformation", "us-east-1")
        created = cloudformation.create_change_set(
            StackName="chain", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=json.dumps(CHAIN)
        )
        waiting = {"Delay": 1, "MaxAttempts": 60}
        cloudformation.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig=waiting)
        cloudformation.execute_change_set(ChangeSetName=created["Id"])
        cloudformation.get_waiter("stack_create_complete").wait(StackName="chain", WaiterConfig=waiting)
        events = {
            (event["LogicalResourceId"], event["ResourceStatus"]): event["Timestamp"]
            for event in cloudformation.describe_stack_events(StackName="chain")["StackEvents"]
        }
    finally:
        run_script(tmp_path, "stop")
    key = (events[("Key", "CREATE_COMPLETE")] - events[("Key", "CREATE_IN_PROGRESS")]).total_seconds()
    alias = (events[("Alias", "CREATE_COMPLETE")] - events[("Key", "CREATE_COMPLETE")]).total_seconds()
    # Event timestamps are kept to the millisecond.
    assert key >= latency.resource_seconds("AWS::KMS::Key", "create") * SCALE - 0.002
    assert alias >= latency.resource_seconds("AWS::KMS::Alias", "create") * SCALE - 0.002, (
        "the alias did not wait for its key"
    )
