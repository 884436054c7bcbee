"""`ssm-gitops local --fleet N` / `--fleet-file F` as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from controller.errors import UserError
from controller.local.fleet.command import fleet_sandbox, start_fleet_for_command
from controller.local.fleet.model import default_fleet
from controller.local.fleet.sandbox import Sandbox, SandboxUnavailable

from .conftest import needs_bwrap, processes_running, publish_package, unique_sleep

SLEEP = unique_sleep()  # this module's own: see unique_sleep


def _start(tmp: Path, *flags: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", "local", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)},  # the fleet's work dir
    )
    assert process.stdout is not None
    lines: list[str] = []
    url = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if match := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
            url = match.group(1)
        if line.startswith("  i-") and sum(x.startswith("  i-") for x in lines) >= 3:
            break
    return process, url, lines


def test_local_with_a_fleet_registers_managed_instances(tmp_path: Path) -> None:
    process, url, lines = _start(tmp_path, "--fleet", "3")
    try:
        assert url, lines
        assert any(line.startswith("Simulated fleet: 3 instances") for line in lines), lines
        ssm = boto3.client("ssm", endpoint_url=url, region_name="us-east-1")
        info = ssm.describe_instance_information()["InstanceInformationList"]
        assert sorted(i["PlatformName"] for i in info) == [
            "Amazon Linux",
            "Amazon Linux",
            "Ubuntu",
        ]
        assert {i["PingStatus"] for i in info} == {"Online"}
        (work_dir,) = tmp_path.glob("ssm-gitops-fleet-*")
        assert len([p for p in work_dir.iterdir() if p.name.startswith("i-")]) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, rest
    assert list(tmp_path.glob("ssm-gitops-fleet-*")) == []  # the instance roots are removed


def test_a_bad_fleet_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("instances:\n  - {platform: plan9, version: '4'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "controller", "local", "--port", "0", "--fleet-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"ssm-gitops: {path}:2: platform 'plan9' is not one of amazon, ubuntu, redhat, debian, "
        "centos, oracle, suse, windows"
    ]


def test_fleet_flags() -> None:
    from controller.local.fleet.command import fleet_specs_from_flags

    assert fleet_specs_from_flags(0, None) == ()
    assert len(fleet_specs_from_flags(5, None)) == 5
    with pytest.raises(UserError, match="not both"):
        fleet_specs_from_flags(2, "fleet.yaml")
    with pytest.raises(UserError, match="0 or more"):
        fleet_specs_from_flags(-1, None)


def _start_fleet_of_one(tmp: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", "local", "--port", "0", "--fleet", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)},
    )
    assert process.stdout is not None
    lines: list[str] = []
    url = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(x.startswith("  i-") for x in lines):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if match := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
            url = match.group(1)
    return process, url, lines


@needs_bwrap
def test_sigterm_stops_local_promptly_while_a_script_runs(tmp_path: Path) -> None:
    """Bug: `local --fleet` ignored SIGTERM while a script ran: stopping waited for the
    fleet's worker, which waited for the script (up to its hour)."""
    process, url, lines = _start_fleet_of_one(tmp_path)
    try:
        assert url, lines
        clients = {"endpoint_url": url, "region_name": "us-east-1"}
        ssm, s3 = boto3.client("ssm", **clients), boto3.client("s3", **clients)
        s3.create_bucket(Bucket="sigterm")
        publish_package(
            ssm, s3, "sigterm", "sleepy", {"install.sh": f"touch /opt/up; sleep {SLEEP}"}
        )
        (instance,) = ssm.describe_instance_information()["InstanceInformationList"]
        ssm.send_command(
            DocumentName="AWS-ConfigureAWSPackage",
            InstanceIds=[instance["InstanceId"]],
            Parameters={"action": ["Install"], "name": ["sleepy"]},
        )
        (work_dir,) = tmp_path.glob("ssm-gitops-fleet-*")
        marker = work_dir / instance["InstanceId"] / "opt" / "up"
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "the install script never started"
            time.sleep(0.05)
    finally:
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            rest, _ = process.communicate(timeout=30)
        finally:
            process.kill()
    assert time.monotonic() - stopping < 3.0
    assert process.returncode == 0, rest
    assert "Local AWS endpoint stopped." in rest
    assert list(tmp_path.glob("ssm-gitops-fleet-*")) == []  # the instance roots are removed
    assert processes_running(b"sleep\x00" + SLEEP.encode() + b"\x00") == []


def test_without_bubblewrap_local_fleet_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    """Bug: without bwrap the fleet started anyway and every install ended Failed with
    'no packages' on each instance; now nothing starts and one line says what to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "controller", "local", "--port", "0", "--fleet", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(empty), "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert result.stdout == ""  # no endpoint was started
    assert result.stderr.strip().splitlines() == [
        "ssm-gitops: bubblewrap (bwrap) is not installed, and the simulated fleet runs package "
        "scripts only inside it: install it (apt-get install bubblewrap) and start again"
    ]
    assert list(tmp_path.glob("ssm-gitops-fleet-*")) == []


def test_start_fleet_for_command_refuses_without_a_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same signal for the demo and any other caller: SandboxUnavailable, a UserError,
    raised before anything is made."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match=r"apt-get install bubblewrap") as raised:
        start_fleet_for_command(object(), default_fleet(1), tmp_path / "fleet")
    assert isinstance(raised.value, UserError)
    assert not (tmp_path / "fleet").exists()
    assert fleet_sandbox(()) is None  # no fleet asked for: nothing to check
    with pytest.raises(SandboxUnavailable, match="not installed"):
        Sandbox(find_bwrap=False).check()


def test_a_bwrap_that_cannot_make_a_sandbox_is_named_in_one_line(tmp_path: Path) -> None:
    """bwrap present but unusable (user namespaces forbidden): the same refusal, with
    bubblewrap's own reason, not a fleet whose every install fails."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable) as raised:
        Sandbox(str(fake)).check()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        f"bubblewrap ({fake}) cannot start a sandbox here: "
        "bwrap: No permissions to create new namespace; "
    )
