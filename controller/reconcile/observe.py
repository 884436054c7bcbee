"""Stage 3 of a pass: observe the live state we own, cheaply, with a cache across passes.

A pass that finds nothing to do should cost about ceil(P/50) + ceil(A/50) list pages plus
one sharing read per package (contract: Budgets). So the `Observer` lives as long as the
`Reconciler` and remembers, per resource, what the list pages said last time:

- packages: ListDocuments (Owner Self + owner tag, 50 a page) shows each document's
  `DocumentVersion`; only when it changed is the package re-described (DescribeDocument for
  the default/latest pointers, ListDocumentVersions when latest moved, and DescribeDocument
  per *new* version number for its content Hash — version content is immutable, so hashes
  are cached for good). Sharing has no version number: read every pass.
- associations: ListAssociations (50 a page) carries `AssociationVersion`, which changes on
  every update; DescribeAssociation is called only for a new (id, version). Ownership tags
  (owner and source, one ListTagsForResource) are read once per association id.

A location's packages or associations are read completely or marked unread (`Unread`):
plan never acts on a partial view. Resources with our owner name but another source's tag
are returned apart (`Observed.others`), without further reads.

Whatever apply changes is forgotten (`forget`), and `full_resync=True` re-reads everything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from controller.aws import associations as aws_associations
from controller.aws import packages as aws_packages
from controller.aws import sharing as aws_sharing
from controller.aws import tags as aws_tags
from controller.aws.errors import AwsError, NotFound
from controller.aws.session import AwsClients
from controller.model.kinds import Kind
from controller.model.ownership import Claim, claim
from controller.model.state import (
    SOURCE_TAG,
    AssociationSpec,
    Desired,
    DesiredPackage,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedVersion,
    OtherSource,
    Unread,
)


@dataclass(frozen=True)
class _PackageEntry:
    list_version: str
    default_number: str
    latest_number: str
    versions: tuple[ObservedVersion, ...]


@dataclass(frozen=True)
class ObserveResult:
    observed: Observed
    errors: tuple[tuple[Location, str], ...]  # locations we could not read: plan nothing there


class Observer:
    """Reads our live resources; one instance lives across passes (the cache)."""

    def __init__(self, owner: str, max_workers: int = 8, *, source: str = "") -> None:
        self.owner = owner
        self.source = source  # our `ssm-gitops:source` tag value (controller.model.ownership)
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._packages: dict[tuple[Location, str], _PackageEntry] = {}
        # Version content is immutable: its hash is cached for good, keyed by everything that
        # identifies one version even across a delete and re-create (number, name, date).
        self._hashes: dict[tuple[Location, str, str, str, str], str] = {}
        # association id -> (whose, its source tag): tags are read once per association id.
        self._owned: dict[tuple[Location, str], tuple[Claim, str]] = {}
        self._specs: dict[tuple[Location, str, str], AssociationSpec] = {}  # (loc, id, version)
        self._same_content: dict[tuple[Location, str, str, str, str], bool] = {}

    def forget(self, kind: Kind, location: Location, name: str) -> None:
        """Apply changed this resource: re-read it on the next observe."""
        # Associations need nothing: an update changes AssociationVersion, the cache key.
        if kind is Kind.PACKAGE:
            with self._lock:
                self._packages.pop((location, name), None)

    def forget_package_versions(self, location: Location, name: str) -> None:
        """A package was deleted: drop its cached version hashes too."""
        with self._lock:
            self._packages.pop((location, name), None)
            self._hashes = {
                k: v for k, v in self._hashes.items() if not (k[0] == location and k[1] == name)
            }

    def observe(
        self,
        package_clients: Sequence[AwsClients],
        association_clients: Sequence[AwsClients],
        *,
        full_resync: bool = False,
    ) -> ObserveResult:
        if full_resync:
            with self._lock:
                self._packages.clear()
                self._owned.clear()
                self._specs.clear()
        packages: list[ObservedPackage] = []
        associations: list[ObservedAssociation] = []
        unread: list[Unread] = []
        others: list[OtherSource] = []
        # A location's kind is read completely or not at all: one failed read (a list page, a
        # tag, a description) drops everything of that kind there and marks it unread, so a
        # half-read location is never mistaken for one where resources are missing.
        for clients in package_clients:
            try:
                found, theirs = self._observe_packages(clients)
                packages.extend(found)
                others.extend(theirs)
            except AwsError as error:
                location = Location(clients.account, clients.region)
                unread.append(Unread(location, Kind.PACKAGE, str(error)))
        for clients in association_clients:
            try:
                mine, theirs = self._observe_associations(clients)
                associations.extend(mine)
                others.extend(theirs)
            except AwsError as error:
                location = Location(clients.account, clients.region)
                unread.append(Unread(location, Kind.ASSOCIATION, str(error)))
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
        """Compare content, not just hashes, where a published version's Hash differs.

        DescribeDocument's Hash is the sha256 of the Content we sent; should AWS ever
        normalise the JSON it stores, that hash would differ for identical manifests. Before
        calling a version "changed" (an error for that package), its content is fetched
        once (GetDocument) and compared as parsed JSON; the answer is cached for good.
        """
        wanted = {(p.location, p.name): p for p in desired.packages}
        packages: list[ObservedPackage] = []
        unread: dict[Location, str] = {}
        for live in observed.packages:
            package = wanted.get((live.location, live.name))
            if package is None:
                packages.append(live)
                continue
            try:
                packages.append(self._confirm_package(clients_for, live, package))
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

    def _confirm_package(
        self,
        clients_for: Callable[[Location], AwsClients],
        live: ObservedPackage,
        package: DesiredPackage,
    ) -> ObservedPackage:
        versions = []
        for version in live.versions:
            repo = next((v for v in package.versions if v.name == version.name), None)
            if repo is not None and version.content_sha256 != repo.content_sha256:
                key = (
                    live.location,
                    live.name,
                    version.number,
                    version.content_sha256,
                    repo.content_sha256,
                )
                with self._lock:
                    same = self._same_content.get(key)
                if same is None:
                    text = aws_packages.version_content(
                        clients_for(live.location), live.name, version.number
                    )
                    same = _same_json(text, repo.content)
                    with self._lock:
                        self._same_content[key] = same
                if same:
                    version = replace(version, content_sha256=repo.content_sha256)
            versions.append(version)
        return replace(live, versions=tuple(versions))

    # -- packages -----------------------------------------------------------------------

    def _observe_packages(
        self, clients: AwsClients
    ) -> tuple[list[ObservedPackage], list[OtherSource]]:
        location = Location(clients.account, clients.region)
        summaries: list[aws_packages.PackageSummary] = []
        others: list[OtherSource] = []
        for summary in aws_packages.list_owned(clients, self.owner):
            # The source tag comes on the same ListDocuments page: another source's package
            # costs no further read, and is never described, changed or pruned.
            tags = dict(summary.tags)
            if claim(tags, self.owner, self.source) is Claim.OTHER_SOURCE:
                others.append(OtherSource(Kind.PACKAGE, summary.name, location, tags[SOURCE_TAG]))
            else:
                summaries.append(summary)

        def one(summary: aws_packages.PackageSummary) -> ObservedPackage | None:
            try:
                entry = self._package_entry(clients, location, summary)
                shared = aws_sharing.shared_with(clients, summary.name)
            except NotFound:
                return None  # deleted between the list and the read: gone
            return ObservedPackage(
                summary.name,
                location,
                entry.default_number,
                entry.versions,
                shared,
                summary.tags,
            )

        with ThreadPoolExecutor(self.max_workers) as pool:
            found = list(pool.map(one, summaries))
        return [package for package in found if package is not None], others

    def _package_entry(
        self, clients: AwsClients, location: Location, summary: aws_packages.PackageSummary
    ) -> _PackageEntry:
        key = (location, summary.name)
        with self._lock:
            cached = self._packages.get(key)
        if cached is not None and cached.list_version == summary.document_version:
            return cached
        pointers = aws_packages.describe(clients, summary.name)
        if cached is not None and cached.latest_number == pointers.latest_number:
            versions = cached.versions
        else:
            versions = tuple(
                ObservedVersion(
                    name,
                    number,
                    self._hash(clients, location, summary.name, number, name, created),
                    status,
                    information,
                )
                for number, name, status, information, created in aws_packages.list_versions(
                    clients, summary.name
                )
            )
        entry = _PackageEntry(
            summary.document_version, pointers.default_number, pointers.latest_number, versions
        )
        with self._lock:
            self._packages[key] = entry
        return entry

    def _hash(
        self,
        clients: AwsClients,
        location: Location,
        name: str,
        number: str,
        version: str,
        created: str,
    ) -> str:
        key = (location, name, number, version, created)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = aws_packages.version_hash(clients, name, number)
            with self._lock:
                self._hashes[key] = known
        return known

    # -- associations ------------------------------------------------------------------

    def _observe_associations(
        self, clients: AwsClients
    ) -> tuple[list[ObservedAssociation], list[OtherSource]]:
        location = Location(clients.account, clients.region)
        summaries = list(aws_associations.list_all(clients))
        listed = {summary.association_id for summary in summaries}
        with self._lock:  # a long-running controller forgets deleted associations
            self._owned = {
                k: v for k, v in self._owned.items() if k[0] != location or k[1] in listed
            }
            self._specs = {
                k: v for k, v in self._specs.items() if k[0] != location or k[1] in listed
            }

        def one(
            summary: aws_associations.AssociationSummary,
        ) -> ObservedAssociation | OtherSource | None:
            try:
                whose, source = self._claim(clients, location, summary.association_id)
                if whose is Claim.NOT_OURS:
                    return None
                if whose is Claim.OTHER_SOURCE:
                    return OtherSource(
                        Kind.ASSOCIATION, summary.name, location, source, summary.association_id
                    )
                spec = self._spec(clients, location, summary)
            except NotFound:
                return None
            return ObservedAssociation(
                summary.association_id,
                summary.name,
                location,
                summary.version,
                spec,
                summary.overview,
                source,
            )

        with ThreadPoolExecutor(self.max_workers) as pool:
            found = list(pool.map(one, summaries))
        return (
            [a for a in found if isinstance(a, ObservedAssociation)],
            [a for a in found if isinstance(a, OtherSource)],
        )

    def forget_owner(self, location: Location, association_id: str) -> None:
        """Read this association's owner tag again on the next pass."""
        with self._lock:
            self._owned.pop((location, association_id), None)
            self._specs = {
                k: v for k, v in self._specs.items() if (k[0], k[1]) != (location, association_id)
            }

    def _claim(
        self, clients: AwsClients, location: Location, association_id: str
    ) -> tuple[Claim, str]:
        """Whose this association is, and its source tag: one ListTagsForResource per id,
        which returns the owner and the source tag together."""
        key = (location, association_id)
        with self._lock:
            known = self._owned.get(key)
        if known is None:
            tags = aws_tags.tags_of(clients, "Association", association_id)
            known = (claim(tags, self.owner, self.source), tags.get(SOURCE_TAG, ""))
            with self._lock:
                self._owned[key] = known
        return known

    def _spec(
        self,
        clients: AwsClients,
        location: Location,
        summary: aws_associations.AssociationSummary,
    ) -> AssociationSpec:
        key = (location, summary.association_id, summary.version)
        with self._lock:
            known = self._specs.get(key)
        if known is None:
            description = aws_associations.describe(clients, summary.association_id)
            known = aws_associations.spec_from_description(description, location.region)
            with self._lock:
                # Older versions of this association will never be asked for again.
                self._specs = {
                    k: v
                    for k, v in self._specs.items()
                    if not (k[0] == location and k[1] == summary.association_id)
                }
                self._specs[key] = known
        return known


def _same_json(live: str, repo: str) -> bool:
    try:
        return bool(json.loads(live) == json.loads(repo))
    except ValueError:
        return live.strip() == repo.strip()
