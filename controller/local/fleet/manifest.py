"""Which file of a Distributor manifest an instance gets (pure).

Used by the agent (`agent.py`) after it has read the package document's content: it asks
`select_file(manifest, platform, version, arch)` for the zip's name and checksum. Follows
../shared/design/agent-semantics.md "Which manifest entry an instance gets", itself read from
the agent source agent/plugins/configurepackage/ (birdwatcher/archive/archive.go, the
`packages[platform][platformVersion][arch]` lookup; no backtracking to a parent `_any`).
Manifest format: https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-create.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANY = "_any"


class ManifestError(Exception):
    """The manifest cannot serve this instance; the message is the agent's text."""


@dataclass(frozen=True)
class ManifestFile:
    """The file an instance must download, with the sha256 the manifest promises."""

    name: str
    sha256: str


def parse_manifest(content: str | bytes) -> Mapping[str, Any]:
    """The manifest document's JSON; a broken one fails the action like the agent does."""
    try:
        value = json.loads(content)
    except ValueError as err:
        raise ManifestError(f"failed to parse package manifest: {err}") from err
    if not isinstance(value, dict):
        raise ManifestError("failed to parse package manifest: not a JSON object")
    return value


def select_file(
    manifest: Mapping[str, Any], platform: str, version: str, arch: str
) -> ManifestFile:
    """The file for (platform, version, arch), matched level by level, no backtracking."""
    not_found = ManifestError(
        f"no manifest found for platform: {platform}, version {version}, architecture {arch}"
    )
    packages = manifest.get("packages")
    if not isinstance(packages, dict):
        raise not_found
    # platform: the exact key, else _any.
    by_version = _first(packages, platform, ANY)
    if not isinstance(by_version, dict):
        raise not_found
    # version: exact, else the longest matching `N.*` wildcard, else _any, else `*`.
    wildcard = longest_wildcard(by_version.keys(), version)
    by_arch = _first(by_version, version, *([wildcard] if wildcard else []), ANY, "*")
    if not isinstance(by_arch, dict):
        raise not_found
    # arch: exact, else _any.
    entry = _first(by_arch, arch, ANY)
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise not_found
    name = entry["file"]
    # A matched file that is not listed in `files` fails too (agent-semantics.md).
    files = manifest.get("files")
    listed = files.get(name) if isinstance(files, dict) else None
    if not isinstance(listed, dict):
        raise ManifestError(f"manifest entry {name} for platform {platform} is not in files")
    checksums = listed.get("checksums")
    sha256 = checksums.get("sha256") if isinstance(checksums, dict) else None
    if not isinstance(sha256, str):
        raise ManifestError(f"manifest file {name} has no sha256 checksum")
    return ManifestFile(name, sha256)


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present (present counts, even if its value is empty:
    once a level matched, a miss below it is final)."""
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def longest_wildcard(keys: Any, version: str) -> str | None:
    """The `N.*` key matching `version` component by component with the longest prefix.

    `6.*` matches 6, 6.2 and 6.2.4; `2.*` does not match 2023 (components, not characters).
    """
    wanted = version.split(".")
    best: str | None = None
    best_length = -1
    for key in keys:
        if not isinstance(key, str) or not key.endswith(".*"):
            continue
        prefix = key[: -len(".*")].split(".")
        if wanted[: len(prefix)] == prefix and len(prefix) > best_length:
            best, best_length = key, len(prefix)
    return best
