"""Which lifecycle scripts an unpacked package version has (pure file inspection).

Used by the agent right after unpacking a zip and before running anything. Rules from
../shared/design/agent-semantics.md "Download and checks" (agent source:
agent/plugins/configurepackage/ssminstaller/ssminstaller.go): scripts are `install`,
`uninstall`, `update`, `validate`, each `.sh` or `.ps1`, lowercase, at the zip's root; both
an `.sh` and a `.ps1` for one action is an error; a missing `install` means the package is
not supported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ACTIONS = ("install", "uninstall", "update", "validate")
EXTENSIONS = (".sh", ".ps1")

# The agent's text when a zip lacks install.sh/install.ps1 at its root, typically because a
# parent folder was zipped.
MISSING_INSTALL = "Package is not supported (package is missing install action)"


class PackageScriptError(Exception):
    """The unpacked package cannot be run; the message says why."""


@dataclass(frozen=True)
class PackageScripts:
    """The scripts of one package version: action -> file name in its folder."""

    folder: Path
    scripts: Mapping[str, str]

    def script(self, action: str) -> str | None:
        return self.scripts.get(action)


def discover(folder: Path) -> PackageScripts:
    """The scripts at the root of `folder`; names are matched exactly (lowercase only)."""
    present = {entry.name for entry in folder.iterdir() if entry.is_file()}
    scripts: dict[str, str] = {}
    for action in ACTIONS:
        found = [action + ext for ext in EXTENSIONS if action + ext in present]
        if len(found) > 1:
            raise PackageScriptError(
                f"package has both {found[0]} and {found[1]} for action {action}: keep one"
            )
        if found:
            scripts[action] = found[0]
    if "install" not in scripts:
        raise PackageScriptError(MISSING_INSTALL)
    return PackageScripts(folder, scripts)
