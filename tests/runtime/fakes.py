"""Stand-ins for the reconcile side, for tests of the controller loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.reconcile.result import ActionRecord, PassOutcome, PassResult


class RevisionRecorder:
    """Stands in for the reconciler (the loop's `Reconciling`): every pass succeeds and
    records which revision it reconciled."""

    def __init__(self, revisions: list[str]) -> None:
        self.revisions = revisions

    def stop(self) -> None:
        pass

    def read_rollouts(self, repository: Any) -> tuple[tuple[Any, ...], dict[Any, int]]:
        return (), {}

    def run_pass(
        self,
        repository: Any,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        self.revisions.append(revision)
        return PassResult(revision, PassOutcome.SUCCESS, 1.0, 2.0)
