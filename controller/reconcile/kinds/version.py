"""The versions of a package: publish new ones, move the default pointer, prune old ones.

Stage: plan (pure). `plan_versions` compares a package's desired versions with the live
ones and returns its steps; apply runs them in `controller.reconcile.apply.version`.
A published version is immutable, so a version whose content changed is refused here,
before anything is applied (contract: Ownership and safety).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from controller.model.kinds import Kind, Verb
from controller.model.state import DesiredPackage, DesiredVersion, ObservedPackage
from controller.reconcile.kinds.action import Action, Change, ResourceError, StepBase
from controller.repository import rules

# 25 versions per package (the AWS page is cited where the rule is defined).
MAX_VERSIONS = rules.MAX_VERSIONS


@dataclass(frozen=True)
class AddVersion(StepBase):
    """Upload a version's zips and publish it (UpdateDocument, a new VersionName)."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.ADD_VERSION
    package: DesiredPackage
    version: DesiredVersion

    @property
    def subject(self) -> str:
        return self.version.name


@dataclass(frozen=True)
class SetDefault(StepBase):
    """Point the package's default at a published version (UpdateDocumentDefaultVersion)."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.SET_DEFAULT
    version_name: str

    @property
    def subject(self) -> str:
        return self.version_name


@dataclass(frozen=True)
class DeleteVersion(StepBase):
    """Delete one version that the repository no longer lists (`pruneVersions: true`)."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.DELETE_VERSION
    version_name: str  # its VersionName, or its number when it has none

    @property
    def subject(self) -> str:
        return self.version_name


def add_versions(package: DesiredPackage, versions: Sequence[DesiredVersion]) -> list[Action]:
    return [
        Action(
            package.name,
            package.location,
            AddVersion(package, version),
            (Change("version", "", version.name),),
        )
        for version in versions
    ]


def set_default(package: DesiredPackage, live_default: str) -> Action:
    return Action(
        package.name,
        package.location,
        SetDefault(package.default_version),
        (Change("defaultVersion", live_default, package.default_version),),
    )


def plan_versions(
    package: DesiredPackage, live: ObservedPackage
) -> tuple[list[Action], list[Action]]:
    """(steps, deletions) for a package that exists: new versions, then the default pointer;
    stale versions are deleted only with `pruneVersions` (and the safety rules, in plan)."""
    new_versions = _unpublished(package, live)
    wanted_names = {version.name for version in package.versions}
    # The live default may go too: the pointer moves first (phase 1), and AWS refuses to
    # delete a document's default version should that step have failed (DeleteDocument).
    stale = [v for v in live.versions if v.name not in wanted_names]
    kept = len(live.versions) - (len(stale) if package.prune_versions else 0)
    if kept + len(new_versions) > MAX_VERSIONS:
        raise ResourceError(
            f"{kept + len(new_versions)} versions would exceed the {MAX_VERSIONS} a package "
            f"may hold: remove old versions and set pruneVersions: true in {package.source}"
        )
    steps = add_versions(package, new_versions)
    if live.default_version != package.default_version:
        steps.append(set_default(package, live.default_version or live.default_number))
    deletes = [
        Action(
            package.name,
            package.location,
            DeleteVersion(old.name or old.number),
            (Change("version", old.name, ""),),
        )
        for old in (stale if package.prune_versions else ())
    ]
    return steps, deletes


def _unpublished(package: DesiredPackage, live: ObservedPackage) -> list[DesiredVersion]:
    """The versions to publish. A published version is immutable: different content under
    the same VersionName is an error, never a silent republish (contract: Ownership and
    safety)."""
    new_versions: list[DesiredVersion] = []
    for version in package.versions:
        published = live.version(version.name)
        if published is None:
            new_versions.append(version)
        elif published.status == "Failed":
            # A version whose publication failed keeps its name: it cannot be republished.
            raise ResourceError(
                f"version {version.name} failed to publish: "
                f"{published.status_information or 'no reason given'}; fix it, then bump "
                f"the version name in {package.source} (or delete the failed version)"
            )
        elif published.content_sha256 != version.content_sha256:
            raise ResourceError(
                f"version {version.name} is already published with different content "
                f"(live sha256 {published.content_sha256[:12]}, repository "
                f"{version.content_sha256[:12]}): bump the version name in {package.source}"
            )
    return new_versions
