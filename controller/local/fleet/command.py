"""`ssm-gitops local --fleet N | --fleet-file F`: the flags -> a running fleet.

Where it sits: controller/local/commands.py (the `local` command) calls
`fleet_specs_from_flags` before starting the endpoint (so a bad fleet file is one line and
nothing starts), then `start_fleet_for_command` once the endpoint runs, and `Fleet.stop()`
on the way out. The demo can use the same two calls.
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


def start_fleet_for_command(
    aws: Any, specs: tuple[InstanceSpec, ...], work_dir: Path | None = None
) -> Fleet | None:
    """Start the fleet on the running endpoint and print where each instance lives."""
    if not specs:
        return None
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="ssm-gitops-fleet-"))
    sandbox = Sandbox()
    fleet = start_fleet(aws, specs, work_dir, sandbox=sandbox)
    print(f"Simulated fleet: {len(specs)} instances, roots under {work_dir}", flush=True)
    if not sandbox.available:
        print(
            "  bubblewrap (bwrap) is not installed: package scripts will not run "
            "(apt-get install bubblewrap)",
            flush=True,
        )
    for line in fleet.describe():
        print(f"  {line}", flush=True)
    return fleet
