"""Metrics that the merged features (rollouts, drift events, organisations) add, by feature:
a failure on one of them names its feature and whether the test's stack switches it on
(tests/e2e/test_prometheus.py), and a feature whose series exist only with a flag of `run`
is left out of a plain scrape (test_metrics.py). Every feature is merged: no test skips
on a metric the controller lacks (test_every_feature_metric_is_defined guards it).
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


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(rf"\b{PREFIX}\w+", expr))


def switched_on_by(metric: str) -> str | None:
    """The `run` flag without which `metric` is not exported at all; None if always."""
    feature = feature_of(metric)
    return SWITCHED_ON_BY.get(feature) if feature is not None else None
