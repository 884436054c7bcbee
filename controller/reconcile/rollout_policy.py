"""A Package's validated `rollout` block as the pure `RolloutPolicy` the plan works with.

Stage: desired state (called by `controller.reconcile.desired`); the YAML was checked by
`controller.repository` (models and checks), so the parsers cannot fail here.
"""

from __future__ import annotations

from controller.model.rollout import (
    MaxFailed,
    OnFailure,
    Ring,
    RolloutPolicy,
    parse_duration,
    parse_max_failed,
)
from controller.repository import Package


def rollout_policy(package: Package) -> RolloutPolicy | None:
    spec = package.rollout
    if spec is None:
        return None
    return RolloutPolicy(
        rings=tuple(
            Ring(tuple(ring.associations), parse_duration(ring.bake or "0s") or 0)
            for ring in spec.rings
        ),
        max_failed=parse_max_failed(spec.max_failed) or MaxFailed(0),
        alarms=tuple(spec.alarms),
        on_failure=OnFailure(spec.on_failure),
    )
