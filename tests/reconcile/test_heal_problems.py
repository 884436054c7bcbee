"""A drift event is healed (and its message deleted) even while the pass reports a lasting
problem that concerns no resource (issue 14 review)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from controller.model.kinds import Kind
from controller.model.state import DesiredVersion
from controller.reconcile.engine import Reconciler
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.result import Failure, PassOutcome, Reason
from tests.reconcile.conftest import HOME
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
