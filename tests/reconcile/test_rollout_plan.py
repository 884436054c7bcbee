"""Planning a progressive rollout (issue 13), pure: the overlay and the next step.

A package `agent` with versions 1.0 (live default) and 2.0, two rings (canary, prod), and an
association `rest` in no ring. Each test gives the rollout tag and what observe read of the
ring, and checks the one step planned, and that nothing else is planned against the rings
or the default while the rollout runs (a rollout in progress is not drift).
"""

from __future__ import annotations

from dataclasses import replace

from controller.model.kinds import Verb
from controller.model.rollout import (
    MaxFailed,
    OnFailure,
    Ring,
    RolloutPhase,
    RolloutPolicy,
    RolloutState,
    TargetCounts,
)
from controller.model.state import (
    OWNER_TAG,
    Desired,
    DesiredAssociation,
    DesiredVersion,
    FailedTarget,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedRollout,
    ObservedVersion,
)
from controller.reconcile.kinds import AdvanceRollout, SetDefault, UpdateAssociation
from controller.reconcile.plan import Plan, plan
from controller.reconcile.result import Reason
from tests.reconcile.conftest import HOME, PRUNE, association

NOW = 2_000_000
V1 = DesiredVersion("1.0", "{}", "h1")
V2 = DesiredVersion("2.0", "{}", "h2")
POLICY = RolloutPolicy(
    rings=(Ring(("canary",), bake_seconds=60), Ring(("prod",), bake_seconds=0)),
    max_failed=MaxFailed(0),
    alarms=("agent-errors",),
    on_failure=OnFailure.ROLLBACK,
)
ASSOCIATIONS = tuple(association(n, "agent") for n in ("canary", "prod", "rest"))


def _desired(default: str = "2.0", paused: bool = False, policy: RolloutPolicy = POLICY) -> Desired:
    from tests.reconcile.conftest import package

    wanted = replace(
        package("agent", (V1, V2), default=default), rollout=policy, rollout_paused=paused
    )
    return Desired((wanted,), ASSOCIATIONS, PRUNE)


def _live_association(wanted: DesiredAssociation, version: str = "") -> ObservedAssociation:
    spec = wanted.spec
    if version:
        parameters = dict(spec.parameters) | {"version": version}
        spec = replace(spec, parameters=tuple(sorted(parameters.items())))
    return ObservedAssociation(f"id-{wanted.name}", wanted.name, HOME, "1", spec)


def _observed(
    state: RolloutState | None,
    pins: dict[str, str] | None = None,
    default: str = "1",
    **seen: object,
) -> Observed:
    live = ObservedPackage(
        "agent",
        HOME,
        default,
        (ObservedVersion("1.0", "1", "h1"), ObservedVersion("2.0", "2", "h2")),
        (),
        ((OWNER_TAG, "ssm-gitops"),),
    )
    pins = pins or {}
    return Observed(
        (live,),
        tuple(_live_association(a, pins.get(a.name, "")) for a in ASSOCIATIONS),
        rollouts=(ObservedRollout("agent", HOME, state, NOW, **seen),),  # type: ignore[arg-type]
    )


def _only_rollout_step(result: Plan) -> AdvanceRollout | None:
    """The rollout step, after checking that nothing else was planned."""
    others = [a for a in result.actions if a.verb is not Verb.ROLLOUT]
    assert others == [], [a.describe() for a in others]
    steps = [a.step for a in result.actions if isinstance(a.step, AdvanceRollout)]
    assert len(steps) <= 1
    return steps[0] if steps else None


def test_a_new_default_starts_ring_1_instead_of_moving_the_default() -> None:
    result = plan(_desired(), _observed(None))
    step = _only_rollout_step(result)  # no SetDefault: the default never moves first
    assert step is not None
    assert step.text == "ring 1/2: pin canary to 2.0 and start it"
    assert step.state == RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW)
    assert [
        (p.association.name, dict(p.association.spec.parameters)["version"]) for p in step.pins
    ] == [("canary", "2.0")]
    assert result.rollouts[0].state == "progressing" and result.rollouts[0].target == "2.0"


def test_the_default_stays_while_the_new_version_is_being_published() -> None:
    """Bug: the pass that published the new version also moved the default (no rollout)."""
    live = _observed(None)
    unpublished = replace(
        live, packages=(replace(live.packages[0], versions=live.packages[0].versions[:1]),)
    )
    result = plan(_desired(), unpublished)
    assert [a.verb for a in result.actions] == [Verb.ADD_VERSION]
    assert result.rollouts[0].step == "waiting for version 2.0 to be published"


def test_a_ring_pinned_by_hand_before_is_pinned_by_the_rollout_step_only() -> None:
    """Bug: starting a ring whose association was pinned live (the repository had just
    dropped its `version`) also planned an ordinary update unpinning it; the rollout's pin
    then failed on the stale AssociationVersion."""
    result = plan(_desired(), _observed(None, {"canary": "3.0"}))
    step = _only_rollout_step(result)
    assert step is not None and [p.association.name for p in step.pins] == ["canary"]


