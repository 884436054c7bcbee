"""Stage 3 of a pass: observe the live state we own, cheaply, with a cache across passes.

A pass that finds nothing to do should cost about ceil(P/50) + ceil(A/50) list pages plus
one sharing read per package (contract: Budgets). So the `Observer` lives as long as the
`Reconciler` and remembers, per resource, what the list pages said last time. Each kind is
observed by the module of its name, beside its planning (`controller.reconcile.kinds`) and
its applying (`controller.reconcile.apply`):

    package.py      ListDocuments pages; ListDocumentVersions only when the row moved
    version.py      a hash per new version, for good (on disk too);
                    content compared as JSON where a hash differs (`confirm_content`)
    sharing.py      DescribeDocumentPermission, every pass (no version number to cache on)
    association.py  ListAssociations pages; tags once per id; DescribeAssociation per version

What never changes (a version's hash, one AssociationVersion's fields) and what only hints
(owner tags, a package's versions) also lives on disk in the cache directory
(`controller.reconcile.cache`), shared by `plan`, `apply` and `run`.

This module holds what they share: the `Observer` that owns their caches, and the
per-location completeness bookkeeping. A location's packages or associations are read
completely or marked unread (`Unread`): plan never acts on a partial view. Resources with our
owner name but another source's tag are returned apart (`Observed.others`), without further
reads. Whatever apply changes is forgotten (`forget`), and `full_resync=True` re-reads
everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.model.kinds import Kind
from controller.model.state import (
    AssociationFields,
    Desired,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    OtherSource,
    Unread,
)
from controller.reconcile.cache import LastingStore
from controller.reconcile.observe.association import AssociationObserver
from controller.reconcile.observe.package import PackageObserver
from controller.reconcile.observe.version import VersionCache

__all__ = ["ObserveResult", "Observer"]

_Found = TypeVar("_Found", ObservedPackage, ObservedAssociation)


@dataclass(frozen=True)
class ObserveResult:
    observed: Observed
    errors: tuple[tuple[Location, str], ...]  # locations we could not read: plan nothing there


class Observer:
    """Reads our live resources; one instance lives across passes (the caches)."""

    def __init__(
        self,
        owner: str,
        max_workers: int = 8,
        *,
        source: str = "",
        store: LastingStore | None = None,
        locations_in_parallel: int = 16,
    ) -> None:
        self.owner = owner
        self.locations_in_parallel = max(1, locations_in_parallel)
        self.source = source  # our `ssm-gitops:source` tag value (controller.model.ownership)
        self.max_workers = max_workers
        # What outlives the process (`controller.reconcile.cache`); memory only without one.
        self.store = store if store is not None else LastingStore()
        self.versions = VersionCache(self.store)
        self.packages = PackageObserver(owner, source, max_workers, self.versions, self.store)
        self.associations = AssociationObserver(owner, source, max_workers, self.store)

    def forget(self, kind: Kind, location: Location, name: str) -> None:
        """Apply changed this resource: re-read it on the next observe."""
        # Associations need nothing: an update changes AssociationVersion, the cache key.
        if kind is Kind.PACKAGE:
            self.packages.forget(location, name)

    def forget_package_versions(self, location: Location, name: str) -> None:
        """A package was deleted: drop its cached version hashes too."""
        self.packages.forget(location, name)
        self.versions.forget_package(location, name)

    def forget_owner(self, location: Location, association_id: str) -> None:
        """Read this association's owner tag again on the next pass."""
        self.associations.forget_owner(location, association_id)

    def record_written(
        self, location: Location, association_id: str, version: str, spec: AssociationFields
    ) -> None:
        """Apply's own Create/UpdateAssociation made `version` of this association `spec`."""
        self.associations.record_written(location, association_id, version, spec)

    def observe(
        self,
        package_clients: Sequence[AwsClients],
        association_clients: Sequence[AwsClients],
        *,
        full_resync: bool = False,
        desired: Desired | None = None,
        trust_fingerprints: bool = False,
    ) -> ObserveResult:
        """`desired`, when given, lets a fingerprint tag stand for a description
        (`.association`, `controller.model.fingerprint`), in a pass that only plans
        (`trust_fingerprints`: never one that acts, never a full resync)."""
        trust_fingerprints = trust_fingerprints and not full_resync
        specs = {(a.location, a.name): a.spec for a in desired.associations} if desired else {}
        wanted = {(p.location, p.name): p for p in desired.packages} if desired else {}
        if full_resync:
            self.packages.clear()
            self.associations.clear()
        unread: list[Unread] = []
        others: list[OtherSource] = []
        packages = _read_completely(
            Kind.PACKAGE,
            package_clients,
            lambda clients: self.packages.observe(
                clients,
                full_resync=full_resync,
                desired=wanted,
                trust_fingerprints=trust_fingerprints,
            ),
            unread,
            others,
            self.locations_in_parallel,
        )
        associations = _read_completely(
            Kind.ASSOCIATION,
            association_clients,
            lambda clients: self.associations.observe(
                clients, specs, trust_fingerprints=trust_fingerprints
            ),
            unread,
            others,
            self.locations_in_parallel,
        )
        self.store.save()  # one write per pass, merged with what other processes wrote
        return ObserveResult(
            Observed(tuple(packages), tuple(associations), tuple(unread), tuple(others)),
            tuple((u.location, u.reason) for u in unread),
        )

    def confirm_content(
        self,
        clients_for: Callable[[Location], AwsClients],
        observed: Observed,
        desired: Desired,
    ) -> Observed:
        """Compare content, not just hashes, where a published version's Hash differs
        (`VersionCache.confirm`). A location where a comparison cannot be read has its
        packages marked unread, like any other incomplete read."""
        wanted = {(p.location, p.name): p for p in desired.packages}
        packages: list[ObservedPackage] = []
        unread: dict[Location, str] = {}
        for live in observed.packages:
            package = wanted.get((live.location, live.name))
            if package is None:
                packages.append(live)
                continue
            try:
                packages.append(self.versions.confirm(clients_for, live, package))
            except AwsError as error:  # this location's packages are then not read completely
                unread.setdefault(live.location, str(error))
        if unread:
            packages = [p for p in packages if p.location not in unread]
        return replace(
            observed,
            packages=tuple(packages),
            unread=observed.unread
            + tuple(Unread(location, Kind.PACKAGE, reason) for location, reason in unread.items()),
        )


