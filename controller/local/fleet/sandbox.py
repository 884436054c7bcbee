"""Running one package script inside an instance, never on the host.

Called by the agent (`agent.py`) for each lifecycle script. Linux scripts run as
`sh <action>.sh` in the package version's folder (agent-semantics.md "Running"; agent source
agent/plugins/configurepackage/ssminstaller/) under bubblewrap:

- the host root read-only (`--ro-bind / /`), the instance's own `opt/` and `var/` writable
  over `/opt` and `/var`, its `etc/os-release` read-only over the host's, a private,
  size-limited `/tmp`;
- no privilege: its own user namespace (`--unshare-user`, no further ones:
  `--disable-userns`), every capability dropped (`--cap-drop ALL`: even when the fleet runs
  as root, `mount`, `umount` and remounts fail) and no-new-privs (bubblewrap sets
  PR_SET_NO_NEW_PRIVS itself), so nothing the script runs can regain what was dropped;
- `--unshare-all` (no network, own pid/ipc/uts/cgroup namespaces), `--new-session` (no
  TIOCSTI into a terminal), `--die-with-parent`;
- `--clearenv`, then only PATH, the `BWS_*` variables and the `SSM_*` additional arguments
  the agent passes: never AWS credentials;
- limits (`SandboxLimits`): wall-clock time (the agent's default is 3600 s), CPU time,
  address space per process, file size, open files, the number of processes (a pids cgroup
  when one can be made, else RLIMIT_NPROC - which the kernel does not apply to root), and the
  disk the instance's `opt/` + `var/` may use (polled while the script runs). A script that
  hits one is killed with its whole process group and pid namespace, and reported failed.

Without bubblewrap, or for PowerShell scripts (nothing here can run them), nothing runs and
the result says why; `Sandbox.check()` raises `SandboxUnavailable` (one line naming what to
install) for callers that must refuse to start instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import itertools
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from controller.errors import UserError

# The agent's default execution timeout for package scripts (agent-semantics.md "Running").
DEFAULT_TIMEOUT_SECONDS = 3600.0
# GetCommandInvocation returns at most 24,000 characters of output
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html);
# keeping more than that per script would only cost memory.
DEFAULT_OUTPUT_CAP = 24_000
SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INSTALL_HINT = "apt-get install bubblewrap"
# How often a running script's disk use and the stop flag are checked.
_POLL_SECONDS = 0.2
_DISK_POLL_SECONDS = 0.5
MiB = 1 << 20


class SandboxUnavailable(UserError):
    """Package scripts cannot run sandboxed here (no bubblewrap, or it cannot start)."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one script may use. The defaults leave room for a real package (an agent,
    a .deb) and keep a runaway script from hurting the host or the other instances."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS  # wall clock, then the whole group is killed
    max_processes: int = 256  # alive at once, the script included
    max_memory: int = 2048 * MiB  # address space of each process (RLIMIT_AS)
    max_file_size: int = 1024 * MiB  # any one file written (RLIMIT_FSIZE)
    max_disk: int = 4096 * MiB  # the instance's opt/ + var/ together
    max_files: int = 200_000  # entries in the instance's opt/ + var/
    tmp_size: int = 256 * MiB  # the private /tmp (a tmpfs, held in memory)
    max_open_files: int = 1024  # per process (RLIMIT_NOFILE)


@dataclass(frozen=True)
class ScriptRun:
    """What one script did. `ran` is False when it could not be run here (see `reason`).
    `limit` names the limit that stopped it (time included: then `timed_out` is True)."""

    ran: bool
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    reason: str = ""
    limit: str = ""


