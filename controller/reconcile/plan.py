"""Stage 4 of a pass: `plan(desired, observed) -> Plan`, a pure function (no AWS, no clock).

It pairs desired and observed resources by (location, name) — no desired = prune, no live
= create — and emits frozen `Action`s in the order apply must respect (issue 4):

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

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from controller.model.state import (
    OWNER_TAG,
    SHARE_ALL,
    SHARED_VERSION,
    SOURCE_TAG,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    DesiredVersion,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
)
from controller.reconcile.result import ResourceState, ResourceStatus

# https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-version.html
# "You can have up to 25 versions of a package".
MAX_VERSIONS = 25


class Phase(IntEnum):
    PACKAGES = 1
    ASSOCIATIONS = 2
    ASSOCIATION_DELETES = 3
    PACKAGE_DELETES = 4


@dataclass(frozen=True)
class Change:
    """One field that differs, for the reviewer: `field: old -> new`."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Action:
    """One step apply takes. Frozen: apply reads it, never edits it."""

    kind: str  # "package" | "association"
    name: str
    action: str  # create, add_version, set_default, tag, share, unshare, update, delete, ...
    location: Location
    phase: Phase
    changes: tuple[Change, ...] = ()
    package: DesiredPackage | None = None
    version: DesiredVersion | None = None  # create / add_version: the version to publish
    version_name: str = ""  # set_default / delete_version
    association: DesiredAssociation | None = None
    association_id: str = ""  # update / delete
    association_version: str = ""  # update: the AssociationVersion we planned against
    accounts: tuple[str, ...] = ()  # share / unshare
    tags_set: tuple[tuple[str, str], ...] = ()
    tags_removed: tuple[str, ...] = ()

    @property
    def symbol(self) -> str:
        if self.action in ("create", "add_version", "share"):
            return "+"
        if self.action in ("delete", "delete_version", "unshare"):
            return "-"
        return "~"

    @property
    def effect(self) -> str:
        """Which summary bucket: add, change or destroy."""
        if self.action in ("create", "add_version"):
            return "add"
        if self.action in ("delete", "delete_version"):
            return "destroy"
        return "change"

    @property
    def is_deletion(self) -> bool:
        return self.action in ("delete", "delete_version")

    @property
    def group(self) -> tuple[str, str, Location]:
        """Actions of one group run in order; different groups may run concurrently."""
        return (self.kind, self.name, self.location)

    def describe(self) -> str:
        """One line: `+ package datadog-agent add_version 6.9.1 (123/us-east-1)`."""
        subject = self.version.name if self.version else self.version_name
        if self.accounts:
            subject = ",".join(self.accounts)
        text = f"{self.symbol} {self.kind} {self.name} {self.action}"
        if subject:
            text += f" {subject}"
        return f"{text} ({self.location})"


@dataclass(frozen=True)
class Blocked:
    action: Action
    reason: str

    def describe(self) -> str:
        return f"{self.action.describe()}: blocked: {self.reason}"


