"""What `plan` and `apply` print, as tables of pass results."""

from __future__ import annotations

import pytest

from controller.reconcile.commands import apply_summary
from controller.reconcile.result import ActionRecord, ActionResult, PassOutcome, PassResult


def record(action: str, result: ActionResult = ActionResult.SUCCESS) -> ActionRecord:
    return ActionRecord("package", action, "agent", "123456789012", "us-east-1", result)


@pytest.mark.parametrize(
    ("outcome", "actions", "blocked", "expected"),
    [
        (
            PassOutcome.SUCCESS,
            [record("create"), record("share")],
            (),
            "Apply converged: 1 added, 1 changed",
        ),
        (PassOutcome.NO_CHANGE, [], (), "Apply converged: 0 added, 0 changed"),
        (
            PassOutcome.SUCCESS,
            [record("delete", ActionResult.BLOCKED)],
            ("delete package agent: over maxDeletes",),
            "Apply converged except 1 blocked deletion(s): 0 added, 0 changed, 0 destroyed",
        ),
        (
            PassOutcome.FAILURE,
            [record("add_version", ActionResult.FAILURE)],
            (),
            "Apply not converged: 0 added, 0 changed, 0 destroyed, 0 blocked, 1 failed",
        ),
    ],
)
def test_apply_summary(
    outcome: PassOutcome, actions: list[ActionRecord], blocked: tuple[str, ...], expected: str
) -> None:
    result = PassResult("abc", outcome, 0.0, 1.0, actions=tuple(actions), blocked=blocked)
    assert apply_summary(result).startswith(expected)
