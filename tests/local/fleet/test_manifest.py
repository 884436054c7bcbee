"""Manifest entry selection, as a table (agent-semantics.md "Which manifest entry an instance
gets"): exact / `N.*` longest prefix / `_any` / `*`, arch exact else `_any`, no backtracking."""

from __future__ import annotations

from typing import Any

import pytest

from controller.local.fleet.manifest import ManifestError, parse_manifest, select_file


def _entry(name: str) -> dict[str, str]:
    return {"file": name}


PACKAGES: dict[str, Any] = {
    "amazon": {
        "2023": {"x86_64": _entry("al2023.zip"), "arm64": _entry("al2023-arm.zip")},
        "2": {"_any": _entry("al2.zip")},
        "2.*": {"x86_64": _entry("al2-wild.zip")},
    },
    "ubuntu": {
        "22.*": {"x86_64": _entry("ubuntu22.zip")},
        "22.04.*": {"x86_64": _entry("ubuntu2204x.zip")},
        "_any": {"x86_64": _entry("ubuntu-any.zip")},
    },
    "redhat": {
        "9.*": {"x86_64": _entry("rhel9.zip")},
        "*": {"x86_64": _entry("rhel-star.zip")},
    },
    "centos": {"_any": {"x86_64": _entry("centos.zip")}, "*": {"x86_64": _entry("nope.zip")}},
    "windows": {"_any": {"_any": _entry("win.zip")}},
    "suse": {"15": {"arm64": _entry("suse-arm.zip")}},
    "oracle": {"8": {"x86_64": _entry("not-in-files.zip")}},
    "_any": {"_any": {"_any": _entry("fallback.zip")}},
}
FILES = {
    name: {"checksums": {"sha256": "AB" + name}}
    for name in (
        "al2023.zip",
        "al2023-arm.zip",
        "al2.zip",
        "al2-wild.zip",
        "ubuntu22.zip",
        "ubuntu2204x.zip",
        "ubuntu-any.zip",
        "rhel9.zip",
        "rhel-star.zip",
        "centos.zip",
        "nope.zip",
        "win.zip",
        "suse-arm.zip",
        "fallback.zip",
    )
}
MANIFEST = {"schemaVersion": "2.0", "version": "1.0", "packages": PACKAGES, "files": FILES}


@pytest.mark.parametrize(
    ("platform", "version", "arch", "expected"),
    [
        ("amazon", "2023", "x86_64", "al2023.zip"),  # exact on every level
        ("amazon", "2023", "arm64", "al2023-arm.zip"),
        ("amazon", "2", "arm64", "al2.zip"),  # exact version beats the 2.* wildcard; arch _any
        ("amazon", "2.0.5", "x86_64", "al2-wild.zip"),  # 2.* matches 2.0.5
        ("ubuntu", "22.10", "x86_64", "ubuntu22.zip"),  # 22.* matches 22.10
        ("ubuntu", "22.04", "x86_64", "ubuntu2204x.zip"),  # 22.04.* matches 22.04, longest wins
        ("ubuntu", "22.04.3", "x86_64", "ubuntu2204x.zip"),
        ("ubuntu", "22", "x86_64", "ubuntu22.zip"),  # 22.* matches 22 itself
        ("ubuntu", "20.04", "x86_64", "ubuntu-any.zip"),  # no wildcard -> _any
        ("redhat", "9.4", "x86_64", "rhel9.zip"),
        ("redhat", "8.9", "x86_64", "rhel-star.zip"),  # no 8.* and no _any -> *
        ("centos", "7", "x86_64", "centos.zip"),  # _any is tried before *
        ("windows", "10.0.20348", "x86_64", "win.zip"),
        ("windows", "10.0.20348", "386", "win.zip"),
        ("debian", "12", "arm64", "fallback.zip"),  # unknown platform -> top-level _any
    ],
)
def test_selects_the_file_the_agent_would(
    platform: str, version: str, arch: str, expected: str
) -> None:
    chosen = select_file(MANIFEST, platform, version, arch)
    assert chosen.name == expected
    assert chosen.sha256 == "AB" + expected


@pytest.mark.parametrize(
    ("platform", "version", "arch"),
    [
        ("amazon", "2022", "x86_64"),  # 2.* must not match 2022: components, not characters
        ("amazon", "2023", "386"),  # the version matched, its arch did not: no backtracking
        ("suse", "15", "x86_64"),  # platform key exists: no fallback to the top-level _any
        ("redhat", "9.4", "arm64"),  # 9.* matched; no arm64 and no _any below it
    ],
)
def test_no_match_is_the_agents_error(platform: str, version: str, arch: str) -> None:
    with pytest.raises(ManifestError) as caught:
        select_file(MANIFEST, platform, version, arch)
    assert str(caught.value) == (
        f"no manifest found for platform: {platform}, version {version}, architecture {arch}"
    )


def test_matched_file_missing_from_files_fails() -> None:
    with pytest.raises(ManifestError, match="not-in-files.zip"):
        select_file(MANIFEST, "oracle", "8", "x86_64")


def test_platform_key_with_nothing_under_it_does_not_fall_back() -> None:
    manifest = {"packages": {"amazon": {}, "_any": {"_any": {"_any": {"file": "x"}}}}}
    with pytest.raises(ManifestError, match="no manifest found for platform: amazon"):
        select_file(manifest, "amazon", "2023", "x86_64")


def test_broken_manifest_json_fails_cleanly() -> None:
    with pytest.raises(ManifestError, match="failed to parse package manifest"):
        parse_manifest("{not json")
