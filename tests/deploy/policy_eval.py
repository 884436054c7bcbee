"""A small IAM policy evaluator: exactly the policy grammar deploy/iam/ uses, and nothing else.

Used by tests/deploy/test_iam.py to prove that the shipped policies themselves allow every call
of a real pass and deny touching what is not ours. It follows the IAM policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, else an Allow whose Action, Resource (or Principal) and every Condition
match, else the request is implicitly denied. A request naming several resources (for example
CreateAssociation: the association and the document it runs) is allowed only if every one of
them is.

Why not a library: moto's evaluator (moto/iam/access_control.py) knows only `StringEquals`,
treats every other operator as matching, and lets a condition on a missing key pass; nothing
on PyPI that is maintained evaluates conditions against a request context (policyuniverse,
parliament, policy_sentry and cloudsplaining parse, lint or generate policies; principalmapper
simulates but has had no release since 2022). So this evaluator supports the operators the
policies use and REFUSES anything else (an unknown operator, a policy variable, a set operator
missing on a multivalued key), rather than guessing:

- `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`,
  `ArnNotEquals`, `ArnNotLike`, each also with the `IfExists` suffix, and `Null`
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html);
- a key missing from the request: a positive operator does not match, a negated one
  (`...Not...`) does, `...IfExists` does;
- `ForAllValues:` (true when every request value matches, and for an empty or missing key) and
  `ForAnyValue:` (true when at least one does; false when empty or missing) on multivalued keys
  such as `aws:TagKeys`
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html);
- condition key names are case-insensitive, values case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# Context keys that hold a set of values: only set operators may test them.
MULTIVALUED = frozenset({"aws:tagkeys"})
_BASE_OPERATORS = frozenset(
    {
        "stringequals",
        "stringnotequals",
        "stringlike",
        "stringnotlike",
        "arnequals",
        "arnlike",
        "arnnotequals",
        "arnnotlike",
    }
)


class PolicyError(Exception):
    """The policy uses something this evaluator does not support: fix the policy or teach
    the evaluator, never guess."""


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "implicitly denied"


@dataclass(frozen=True)
class Resource:
    """One resource of a request: its ARN, its tags (the `aws:ResourceTag/<key>` keys, and
    `ssm:resourceTag/<key>` for SSM) and any other per-resource keys (`aws:ResourceOrgID`)."""

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One authorisation: an IAM action on one or more resources, with the request-wide
    context keys (`aws:RequestTag/<key>`, `aws:TagKeys`, `sts:RoleSessionName`, ...), each a
    tuple of values. `principal` is set for resource policies (a role's trust policy)."""

    action: str
    resources: tuple[Resource, ...]
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    principal: str | None = None
    label: str = ""

    def with_resource_tags(self, tags: Mapping[str, str], *, kind: str) -> Request:
        """The same request, with the tags of every resource whose ARN names `kind`
        (`:document/`, `:association/`) replaced."""
        resources = tuple(
            Resource(r.arn, dict(tags), r.keys) if f":{kind}/" in r.arn else r
            for r in self.resources
        )
        return Request(self.action, resources, self.context, self.principal, self.label)

    def with_request_tags(self, tags: Mapping[str, str]) -> Request:
        context = {
            k: v
            for k, v in self.context.items()
            if not k.lower().startswith("aws:requesttag/") and k.lower() != "aws:tagkeys"
        }
        context.update(request_tag_context(tags))
        return Request(self.action, self.resources, context, self.principal, self.label)


