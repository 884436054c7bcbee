"""The simulated fleet: managed instances that really run Distributor packages.

Pipeline: `model` (which instances) -> `roots` (their directories) -> `fleet.start_fleet`
(registered in the local EC2 and SSM, listening to SSM) -> per event a `rollout` under rate
control -> per instance the `agent` (manifest selection, download, sandboxed scripts,
install state). See docs/fleet.md and ../shared/design/agent-semantics.md.
"""

from controller.local.fleet.fleet import Fleet, start_fleet
from controller.local.fleet.model import InstanceSpec, default_fleet, load_fleet_file

__all__ = ["Fleet", "InstanceSpec", "default_fleet", "load_fleet_file", "start_fleet"]
