"""Observe a package's versions: the live list, each version's content hash, content checks.

Stage: observe; planned in `controller.reconcile.kinds.version`, applied in
`controller.reconcile.apply.version`. The package observer (`.package`) asks for the version
list only when the document's latest version moved (ListDocumentVersions); each version's
content Hash comes from DescribeDocument once per *new* version: version content is
immutable, so hashes are cached for good, keyed by everything that identifies one version
even across a delete and re-create (number, name, creation date), in memory and in the
lasting store on disk (`controller.reconcile.cache`, section `hashes`): a fresh process
(`plan` on a CI runner that keeps its cache directory, a restarted controller) reads no
version's hash twice.

`VersionCache.confirm` compares content, not just hashes, where a published version's Hash
differs from the repository's: DescribeDocument's Hash is the sha256 of the Content we sent;
should AWS ever normalise the JSON it stores, that hash would differ for identical manifests.
Before a version is called "changed" (an error for that package), its content is fetched
once (GetDocument) and compared as parsed JSON; the answer is cached for good.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from controller.aws import packages as aws_packages
from controller.aws.session import AwsClients
from controller.model.state import DesiredPackage, Location, ObservedPackage, ObservedVersion
from controller.reconcile.cache import LastingStore

# (location, package, number, version name, created): one version, even across a re-create.
_VersionKey = tuple[Location, str, str, str, str]
# (location, package, number, live hash, repository hash): one content comparison.
_ContentKey = tuple[Location, str, str, str, str]


class VersionCache:
    """What never changes about a published version: its hash, and content comparisons."""

    def __init__(self, store: LastingStore | None = None) -> None:
        self._lock = threading.Lock()
        self._hashes: dict[_VersionKey, str] = {}
        self._same_content: dict[_ContentKey, bool] = {}
        self.store = store if store is not None else LastingStore()

    def versions(
        self, clients: AwsClients, location: Location, name: str
    ) -> tuple[ObservedVersion, ...]:
        """Every live version of package `name` (ListDocumentVersions), with its hash."""
        return self.with_hashes(
            clients, location, name, aws_packages.list_version_infos(clients, name)
        )

    def with_hashes(
        self,
        clients: AwsClients,
        location: Location,
        name: str,
        listed: Sequence[aws_packages.VersionInfo],
    ) -> tuple[ObservedVersion, ...]:
        """The listed versions, each with its content hash (read once per version, ever)."""
        return tuple(
            ObservedVersion(
                info.name,
                info.number,
                self._hash(clients, location, name, info.number, info.name, info.created),
                info.status,
                info.information,
            )
            for info in listed
        )

    def forget_package(self, location: Location, name: str) -> None:
        """The package was deleted: its version hashes go with it."""
        with self._lock:
            self._hashes = {
                k: v for k, v in self._hashes.items() if not (k[0] == location and k[1] == name)
            }
        prefix = json.dumps([location.account, location.region, name])[:-1] + ","
        for key in self.store.keys("hashes"):
            if key.startswith(prefix):
                self.store.drop("hashes", key)

    def confirm(
        self,
        clients_for: Callable[[Location], AwsClients],
        live: ObservedPackage,
        package: DesiredPackage,
    ) -> ObservedPackage:
        """`live` with the hash of each version whose content equals the repository's
        (parsed as JSON) replaced by the repository's hash."""
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
                if self._same(clients_for, key, live.name, repo.content):
                    version = replace(version, content_sha256=repo.content_sha256)
            versions.append(version)
        return replace(live, versions=tuple(versions))

    def _same(
        self,
        clients_for: Callable[[Location], AwsClients],
        key: _ContentKey,
        name: str,
        content: str,
    ) -> bool:
        with self._lock:
            same = self._same_content.get(key)
        if same is None:  # GetDocument only for a comparison never made before
            text = aws_packages.version_content(clients_for(key[0]), name, key[2])
            same = same_json(text, content)
            with self._lock:
                self._same_content[key] = same
        return same

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
            stored_key = json.dumps(
                [location.account, location.region, name, number, version, created]
            )
            stored = self.store.get("hashes", stored_key)
            if isinstance(stored, str) and stored:
                known = stored
            else:
                known = aws_packages.version_hash(clients, name, number)
                if known and created:  # no creation date: nothing tells a re-created version
                    self.store.put("hashes", stored_key, known)
            with self._lock:
                self._hashes[key] = known
        return known


def same_json(live: str, repo: str) -> bool:
    """The same manifest, whatever its formatting (text compared when it is not JSON)."""
    try:
        return bool(json.loads(live) == json.loads(repo))
    except ValueError:
        return live.strip() == repo.strip()
