"""A progressive rollout through the reconciler, against the embedded endpoint (issue 13).

No fleet: whenever an association is updated, the test writes one execution with one
target into the endpoint's store (as the fleet would), `Success` or, for a bad version,
`Failed`. Also the AWS adapter's own rules: StartAssociationsOnce 10 ids a call, every page
of an execution's targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from controller.aws import rollout as aws_rollout
from controller.aws import tags as aws_tags
from controller.aws.session import Sessions
from controller.local import LocalAWS
from controller.model.rollout import ROLLOUT_TAG, Ring, RolloutPolicy, decode
from controller.model.state import OWNER_TAG, DesiredVersion
from controller.reconcile.apply import Applier
from controller.reconcile.engine import DesiredPass, Reconciler
from controller.reconcile.result import ActionResult
from tests.reconcile.conftest import ACCOUNT, REGION, association, package, target

NAMES = ("canary", "prod-a", "prod-b")
POLICY = RolloutPolicy(rings=(Ring(("canary",)), Ring(("prod-a", "prod-b"))))


def _runs(aws: LocalAWS, seen: dict[str, int], status: str = "Success") -> None:
    store = aws.ssm.store
    with store.lock:
        records = list(store.state(ACCOUNT, REGION).associations.values())
    for record in records:
        if seen.get(record.association_id) != record.version:
            seen[record.association_id] = record.version
            run = aws.ssm.start_association_execution(ACCOUNT, REGION, record.association_id)
            aws.ssm.record_association_result(
                ACCOUNT, REGION, record.association_id, run, "i-0test", status
            )


def _pinned(aws: LocalAWS) -> dict[str, str]:
    store = aws.ssm.store
    with store.lock:
        records = list(store.state(ACCOUNT, REGION).associations.values())
    found = {}
    for record in records:
        parameters: Any = record.fields.get("Parameters") or {}
        found[str(record.fields["AssociationName"])] = (parameters.get("version") or [""])[0]
    return found


def _setup(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws: LocalAWS
) -> tuple[DesiredPass, dict[str, int]]:
    v1, v2 = make_version("agent", "1.0"), make_version("agent", "2.0")
    first = replace(package("agent", (v1,)), rollout=POLICY)
    associations = tuple(association(n, "agent") for n in NAMES)
    seen: dict[str, int] = {}
    reconciler.run_desired(target((first,), associations))
    _runs(aws, seen)
    moved = replace(first, default_version="2.0", versions=(v1, v2))
    return target((moved,), associations), seen


def test_a_rollout_goes_ring_by_ring_and_moves_the_default_last(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    wanted, seen = _setup(reconciler, make_version, aws_env)
    history = []
    for _ in range(20):
        result = reconciler.run_desired(wanted)
        _runs(aws_env, seen)
        ssm = aws_env.client("ssm")
        default = ssm.describe_document(Name="agent")["Document"]["VersionName"]
        history.append((_pinned(aws_env), default))
        if any(a.action == "set_default" for a in result.actions):
            # Bug (a newcomer's demo run): the pass that moved the default reported the
            # status it planned with, the old live default, until a pass came minutes later.
            (status,) = result.progressive
            assert (status.state, status.live_default) == ("succeeded", "2.0"), status
        if default == "2.0" and not result.actions:
            break
    # ring 2 was pinned only after ring 1 had been; the default moved after both
    first_canary = next(i for i, (p, _) in enumerate(history) if p["canary"] == "2.0")
    first_prod = next(i for i, (p, _) in enumerate(history) if p["prod-a"] == "2.0")
    first_default = next(i for i, (_, d) in enumerate(history) if d == "2.0")
    assert first_canary < first_prod < first_default, history
    assert all(p["prod-a"] == p["prod-b"] for p, _ in history)  # one ring, together
    assert history[-1][0] == dict.fromkeys(NAMES, "")  # unpinned: they follow the default
    tag = aws_tags.tags_of(reconciler.sessions.home(REGION), "Document", "agent")[ROLLOUT_TAG]
    state = decode(tag)
    assert state is not None and state.phase == "succeeded" and state.ring == 1


def test_a_failed_gate_rolls_back_and_the_tag_write_respects_ownership(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    """Bug guarded: the ring's start was kept in whole seconds from the observe before it,
    so the association's previous run (same second) was taken for the ring's: a failing
    ring passed its gate. The start is now the tag write's own time, in milliseconds."""
    wanted, seen = _setup(reconciler, make_version, aws_env)
    reconciler.run_desired(wanted)  # publishes 2.0
    reconciler.run_desired(wanted)  # ring 1 pinned
    _runs(aws_env, seen, status="Failed")
    failed = reconciler.run_desired(wanted)  # the gate fails: rolled back
    assert [f.reason.value for f in failed.failures] == ["rollout"]
    assert _pinned(aws_env) == {"canary": "1.0", "prod-a": "", "prod-b": ""}
    ssm = aws_env.client("ssm")
    assert ssm.describe_document(Name="agent")["Document"]["VersionName"] == "1.0"
    again = reconciler.run_desired(wanted)  # stays failed for 2.0, nothing moves
    assert not [a for a in again.actions if a.result is ActionResult.SUCCESS]
    assert again.progressive[0].state == "rolled_back"

    # Another version is named (published first); then, between the plan and its apply,
    # the package loses our owner tag: the rollout's tag write leaves it alone.
    v3 = make_version("agent", "3.0")
    pkg = wanted.desired.packages[0]
    newer = replace(pkg, default_version="3.0", versions=(*pkg.versions, v3))
    third = replace(wanted, desired=replace(wanted.desired, packages=(newer,)))
    reconciler.run_desired(third)  # publishes 3.0
    planned = reconciler.plan_desired(third)
    assert [a.verb.value for a in planned.plan.actions] == ["rollout"]
    ssm.remove_tags_from_resource(ResourceType="Document", ResourceId="agent", TagKeys=[OWNER_TAG])
    applier = Applier(
        reconciler._clients_for,
        owner=reconciler.owner,
        observer=reconciler.observer,
        artifacts=planned.artifacts,
    )
    records = applier.apply(planned.plan)
    assert [(r.result, "left alone" in r.message) for r in records] == [
        (ActionResult.SKIPPED, True)
    ]
    tags = aws_tags.tags_of(reconciler.sessions.home(REGION), "Document", "agent")
    state = decode(tags[ROLLOUT_TAG])
    assert state is not None and state.phase == "rolled_back"  # the tag was not rewritten
    # nor the ring pinned (it follows the default, 1.0, since 3.0 was named)
    assert _pinned(aws_env)["canary"] == ""


