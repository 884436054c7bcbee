"""The rollout tick after a rollout failed, was rolled back or is paused (issue 13 follow-up).

Bug (found on the demo): after a bad version was rolled back, every later pass reports the
lasting failure ("rollout of 6.11.0 failed at ring 1: too many targets failed", reason
`rollout`), so it is a FAILURE; the rollout tick (every 5 s) then ran a full pass whenever
anything counted as "in flight" (the rollback step itself, another package's bake), because
`worth_it` retried any failed pass at any tick; and the pass logged the same failure again
every time. At scale a full pass is thousands of AWS calls.

The real `ControllerLoop` on a real git repository; the reconciler is scripted. The clock is
simulated: a git poll at 0 s (then every 60 s), rollout ticks every 5 s as
`Service._rollout_tick` makes them (`rollout_in_flight` -> a "rollout" request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    PassOutcome,
    PassResult,
    Reason,
    RolloutStatus,
)
from controller.repository import Repository
from controller.runtime.loop import ControllerLoop
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import PassRequest
from controller.runtime.status import Status, StatusBoard
from controller.source import GitSource
from tests.runtime.gitrepo import GitRepo

POLL = PassRequest(frozenset({"poll"}))
TICK = PassRequest(frozenset({"rollout"}))
RESYNC = PassRequest(frozenset({"resync"}), full_resync=True)
FAILED = "rollout of 6.11.0 failed at ring 1: too many targets failed"


def status(package: str, state: str, *, moving: bool = False) -> RolloutStatus:
    return RolloutStatus(
        package,
        "123456789012",
        "us-east-1",
        state,
        0,
        (("canary",), ("prod",)),
        "6.10.0",
        target="6.11.0",
        previous="6.10.0",
        failure=FAILED if state in ("failed", "rolled_back") else "",
        moving=moving,
    )


def step(package: str) -> ActionRecord:
    """A rollout step the pass applied (the rollback's re-pin, a pause)."""
    return ActionRecord(
        "package", "rollout", package, "123456789012", "us-east-1", ActionResult.SUCCESS
    )


def result(
    *progressive: RolloutStatus, actions: tuple[ActionRecord, ...] = (), failure: str = ""
) -> PassResult:
    failures = (Failure(Reason.ROLLOUT, failure),) if failure else ()
    # As the reconciler reports it: a failed rollout is a lasting state, not a failed pass.
    outcome = PassOutcome.SUCCESS if actions else PassOutcome.NO_CHANGE
    return PassResult(
        "", outcome, 0.0, 1.0, actions=actions, failures=failures, progressive=progressive
    )


class Scripted:
    """A reconciler: the first pass returns `first`, every later one `then`; the rollout
    reads between passes say nothing is due."""

    def __init__(self, first: PassResult, then: PassResult) -> None:
        self.first, self.then = first, then
        self.passes = 0
        self.reads = 0

    def run_pass(
        self,
        repository: Any,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        self.passes += 1
        return self.first if self.passes == 1 else self.then

    def rollout_due(self) -> tuple[bool, Mapping[tuple[str, str], int]]:
        self.reads += 1
        return False, {("DescribeAssociationExecutions", "success"): 1}

    def read_rollouts(self, repository: Any) -> tuple[tuple[Any, ...], dict[Any, int]]:
        return (), {}

    def stop(self) -> None:
        pass


def run(
    tmp_path: Path,
    first: PassResult,
    then: PassResult,
    *,
    until: float = 20.0,
    every_minute: PassRequest = POLL,
) -> tuple[Scripted, StatusBoard, Metrics]:
    """A poll at 0 (the pass that failed / rolled back / paused), then the rollout ticks
    every 5 s up to `until`, and `every_minute` (a git poll) every 60 s."""
    git = GitRepo(tmp_path / "repo")
    git.commit({"state.txt": "v1"}, "first")
    now = [0.0]
    reconciler = Scripted(first, then)
    board = StatusBoard(Status(repo=str(git.path)))
    metrics = Metrics()
    loop = ControllerLoop(
        GitSource(str(git.path), cache_dir=tmp_path / "cache"),
        lambda root: Repository(root=root),
        lambda _detect_only: reconciler,
        board=board,
        metrics=metrics,
        clock=lambda: now[0],
    )
    loop(POLL)
    at = 5.0
    while at <= until:
        now[0] = at
        if at % 60 == 0:
            loop(every_minute)
        if loop.rollout_in_flight():  # Service._rollout_tick
            loop(TICK)
        at += 5.0
    return reconciler, board, metrics


ROLLED_BACK = result(status("agent", "rolled_back"), actions=(step("agent"),), failure=FAILED)
STAYS_ROLLED_BACK = result(status("agent", "rolled_back"), failure=FAILED)


def test_a_rollback_costs_no_pass_at_the_rollout_ticks(tmp_path: Path) -> None:
    """Bug: the rollback step counted as a rollout in flight, and the failed pass was
    retried at the next tick (a full pass) although nothing more was to be done."""
    reconciler, board, metrics = run(tmp_path, ROLLED_BACK, STAYS_ROLLED_BACK)
    assert reconciler.passes == 1  # the pass that rolled back; no tick asked for another
    # the failure stays on /status and in the metrics
    last = board.get().last_pass
    assert last is not None and last.outcome is not PassOutcome.FAILURE
    assert [f.message for f in last.failures] == [FAILED]
    value = metrics.registry.get_sample_value(
        "ssm_gitops_rollout_state", {"package": "agent", "state": "rolled_back"}
    )
    assert value == 1
    errors = metrics.registry.get_sample_value(
        "ssm_gitops_pass_errors_total", {"reason": "rollout"}
    )
    assert errors == 1


@pytest.mark.parametrize("state", ["failed", "rolled_back", "paused"])
def test_a_settled_rollout_is_not_in_flight(tmp_path: Path, state: str) -> None:
    """Bug: the step that halted, rolled back or paused a rollout kept the tick asking."""
    failure = FAILED if state != "paused" else ""
    first = result(status("agent", state), actions=(step("agent"),), failure=failure)
    then = result(status("agent", state), failure=failure)
    reconciler, _, _ = run(tmp_path, first, then)
    assert reconciler.passes == 1
    assert reconciler.reads == 0  # not even the ring is read again


def test_another_rollout_baking_does_not_turn_the_failure_into_a_pass_every_tick(
    tmp_path: Path,
) -> None:
    """Bug: with one package rolled back (every pass a FAILURE) and another baking, every
    rollout tick ran a full pass: `worth_it` retried the failed pass at each tick."""
    both = result(
        status("agent", "rolled_back"), status("other", "baking", moving=True), failure=FAILED
    )
    reconciler, _, metrics = run(tmp_path, both, both, until=55.0)
    assert reconciler.passes == 1  # 11 ticks: only the baking ring was read again
    assert reconciler.reads == 11
    calls = metrics.registry.get_sample_value(
        "ssm_gitops_aws_api_calls_total",
        {"operation": "DescribeAssociationExecutions", "result": "success"},
    )
    assert calls == 11


def test_the_git_poll_still_retries_a_failed_pass_once_per_interval(tmp_path: Path) -> None:
    failed = PassResult(
        "", PassOutcome.FAILURE, 0.0, 1.0, failures=(Failure(Reason.APPLY, "throttled"),)
    )
    reconciler, _, _ = run(tmp_path, failed, failed, until=180.0)
    assert reconciler.passes == 4  # at 0, 60, 120 and 180 s: the polls, none of the 36 ticks


def test_a_rolled_back_rollout_is_no_failed_pass_for_the_poll_to_retry(tmp_path: Path) -> None:
    """A failed rollout lasts until the repository names another version: it is reported,
    but the pass is no failure, so the polls do not run a pass each (nor page on it)."""
    reconciler, _, _ = run(tmp_path, ROLLED_BACK, STAYS_ROLLED_BACK, until=180.0)
    assert reconciler.passes == 1


def test_a_lasting_rollout_failure_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bug: every pass logged "pass failure" and the same rollout failure again."""
    with caplog.at_level(logging.INFO):
        run(tmp_path, ROLLED_BACK, STAYS_ROLLED_BACK, until=180.0, every_minute=RESYNC)
    said = [r for r in caplog.records if FAILED in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    passes = [r for r in caplog.records if r.getMessage().startswith("pass ")]
    assert len(passes) == 4  # the first pass and the 3 resyncs
    assert all(r.levelno == logging.INFO for r in passes)


def test_a_changed_rollout_failure_is_logged_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = "rollout of 6.12.0 failed at ring 2: an alarm was in ALARM"
    with caplog.at_level(logging.INFO):
        run(
            tmp_path,
            ROLLED_BACK,
            result(status("agent", "rolled_back"), failure=other),
            until=120.0,
            every_minute=RESYNC,
        )
    assert len([r for r in caplog.records if FAILED in r.getMessage()]) == 1
    assert len([r for r in caplog.records if other in r.getMessage()]) == 1
