"""`ssm-gitops demo` end to end, as a user runs it: a real process, its output, its URLs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.processes import ROOT, Process, http_get, wait_until

# The demo prefers the fixed ports 4566 and 8080: run its tests one after another.
pytestmark = pytest.mark.xdist_group("demo")


def run_demo_once(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "demo", "--once"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_demo_once_converges_the_sample_repo_and_summarises_it() -> None:
    done = run_demo_once(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Pass success" in out
    assert re.search(
        r"Packages \(3\): datadog-agent \(in_sync\), metrics-exporter \(in_sync\), "
        r"ops-toolkit \(in_sync\)",
        out,
    ), out
    assert "Associations (4):" in out and "(drifted)" not in out and "(failed)" not in out
    assert re.search(r"Applied \d+ actions:", out)
    assert "+ create package datadog-agent" in out
    # The demo's fleet really installed the packages, and the controller read the rollouts.
    assert "Fleet (8 instances):" in out
    fleet = [line for line in out.splitlines() if re.match(r"  i-\w+ \w+ ", line)]
    assert len(fleet) == 16, out  # listed when it starts, then with what it has installed
    installed = fleet[8:]
    prod = [line for line in installed if "env=prod" in line]
    assert len(prod) == 3 and all("datadog-agent 6.9.0, ops-toolkit 1.1.0" in p for p in prod)
    assert any("role=web" in line and "metrics-exporter 1.7.0" in line for line in installed)
    assert sum("ops-toolkit 1.1.0" in line for line in installed) == 7
    assert any(line.startswith("  i-") and "windows" in line for line in installed)
    assert "Rollouts (4):" in out
    assert "datadog-agent-prod: Success (Success 3)" in out
    assert "ops-toolkit-everywhere: Success (Success 7)" in out
    assert "metrics-exporter-web: Success (Success 1)" in out
    assert "datadog-agent-canary: Pending (no target has run yet)" in out


def test_demo_once_outside_a_git_checkout_commits_a_copy_not_the_users_folder(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "sample-repo", tmp_path / "sample-repo")
    done = run_demo_once(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Revision " in done.stdout and "sample-repo as shipped" in done.stdout
    assert not (tmp_path / "sample-repo" / ".git").exists()


def test_demo_prints_where_to_look_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = Process(["demo"], tmp_path / "demo.log")
    try:
        banner = wait_until(
            lambda: re.search(r"Status page\s+(http://\S+)/", process.output()), 60, "the banner"
        )
        url = banner.group(1)
        out = process.output()
        assert "Metrics" in out and f"{url}/metrics" in out
        assert "Try next" in out and "commit" in out
        assert "Fleet         8 simulated instances" in out
        wait_until(lambda: http_get(url + "/readyz")[0] == 200, 60, "the first pass")
        code, page = http_get(url + "/")
        assert code == 200 and "ops-toolkit" in page and "in sync" in page
        # the fleet installs; the controller follows the rollouts (no resync needed)
        wait_until(lambda: "Fleet (8 instances):" in process.output(), 60, "the fleet's installs")
        wait_until(
            lambda: "ops-toolkit-everywhere: Success (Success 7)" in process.output(),
            30,
            "the rollouts, as the controller read them",
        )
        wait_until(
            lambda: (
                'association="ops-toolkit-everywhere",status="Success"} 7.0'
                in http_get(url + "/metrics")[1]
            ),
            30,
            "association_targets",
        )
        process.signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        process.stop()
