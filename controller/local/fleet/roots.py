"""Each instance's own root directory: the only place its agent and its scripts may write.

Second stage of the fleet, after `model`: `prepare_root` lays out
`<fleet work dir>/<instance id>/` with a writable `opt/` and `var/` (bound over `/opt` and
`/var` in the sandbox) and `etc/os-release` of the simulated platform (bound read-only over
the host's). The agent keeps its packages where the real Linux agent does,
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
    return root


def host_path(root: Path, inside: Path) -> Path:
    """The host path of a path inside the instance (e.g. /var/lib/... -> root/var/lib/...)."""
    return root / inside.relative_to("/")