class Sandbox:
    """Runs scripts under bubblewrap for any instance root. Thread-safe: scripts of
    different instances run at the same time; `stop()` kills every one still running."""

    def __init__(
        self,
        bwrap: str | None = None,
        *,
        find_bwrap: bool = True,
        timeout: float | None = None,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        limits: SandboxLimits | None = None,
        use_cgroup: bool = True,
    ) -> None:
        self.bwrap = bwrap or (shutil.which("bwrap") if find_bwrap else None)
        limits = limits or SandboxLimits()
        if timeout is not None:
            limits = dataclasses.replace(limits, timeout=timeout)
        self.limits = limits
        self.output_cap = output_cap
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stopped = threading.Event()
        self._cgroups = _PidsCgroups() if use_cgroup else None
        self._checked: str | None = None
        self._known_options: frozenset[str] | None = None

    @property
    def timeout(self) -> float:
        return self.limits.timeout

    @property
    def available(self) -> bool:
        return self.bwrap is not None

    @property
    def process_limit(self) -> str:
        """How the number of processes is limited: 'cgroup', 'rlimit', or '' (not at all:
        root without a writable pids cgroup; only the time limit ends a fork bomb)."""
        if self._cgroups is not None and self._cgroups.usable():
            return "cgroup"
        return "" if os.geteuid() == 0 else "rlimit"

    def check(self) -> None:
        """Raise SandboxUnavailable (one line) unless scripts can run here; the first call
        starts a trivial sandbox to prove it (e.g. user namespaces may be forbidden)."""
        if self.bwrap is None:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed, and the simulated fleet runs package "
                f"scripts only inside it: install it ({INSTALL_HINT}) and start again"
            )
        if self._checked is None:
            probe = self._bwrap_argv(None, Path("/"), ["true"], {})
            try:
                done = subprocess.run(
                    probe, capture_output=True, text=True, timeout=30, env={"PATH": SCRIPT_PATH}
                )
                said = done.stderr.strip().splitlines()
                problem = "" if done.returncode == 0 else (said or [f"exit {done.returncode}"])[-1]
            except (OSError, subprocess.TimeoutExpired) as err:
                problem = str(err)
            self._checked = problem
        if self._checked:
            raise SandboxUnavailable(
                f"bubblewrap ({self.bwrap}) cannot start a sandbox here: {self._checked}; "
                "the fleet needs user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
                "or run as root)"
            )

    def _options(self) -> frozenset[str]:
        """The options this bubblewrap knows (from --help), read once."""
        if self._known_options is None:
            assert self.bwrap is not None
            try:
                done = subprocess.run(
                    [self.bwrap, "--help"], capture_output=True, text=True, timeout=30
                )
                words = (done.stdout + done.stderr).split()
            except (OSError, subprocess.TimeoutExpired):
                words = []
            self._known_options = frozenset(w for w in words if w.startswith("--"))
        return self._known_options

    def stop(self) -> None:
        """Kill every running script (with its process group) and refuse new ones."""
        self._stopped.set()
        with self._lock:
            running = list(self._running)
        for process in running:
            _kill_group(process)

    def command(self, root: Path, workdir: Path, script: str, env: Mapping[str, str]) -> list[str]:
        """The bubblewrap command line for `sh <script>` in `workdir` (a path inside)."""
        return self._bwrap_argv(root, workdir, ["sh", script], env)

    def _bwrap_argv(
        self, root: Path | None, workdir: Path, argv: list[str], env: Mapping[str, str]
    ) -> list[str]:
        assert self.bwrap is not None
        command = [self.bwrap, "--ro-bind", "/", "/"]
        if root is not None:
            command += [
                "--bind", str(root / "opt"), "/opt",
                "--bind", str(root / "var"), "/var",
                "--ro-bind", str(root / "etc" / "os-release"), "/etc/os-release",
            ]  # fmt: skip
        options = self._options()
        if "--size" in options:  # bubblewrap 0.7+: applies to the next --tmpfs only
            command += ["--size", str(self.limits.tmp_size)]
        command += [
            "--tmpfs", "/tmp",
            "--proc", "/proc",
            "--dev", "/dev",
            "--unshare-all",
            # As root bubblewrap keeps the capabilities of root unless told: drop them all,
            # in a user namespace of its own.
            "--unshare-user",
            "--cap-drop", "ALL",
        ]  # fmt: skip
        if "--disable-userns" in options:
            # bubblewrap 0.8+: no nested user namespace, where a process would be given
            # capabilities again (over mounts that older kernels lock anyway).
            command += ["--disable-userns"]
        command += [
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv", "PATH", SCRIPT_PATH,
        ]  # fmt: skip
        for key, value in sorted(env.items()):
            command += ["--setenv", key, value]
        return [*command, "--chdir", str(workdir), *argv]

    def run(self, root: Path, workdir: Path, script: str, env: Mapping[str, str]) -> ScriptRun:
        if script.endswith(".ps1"):
            return ScriptRun(
                ran=False,
                reason=f"{script} was not run: PowerShell scripts cannot run in this "
                "simulation (the zip was downloaded, checked and unpacked)",
            )
        if self.bwrap is None:
            return ScriptRun(
                ran=False,
                reason=f"{script} was not run: bubblewrap (bwrap) is not installed, and "
                f"package scripts only run sandboxed ({INSTALL_HINT})",
            )
        unsafe = [key for key in env if not key.startswith(("BWS_", "SSM_"))]
        if unsafe:  # only the agent's own variables may reach a script
            raise ValueError(f"refusing to pass {unsafe} to a package script")
        if self._stopped.is_set():
            return ScriptRun(ran=False, reason=f"{script} was not run: the fleet is stopping")
        cgroup = self._cgroups.create(self.limits.max_processes) if self._cgroups else None
        try:
            return self._run(root, workdir, script, env, cgroup)
        finally:
            if cgroup is not None:
                cgroup.remove()

    def _run(
        self,
        root: Path,
        workdir: Path,
        script: str,
        env: Mapping[str, str],
        cgroup: _Cgroup | None,
    ) -> ScriptRun:
        limits = self.limits
        with self._lock:
            process = subprocess.Popen(
                self.command(root, workdir, script, env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"PATH": SCRIPT_PATH},
                # Its own process group, so a timeout kills everything it started.
                start_new_session=True,
                preexec_fn=_limiter(limits, cgroup),
            )
            self._running.add(process)
        if self._stopped.is_set():  # stop() ran while it started
            _kill_group(process)
        assert process.stdout is not None and process.stderr is not None
        stdout = _CappedReader(process.stdout, self.output_cap)
        stderr = _CappedReader(process.stderr, self.output_cap)
        deadline = time.monotonic() + limits.timeout
        next_disk_check = time.monotonic() + _DISK_POLL_SECONDS
        limit = ""
        try:
            while True:
                try:
                    process.wait(timeout=min(_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self._stopped.is_set():
                    limit = "was killed because the fleet is stopping"
                elif time.monotonic() >= deadline:
                    limit = f"timed out after {limits.timeout:g} seconds"
                elif time.monotonic() >= next_disk_check:
                    limit = _over_disk_quota(root, limits)
                    next_disk_check = time.monotonic() + _DISK_POLL_SECONDS
                if limit:
                    _kill_group(process)
                    if cgroup is not None:
                        cgroup.kill()
                    process.wait()
                    break
        finally:
            with self._lock:
                self._running.discard(process)
        if not limit and cgroup is not None and cgroup.hit_limit():
            limit = f"tried to run more than {limits.max_processes} processes at once"
        if not limit and process.returncode == 128 + signal.SIGXFSZ:
            limit = f"wrote a file larger than {_size(limits.max_file_size)}"
        return ScriptRun(
            ran=True,
            exit_code=process.returncode,
            stdout=stdout.text(),
            stderr=stderr.text(),
            timed_out=limit.startswith("timed out"),
            limit=limit,
        )


def _limiter(limits: SandboxLimits, cgroup: _Cgroup | None) -> Callable[[], None]:
    """The child's last step before exec'ing bubblewrap: join the pids cgroup and set the
    rlimits every process of the sandbox inherits (and, without capabilities, cannot raise).
    Only async-signal-safe-ish work: no locks, no allocation-heavy Python."""
    cpu = int(limits.timeout) + 1
    nproc = limits.max_processes + _processes_of_this_user() if os.geteuid() != 0 else -1
    procs_file = cgroup.procs_file if cgroup is not None else ""
    prctl = _prctl()

    def limit() -> None:
        if prctl is not None:
            # bubblewrap dies with the thread that started it (and its sandbox with it,
            # --die-with-parent), even if this process is killed without a chance to stop.
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if procs_file:
            fd = os.open(procs_file, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory, limits.max_memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_size, limits.max_file_size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc > 0:
            # Counted per user across the host, so it is what the user runs already plus
            # the sandbox's share; the kernel ignores it for root (hence the cgroup).
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return limit


_PR_SET_PDEATHSIG = 1  # prctl(2), include/uapi/linux/prctl.h


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up before fork (the child must not load libraries)."""
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


def _processes_of_this_user() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL bubblewrap's process group: with --die-with-parent its pid namespace (and so
    every process the script started, in any session) dies with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _over_disk_quota(root: Path, limits: SandboxLimits) -> str:
    """'' or what the instance's writable folders exceed (allocated bytes, entries)."""
    used = entries = 0
    stack = [root / "opt", root / "var"]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as items:
                for item in items:
                    entries += 1
                    if entries > limits.max_files:
                        return f"made more than {limits.max_files} files in /opt and /var"
                    with contextlib.suppress(OSError):
                        info = item.stat(follow_symlinks=False)
                        used += info.st_blocks * 512
                        if item.is_dir(follow_symlinks=False):
                            stack.append(Path(item.path))
        except OSError:
            continue
        if used > limits.max_disk:
            return f"used more than {_size(limits.max_disk)} of disk in /opt and /var"
    return ""


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB"


class _Cgroup:
    """One pids cgroup holding one script's sandbox."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs_file = str(path / "cgroup.procs")

    def hit_limit(self) -> bool:
        try:
            events = (self.path / "pids.events").read_text()
        except OSError:
            return False
        return any(line.split()[-1] != "0" for line in events.splitlines() if line.strip())

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")  # cgroup v2 (Linux 5.14+)
            return
        for _ in range(20):  # v1: kill what is listed until nothing is
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def remove(self) -> None:
        for _ in range(40):  # the last processes may take a moment to be reaped
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                self.kill()
                time.sleep(0.05)


class _PidsCgroups:
    """Makes pids cgroups (v1 `pids` hierarchy, or v2 where the pids controller is
    delegated), if this process may; otherwise `create` returns None."""

    _serial = itertools.count()

    def __init__(self) -> None:
        self._parent: Path | None | bool = False  # False: not looked for yet
        self._lock = threading.Lock()

    def usable(self) -> bool:
        return self._find() is not None

    def _find(self) -> Path | None:
        with self._lock:
            if self._parent is False:
                self._parent = _writable_pids_parent()
                if self._parent is not None:
                    _remove_stale_cgroups(self._parent)
            return self._parent if isinstance(self._parent, Path) else None

    def create(self, max_processes: int) -> _Cgroup | None:
        parent = self._find()
        if parent is None:
            return None
        path = parent / f"ssm-gitops-sandbox-{os.getpid()}-{next(self._serial)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_processes))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return _Cgroup(path)


def _remove_stale_cgroups(parent: Path) -> None:
    """Empty cgroups left by a fleet that was killed (SIGKILL) before it could remove them."""
    for path in parent.glob("ssm-gitops-sandbox-*-*"):
        owner = path.name.split("-")[3]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                path.rmdir()  # fails, harmlessly, while processes are still in it


def _writable_pids_parent() -> Path | None:
    candidates = [Path("/sys/fs/cgroup/pids")]
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                own = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
                # v2: a child of our own cgroup gets pids.max only if it is delegated.
                controls = (own / "cgroup.subtree_control").read_text().split()
                if "pids" in controls:
                    candidates.append(own)
    for parent in candidates:
        probe = parent / f"ssm-gitops-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        ok = (probe / "pids.max").exists()
        with contextlib.suppress(OSError):
            probe.rmdir()
        if ok:
            return parent
    return None


class _CappedReader:
    """Drains a pipe on a thread, keeping only the first `cap` bytes."""

    def __init__(self, pipe: IO[bytes], cap: int) -> None:
        self._pipe = pipe
        self._cap = cap
        self._kept = bytearray()
        self._dropped = 0
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with self._pipe:
            while chunk := self._pipe.read(65536):
                room = self._cap - len(self._kept)
                self._kept += chunk[: max(room, 0)]
                self._dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        self._thread.join(timeout=5)
        text = self._kept.decode("utf-8", errors="replace")
        if self._dropped:
            text += f"\n---Output truncated: {self._dropped} more bytes---\n"
        return text
