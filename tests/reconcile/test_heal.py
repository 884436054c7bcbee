"""Heal only what a drift event named (issue 14), with the normal plan, on the local endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.model.kinds import Kind
from controller.model.state import DesiredVersion
from controller.reconcile.engine import Reconciler
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.result import PassOutcome
from tests.reconcile.conftest import HOME, association, package, target


def _two_packages(make_version: Callable[..., DesiredVersion]) -> Any:
    a1, a2 = make_version("agent", "1.0"), make_version("agent", "1.1")
    b1 = make_version("other", "1.0")
    return target(
        (
            package("agent", (a1, a2), default="1.1", share=("111122223333",)),
            package("other", (b1,), share=("111122223333",)),
        ),
        (association("agent-prod", "agent"),),
    )


def test_heal_moves_back_a_default_version_and_touches_nothing_else(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """Issue 14: a default version moved by hand is invisible to the cached observe
    (ListDocuments' version does not move); the heal re-reads it and fixes only it."""
    wanted = _two_packages(make_version)
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    ssm = aws_env.client("ssm")
    ssm.update_document_default_version(Name="agent", DocumentVersion="1")
    ssm.modify_document_permission(
        Name="other", PermissionType="Share", AccountIdsToRemove=["111122223333"]
    )
    agent = NamedResource(Kind.PACKAGE, HOME, name="agent")
    healed = reconciler.heal_desired(wanted, "r1", [agent])
    assert healed.outcomes == {agent: EventResult.HEALED}, healed.result.errors
    assert [(a.name, a.action) for a in healed.result.actions] == [("agent", "set_default")]
    assert ssm.describe_document(Name="agent")["Document"]["DefaultVersion"] == "2"
    # "other" was not named: its drift waits for its own event (or the resync).
    assert (
        ssm.describe_document_permission(Name="other", PermissionType="Share")["AccountIds"] == []
    )
    again = reconciler.heal_desired(wanted, "r1", [agent])
    assert again.outcomes == {agent: EventResult.IN_SYNC}
    assert again.result.actions == ()


def test_deleted_association_named_by_id_only_is_recreated(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """DeleteAssociation's event names only the id: the name comes from the last observe."""
    wanted = _two_packages(make_version)
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    ssm = aws_env.client("ssm")
    (live,) = ssm.list_associations()["Associations"]
    ssm.delete_association(AssociationId=live["AssociationId"])
    gone = NamedResource(Kind.ASSOCIATION, HOME, association_id=live["AssociationId"])
    healed = reconciler.heal_desired(wanted, "r1", [gone])
    assert healed.outcomes == {gone: EventResult.HEALED}, healed.result.errors
    assert [a["AssociationName"] for a in ssm.list_associations()["Associations"]] == ["agent-prod"]


def test_a_resource_not_ours_is_foreign_and_untouched(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    wanted = _two_packages(make_version)
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    stranger = NamedResource(Kind.PACKAGE, HOME, name="someone-elses")
    unknown = NamedResource(
        Kind.ASSOCIATION, HOME, association_id="8dfe3659-4309-493a-8755-0123456789ab"
    )
    healed = reconciler.heal_desired(wanted, "r1", [stranger, unknown])
    assert healed.outcomes == {stranger: EventResult.FOREIGN, unknown: EventResult.FOREIGN}
    assert healed.result.actions == ()


def test_a_heal_applies_exactly_the_pass_plans_actions_for_what_it_names(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """Issue 14: a heal must not hand-roll a diff; it is the plan of a pass, cut down (so a
    rollout in progress, held-back deletions and partial views decide as in a pass)."""
    wanted = _two_packages(make_version)
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    ssm = aws_env.client("ssm")
    ssm.update_document_default_version(Name="agent", DocumentVersion="1")
    for name in ("agent", "other"):
        ssm.modify_document_permission(
            Name=name, PermissionType="Share", AccountIdsToRemove=["111122223333"]
        )
    planned = reconciler.plan_desired(wanted, full_resync=True).plan
    expected = [(a.kind, a.name, a.verb) for a in planned.actions if a.name == "agent"]
    assert len(expected) == 2 and any(a.name == "other" for a in planned.actions)
    agent = NamedResource(Kind.PACKAGE, HOME, name="agent")
    healed = reconciler.heal_desired(wanted, "r1", [agent])
    assert [(a.kind, a.name, a.action) for a in healed.result.actions] == expected
