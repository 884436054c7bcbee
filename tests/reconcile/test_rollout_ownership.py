"""A ring's StartAssociationsOnce respects ownership like its pins do (issue 13 review).

Contract, "Ownership and safety": the owner and source tags are read afresh right before any
change; an owner identifies its source. Starting an association runs it on its targets: the
shipped IAM policy gates StartAssociationsOnce on the owner tag, so the controller must check
the same (and the source, which IAM cannot tell apart) before it starts one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.local import LocalAWS
from controller.model.ownership import SOURCE_TAG
from controller.model.rollout import GateVerdict, TargetCounts, gate, parse_max_failed
from controller.model.state import DesiredVersion
from controller.reconcile.apply import Applier
from controller.reconcile.engine import Reconciler
from controller.reconcile.kinds import AdvanceRollout
from controller.reconcile.result import ActionResult
from tests.reconcile.conftest import ACCOUNT, REGION
from tests.reconcile.test_rollout_engine import _setup


def _executions(aws: LocalAWS, association_id: str) -> int:
    ssm = aws.client("ssm")
    found = ssm.describe_association_executions(AssociationId=association_id)
    return len(found["AssociationExecutions"])


def test_a_ring_start_rereads_the_owner_and_source_tags(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    """Bug: a ring association already at the new version is only started (no pin), and the
    start skipped the ownership re-read: an association another source took over between
    the plan and its apply was run by us."""
    wanted, _seen = _setup(reconciler, make_version, aws_env)
    reconciler.run_desired(wanted)  # publishes 2.0
    ssm = aws_env.client("ssm")
    canary = next(
        a for a in ssm.list_associations()["Associations"] if a["AssociationName"] == "canary"
    )
    described: Any = ssm.describe_association(AssociationId=canary["AssociationId"])
    fields = described["AssociationDescription"]
    ssm.update_association(  # already at 2.0 (by hand): the ring step only starts it
        AssociationId=fields["AssociationId"],
        AssociationName=fields["AssociationName"],
        Name=fields["Name"],
        Targets=fields["Targets"],
        Parameters={**fields["Parameters"], "version": ["2.0"]},
        **{k: fields[k] for k in ("ScheduleExpression",) if k in fields},
    )
    planned = reconciler.plan_desired(wanted)
    steps = [a.step for a in planned.plan.actions if isinstance(a.step, AdvanceRollout)]
    assert [len(s.pins) for s in steps] == [0], steps
    assert [i for _, i in steps[0].start] == [canary["AssociationId"]]
    before = _executions(aws_env, canary["AssociationId"])

    ssm.add_tags_to_resource(  # another repository's controller takes it over
        ResourceType="Association",
        ResourceId=canary["AssociationId"],
        Tags=[{"Key": SOURCE_TAG, "Value": "another-repository"}],
    )
    applier = Applier(
        reconciler._clients_for,
        owner=reconciler.owner,
        observer=reconciler.observer,
        artifacts=planned.artifacts,
        source=reconciler.source,
    )
    records = applier.apply(planned.plan)
    rollout = [r for r in records if r.action == "rollout"]
    assert [(r.result, "left alone" in r.message) for r in rollout] == [
        (ActionResult.SKIPPED, True)
    ], rollout
    assert _executions(aws_env, canary["AssociationId"]) == before  # never started by us


def test_a_ring_run_that_reached_no_target_fails_the_gate(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    """Bug: a ring whose run finished without a single target (here: stopped by the
    association's own CloudWatch alarm, TriggeredAlarms, status Failed; in AWS also a run
    whose targets match no instance) counted 0 of 0 targets failed: the gate passed and the
    untested version went on to the next ring. Decision: a finished run with no target fails
    the gate (nothing was tested); a ring with no association in a location (placement)
    has no run there and is not affected."""
    wanted, seen = _setup(reconciler, make_version, aws_env)
    reconciler.run_desired(wanted)  # publishes 2.0
    reconciler.run_desired(wanted)  # ring 1 (canary) pinned and started
    store = aws_env.ssm.store
    with store.lock:
        records = list(store.state(ACCOUNT, REGION).associations.values())
    canary = next(r for r in records if r.fields["AssociationName"] == "canary")
    run = aws_env.ssm.start_association_execution(ACCOUNT, REGION, canary.association_id)
    with store.lock:
        canary.executions[run].triggered_alarms = [{"Name": "agent-errors", "State": "ALARM"}]
    result = reconciler.run_desired(wanted)
    assert [f.reason.value for f in result.failures] == ["rollout"], result.failures
    assert "reached no target" in result.failures[0].message
    assert result.progressive[0].state == "rolled_back"


def test_the_gate_with_runs_that_reached_no_target() -> None:
    """The gate's table, extended: an untargeted run fails, even next to pending targets;
    0 of 0 with no run at all (no ring association in this location) still passes."""
    limit = parse_max_failed("100%")
    assert limit is not None
    assert gate(TargetCounts(), limit, ()).verdict is GateVerdict.PASS
    empty = gate(TargetCounts(), limit, (), ("canary",))
    assert (empty.verdict, empty.why) == (GateVerdict.FAIL, "targets")
    assert "canary" in empty.reason
    assert gate(TargetCounts(0, 0, 3), limit, (), ("canary",)).verdict is GateVerdict.FAIL
    assert gate(TargetCounts(), limit, ("errors",), ("canary",)).why == "alarm"
