"""Each instance's own root directory: the only place its agent and its scripts may write.

Second stage of the fleet, after `model`: `prepare_root` lays out
`<fleet work dir>/<instance id>/` with a writable `opt/` and `var/` (bound over `/opt` and
`/var` in the sandbox) and `etc/os-release` of the simulated platform (bound read-only over
the host's). Debian-family instances also get their own, empty dpkg database in
`var/lib/dpkg`, so a "Simple" package's generated `dpkg -i ./x.deb` installs into the
instance (a package's files must land in /opt or /var: the rest of the host is read-only).
The agent keeps its packages where the real Linux agent does,
`/var/lib/amazon/ssm/packages/<name>/<version>/` (agent source:
agent/plugins/configurepackage/localpackages/), so they land inside the instance's `var/`.
"""

from __future__ import annotations

from pathlib import Path

from controller.local.fleet.model import InstanceSpec

# Paths as seen from inside the instance.
PACKAGES_DIR = Path("/var/lib/amazon/ssm/packages")
DOWNLOAD_DIR = Path("/var/lib/amazon/ssm/download")


def prepare_root(work_dir: Path, instance_id: str, spec: InstanceSpec) -> Path:
    """Create (or reuse) the instance's root under the fleet work dir and return it."""
    root = work_dir / instance_id
    for sub in ("opt", "var/tmp", "etc", "var/lib/amazon/ssm/packages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if not spec.is_windows:
        (root / "etc" / "os-release").write_text(spec.os_release(), encoding="utf-8")
    if spec.platform in DPKG_PLATFORMS:
        _seed_dpkg(root / "var" / "lib" / "dpkg")
    return root


DPKG_PLATFORMS = frozenset({"ubuntu", "debian"})

# The instance's top-level directories belong to a stand-in base package: without an
# owner, `dpkg --remove` would try to delete /opt itself (a mount point in the sandbox).
_BASE_PACKAGE = """Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 1
Maintainer: ssm-gitops simulated fleet
Architecture: all
Version: 0-fleet
Description: top-level directories of the simulated instance

"""


def _seed_dpkg(admin_dir: Path) -> None:
    if (admin_dir / "status").exists():
        return
    for sub in ("info", "updates", "triggers"):
        (admin_dir / sub).mkdir(parents=True, exist_ok=True)
    (admin_dir / "available").touch()
    (admin_dir / "info" / "base-files.list").write_text("/.\n/opt\n/var\n", encoding="utf-8")
    (admin_dir / "status").write_text(_BASE_PACKAGE, encoding="utf-8")
    (admin_dir.parent.parent / "log").mkdir(parents=True, exist_ok=True)


def host_path(root: Path, inside: Path) -> Path:
    """The host path of a path inside the instance (e.g. /var/lib/... -> root/var/lib/...)."""
    return root / inside.relative_to("/")
