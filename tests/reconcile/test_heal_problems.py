"""A drift event is healed (and its message deleted) even while the pass reports a lasting
problem that concerns no resource (issue 14 review)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from controller.model.kinds import Kind
from controller.model.state import DesiredVersion, PruneRules
from controller.reconcile.engine import Reconciler
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.result import ActionResult, Failure, PassOutcome, Reason
from tests.reconcile.conftest import HOME, association, package, target
from tests.reconcile.test_heal import _two_packages


def test_a_lasting_location_problem_does_not_keep_every_event_for_redelivery(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """Bug: a `location` problem of the repository or of Settings (a placement naming an
    account outside Settings, an OU or the location record that cannot be read) is a pass
    failure with no resource and no location; the heal took any such failure for "the pass
    stopped before it planned", so every event's outcome was None: its message was never
    deleted, came back every visibility timeout, and cost a heal each time, for as long as
    the problem lasted; the drift it named was healed all the same."""
    wanted = _two_packages(make_version)
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    problem = Failure(
        Reason.LOCATION,
        "associations.yaml:3: placement account 999988887777 is not a Settings account",
    )
    troubled = replace(wanted, problems=(problem,))
    ssm = aws_env.client("ssm")
    ssm.update_document_default_version(Name="agent", DocumentVersion="1")
    agent = NamedResource(Kind.PACKAGE, HOME, name="agent")
    other = NamedResource(Kind.PACKAGE, HOME, name="other")
    healed = reconciler.heal_desired(troubled, "r1", [agent, other])
    assert ssm.describe_document(Name="agent")["Document"]["DefaultVersion"] == "2"
    assert healed.outcomes == {agent: EventResult.HEALED, other: EventResult.IN_SYNC}
    assert problem in healed.result.failures  # still reported


def test_heals_never_prune_maxdeletes_stays_per_pass(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """Bug: every heal is a pass of its own with a fresh maxDeletes budget. Events naming
    resources the repository dropped (sent by anyone the queue policy lets send, or by hand
    changes) pruned maxDeletes more per event round, seconds apart: the brake that gives a
    person time to see a mistaken commit (maxDeletes per pass) did not hold. Deletions are
    left to the passes; a heal reports them as blocked."""
    v1 = make_version("agent", "1.0")
    names = ("a-1", "a-2", "a-3")
    prune = PruneRules(enabled=True, max_deletes=1)
    full = target((package("agent", (v1,)),), tuple(association(n, "agent") for n in names), prune)
    assert reconciler.run_desired(full).outcome is PassOutcome.SUCCESS
    dropped = replace(full, desired=replace(full.desired, associations=()))
    ssm = aws_env.client("ssm")
    listed = ssm.list_associations()["Associations"]
    live = {a["AssociationName"]: a["AssociationId"] for a in listed}
    named = [NamedResource(Kind.ASSOCIATION, HOME, n, live[n]) for n in names]
    for _round in range(3):
        healed = reconciler.heal_desired(dropped, "r2", named)
        done = [a for a in healed.result.actions if a.result is ActionResult.SUCCESS]
        assert done == [], done
        assert healed.result.blocked
    assert len(ssm.list_associations()["Associations"]) == 3
    passed = reconciler.run_desired(dropped)  # the pass prunes, maxDeletes at a time
    deleted = [a.action for a in passed.actions if a.result is ActionResult.SUCCESS]
    assert deleted == ["delete"]
