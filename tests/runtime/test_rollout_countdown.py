"""The bake's countdown on `/status` and the page between passes (issue 13).

Found running the README walkthrough on the demo: while a ring baked, `/status` said
`bakeRemainingSeconds: 25` and `ring 1: baking, 25s left` for 25 seconds (the rollout tick
reads the ring between passes but runs no pass while nothing is due, and the numbers were
the last pass's)."""

from __future__ import annotations

import time

from controller.reconcile.result import PassOutcome, PassResult, RolloutStatus
from controller.runtime.page import _rollouts_card


def _baking(deadline: float, remaining: float) -> RolloutStatus:
    return RolloutStatus(
        package="agent",
        account="123456789012",
        region="us-east-1",
        state="baking",
        ring=0,
        rings=(("canary",), ("prod",)),
        live_default="1.0",
        target="2.0",
        deadline=deadline,
        bake_remaining=remaining,
        step="ring 1: baking until 04:25:22 UTC",
    )


def test_the_bake_counts_down_between_passes() -> None:
    """The pass that saw the ring baking left 50 s; 20 s later /status says 30, not 50."""
    status = _baking(time.time() + 30, 50)
    assert 29 <= status.to_json()["bakeRemainingSeconds"] <= 30  # type: ignore[operator]
    card = _rollouts_card(PassResult("r1", PassOutcome.SUCCESS, 0, 0, progressive=(status,)))
    assert "bake: 30s left" in card or "bake: 29s left" in card, card
    over = _baking(time.time() - 5, 50)
    assert over.to_json()["bakeRemainingSeconds"] == 0
