"""Prometheus metrics of the controller (contract: Metrics), fed from each pass and git fetch.

Sits after the reconcile stage: the loop hands every `PassResult`, every git fetch and every
load outcome here, and `/metrics` serves `render()`. All metrics live in one dedicated
`CollectorRegistry`, so two controllers in one process (tests, the demo) never collide and
the process's own default collectors do not leak in.

Labels stay low-cardinality: resource and association names, never ids or revisions, except
the one `revision_info{revision}` series.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from controller.model.kinds import Kind, Verb
from controller.model.rollout import RolloutPhase
from controller.reconcile.result import (
    ActionResult,
    PassOutcome,
    PassResult,
    Reason,
    ResourceState,
    Rollout,
    RolloutStatus,
)
from controller.runtime.webhook import Verdict

__all__ = ["CONTENT_TYPE", "Metrics", "RESOURCE_KINDS"]

PREFIX = "ssm_gitops_"
RESOURCE_KINDS = ("package", "association")
# Which region's rollout the package's series show (higher first).
_URGENCY = {
    "failed": 5,
    "rolled_back": 5,
    "paused": 4,
    "progressing": 3,
    "baking": 3,
    "succeeded": 1,
}
# The per-target association statuses a rollout goes through (AssociationStatusAggregatedCount
# keys; https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationOverview.html).
ROLLOUT_STATUSES = ("Success", "Failed", "Pending", "InProgress")
# The results of `aws_api_calls_total` an operation starts with, at zero, the first time it
# is called: the ones a dashboard or alert watches (controller.aws.errors families). The
# operations are not a fixed set (one per AWS API the controller calls), so each appears
# with its first call; the rarer families (not_found, conflict, ...) with their first count.
WATCHED_CALL_RESULTS = ("success", "throttled", "denied", "server_error")

# Passes range from well under a second (nothing to do) to many minutes (large uploads,
# waiting for documents to become Active).
_PASS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _read_live_state(result: PassResult) -> bool:
    """Whether the pass got as far as reading the live state. One that failed before (STS,
    reading a location's state, a crash: no resources, no locations) knows nothing new of
    rollouts, overlaps and locations, so their series keep the last pass's values: cleared,
    a failed rollout would resolve its alert and fire it again after a transient AWS error,
    and the `for:` of the rollout-stuck and overlap alerts would start over."""
    return not (
        result.outcome is PassOutcome.FAILURE and not result.resources and not result.locations
    )


class _AwsCalls(Counter):
    """`aws_api_calls_total`: the first series of an operation brings its
    WATCHED_CALL_RESULTS at zero, whichever code path counts the call (a pass, a followed
    rollout, anything counting calls between passes)."""

    def labels(self, *labelvalues: object, **labelkwargs: object) -> _AwsCalls:
        child = super().labels(*labelvalues, **labelkwargs)
        operation = labelvalues[0] if labelvalues else labelkwargs["operation"]
        for result in WATCHED_CALL_RESULTS:
            super().labels(operation, result)
        return child


class Metrics:
    """Every contract metric, plus the webhook counter, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_total = Counter(
            PREFIX + "reconcile", "Reconcile passes by result.", ["result"], registry=r
        )
        self.reconcile_duration = Histogram(
            PREFIX + "reconcile_duration_seconds",
            "Duration of reconcile passes.",
            buckets=_PASS_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            PREFIX + "last_success_timestamp_seconds",
            "Unix time at which the last successful (or no-change) pass finished.",
            registry=r,
        )
        self.revision_info = Gauge(
            PREFIX + "revision_info",
            "The git commit last applied (value 1).",
            ["revision"],
            registry=r,
        )
        self.resources = Gauge(
            PREFIX + "resources",
            "Desired resources by kind and state after the last pass.",
            ["kind", "state"],
            registry=r,
        )
        self.actions_total = Counter(
            PREFIX + "actions",
            "Actions applied, by kind, action and result.",
            ["kind", "action", "result"],
            registry=r,
        )
        self.aws_api_calls_total = _AwsCalls(
            PREFIX + "aws_api_calls",
            "AWS API calls by operation and result.",
            ["operation", "result"],
            registry=r,
        )
        self.prune_blocked_total = Counter(
            PREFIX + "prune_blocked",
            "Deletions held back by the safety rules (prune.maxDeletes, empty desired set).",
            registry=r,
        )
        self.git_fetch_duration = Histogram(
            PREFIX + "git_fetch_duration_seconds",
            "Duration of git fetches.",
            buckets=_FETCH_BUCKETS,
            registry=r,
        )
        self.git_fetch_failures_total = Counter(
            PREFIX + "git_fetch_failures", "Git fetches that failed.", registry=r
        )
        self.config_valid = Gauge(
            PREFIX + "config_valid",
            "1 if the newest revision loaded and validated, 0 if not.",
            registry=r,
        )
        self.association_targets = Gauge(
            PREFIX + "association_targets",
            "Targets of each association by rollout status (from the association overview).",
            ["association", "status"],
            registry=r,
        )
        self.association_overlaps = Gauge(
            PREFIX + "association_overlaps",
            "Instances targeted by two associations of the package that install different "
            "versions (they flip on every run); 0 for every package of the last pass.",
            ["package"],
            registry=r,
        )
        # Progressive rollouts (issue 13; docs/rollouts.md).
        self.rollout_state = Gauge(
            PREFIX + "rollout_state",
            "1 for the current state of each package's rollout, 0 for the others.",
            ["package", "state"],
            registry=r,
        )
        self.rollout_ring = Gauge(
            PREFIX + "rollout_ring",
            "0-based index of the current ring of each package's rollout.",
            ["package"],
            registry=r,
        )
        self.rollout_ring_targets = Gauge(
            PREFIX + "rollout_ring_targets",
            "The current ring's targets by status (succeeded, failed, pending).",
            ["package", "status"],
            registry=r,
        )
        self.rollout_step_deadline = Gauge(
            PREFIX + "rollout_step_deadline_timestamp_seconds",
            "Unix time by which the current rollout step (targets, or the bake) should be "
            "over; 0 when idle.",
            ["package"],
            registry=r,
        )
        self.pass_errors_total = Counter(
            PREFIX + "pass_errors",
            "Failures of revisions and passes, by reason (the word /status shows).",
            ["reason"],
            registry=r,
        )
        # Organisations (issue 15): one series per location the last pass worked in; the
        # account id is a label here on purpose, as a location has no other name.
        self.location_up = Gauge(
            PREFIX + "location_up",
            "1 if the location (account, region) was read completely in the last pass, 0 if "
            "not (role not assumable, region failing, throttled out).",
            ["account", "region"],
            registry=r,
        )
        self.locations = Gauge(
            PREFIX + "locations",
            "Locations of the last pass by state (ok, unreadable).",
            ["state"],
            registry=r,
        )
        self.webhook_requests_total = Counter(
            PREFIX + "webhook_requests",
            "POST /hooks/git requests by result (accepted, ignored, unauthorized, too_large, "
            "disabled).",
            ["result"],
            registry=r,
        )
        # Every series a dashboard or alert uses exists from the start, at zero, so a
        # `rate()` or an absent-series alert sees the first event.
        for outcome in PassOutcome:
            self.reconcile_total.labels(outcome.value)
        # Bounded: two kinds, nine verbs, four results (72 series, a few never used, such
        # as an association's add_version: kept for one simple rule, "every known value").
        for action_kind in Kind:
            for verb in Verb:
                for action_result in ActionResult:
                    self.actions_total.labels(action_kind.value, verb.value, action_result.value)
        for kind in RESOURCE_KINDS:
            for state in ResourceState:
                self.resources.labels(kind, state.value).set(0)
        for reason in Reason:
            self.pass_errors_total.labels(reason.value)
        for verdict in Verdict:
            self.webhook_requests_total.labels(verdict.value)
        self.config_valid.set(1)
        for location_state in ("ok", "unreadable"):
            self.locations.labels(location_state).set(0)

    def record_pass(self, result: PassResult) -> None:
        self.reconcile_total.labels(result.outcome.value).inc()
        self.reconcile_duration.observe(max(result.duration_seconds, 0.0))
        if result.outcome is not PassOutcome.FAILURE:
            self.last_success.set(result.finished_at)
        self.revision_info.clear()
        self.revision_info.labels(result.revision).set(1)
        counts = {(kind, state.value): 0 for kind in RESOURCE_KINDS for state in ResourceState}
        for resource in result.resources:
            key = (resource.kind, resource.state.value)
            counts[key] = counts.get(key, 0) + 1
        for (kind, state), count in counts.items():
            self.resources.labels(kind, state).set(count)
        for action in result.actions:
            self.actions_total.labels(action.kind, action.action, action.result.value).inc()
        for (operation, outcome), count in result.api_calls.items():
            self.aws_api_calls_total.labels(operation, outcome).inc(count)
        if result.blocked:
            self.prune_blocked_total.inc(len(result.blocked))
        # Every failure of the pass, each pass: a failure that persists keeps counting, so
        # `increase(...[15m]) > 0` stays true until it is fixed.
        for failure in result.failures:
            self.pass_errors_total.labels(failure.reason.value).inc()
        if _read_live_state(result):
            self.record_rollouts(result.rollouts)
            self.record_overlaps(result)
            self.record_locations(result)
            self.record_progressive(result.progressive)

    def record_overlaps(self, result: PassResult) -> None:
        """`association_overlaps{package}`: every package of the pass, 0 when none."""
        self.association_overlaps.clear()
        counts = dict.fromkeys((r.name for r in result.resources if r.kind == "package"), 0)
        for overlap in result.overlaps:
            counts[overlap.package] = counts.get(overlap.package, 0) + 1
        for package, count in counts.items():
            self.association_overlaps.labels(package).set(count)

    def record_locations(self, result: PassResult) -> None:
        """`location_up` and `locations` from the pass's locations; a pass that got no
        further than reading Settings (no locations) leaves the last values."""
        if not result.locations:
            return
        self.location_up.clear()  # a location that left Settings drops its series
        for location in result.locations:
            self.location_up.labels(location.account, location.region).set(int(location.up))
        up = sum(1 for location in result.locations if location.up)
        self.locations.labels("ok").set(up)
        self.locations.labels("unreadable").set(len(result.locations) - up)

    def record_api_calls(self, calls: Mapping[tuple[str, str], int]) -> None:
        """AWS calls made outside a pass (the drift-events queue, the rollout tick's reads)."""
        for (operation, outcome), count in calls.items():
            self.aws_api_calls_total.labels(operation, outcome).inc(count)

    def record_heal(self, result: PassResult) -> None:
        """A heal (drift events): its actions, calls and failures, but not a pass: the
        resource gauges and pass counters stay the last full pass's."""
        for action in result.actions:
            self.actions_total.labels(action.kind, action.action, action.result.value).inc()
        for (operation, outcome), count in result.api_calls.items():
            self.aws_api_calls_total.labels(operation, outcome).inc(count)
        if result.blocked:
            self.prune_blocked_total.inc(len(result.blocked))
        for failure in result.failures:
            self.pass_errors_total.labels(failure.reason.value).inc()

    def record_progressive(self, rollouts: tuple[RolloutStatus, ...]) -> None:
        """Each package with a rollout policy: its state, ring, targets and deadline."""
        for gauge in (
            self.rollout_state,
            self.rollout_ring,
            self.rollout_ring_targets,
            self.rollout_step_deadline,
        ):
            gauge.clear()  # a package removed from the repository stops reporting
        # The labels name the package only (low cardinality): of its regions, the one that
        # most needs a look is shown (a failure before a running rollout before a done one).
        shown: dict[str, RolloutStatus] = {}
        for rollout in rollouts:
            kept = shown.get(rollout.package)
            if kept is None or _URGENCY.get(rollout.state, 0) > _URGENCY.get(kept.state, 0):
                shown[rollout.package] = rollout
        for rollout in shown.values():
            for phase in RolloutPhase:
                self.rollout_state.labels(rollout.package, phase.value).set(
                    1 if rollout.state == phase.value else 0
                )
            self.rollout_ring.labels(rollout.package).set(rollout.ring)
            for status, count in (
                ("succeeded", rollout.succeeded),
                ("failed", rollout.failed),
                ("pending", rollout.pending),
            ):
                self.rollout_ring_targets.labels(rollout.package, status).set(count)
            self.rollout_step_deadline.labels(rollout.package).set(rollout.deadline)

    def record_rollouts(
        self,
        rollouts: tuple[Rollout, ...],
        api_calls: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """The association overviews, read by a pass or between passes (a followed rollout)."""
        for (operation, outcome), count in (api_calls or {}).items():
            self.aws_api_calls_total.labels(operation, outcome).inc(count)
        # Rollouts describe the associations that exist now: an association removed from the
        # repository must not keep reporting its last counts.
        # Each association reports the four rollout statuses (zero when none), so a new one,
        # or one waiting for its cron, is visible and `sum by (status)` sees every series.
        # An association placed in several locations has one overview each: its targets
        # add up (the labels name the association only).
        self.association_targets.clear()
        totals: dict[str, dict[str, int]] = {}
        for rollout in rollouts:
            reported = totals.setdefault(rollout.association, dict.fromkeys(ROLLOUT_STATUSES, 0))
            for status, count in rollout.counts.items():
                reported[status] = reported.get(status, 0) + count
        for association, reported in totals.items():
            for status, count in reported.items():
                self.association_targets.labels(association, status).set(count)

    def record_fetch(self, seconds: float, *, ok: bool) -> None:
        self.git_fetch_duration.observe(seconds)
        if not ok:
            self.git_fetch_failures_total.inc()

    def record_load(self, *, valid: bool) -> None:
        self.config_valid.set(1 if valid else 0)

    def record_pass_error(self, reason: Reason) -> None:
        """A failure outside a pass: a revision refused or not loaded, a checkout failed."""
        self.pass_errors_total.labels(reason.value).inc()

    def record_webhook(self, result: str) -> None:
        self.webhook_requests_total.labels(result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
