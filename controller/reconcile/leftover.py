"""Nothing left behind: which locations a pass observes, and how the location record changes.

Stage 3 (observe) and the end of stage 5 (apply) of a pass, for `controller.reconcile.engine`.
The record (`controller.aws.records`) lists every (account, region) where the controller owns
something. A pass observes the resolved Settings locations AND the recorded ones: a recorded
location that is no longer desired (the account left the OU, the region left Settings, the
placement narrowed) is read like any other, so the plan prunes what we own there under the
usual rules (prune enabled, maxDeletes, never when the desired set is empty, never where the
read was incomplete). After apply the record gains every desired location and loses only a
location that was read completely and where every owned resource was deleted.

When an OU of Settings could not be read, an account missing from the resolved accounts may
still be under it: such recorded locations are held (not read, so nothing is pruned there, and
the packages stay shared with them) and stay in the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from controller.aws.records import Place
from controller.model.kinds import Kind, Verb
from controller.model.state import Desired, Location, Observed
from controller.reconcile.kinds import Action
from controller.reconcile.locations import Locations
from controller.reconcile.plan import Blocked, Plan
from controller.reconcile.result import ActionRecord, ActionResult, LocationStatus


@dataclass(frozen=True)
class Targets:
    """What a pass reads: home package regions, association locations with their role."""

    package_regions: tuple[str, ...]
    associations: tuple[tuple[str, str, str | None], ...]  # (account, region, role or None)
    held: tuple[Location, ...]  # recorded, not read this pass (an OU could not be read)


def targets(where: Locations, recorded: Iterable[Place], home: str) -> Targets:
    """Settings' locations, then the recorded ones not among them (read to prune them)."""
    regions = list(where.regions)
    associations: dict[Location, str | None] = {
        Location(account, region): role for account, role in where.accounts for region in regions
    }
    held: list[Location] = []
    for account, region, role in sorted(recorded):
        location = Location(account, region)
        if location in associations:
            continue
        if not where.complete and account not in where.account_ids:
            held.append(location)  # maybe still under the OU that could not be read
            continue
        # An account still in Settings is read with its Settings role (roleArn may have
        # changed since it was recorded); one that left, with the role recorded.
        settings_role = dict(where.accounts).get(account, role or None)
        associations[location] = None if account == home else settings_role
        if account == home and region not in regions:
            regions.append(region)  # our packages there too
    return Targets(
        tuple(regions),
        tuple((loc.account, loc.region, role) for loc, role in associations.items()),
        tuple(held),
    )


def hold_shares(desired: Desired, held: Iterable[Location]) -> Desired:
    """Keep packages shared with held accounts: with an OU unread, an account missing from
    the resolved ones may still use them (never act on a partial view)."""
    by_region: dict[str, set[str]] = {}
    for location in held:
        by_region.setdefault(location.region, set()).add(location.account)
    if not by_region:
        return desired
    packages = tuple(
        p
        if "All" in p.share_with or p.location.region not in by_region
        else replace(
            p,
            share_with=p.share_with
            | frozenset(by_region[p.location.region] - {p.location.account}),
        )
        for p in desired.packages
    )
    return replace(desired, packages=packages)


UNPLACED = (
    "an association placed by an organizationalUnit that could not be read this pass "
    "depends on it: where that association belongs is not known, so this waits"
)


def hold_unplaced(result: Plan, unplaced: frozenset[tuple[Kind, str]]) -> Plan:
    """Nothing that depends on a placement that could not be resolved (`unplaced`: the
    associations placed by an OU not read, and their packages; `Locations.unresolved`):
    no deletion of such an association, no unshare or deletion of its package. With the OU
    unread, an account listed by id may still be in it (never act on a partial view)."""
    if not unplaced:
        return result

    def depends(action: Action) -> bool:
        if (action.kind, action.name) not in unplaced:
            return False
        if action.kind is Kind.ASSOCIATION:
            return action.verb is Verb.DELETE
        return action.verb in (Verb.DELETE, Verb.UNSHARE)

    held = [action for action in result.actions if depends(action)]
    if not held:
        return result
    return replace(
        result,
        actions=tuple(a for a in result.actions if a not in held),
        blocked=result.blocked + tuple(Blocked(action, UNPLACED) for action in held),
    )


def desired_places(desired: Desired, where: Locations, home: str) -> frozenset[Place]:
    """Every location where the desired state has something, with the role used there."""
    roles = dict(where.accounts)
    locations = {p.location for p in desired.packages} | {a.location for a in desired.associations}
    return frozenset(
        (loc.account, loc.region, "" if loc.account == home else roles.get(loc.account) or "")
        for loc in locations
    )


def cleaned(
    recorded: Iterable[Place],
    wanted: frozenset[Place],
    observed: Observed,
    unreachable: Iterable[Location],
    held: Iterable[Location],
    records: Iterable[ActionRecord],
) -> frozenset[Location]:
    """Recorded locations no longer desired, read completely, where everything we owned was
    deleted by this pass: they leave the record."""
    wanted_locations = {Location(a, r) for a, r, _ in wanted}
    not_read = {u.location for u in observed.unread} | set(unreachable) | set(held)
    deleted = {
        (r.kind, r.name, Location(r.account, r.region))
        for r in records
        if r.result is ActionResult.SUCCESS and r.action == "delete"
    }
    owned: dict[Location, set[tuple[str, str, Location]]] = {}
    for package in observed.packages:
        owned.setdefault(package.location, set()).add(("package", package.name, package.location))
    for association in observed.associations:
        owned.setdefault(association.location, set()).add(
            ("association", association.name, association.location)
        )
    result: set[Location] = set()
    for account, region, _role in recorded:
        location = Location(account, region)
        if location in wanted_locations or location in not_read:
            continue
        if owned.get(location, set()) <= deleted:
            result.add(location)
    return frozenset(result)


def merge(
    wanted: frozenset[Place], clean: frozenset[Location]
) -> Callable[[frozenset[Place]], frozenset[Place]]:
    """The record's change for `write_record`: add the desired places (their role replaces a
    recorded one), drop the cleaned locations; everything else another writer added stays."""

    def change(current: frozenset[Place]) -> frozenset[Place]:
        replaced = {(a, r) for a, r, _ in wanted}
        kept = {
            place
            for place in current
            if (place[0], place[1]) not in replaced and Location(place[0], place[1]) not in clean
        }
        return frozenset(kept | wanted)

    return change


def statuses(
    read: Iterable[Location],
    observed: Observed,
    unreachable: dict[Location, str],
    held: Iterable[Location],
    held_reason: str,
) -> tuple[LocationStatus, ...]:
    """`location_up` per location: 1 when read completely this pass."""
    reasons: dict[Location, list[str]] = {}
    for unread in observed.unread:
        reasons.setdefault(unread.location, []).append(unread.reason)
    for location, reason in unreachable.items():
        reasons.setdefault(location, []).append(reason)
    for location in held:
        reasons.setdefault(location, []).append(held_reason)
    every = sorted(set(read) | set(reasons))
    return tuple(
        LocationStatus(
            loc.account,
            loc.region,
            loc not in reasons,
            "; ".join(dict.fromkeys(reasons.get(loc, []))),
        )
        for loc in every
    )
