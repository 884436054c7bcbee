"""A package (an SSM document of type Package): create it, keep its tags, remove it.

Stage: plan (pure). `plan_package` pairs one desired package with its live document and
returns every step the package needs, in the order apply runs them within the package:
unshare, create or new versions, the default pointer, tags, share. Its versions and its
sharing are planned by their own modules (`.version`, `.sharing`); apply runs the steps in
`controller.reconcile.apply.package`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from controller.model.fingerprint import FINGERPRINT_TAGS
from controller.model.kinds import Kind, Verb
from controller.model.rollout import ROLLOUT_TAG
from controller.model.state import (
    OWNER_TAG,
    SOURCE_TAG,
    DesiredPackage,
    DesiredVersion,
    ObservedPackage,
)
from controller.reconcile.kinds import sharing, version
from controller.reconcile.kinds.action import Action, Change, StepBase

# Tags the controller keeps itself, never the repository's and never removed as a stale
# user tag: ownership (controller.model.ownership), a progressive rollout's progress
# (controller.model.rollout) and the fingerprints (controller.model.fingerprint).
OWNERSHIP_TAGS = (OWNER_TAG, SOURCE_TAG, ROLLOUT_TAG, *FINGERPRINT_TAGS)


@dataclass(frozen=True)
class CreatePackage(StepBase):
    """CreateDocument with the first version and the tags (owner and source included)."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.CREATE
    package: DesiredPackage
    version: DesiredVersion
    tags: tuple[tuple[str, str], ...]

    @property
    def subject(self) -> str:
        return self.version.name


@dataclass(frozen=True)
class TagPackage(StepBase):
    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.TAG
    tags_set: tuple[tuple[str, str], ...]
    tags_removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeletePackage(StepBase):
    """DeleteDocument: the package and all its versions (after its unshare)."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.DELETE

    @property
    def declared(self) -> bool:
        return False


def plan_package(
    package: DesiredPackage, live: ObservedPackage | None, source: str = ""
) -> tuple[list[Action], list[Action]]:
    """(steps, deletions) that make one live package what the repository declares.

    Raises `ResourceError` for a problem confined to this package (a published version
    changed, too many versions)."""
    wanted_tags = dict(package.tags)
    if source:
        wanted_tags[SOURCE_TAG] = source  # tagged at birth; adopts an unclaimed package
    if live is None:
        return _create(package, tuple(sorted(wanted_tags.items()))), []
    steps, deletes = version.plan_versions(package, live)
    tag = _tag(package, live, wanted_tags)
    if tag is not None:
        steps.append(tag)
    unshare, share = sharing.plan_sharing(package, live)
    if unshare is not None:
        steps.insert(0, unshare)
    if share is not None:
        steps.append(share)
    return steps, deletes


def plan_removal(live: ObservedPackage) -> list[Action]:
    """A live package the repository no longer declares: unshare, then delete."""
    return [*sharing.unshare_all(live), Action(live.name, live.location, DeletePackage())]


def _create(package: DesiredPackage, tags: tuple[tuple[str, str], ...]) -> list[Action]:
    first, *rest = package.versions
    steps = [
        Action(
            package.name,
            package.location,
            CreatePackage(package, first, tags),
            (Change("version", "", first.name),),
        )
    ]
    steps += version.add_versions(package, rest)
    if package.default_version != first.name:
        steps.append(version.set_default(package, ""))
    return steps + sharing.share_new(package)


def _tag(
    package: DesiredPackage, live: ObservedPackage, wanted_tags: dict[str, str]
) -> Action | None:
    live_tags = dict(live.tags)
    tags_set = tuple(sorted((k, v) for k, v in wanted_tags.items() if live_tags.get(k) != v))
    tags_removed = tuple(
        sorted(
            k
            for k in live_tags
            if k not in wanted_tags and not k.startswith("aws:") and k not in OWNERSHIP_TAGS
        )
    )
    if not tags_set and not tags_removed:
        return None
    changes = tuple(Change(f"tags.{k}", live_tags.get(k, ""), v) for k, v in tags_set) + tuple(
        Change(f"tags.{k}", live_tags[k], "") for k in tags_removed
    )
    return Action(package.name, package.location, TagPackage(tags_set, tags_removed), changes)
