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
    import pytest

    from controller.errors import UserError
    from controller.local.fleet.command import fleet_specs_from_flags

    assert fleet_specs_from_flags(0, None) == ()
    assert len(fleet_specs_from_flags(5, None)) == 5
    with pytest.raises(UserError, match="not both"):
        fleet_specs_from_flags(2, "fleet.yaml")
    with pytest.raises(UserError, match="0 or more"):
        fleet_specs_from_flags(-1, None)
