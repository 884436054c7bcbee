"""The sample packages' scripts really work: built, unpacked and run as the agent would.

Each scenario runs in a private mount namespace (`unshare -m`) with fresh tmpfs over /opt
and /var, so the scripts write where they would on an instance while this machine stays
untouched. Skipped where namespaces are not available (not root, no unshare).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from controller.packaging import build_version
from controller.repository import load_repository
from tests.packaging.conftest import SAMPLE_REPO


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /opt"], capture_output=True
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(), reason="needs unshare -m (root)")


def unpack(package: str, version: str, tmp_path: Path, platform: str = "amazon") -> Path:
    """Build the version and unzip the zip for `platform` like the agent: one folder."""
    repo = load_repository(SAMPLE_REPO)
    built = build_version(repo, package, version, tmp_path / "build")
    (chosen,) = [file for file in built.files if f"_{platform}" in file.name][:1]
    folder = tmp_path / "agent" / package / version
    with zipfile.ZipFile(chosen.path) as archive:
        archive.extractall(folder)
        for info in archive.infolist():  # extractall does not restore modes; the agent does
            (folder / info.filename).chmod(info.external_attr >> 16 & 0o777)
    return folder


def sandboxed(script: str, **env: str) -> str:
    """Run `script` with private tmpfs /opt and /var (dpkg's database copied in)."""
    prelude = (
        "mount -t tmpfs tmpfs /opt\n"
        "cp -a /var/lib/dpkg $DPKG_COPY\n"
        "mount -t tmpfs tmpfs /var\n"
        "mkdir -p /var/lib /var/log\n"
        "cp -a $DPKG_COPY /var/lib/dpkg\n"
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-euc", prelude + script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_ops_toolkit_installs_updates_in_place_and_uninstalls(tmp_path: Path) -> None:
    old = unpack("ops-toolkit", "1.0.0", tmp_path)
    new = unpack("ops-toolkit", "1.1.0", tmp_path)
    out = sandboxed(
        f"cd {old} && sh install.sh && sh validate.sh\n"
        "/opt/ops-toolkit/current/bin/ops-toolkit version\n"
        f"cd {new} && sh update.sh && sh validate.sh\n"
        "/opt/ops-toolkit/current/bin/ops-toolkit version\n"
        "ls /opt/ops-toolkit\n"
        "sh uninstall.sh\n"
        "test ! -e /opt/ops-toolkit && echo gone\n",
        DPKG_COPY=str(tmp_path / "dpkg"),
    )
    assert out.splitlines() == [
        "ops-toolkit 1.0.0 installed",
        "1.0.0",
        "ops-toolkit updated in place to 1.1.0",
        "1.1.0",
        "1.1.0",
        "current",
        "ops-toolkit removed",
        "gone",
    ]


def test_datadog_agent_reinstall_flow_on_amazon_linux(tmp_path: Path) -> None:
    old = unpack("datadog-agent", "6.9.0", tmp_path)
    new = unpack("datadog-agent", "6.10.0", tmp_path)
    out = sandboxed(
        f"cd {old} && sh install.sh\n"
        "/opt/datadog-agent/bin/datadog-agent status\n"
        "grep '^site:' /opt/datadog-agent/etc/datadog.yaml\n"
        # Uninstall and reinstall: the old version's uninstall, then the new install.
        f"cd {old} && sh uninstall.sh\n"
        f"cd {new} && sh install.sh\n"
        "/opt/datadog-agent/bin/datadog-agent status\n",
        DPKG_COPY=str(tmp_path / "dpkg"),
        SSM_DD_SITE="datadoghq.eu",
    )
    assert out.splitlines() == [
        "datadog-agent 6.9.0 installed in /opt/datadog-agent",
        "datadog-agent 6.9.0: running",
        "site: datadoghq.eu",
        "datadog-agent 6.9.0 removed",
        "datadog-agent 6.10.0 installed in /opt/datadog-agent",
        "datadog-agent 6.10.0: running",
    ]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_simple_mode_deb_scripts_install_and_remove_for_real(tmp_path: Path) -> None:
    folder = unpack("metrics-exporter", "1.7.0", tmp_path, platform="ubuntu")
    out = sandboxed(
        f"cd {folder} && sh install.sh >/dev/null\n"
        "dpkg-query --show --showformat '${Package} ${Version}\\n' metrics-exporter\n"
        "/opt/metrics-exporter/bin/metrics-exporter\n"
        "grep build_info /var/lib/metrics-exporter/metrics.prom\n"
        "sh uninstall.sh >/dev/null\n"
        "test ! -e /opt/metrics-exporter/bin/metrics-exporter && echo removed\n"
        "sh uninstall.sh\n",  # idempotent: the agent may uninstall what is gone
        DPKG_COPY=str(tmp_path / "dpkg"),
    )
    assert out.splitlines() == [
        "metrics-exporter 1.7.0",
        'metrics_exporter_build_info{version="1.7.0"} 1',
        "removed",
        "metrics-exporter is not installed",
    ]
