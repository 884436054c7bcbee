"""Zip file names: one per distinct source of a version, unique across the repository.

Distributor attachments of all versions of a package live side by side (S3, and the
document's attachment list), so a name reused by another version would overwrite it
(contract: "name zips after package, version, platform and arch"). Platforms that share a
source folder (or installer) share one zip, named after the first file entry using it.
The validator checks the names for collisions and for SSM's AttachmentsSource Name
pattern, so the build never has to.
"""

from __future__ import annotations

from pathlib import Path

from controller.repository.models import PackageFile, PackageVersion


def _platform_version_part(platform_version: str) -> str:
    return platform_version.replace(".*", ".x").replace("*", "all")


def zip_name(package: str, version: str, file: PackageFile) -> str:
    """`<package>_<version>_<platform>[_<platformVersion>]_<arch>.zip` (`*` spelled out)."""
    parts = [package, version, file.platform]
    if file.platform_version != "_any":
        parts.append(_platform_version_part(file.platform_version))
    parts.append(file.arch.lstrip("_"))
    return "_".join(parts) + ".zip"


def file_source(file: PackageFile) -> Path:
    """What the zip of `file` is made from: its source folder or its installer."""
    source = file.source if file.source is not None else file.installer
    assert source is not None  # guaranteed by the loader: exactly one is set
    return source


def zips_of_version(package: str, version: PackageVersion) -> dict[Path, str]:
    """Each distinct source of the version -> its zip name, in the order of `files`."""
    names: dict[Path, str] = {}
    for file in version.files:
        source = file_source(file)
        if source not in names:
            names[source] = zip_name(package, version.name, file)
    return names
