"""Progressive rollout (issue 13): the next step of each package's rollout. Pure.

Stage: plan. `plan_rollouts(desired, observed)` runs before the pairing in
`controller.reconcile.plan` and returns three things:

- the desired state as it must look WHILE a rollout runs, so that a rollout in progress is
  not drift: the default pointer stays at the live default until every ring passed, and the
  rings reached so far stay pinned to the new version (or, after a rollback, to the previous
  one). The ordinary kinds then plan nothing against them; once the tag says `succeeded`,
  the overlay goes and the ordinary plan moves the default (UpdateDocumentDefaultVersion)
  and unpins the ring associations that follow it;
- at most one `AdvanceRollout` step per package: the rollout tag to write FIRST, the
  associations to pin (UpdateAssociation with every field and the `version` parameter of
  AWS-ConfigureAWSPackage), and those to start (StartAssociationsOnce);
- a `RolloutStatus` per package with a policy, for `/status`, the page and the metrics.

The machine itself (states x events) and the gate are `controller.model.rollout`; observe
(`controller.reconcile.observe.rollout`) reads the tag, the ring's targets and the alarms,
and the time (`ObservedRollout.read_at`): nothing here reads a clock or AWS.

AWS runs an association when it is updated, unless ApplyOnlyAtCronInterval
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateAssociation.html
and the State Manager user guide, "About State Manager"): a pin starts the ring by itself, so
StartAssociationsOnce
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartAssociationsOnce.html)
is sent for the associations the pin does not run (already pinned, or cron-only), and for any
of the ring's associations that shows no execution `START_GRACE` seconds after the ring began.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from controller.model.kinds import Kind, Verb
from controller.model.rollout import (
    ROLLOUT_TAG,
    Event,
    GateVerdict,
    Happened,
    RolloutPhase,
    RolloutPolicy,
    RolloutState,
    TargetCounts,
    advance,
    gate,
    start,
    tag_problem,
)
from controller.model.state import (
    Desired,
    DesiredAssociation,
    DesiredPackage,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedRollout,
)
from controller.reconcile.kinds.action import Action, Change, StepBase
from controller.reconcile.result import RolloutStatus

# How long a ring's associations may show no execution after the ring began before it is
# started with StartAssociationsOnce (the run an UpdateAssociation triggers takes a moment
# to appear in DescribeAssociationExecutions).
START_GRACE = 20


@dataclass(frozen=True)
class RingPin:
    """One association to pin (or re-pin) to a version: UpdateAssociation with every field."""

    association: DesiredAssociation  # its desired spec with the `version` parameter set
    association_id: str
    association_version: str  # the AssociationVersion planned against
    runs_on_update: bool  # AWS runs it on update (not ApplyOnlyAtCronInterval)


@dataclass(frozen=True)
class AdvanceRollout(StepBase):
    """One step of a package's rollout: write the tag first, then pin, then start."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.ROLLOUT
    text: str  # "ring 1/3: pin datadog-agent-canary to 6.10.0 and start it"
    state: RolloutState | None  # the `ssm-gitops:rollout` tag to write (None: unchanged)
    pins: tuple[RingPin, ...] = ()
    start: tuple[tuple[Location, str], ...] = ()  # (location, association id) to start once
    since: float = 0  # an association with an execution created since then is not started
    # Apply writes the ring's start as the moment of the tag write (before the pins), so a
    # run created just before it is never taken for the ring's.
    stamp: bool = False

    @property
    def subject(self) -> str:
        return self.text


@dataclass(frozen=True)
class RolloutPlan:
    desired: Desired  # with the overlay of the rollouts in progress
    actions: tuple[Action, ...]
    errors: tuple[tuple[DesiredPackage, str], ...]  # failed rollouts (reason `rollout`)
    statuses: tuple[RolloutStatus, ...]


@dataclass
class _Package:
    """What one package's rollout planning collects."""

    package: DesiredPackage
    policy: RolloutPolicy
    live: ObservedPackage
    seen: ObservedRollout | None
    associations: Sequence[DesiredAssociation]  # this package's, in its region
    live_associations: dict[tuple[Location, str], ObservedAssociation]
    pinned: dict[tuple[Location, str], str]  # overlay: association -> version name
    action: Action | None = None
    error: str = ""
    hold_default: bool = False  # the default stays where it is (a rollout is needed)

    def name_of(self, number: str) -> str:
        for version in self.live.versions:
            if version.number == number:
                return version.name or number
        return number

    def ring(self, index: int) -> list[DesiredAssociation]:
        names = self.policy.rings[index].associations
        return [a for a in self.associations if a.name in names]

    def pin_ring(self, index: int, version: str) -> None:
        for association in self.ring(index):
            self.pinned[(association.location, association.name)] = version


