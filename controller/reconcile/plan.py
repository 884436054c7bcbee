"""Stage 4 of a pass: `plan(desired, observed) -> Plan`, a pure function (no AWS, no clock).

It pairs desired and observed resources by (location, name) — no desired = prune, no live
= create — and asks each kind's module (`controller.reconcile.kinds`: package, version,
sharing, association) for the steps of a pair. What stays here is the pairing, the safety
rules and the ordering: frozen `Action`s in the order apply must respect (issue 4; the
phases are `controller.model.kinds.Phase`):

1. per package: create, add versions, set the default pointer, tags, share
   (versions before the default pointer; packages before the associations that use them);
2. associations: create, update;
3. associations: delete (before the packages they use);
4. per package: delete versions, unshare, delete the package (unshare before delete:
   DeleteDocument fails while a document is shared,
   https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html).

Safety rules live here too, so they are tested like features: deletions only with prune
enabled (package versions: with the package's `pruneVersions`), at most `maxDeletes`
deletions per pass (the rest become `Blocked`), no deletion at all when the desired set is
empty, and a published version whose content differs is an error for that package only.
Never on a partial view: nothing is changed or deleted where the live state could not be
read completely, nor anything that depends on it (`Observed.unread`). An owner identifies
its source: another source's resource is a conflict when declared, never touched; an
unclaimed one (owner tag, no source tag) is adopted when declared, never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.model.kinds import Effect, Kind
from controller.model.state import (
    OWNER_TAG,
    SOURCE_TAG,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    Location,
    Observed,
    ObservedAssociation,
)
from controller.reconcile.kinds import (
    Action,
    DeleteAssociation,
    DeletePackage,
    ResourceError,
    association,
    package,
)
from controller.reconcile.kinds.rollout import plan_rollouts
from controller.reconcile.result import Reason, ResourceState, ResourceStatus, RolloutStatus


@dataclass(frozen=True)
class Blocked:
    action: Action
    reason: str

    def describe(self) -> str:
        return f"{self.action.describe()}: blocked: {self.reason}"


@dataclass(frozen=True)
class PlanError:
    kind: Kind
    name: str
    location: Location
    message: str
    reason: Reason | None = None  # None: decided by the engine (build or plan_rejected)

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.location}): {self.message}"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    blocked: tuple[Blocked, ...] = ()
    errors: tuple[PlanError, ...] = ()
    resources: tuple[ResourceStatus, ...] = ()
    rollouts: tuple[RolloutStatus, ...] = ()  # progressive rollouts (issue 13)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def counts(self) -> dict[Effect, int]:
        """Actions per summary bucket: add, change, destroy."""
        counts = dict.fromkeys(Effect, 0)
        for action in self.actions:
            counts[action.verb.effect] += 1
        return counts

    def summary(self) -> str:
        counts = self.counts()
        text = (
            f"Plan: {counts[Effect.ADD]} to add, {counts[Effect.CHANGE]} to change, "
            f"{counts[Effect.DESTROY]} to destroy, {len(self.blocked)} blocked"
        )
        if self.errors:
            text += f", {len(self.errors)} error{'s' if len(self.errors) > 1 else ''}"
        return text


@dataclass
class _Pairing:
    """What one plan() call collects while it pairs desired and live resources."""

    desired: Desired
    observed: Observed
    actions: list[Action] = field(default_factory=list)
    errors: list[PlanError] = field(default_factory=list)
    resources: list[ResourceStatus] = field(default_factory=list)
    deletions: list[Action] = field(default_factory=list)
    unclaimed: set[tuple[Kind, Location, str]] = field(default_factory=set)  # name or id
    conflicted: set[tuple[str, str]] = field(default_factory=set)  # (package name, region)

    def __post_init__(self) -> None:
        # Never act on a partial view (contract: Ownership and safety): where a kind could
        # not be read in a location, nothing of that kind there is changed or deleted, and
        # nothing elsewhere that depends on it is (see `_unread_reason`).
        self.unread_packages = self.observed.unread_locations(Kind.PACKAGE)
        self.unread_associations = self.observed.unread_locations(Kind.ASSOCIATION)
        # An owner identifies its source (contract: Ownership and safety;
        # controller.model.ownership): another source's resource is never changed or
        # pruned, and declaring it is a conflict; an unclaimed one (our owner tag, no source
        # tag) is adopted if declared, else kept.
        self.others: dict[tuple[str, Location, str], str] = {
            (o.kind, o.location, o.name): o.source for o in self.observed.others
        }
        self.wanted_packages = {(p.location, p.name): p for p in self.desired.packages}

    def fail(self, kind: Kind, name: str, location: Location, message: str) -> None:
        """A resource that gets no step this pass, with an error for the pass."""
        self.errors.append(PlanError(kind, name, location, message))
        self.resources.append(_status(kind, name, location, ResourceState.FAILED, message))


def plan(desired: Desired, observed: Observed) -> Plan:
    """The ordered actions that make `observed` match `desired`, with the safety rules."""
    # A rollout in progress is not drift: the default and the reached rings as it left them.
    rollouts = plan_rollouts(desired, observed)
    pairing = _Pairing(rollouts.desired, observed)
    _pair_packages(pairing)
    _pair_associations(pairing)
    allowed, blocked = _guard_deletions(pairing)
    actions = pairing.actions + allowed + _rollout_steps(pairing, rollouts.actions)
    for failed, message in rollouts.errors:
        pairing.errors.append(
            PlanError(Kind.PACKAGE, failed.name, failed.location, message, Reason.ROLLOUT)
        )
    if desired.suspended:
        blocked = [
            Blocked(action, "reconciliation is suspended in Settings") for action in actions
        ] + blocked
        actions = []
    actions.sort(key=lambda action: action.phase)  # stable: keeps the order within a phase
    return Plan(
        tuple(actions),
        tuple(blocked),
        tuple(pairing.errors),
        tuple(pairing.resources),
        rollouts.statuses,
    )


def _rollout_steps(pairing: _Pairing, steps: tuple[Action, ...]) -> list[Action]:
    """A package's rollout moves only where it was read completely and planned without error
    (never on a partial view; not another source's package)."""
    failed = {(e.location, e.name) for e in pairing.errors if e.kind is Kind.PACKAGE}
    # A ring's associations may live in any account of the package's region.
    unread_regions = {location.region for location in pairing.unread_associations}
    return [
        step
        for step in steps
        if step.location not in pairing.unread_packages
        and step.location.region not in unread_regions
        and (step.location, step.name) not in failed
    ]


def _pair_packages(pairing: _Pairing) -> None:
    """Desired packages with their live documents; live ones not declared are pruned."""
    source = pairing.desired.source
    build_errors = dict(pairing.desired.errors)
    live_packages = {(p.location, p.name): p for p in pairing.observed.packages}
    for key, wanted in pairing.wanted_packages.items():
        conflict = pairing.others.get((Kind.PACKAGE, wanted.location, wanted.name))
        if conflict is not None and key not in live_packages:
            message = _conflict(Kind.PACKAGE, wanted.name, conflict, wanted.source)
            pairing.conflicted.add((wanted.name, wanted.location.region))
            pairing.fail(Kind.PACKAGE, wanted.name, wanted.location, message)
            continue
        if wanted.location in pairing.unread_packages:
            reason = pairing.unread_packages[wanted.location]
            pairing.resources.append(
                _status(
                    Kind.PACKAGE,
                    wanted.name,
                    wanted.location,
                    ResourceState.FAILED,
                    _not_read(wanted.location, reason),
                )
            )
            continue
        if wanted.name in build_errors:
            message = build_errors[wanted.name]
            pairing.fail(Kind.PACKAGE, wanted.name, wanted.location, message)
            continue
        if wanted.disabled:
            continue
        try:
            steps, version_deletes = package.plan_package(wanted, live_packages.get(key), source)
        except ResourceError as error:
            pairing.fail(Kind.PACKAGE, wanted.name, wanted.location, str(error))
            continue
        pairing.actions.extend(steps)
        pairing.deletions.extend(version_deletes)
        pairing.resources.append(_package_status(wanted, steps + version_deletes))

    for key, live in sorted(live_packages.items()):
        if key in pairing.wanted_packages or live.location in pairing.unread_packages:
            continue
        if live.source != source:
            pairing.unclaimed.add((Kind.PACKAGE, live.location, live.name))
        pairing.deletions.extend(package.plan_removal(live))


def _pair_associations(pairing: _Pairing) -> None:
    """Desired associations with live ones of the same name; the rest are pruned."""
    source = pairing.desired.source
    live_associations: dict[tuple[Location, str], list[ObservedAssociation]] = {}
    # Ours before unclaimed ones of the same name: the one kept when there are duplicates.
    for live in sorted(
        pairing.observed.associations, key=lambda a: (a.source != source, a.association_id)
    ):
        live_associations.setdefault((live.location, live.name), []).append(live)
        if live.source != source:
            pairing.unclaimed.add((Kind.ASSOCIATION, live.location, live.association_id))
    wanted_associations = {(a.location, a.name): a for a in pairing.desired.associations}
    for key, wanted in wanted_associations.items():
        if wanted.disabled:
            continue
        held = _association_held(pairing, wanted)
        if held:
            pairing.resources.append(
                _status(Kind.ASSOCIATION, wanted.name, wanted.location, ResourceState.FAILED, held)
            )
            continue
        found = live_associations.get(key, [])
        steps = association.plan_association(wanted, found[0] if found else None, source)
        pairing.actions.extend(steps)
        pairing.resources.append(
            _status(
                Kind.ASSOCIATION,
                wanted.name,
                wanted.location,
                ResourceState.DRIFTED if steps else ResourceState.IN_SYNC,
                ", ".join(_changes_text(a) for a in steps),
            )
        )
        # Duplicates (same name and owner) are ours to clean up, under the prune rules.
        for extra in found[1:]:
            pairing.deletions.extend(association.plan_removal(extra))
    for key, found in sorted(live_associations.items()):
        if key not in wanted_associations:
            for extra in found:
                pairing.deletions.extend(association.plan_removal(extra))


def _association_held(pairing: _Pairing, wanted: DesiredAssociation) -> str:
    """Why this declared association gets no step this pass ("" = it may have steps); a
    conflict is also an error of the pass."""
    not_read = _association_not_read(
        wanted, pairing.wanted_packages, pairing.unread_packages, pairing.unread_associations
    )
    if not_read:
        return not_read
    conflict = pairing.others.get((Kind.ASSOCIATION, wanted.location, wanted.name))
    if conflict is not None:
        message = _conflict(Kind.ASSOCIATION, wanted.name, conflict, wanted.source)
        pairing.errors.append(PlanError(Kind.ASSOCIATION, wanted.name, wanted.location, message))
        return message
    if (wanted.package, wanted.location.region) in pairing.conflicted:
        # It would install another source's package under our name: left as it is.
        return f"not changed: its package {wanted.package} is in conflict (see there)"
    return ""


def _guard_deletions(pairing: _Pairing) -> tuple[list[Action], list[Blocked]]:
    """The deletions that may run this pass, and the rest as blocked, in apply order."""
    deletions = sorted(pairing.deletions, key=lambda action: action.phase)  # budget: in order
    held: list[Blocked] = []
    may_go: list[Action] = []
    for action in deletions:
        subject = action.name
        if isinstance(action.step, DeleteAssociation):
            subject = action.step.association_id
        if (action.kind, action.location, subject) in pairing.unclaimed:
            reason = _UNCLAIMED
        else:
            reason = _unread_reason(action, pairing.unread_packages, pairing.unread_associations)
        if reason:
            held.append(Blocked(action, reason))
        else:
            may_go.append(action)
    allowed, blocked = _apply_safety(pairing.desired, may_go)
    return allowed, held + blocked


_UNCLAIMED = (
    f"unclaimed, not pruned: it carries our {OWNER_TAG} tag but no {SOURCE_TAG} tag, so it "
    "may be another repository's; declare it here to adopt it, or delete it by hand"
)


def _conflict(kind: Kind, name: str, other: str, where: str) -> str:
    return (
        f"conflict: this {kind} is also declared by another source ({other}), which owns it: "
        f"left alone; declare {name} in one repository only ({where})"
    )


def _not_read(location: Location, reason: str) -> str:
    return f"not changed: the live state in {location} could not be read completely ({reason})"


def _association_not_read(
    wanted: DesiredAssociation,
    wanted_packages: dict[tuple[Location, str], DesiredPackage],
    unread_packages: dict[Location, str],
    unread_associations: dict[Location, str],
) -> str:
    """Why this association may not be created or updated this pass ("" = it may).

    Its own location unread: we cannot tell what exists there (a create could duplicate).
    The package it installs unread (one of ours, in the same region): the versions this
    association names may not be in place, so changing it depends on what was not read.
    """
    if wanted.location in unread_associations:
        return _not_read(wanted.location, unread_associations[wanted.location])
    for location, reason in unread_packages.items():
        if location.region == wanted.location.region and (location, wanted.package) in (
            wanted_packages
        ):
            return (
                f"not changed: package {wanted.package} in {location} could not be read "
                f"completely ({reason})"
            )
    return ""


def _unread_reason(
    action: Action, unread_packages: dict[Location, str], unread_associations: dict[Location, str]
) -> str:
    """Why this deletion depends on what was not read ("" = it does not).

    A package (or version) may still be used by associations in any account of its region,
    which install it by ARN there (shared packages): if one of those locations was not read,
    deleting it could break associations we did not see.
    """
    if action.kind is Kind.ASSOCIATION:
        if action.location in unread_associations:
            return _not_read(action.location, unread_associations[action.location])
        return ""
    if action.location in unread_packages:
        return _not_read(action.location, unread_packages[action.location])
    for location, reason in sorted(unread_associations.items()):
        if location.region == action.location.region:
            return (
                f"no deletion on a partial view: associations in {location} could not be "
                f"read and may use it ({reason})"
            )
    return ""


def _apply_safety(desired: Desired, deletions: list[Action]) -> tuple[list[Action], list[Blocked]]:
    """Which deletions may run this pass; the rest are reported as blocked."""
    allowed: list[Action] = []
    blocked: list[Blocked] = []
    if not deletions:
        return allowed, blocked
    if not desired.packages and not desired.associations:
        reason = "the repository declares nothing: refusing to delete everything"
        return [], [Blocked(action, reason) for action in deletions]
    budget = desired.prune.max_deletes
    for action in deletions:
        if action.step.removal:
            allowed.append(action)  # goes or stays with its package deletion, below
            continue
        if not desired.prune.enabled:
            # Contract (Ownership and safety): deletions only with prune enabled. A version
            # deletion needs both: the package's pruneVersions and the Settings' prune.
            blocked.append(Blocked(action, "prune is disabled (Settings spec.prune.enabled)"))
            continue
        if budget <= 0:
            blocked.append(
                Blocked(action, f"over maxDeletes={desired.prune.max_deletes} deletions this pass")
            )
            continue
        budget -= 1
        allowed.append(action)
    # The unshare that precedes a blocked package deletion is held back with it.
    blocked_packages = {
        (b.action.location, b.action.name)
        for b in blocked
        if isinstance(b.action.step, DeletePackage)
    }
    kept = [
        action
        for action in allowed
        if not (action.step.removal and (action.location, action.name) in blocked_packages)
    ]
    return kept, blocked


def _status(
    kind: Kind, name: str, location: Location, state: ResourceState, message: str = ""
) -> ResourceStatus:
    return ResourceStatus(kind, name, location.account, location.region, state, message)


def _package_status(wanted: DesiredPackage, steps: list[Action]) -> ResourceStatus:
    if not steps:
        return _status(Kind.PACKAGE, wanted.name, wanted.location, ResourceState.IN_SYNC)
    message = "; ".join(f"{s.verb} {_changes_text(s)}".strip() for s in steps)
    return _status(Kind.PACKAGE, wanted.name, wanted.location, ResourceState.DRIFTED, message)


def _changes_text(action: Action | None) -> str:
    if action is None:
        return ""
    return ", ".join(f"{c.field}: {c.old or '-'} -> {c.new or '-'}" for c in action.changes)
