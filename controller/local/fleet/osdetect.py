"""What platform the agent detects on an instance (pure file reading).

Used by the agent before selecting a manifest entry and for the BWS_PLATFORM_* variables:
like the real Linux agent (agent source:
agent/plugins/configurepackage/envdetect/osdetect/linux/osdetect.go), it reads the
instance's /etc/os-release, ID and VERSION_ID, and maps the ID to the manifest's platform
name (agent-semantics.md: amzn->amazon, rhel->redhat, ol->oracle, sles->suse, openSUSE
Leap->opensuseleap). Windows instances have no os-release: they are "windows".
"""

from __future__ import annotations

import shlex
from pathlib import Path

_PLATFORM_OF_ID = {
    "amzn": "amazon",
    "rhel": "redhat",
    "ol": "oracle",
    "sles": "suse",
    "opensuse-leap": "opensuseleap",
}


def detect_platform(root: Path, *, windows_version: str | None = None) -> tuple[str, str]:
    """(platform name, platform version) as the agent would detect them in `root`."""
    if windows_version is not None:
        return "windows", windows_version
    values: dict[str, str] = {}
    path = root / "etc" / "os-release"
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, raw = line.partition("=")
        if sep and key.strip():
            parts = shlex.split(raw) or [""]
            values[key.strip()] = parts[0]
    os_id = values.get("ID", "").lower()
    return _PLATFORM_OF_ID.get(os_id, os_id), values.get("VERSION_ID", "")
