"""`ssm-gitops local --fleet N | --fleet-file F`: the flags -> a running fleet.

Where it sits: controller/local/commands.py (the `local` command) calls
`fleet_specs_from_flags` before starting the endpoint (so a bad fleet file is one line and
nothing starts) and `fleet_sandbox` (no bubblewrap: one line naming what to install, and
nothing starts), then `start_fleet_for_command` once the endpoint runs, and `Fleet.stop()`
on the way out (it kills the scripts still running). The demo can use the same two calls.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from controller.errors import UserError
from controller.local.fleet.fleet import Fleet, start_fleet
from controller.local.fleet.model import InstanceSpec, default_fleet, load_fleet_file
from controller.local.fleet.sandbox import Sandbox


def fleet_specs_from_flags(count: int | None, fleet_file: str | None) -> tuple[InstanceSpec, ...]:
    """The instances the flags ask for (empty: no fleet)."""
    if count and fleet_file:
        raise UserError("use either --fleet N or --fleet-file F, not both")
    if fleet_file:
        return load_fleet_file(Path(fleet_file))
    if count is not None and count < 0:
        raise UserError(f"--fleet {count}: the number of instances must be 0 or more")
    return default_fleet(count or 0)


def fleet_sandbox(specs: tuple[InstanceSpec, ...]) -> Sandbox | None:
    """The sandbox the fleet's scripts will run in, proven to work here; None without a
    fleet. Raises SandboxUnavailable (a one-line UserError naming what to install) rather
    than start a fleet that could install nothing."""
    if not specs:
        return None
    sandbox = Sandbox()
    sandbox.check()
    return sandbox


def start_fleet_for_command(
    aws: Any,
    specs: tuple[InstanceSpec, ...],
    work_dir: Path | None = None,
    sandbox: Sandbox | None = None,
) -> Fleet | None:
    """Start the fleet on the running endpoint and print where each instance lives.
    Raises SandboxUnavailable before anything is made if scripts cannot run here."""
    if not specs:
        return None
    sandbox = sandbox or fleet_sandbox(specs)
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="ssm-gitops-fleet-"))
    fleet = start_fleet(aws, specs, work_dir, sandbox=sandbox)
    print(f"Simulated fleet: {len(specs)} instances, roots under {work_dir}", flush=True)
    if sandbox is not None and not sandbox.process_limit:
        print(
            "  note: no pids cgroup can be made here and the fleet runs as root, so only "
            "the time limit stops a script that starts too many processes",
            flush=True,
        )
    for line in fleet.describe():
        print(f"  {line}", flush=True)
    return fleet
