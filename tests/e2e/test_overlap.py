"""Overlap detection (issue 13): an instance targeted by two associations of one package
that install different versions flips between them on every run. The rule as a table, its
resolution against the embedded endpoint (EC2 tags, managed instances) with its call count,
and what `/status`, the page and `ssm_gitops_association_overlaps` show."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from controller.aws.session import Sessions
from controller.local import LocalAWS
from controller.local.hooks import ManagedInstance
from controller.model.state import (
    AssociationFields,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedVersion,
)
from controller.reconcile.engine import Reconciler
from controller.reconcile.observe.overlap import (
    FOLLOWS_DEFAULT,
    Install,
    OverlapDetector,
    candidates,
    find_overlaps,
    installs_of,
)
from controller.reconcile.result import (
    Overlap,
    PassOutcome,
    PassResult,
    ResourceState,
    ResourceStatus,
)
from controller.runtime import page
from controller.runtime.metrics import Metrics
from controller.runtime.status import Status, to_json
from tests.reconcile import conftest as reconcile_fixtures
from tests.reconcile.conftest import association, package, target

HERE = Location("123456789012", "us-east-1")
# The reconciler tests' fixtures (a Reconciler on the endpoint, real package versions).
make_version = reconcile_fixtures.make_version
reconciler = reconcile_fixtures.reconciler
TAGS: Mapping[str, Mapping[str, str]] = {
    "i-canary": {"env": "prod", "ring": "canary"},
    "i-prod1": {"env": "prod", "ring": "1"},
    "i-stage": {"env": "staging", "ring": "1"},
}
Targets = tuple[tuple[str, tuple[str, ...]], ...]
CANARY: Targets = (("tag:ring", ("canary",)),)
PROD: Targets = (("tag:env", ("prod",)),)
PROD_RINGS: Targets = (("tag:env", ("prod",)), ("tag:ring", ("1", "2")))


def install(name: str, version: str, targets: Targets, package: str = "agent") -> Install:
    return Install(name, HERE, package, version, targets)


# (case, installs, managed instances, expected {(package, instance): {association: version}})
CASES: list[tuple[str, list[Install], set[str], dict[tuple[str, str], dict[str, str]]]] = [
    (
        "canary instances also env=prod: the classic mistake",
        [install("canary", "2.0", CANARY), install("prod", "1.0", PROD)],
        set(),
        {("agent", "i-canary"): {"canary": "2.0", "prod": "1.0"}},
    ),
    (
        "disjoint rings (two keys must both match)",
        [install("canary", "2.0", CANARY), install("prod", "1.0", PROD_RINGS)],
        set(),
        {},
    ),
    (
        "same version through two associations is no flip",
        [install("a", "1.0", CANARY), install("b", "1.0", PROD)],
        set(),
        {},
    ),
    (
        "different packages never overlap",
        [install("a", "2.0", CANARY), install("b", "1.0", PROD, package="other")],
        set(),
        {},
    ),
    (
        "install and uninstall fight too",
        [install("a", "1.0", PROD), install("b", "uninstall", (("tag-key", ("ring",)),))],
        set(),
        {
            ("agent", "i-canary"): {"a": "1.0", "b": "uninstall"},
            ("agent", "i-prod1"): {"a": "1.0", "b": "uninstall"},
        },
    ),
    (
        "literal instance ids",
        [install("a", "1.0", (("InstanceIds", ("i-stage", "i-x")),)), install("b", "2.0", PROD)],
        set(),
        {},
    ),
    (
        "InstanceIds * is every managed instance, EC2 or not",
        [install("all", "1.0", (("InstanceIds", ("*",)),)), install("one", "2.0", CANARY)],
        {"i-canary", "mi-0123456789abcdef0"},
        {("agent", "i-canary"): {"all": "1.0", "one": "2.0"}},
    ),
    (
        "resource groups are not resolved: no overlap claimed",
        [install("a", "1.0", (("resource-groups:Name", ("web",)),)), install("b", "2.0", PROD)],
        set(),
        {},
    ),
]


@pytest.mark.parametrize(
    ("installs", "managed", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_find_overlaps_table(
    installs: list[Install], managed: set[str], expected: dict[tuple[str, str], dict[str, str]]
) -> None:
    found = find_overlaps(installs, {HERE: TAGS}, {HERE: managed})
    assert {(o.package, o.instance_id): dict(o.installs) for o in found} == expected
    # Only installs some other install of the package disagrees with are resolved at all.
    if not expected:
        assert all(o.location == HERE for o in found)


def _association(name: str, targets: Targets, version: str = "", action: str = "") -> Any:
    parameters = [("name", "agent")]
    if version:
        parameters.append(("version", version))
    if action:
        parameters.append(("action", action))
    spec = AssociationFields(parameters=tuple(sorted(parameters)), targets=targets)
    return ObservedAssociation(f"id-{name}", name, HERE, "1", spec)


def _package(default: str) -> ObservedPackage:
    versions = (ObservedVersion("1.0", "1", "h1"), ObservedVersion("2.0", "2", "h2"))
    number = next(v.number for v in versions if v.name == default)
    return ObservedPackage("agent", HERE, number, versions, (), ())


def test_a_blank_version_is_the_default_and_only_disagreements_are_resolved() -> None:
    pinned_to_default = Observed(
        (_package("1.0"),), (_association("canary", CANARY, "1.0"), _association("prod", PROD))
    )
    assert candidates(installs_of(pinned_to_default)) == []
    rolling = Observed(
        (_package("1.0"),), (_association("canary", CANARY, "2.0"), _association("prod", PROD))
    )
    assert {i.version for i in candidates(installs_of(rolling))} == {"1.0", "2.0"}
    unknown_default = Observed((), (_association("canary", CANARY, "2.0"), _association("p", PROD)))
    assert FOLLOWS_DEFAULT in {i.version for i in installs_of(unknown_default)}


def _ec2(local_aws: LocalAWS, tags: Mapping[str, str]) -> str:
    response = local_aws.client("ec2").run_instances(
        ImageId="ami-0fleet00000000000",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    return str(response["Instances"][0]["InstanceId"])


def test_resolved_on_the_endpoint_with_bounded_calls(aws_env: LocalAWS) -> None:
    canary = _ec2(aws_env, {"env": "prod", "ring": "canary"})
    _ec2(aws_env, {"env": "prod", "ring": "1"})
    for managed in (canary, "mi-0123456789abcdef0"):  # an EC2 instance and an on-prem one
        aws_env.ssm.register_instance(
            "123456789012", "us-east-1", ManagedInstance(instance_id=managed)
        )
    sessions = Sessions(name="overlap-test")
    location = Location(sessions.home_account(), "us-east-1")
    assert location == HERE

    def clients_for(where: Location) -> Any:
        return sessions.home(where.region)

    detector = OverlapDetector()
    sessions.counter.take()
    quiet = Observed((_package("1.0"),), (_association("a", CANARY), _association("b", PROD)))
    assert detector.detect(quiet, clients_for) == ()
    assert sessions.counter.take() == {}  # nothing can overlap: no call at all

    fighting = Observed(
        (_package("1.0"),),
        (
            _association("canary", CANARY, "2.0"),
            _association("prod", PROD),
            _association("everywhere", (("InstanceIds", ("*",)),), action="Uninstall"),
        ),
    )
    found = detector.detect(fighting, clients_for)
    calls = sessions.counter.take()
    assert calls == {
        ("DescribeInstances", "success"): 1,
        ("DescribeInstanceInformation", "success"): 1,
    }
    by_instance = {o.instance_id: dict(o.installs) for o in found}
    assert by_instance[canary] == {"canary": "2.0", "everywhere": "uninstall", "prod": "1.0"}
    assert "mi-0123456789abcdef0" not in by_instance  # one install only: no fight there


def test_a_failing_read_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    fighting = Observed(
        (_package("1.0"),), (_association("canary", CANARY, "2.0"), _association("prod", PROD))
    )

    def broken(_where: Location) -> Any:
        from controller.aws.errors import ServerError

        raise ServerError("DescribeInstances", "InternalError", "boom")  # noqa: EM101

    assert OverlapDetector().detect(fighting, broken) == ()
    assert "overlap detection" in caplog.text


def test_status_page_and_metric_show_overlaps() -> None:
    overlap = Overlap("agent", "i-canary", HERE, (("canary", "2.0"), ("prod", "1.0")))
    now = time.time()
    result = PassResult(
        "abc123",
        PassOutcome.NO_CHANGE,
        now,
        now,
        resources=(
            ResourceStatus("package", "agent", HERE.account, HERE.region, ResourceState.IN_SYNC),
            ResourceStatus("package", "tool", HERE.account, HERE.region, ResourceState.IN_SYNC),
        ),
        overlaps=(overlap,),
    )
    status = Status(repo="r", last_pass=result)
    assert to_json(status)["overlaps"] == [
        {
            "package": "agent",
            "instance": "i-canary",
            "account": HERE.account,
            "region": HERE.region,
            "associations": [
                {"association": "canary", "version": "2.0"},
                {"association": "prod", "version": "1.0"},
            ],
        }
    ]
    html = page.render(status, now)
    assert "Associations that overlap" in html
    assert "i-canary (123456789012/us-east-1) gets agent 2.0 by canary, 1.0 by prod" in html
    metrics = Metrics()
    metrics.record_pass(result)
    text = metrics.render().decode()
    assert 'ssm_gitops_association_overlaps{package="agent"} 1.0' in text
    assert 'ssm_gitops_association_overlaps{package="tool"} 0.0' in text


def _ring(name: str, key: str, value: str, version: str = "") -> Any:
    base = association(name, "agent")
    parameters = dict(base.spec.parameters) | ({"version": version} if version else {})
    spec = dataclasses.replace(
        base.spec, parameters=tuple(sorted(parameters.items())), targets=((key, (value,)),)
    )
    return dataclasses.replace(base, spec=spec)


def test_a_pass_reports_the_overlap_and_stops_once_it_is_gone(
    reconciler: Reconciler, make_version: Callable[..., Any], aws_env: LocalAWS
) -> None:
    """The whole path: the reconciler's pass carries the overlap (what /status, the page and
    the metric show) and resolves targets only while the versions differ."""
    canary = _ec2(aws_env, {"env": "prod", "ring": "canary"})
    _ec2(aws_env, {"env": "prod", "ring": "1"})
    v1, v2 = make_version("agent", "1.0"), make_version("agent", "1.1")

    def wanted(canary_version: str) -> Any:
        return target(
            (package("agent", (v1, v2), default="1.0"),),
            (
                _ring("agent-canary", "tag:ring", "canary", canary_version),
                _ring("agent-prod", "tag:env", "prod"),
            ),
        )

    first = reconciler.run_desired(wanted("1.1"))
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    assert first.overlaps == ()  # nothing was live when the pass observed
    second = reconciler.run_desired(wanted("1.1"))
    assert [(o.instance_id, o.installs) for o in second.overlaps] == [
        (canary, (("agent-canary", "1.1"), ("agent-prod", "1.0")))
    ]
    assert second.outcome is PassOutcome.NO_CHANGE  # reported, never a failure
    assert second.api_calls.get(("DescribeInstances", "success")) == 1
    reconciler.run_desired(wanted("1.0"))  # the canary back on the default's version
    settled = reconciler.run_desired(wanted("1.0"))
    assert settled.overlaps == ()
    assert ("DescribeInstances", "success") not in settled.api_calls


def test_a_heal_resolves_no_targets(
    reconciler: Reconciler, make_version: Callable[..., Any], aws_env: LocalAWS
) -> None:
    """Bug (merge of drift events and overlap detection): every heal ran the pass's overlap
    detection (EC2 DescribeInstances per location with a possible overlap), whose answer a
    heal throws away: only a pass reports overlaps (/status, the metric)."""
    from controller.model.kinds import Kind
    from controller.reconcile.events import NamedResource

    _ec2(aws_env, {"env": "prod", "ring": "canary"})
    v1, v2 = make_version("agent", "1.0"), make_version("agent", "1.1")
    wanted = target(
        (package("agent", (v1, v2), default="1.0"),),
        (
            _ring("agent-canary", "tag:ring", "canary", "1.1"),
            _ring("agent-prod", "tag:env", "prod"),
        ),
    )
    reconciler.run_desired(wanted)
    assert reconciler.run_desired(wanted).overlaps  # a pass still reports it
    canary = NamedResource(Kind.ASSOCIATION, HERE, name="agent-canary")
    healed = reconciler.heal_desired(wanted, "", [canary])
    assert ("DescribeInstances", "success") not in healed.result.api_calls
