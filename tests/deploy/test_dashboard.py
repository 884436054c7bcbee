"""deploy/grafana/ssm-gitops.json imports cleanly: unique panel ids, panels on Grafana's
24-column grid without overlapping, every data source the `datasource` variable, and a
panel for each thing issue 6 asks to see. (Its queries: test_metrics.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ssm-gitops.json"


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels: list[dict[str, Any]] = dashboard["panels"]
    return panels


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in _panels()]
    assert len(ids) == len(set(ids))


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_uses_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_it_shows_what_the_issue_asks_for() -> None:
    """Pass rate and duration, drift, resources by state, AWS calls and throttles, rollouts."""
    queries = {
        panel["title"]: " ".join(t["expr"] for t in panel.get("targets", [])) for panel in _panels()
    }

    def shown(metric: str, *also: str) -> bool:
        return any(metric in q and all(a in q for a in also) for q in queries.values())

    assert shown("ssm_gitops_reconcile_total", 'result!="failure"')  # pass rate
    assert shown("ssm_gitops_reconcile_duration_seconds_bucket", "histogram_quantile")
    assert shown("ssm_gitops_resources", "drifted")
    assert shown("ssm_gitops_resources", "by (kind, state)")
    assert shown("ssm_gitops_aws_api_calls_total", "by (operation)")
    assert shown("ssm_gitops_aws_api_calls_total", 'result!="success"')  # throttles, errors
    assert shown("ssm_gitops_association_targets", "by (association, status)")


def test_it_shows_rollouts_drift_events_and_locations() -> None:
    """Issue 16: rollouts (state, ring, failed targets), drift events, per-location health."""
    queries = [" ".join(t["expr"] for t in panel.get("targets", [])) for panel in _panels()]

    def shown(metric: str, *also: str) -> bool:
        return any(metric in q and all(a in q for a in also) for q in queries)

    assert shown("ssm_gitops_rollout_state", "by (package, state)")
    assert shown("ssm_gitops_rollout_ring{")
    assert shown("ssm_gitops_rollout_ring_targets", "by (package, status)")
    assert shown("ssm_gitops_rollout_step_deadline_timestamp_seconds", "time()")
    assert shown("ssm_gitops_drift_events_total", "by (result)")
    assert shown("ssm_gitops_drift_events_queue_up")
    assert shown("ssm_gitops_drift_events_unconfirmed_changes")
    assert shown("ssm_gitops_location_up", "by (account, region)")
    assert shown("ssm_gitops_locations", "by (state)")


def test_it_shows_overlapping_associations() -> None:
    """Issue 13's classic mistake (a ring pinned by a rollout and an association following
    the default on the same instances, which flip on every run) had a metric,
    `association_overlaps`, but no panel."""
    queries = [" ".join(t["expr"] for t in panel.get("targets", [])) for panel in _panels()]
    assert any("ssm_gitops_association_overlaps" in q and "by (package)" in q for q in queries)