@dataclass(frozen=True)
class PlanError:
    kind: str
    name: str
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.location}): {self.message}"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    blocked: tuple[Blocked, ...] = ()
    errors: tuple[PlanError, ...] = ()
    resources: tuple[ResourceStatus, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def summary(self) -> str:
        counts = {"add": 0, "change": 0, "destroy": 0}
        for action in self.actions:
            counts[action.effect] += 1
        text = (
            f"Plan: {counts['add']} to add, {counts['change']} to change, "
            f"{counts['destroy']} to destroy, {len(self.blocked)} blocked"
        )
        if self.errors:
            text += f", {len(self.errors)} error{'s' if len(self.errors) > 1 else ''}"
        return text


def plan(desired: Desired, observed: Observed) -> Plan:
    """The ordered actions that make `observed` match `desired`, with the safety rules."""
    actions: list[Action] = []
    errors: list[PlanError] = []
    resources: list[ResourceStatus] = []
    deletions: list[Action] = []
    build_errors = dict(desired.errors)

    # Never act on a partial view (contract: Ownership and safety): where a kind could not
    # be read in a location, nothing of that kind there is changed or deleted, and nothing
    # elsewhere that depends on it is (see `_unread_reason`).
    unread_packages = observed.unread_locations("package")
    unread_associations = observed.unread_locations("association")

    # An owner identifies its source (contract: Ownership and safety; controller.model.ownership):
    # another source's resource is never changed or pruned, and declaring it is a conflict;
    # an unclaimed one (our owner tag, no source tag) is adopted if declared, else kept.
    source = desired.source
    others: dict[tuple[str, Location, str], str] = {
        (o.kind, o.location, o.name): o.source for o in observed.others
    }
    unclaimed: set[tuple[str, Location, str]] = set()  # (kind, location, name or id)
    conflicted: set[tuple[str, str]] = set()  # (package name, region): another source's

    live_packages = {(p.location, p.name): p for p in observed.packages}
    wanted_packages = {(p.location, p.name): p for p in desired.packages}
    for key, package in wanted_packages.items():
        conflict = others.get(("package", package.location, package.name))
        if conflict is not None and key not in live_packages:
            message = _conflict("package", package.name, conflict, package.source)
            conflicted.add((package.name, package.location.region))
            errors.append(PlanError("package", package.name, package.location, message))
            resources.append(
                _status("package", package.name, package.location, ResourceState.FAILED, message)
            )
            continue
        if package.location in unread_packages:
            resources.append(
                _status(
                    "package",
                    package.name,
                    package.location,
                    ResourceState.FAILED,
                    _not_read(package.location, unread_packages[package.location]),
                )
            )
            continue
        if package.name in build_errors:
            errors.append(
                PlanError("package", package.name, package.location, build_errors[package.name])
            )
            resources.append(
                _status(
                    "package",
                    package.name,
                    package.location,
                    ResourceState.FAILED,
                    build_errors[package.name],
                )
            )
            continue
        if package.disabled:
            continue
        live = live_packages.get(key)
        try:
            steps, version_deletes = _plan_package(package, live, source)
        except _PackageError as error:
            errors.append(PlanError("package", package.name, package.location, str(error)))
            resources.append(
                _status("package", package.name, package.location, ResourceState.FAILED, str(error))
            )
            continue
        actions.extend(steps)
        deletions.extend(version_deletes)
        resources.append(_package_status(package, steps + version_deletes))

    for key, live in sorted(live_packages.items()):
        if key in wanted_packages or live.location in unread_packages:
            continue
        if live.source != source:
            unclaimed.add(("package", live.location, live.name))
        if live.shared:
            deletions.append(
                Action(
                    "package",
                    live.name,
                    "unshare",
                    live.location,
                    Phase.PACKAGE_DELETES,
                    accounts=tuple(account for account, _ in live.shared),
                )
            )
        deletions.append(
            Action("package", live.name, "delete", live.location, Phase.PACKAGE_DELETES)
        )

    live_associations: dict[tuple[Location, str], list[ObservedAssociation]] = {}
    # Ours before unclaimed ones of the same name: the one kept when there are duplicates.
    for association in sorted(
        observed.associations, key=lambda a: (a.source != source, a.association_id)
    ):
        live_associations.setdefault((association.location, association.name), []).append(
            association
        )
        if association.source != source:
            unclaimed.add(("association", association.location, association.association_id))
    wanted_associations = {(a.location, a.name): a for a in desired.associations}
    for key, wanted in wanted_associations.items():
        if wanted.disabled:
            continue
        not_read = _association_not_read(
            wanted, wanted_packages, unread_packages, unread_associations
        )
        if not_read:
            resources.append(
                _status("association", wanted.name, wanted.location, ResourceState.FAILED, not_read)
            )
            continue
        conflict = others.get(("association", wanted.location, wanted.name))
        if conflict is not None:
            message = _conflict("association", wanted.name, conflict, wanted.source)
            errors.append(PlanError("association", wanted.name, wanted.location, message))
            resources.append(
                _status("association", wanted.name, wanted.location, ResourceState.FAILED, message)
            )
            continue
        if (wanted.package, wanted.location.region) in conflicted:
            # It would install another source's package under our name: left as it is.
            message = f"not changed: its package {wanted.package} is in conflict (see there)"
            resources.append(
                _status("association", wanted.name, wanted.location, ResourceState.FAILED, message)
            )
            continue
        found = live_associations.get(key, [])
        step = _plan_association(wanted, found[0] if found else None)
        if step is not None:
            actions.append(step)
        adopt = _adopt_association(wanted, found[0], source) if found else None
        if adopt is not None:
            actions.append(adopt)
        changed = [a for a in (step, adopt) if a is not None]
        resources.append(
            _status(
                "association",
                wanted.name,
                wanted.location,
                ResourceState.DRIFTED if changed else ResourceState.IN_SYNC,
                ", ".join(_changes_text(a) for a in changed),
            )
        )
        # Duplicates (same name and owner) are ours to clean up, under the prune rules.
        for extra in found[1:]:
            deletions.append(_delete_association(extra))
    for key, found in sorted(live_associations.items()):
        if key not in wanted_associations:
            deletions.extend(_delete_association(extra) for extra in found)

    deletions.sort(key=lambda action: action.phase)  # budget goes in apply order
    held: list[Blocked] = []
    may_go: list[Action] = []
    for action in deletions:
        subject = action.association_id if action.kind == "association" else action.name
        if (action.kind, action.location, subject) in unclaimed:
            reason = _UNCLAIMED
        else:
            reason = _unread_reason(action, unread_packages, unread_associations)
        if reason:
            held.append(Blocked(action, reason))
        else:
            may_go.append(action)
    allowed, blocked = _apply_safety(desired, may_go)
    blocked = held + blocked
    actions.extend(allowed)
    if desired.suspended:
        blocked = [
            Blocked(action, "reconciliation is suspended in Settings") for action in actions
        ] + blocked
        actions = []
    actions.sort(key=lambda action: action.phase)  # stable: keeps the order within a phase
    return Plan(tuple(actions), tuple(blocked), tuple(errors), tuple(resources))


class _PackageError(Exception):
    """A problem confined to one package (e.g. a published version changed)."""


def _plan_package(
    package: DesiredPackage, live: ObservedPackage | None, source: str = ""
) -> tuple[list[Action], list[Action]]:
    steps: list[Action] = []
    deletes: list[Action] = []
    phase = Phase.PACKAGES
    location = package.location

    def step(action: str, **fields: Any) -> None:
        steps.append(
            Action("package", package.name, action, location, phase, package=package, **fields)
        )

    wanted_tags = dict(package.tags)
    if source:
        wanted_tags[SOURCE_TAG] = source  # tagged at birth; adopts an unclaimed package
    if live is None:
        first, *rest = package.versions
        step(
            "create",
            version=first,
            tags_set=tuple(sorted(wanted_tags.items())),
            changes=(Change("version", "", first.name),),
        )
        for version in rest:
            step("add_version", version=version, changes=(Change("version", "", version.name),))
        if package.default_version != first.name:
            step(
                "set_default",
                version_name=package.default_version,
                changes=(Change("defaultVersion", "", package.default_version),),
            )
        shares = _share_targets(package.share_with)
        if shares:
            step("share", accounts=shares, changes=(Change("shareWith", "", ",".join(shares)),))
        return steps, deletes

    # A published version is immutable: different content under the same VersionName is an
    # error, never a silent republish (contract: Ownership and safety).
    new_versions: list[DesiredVersion] = []
    for version in package.versions:
        published = live.version(version.name)
        if published is None:
            new_versions.append(version)
        elif published.status == "Failed":
            # A version whose publication failed keeps its name: it cannot be republished.
            raise _PackageError(
                f"version {version.name} failed to publish: "
                f"{published.status_information or 'no reason given'}; fix it, then bump "
                f"the version name in {package.source} (or delete the failed version)"
            )
        elif published.content_sha256 != version.content_sha256:
            raise _PackageError(
                f"version {version.name} is already published with different content "
                f"(live sha256 {published.content_sha256[:12]}, repository "
                f"{version.content_sha256[:12]}): bump the version name in {package.source}"
            )
    wanted_names = {version.name for version in package.versions}
    # The live default may go too: the pointer moves first (phase 1), and AWS refuses to
    # delete a document's default version should that step have failed (DeleteDocument).
    stale = [v for v in live.versions if v.name not in wanted_names]
    kept = len(live.versions) - (len(stale) if package.prune_versions else 0)
    if kept + len(new_versions) > MAX_VERSIONS:
        raise _PackageError(
            f"{kept + len(new_versions)} versions would exceed the {MAX_VERSIONS} a package "
            f"may hold: remove old versions and set pruneVersions: true in {package.source}"
        )
    for version in new_versions:
        step("add_version", version=version, changes=(Change("version", "", version.name),))
    if live.default_version != package.default_version:
        step(
            "set_default",
            version_name=package.default_version,
            changes=(
                Change(
                    "defaultVersion",
                    live.default_version or live.default_number,
                    package.default_version,
                ),
            ),
        )

    live_tags = dict(live.tags)
    tags_set = tuple(sorted((k, v) for k, v in wanted_tags.items() if live_tags.get(k) != v))
    tags_removed = tuple(
        sorted(
            k
            for k in live_tags
            if k not in wanted_tags and not k.startswith("aws:") and k not in _OWNERSHIP_TAGS
        )
    )
    if tags_set or tags_removed:
        step(
            "tag",
            tags_set=tags_set,
            tags_removed=tags_removed,
            changes=tuple(Change(f"tags.{k}", live_tags.get(k, ""), v) for k, v in tags_set)
            + tuple(Change(f"tags.{k}", live_tags[k], "") for k in tags_removed),
        )

    wanted_shares = set(_share_targets(package.share_with))
    live_shares = dict(live.shared)
    to_share = tuple(sorted(a for a in wanted_shares if live_shares.get(a) != SHARED_VERSION))
    to_unshare = tuple(sorted(a for a in live_shares if a not in wanted_shares))
    if to_unshare:
        # Unshare first: "All" cannot be mixed with account ids (ModifyDocumentPermission).
        steps.insert(
            0,
            Action(
                "package",
                package.name,
                "unshare",
                location,
                phase,
                package=package,
                accounts=to_unshare,
                changes=(Change("shareWith", ",".join(to_unshare), ""),),
            ),
        )
    if to_share:
        step(
            "share",
            accounts=to_share,
            changes=(
                Change(
                    "shareWith",
                    ",".join(sorted(live_shares)) or "",
                    ",".join(sorted(wanted_shares)),
                ),
            ),
        )

    if package.prune_versions:
        for old in stale:
            deletes.append(
                Action(
                    "package",
                    package.name,
                    "delete_version",
                    location,
                    Phase.PACKAGE_DELETES,
                    package=package,
                    version_name=old.name or old.number,
                    changes=(Change("version", old.name, ""),),
                )
            )
    return steps, deletes


def _share_targets(share_with: Iterable[str]) -> tuple[str, ...]:
    accounts = set(share_with)
    if SHARE_ALL in accounts:
        return (SHARE_ALL,)
    return tuple(sorted(accounts))


# AssociationSpec field -> the repository's (YAML) name, so the plan speaks the user's words.
_ASSOCIATION_FIELDS = {
    "parameters": "parameters",
    "targets": "targets",
    "schedule": "schedule",
    "max_concurrency": "maxConcurrency",
    "max_errors": "maxErrors",
    "compliance_severity": "complianceSeverity",
    "apply_only_at_cron_interval": "applyOnlyAtCronInterval",
    "output": "output",
}


def _plan_association(
    wanted: DesiredAssociation, live: ObservedAssociation | None
) -> Action | None:
    if live is None:
        return Action(
            "association",
            wanted.name,
            "create",
            wanted.location,
            Phase.ASSOCIATIONS,
            association=wanted,
            changes=_association_changes(None, wanted),
        )
    if live.spec == wanted.spec:
        return None
    return Action(
        "association",
        wanted.name,
        "update",
        wanted.location,
        Phase.ASSOCIATIONS,
        association=wanted,
        association_id=live.association_id,
        association_version=live.version,
        changes=_association_changes(live, wanted),
    )


def _association_changes(
    live: ObservedAssociation | None, wanted: DesiredAssociation
) -> tuple[Change, ...]:
    changes: list[Change] = []
    for name, shown in _ASSOCIATION_FIELDS.items():
        new = getattr(wanted.spec, name)
        old = getattr(live.spec, name) if live else None
        if name == "parameters":
            old_map = dict(old or ())
            for key, value in new:
                if old_map.get(key) != value:
                    changes.append(Change(f"parameters.{key}", old_map.get(key, ""), value))
            changes.extend(
                Change(f"parameters.{key}", value, "")
                for key, value in sorted(old_map.items())
                if key not in dict(new)
            )
        elif old != new and (live is not None or new not in (None, False, ())):
            show = _show_output if name == "output" else _show
            changes.append(Change(shown, show(old), show(new)))
    return tuple(changes)


def _show_output(value: tuple[str, str, str] | None) -> str:
    """(bucket, key prefix, region) as the user reads it: `s3://bucket/prefix (region)`."""
    if value is None:
        return ""
    bucket, prefix, region = value
    url = f"s3://{bucket}/{prefix.lstrip('/')}" if prefix else f"s3://{bucket}"
    return f"{url} ({region})" if region else url


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        parts = []
        for key, values in value:
            shown = ",".join(values) if isinstance(values, tuple) else str(values)
            parts.append(f"{key}={shown}")
        return "; ".join(parts)
    if isinstance(value, tuple):
        return "/".join(str(part) for part in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _delete_association(live: ObservedAssociation) -> Action:
    return Action(
        "association",
        live.name or live.association_id,  # AssociationName is optional: show the id then
        "delete",
        live.location,
        Phase.ASSOCIATION_DELETES,
        association_id=live.association_id,
        changes=(Change("association", live.association_id, ""),),
    )


_OWNERSHIP_TAGS = (OWNER_TAG, SOURCE_TAG)
_UNCLAIMED = (
    f"unclaimed, not pruned: it carries our {OWNER_TAG} tag but no {SOURCE_TAG} tag, so it "
    "may be another repository's; declare it here to adopt it, or delete it by hand"
)


def _conflict(kind: str, name: str, other: str, where: str) -> str:
    return (
        f"conflict: this {kind} is also declared by another source ({other}), which owns it: "
        f"left alone; declare {name} in one repository only ({where})"
    )


def _adopt_association(
    wanted: DesiredAssociation, live: ObservedAssociation, source: str
) -> Action | None:
    """An unclaimed association we declare becomes ours: it gets our source tag."""
    if not source or live.source == source:
        return None
    return Action(
        "association",
        wanted.name,
        "tag",
        wanted.location,
        Phase.ASSOCIATIONS,
        association=wanted,
        association_id=live.association_id,
        tags_set=((SOURCE_TAG, source),),
        changes=(Change(f"tags.{SOURCE_TAG}", live.source, source),),
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
    if action.kind == "association":
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
        if action.action == "unshare":
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
        if b.action.kind == "package" and b.action.action == "delete"
    }
    kept = [
        action
        for action in allowed
        if not (action.action == "unshare" and (action.location, action.name) in blocked_packages)
    ]
    return kept, blocked


def _status(
    kind: str, name: str, location: Location, state: ResourceState, message: str = ""
) -> ResourceStatus:
    return ResourceStatus(kind, name, location.account, location.region, state, message)


def _package_status(package: DesiredPackage, steps: list[Action]) -> ResourceStatus:
    if not steps:
        return _status("package", package.name, package.location, ResourceState.IN_SYNC)
    message = "; ".join(f"{s.action} {_changes_text(s)}".strip() for s in steps)
    return _status("package", package.name, package.location, ResourceState.DRIFTED, message)


def _changes_text(action: Action | None) -> str:
    if action is None:
        return ""
    return ", ".join(f"{c.field}: {c.old or '-'} -> {c.new or '-'}" for c in action.changes)
