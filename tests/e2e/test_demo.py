"""`ssm-gitops demo` end to end, as a user runs it: a real process, its output, its URLs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.runtime.processes import ROOT, Process, http_get, wait_until

# The demo prefers the fixed ports 4566 and 8080: run its tests one after another.
pytestmark = pytest.mark.xdist_group("demo")


def run_demo_once(
    cwd: Path, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "demo", "--once"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache), **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


def _git(*argv: str) -> str:
    return subprocess.run(
        ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_demo_once_converges_the_sample_repo_and_summarises_it(tmp_path: Path) -> None:
    done = run_demo_once(ROOT, tmp_path)
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
    # The prod ring (the canary instance is its own ring, run at its cron).
    prod = [line for line in installed if "env=prod" in line and "ring=canary" not in line]
    assert len(prod) == 2 and all("datadog-agent 6.9.0, ops-toolkit 1.1.0" in p for p in prod)
    assert any("role=web" in line and "metrics-exporter 1.7.0" in line for line in installed)
    assert sum("ops-toolkit 1.1.0" in line for line in installed) == 7
    assert any(line.startswith("  i-") and "windows" in line for line in installed)
    assert "Rollouts (4):" in out
    assert "datadog-agent-prod: Success (Success 2)" in out  # the canary is its own ring
    assert "ops-toolkit-everywhere: Success (Success 7)" in out
    assert "metrics-exporter-web: Success (Success 1)" in out
    assert "datadog-agent-canary: Pending (no target has run yet)" in out


def test_demo_once_outside_a_git_checkout_commits_a_copy_not_the_users_folder(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "sample-repo", tmp_path / "sample-repo")
    done = run_demo_once(tmp_path, tmp_path / "cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Revision " in done.stdout and "sample-repo as shipped" in done.stdout
    assert not (tmp_path / "sample-repo" / ".git").exists()


def test_demo_works_on_a_scratch_copy_and_never_touches_the_checkout(tmp_path: Path) -> None:
    """Regression (issue 10): the demo followed the product's own checkout, and its README
    steps (`git commit -am ...` in sample-repo/) committed into the product's history and
    broke the test suite. Now it commits a copy under the cache folder and prints its path."""
    head = _git("rev-parse", "HEAD")
    changes = _git("status", "--porcelain", "--", "sample-repo")
    done = run_demo_once(ROOT, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    copy = tmp_path / "ssm-gitops" / "demo" / "sample-repo"
    assert f"committed in {copy}" in done.stdout, done.stdout
    assert _git("rev-parse", "HEAD") == head
    assert _git("status", "--porcelain", "--", "sample-repo") == changes
    log = subprocess.run(
        ["git", "-C", str(copy), "log", "--format=%s"], capture_output=True, text=True, check=True
    ).stdout
    assert log == "sample-repo as shipped\n"
    shipped = (ROOT / "sample-repo" / "packages" / "datadog-agent.yaml").read_text()
    assert (copy / "packages" / "datadog-agent.yaml").read_text() == shipped


def test_demo_once_without_bubblewrap_says_so_and_fails(tmp_path: Path) -> None:
    """Regression (issue 10): without bubblewrap every association ended Failed and no
    instance installed anything, while `demo --once` said `Pass success`, listed everything
    `in_sync` and exited 0."""
    no_tools = tmp_path / "bin"  # a PATH without bwrap (the demo needs no other program)
    no_tools.mkdir()
    done = run_demo_once(ROOT, tmp_path, {"PATH": str(no_tools)})
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ssm-gitops: ")]
    assert len(errors) == 1, done.stderr  # one line, not one from the demo and one from the fleet
    assert "bubblewrap (bwrap) is not installed" in errors[0], done.stderr
    assert "--fleet 0" in errors[0]
    assert "Traceback" not in done.stderr
    assert "Pass success" not in done.stdout and "in_sync" not in done.stdout, done.stdout


def _hold() -> socket.socket:
    """Listen on a free port (other engineers' demos may hold 4566/8080 at any moment)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_demo_with_its_ports_busy_prints_the_ports_it_took(tmp_path: Path) -> None:
    """Regression (issue 10): with 4566/8080 busy the demo silently took other ports while
    the README's commands still said 4566. Now it says so and prints the real commands."""
    held = [_hold(), _hold()]
    busy_aws, busy_status = (sock.getsockname()[1] for sock in held)
    process = Process(
        ["demo", "--port", str(busy_aws), "--status-port", str(busy_status)],
        tmp_path / "demo.log",
        {"XDG_CACHE_HOME": str(tmp_path)},
    )
    try:
        banner = wait_until(
            lambda: re.search(r"Local AWS\s+(http://127\.0\.0\.1:(\d+))", process.output()),
            90,
            "the banner",
        )
        endpoint, port = banner.group(1), banner.group(2)
        out = process.output()
        assert int(port) != busy_aws
        assert f"port {busy_aws} is busy: the local AWS listens on {endpoint}" in out, out
        assert f"port {busy_status} is busy: the status page listens on" in out, out
        assert f"export AWS_ENDPOINT_URL={endpoint} " in out
        assert f"AWS_ENDPOINT_URL={endpoint} " in out.split("Try next", 1)[1]
        # No command names the preferred port (a taken port may merely start with 4566).
        assert not re.search(r":4566(?!\d)", out.split("Local AWS", 1)[1])
        copy = tmp_path / "ssm-gitops" / "demo" / "sample-repo"
        assert f"  1. cd {copy}\n" in out
        drift = _printed_drift_command(out)
        assert "--document-version 1" in drift
        # Run exactly as printed, in a shell that knows nothing of AWS (no profile, no
        # region): the demo's newcomers copy it from the terminal (it once lacked the region
        # that AWS CLI v1 reads, AWS_DEFAULT_REGION, and failed).
        # The banner comes before the first pass is over: on a busy machine ops-toolkit's
        # version 1 may not exist yet, or still be Creating (the command then fails, as it
        # would for a newcomer that fast). Wait for the first pass's result line.
        wait_until(lambda: "pass success" in process.output(), 120, "the first pass")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
        ran = subprocess.run(
            ["bash", "-c", drift], env=clean, capture_output=True, text=True, timeout=120
        )
        assert ran.returncode == 0, ran.stderr
        # The demo runs with drift events (issue 14): the drift is healed in seconds, long
        # before the resync.
        ssm = boto3.client(
            "ssm",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        started = time.monotonic()
        wait_until(
            lambda: ssm.describe_document(Name="ops-toolkit")["Document"]["DefaultVersion"] != "1",
            10,
            "the drift healed by its event",
        )
        assert time.monotonic() - started < 5.0
        process.signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        process.stop()
        for sock in held:
            sock.close()


def _printed_drift_command(banner: str) -> str:
    """The drift command of the demo's banner, its continuation lines joined."""
    after = banner.split("Make drift by hand", 1)[1].split("\n", 1)[1]
    lines = []
    for line in after.splitlines():
        lines.append(line.strip().rstrip("\\").strip())
        if not line.rstrip().endswith("\\"):
            break
    return " ".join(lines)


def test_demo_prints_where_to_look_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = Process(["demo"], tmp_path / "demo.log", {"XDG_CACHE_HOME": str(tmp_path)})
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


def test_a_bubblewrap_that_cannot_start_a_sandbox_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bubblewrap installed but refused (no user namespaces, inside a container): the demo
    must say so, in one line with bubblewrap's own reason, not report a working fleet."""
    from controller.demo import sandbox_problem

    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    problem = sandbox_problem(tmp_path / "check")
    assert problem is not None and "\n" not in problem
    assert "No permissions to create new namespace" in problem
    assert "cannot run package scripts" in problem
    assert not (tmp_path / "check").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "bubblewrap (bwrap) is not installed" in (sandbox_problem(tmp_path / "c2") or "")
