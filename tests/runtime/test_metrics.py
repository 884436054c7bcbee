"""Every contract metric, with its documented labels, as Prometheus text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from controller.model.state import Location
from controller.reconcile.events import EventResult
from controller.reconcile.result import (
    Failure,
    LocationStatus,
    Overlap,
    PassOutcome,
    PassResult,
    Reason,
    RolloutStatus,
)
from controller.runtime.events import EventMetrics
from controller.runtime.metrics import Metrics
from tests.runtime.conftest import make_pass


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get(("ssm_gitops_" + name, tuple(sorted(labels.items()))))


def test_series_exist_at_zero_before_any_pass() -> None:
    m = Metrics()
    for result in ("success", "failure", "no_change"):
        assert value(m, "reconcile_total", result=result) == 0
    for kind in ("package", "association"):
        for state in ("in_sync", "drifted", "failed"):
            assert value(m, "resources", kind=kind, state=state) == 0
    assert value(m, "config_valid") == 1
    assert value(m, "prune_blocked_total") == 0
    assert value(m, "git_fetch_failures_total") == 0
    assert value(m, "webhook_requests_total", result="unauthorized") == 0


def test_a_pass_updates_every_pass_metric(a_pass: PassResult) -> None:
    m = Metrics()
    m.record_pass(a_pass)
    assert value(m, "reconcile_total", result="success") == 1
    assert value(m, "reconcile_duration_seconds_count") == 1
    assert value(m, "reconcile_duration_seconds_sum") == 2.5
    assert value(m, "last_success_timestamp_seconds") == a_pass.finished_at
    assert value(m, "revision_info", revision="a" * 40) == 1
    assert value(m, "resources", kind="package", state="in_sync") == 1
    assert value(m, "resources", kind="package", state="drifted") == 1
    assert value(m, "resources", kind="association", state="failed") == 1
    assert value(m, "actions_total", kind="package", action="add_version", result="success") == 1
    assert value(m, "actions_total", kind="association", action="update", result="failure") == 1
    assert value(m, "aws_api_calls_total", operation="ListDocuments", result="ok") == 2
    assert (
        value(m, "aws_api_calls_total", operation="UpdateAssociation", result="AccessDenied") == 1
    )
    assert value(m, "prune_blocked_total") == 1
    assert value(m, "association_targets", association="datadog-agent-prod", status="Success") == 3
    assert value(m, "association_targets", association="datadog-agent-prod", status="Pending") == 2
    assert value(m, "association_targets", association="nginx-web", status="Failed") == 1


def test_counters_add_up_and_gauges_follow_the_newest_pass() -> None:
    m = Metrics()
    m.record_pass(make_pass("a" * 40))
    failed = make_pass("b" * 40, PassOutcome.FAILURE, finished_at=1_700_000_100.0)
    m.record_pass(failed)
    assert value(m, "reconcile_total", result="success") == 1
    assert value(m, "reconcile_total", result="failure") == 1
    # A failed pass is not a success: the timestamp stays at the last good one.
    assert value(m, "last_success_timestamp_seconds") == 1_700_000_010.0
    assert value(m, "revision_info", revision="a" * 40) is None
    assert value(m, "revision_info", revision="b" * 40) == 1
    assert value(m, "resources", kind="package", state="in_sync") == 1  # a gauge, not a sum
    assert value(m, "aws_api_calls_total", operation="ListDocuments", result="ok") == 4
    assert value(m, "prune_blocked_total") == 2


def test_removed_associations_stop_reporting_targets() -> None:
    m = Metrics()
    m.record_pass(make_pass())
    m.record_pass(PassResult("c" * 40, PassOutcome.NO_CHANGE, 1.0, 2.0))
    assert value(m, "association_targets", association="nginx-web", status="Failed") is None
    assert value(m, "reconcile_total", result="no_change") == 1


def test_fetch_and_load_metrics() -> None:
    m = Metrics()
    m.record_fetch(0.2, ok=True)
    m.record_fetch(1.5, ok=False)
    m.record_load(valid=False)
    assert value(m, "git_fetch_duration_seconds_count") == 2
    assert value(m, "git_fetch_failures_total") == 1
    assert value(m, "config_valid") == 0
    m.record_load(valid=True)
    assert value(m, "config_valid") == 1


def test_two_controllers_in_one_process_do_not_collide() -> None:
    first, second = Metrics(), Metrics()
    first.record_fetch(0.1, ok=False)
    assert value(second, "git_fetch_failures_total") == 0


def test_every_failure_reason_exists_at_zero_before_any_failure() -> None:
    """pass_errors_total{reason}: the fixed set, so an alert on any reason sees the first."""
    m = Metrics()
    for reason in Reason:
        assert value(m, "pass_errors_total", reason=reason.value) == 0
    assert {"load", "signature", "source", "rollout", "location"} <= {r.value for r in Reason}


def test_every_drift_event_result_exists_at_zero_with_the_events_queue() -> None:
    """drift_events_total{result} (issue 16: counters at zero for every known value): with
    --events-queue every result is there before the first event, so `increase()` and the
    "Drift events by result" panel see the first one; without it, no drift-event series."""
    m = Metrics()
    assert not [k for k in samples(m) if k[0].startswith("ssm_gitops_drift_events")]
    EventMetrics(m.registry)
    for result in EventResult:
        assert value(m, "drift_events_total", result=result.value) == 0
    assert {r.value for r in EventResult} == {"healed", "in_sync", "own", "foreign", "malformed"}
    assert value(m, "drift_events_queue_up") == 1
    assert value(m, "drift_events_unconfirmed_changes") == 0


def test_a_pass_counts_each_failure_by_its_reason(a_pass: PassResult) -> None:
    m = Metrics()
    m.record_pass(a_pass)  # one apply failure
    m.record_pass(
        replace(
            a_pass,
            failures=(
                Failure(Reason.OBSERVE, "could not read", location=Location("1", "r")),
                Failure(Reason.PLAN_REJECTED, "bump the version", kind="package", name="p"),
                Failure(Reason.PLAN_REJECTED, "conflict", kind="package", name="q"),
            ),
        )
    )
    assert value(m, "pass_errors_total", reason="apply") == 1
    assert value(m, "pass_errors_total", reason="observe") == 1
    assert value(m, "pass_errors_total", reason="plan_rejected") == 2
    assert value(m, "pass_errors_total", reason="load") == 0


def test_a_pass_that_could_not_read_the_live_state_keeps_what_the_last_one_saw(
    a_pass: PassResult,
) -> None:
    """Regression: a pass that failed before it read the live state (an STS or observe
    error, a crash: no resources, no locations) cleared the rollout, overlap and
    association-target series. A rolled-back rollout vanished from `rollout_state` during
    a transient AWS error, so SsmGitopsRolloutFailed resolved and fired again (a second
    notification), and the `for:` of SsmGitopsRolloutStuck and SsmGitopsAssociationsOverlap
    started over: a flaky location kept them from ever firing. Such a pass knows nothing
    new about them; the next pass that reads the live state updates them."""
    m = Metrics()
    location = Location("123456789012", "us-east-1")
    rollout = RolloutStatus("tools", location.account, location.region, "rolled_back", 1, (), "1.0")
    m.record_pass(
        replace(
            a_pass,
            progressive=(rollout,),
            overlaps=(Overlap("nginx", "i-1", location, (("a", "1"), ("b", "2"))),),
            locations=(LocationStatus(location.account, location.region, True),),
        )
    )
    blind = PassResult(
        "b" * 40,
        PassOutcome.FAILURE,
        1.0,
        2.0,
        failures=(Failure(Reason.OBSERVE, "sts: endpoint unreachable"),),
    )
    for _ in range(2):
        m.record_pass(blind)
        assert value(m, "rollout_state", package="tools", state="rolled_back") == 1
        assert value(m, "rollout_step_deadline_timestamp_seconds", package="tools") == 0
        assert value(m, "association_overlaps", package="nginx") == 1
        assert value(m, "association_targets", association="nginx-web", status="Failed") == 1
        assert value(m, "location_up", account=location.account, region=location.region) == 1
    assert value(m, "pass_errors_total", reason="observe") == 2
    # A pass that read the live state: a package without a rollout any more drops its series.
    m.record_pass(
        replace(a_pass, locations=(LocationStatus(location.account, location.region, True),))
    )
    assert value(m, "rollout_state", package="tools", state="rolled_back") is None
    assert value(m, "association_overlaps", package="nginx") == 0


def test_docs_list_every_metric_and_every_label_value_set() -> None:
    """docs/controller.md's metrics table names every metric the controller exports (with
    --events-queue) and every `pass_errors_total` reason and drift-event result: it lacked
    `location_up`, `locations` and the `location` reason."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "controller.md").read_text()
    rows = {
        row.split("|")[1].strip().strip("`"): row
        for row in doc[doc.index("## Metrics") : doc.index("## Logs")].splitlines()
        if row.startswith("| `")
    }
    m = Metrics()
    EventMetrics(m.registry)
    exported = {
        family.name.removeprefix("ssm_gitops_") + ("_total" if family.type == "counter" else "")
        for family in m.registry.collect()
    }
    exported |= {"location_up", "rollout_state", "rollout_ring", "rollout_ring_targets"}
    exported |= {"rollout_step_deadline_timestamp_seconds", "revision_info"}
    assert sorted(exported - set(rows)) == []
    assert [r.value for r in Reason if f" {r.value}" not in rows["pass_errors_total"]] == []
    assert [r.value for r in EventResult if f" {r.value}" not in rows["drift_events_total"]] == []


def test_association_targets_add_up_over_the_locations() -> None:
    """Bug (merge of organisations and rollout metrics): an association placed in several
    accounts or regions has one overview each; each set the same series in turn, so
    `association_targets` showed the last location's targets instead of all of them."""
    from controller.reconcile.result import Rollout

    m = Metrics()
    m.record_rollouts(
        (
            Rollout("agent-all", "Success", {"Success": 3}),  # account A
            Rollout("agent-all", "Failed", {"Success": 2, "Failed": 1}),  # account B
        )
    )
    assert value(m, "association_targets", association="agent-all", status="Success") == 5
    assert value(m, "association_targets", association="agent-all", status="Failed") == 1
    assert value(m, "association_targets", association="agent-all", status="Pending") == 0
