"""The loop follows the rollouts a pass started, so `association_targets` and the status
page show them finishing without waiting for the next full resync (issue 7).

A real git repository and `GitSource`; the reconciler is scripted: each pass returns the next
PassResult of a story (what it did, and the association overviews it read).
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
    """A reconciler that plays back one PassResult per pass."""

    def __init__(self, results: list[PassResult]) -> None:
        self.results = results
        self.passes = 0

    def run_pass(
        self,
        repository: Any,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        result = self.results[min(self.passes, len(self.results) - 1)]
        self.passes += 1
        return result


def polls(
    tmp_path: Path, results: list[PassResult], times: list[float], *, dry_run: bool = False
) -> tuple[list[int], Metrics, StatusBoard]:
    """Commit once, then poll at each of `times`: the number of passes after each poll."""
    git = GitRepo(tmp_path / "repo")
    git.commit({"state.txt": "v1"}, "first")
    now = [0.0]
    story = Story(results)
    board = StatusBoard(Status(repo=str(git.path)))
    metrics = Metrics()
    loop = ControllerLoop(
        GitSource(str(git.path), cache_dir=tmp_path / "cache"),
        lambda root: object(),
        lambda _detect_only: story,
        board=board,
        metrics=metrics,
        dry_run=dry_run,
        clock=lambda: now[0],
    )
    counts = []
    for at in times:
        now[0] = at
        loop(POLL)
        counts.append(story.passes)
    return counts, metrics, board


CREATED = did(action("association", "create"), action("package", "create"))
STORIES: Mapping[str, tuple[list[PassResult], list[float], list[int]]] = {
    # created -> not reported yet -> running -> done: followed until done, then quiet
    "a new association, followed to its end": (
        [
            CREATED,
            did(rollouts=(rollout("Pending"),)),
            did(rollouts=(rollout("Pending", Pending=2, Success=1),)),
            did(rollouts=(rollout("Success", Success=3),)),
        ],
        [0, 5, 10, 15, 20, 25],
        [1, 2, 3, 4, 4, 4],
    ),
    "a new default version starts rollouts too": (
        [did(action("package", "set_default")), did(rollouts=(rollout("Failed", Failed=1),))],
        [0, 5, 10],
        [1, 2, 2],
    ),
    "an association waiting for its cron is followed for a while only": (
        [CREATED, did(rollouts=(rollout("Pending"),))],
        [0, 5, FOLLOW_SECONDS - 1, FOLLOW_SECONDS + 1, FOLLOW_SECONDS + 60],
        [1, 2, 3, 3, 3],
    ),
    "a pass that starts no rollout is not followed": (
        [did(action("package", "create"), rollouts=(rollout("Pending"),))],
        [0, 5, 10],
        [1, 1, 1],
    ),
    "targets reported running are followed even long after": (
        [did(rollouts=(rollout("Pending", InProgress=1),)), did(rollouts=(rollout("Success"),))],
        [0, 5000, 5005],
        [1, 2, 2],
    ),
}


@pytest.mark.parametrize("name", list(STORIES))
def test_rollouts_are_followed_poll_by_poll(tmp_path: Path, name: str) -> None:
    results, times, expected = STORIES[name]
    counts, _, _ = polls(tmp_path, results, times)
    assert counts == expected


def test_a_dry_run_does_not_follow_rollouts(tmp_path: Path) -> None:
    counts, _, _ = polls(tmp_path, [CREATED, did(rollouts=(rollout("Pending"),))], [0, 5, 10])
    assert counts == [1, 2, 3]
    dry, _, _ = polls(tmp_path / "dry", [CREATED], [0, 5, 10], dry_run=True)
    assert dry == [1, 1, 1]


def test_the_followed_rollout_reaches_the_metric_and_the_status(tmp_path: Path) -> None:
    results = [
        CREATED,
        did(rollouts=(rollout("Pending", InProgress=2, Success=1),)),
        did(rollouts=(rollout("Success", Success=3),)),
    ]
    _, metrics, board = polls(tmp_path, results, [0, 5, 10])
    sample = metrics.registry.get_sample_value(
        "ssm_gitops_association_targets", {"association": "web", "status": "Success"}
    )
    assert sample == 3
    running = metrics.registry.get_sample_value(
        "ssm_gitops_association_targets", {"association": "web", "status": "InProgress"}
    )
    assert running == 0  # the finished rollout no longer counts running targets
    last = board.get().last_pass
    assert last is not None and last.rollouts == (rollout("Success", Success=3),)


def test_an_association_that_has_not_run_is_shown_and_counted_at_zero(tmp_path: Path) -> None:
    results = [CREATED, did(rollouts=(rollout("Pending"),))]
    _, metrics, board = polls(tmp_path, results, [0, 5])
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
