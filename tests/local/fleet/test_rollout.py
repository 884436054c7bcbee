"""Rate control, targets and schedules: pure tables and a real thread pool."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from controller.local.fleet.rollout import (
    RateControl,
    RateControlError,
    TargetOutcome,
    TargetStatus,
    parse_limit,
    run_rollout,
)
from controller.local.fleet.schedule import ManualClock, Schedule, ScheduleError, SystemClock
from controller.local.fleet.targets import resolve_targets

IDS = [f"i-{n:017x}" for n in range(8)]


def _runner(failing: set[str], delay: float = 0.0):  # type: ignore[no-untyped-def]
    state = {"running": 0, "peak": 0, "started": []}
    lock = threading.Lock()

    def run(instance_id: str) -> TargetOutcome:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
            state["started"].append(instance_id)
        time.sleep(delay)
        with lock:
            state["running"] -= 1
        status = TargetStatus.FAILED if instance_id in failing else TargetStatus.SUCCESS
        return TargetOutcome(instance_id, status, str(status))

    return run, state


@pytest.mark.parametrize(
    ("text", "total", "at_least_one", "expected"),
    [
        ("3", 8, True, 3),
        ("25%", 8, True, 2),
        ("10%", 8, True, 1),  # rounded down, at least one at a time
        ("10%", 8, False, 0),  # MaxErrors 10% of 8: the first error stops
        ("10%", 50, False, 5),  # the docs' example: stops at the sixth error
        ("100%", 8, True, 8),
        (None, 8, True, None),
    ],
)
def test_parse_limit(text: str | None, total: int, at_least_one: bool, expected: int) -> None:
    assert parse_limit(text, total, at_least_one=at_least_one) == expected


@pytest.mark.parametrize("text", ["-1", "ten", "150%", "5.5"])
def test_bad_limits(text: str) -> None:
    with pytest.raises(RateControlError):
        parse_limit(text, 8, at_least_one=True)


def test_max_concurrency_bounds_the_instances_running_at_once() -> None:
    run, state = _runner(set(), delay=0.05)
    outcomes = run_rollout(IDS, run, RateControl(max_concurrency="2"))
    assert [o.status for o in outcomes] == [TargetStatus.SUCCESS] * 8
    assert state["peak"] == 2


def test_max_errors_stops_new_instances_and_skips_the_rest() -> None:
    run, state = _runner({IDS[1], IDS[2]})
    changes: list[tuple[str, TargetStatus]] = []
    outcomes = run_rollout(
        IDS,
        run,
        RateControl(max_concurrency="1", max_errors="1"),
        on_change=lambda iid, status, _outcome: changes.append((iid, status)),
    )
    statuses = [o.status for o in outcomes]
    # the second error (IDS[2]) exceeds MaxErrors=1: nothing after it starts
    assert (
        statuses
        == [TargetStatus.SUCCESS, TargetStatus.FAILED, TargetStatus.FAILED]
        + [TargetStatus.SKIPPED] * 5
    )
    assert state["started"] == IDS[:3]
    assert "MaxErrors (1) was exceeded with 2 errors" in outcomes[-1].output
    assert changes[:8] == [(iid, TargetStatus.PENDING) for iid in IDS]
    assert (IDS[0], TargetStatus.IN_PROGRESS) in changes
    assert changes[-1] == (IDS[7], TargetStatus.SKIPPED)


def test_max_errors_zero_stops_at_the_first_error() -> None:
    run, state = _runner({IDS[0]})
    outcomes = run_rollout(IDS, run, RateControl("1", "0"), not_started=TargetStatus.CANCELLED)
    assert [o.status for o in outcomes][1:] == [TargetStatus.CANCELLED] * 7
    assert len(state["started"]) == 1


def test_a_crashing_instance_is_that_instance_failing() -> None:
    def run(instance_id: str) -> TargetOutcome:
        raise RuntimeError("boom")

    outcomes = run_rollout(IDS[:2], run, RateControl())
    assert {o.status for o in outcomes} == {TargetStatus.FAILED}
    assert "boom" in outcomes[0].output


TAGS = {
    "i-1": {"env": "prod", "ring": "0"},
    "i-2": {"env": "prod", "ring": "1"},
    "i-3": {"env": "staging", "ring": "0"},
    "i-4": {},
}


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ([{"Key": "InstanceIds", "Values": ["*"]}], ("i-1", "i-2", "i-3", "i-4")),
        ([{"Key": "InstanceIds", "Values": ["i-2", "i-9"]}], ("i-2",)),
        ([{"Key": "tag:env", "Values": ["prod"]}], ("i-1", "i-2")),
        ([{"Key": "tag:ring", "Values": ["0", "1"]}], ("i-1", "i-2", "i-3")),  # OR in a key
        (
            [{"Key": "tag:env", "Values": ["prod"]}, {"Key": "tag:ring", "Values": ["0"]}],
            ("i-1",),
        ),  # AND across keys
        ([{"Key": "tag-key", "Values": ["ring"]}], ("i-1", "i-2", "i-3")),
        ([{"Key": "resource-groups:Name", "Values": ["web"]}], ()),
        ([], ()),
    ],
)
def test_resolve_targets(targets: list[dict[str, object]], expected: tuple[str, ...]) -> None:
    assert resolve_targets(targets, TAGS) == expected


NOW = datetime(2026, 1, 5, 12, 7, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(30 minutes)", NOW + timedelta(minutes=30)),
        ("rate(1 hour)", NOW + timedelta(hours=1)),
        ("rate(2 days)", NOW + timedelta(days=2)),
        ("cron(0 2 ? * SUN *)", datetime(2026, 1, 11, 2, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 1, 5, 12, 15, tzinfo=UTC)),
        ("cron(0 0 ? * MON-FRI *)", datetime(2026, 1, 6, 0, 0, tzinfo=UTC)),
        ("cron(30 23 ? * TUE#3 *)", datetime(2026, 1, 20, 23, 30, tzinfo=UTC)),
        ("cron(0 6 L * ? *)", datetime(2026, 1, 31, 6, 0, tzinfo=UTC)),
        ("cron(0 0 12 ? * 2 *)", datetime(2026, 1, 12, 12, 0, tzinfo=UTC)),  # seconds field
        ("cron(0 10 * * ?)", datetime(2026, 1, 6, 10, 0, tzinfo=UTC)),  # five fields
        ("at(2026-02-01T00:00:00)", datetime(2026, 2, 1, tzinfo=UTC)),
        ("at(2025-02-01T00:00:00)", None),
    ],
)
def test_next_run(expression: str, expected: datetime | None) -> None:
    assert Schedule.parse(expression).next_after(NOW) == expected


def test_rate_counts_from_the_last_run() -> None:
    schedule = Schedule.parse("rate(30 minutes)")
    last = NOW - timedelta(minutes=40)
    assert schedule.next_after(NOW, last_run=last) == last + timedelta(minutes=60)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 2 * * SUN *)",
        "cron(1 2 3)",
        "cron(99 * * * ? *)",
        "every day",
    ],
)
def test_bad_schedules(expression: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(expression)


def test_clocks() -> None:
    clock = ManualClock(NOW)
    assert clock.advance(timedelta(hours=1)) == NOW + timedelta(hours=1) == clock.now()
    fast = SystemClock(speed=3600)
    first = fast.now()
    time.sleep(0.01)
    assert fast.now() - first >= timedelta(seconds=30)
