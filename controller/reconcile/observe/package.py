"""Observe our packages: ListDocuments pages, then the version list only for what changed.

Stage: observe; planned in `controller.reconcile.kinds.package`, applied in
`controller.reconcile.apply.package`. ListDocuments (Owner Self + owner tag, 50 a page)
shows each document's tags and a `DocumentVersion` with its `VersionName`
(API_DocumentIdentifier); only when those moved is the package read again, with ONE call:
ListDocumentVersions, whose rows carry `IsDefaultVersion` (API_DocumentVersionInfo), so the
default pointer needs no DescribeDocument; the latest version is the highest number. Each new
version's content hash is read once, ever (`.version`). Each package's sharing (`.sharing`)
is read every pass: no list shows it. The source tag comes on the same ListDocuments page:
another source's package costs no further read, and is never described, changed or pruned.

Cost per package: a quiet pass, sharing only; a full resync, sharing + ListDocumentVersions
(contract: Budgets, "pages plus two reads per package"). What a read found is also kept in
the lasting store (`controller.reconcile.cache`, section `packages`) with the time it was
read; a fresh process (`plan`) trusts such an entry while its ListDocuments row is unchanged
and it is younger than `TRUSTED_FOR_SECONDS` (the controller's default resync interval: a
running controller renews its entries that often), and reads the package again otherwise.

Fingerprints (`controller.model.fingerprint`): `plan` (a pass that only plans) with no entry
at all (an empty cache folder) also takes the versions from the document's
`ssm-gitops:versions` tag (on the ListDocuments page) when it proves them equal to the desired
ones: apply writes it after it changes a package's versions or default. Never a pass that
acts (apply, `run`'s passes, a heal, which forgets the package first) nor a full resync:
those list, so a version added or deleted by hand, which moves no ListDocuments row and
leaves the tag as it was, is seen there; and a forged tag can only fool a plan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controller.aws import packages as aws_packages
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.model.fingerprint import VERSIONS_TAG, versions_from_tag
from controller.model.kinds import Kind
from controller.model.ownership import Claim, claim
from controller.model.state import (
    SOURCE_TAG,
    DesiredPackage,
    Location,
    ObservedPackage,
    ObservedVersion,
    OtherSource,
)
from controller.reconcile.cache import LastingStore
from controller.reconcile.observe.sharing import observe_sharing
from controller.reconcile.observe.version import VersionCache

# How long a package entry read by another process is trusted without a ListDocumentVersions
# (while its ListDocuments row is unchanged): `run --resync-interval`'s default, 10 minutes.
TRUSTED_FOR_SECONDS = 600.0


@dataclass(frozen=True)
class _PackageEntry:
    """What the last description of one package said, and the list page's version then."""

    list_version: str
    default_number: str
    latest_number: str
    versions: tuple[ObservedVersion, ...]

    def to_json(self, read_at: float) -> dict[str, Any]:
        return {
            "list": self.list_version,
            "default": self.default_number,
            "latest": self.latest_number,
            "at": read_at,
            "versions": [
                [v.name, v.number, v.content_sha256, v.status, v.status_information]
                for v in self.versions
            ],
        }

    @classmethod
    def from_json(cls, value: object) -> tuple[_PackageEntry, float] | None:
        """The entry and when it was read; None for anything malformed (a cache miss)."""
        if not isinstance(value, dict):
            return None
        texts = [value.get(k) for k in ("list", "default", "latest")]
        at, rows = value.get("at"), value.get("versions")
        if not all(isinstance(t, str) for t in texts) or not isinstance(at, int | float):
            return None
        if not isinstance(rows, list) or len(rows) > 1000:
            return None
        versions = []
        for row in rows:
            if not (
                isinstance(row, list) and len(row) == 5 and all(isinstance(c, str) for c in row)
            ):
                return None
            versions.append(ObservedVersion(*row))
        return cls(str(texts[0]), str(texts[1]), str(texts[2]), tuple(versions)), float(at)


class PackageObserver:
    """Reads the packages of one owner and source; caches each one's last description."""

    def __init__(
        self,
        owner: str,
        source: str,
        max_workers: int,
        versions: VersionCache,
        store: LastingStore | None = None,
    ) -> None:
        self.owner = owner
        self.source = source
        self.max_workers = max_workers
        self.versions = versions
        self.store = store if store is not None else LastingStore()
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
        self.store.drop("packages", _stored_key(location, name))

    def observe(
        self,
        clients: AwsClients,
        *,
        full_resync: bool = False,
        desired: Mapping[tuple[Location, str], DesiredPackage] | None = None,
        trust_fingerprints: bool = False,
    ) -> tuple[list[ObservedPackage], list[OtherSource]]:
        """Our packages in one location, and those with another source's tag (apart).
        `desired` (by location and name) lets a fingerprint stand for the version list when
        `trust_fingerprints` (a pass that only plans)."""
        location = Location(clients.account, clients.region)
        wanted = desired or {}
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
                vouch = wanted.get((location, summary.name)) if trust_fingerprints else None
                entry = self._entry(clients, location, summary, full_resync, vouch)
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
        self,
        clients: AwsClients,
        location: Location,
        summary: aws_packages.PackageSummary,
        full_resync: bool,
        desired: DesiredPackage | None = None,
    ) -> _PackageEntry:
        key = (location, summary.name)
        shown = f"{summary.document_version}/{summary.version_name}"
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached.list_version == shown:
            return cached
        if cached is None and not full_resync:
            stored = _PackageEntry.from_json(
                self.store.get("packages", _stored_key(location, summary.name))
            )
            if (
                stored is not None
                and stored[0].list_version == shown
                and 0 <= time.time() - stored[1] <= TRUSTED_FOR_SECONDS
            ):
                with self._lock:
                    self._entries[key] = stored[0]
                return stored[0]
            fingerprinted = _fingerprinted(summary, shown, desired)
            if fingerprinted is not None:
                with self._lock:
                    self._entries[key] = fingerprinted
                return fingerprinted
        read_at = time.time()
        listed = aws_packages.list_version_infos(clients, summary.name)
        default = next((info.number for info in listed if info.is_default), "")
        latest = max((info.number for info in listed), key=_number, default="")
        versions = self.versions.with_hashes(clients, location, summary.name, listed)
        entry = _PackageEntry(shown, default, latest, versions)
        with self._lock:
            self._entries[key] = entry
        self.store.put("packages", _stored_key(location, summary.name), entry.to_json(read_at))
        return entry


def _fingerprinted(
    summary: aws_packages.PackageSummary, shown: str, desired: DesiredPackage | None
) -> _PackageEntry | None:
    """The entry the document's fingerprint tag proves (the desired versions, the row's
    version the default), or None: then the versions are listed."""
    if desired is None:
        return None
    proven = versions_from_tag(
        dict(summary.tags).get(VERSIONS_TAG),
        summary.document_version,
        summary.version_name,
        [(version.name, version.content_sha256) for version in desired.versions],
    )
    if proven is None:
        return None
    default, rows = proven
    versions = tuple(ObservedVersion(name, number, content) for name, number, content in rows)
    latest = max((v.number for v in versions), key=_number, default="")
    return _PackageEntry(shown, default, latest, versions)


def _stored_key(location: Location, name: str) -> str:
    return f"{location.account}/{location.region}/{name}"


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0
