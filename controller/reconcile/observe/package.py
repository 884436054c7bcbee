"""Observe our packages: ListDocuments pages, then a description only for what changed.

Stage: observe; planned in `controller.reconcile.kinds.package`, applied in
`controller.reconcile.apply.package`. ListDocuments (Owner Self + owner tag, 50 a page)
shows each document's `DocumentVersion`; only when it changed is the package re-described
(DescribeDocument for the default/latest pointers, and its versions (`.version`) when latest
moved). Each package's sharing (`.sharing`) is read every pass. The source tag comes on the
same ListDocuments page: another source's package costs no further read, and is never
described, changed or pruned.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from controller.aws import packages as aws_packages
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.model.kinds import Kind
from controller.model.ownership import Claim, claim
from controller.model.state import (
    SOURCE_TAG,
    Location,
    ObservedPackage,
    ObservedVersion,
    OtherSource,
)
from controller.reconcile.observe.sharing import observe_sharing
from controller.reconcile.observe.version import VersionCache


@dataclass(frozen=True)
class _PackageEntry:
    """What the last description of one package said, and the list page's version then."""

    list_version: str
    default_number: str
    latest_number: str
    versions: tuple[ObservedVersion, ...]


class PackageObserver:
    """Reads the packages of one owner and source; caches each one's last description."""

    def __init__(self, owner: str, source: str, max_workers: int, versions: VersionCache) -> None:
        self.owner = owner
        self.source = source
        self.max_workers = max_workers
        self.versions = versions
        self._lock = threading.Lock()
        self._entries: dict[tuple[Location, str], _PackageEntry] = {}

    def clear(self) -> None:
        """Full resync: describe every package again (version hashes stay: immutable)."""
        with self._lock:
            self._entries.clear()

    def forget(self, location: Location, name: str) -> None:
        """Apply changed this package: describe it again on the next observe."""
        with self._lock:
            self._entries.pop((location, name), None)

    def observe(self, clients: AwsClients) -> tuple[list[ObservedPackage], list[OtherSource]]:
        """Our packages in one location, and those with another source's tag (apart)."""
        location = Location(clients.account, clients.region)
        summaries: list[aws_packages.PackageSummary] = []
        others: list[OtherSource] = []
        for summary in aws_packages.list_owned(clients, self.owner):
            tags = dict(summary.tags)
            if claim(tags, self.owner, self.source) is Claim.OTHER_SOURCE:
                others.append(OtherSource(Kind.PACKAGE, summary.name, location, tags[SOURCE_TAG]))
            else:
                summaries.append(summary)

        def one(summary: aws_packages.PackageSummary) -> ObservedPackage | None:
            try:
                entry = self._entry(clients, location, summary)
                shared = observe_sharing(clients, summary.name)
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

    def _entry(
        self, clients: AwsClients, location: Location, summary: aws_packages.PackageSummary
    ) -> _PackageEntry:
        key = (location, summary.name)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached.list_version == summary.document_version:
            return cached
        pointers = aws_packages.describe(clients, summary.name)
        if cached is not None and cached.latest_number == pointers.latest_number:
            versions = cached.versions
        else:
            versions = self.versions.versions(clients, location, summary.name)
        entry = _PackageEntry(
            summary.document_version, pointers.default_number, pointers.latest_number, versions
        )
        with self._lock:
            self._entries[key] = entry
        return entry
