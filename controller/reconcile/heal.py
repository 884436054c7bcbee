"""Heal just the resources drift events named: the normal plan, only their actions applied.

Where it sits: `runtime.events` turns a batch of queue messages into `NamedResource`s
(`reconcile.events`) and calls `Reconciler.heal` (engine.py), which runs the usual pipeline
with three differences, all made here:

1. `forget`: the named resources are re-read, not taken from the observe cache (a default
   version moved by hand leaves ListDocuments' DocumentVersion as it was; a removed owner tag
   is only seen by reading the tags again).
2. `restrict`: the plan is the one a pass computes from the whole desired and observed state
   (so a rollout in progress, the partial-view rules, conflicts and prune limits decide
   exactly as in a pass; a heal never hand-rolls a diff), cut down to the named resources:
   nothing else is changed by a heal. Nor is anything deleted: pruning is left to the
   passes, whose maxDeletes budget a stream of events must not multiply.
3. `outcomes`: per resource, `healed` (an action succeeded), `in_sync` (ours, nothing to
   do), `foreign` (not a resource of ours: nothing touched), or None when its action failed
   (the message stays on the queue and comes back after its visibility timeout).

Apply is unchanged, so the safety rules hold: the owner tag is re-read right before any
change, and nothing without our tags is changed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from controller.model.kinds import Kind, Verb
from controller.model.state import Location
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.kinds import Action
from controller.reconcile.observe import Observer
from controller.reconcile.plan import Blocked, Plan
from controller.reconcile.result import ActionResult, Failure, PassResult, Reason

# (kind, location, name): how plan, apply and /status name a resource.
Key = tuple[Kind, Location, str]
# (location, association id) -> association name, from the last two observations.
AssociationNames = Mapping[tuple[Location, str], str]


@dataclass(frozen=True)
class Healed:
    """One heal: the pass it ran (restricted to the named resources) and each one's result."""

    result: PassResult
    outcomes: Mapping[NamedResource, EventResult | None]  # None: failed, leave it for redelivery


def key_of(resource: NamedResource, names: AssociationNames) -> Key:
    """How the plan names `resource`. An association known only by an id we never saw (one
    created and deleted between two observations) gets the name "": it stands for any of
    our associations missing in its location, which the plan would create again."""
    if resource.kind is Kind.PACKAGE:
        return (Kind.PACKAGE, resource.location, resource.name)
    name = resource.name or names.get((resource.location, resource.association_id), "")
    return (Kind.ASSOCIATION, resource.location, name)


def keys_of(resources: Collection[NamedResource], names: AssociationNames) -> set[Key]:
    """The plan's names of `resources`."""
    return {key_of(r, names) for r in resources}


def forget(observer: Observer, resources: Collection[NamedResource]) -> None:
    """Re-read the named resources on this observe instead of trusting the cache."""
    for resource in resources:
        if resource.kind is Kind.PACKAGE:
            observer.forget(Kind.PACKAGE, resource.location, resource.name)
        elif resource.association_id:
            observer.forget_owner(resource.location, resource.association_id)


_DELETIONS = frozenset({Verb.DELETE, Verb.DELETE_VERSION})
HEAL_DELETES_NOTHING = "a drift event deletes nothing: left to the next pass (maxDeletes per pass)"


def restrict(plan: Plan, keys: Collection[Key]) -> Plan:
    """The plan of a pass, with only what concerns `keys`."""
    wanted = set(keys)
    missing_anywhere = {loc for kind, loc, name in wanted if kind is Kind.ASSOCIATION and not name}

    def named(kind: str, location: Location, name: str) -> bool:
        return (Kind(kind), location, name) in wanted

    def kept(action: Action) -> bool:
        if named(action.kind, action.location, action.name):
            return True
        return (
            action.kind is Kind.ASSOCIATION
            and action.verb is Verb.CREATE
            and action.location in missing_anywhere
        )

    actions = [a for a in plan.actions if kept(a)]
    # A heal deletes nothing: maxDeletes is a budget per pass, and a heal is a pass of its
    # own; events (which anyone the queue policy lets send can send) would each prune
    # maxDeletes more, seconds apart. Deletions (and the unshares that go with a package's
    # deletion) wait for the next pass, under its budget.
    pruning = [a for a in actions if a.verb in _DELETIONS or a.step.removal]
    return replace(
        plan,
        actions=tuple(a for a in actions if a not in pruning),
        blocked=tuple(
            b for b in plan.blocked if named(b.action.kind, b.action.location, b.action.name)
        )
        + tuple(Blocked(a, HEAL_DELETES_NOTHING) for a in pruning),
        errors=tuple(e for e in plan.errors if named(e.kind, e.location, e.name)),
        resources=tuple(
            r for r in plan.resources if named(r.kind, Location(r.account, r.region), r.name)
        ),
    )


def restrict_failures(failures: tuple[Failure, ...], keys: Collection[Key]) -> tuple[Failure, ...]:
    """A pass's failures that concern `keys`, or no resource at all (an unread location)."""
    wanted: set[tuple[str, Location | None, str]] = set(keys)  # Kind is a StrEnum: "package"
    return tuple(f for f in failures if not f.name or (f.kind, f.location, f.name) in wanted)


def outcomes(
    result: PassResult, resources: Collection[NamedResource], names: AssociationNames
) -> dict[NamedResource, EventResult | None]:
    """What became of each named resource in the restricted pass `result`."""
    managed = {(Kind(r.kind), Location(r.account, r.region), r.name) for r in result.resources}
    acted: dict[Key, set[ActionResult]] = {}
    for record in result.actions:
        done = (Kind(record.kind), Location(record.account, record.region), record.name)
        acted.setdefault(done, set()).add(record.result)
    failed_places = {
        (Kind(failure.kind), failure.location, failure.name)
        for failure in result.failures
        if failure.name and failure.kind and failure.location is not None
    }
    # A location not read completely (no resource named): nothing there was healed.
    unread = {f.location for f in result.failures if not f.name and f.location is not None}
    # A pass that failed before it planned (STS, a build) or applied (the bucket): nothing
    # was healed. A `location` problem names no resource either, but the pass went on (an OU
    # or the location record unread, a placement outside Settings: engine.desired_for), and
    # it may last: counting it here kept every event for redelivery, a heal each time.
    stopped = any(
        not f.name and f.location is None and f.reason is not Reason.LOCATION
        for f in result.failures
    )
    found: dict[NamedResource, EventResult | None] = {}
    for resource in resources:
        key = key_of(resource, names)
        if not key[2]:  # an association id never seen: any of ours missing there
            key_results = {
                result
                for (kind, location, _name), results in acted.items()
                if kind is Kind.ASSOCIATION and location == key[1]
                for result in results
            }
        else:
            key_results = acted.get(key, set())
        if (
            ActionResult.FAILURE in key_results
            or key in failed_places
            or key[1] in unread
            or stopped
        ):
            found[resource] = None  # not healed: the message comes back
        elif ActionResult.SUCCESS in key_results:
            found[resource] = EventResult.HEALED
        elif key in managed or key_results:
            found[resource] = EventResult.IN_SYNC
        else:
            found[resource] = EventResult.FOREIGN
    return found
