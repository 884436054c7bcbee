"""A progressive rollout (issue 13) in `/status`, the status page and the metrics."""

from __future__ import annotations

from dataclasses import replace

from controller.reconcile.result import RolloutStatus
from controller.runtime import page
from controller.runtime.metrics import Metrics
from controller.runtime.status import Status, to_json
from tests.runtime.conftest import make_pass
from tests.runtime.test_metrics import value

ROLLED_BACK = RolloutStatus(
    package="datadog-agent",
    account="123456789012",
    region="us-east-1",
    state="rolled_back",
    ring=0,
    rings=(("datadog-agent-canary",), ("datadog-agent-prod",)),
    live_default="6.9.0",
    target="6.10.0",
    previous="6.9.0",
    versions=("6.9.0", "6.10.0"),
    succeeded=1,
    failed=1,
    failure="rollout of 6.10.0 failed at ring 1: too many targets failed",
    failed_targets=(("datadog-agent-canary", "i-0abc", "install.sh exited 1"),),
)
BAKING = replace(
    ROLLED_BACK,
    state="baking",
    ring=1,
    failed=0,
    failure="",
    failed_targets=(),
    deadline=1e9,
    bake_remaining=42,
    step="ring 2: baking, 42s left",
)


def test_rollout_metrics() -> None:
    metrics = Metrics()
    metrics.record_pass(replace(make_pass(), progressive=(BAKING,)))
    for state in ("progressing", "paused", "succeeded", "failed", "rolled_back"):
        assert value(metrics, "rollout_state", package="datadog-agent", state=state) == 0
    assert value(metrics, "rollout_state", package="datadog-agent", state="baking") == 1
    assert value(metrics, "rollout_ring", package="datadog-agent") == 1
    assert value(metrics, "rollout_ring_targets", package="datadog-agent", status="succeeded") == 1
    assert value(metrics, "rollout_step_deadline_timestamp_seconds", package="datadog-agent") == 1e9
    other_region = replace(ROLLED_BACK, region="eu-west-1")
    metrics.record_pass(replace(make_pass(), progressive=(BAKING, other_region)))
    assert value(metrics, "rollout_state", package="datadog-agent", state="rolled_back") == 1
    metrics.record_pass(make_pass())  # the package lost its rollout: its series go
    assert value(metrics, "rollout_ring", package="datadog-agent") is None


def test_status_and_page_show_the_rings_and_the_failure() -> None:
    status = Status("repo", last_pass=replace(make_pass(), progressive=(ROLLED_BACK,)))
    document = to_json(status)["packages"][0]
    assert document["state"] == "rolled_back" and document["liveDefault"] == "6.9.0"
    assert [r["status"] for r in document["rings"]] == ["rolled_back", "waiting"]
    assert document["rings"][0]["targets"] == {"succeeded": 1, "failed": 1, "pending": 0}
    assert document["failedTargets"] == [
        {
            "association": "datadog-agent-canary",
            "instance": "i-0abc",
            "error": "install.sh exited 1",
        }
    ]
    html = page.render(status)
    assert "failed at ring 1" in html and "i-0abc" in html and "install.sh exited 1" in html
    baking = page.render(Status("repo", last_pass=replace(make_pass(), progressive=(BAKING,))))
    assert "42s left" in baking and "ring 1 (datadog-agent-canary): passed" in baking
