"""The Distributor manifest of one package version, as the exact bytes sent to SSM.

Stage 2 helper. The manifest is the document `Content` of a Package document
(Distributor user guide, "Step 2: Create the JSON package manifest"): `schemaVersion`
"2.0", `version` equal to the VersionName, `packages` mapping platform -> platform
version -> architecture -> `{"file": <zip name>}`, and `files` mapping each zip name to
its sha256 checksum. Keys are sorted and the layout fixed, so equal versions give equal
bytes; compare with live content after `json.loads` if SSM returns it reformatted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from controller.repository.models import PackageVersion
from controller.repository.naming import file_source


def manifest_bytes(
    version: PackageVersion, zip_names: Mapping[Path, str], checksums: Mapping[str, str]
) -> bytes:
    """`zip_names` maps each file's source to its zip; `checksums` each zip to its sha256."""
    packages: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    for file in version.files:
        name = zip_names[file_source(file)]
        platform = packages.setdefault(file.platform, {})
        platform.setdefault(file.platform_version, {})[file.arch] = {"file": name}
    document = {
        "schemaVersion": "2.0",
        "version": version.name,
        "packages": packages,
        "files": {name: {"checksums": {"sha256": checksums[name]}} for name in checksums},
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True).encode("ascii")
