"""Metrics that the dashboard and the alert rules already use but that other features add
(issue 16 was built while rollouts, drift events and organisations were): the tests on
those queries skip, naming the feature, until `controller/runtime/metrics.py` defines the
metric. The check is by name, so each turns on by itself when its feature is merged.
"""

from __future__ import annotations

import re
from pathlib import Path

METRICS_MODULE = Path(__file__).resolve().parents[2] / "controller" / "runtime" / "metrics.py"
PREFIX = "ssm_gitops_"

FEATURES: dict[str, tuple[str, ...]] = {
    "rollouts (issue 13)": (
        "ssm_gitops_rollout_state",
        "ssm_gitops_rollout_ring",
        "ssm_gitops_rollout_ring_targets",
        "ssm_gitops_rollout_step_deadline_timestamp_seconds",
    ),
    "drift events (issue 14)": (
        "ssm_gitops_drift_events_total",
        "ssm_gitops_drift_events_queue_up",
        "ssm_gitops_drift_events_last_received_timestamp_seconds",
        "ssm_gitops_drift_events_unconfirmed_changes",
    ),
    "organisations (issue 15)": ("ssm_gitops_location_up", "ssm_gitops_locations"),
}


def defined(metric: str) -> bool:
    """metrics.py names the metric (`PREFIX + "name"`; a counter without `_total` or with)."""
    source = METRICS_MODULE.read_text()
    base = metric.removeprefix(PREFIX)
    names = {base, base.removesuffix("_total")}
    return any(re.search(rf"""["']({PREFIX})?{re.escape(n)}["']""", source) for n in names)


def missing_feature(metric: str) -> str | None:
    """The feature that adds `metric`, while metrics.py does not define it yet; else None."""
    for feature, metrics in FEATURES.items():
        if metric in metrics and not defined(metric):
            return feature
    return None


def missing_features(expr: str) -> list[str]:
    """The features an expression needs that are not here yet (by the metric names in it)."""
    found = set(re.findall(rf"\b{PREFIX}\w+", expr))
    return sorted({f for m in found if (f := missing_feature(m)) is not None})
