"""Build the real Dockerfile and run commands inside the image, without a Docker engine.

Used by tests/deploy/test_image.py (and usable by hand: `python -m tests.deploy.image`).
The recipe (docs/deploy.md, "Build the image without Docker"): debootstrap a Debian
bookworm root filesystem with python3, python3-venv and ca-certificates, `podman import`
it as the base, `podman build --isolation chroot --build-arg BASE=<that base>`, then enter
the image with `buildah from --pull-never` and either `buildah run --isolation chroot` or,
for a read-only root filesystem with tini as PID 1, `unshare` + `chroot` on `buildah mount`.

Two targets of the Dockerfile are built: `controller` (IMAGE, what is deployed: no AWS
emulator) and `demo` (DEMO_IMAGE: plus the `local` extra). The base is cached twice: as a
tarball under ~/.cache/ssm-gitops-test (survives a wiped image store) and as the image
itself in podman's store. Builds keep no intermediate images (`--layers=false`), and the
image a rebuild untags is removed, so repeated runs leave no untagged images behind (issue
10: two runs of the suite had left 2.4 GB of them).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/ssm-gitops-test-base:bookworm"
IMAGE = "localhost/ssm-gitops:test"
DEMO_IMAGE = "localhost/ssm-gitops-demo:test"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The host's trust bundle, mounted (never copied) into the build so pip reaches PyPI through
# this machine's TLS setup (shared/design/machine-notes.md).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TOOLS = ("podman", "buildah", "debootstrap", "unshare", "chroot")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "ssm-gitops-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def missing_prerequisite() -> str | None:
    """Why the image cannot be built here, or None. Root is needed for chroot builds."""
    if os.geteuid() != 0:
        return "building the image needs root (podman --isolation chroot, unshare, chroot)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}: run scripts/setup --test as root"
    return None


def _run(args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:3])} ... exited {result.returncode}\n"
            f"--- stdout (tail)\n{result.stdout[-4000:]}\n"
            f"--- stderr (tail)\n{result.stderr[-4000:]}"
        )
    return result


def ensure_base_image() -> None:
    """The local Debian bookworm base: from podman's store, else the cached tarball, else
    debootstrap (about a minute) into the cache."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return
    tarball = cache_dir() / "debian-bookworm-python3.tar"
    if not tarball.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as work:
            rootfs = Path(work) / "rootfs"
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv,ca-certificates",
                    "bookworm",
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                timeout=1200,
            )
            partial = tarball.with_suffix(".partial")
            _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
            partial.rename(tarball)
    _run(["podman", "import", str(tarball), BASE_IMAGE], timeout=600)


def image_id(name: str) -> str | None:
    """The id `name` points at, or None if there is no such image."""
    found = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or None if found.returncode == 0 else None


def build_image(target: str = "controller", tag: str = IMAGE) -> float:
    """Build the repository's Dockerfile's `target` as `tag` on the local base; returns
    seconds taken. No intermediate images are kept, and the image `tag` named before is
    removed once nothing names it (it would stay behind untagged)."""
    ensure_base_image()
    before = image_id(tag)
    started = time.monotonic()
    _run(
        [
            "podman",
            "build",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--layers=false",
            "-v",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "--build-arg",
            f"BASE={BASE_IMAGE}",
            "--target",
            target,
            "-t",
            tag,
            str(REPO_ROOT),
        ],
        timeout=2400,
    )
    taken = time.monotonic() - started
    if before is not None and before != image_id(tag):
        # untagged now; fails harmlessly if a container or another tag still uses it
        subprocess.run(["podman", "rmi", before], capture_output=True, check=False)
    # A target built FROM an earlier stage (`demo` is FROM `controller`) keeps that stage as
    # an untagged parent; once the old demo image is gone it is left over (446 MB per run).
    # Prune our own untagged images (by the Dockerfile's title label) that nothing uses.
    subprocess.run(
        ["podman", "image", "prune", "-f", "--filter", f"label={_TITLE_LABEL}"],
        capture_output=True,
        check=False,
    )
    return taken


_TITLE_LABEL = "org.opencontainers.image.title=ssm-gitops"