def plan_rollouts(desired: Desired, observed: Observed) -> RolloutPlan:
    """The overlay, the next step and the status of every package with a rollout policy."""
    live_packages = {(p.location, p.name): p for p in observed.packages}
    seen = {(r.location, r.package): r for r in observed.rollouts}
    live_associations: dict[tuple[Location, str], ObservedAssociation] = {}
    for association in observed.associations:
        live_associations.setdefault((association.location, association.name), association)
    overlay_defaults: dict[tuple[Location, str], str] = {}
    pinned: dict[tuple[Location, str], str] = {}
    actions: list[Action] = []
    errors: list[tuple[DesiredPackage, str]] = []
    statuses: list[RolloutStatus] = []
    for package in desired.packages:
        key = (package.location, package.name)
        live = live_packages.get(key)
        if package.rollout is None or package.disabled or live is None:
            continue  # a package's FIRST version needs no rollout: it is created with it
        work = _Package(
            package,
            package.rollout,
            live,
            seen.get(key),
            [
                a
                for a in desired.associations
                if a.package == package.name and a.location.region == package.location.region
            ],
            live_associations,
            pinned,
        )
        status = _plan_package(work)
        # The rollout moves without a new revision (publish done, targets, a bake): the
        # runtime's rollout tick keeps passes coming while this is so.
        status = replace(
            status,
            moving=work.hold_default
            and not package.rollout_paused
            and status.state
            not in (RolloutPhase.FAILED, RolloutPhase.ROLLED_BACK, RolloutPhase.PAUSED),
        )
        if work.hold_default:
            overlay_defaults[key] = live.default_version
        if work.action is not None:
            actions.append(work.action)
        if work.error:
            errors.append((package, work.error))
        statuses.append(status)
    return RolloutPlan(
        _overlay(desired, overlay_defaults, pinned), tuple(actions), tuple(errors), tuple(statuses)
    )


def _overlay(
    desired: Desired,
    defaults: dict[tuple[Location, str], str],
    pinned: dict[tuple[Location, str], str],
) -> Desired:
    if not defaults and not pinned:
        return desired
    packages = tuple(
        replace(p, default_version=defaults[(p.location, p.name)])
        if (p.location, p.name) in defaults
        else p
        for p in desired.packages
    )
    associations = tuple(
        _pinned(a, pinned[(a.location, a.name)]) if (a.location, a.name) in pinned else a
        for a in desired.associations
    )
    return replace(desired, packages=packages, associations=associations)


def _pinned(association: DesiredAssociation, version: str) -> DesiredAssociation:
    """The association with AWS-ConfigureAWSPackage's `version` parameter set ("" = none)."""
    parameters = dict(association.spec.parameters)
    parameters.pop("version", None)
    if version:
        parameters["version"] = version
    spec = replace(association.spec, parameters=tuple(sorted(parameters.items())))
    return replace(association, spec=spec)


def _plan_package(work: _Package) -> RolloutStatus:
    package, live, seen = work.package, work.live, work.seen
    state = seen.state if seen is not None else None
    now = seen.read_at if seen is not None else 0
    wanted = package.default_version
    status = RolloutStatus(
        package=package.name,
        account=package.location.account,
        region=package.location.region,
        state="idle",
        ring=0,
        rings=tuple(ring.associations for ring in work.policy.rings),
        live_default=live.default_version,
        versions=tuple(v.name for v in live.versions if v.name),
    )
    target = live.version(wanted)
    if wanted == live.default_version or not live.default_number:
        # Nothing to roll out. A finished (or superseded) rollout's tag is shown as it is.
        if state is not None and state.target == (target.number if target else ""):
            return _describe(work, status, state, now)
        return status
    # The default moves only when every ring passed (the tag says succeeded), never first.
    work.hold_default = not (
        state is not None
        and target is not None
        and state.target == target.number
        and state.phase is RolloutPhase.SUCCEEDED
    )
    if target is None or target.status != "Active":
        # Published by the ordinary plan first; the rollout starts once it is Active.
        return replace(status, state="idle", step=f"waiting for version {wanted} to be published")
    text = dict(live.tags).get(ROLLOUT_TAG, "")
    numbers = {v.number for v in live.versions}
    if text and (
        state is None
        or state.target == target.number
        or (state.target not in numbers and not state.phase.terminal)
    ):
        problem = tag_problem(state, len(work.policy.rings), numbers, now)
        if problem:
            return _hostile(work, status, text, problem)
    if state is None or state.target != target.number:
        begun = advance(
            state or start("", ""),
            Happened(Event.NEW_VERSION, target=target.number, previous=live.default_number),
        )
        if package.rollout_paused:
            return replace(
                status, target=wanted, step="paused before ring 1 (ssm-gitops/rollout: paused)"
            )
        return _start_ring(work, status, begun, now)
    return _continue(work, status, state, now)


