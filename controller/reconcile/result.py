"""What one reconcile pass reports: the values shared by the CLI, `/status` and the metrics.

The enums here are exactly the metric labels and the `/status` fields (contract: Metrics),
so a state shown in one place is spelled the same in the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class ResourceState(StrEnum):
    """`ssm_gitops_resources{state}`: how a desired resource compares with live SSM."""

    IN_SYNC = "in_sync"
    DRIFTED = "drifted"
    FAILED = "failed"


class ActionResult(StrEnum):
    """`ssm_gitops_actions_total{result}`."""

    SUCCESS = "success"
    FAILURE = "failure"
    BLOCKED = "blocked"  # a deletion held back by the safety rules (maxDeletes, empty set)
    SKIPPED = "skipped"  # dry run, suspend, or `ssm-gitops/reconcile: disabled`


class PassOutcome(StrEnum):
    """`ssm_gitops_reconcile_total{result}`."""

    SUCCESS = "success"
    FAILURE = "failure"
    NO_CHANGE = "no_change"


@dataclass(frozen=True)
class ResourceStatus:
    """One desired or owned resource after a pass (a row of `/status`)."""

    kind: str  # "package" | "association"
    name: str
    account: str
    region: str
    state: ResourceState
    message: str = ""  # why it drifted or failed; empty when in sync

    def to_json(self) -> dict[str, str]:
        """The JSON form shared by `plan -o json`, `apply -o json` and `/status`."""
        return {
            "kind": self.kind,
            "name": self.name,
            "account": self.account,
            "region": self.region,
            "state": self.state.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class ActionRecord:
    """One action the pass applied (or would apply, in a dry run), as logged and counted."""

    kind: str  # "package" | "association"
    action: str  # create, add_version, set_default, share, unshare, update, delete, ...
    name: str
    account: str
    region: str
    result: ActionResult
    message: str = ""
    duration_seconds: float = 0.0

    def to_json(self) -> dict[str, str | float]:
        """The JSON form shared by `apply --json` and `/status`."""
        return {
            "kind": self.kind,
            "action": self.action,
            "name": self.name,
            "account": self.account,
            "region": self.region,
            "result": self.result.value,
            "message": self.message,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@dataclass(frozen=True)
class Rollout:
    """An association's rollout, from the association overview (`association_targets`)."""

    association: str
    status: str  # the overview's Status: Pending, InProgress, Success, Failed
    counts: Mapping[str, int] = field(default_factory=dict)  # AssociationStatusAggregatedCount


@dataclass(frozen=True)
class PassResult:
    """Everything one pass did and found."""

    revision: str
    outcome: PassOutcome
    started_at: float  # unix seconds
    finished_at: float
    resources: tuple[ResourceStatus, ...] = ()
    actions: tuple[ActionRecord, ...] = ()
    blocked: tuple[str, ...] = ()  # deletions held back, one readable line each
    errors: tuple[str, ...] = ()  # one line each: path:line:col: message, or the AWS error
    api_calls: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (operation, result)
    rollouts: tuple[Rollout, ...] = ()

    @property
    def duration_seconds(self) -> float:
        return self.finished_at - self.started_at
