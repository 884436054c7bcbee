"""The loop follows the rollouts a pass started, so `association_targets` and the status
page show them finishing without waiting for the next full resync (issue 7).

A real git repository and `GitSource`; the reconciler is scripted: each pass returns the next
PassResult of a story, each overview read (`read_rollouts`) the next rollouts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    PassOutcome,
    PassResult,
    ResourceState,
    ResourceStatus,
    Rollout,
)
from controller.repository import Repository
from controller.runtime import page
from controller.runtime.loop import FOLLOW_SECONDS, ControllerLoop
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import PassRequest
from controller.runtime.status import Status, StatusBoard
from controller.source import GitSource
from tests.runtime.gitrepo import GitRepo

POLL = PassRequest(frozenset({"poll"}))


def action(kind: str, verb: str) -> ActionRecord:
    return ActionRecord(kind, verb, "x", "123456789012", "us-east-1", ActionResult.SUCCESS)


def rollout(status: str, **counts: int) -> Rollout:
    return Rollout("web", status, dict(counts))


def did(*actions: ActionRecord, rollouts: tuple[Rollout, ...] = ()) -> PassResult:
    outcome = PassOutcome.SUCCESS if actions else PassOutcome.NO_CHANGE
    return PassResult("", outcome, 0.0, 1.0, actions=actions, rollouts=rollouts)


class Story:
    """A reconciler that plays back one PassResult per pass and one read per overview read."""

    def __init__(self, results: list[PassResult], reads: list[tuple[Rollout, ...]]) -> None:
        self.results, self.reads = results, reads
        self.events: list[str] = []

    def run_pass(
        self,
        repository: Any,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        passes = self.events.count("pass")
        self.events.append("pass")
        return self.results[min(passes, len(self.results) - 1)]

    def read_rollouts(
        self, repository: Any
    ) -> tuple[tuple[Rollout, ...], dict[tuple[str, str], int]]:
        reads = self.events.count("read")
        self.events.append("read")
        return self.reads[min(reads, len(self.reads) - 1)], {("ListAssociations", "success"): 1}


def polls(
    tmp_path: Path,
    results: list[PassResult],
    reads: list[tuple[Rollout, ...]],
    times: list[float],
    *,
    dry_run: bool = False,
) -> tuple[list[str], Metrics, StatusBoard]:
    """Commit once, then poll at each of `times`: what each poll did ("pass", "read", "-")."""
    git = GitRepo(tmp_path / "repo")
    git.commit({"state.txt": "v1"}, "first")
    now = [0.0]
    story = Story(results, reads)
    board = StatusBoard(Status(repo=str(git.path)))
    metrics = Metrics()
    loop = ControllerLoop(
        GitSource(str(git.path), cache_dir=tmp_path / "cache"),
        lambda root: Repository(root=root),
        lambda _detect_only: story,
        board=board,
        metrics=metrics,
        dry_run=dry_run,
        clock=lambda: now[0],
    )
    done = []
    for at in times:
        now[0] = at
        before = len(story.events)
        loop(POLL)
        done.append(story.events[-1] if len(story.events) > before else "-")
    return done, metrics, board


CREATED = did(action("association", "create"), action("package", "create"))
STORIES: Mapping[
    str, tuple[list[PassResult], list[tuple[Rollout, ...]], list[float], list[str]]
] = {
    # created -> not reported yet -> running -> done: followed until done, then quiet
    "a new association, followed to its end": (
        [CREATED],
        [
            (rollout("Pending"),),
            (rollout("Pending", Pending=2, Success=1),),
            (rollout("Success", Success=3),),
        ],
        [0, 5, 10, 15, 20, 25],
        ["pass", "read", "read", "read", "-", "-"],
    ),
    "a new default version starts rollouts too": (
        [did(action("package", "set_default"))],
        [(rollout("Failed", Failed=1),)],
        [0, 5, 10],
        ["pass", "read", "-"],
    ),
    "an association waiting for its cron is followed for a while only": (
        [CREATED],
        [(rollout("Pending"),)],
        [0, 5, FOLLOW_SECONDS - 1, FOLLOW_SECONDS + 1, FOLLOW_SECONDS + 60],
        ["pass", "read", "read", "-", "-"],
    ),
    "a pass that starts no rollout is not followed": (
        [did(action("package", "create"), rollouts=(rollout("Pending"),))],
        [(rollout("Pending"),)],
        [0, 5, 10],
        ["pass", "-", "-"],
    ),
    "targets a pass saw running are followed even long after": (
        [did(rollouts=(rollout("Pending", InProgress=1),))],
        [(rollout("Success", Success=1),)],
        [0, 5000, 5005],
        ["pass", "read", "-"],
    ),
}


@pytest.mark.parametrize("name", list(STORIES))
def test_rollouts_are_followed_poll_by_poll(tmp_path: Path, name: str) -> None:
    results, reads, times, expected = STORIES[name]
    done, _, _ = polls(tmp_path, results, reads, times)
    assert done == expected


def test_a_dry_run_does_not_follow_rollouts(tmp_path: Path) -> None:
    reads = [(rollout("Pending"),)]
    done, _, _ = polls(tmp_path, [CREATED], reads, [0, 5, 10])
    assert done == ["pass", "read", "read"]
    dry, _, _ = polls(tmp_path / "dry", [CREATED], reads, [0, 5, 10], dry_run=True)
    assert dry == ["pass", "-", "-"]


def test_the_followed_rollout_reaches_the_metric_and_the_status(tmp_path: Path) -> None:
    reads = [(rollout("Pending", InProgress=2, Success=1),), (rollout("Success", Success=3),)]
    _, metrics, board = polls(tmp_path, [CREATED], reads, [0, 5, 10])

    def targets(status: str) -> float | None:
        return metrics.registry.get_sample_value(
            "ssm_gitops_association_targets", {"association": "web", "status": status}
        )

    assert targets("Success") == 3
    assert targets("InProgress") == 0  # the finished rollout no longer counts running targets
    status = board.get()
    assert status.passes == 1  # reading overviews is not a pass: the last pass stays the one
    assert status.last_pass is not None and status.last_pass.outcome is PassOutcome.SUCCESS
    assert status.last_pass.rollouts == (rollout("Success", Success=3),)
    calls = metrics.registry.get_sample_value(
        "ssm_gitops_aws_api_calls_total",
        {"operation": "ListAssociations", "result": "success"},
    )
    assert calls == 2  # the reads' AWS calls are counted


def test_an_association_that_has_not_run_is_shown_and_counted_at_zero(tmp_path: Path) -> None:
    _, metrics, board = polls(tmp_path, [CREATED], [(rollout("Pending"),)], [0, 5])
    for status in ("Success", "Failed", "Pending", "InProgress"):
        value = metrics.registry.get_sample_value(
            "ssm_gitops_association_targets", {"association": "web", "status": status}
        )
        assert value == 0, status
    last = board.get().last_pass
    assert last is not None
    web = ResourceStatus("association", "web", "123456789012", "us-east-1", ResourceState.IN_SYNC)
    rendered = page.render(replace(board.get(), last_pass=replace(last, resources=(web,))))
    assert "Pending" in rendered and "no target has run yet" in rendered