def _hostile(work: _Package, status: RolloutStatus, text: str, problem: str) -> RolloutStatus:
    """A tag about this rollout that this controller cannot have written: one failure, and
    nothing moves (the default stays, every ring association keeps the version it has live:
    none is pinned, started or unpinned), until someone removes the tag."""
    name = work.package.name
    work.hold_default = True
    for index in range(len(work.policy.rings)):
        for association in work.ring(index):
            live = work.live_associations.get((association.location, association.name))
            if live is not None:
                work.pinned[(association.location, association.name)] = dict(
                    live.spec.parameters
                ).get("version", "")
    shown = text if len(text) <= 80 else text[:77] + "..."
    work.error = (
        f"the {ROLLOUT_TAG} tag on document {name} ({shown!r}) {problem}: edited by hand? "
        "the rollout holds, nothing moves; remove the tag (aws ssm remove-tags-from-resource "
        f"--resource-type Document --resource-id {name} --tag-keys {ROLLOUT_TAG}) to roll "
        f"{work.package.default_version} out again from ring 1"
    )
    return replace(
        status,
        state=RolloutPhase.FAILED.value,
        target=work.package.default_version,
        step=f"held: the {ROLLOUT_TAG} tag {problem}",
        failure=work.error,
    )


def _continue(
    work: _Package, status: RolloutStatus, state: RolloutState, now: int
) -> RolloutStatus:
    """The rollout of the wanted version is under way (or over): its next step."""
    policy, package = work.policy, work.package
    target = work.name_of(state.target)
    previous = work.name_of(state.previous)
    if state.phase is RolloutPhase.ROLLED_BACK:
        for index in range(state.ring + 1):
            work.pin_ring(index, previous)
    elif state.phase is not RolloutPhase.SUCCEEDED:
        for index in range(min(state.ring, len(policy.rings) - 1) + 1):
            work.pin_ring(index, target)
    described = _describe(work, status, state, now)
    if state.phase.terminal:
        if state.phase is not RolloutPhase.SUCCEEDED:
            work.error = described.failure
        return described
    if state.phase is RolloutPhase.PAUSED:
        if not package.rollout_paused:
            resumed = advance(state, Happened(Event.UNPAUSED, now=now))
            _act(work, f"resume the rollout of {target} (ring {state.ring + 1})", resumed)
        return described
    if package.rollout_paused:
        _act(
            work,
            f"pause the rollout of {target} at ring {state.ring + 1}",
            advance(state, Happened(Event.PAUSED, now=now)),
        )
        return described
    seen = work.seen
    if seen is None or not seen.ring_read:
        return described
    ring = state.ring
    if state.phase is RolloutPhase.PROGRESSING and seen.unstarted:
        if now - state.started_at >= START_GRACE:
            starts = tuple(
                (a.location, a.association_id)
                for a in work.live_associations.values()
                if a.association_id in seen.unstarted
            )
            _act(
                work,
                f"ring {ring + 1}/{len(policy.rings)}: start "
                f"{', '.join(sorted({a.name for a in work.ring(ring)}))} (no run seen yet)",
                None,
                start=starts,
                since=state.started_at,
            )
        return described
    verdict = gate(seen.counts, policy.max_failed, seen.firing, seen.untargeted)
    if verdict.verdict is GateVerdict.FAIL:
        _fail(work, state, verdict.reason, verdict.why, now, target, previous)
        return replace(described, failure=work.error)
    if verdict.verdict is GateVerdict.WAIT:
        return described
    if state.phase is RolloutPhase.PROGRESSING:
        bake = policy.rings[ring].bake_seconds
        baking = advance(state, Happened(Event.GATE_PASSED, now=now, bake_seconds=bake))
        _act(work, f"ring {ring + 1}/{len(policy.rings)} passed its gate: bake {bake}s", baking)
        return described
    # BAKING: the gate passed again; once the bake is over, the next ring (or the end)
    if now < state.bake_until:
        return described
    after = advance(state, Happened(Event.BAKE_ELAPSED, now=now, rings=len(policy.rings)))
    if after.phase is RolloutPhase.SUCCEEDED:
        _act(
            work,
            f"all {len(policy.rings)} rings passed: move the default to {target} and unpin "
            "the rings",
            after,
        )
        return described
    _start_ring(work, status, after, now)
    return described


