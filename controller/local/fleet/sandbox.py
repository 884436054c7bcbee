"""Running one package script inside an instance, never on the host.

Called by the agent (`agent.py`) for each lifecycle script. Linux scripts run as
`sh <action>.sh` in the package version's folder (agent-semantics.md "Running"; agent source
agent/plugins/configurepackage/ssminstaller/) under bubblewrap:

- the host root read-only (`--ro-bind / /`), the instance's own `opt/` and `var/` writable
  over `/opt` and `/var`, its `etc/os-release` read-only over the host's, a private `/tmp`;
- `--unshare-all` (no network, own pid/ipc/uts namespaces) and `--die-with-parent`;
- `--clearenv`, then only PATH, the `BWS_*` variables and the `SSM_*` additional arguments
  the agent passes: never AWS credentials;
- a timeout (the agent's default is 3600 s) and a cap on the output kept.

Without bubblewrap, or for PowerShell scripts (nothing here can run them), nothing runs and
the result says why.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# The agent's default execution timeout for package scripts (agent-semantics.md "Running").
DEFAULT_TIMEOUT_SECONDS = 3600.0
# GetCommandInvocation returns at most 24,000 characters of output
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html);
# keeping more than that per script would only cost memory.
DEFAULT_OUTPUT_CAP = 24_000
SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ScriptRun:
    """What one script did. `ran` is False when it could not be run here (see `reason`)."""

    ran: bool
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    reason: str = ""


class Sandbox:
    """Runs scripts under bubblewrap for any instance root."""

    def __init__(
        self,
        bwrap: str | None = None,
        *,
        find_bwrap: bool = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> None:
        self.bwrap = bwrap or (shutil.which("bwrap") if find_bwrap else None)
        self.timeout = timeout
        self.output_cap = output_cap

    @property
    def available(self) -> bool:
        return self.bwrap is not None

    def command(self, root: Path, workdir: Path, script: str, env: Mapping[str, str]) -> list[str]:
        """The bubblewrap command line for `sh <script>` in `workdir` (a path inside)."""
        assert self.bwrap is not None
        argv = [
            self.bwrap,
            "--ro-bind", "/", "/",
            "--bind", str(root / "opt"), "/opt",
            "--bind", str(root / "var"), "/var",
            "--ro-bind", str(root / "etc" / "os-release"), "/etc/os-release",
            "--tmpfs", "/tmp",
            "--proc", "/proc",
            "--dev", "/dev",
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv", "PATH", SCRIPT_PATH,
        ]  # fmt: skip
        for key, value in sorted(env.items()):
            argv += ["--setenv", key, value]
        argv += ["--chdir", str(workdir), "sh", script]
        return argv

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
                "package scripts only run sandboxed (apt-get install bubblewrap)",
            )
        unsafe = [key for key in env if not key.startswith(("BWS_", "SSM_"))]
        if unsafe:  # only the agent's own variables may reach a script
            raise ValueError(f"refusing to pass {unsafe} to a package script")
        process = subprocess.Popen(
            self.command(root, workdir, script, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": SCRIPT_PATH},
        )
        assert process.stdout is not None and process.stderr is not None
        stdout = _CappedReader(process.stdout, self.output_cap)
        stderr = _CappedReader(process.stderr, self.output_cap)
        timed_out = False
        try:
            process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            process.kill()  # --die-with-parent and the pid namespace take the script with it
            process.wait()
        return ScriptRun(
            ran=True,
            exit_code=process.returncode,
            stdout=stdout.text(),
            stderr=stderr.text(),
            timed_out=timed_out,
        )


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
