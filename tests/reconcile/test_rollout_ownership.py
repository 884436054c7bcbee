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
from controller.model.state import DesiredVersion
from controller.reconcile.apply import Applier
from controller.reconcile.engine import Reconciler
from controller.reconcile.kinds import AdvanceRollout
from controller.reconcile.result import ActionResult
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