def test_a_first_version_needs_no_rollout() -> None:
    result = plan(_desired(), Observed((), tuple(_live_association(a) for a in ASSOCIATIONS)))
    assert [a.verb for a in result.actions] == [Verb.CREATE, Verb.ADD_VERSION, Verb.SET_DEFAULT]
    assert not any(isinstance(a.step, AdvanceRollout) for a in result.actions)


def test_a_ring_in_progress_is_not_drift_and_waits_for_its_targets() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 5)
    observed = _observed(state, {"canary": "2.0"}, counts=TargetCounts(1, 0, 2), ring_read=True)
    result = plan(_desired(), observed)
    assert _only_rollout_step(result) is None  # canary stays pinned, the default stays 1.0
    status = result.rollouts[0]
    assert (status.succeeded, status.failed, status.pending) == (1, 0, 2)
    assert status.step == "ring 1: waiting for 2 of 3 targets"


def test_the_gate_passes_then_the_ring_bakes() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 5)
    observed = _observed(state, {"canary": "2.0"}, counts=TargetCounts(3, 0, 0), ring_read=True)
    step = _only_rollout_step(plan(_desired(), observed))
    assert step is not None and step.state is not None
    assert (step.state.phase, step.state.bake_until) == (RolloutPhase.BAKING, NOW + 60)
    assert step.pins == () and step.start == ()


def test_no_later_ring_before_the_bake_is_over() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.BAKING, started_at=NOW - 50, bake_until=NOW + 10)
    observed = _observed(state, {"canary": "2.0"}, counts=TargetCounts(3, 0, 0), ring_read=True)
    result = plan(_desired(), observed)
    assert _only_rollout_step(result) is None
    assert result.rollouts[0].bake_remaining == 10


def test_after_the_bake_and_a_second_gate_the_next_ring_starts() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.BAKING, started_at=NOW - 90, bake_until=NOW)
    observed = _observed(state, {"canary": "2.0"}, counts=TargetCounts(3, 0, 0), ring_read=True)
    step = _only_rollout_step(plan(_desired(), observed))
    assert step is not None and step.state is not None
    assert step.text == "ring 2/2: pin prod to 2.0 and start it"
    assert (step.state.ring, step.state.phase, step.state.started_at) == (
        1,
        RolloutPhase.PROGRESSING,
        NOW,
    )


def test_the_last_ring_succeeds_then_the_default_moves_and_rings_unpin() -> None:
    state = RolloutState("2", "1", 1, RolloutPhase.BAKING, started_at=NOW - 90, bake_until=NOW)
    pins = {"canary": "2.0", "prod": "2.0"}
    observed = _observed(state, pins, counts=TargetCounts(3, 0, 0), ring_read=True)
    step = _only_rollout_step(plan(_desired(), observed))
    assert (
        step is not None and step.state is not None and step.state.phase is RolloutPhase.SUCCEEDED
    )
    done = replace(step.state)
    result = plan(_desired(), _observed(done, pins))
    kinds = sorted(type(a.step).__name__ for a in result.actions)
    assert kinds == ["SetDefault", "UpdateAssociation", "UpdateAssociation"]
    assert result.actions[0].step == SetDefault("2.0")  # the default moves first, then unpin
    unpinned = [a.step for a in result.actions if isinstance(a.step, UpdateAssociation)]
    assert all("version" not in dict(s.association.spec.parameters) for s in unpinned)


def test_a_failed_gate_rolls_the_reached_rings_back_and_keeps_the_default() -> None:
    state = RolloutState("2", "1", 1, RolloutPhase.PROGRESSING, started_at=NOW - 30)
    observed = _observed(
        state,
        {"canary": "2.0", "prod": "2.0"},
        counts=TargetCounts(2, 1, 0),
        ring_read=True,
        failed_targets=(FailedTarget("prod", "mi-1", "install.sh exited 1"),),
    )
    result = plan(_desired(), observed)
    step = _only_rollout_step(result)
    assert step is not None and step.state is not None
    assert step.state.phase is RolloutPhase.ROLLED_BACK
    assert sorted(
        (p.association.name, dict(p.association.spec.parameters)["version"]) for p in step.pins
    ) == [("canary", "1.0"), ("prod", "1.0")]
    assert [e.reason for e in result.errors] == [Reason.ROLLOUT]
    # the next pass: rolled back, stays failed for 2.0, nothing moves, the rings stay on 1.0
    again = plan(_desired(), _observed(step.state, {"canary": "1.0", "prod": "1.0"}))
    assert _only_rollout_step(again) is None
    assert [e.reason for e in again.errors] == [Reason.ROLLOUT]
    assert "failed at ring 2" in again.errors[0].message


def test_a_firing_alarm_fails_the_gate_and_halt_stays_where_it_is() -> None:
    halt = replace(POLICY, on_failure=OnFailure.HALT)
    state = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 30)
    observed = _observed(
        state,
        {"canary": "2.0"},
        counts=TargetCounts(3, 0, 0),
        ring_read=True,
        firing=("agent-errors",),
    )
    step = _only_rollout_step(plan(_desired(policy=halt), observed))
    assert step is not None and step.state is not None
    assert (step.state.phase, step.state.why, step.pins) == (RolloutPhase.FAILED, "alarm", ())


