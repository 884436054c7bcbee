"""A runaway install script is stopped by the sandbox's limits and reported as a failed
install; the host is fine (issue 10: "limit processes, memory, disk and time")."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from controller.local.fleet.agent import PackageRequest, PluginResult, PluginStatus
from controller.local.fleet.model import InstanceSpec
from controller.local.fleet.roots import prepare_root
from controller.local.fleet.sandbox import MiB, Sandbox, SandboxLimits
from controller.local.fleet.state import installed_packages

from .conftest import AgentFactory, MemorySource, lifecycle, needs_bwrap

pytestmark = needs_bwrap

INSTALL = PackageRequest("Install", "demo")
SMALL = SandboxLimits(
    timeout=20,
    max_processes=32,
    max_memory=256 * MiB,
    max_file_size=8 * MiB,
    max_disk=16 * MiB,
    max_files=2_000,
    tmp_size=8 * MiB,
)


def _install(
    make_agent: AgentFactory, source: MemorySource, install_sh: str, sandbox: Sandbox | None = None
) -> tuple[PluginResult, Path]:
    source.add("demo", "1.0", lifecycle("1.0", **{"install.sh": install_sh}))
    agent = make_agent(sandbox=sandbox or Sandbox(limits=SMALL))
    started = time.monotonic()
    result = agent.configure_package(INSTALL)
    assert time.monotonic() - started < 20, "a limit should have stopped it well before"
    assert result.status is PluginStatus.FAILED, result
    assert installed_packages(agent.instance.root) == {}
    return result, agent.instance.root


def _allocated(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def test_a_huge_file_writer_is_stopped_at_the_file_size_limit(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    """Bug: nothing limited what a script wrote into the instance's folders on the host."""
    result, root = _install(make_agent, source, "head -c 64M /dev/zero > /opt/big\n")
    assert "install was stopped: it wrote a file larger than 8 MiB" in result.stderr
    assert (root / "opt/big").stat().st_size <= 8 * MiB


def test_many_files_are_stopped_at_the_disk_quota(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    """Bug: no quota on the instance's /opt and /var (many files under the file size limit)."""
    result, root = _install(
        make_agent,
        source,
        "i=0; while [ $i -lt 40 ]; do head -c 4M /dev/zero > /opt/f$i; i=$((i+1)); "
        "sleep 0.1; done\n",
    )
    assert "install was stopped: it used more than 16 MiB of disk in /opt and /var" in result.stderr
    # killed at the first check past the quota: at most a few files more
    assert _allocated(root / "opt") < 40 * MiB


def test_too_many_files_are_stopped(make_agent: AgentFactory, source: MemorySource) -> None:
    """Bug: millions of empty files would exhaust the host's inodes."""
    result, _ = _install(
        make_agent,
        source,
        "mkdir /opt/many; i=0; while [ $i -lt 100000 ]; do : > /opt/many/$i; i=$((i+1)); done\n",
    )
    assert "install was stopped: it made more than 2000 files in /opt and /var" in result.stderr


def test_the_private_tmp_is_size_limited(make_agent: AgentFactory, source: MemorySource) -> None:
    """Bug: /tmp was a tmpfs without a size: a script could fill the host's memory."""
    result, _ = _install(
        make_agent,
        source,
        "set -e; for i in 1 2 3 4; do head -c 4M /dev/zero > /tmp/f$i; done\n",
    )
    assert "No space left on device" in result.stderr


def test_a_memory_hog_fails(make_agent: AgentFactory, source: MemorySource, tmp_path: Path) -> None:
    """Bug: no memory limit; a script could take all of the host's memory. The same script
    passes with room to spare, so it is the limit that stops it."""
    hog = "set -e; x=$(head -c 300M /dev/zero | tr '\\000' a); echo length ${#x}\n"
    result, _ = _install(make_agent, source, hog)
    assert "install failed with exit code" in result.stderr, result.stderr
    roomy = Sandbox(limits=SandboxLimits(timeout=20, max_memory=2048 * MiB))
    run = roomy.run(*_script_in_root(tmp_path, hog), {})
    assert run.exit_code == 0 and "length 314572800" in run.stdout, run


def _script_in_root(tmp_path: Path, text: str) -> tuple[Path, Path, str]:
    root = prepare_root(
        tmp_path / "control", "i-0control", InstanceSpec("amazon", "2023", "x86_64")
    )
    (root / "var/work").mkdir()
    (root / "var/work/run.sh").write_text(text)
    return root, Path("/var/work"), "run.sh"


def _processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def test_too_many_processes_are_refused_and_reported(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    """Bug: no limit on processes (RLIMIT_NPROC does not apply to root: a pids cgroup).
    200 sleepers, bounded, so that the code without the limit cannot hurt the host."""
    sandbox = Sandbox(limits=SMALL)
    if not sandbox.process_limit:
        pytest.skip("no pids cgroup can be made here and we run as root: nothing limits processes")
    result, _ = _install(
        make_agent,
        source,
        "i=0; while [ $i -lt 200 ]; do sleep 3 & i=$((i+1)); done; wait\n",
        sandbox,
    )
    assert "tried to run more than 32 processes at once" in result.stderr


def test_a_fork_bomb_is_stopped_and_the_host_is_fine(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    """Bug: a fork bomb ran unbounded until the script's timeout (an hour)."""
    sandbox = Sandbox(limits=SMALL)
    if not sandbox.process_limit:
        pytest.skip("no pids cgroup can be made here and we run as root: nothing limits processes")
    before = _processes()
    result, _ = _install(
        make_agent, source, "bomb() { bomb | bomb & }; bomb; sleep 2; exit 0\n", sandbox
    )
    assert "tried to run more than 32 processes at once" in result.stderr
    time.sleep(0.5)
    assert _processes() < before + 10  # everything it started is gone
