"""The manifest: the Distributor schema 2.0 document sent as the package's Content."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from controller.packaging import build_version
from controller.repository import load_repository
from tests.packaging.conftest import SAMPLE_REPO


def test_the_datadog_manifest_maps_platforms_to_shared_zips(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    built = build_version(repo, "datadog-agent", "6.9.0", tmp_path)
    manifest = json.loads(built.manifest)
    linux = "datadog-agent_6.9.0_amazon_2_x86_64.zip"
    windows = "datadog-agent_6.9.0_windows_x86_64.zip"
    assert manifest == {
        "schemaVersion": "2.0",
        "version": "6.9.0",
        "packages": {
            "amazon": {"2": {"x86_64": {"file": linux}}, "2023": {"x86_64": {"file": linux}}},
            "windows": {"_any": {"x86_64": {"file": windows}}},
        },
        "files": {
            linux: {"checksums": {"sha256": built.files[0].sha256}},
            windows: {"checksums": {"sha256": built.files[1].sha256}},
        },
    }
    assert [file.name for file in built.files] == [linux, windows]
    assert (built.package, built.version) == ("datadog-agent", "6.9.0")


def test_the_manifest_bytes_are_canonical(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    built = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    reformatted = json.dumps(json.loads(built.manifest), indent=2, sort_keys=True).encode()
    assert built.manifest == reformatted


def test_install_scripts_are_at_the_zip_root(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    for package in repo.packages:
        for version in package.versions:
            for file in build_version(repo, package, version, tmp_path).files:
                with zipfile.ZipFile(file.path) as archive:
                    names = set(archive.namelist())
                assert {"install.sh", "uninstall.sh"} <= names or {
                    "install.ps1",
                    "uninstall.ps1",
                } <= names, file.name


def test_zip_names_are_unique_across_versions_and_packages(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    names = [
        file.name
        for package in repo.packages
        for version in package.versions
        for file in build_version(repo, package, version, tmp_path / "all").files
    ]
    assert len(names) == len(set(names)) == 8
