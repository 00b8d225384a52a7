"""Bucket policies with conditions: moto applies a policy statement whatever its Condition says.

The platform's buckets deny every request whose `aws:SecureTransport` is false. moto ignores the
condition, so that Deny would refuse every object upload, although on AWS it refuses only plain
HTTP and the SDKs always use TLS there. Here a statement is skipped when its condition block holds
only `aws:SecureTransport` tests that a TLS request does not match; statements with any other
condition are evaluated as moto does (that gap is listed in docs/local-aws.md).
"""

import json
from typing import Any


def _applies_to_tls(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not condition:
        return True
    for operator, tests in condition.items():
        if operator != "Bool" or set(tests) != {"aws:SecureTransport"}:
            return True
        values = tests["aws:SecureTransport"]
        values = values if isinstance(values, list) else [values]
        if "true" in [str(value).lower() for value in values]:
            return True
    return False


def install() -> None:
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        if self.policy is None:
            return original(self, action, resource)
        policy = json.loads(self.policy.decode())
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        kept = [statement for statement in statements if _applies_to_tls(statement)]
        saved = self.policy
        self.policy = json.dumps({**policy, "Statement": kept}).encode()
        try:
            return original(self, action, resource)
        finally:
            self.policy = saved

    FakeBucket.get_permission = get_permission
