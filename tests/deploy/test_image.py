"""The container image: the real Dockerfile, built on a locally made Debian base, run as
its non-root user, on a read-only root filesystem, with tini as PID 1 (issue 6).

Slow (a cold run debootstraps the base and installs every locked dependency: about four
minutes on 2 cores; a warm rerun takes seconds). Needs root and podman, buildah and
debootstrap, which `scripts/setup --test` installs; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from controller import __version__
from tests.deploy import image

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("container-image"),
    pytest.mark.timeout(2700),
]


@pytest.fixture(scope="module")
def built() -> Iterator[float]:
    reason = image.missing_prerequisite()
    if reason:
        pytest.skip(reason)
    yield image.build_image()


def test_version_runs_as_user_10001(built: float) -> None:
    with image.working_container() as container:
        who = image.buildah_run(container, ["id", "-u"])
        version = image.buildah_run(container, ["ssm-gitops", "--version"])
    assert who.stdout.strip() == "10001", who.stderr
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"ssm-gitops {__version__}"


def test_image_runs_the_controller_as_non_root_through_tini(built: float) -> None:
    config = image.inspect_image()
    assert config.user == "10001:10001"
    assert config.entrypoint == ("/usr/bin/tini", "--", "ssm-gitops")
    assert config.cmd == ("run",)
    assert "8080/tcp" in config.exposed_ports
    assert "/var/cache/ssm-gitops" in config.volumes
    assert "SSM_GITOPS_CACHE_DIR=/var/cache/ssm-gitops" in config.env
    assert "HOME=/tmp" in config.env
    for label in ("title", "description", "version", "revision", "licenses"):
        assert config.labels.get(f"org.opencontainers.image.{label}"), label
    assert config.labels["org.opencontainers.image.version"] == __version__


def test_user_10001_can_write_only_to_the_cache_and_tmp(built: float) -> None:
    """What readOnlyRootFilesystem needs: nothing of the image belongs to the user, and the
    only places it may write are the mounts (/tmp, the cache) and the base's sticky
    world-writable directories, which a read-only root makes read-only too."""
    with image.working_container() as container:
        writable = image.buildah_run(
            container,
            ["find", "/", "-xdev", "(", "-writable", "-o", "-user", "10001", ")", "-print"],
        )
    paths = {p for p in writable.stdout.split() if not p.startswith(("/proc", "/dev"))}
    allowed = {"/tmp", "/var/tmp", "/var/lock", "/run/lock", "/var/cache/ssm-gitops"}
    assert paths <= allowed, sorted(paths - allowed)


def test_entrypoint_works_on_a_read_only_root_as_pid_1(built: float) -> None:
    with image.read_only_root(["--version"]) as process:
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert stdout.strip() == f"ssm-gitops {__version__}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_to_pid_1_stops_the_process_at_once(built: float) -> None:
    """PID 1 gets no default signal actions: without tini a Python PID 1 would ignore the
    SIGTERM that `docker stop` and pod deletion send, and be killed after the grace period."""
    if not (image.REPO_ROOT / "controller" / "local" / "commands.py").exists():
        pytest.skip("`ssm-gitops local` (branch local) is not merged here yet")
    port = _free_port()
    with image.read_only_root(["local", "--port", str(port)]) as process:
        pid1 = image.pid1_of(process)
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1][-3000:]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "ssm-gitops local never listened"
                time.sleep(0.2)
        sent = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("PID 1 ignored SIGTERM for 20 seconds")
        stopped_after = time.monotonic() - sent
    assert stopped_after < 20


def test_demo_once_on_a_read_only_root(built: float) -> None:
    """The issue's acceptance check: `ssm-gitops demo --once` inside the image, as user
    10001, with only /tmp and the cache writable."""
    if not (image.REPO_ROOT / "controller" / "demo.py").exists():
        pytest.skip("`ssm-gitops demo` (branch runtime) is not merged here yet")
    with image.read_only_root(["demo", "--once"]) as process:
        stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, f"stdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-3000:]}"
