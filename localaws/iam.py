"""IAM policy evaluation: may this identity call this action on this resource?

One job: given an identity held in moto's IAM (a role, a user, an assumed-role session, or an
account's root) and a request (action, resource ARN, condition context), decide as AWS does for
identity-based policies:

- the identity's policies: a role's inline and attached managed policies; a user's, plus those of
  its groups;
- its permissions boundary, if any, and an assumed-role session's policy, if any: an action must
  be allowed by the identity's policies *and* by each of these;
- an explicit Deny in any of them wins;
- Action / NotAction (case-insensitive), Resource / NotResource, with `*` and `?` wildcards;
- conditions: StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringLike, StringNotLike,
  ArnEquals, ArnLike, ArnNotEquals, ArnNotLike and Bool, with the `...IfExists` suffix and the
  `ForAnyValue:` / `ForAllValues:` prefixes, on the keys this emulator knows (`MODELLED_KEYS`).
  A condition on any other key (or with another operator) cannot be evaluated: an Allow statement
  carrying it does not grant, a Deny statement carrying it applies (the stricter reading of both),
  and either is logged to server.log.

moto's own evaluator (moto/iam/access_control.py) is not used: it treats a condition that does not
match as a Deny, ignores conditions it does not know (granting), matches actions case-sensitively,
has no NotResource, `?`, permissions boundaries or session policies.

Not modelled: resource-based policies (bucket, key, topic policies), SCPs, policy variables
(`${aws:username}`), NotPrincipal.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("localaws")

#: Condition keys whose value the emulator knows for a request: present with a value, or known absent.
MODELLED_KEYS = frozenset(
    {
        "iam:passedtoservice",
        "iam:awsservicename",
        "aws:sourceaccount",
        "aws:sourcearn",
        "kms:viaservice",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:requestedregion",
        "aws:securetransport",
        "s3:prefix",
    }
)

ALLOW, DENY = "Allow", "Deny"


# --- identities -----------------------------------------------------------------------------------


@dataclass
class Identity:
    """Who calls: what AWS names it in errors, and the policies that apply to it."""

    arn: str
    account: str
    policies: list[dict[str, Any]] = field(default_factory=list)
    boundary: dict[str, Any] | None = None
    session_policy: dict[str, Any] | None = None
    #: The account's root (or a principal that moto let exist without any IAM record): may do all.
    root: bool = False
    #: The role behind it, if any (arn), for trust checks and messages.
    role_arn: str | None = None
    principal_type: str = "AssumedRole"


def document(policy: Any) -> dict[str, Any]:
    """A policy document as a dict, from moto's stored forms (JSON text, a managed Policy)."""
    if isinstance(policy, dict):
        return policy
    versions = getattr(policy, "versions", None)
    if versions is not None:
        policy = next(version for version in versions if version.is_default).document
    if isinstance(policy, (bytes, bytearray)):
        policy = policy.decode()
    return json.loads(policy)


def iam_backend(account: str, partition: str = "aws"):
    from moto.iam.models import iam_backends

    return iam_backends[account][partition]


def managed_policy(account: str, partition: str, arn: str) -> Any:
    # moto keeps AWS managed policies (when loaded) in the same map as the account's own.
    return iam_backend(account, partition).managed_policies.get(arn)


def find_role(account: str, partition: str, role_arn: str):
    """The role moto's IAM holds for this ARN, or None."""
    from moto.iam.exceptions import NotFoundException

    try:
        return iam_backend(account, partition).get_role_by_arn(role_arn)
    except NotFoundException:
        return None


def role_policies(role: Any, account: str, partition: str) -> tuple[list[dict], dict | None]:
    policies = [document(text) for text in role.policies.values()]
    policies += [document(policy) for policy in role.managed_policies.values()]
    boundary = None
    if role.permissions_boundary_arn:
        found = managed_policy(account, partition, role.permissions_boundary_arn)
        # A boundary naming a policy that does not exist allows nothing.
        boundary = document(found) if found is not None else {"Statement": []}
    return policies, boundary


def role_session(role_arn: str, session_name: str, partition: str = "aws") -> Identity | None:
    """The identity of a session of the role (e.g. CloudFormation acting as a stack's role), or
    None when moto's IAM has no such role."""
    account = role_arn.split(":")[4]
    role = find_role(account, partition, role_arn)
    if role is None:
        return None
    policies, boundary = role_policies(role, account, partition)
    return Identity(
        arn=f"arn:{partition}:sts::{account}:assumed-role/{role.name}/{session_name}",
        account=account,
        policies=policies,
        boundary=boundary,
        role_arn=role.arn,
    )


