"""What one instance has installed: the agent's per-package install state, persisted.

Read and written by the agent (`agent.py`) around every script it runs, and read by the
fleet summary. One JSON file per package inside the instance root, where the real agent
keeps its `installstate` file (agent source:
agent/plugins/configurepackage/localpackages/localpackages.go): name, version, state and
the last version that was installed successfully.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from controller.local.fleet.roots import PACKAGES_DIR, host_path


class InstallState(StrEnum):
    """The agent's install states (localpackages.InstallState)."""

    NONE = "None"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    UPGRADING = "Upgrading"  # an Uninstall-and-reinstall removing the old version
    UPDATING = "Updating"  # an In-place update
    UNINSTALLING = "Uninstalling"
    ROLLBACK_UNINSTALL = "RollbackUninstall"
    ROLLBACK_INSTALL = "RollbackInstall"
    FAILED = "Failed"


@dataclass(frozen=True)
class PackageState:
    """One package on one instance."""

    name: str
    version: str  # the version the state is about
    state: InstallState
    last_installed_version: str  # "" when nothing was ever installed successfully

    @property
    def installed_version(self) -> str:
        """The version the agent treats as installed: the last installed one, except in the
        Failed state, where it is the failed version (configurepackage.go getVersionToInstall)."""
        if self.state is InstallState.FAILED:
            return self.version
        return self.last_installed_version


def packages_dir(root: Path) -> Path:
    return host_path(root, PACKAGES_DIR)


def _state_file(root: Path, name: str) -> Path:
    return packages_dir(root) / name / "installstate.json"


def load_state(root: Path, name: str) -> PackageState | None:
    path = _state_file(root, name)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return PackageState(
        raw["name"], raw["version"], InstallState(raw["state"]), raw["last_installed_version"]
    )


def save_state(root: Path, state: PackageState) -> None:
    path = _state_file(root, state.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def set_state(root: Path, name: str, version: str, state: InstallState) -> None:
    """Record a transition; reaching Installed makes `version` the last installed one,
    and None (a finished uninstall) forgets it."""
    previous = load_state(root, name)
    last = previous.last_installed_version if previous else ""
    if state is InstallState.INSTALLED:
        last = version
    elif state is InstallState.NONE:
        last = ""
    save_state(root, PackageState(name, version, state, last))


def installed_packages(root: Path) -> dict[str, str]:
    """Package name -> installed version, for packages in the Installed state."""
    result: dict[str, str] = {}
    base = packages_dir(root)
    if not base.is_dir():
        return result
    for folder in sorted(base.iterdir()):
        state = load_state(root, folder.name)
        if state is not None and state.state is InstallState.INSTALLED:
            result[state.name] = state.version
    return result