def test_paused_holds_and_unpaused_resumes() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.BAKING, started_at=NOW - 30, bake_until=NOW + 40)
    observed = _observed(state, {"canary": "2.0"}, counts=TargetCounts(3, 0, 0), ring_read=True)
    step = _only_rollout_step(plan(_desired(paused=True), observed))
    assert step is not None and step.state is not None
    assert (step.state.phase, step.state.bake_until) == (RolloutPhase.PAUSED, 40)
    held = _observed(step.state, {"canary": "2.0"})
    assert _only_rollout_step(plan(_desired(paused=True), held)) is None
    step = _only_rollout_step(plan(_desired(), held))
    assert step is not None and step.state is not None
    assert (step.state.phase, step.state.bake_until) == (RolloutPhase.BAKING, NOW + 40)


def test_an_unstarted_association_is_started_only_after_the_grace() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 5)
    observed = _observed(state, {"canary": "2.0"}, unstarted=("id-canary",), ring_read=True)
    assert _only_rollout_step(plan(_desired(), observed)) is None  # its run may not show yet
    later = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 60)
    observed = _observed(later, {"canary": "2.0"}, unstarted=("id-canary",), ring_read=True)
    step = _only_rollout_step(plan(_desired(), observed))
    assert step is not None and step.state is None  # the tag stays: the ring is the same
    assert step.start == ((HOME, "id-canary"),) and step.since == NOW - 60


def test_the_status_after_a_step_shows_where_the_tag_now_is() -> None:
    """Bug: /status showed the rollout a step behind (the state the plan started from)."""
    from controller.reconcile.kinds.rollout import after_step

    state = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 5)
    observed = _observed(state, {"canary": "2.0"}, counts=TargetCounts(3, 0, 0), ring_read=True)
    result = plan(_desired(), observed)
    step = _only_rollout_step(result)
    assert step is not None
    status = after_step(result.rollouts[0], step, NOW + 10)
    assert (status.state, status.bake_remaining, status.moving) == ("baking", 50, True)


def test_no_rollout_step_on_a_partial_view() -> None:
    """Never act on a partial view: associations of the region unread -> no ring moves."""
    from controller.model.kinds import Kind
    from controller.model.state import Location, Unread

    other = Unread(Location("111122223333", HOME.region), Kind.ASSOCIATION, "AccessDenied")
    result = plan(_desired(), replace(_observed(None), unread=(other,)))
    assert not any(isinstance(a.step, AdvanceRollout) for a in result.actions)


def test_plan_shows_the_next_rollout_step_in_text_and_json() -> None:
    from controller.reconcile.commands import plan_json, render_plan
    from controller.reconcile.engine import PlannedPass

    result = plan(_desired(), _observed(None))
    text = render_plan(result, "0" * 40, "ssm-gitops")
    assert "    ~ rollout: ring 1/2: pin canary to 2.0 and start it" in text
    planned = PlannedPass(result, _desired(), _observed(None), (), {})
    document = plan_json(planned, "0" * 40, "ssm-gitops")
    assert document["actions"][0]["step"] == "ring 1/2: pin canary to 2.0 and start it"
    assert document["rollouts"][0]["state"] == "progressing"
    waiting = plan(
        _desired(),
        _observed(
            RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 5),
            {"canary": "2.0"},
            counts=TargetCounts(1, 0, 2),
            ring_read=True,
        ),
    )
    assert "rollout agent (us-east-1): ring 1: waiting for 2 of 3 targets" in render_plan(
        waiting, "0" * 40, "ssm-gitops"
    )


def test_the_rollout_tick_asks_for_a_pass_only_when_a_step_is_due() -> None:
    """Point 8: between passes only the ring is read; a pass runs when it would move."""
    from controller.reconcile.kinds.rollout import step_due

    progressing = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=NOW - 5)
    baking = RolloutState("2", "1", 0, RolloutPhase.BAKING, started_at=NOW - 50, bake_until=NOW + 9)

    def seen(state: RolloutState, **kw: object) -> ObservedRollout:
        return ObservedRollout("agent", HOME, state, NOW, ring_read=True, **kw)  # type: ignore[arg-type]

    assert not step_due(POLICY, seen(progressing, counts=TargetCounts(1, 0, 2)))
    assert step_due(POLICY, seen(progressing, counts=TargetCounts(3, 0, 0)))
    assert step_due(POLICY, seen(progressing, counts=TargetCounts(1, 1, 1)))
    assert not step_due(POLICY, seen(progressing, unstarted=("id-canary",)))
    assert not step_due(POLICY, seen(baking, counts=TargetCounts(3, 0, 0)))  # still baking
    assert step_due(POLICY, seen(baking, counts=TargetCounts(3, 0, 0), firing=("agent-errors",)))
    over = replace(baking, bake_until=NOW)
    assert step_due(POLICY, seen(over, counts=TargetCounts(3, 0, 0)))