def _start_ring(
    work: _Package, status: RolloutStatus, state: RolloutState, now: int
) -> RolloutStatus:
    """Write the tag (ring, started_at), pin the ring's associations, start those the pin
    does not run."""
    state = advance(state, Happened(Event.RING_STARTED, now=now))
    version = work.name_of(state.target)
    pins: list[RingPin] = []
    starts: list[tuple[Location, str]] = []
    for association in work.ring(state.ring):
        live = work.live_associations.get((association.location, association.name))
        if live is None:
            continue  # created by the ordinary plan first; started by the grace rule
        # This pass pins it in this step, after the tag: the ordinary plan leaves its
        # version as it is live (a change of its other fields goes with the pin).
        work.pinned[(association.location, association.name)] = dict(live.spec.parameters).get(
            "version", ""
        )
        wanted = _pinned(association, version)
        if live.spec == wanted.spec or live.spec.apply_only_at_cron_interval:
            starts.append((live.location, live.association_id))
        if live.spec != wanted.spec:
            pins.append(
                RingPin(
                    wanted,
                    live.association_id,
                    live.version,
                    not live.spec.apply_only_at_cron_interval,
                )
            )
    names = ", ".join(sorted({a.name for a in work.ring(state.ring)})) or "(no association)"
    text = f"ring {state.ring + 1}/{len(work.policy.rings)}: pin {names} to {version} and start it"
    _act(work, text, state, pins=tuple(pins), start=tuple(starts), since=now, stamp=True)
    return _describe(work, replace(status, step=text), state, now)


def _fail(
    work: _Package,
    state: RolloutState,
    reason: str,
    why: str,
    now: int,
    target: str,
    previous: str,
) -> None:
    policy = work.policy
    failed = advance(state, Happened(Event.GATE_FAILED, on_failure=policy.on_failure, why=why))
    ring = state.ring + 1
    work.error = f"rollout of {target} failed at ring {ring}: {reason}"
    if failed.phase is RolloutPhase.FAILED:
        _act(work, f"ring {ring} failed its gate ({reason}): halt at ring {ring}", failed)
        return
    pins: list[RingPin] = []
    starts: list[tuple[Location, str]] = []
    for index in range(state.ring + 1):
        for association in work.ring(index):
            live = work.live_associations.get((association.location, association.name))
            if live is None:
                continue
            back = _pinned(association, previous)
            if live.spec == back.spec or live.spec.apply_only_at_cron_interval:
                starts.append((live.location, live.association_id))
            if live.spec != back.spec:
                pins.append(
                    RingPin(
                        back,
                        live.association_id,
                        live.version,
                        not live.spec.apply_only_at_cron_interval,
                    )
                )
    _act(
        work,
        f"ring {ring} failed its gate ({reason}): roll rings 1-{ring} back to {previous}",
        failed,
        pins=tuple(pins),
        start=tuple(starts),
        since=now,
    )


def _act(
    work: _Package,
    text: str,
    state: RolloutState | None,
    *,
    pins: tuple[RingPin, ...] = (),
    start: tuple[tuple[Location, str], ...] = (),
    since: float = 0,
    stamp: bool = False,
) -> None:
    package = work.package
    old = work.seen.state if work.seen is not None else None
    changes = (Change("rollout", _short(old), _short(state)),) if state is not None else ()
    work.action = Action(
        package.name,
        package.location,
        AdvanceRollout(text, state, pins, start, since, stamp),
        changes,
    )


def _short(state: RolloutState | None) -> str:
    if state is None:
        return ""
    return f"ring {state.ring + 1} {state.phase}"


