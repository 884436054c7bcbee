"""Metrics that the dashboard and the alert rules already use but that other features add
(issue 16 was built while rollouts, drift events and organisations were): the tests on
those queries skip, naming the feature, until the controller defines the metric
(`PREFIX + "name"` in controller/runtime/metrics.py or another module of controller/).
The check is by name, so each turns on by itself when its feature is merged.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

CONTROLLER = Path(__file__).resolve().parents[2] / "controller"
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

# Features whose series exist only when a flag of `run` switches the feature on: a plain
# scrape has none of them (tests/e2e/test_prometheus.py scrapes with the flag).
SWITCHED_ON_BY: dict[str, str] = {"drift events (issue 14)": "--events-queue"}


@cache
def _sources() -> str:
    return "\n".join(p.read_text() for p in sorted(CONTROLLER.rglob("*.py")))


def defined(metric: str, sources: str | None = None) -> bool:
    """The controller names the metric: `PREFIX + "name"` or `"ssm_gitops_name"` (a
    counter with or without `_total`)."""
    text = _sources() if sources is None else sources
    base = metric.removeprefix(PREFIX)
    for name in {base, base.removesuffix("_total")}:
        quoted = rf"""["']{re.escape(name)}["']"""
        if re.search(rf"PREFIX\s*\+\s*{quoted}|[\"']{PREFIX}{re.escape(name)}[\"']", text):
            return True
    return False


def feature_of(metric: str) -> str | None:
    """The feature that adds `metric` (merged or not); None for the base metrics."""
    return next((f for f, metrics in FEATURES.items() if metric in metrics), None)


def missing_feature(metric: str) -> str | None:
    """The feature that adds `metric`, while controller/ does not define it yet; else None."""
    feature = feature_of(metric)
    return feature if feature is not None and not defined(metric) else None


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(rf"\b{PREFIX}\w+", expr))


def missing_features(expr: str) -> list[str]:
    """The features an expression needs that are not here yet (by the metric names in it)."""
    return sorted({f for m in metrics_in(expr) if (f := missing_feature(m)) is not None})


def switched_on_by(metric: str) -> str | None:
    """The `run` flag without which `metric` is not exported at all; None if always."""
    feature = feature_of(metric)
    return SWITCHED_ON_BY.get(feature) if feature is not None else None