def _read_completely(
    kind: Kind,
    locations: Sequence[AwsClients],
    read: Callable[[AwsClients], tuple[list[_Found], list[OtherSource]]],
    unread: list[Unread],
    others: list[OtherSource],
    parallel: int = 1,
) -> list[_Found]:
    """`read` each location, `parallel` locations at a time; one that fails is marked unread
    and contributes nothing.

    A location's kind is read completely or not at all: one failed read (a list page, a tag,
    a description) drops everything of that kind there and marks it unread, so a half-read
    location is never mistaken for one where resources are missing. Locations are read
    concurrently (each bounded by its own calls in flight, `AwsClients.slot`), and the
    results are gathered in the given order, so a pass is as deterministic as before.
    """

    def one(clients: AwsClients) -> tuple[list[_Found], list[OtherSource]] | Unread:
        try:
            return read(clients)
        except AwsError as error:
            return Unread(Location(clients.account, clients.region), kind, str(error))

    if len(locations) <= 1 or parallel <= 1:
        outcomes = [one(clients) for clients in locations]
    else:
        with ThreadPoolExecutor(min(parallel, len(locations))) as pool:
            outcomes = list(pool.map(one, locations))
    found: list[_Found] = []
    for outcome in outcomes:
        if isinstance(outcome, Unread):
            unread.append(outcome)
            continue
        mine, theirs = outcome
        found.extend(mine)
        others.extend(theirs)
    return found
