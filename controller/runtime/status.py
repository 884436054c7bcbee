"""What the controller knows right now, as one immutable snapshot: `/status`, `/` and `/readyz`.

Sits beside the metrics at the end of the pipeline: the loop replaces the snapshot after each
fetch, load and pass (`StatusBoard.update`), and the HTTP handlers read it without locking
out the loop. `to_json()` is the documented `/status` document (docs/controller.md).

Everything wrong is kept as typed `Failure`s (controller/reconcile/result.py): the load's,
the last git fetch's and the last pass's. `/status` shows their parts as fields and the
page lays them out; the one-line text (`Status.errors`) is for logs and the demo only.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

from controller.reconcile.result import Failure, PassResult, ResourceState


@dataclass(frozen=True)
class Commit:
    """A git commit as people recognise it."""

    commit: str
    message: str = ""
    author: str = ""
    time: float = 0.0

    @property
    def short(self) -> str:
        return self.commit[:12]

    @property
    def subject(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""


@dataclass(frozen=True)
class Status:
    """One consistent picture of the controller."""

    repo: str
    ref: str | None = None
    path: str = "."
    owner: str = "ssm-gitops"
    dry_run: bool = False  # --dry-run
    suspended: bool = False  # Settings.spec.suspend of the applied revision
    started_at: float = 0.0
    fetched: Commit | None = None  # the newest commit seen in git
    applied: Commit | None = None  # the last revision that loaded: what passes reconcile
    # Why `fetched` did not load (empty: it did): reason load, or signature when
    # --verify-signatures refused it.
    config_failures: tuple[Failure, ...] = ()
    # The last fetch's or checkout's failure (reason source); None once one succeeds.
    git_failure: Failure | None = None
    last_pass: PassResult | None = None
    pass_running: bool = False
    passes: int = 0

    @property
    def ready(self) -> bool:
        """Ready after the first completed pass (contract: HTTP)."""
        return self.last_pass is not None

    @property
    def config_valid(self) -> bool:
        return not self.config_failures

    @property
    def config_errors(self) -> tuple[str, ...]:
        """`config_failures`, one line each."""
        return tuple(str(failure) for failure in self.config_failures)

    @property
    def git_error(self) -> str:
        """`git_failure` as one line; empty when the last fetch succeeded."""
        return "" if self.git_failure is None else str(self.git_failure)

    @property
    def mode(self) -> str:
        if self.dry_run:
            return "dry-run"
        return "suspended" if self.suspended else "apply"

    @property
    def failures(self) -> tuple[Failure, ...]:
        """Everything wrong right now, most actionable first: the revision that does not
        load, then git, then the last pass."""
        found = list(self.config_failures)
        if self.git_failure is not None:
            found.append(self.git_failure)
        if self.last_pass is not None:
            found.extend(self.last_pass.failures)
        return tuple(found)

    @property
    def errors(self) -> tuple[str, ...]:
        """`failures`, one line each (logs, the demo's summary)."""
        return tuple(str(failure) for failure in self.failures)


def _commit_json(commit: Commit | None) -> dict[str, Any] | None:
    if commit is None:
        return None
    return dataclasses.asdict(commit)


def to_json(status: Status) -> dict[str, Any]:
    """The `/status` document."""
    last = status.last_pass
    return {
        "repo": status.repo,
        "ref": status.ref,
        "path": status.path,
        "owner": status.owner,
        "mode": status.mode,
        "ready": status.ready,
        "config_valid": status.config_valid,
        "revision": _commit_json(status.applied),
        "fetched": _commit_json(status.fetched),
        "pass_running": status.pass_running,
        "passes": status.passes,
        "errors": [failure.to_json() for failure in status.failures],
        "last_pass": None
        if last is None
        else {
            "revision": last.revision,
            "result": last.outcome.value,
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "duration_seconds": round(last.duration_seconds, 3),
            "actions": [a.to_json() for a in last.actions],
            "errors": list(last.errors),
        },
        "resources": [] if last is None else [r.to_json() for r in last.resources],
        "blocked_prunes": [] if last is None else list(last.blocked),
        "rollouts": []
        if last is None
        else [
            {
                "association": r.association,
                "account": r.account,
                "region": r.region,
                "status": r.status,
                "counts": dict(r.counts),
            }
            for r in last.rollouts
        ],
        # Instances two associations of one package fight over (observe/overlap.py).
        "overlaps": [] if last is None else [o.to_json() for o in last.overlaps],
        # Organisations (issue 15): how many locations were read, and each one that was not.
        "locations": None
        if last is None or not last.locations
        else {
            "ok": sum(1 for location in last.locations if location.up),
            "unreadable": [location.to_json() for location in last.locations if not location.up],
        },
        # Progressive rollouts (issue 13): per package, the versions, the live default,
        # the rings with the current ring's targets, the bake, the failure.
        "packages": [] if last is None else [r.to_json() for r in last.progressive],
    }


def state_counts(status: Status) -> dict[str, int]:
    """How many resources are in each state after the last pass."""
    counts = {state.value: 0 for state in ResourceState}
    if status.last_pass is not None:
        for resource in status.last_pass.resources:
            counts[resource.state.value] += 1
    return counts


class StatusBoard:
    """The current `Status`, replaced whole under a lock so readers never see half an update."""

    def __init__(self, initial: Status) -> None:
        self._lock = threading.Lock()
        self._status = initial

    def get(self) -> Status:
        with self._lock:
            return self._status

    def update(self, **changes: Any) -> Status:
        with self._lock:
            self._status = dataclasses.replace(self._status, **changes)
            return self._status
