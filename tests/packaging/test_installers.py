"""Simple mode: the generated install/uninstall scripts are real, parseable commands."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from controller.packaging import build_version
from controller.packaging.installers import generated_scripts
from controller.repository import load_repository
from tests.packaging.conftest import SAMPLE_REPO

DEB = SAMPLE_REPO / "packages/metrics-exporter/1.7.0/metrics-exporter_1.7.0_all.deb"


@pytest.mark.parametrize("installer", ["agent-1.2.3.x86_64.rpm", "agent_1.2.3_amd64.deb"])
def test_generated_shell_scripts_parse(installer: str, tmp_path: Path) -> None:
    for name, text in generated_scripts(Path(installer)).items():
        assert name in {"install.sh", "uninstall.sh"}
        script = tmp_path / name
        script.write_bytes(text)
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert text.startswith(b"#!/bin/sh\n")
        assert b"set -eu" in text


def test_rpm_scripts_install_or_upgrade_and_remove_by_package_name() -> None:
    scripts = generated_scripts(Path("agent-1.2.3.x86_64.rpm"))
    assert b'rpm -U --replacepkgs "./agent-1.2.3.x86_64.rpm"' in scripts["install.sh"]
    uninstall = scripts["uninstall.sh"]
    assert b"rpm -qp --queryformat '%{NAME}' \"./agent-1.2.3.x86_64.rpm\"" in uninstall
    assert b'rpm -e "$name"' in uninstall


def test_deb_scripts_install_and_remove_by_package_name() -> None:
    scripts = generated_scripts(Path("agent_1.2.3_amd64.deb"))
    assert b'dpkg -i "./agent_1.2.3_amd64.deb"' in scripts["install.sh"]
    assert b'dpkg --remove "$name"' in scripts["uninstall.sh"]


def test_the_deb_uninstall_reads_the_real_package_name() -> None:
    # The exact command the generated uninstall.sh runs, on the sample's real .deb.
    name = subprocess.run(
        ["dpkg-deb", "--field", str(DEB), "Package"], capture_output=True, text=True, check=True
    )
    assert name.stdout.strip() == "metrics-exporter"


def test_msi_scripts_run_msiexec_quietly_and_pass_the_exit_code() -> None:
    scripts = generated_scripts(Path("Agent.msi"))
    assert set(scripts) == {"install.ps1", "uninstall.ps1"}
    install = scripts["install.ps1"].decode()
    assert "$installer = Join-Path $PSScriptRoot 'Agent.msi'" in install
    assert "'/i', \"`\"$installer`\"\", '/quiet', '/norestart'" in install
    assert "exit $process.ExitCode" in install
    uninstall = scripts["uninstall.ps1"].decode()
    assert "'/x', \"`\"$installer`\"\", '/quiet', '/norestart'" in uninstall
    assert "if ($process.ExitCode -eq 1605) { exit 0 }" in uninstall


def test_exe_scripts_take_switches_from_additional_arguments() -> None:
    scripts = generated_scripts(Path("setup.exe"))
    assert "$env:SSM_INSTALLER_ARGS" in scripts["install.ps1"].decode()
    assert "$env:SSM_UNINSTALLER_ARGS" in scripts["uninstall.ps1"].decode()


def test_a_simple_mode_zip_holds_the_installer_and_executable_scripts(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    built = build_version(repo, "metrics-exporter", "1.7.0", tmp_path)
    (file,) = built.files  # ubuntu and debian share the one .deb: one zip
    with zipfile.ZipFile(file.path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert archive.read("metrics-exporter_1.7.0_all.deb") == DEB.read_bytes()
        assert archive.read("install.sh") == generated_scripts(DEB)["install.sh"]
    assert sorted(infos) == ["install.sh", "metrics-exporter_1.7.0_all.deb", "uninstall.sh"]
    assert infos["install.sh"].external_attr >> 16 == 0o100755
    assert infos["metrics-exporter_1.7.0_all.deb"].external_attr >> 16 == 0o100644