def _describe(
    work: _Package, status: RolloutStatus, state: RolloutState, now: int
) -> RolloutStatus:
    """The status of a rollout the tag describes."""
    seen = work.seen
    counts = seen.counts if seen is not None and seen.ring_read else TargetCounts()
    bake_remaining = 0.0
    deadline = 0.0
    if state.phase is RolloutPhase.BAKING:
        bake_remaining = float(max(0, state.bake_until - now))
        deadline = float(state.bake_until)
    elif state.phase is RolloutPhase.PAUSED and state.held is RolloutPhase.BAKING:
        bake_remaining = float(state.bake_until)
    elif state.phase is RolloutPhase.PROGRESSING and state.started_at:
        # Targets should have reported within the association's own timeout; an hour is
        # the agent's default script timeout (agent-semantics.md).
        deadline = float(state.started_at + 3600)
    failure = ""
    if state.phase in (RolloutPhase.FAILED, RolloutPhase.ROLLED_BACK):
        what = {"alarm": "an alarm was in ALARM", "targets": "too many targets failed"}.get(
            state.why, "its gate failed"
        )
        failure = f"rollout of {work.name_of(state.target)} failed at ring {state.ring + 1}: {what}"
    step = status.step
    if not step:
        step = seen.error if seen is not None and seen.error else ""
    if not step:
        step = _waiting(state, counts, bake_remaining)
    return replace(
        status,
        state=state.phase.value,
        ring=state.ring,
        target=work.name_of(state.target),
        previous=work.name_of(state.previous),
        succeeded=counts.succeeded,
        failed=counts.failed,
        pending=counts.pending,
        deadline=deadline,
        bake_remaining=bake_remaining,
        step=step,
        failure=failure,
        failed_targets=tuple(
            (t.association, t.instance_id, t.detail)
            for t in (seen.failed_targets if seen is not None else ())
        ),
    )


def _waiting(state: RolloutState, counts: TargetCounts, bake_remaining: float) -> str:
    if state.phase is RolloutPhase.PROGRESSING:
        if counts.pending:
            return f"ring {state.ring + 1}: waiting for {counts.pending} of {counts.total} targets"
        return f"ring {state.ring + 1}: waiting for its runs"
    if state.phase is RolloutPhase.BAKING:
        # The end as a time, not seconds left: the step stays true between passes.
        ends = time.strftime("%H:%M:%S", time.gmtime(state.bake_until))
        return f"ring {state.ring + 1}: baking until {ends} UTC"
    if state.phase is RolloutPhase.PAUSED:
        return f"ring {state.ring + 1}: paused (ssm-gitops/rollout: paused)"
    return str(state.phase)


def after_step(status: RolloutStatus, step: AdvanceRollout, now: float) -> RolloutStatus:
    """The status once `step` was applied (the plan computed it before): where the tag now
    says the rollout is, so `/status`, the page and the metrics do not lag a step behind."""
    state = step.state
    if state is None:
        return status
    bake_remaining = 0.0
    deadline = 0.0
    if state.phase is RolloutPhase.BAKING:
        bake_remaining = float(max(0.0, state.bake_until - now))
        deadline = float(state.bake_until)
    elif state.phase is RolloutPhase.PROGRESSING and state.started_at:
        deadline = float(state.started_at + 3600)
    moving = state.phase.in_flight or state.phase is RolloutPhase.SUCCEEDED
    new_ring = state.ring != status.ring
    return replace(
        status,
        state=state.phase.value,
        ring=state.ring,
        bake_remaining=bake_remaining,
        deadline=deadline,
        step=f"done: {step.text}",
        moving=moving,
        succeeded=0 if new_ring else status.succeeded,
        failed=0 if new_ring else status.failed,
        pending=0 if new_ring else status.pending,
    )


def step_due(policy: RolloutPolicy, seen: ObservedRollout) -> bool:
    """Whether a pass would move this rollout now, from a fresh read of its ring (the
    runtime's cheap rollout tick: targets and alarms only, no pass while nothing is due)."""
    state = seen.state
    if state is None or not seen.ring_read:
        return seen.error != ""  # could not read: let a pass look (and report it)
    now = seen.read_at
    if state.phase is RolloutPhase.PROGRESSING and seen.unstarted:
        return now - state.started_at >= START_GRACE
    verdict = gate(seen.counts, policy.max_failed, seen.firing, seen.untargeted).verdict
    if state.phase is RolloutPhase.PROGRESSING:
        return verdict is not GateVerdict.WAIT
    if state.phase is RolloutPhase.BAKING:
        return verdict is GateVerdict.FAIL or (
            verdict is GateVerdict.PASS and now >= state.bake_until
        )
    return False