def caller(access_key: str, account: str, partition: str = "aws") -> Identity:
    """The identity behind a request's access key in `account` (the account moto resolved).

    Credentials from sts:AssumeRole are that role's session; an IAM user's keys are that user;
    anything else (the `testing` keys scripts/local-aws prints) is the account's root. moto lets
    AssumeRole succeed for a role that does not exist (the release-flow tests assume such roles);
    with no policies to evaluate, such a session is treated as the account's root and logged.
    """
    from moto.sts.models import sts_backends

    assumed = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
    if assumed is not None:
        role = find_role(account, partition, assumed.role_arn)
        if role is None:
            logger.info(
                "localaws: %s is a session of a role that does not exist; treated as the root of %s",
                assumed.arn,
                account,
            )
            return Identity(arn=assumed.arn, account=account, root=True)
        policies, boundary = role_policies(role, account, partition)
        session_policy = document(assumed.policy) if assumed.policy else None
        return Identity(
            arn=assumed.arn,
            account=account,
            policies=policies,
            boundary=boundary,
            session_policy=session_policy,
            role_arn=role.arn,
        )
    backend = iam_backend(account, partition)
    user = backend.get_user_from_access_key_id(access_key)
    if user is not None:
        policies = [document(text) for text in user.policies.values()]
        policies += [document(policy) for policy in user.managed_policies.values()]
        for group in backend.get_groups_for_user(user.name):
            policies += [document(text) for text in getattr(group, "policies", {}).values()]
            policies += [document(p) for p in getattr(group, "managed_policies", {}).values()]
        boundary = None
        if getattr(user, "permissions_boundary", None):
            found = managed_policy(account, partition, user.permissions_boundary)
            boundary = document(found) if found is not None else {"Statement": []}
        return Identity(
            arn=user.arn, account=account, policies=policies, boundary=boundary, principal_type="User"
        )
    return Identity(
        arn=f"arn:{partition}:iam::{account}:root", account=account, root=True, principal_type="Account"
    )


# --- decisions ------------------------------------------------------------------------------------


@dataclass
class Denial:
    """Why a request is refused, worded as AWS words it."""

    identity: str
    action: str
    resource: str
    #: "identity-based policy", "permissions boundary" or "session policy"
    policy_kind: str
    explicit: bool

    def message(self) -> str:
        on = f" on resource: {self.resource}" if self.resource != "*" else ""
        if self.explicit:
            why = f"with an explicit deny in {'an' if self.policy_kind[0] in 'i' else 'a'} {self.policy_kind}"
        else:
            why = f"because no {self.policy_kind} allows the {self.action} action"
        return f"User: {self.identity} is not authorized to perform: {self.action}{on} {why}"


# How an SDK names a service in an error's trailer, and the status code AWS answers AccessDenied with.
SERVICE_ERRORS = {
    "sagemaker": ("SageMaker", 400),
    "s3": ("S3", 403),
    "iam": ("Iam", 403),
    "kms": ("Kms", 400),
    "apigateway": ("ApiGateway", 403),
    "logs": ("CloudWatchLogs", 400),
    "events": ("EventBridge", 400),
    "sns": ("Sns", 403),
    "ssm": ("Ssm", 400),
    "cloudwatch": ("CloudWatch", 403),
    "codebuild": ("CodeBuild", 400),
    "application-autoscaling": ("ApplicationAutoScaling", 400),
    "sts": ("Sts", 403),
    "cloudformation": ("CloudFormation", 403),
}


def handler_reason(denial: Denial) -> str:
    """A resource event's reason for a handler call AWS refused, e.g. `... (Service: SageMaker,
    Status Code: 400, Request ID: ...)`, as CloudFormation shows it."""
    service = denial.action.split(":")[0]
    name, status = SERVICE_ERRORS.get(service, (service, 403))
    return f"{denial.message()} (Service: {name}, Status Code: {status}, Request ID: {uuid.uuid4()})"


def authorize(
    identity: Identity, action: str, resource: str = "*", context: dict[str, Any] | None = None
) -> Denial | None:
    """None if the identity may call `action` on `resource`; else why not."""
    if identity.root:
        return None
    values = {
        "aws:principalarn": identity.role_arn or identity.arn,
        "aws:principalaccount": identity.account,
        "aws:principaltype": identity.principal_type,
        "aws:securetransport": "true",
    }
    values.update({key.lower(): value for key, value in (context or {}).items()})
    denial = None
    for kind, documents in (
        ("identity-based policy", identity.policies),
        ("permissions boundary", [identity.boundary] if identity.boundary is not None else None),
        ("session policy", [identity.session_policy] if identity.session_policy is not None else None),
    ):
        if documents is None:
            continue
        decision = evaluate(documents, action, resource, values)
        if decision == DENY:
            return Denial(identity.arn, action, resource, kind, explicit=True)
        if decision != ALLOW and denial is None:
            denial = Denial(identity.arn, action, resource, kind, explicit=False)
    return denial