def test_start_once_sends_at_most_ten_ids_a_call_and_targets_are_read_page_by_page(
    aws_env: LocalAWS,
) -> None:
    clients = Sessions().home(REGION)
    ssm = aws_env.client("ssm")
    ids = [
        ssm.create_association(
            Name="AWS-ConfigureAWSPackage",
            AssociationName=f"a-{i}",
            Parameters={"action": ["Install"], "name": ["agent"]},
            Targets=[{"Key": "tag:env", "Values": ["prod"]}],
        )["AssociationDescription"]["AssociationId"]
        for i in range(23)
    ]
    counter = clients.counter
    counter.take()
    assert aws_rollout.start_once(clients, ids) == 3  # 10 + 10 + 3
    assert counter.take()[("StartAssociationsOnce", "success")] == 3
    run = aws_env.ssm.start_association_execution(ACCOUNT, REGION, ids[0])
    for n in range(120):
        aws_env.ssm.record_association_result(ACCOUNT, REGION, ids[0], run, f"i-{n:04d}", "Success")
    targets = aws_rollout.execution_targets(clients, ids[0], run)
    assert len(targets) == 120
    assert counter.take()[("DescribeAssociationExecutionTargets", "success")] == 3  # 50 a page
    assert [e.execution_id for e in aws_rollout.executions_since(clients, ids[0], 0)] == [run]
    assert aws_rollout.executions_since(clients, ids[0], 4_000_000_000) == []


def test_the_pass_a_rollout_tick_asked_for_reads_the_ring_once(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    """Bug (work done twice on the hot path): the rollout tick read the ring's executions,
    targets and alarms (`rollout_due`), found a step due, and the pass it asked for at once
    read the very same ring again before deciding that step."""
    wanted, seen = _setup(reconciler, make_version, aws_env)
    reconciler.run_desired(wanted)  # publishes 2.0
    reconciler.run_desired(wanted)  # ring 1 pinned
    reconciler.run_desired(wanted)  # ring 1 read: no run yet, the pass waits
    _runs(aws_env, seen)
    due, calls = reconciler.rollout_due()
    assert due and calls[("DescribeAssociationExecutions", "success")] == 1
    moved = reconciler.run_desired(wanted)  # ring 1 passed its gate: the rollout steps on
    assert [(a.action, a.result) for a in moved.actions] == [("rollout", ActionResult.SUCCESS)]
    assert ("DescribeAssociationExecutions", "success") not in moved.api_calls
    # Read once, used once: the next pass reads the (new) ring itself.
    _runs(aws_env, seen)
    later = reconciler.run_desired(wanted)
    assert later.api_calls[("DescribeAssociationExecutions", "success")] >= 1
