"""tests/deploy/policy_eval.py: the evaluator test_iam.py relies on decides as IAM does, for
every operator the shipped policies use (table-driven), and refuses what it does not know."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.policy_eval import (
    Decision,
    PolicyError,
    Request,
    Resource,
    evaluate,
    request_tag_context,
    tag_keys_context,
)

DOC = "arn:aws:ssm:us-east-1:123456789012:document/pkg"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "S",
        "Effect": "Allow",
        "Action": "ssm:DeleteDocument",
        "Resource": "arn:aws:ssm:*:123456789012:document/*",
    }
    if condition is not None:
        statement["Condition"] = condition
    statement.update(extra)
    return statement


def delete(
    tags: dict[str, str] | None = None, context: dict[str, tuple[str, ...]] | None = None
) -> Request:
    return Request("ssm:DeleteDocument", (Resource(DOC, tags or {}),), context or {})


OWNED = {"ssm-gitops:owner": "team-a"}
FOREIGN = {"ssm-gitops:owner": "team-b"}


@pytest.mark.parametrize(
    ("condition", "request_", "allowed"),
    [
        # StringEquals: equal, different, missing key (no match).
        ({"StringEquals": {"aws:ResourceTag/ssm-gitops:owner": "team-a"}}, delete(OWNED), True),
        ({"StringEquals": {"aws:ResourceTag/ssm-gitops:owner": "team-a"}}, delete(FOREIGN), False),
        ({"StringEquals": {"aws:ResourceTag/ssm-gitops:owner": "team-a"}}, delete({}), False),
        # Values of one key are ORed; key names are case-insensitive, values are not.
        (
            {"StringEquals": {"aws:ResourceTag/ssm-gitops:owner": ["x", "team-b"]}},
            delete(FOREIGN),
            True,
        ),
        ({"StringEquals": {"AWS:RESOURCETAG/SSM-GITOPS:OWNER": "team-a"}}, delete(OWNED), True),
        ({"StringEquals": {"aws:ResourceTag/ssm-gitops:owner": "TEAM-A"}}, delete(OWNED), False),
        # ssm:resourceTag is SSM's spelling of the same key.
        ({"StringEquals": {"ssm:resourceTag/ssm-gitops:owner": "team-a"}}, delete(OWNED), True),
        # Negated operators match a missing key; IfExists too.
        ({"StringNotEquals": {"aws:ResourceTag/ssm-gitops:owner": "team-a"}}, delete({}), True),
        (
            {"StringNotEquals": {"aws:ResourceTag/ssm-gitops:owner": "team-a"}},
            delete(OWNED),
            False,
        ),
        (
            {"StringEqualsIfExists": {"aws:RequestTag/ssm-gitops:owner": "team-a"}},
            delete(),
            True,
        ),
        (
            {"StringEqualsIfExists": {"aws:RequestTag/ssm-gitops:owner": "team-a"}},
            delete(context=request_tag_context(FOREIGN)),
            False,
        ),
        # StringLike wildcards.
        ({"StringLike": {"aws:ResourceTag/ssm-gitops:owner": "team-?"}}, delete(OWNED), True),
        ({"StringLike": {"aws:ResourceTag/ssm-gitops:owner": "t*"}}, delete(FOREIGN), True),
        ({"StringLike": {"aws:ResourceTag/ssm-gitops:owner": "x*"}}, delete(OWNED), False),
        ({"StringNotLike": {"aws:ResourceTag/ssm-gitops:owner": "x*"}}, delete(OWNED), True),
        # Null: true = the key is absent.
        ({"Null": {"aws:ResourceTag/ssm-gitops:owner": "true"}}, delete({}), True),
        ({"Null": {"aws:ResourceTag/ssm-gitops:owner": "true"}}, delete(OWNED), False),
        ({"Null": {"aws:ResourceTag/ssm-gitops:owner": "false"}}, delete(OWNED), True),
        ({"Null": {"aws:ResourceTag/ssm-gitops:owner": False}}, delete({}), False),
        # ForAnyValue: at least one request value; an empty set never matches.
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["ssm-gitops:owner"]}},
            delete(context=tag_keys_context(["team", "ssm-gitops:owner"])),
            True,
        ),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["ssm-gitops:owner"]}},
            delete(context=tag_keys_context(["team"])),
            False,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["ssm-gitops:owner"]}}, delete(), False),
        # ForAllValues: every request value; an empty or missing set always matches.
        (
            {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["ssm-gitops:owner"]}},
            delete(context=tag_keys_context(["team", "cost"])),
            True,
        ),
        (
            {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["ssm-gitops:owner"]}},
            delete(context=tag_keys_context(["team", "ssm-gitops:owner"])),
            False,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, delete(), True),
        (
            {"ForAllValues:StringLike": {"aws:TagKeys": ["team*"]}},
            delete(context=tag_keys_context(["team", "teams"])),
            True,
        ),
        # Operators AND, keys of one operator AND.
        (
            {
                "StringEquals": {
                    "aws:ResourceTag/ssm-gitops:owner": "team-a",
                    "aws:RequestTag/x": "1",
                },
            },
            delete(OWNED),
            False,
        ),
        (
            {
                "StringEquals": {"aws:ResourceTag/ssm-gitops:owner": "team-a"},
                "Null": {"aws:RequestTag/x": "true"},
            },
            delete(OWNED),
            True,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], request_: Request, allowed: bool) -> None:
    assert evaluate(policy(allow(condition)), request_).allowed is allowed


@pytest.mark.parametrize(
    ("pattern", "arn", "allowed"),
    [
        ("arn:aws:iam::*:role/ssm-gitops", "arn:aws:iam::111122223333:role/ssm-gitops", True),
        ("arn:aws:iam::*:role/ssm-gitops", "arn:aws:iam::111122223333:role/admin", False),
        ("arn:aws:iam::1111222233?3:role/*", "arn:aws:iam::111122223333:role/a/b", True),
        ("arn:aws:iam::111122223333:role/*", "arn:aws:iam::111122223334:role/x", False),
    ],
)
def test_arn_like(pattern: str, arn: str, allowed: bool) -> None:
    statement = {
        "Sid": "S",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": "*",
        "Condition": {"ArnLike": {"aws:PrincipalArn": pattern}},
    }
    request = Request(
        "sts:AssumeRole", (Resource("arn:aws:iam::1:role/r"),), {"aws:PrincipalArn": (arn,)}
    )
    assert evaluate(policy(statement), request).allowed is allowed


def test_resource_and_action_wildcards() -> None:
    """`*` in a Resource also spans `/` and `:`; actions match case-insensitively."""
    p = policy(
        {"Sid": "S", "Effect": "Allow", "Action": "SSM:delete*", "Resource": "arn:aws:ssm:*"}
    )
    assert evaluate(p, delete()).allowed
    other = Request("s3:GetObject", (Resource("arn:aws:s3:::b/k"),))
    assert evaluate(p, other).decision is Decision.IMPLICIT_DENY


def test_explicit_deny_wins() -> None:
    deny = allow(Effect="Deny", Sid="D")
    result = evaluate(policy(allow(), deny), delete(OWNED))
    assert result.decision is Decision.EXPLICIT_DENY


def test_every_resource_of_a_request_must_be_allowed() -> None:
    """CreateAssociation names the association and the document it runs: one allowed and one
    not is a denial."""
    p = policy(allow())
    request = Request(
        "ssm:DeleteDocument",
        (Resource(DOC), Resource("arn:aws:ssm:us-east-1:999999999999:document/x")),
    )
    result = evaluate(p, request)
    assert result.decision is Decision.IMPLICIT_DENY
    assert "999999999999" in result.explain()


def test_trust_policy_principal() -> None:
    trust = policy(
        {
            "Sid": "T",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:role/controller"},
            "Action": "sts:AssumeRole",
        }
    )
    role = (Resource("arn:aws:iam::2:role/ssm-gitops"),)
    assert evaluate(
        trust, Request("sts:AssumeRole", role, principal="arn:aws:iam::1:role/controller")
    ).allowed
    assert not evaluate(
        trust, Request("sts:AssumeRole", role, principal="arn:aws:iam::1:role/x")
    ).allowed


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},  # not supported: refused
        {"StringEquals": {"aws:TagKeys": "ssm-gitops:owner"}},  # multivalued key, no set op
        {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}},  # policy variable
        {"Null": {"aws:ResourceTag/owner": "maybe"}},
        {"ForEveryValue:StringEquals": {"aws:TagKeys": "x"}},
    ],
)
def test_unsupported_policy_is_an_error_never_a_guess(condition: dict[str, Any]) -> None:
    """Bug guarded (moto's evaluator): an operator it does not know counts as matching."""
    with pytest.raises(PolicyError):
        evaluate(policy(allow(condition)), delete(OWNED, request_tag_context(OWNED)))


def test_not_action_is_refused() -> None:
    statement = {"Sid": "S", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    with pytest.raises(PolicyError):
        evaluate(policy(statement), delete())