def evaluate(
    documents: list[dict[str, Any]], action: str, resource: str, context: dict[str, Any]
) -> str | None:
    """ALLOW, DENY, or None (nothing allows it) for one set of policies."""
    allowed = False
    for policy in documents:
        for statement in statements(policy):
            effect = statement.get("Effect")
            if not applies_to(statement, action, resource):
                continue
            holds = conditions_hold(statement.get("Condition"), context)
            if holds is None:
                logger.warning(
                    "localaws: IAM condition not evaluable for %s on %s (%s): %s",
                    action,
                    resource,
                    "Deny applied" if effect == DENY else "Allow not granted",
                    json.dumps(statement.get("Condition")),
                )
                holds = effect == DENY
            if not holds:
                continue
            if effect == DENY:
                return DENY
            if effect == ALLOW:
                allowed = True
    return ALLOW if allowed else None


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy.get("Statement") or []
    return [found] if isinstance(found, dict) else list(found)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def applies_to(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "NotPrincipal" in statement:
        logger.warning("localaws: NotPrincipal is not modelled; statement ignored: %s", statement)
        return False
    if "NotAction" in statement:
        if any(matches(pattern, action, ignore_case=True) for pattern in as_list(statement["NotAction"])):
            return False
    elif not any(matches(pattern, action, ignore_case=True) for pattern in as_list(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        return not any(matches(pattern, resource) for pattern in as_list(statement["NotResource"]))
    if "Resource" in statement:
        return any(matches(pattern, resource) for pattern in as_list(statement["Resource"]))
    # Trust policies have no Resource: they are about the role itself.
    return True


@functools.lru_cache(maxsize=4096)
def glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(f"^{regex}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: Any, value: str, ignore_case: bool = False) -> bool:
    return isinstance(pattern, str) and glob(pattern, ignore_case).match(value) is not None


# --- conditions -----------------------------------------------------------------------------------


def _string_equals(value: str, expected: str) -> bool:
    return value == expected


def _string_equals_ignore_case(value: str, expected: str) -> bool:
    return value.lower() == expected.lower()


def _like(value: str, expected: str) -> bool:
    return matches(expected, value)


def _bool(value: str, expected: str) -> bool:
    return str(value).lower() == str(expected).lower()


# operator -> (test, negated)
OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "ArnEquals": (_string_equals, False),
    "ArnNotEquals": (_string_equals, True),
    "ArnLike": (_like, False),
    "ArnNotLike": (_like, True),
    "Bool": (_bool, False),
}


def conditions_hold(conditions: dict[str, Any] | None, context: dict[str, Any]) -> bool | None:
    """True / False, or None when a condition uses an operator or key the emulator cannot evaluate."""
    if not conditions:
        return True
    result = True
    for operator, block in conditions.items():
        qualifier, _, name = operator.rpartition(":")
        if_exists = name.endswith("IfExists")
        name = name[: -len("IfExists")] if if_exists else name
        if name not in OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
            return None
        test, negated = OPERATORS[name]
        for key, expected in (block or {}).items():
            if key.lower() not in MODELLED_KEYS:
                return None
            expected_values = [
                str(item).lower() if isinstance(item, bool) else str(item) for item in as_list(expected)
            ]
            actual = context.get(key.lower())
            if actual is None:
                # An absent key: IfExists and ForAllValues hold, negated operators hold, others fail.
                holds = if_exists or qualifier == "ForAllValues" or (negated and qualifier == "")
            else:
                values = [str(item) for item in as_list(actual)]
                hits = [any(test(value, item) for item in expected_values) for value in values]
                if negated:
                    hits = [not hit for hit in hits]
                holds = all(hits) if qualifier == "ForAllValues" else any(hits)
            result = result and holds
    return result


# --- trust ----------------------------------------------------------------------------------------


def trusts(role: Any, service: str, context: dict[str, Any] | None = None) -> bool:
    """Whether the role's trust policy lets the AWS service principal call sts:AssumeRole."""
    try:
        policy = document(role.assume_role_policy_document)
    except (TypeError, ValueError):
        return False
    values = {key.lower(): value for key, value in (context or {}).items()}
    allowed = False
    for statement in statements(policy):
        if not any(matches(pattern, "sts:AssumeRole", ignore_case=True) for pattern in as_list(statement.get("Action"))):
            continue
        principal = statement.get("Principal") or {}
        services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if principal != "*" and service not in services:
            continue
        holds = conditions_hold(statement.get("Condition"), values)
        if holds is None:
            logger.warning(
                "localaws: trust policy condition of %s not evaluable: %s",
                role.arn,
                json.dumps(statement.get("Condition")),
            )
            holds = statement.get("Effect") == DENY
        if not holds:
            continue
        if statement.get("Effect") == DENY:
            return False
        if statement.get("Effect") == ALLOW:
            allowed = True
    return allowed