def request_tag_context(tags: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """`aws:RequestTag/<key>` for each tag and `aws:TagKeys`, as a request carrying `tags` has
    them (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html)."""
    context: dict[str, tuple[str, ...]] = {
        f"aws:RequestTag/{key}": (value,) for key, value in tags.items()
    }
    context["aws:TagKeys"] = tuple(tags)
    return context


def tag_keys_context(keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
    return {"aws:TagKeys": tuple(keys)}


@dataclass(frozen=True)
class Result:
    decision: Decision
    per_resource: tuple[tuple[str, Decision, tuple[str, ...]], ...]  # arn, decision, Sids

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED

    def explain(self) -> str:
        return "; ".join(
            f"{arn}: {decision.value}" + (f" by {', '.join(sids)}" if sids else "")
            for arn, decision, sids in self.per_resource
        )


def evaluate(policy: Mapping[str, Any], request: Request) -> Result:
    """The decision of one policy on one request (every resource must be allowed)."""
    if policy.get("Version") != "2012-10-17":
        raise PolicyError("only policy language version 2012-10-17 is supported")
    statements = policy["Statement"]
    if isinstance(statements, Mapping):
        statements = [statements]
    if not request.resources:
        raise PolicyError(f"{request.action}: a request names at least one resource")
    outcomes: list[tuple[str, Decision, tuple[str, ...]]] = []
    for resource in request.resources:
        context = _context_for(request, resource)
        allow: list[str] = []
        deny: list[str] = []
        for index, statement in enumerate(statements):
            if _applies(statement, request, resource, context):
                sid = str(statement.get("Sid", f"#{index}"))
                (deny if statement["Effect"] == "Deny" else allow).append(sid)
        if deny:
            outcomes.append((resource.arn, Decision.EXPLICIT_DENY, tuple(deny)))
        elif allow:
            outcomes.append((resource.arn, Decision.ALLOWED, tuple(allow)))
        else:
            outcomes.append((resource.arn, Decision.IMPLICIT_DENY, ()))
    decisions = {decision for _, decision, _ in outcomes}
    if Decision.EXPLICIT_DENY in decisions:
        overall = Decision.EXPLICIT_DENY
    elif decisions == {Decision.ALLOWED}:
        overall = Decision.ALLOWED
    else:
        overall = Decision.IMPLICIT_DENY
    return Result(overall, tuple(outcomes))


def _context_for(request: Request, resource: Resource) -> dict[str, tuple[str, ...]]:
    context = {key.lower(): tuple(values) for key, values in request.context.items()}
    for key, value in resource.tags.items():
        context[f"aws:resourcetag/{key}".lower()] = (value,)
        if resource.arn.startswith("arn:aws:ssm:"):
            # SSM's own spelling of the same key (Service Authorization Reference, SSM).
            context[f"ssm:resourcetag/{key}".lower()] = (value,)
    for key, value in resource.keys.items():
        context[key.lower()] = (value,)
    return context


def _strings(value: Any, where: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in values:
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, str):
            raise PolicyError(f"{where}: {item!r} is not a string")
        if "${" in item:
            raise PolicyError(f"{where}: policy variables ({item}) are not supported")
        out.append(item)
    return out


def _glob(pattern: str) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters (`/` and `:` too), `?` one character."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.DOTALL,
    )


def _glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return _glob(pattern).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: the six colon-separated parts compared one by one, each with wildcards; the
    last part is everything after the fifth colon."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_glob_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _applies(
    statement: Mapping[str, Any],
    request: Request,
    resource: Resource,
    context: Mapping[str, tuple[str, ...]],
) -> bool:
    sid = statement.get("Sid", "?")
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise PolicyError(f"{sid}: {unsupported} is not supported")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"{sid}: Effect must be Allow or Deny")
    # Action names are case-insensitive.
    actions = _strings(statement["Action"], f"{sid}.Action")
    if not any(_glob_match(a, request.action, ignore_case=True) for a in actions):
        return False
    if "Principal" in statement:
        if request.principal is None:
            raise PolicyError(f"{sid}: a Principal needs a request with a principal")
        principal = statement["Principal"]
        if principal != "*":
            if set(principal) != {"AWS"}:
                raise PolicyError(f"{sid}: only AWS principals are supported")
            if request.principal not in _strings(principal["AWS"], f"{sid}.Principal"):
                return False
    if "Resource" in statement:
        patterns = _strings(statement["Resource"], f"{sid}.Resource")
        if not any(p == "*" or _glob_match(p, resource.arn) for p in patterns):
            return False
    elif request.principal is None:
        raise PolicyError(f"{sid}: an identity policy statement needs a Resource")
    return all(
        _condition(operator, key, values, context, sid)
        for operator, block in statement.get("Condition", {}).items()
        for key, values in block.items()
    )


def _condition(
    operator: str,
    key: str,
    policy_values: Any,
    context: Mapping[str, tuple[str, ...]],
    sid: str,
) -> bool:
    where = f"{sid}: {operator} {key}"
    values = _strings(policy_values, where)
    name = operator.lower()
    qualifier = ""
    if ":" in name:
        qualifier, name = name.split(":", 1)
        if qualifier not in ("forallvalues", "foranyvalue"):
            raise PolicyError(f"{where}: unknown set operator")
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    present = context.get(key.lower())

    if name == "null":
        if qualifier or if_exists or values not in (["true"], ["false"]):
            raise PolicyError(f"{where}: Null takes exactly true or false")
        missing = not present
        return missing if values == ["true"] else not missing
    if name not in _BASE_OPERATORS:
        raise PolicyError(f"{where}: operator not supported by this evaluator")

    negated = "not" in name
    positive = name.replace("not", "")

    def matches(value: str) -> bool:
        if positive == "stringequals":
            hit = value in values
        elif positive == "stringlike":
            hit = any(_glob_match(v, value) for v in values)
        else:  # arnequals and arnlike compare alike
            hit = any(_arn_like(v, value) for v in values)
        return not hit if negated else hit

    if qualifier == "forallvalues":
        return all(matches(v) for v in present or ())
    if qualifier == "foranyvalue":
        return any(matches(v) for v in present or ())
    if key.lower() in MULTIVALUED:
        raise PolicyError(f"{where}: a multivalued key needs ForAllValues: or ForAnyValue:")
    if not present:
        return if_exists or negated
    if len(present) != 1:
        raise PolicyError(f"{where}: the request holds several values for a single-valued key")
    return matches(present[0])


def evaluate_all(policy: Mapping[str, Any], requests: Sequence[Request]) -> list[str]:
    """The requests the policy does not allow, one line each (empty: all allowed)."""
    refused = []
    for request in requests:
        result = evaluate(policy, request)
        if not result.allowed:
            refused.append(f"{request.label or request.action}: {result.explain()}")
    return refused