def image_size(name: str = IMAGE) -> int:
    """The image's size in bytes, as `podman images` reports it."""
    out = _run(["podman", "image", "inspect", "--format", "{{.Size}}", name], timeout=60)
    return int(out.stdout.strip())


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about how to run it (`podman image inspect` .Config)."""

    user: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    labels: dict[str, str]
    exposed_ports: tuple[str, ...]
    volumes: tuple[str, ...]


def inspect_image(name: str = IMAGE) -> ImageConfig:
    out = _run(["podman", "image", "inspect", name], timeout=60).stdout
    config = json.loads(out)[0]["Config"]
    return ImageConfig(
        user=config.get("User", ""),
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        env=tuple(config.get("Env") or ()),
        workdir=config.get("WorkingDir", ""),
        labels=dict(config.get("Labels") or {}),
        exposed_ports=tuple(config.get("ExposedPorts") or ()),
        volumes=tuple(config.get("Volumes") or ()),
    )


@contextmanager
def working_container(image: str = IMAGE) -> Iterator[str]:
    """A buildah working container of `image`, removed afterwards."""
    name = _run(["buildah", "from", "--pull-never", image], timeout=120).stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False, timeout=120)


def buildah_run(
    container: str, args: Sequence[str], *, user: str = "10001", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command in the container the way machine-notes.md shows (no check)."""
    return subprocess.run(
        ["buildah", "run", "--isolation", "chroot", "--user", user, container, "--", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Run inside a new mount and PID namespace: the image's root filesystem read-only, tmpfs on
# /tmp and the cache (the emptyDirs of deploy/base/deployment.yaml), read-only bind mounts
# (the Secret volumes), then chroot as the image's user. `exec` keeps the PID, so the
# image's ENTRYPOINT (tini) is PID 1.
_READ_ONLY_ROOT = r"""
set -e
root=$1; workdir=$2; shift 2
{mountpoints}
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o uid=10001,gid=10001,mode=0750 tmpfs "$root/var/cache/ssm-gitops"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
{binds}
exec chroot --userspec=10001:10001 "$root" /usr/bin/env -i --chdir="$workdir" "$@"
"""
# Mount points are made while the working container is still writable (it is thrown away
# afterwards); the binds come after the root's own bind, which does not carry submounts.
_MOUNTPOINT = 'mkdir -p "$root"{target}'
_BIND = 'mount --bind {source} "$root"{target}\nmount -o remount,bind,ro "$root"{target}'


@contextmanager
def read_only_root(
    args: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    binds: Mapping[str, str] | None = None,
    output: IO[str] | None = None,
    image: str = IMAGE,
) -> Iterator[subprocess.Popen[str]]:
    """Start the image's ENTRYPOINT + `args` (default: its CMD) as PID 1 of a new PID
    namespace, on a read-only root filesystem, as user 10001, with the image's environment
    plus `env`, and `binds` (host path -> path in the image) mounted read-only. Output goes
    to pipes, or to `output`. The process's pid is the host pid of the namespace's PID 1's
    parent (unshare); `pid1_of` gives PID 1 itself, ready for signals."""
    config = inspect_image(image)
    command = [*config.entrypoint, *(config.cmd if args is None else args)]
    environment = [*config.env, *(f"{k}={v}" for k, v in (env or {}).items())]
    pairs = [(shlex.quote(s), shlex.quote(t)) for s, t in (binds or {}).items()]
    script = _READ_ONLY_ROOT.replace(
        "{mountpoints}", "\n".join(_MOUNTPOINT.format(target=t) for _, t in pairs)
    ).replace("{binds}", "\n".join(_BIND.format(source=s, target=t) for s, t in pairs))
    stream: IO[str] | int = output if output is not None else subprocess.PIPE
    with working_container(image) as container:
        root = _run(["buildah", "mount", container], timeout=120).stdout.strip()
        try:
            launcher = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    root,
                    config.workdir or "/",
                    *environment,
                    *command,
                ],
                stdout=stream,
                stderr=subprocess.STDOUT if output is not None else subprocess.PIPE,
                text=True,
            )
            try:
                yield launcher
            finally:
                if launcher.poll() is None:
                    launcher.kill()
                launcher.communicate(timeout=60)
        finally:
            subprocess.run(["buildah", "umount", container], capture_output=True, check=False)


def pid1_of(launcher: subprocess.Popen[str], *, timeout: float = 10) -> int:
    """The host pid of the namespace's PID 1: the child `unshare --fork` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
        if children.exists():
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
        time.sleep(0.05)
    raise TimeoutError("unshare started no child")


if __name__ == "__main__":
    reason = missing_prerequisite()
    if reason:
        raise SystemExit(reason)
    print(f"built {IMAGE} in {build_image():.0f}s ({image_size(IMAGE) / 1e6:.0f} MB)")
    print(f"built {DEMO_IMAGE} in {build_image('demo', DEMO_IMAGE):.0f}s")
