"""What one reconcile pass reports: the values shared by the CLI, `/status` and the metrics.

Sits at the end of the pipeline (`record(result)`): the reconciler returns a `PassResult`,
the runtime loop adds the failures of the stages before it (git, load), and `/status`, the
status page, the logs and the metrics all read these values. The enums here are exactly the
metric labels and the `/status` fields (contract: Metrics), so a state or a failure reason
shown in one place is spelled the same in the others.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from controller.model.state import Location


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


class Reason(StrEnum):
    """Why a revision, a pass or a resource failed: `ssm_gitops_pass_errors_total{reason}`
    and the `reason` of every `/status` error (contract: Metrics, "the same word /status
    shows"). A fixed set, one per stage that can fail, in pipeline order, as
    kustomize-controller gives each stage its own reason (`ArtifactFailed`, `BuildFailed`,
    ...). docs/controller.md has the table: what each means and where to look next.
    """

    SOURCE = "source"  # git fetch, checkout or cache failed: retried, the commit is not blamed
    SIGNATURE = "signature"  # --verify-signatures refused the head commit
    LOAD = "load"  # the revision's content does not load (YAML, schema, cross-checks)
    BUILD = "build"  # a package version could not be built (zips, manifest)
    ARTIFACTS = "artifacts"  # the artifacts bucket cannot be used, or a zip is not git's
    OBSERVE = "observe"  # the live state could not be read (completely)
    PLAN_REJECTED = "plan_rejected"  # the plan refused a change (immutable version, conflict)
    APPLY = "apply"  # an action's AWS call failed
    LOCATION = "location"  # a location (account, region) or an OU of Settings could not be read
    ROLLOUT = "rollout"  # a progressive rollout's gate failed (issue 13; docs/rollouts.md)
    INTERNAL = "internal"  # a bug or exhaustion escaped a stage (the log has the traceback)


@dataclass(frozen=True)
class Failure:
    """One thing that went wrong, with its reason and, where there is one, its place: a file
    position in the repository (load) or a resource in AWS (plan, apply).

    `str()` is the one line the logs, the CLI and `Status.errors` show (`path:line:col:
    message`, `kind name action (account/region): message`, or the message alone); `/status`
    shows the parts as fields (`to_json`), so no reader parses the line back.
    """

    reason: Reason
    message: str  # what is wrong and what to do, without the place
    path: str = ""  # a file of the revision, relative to the repository root
    line: int = 0  # 1-based; 0 when the problem has no position inside the file
    col: int = 0  # 1-based
    kind: str = ""  # the resource that failed: "package" | "association"; empty if none
    name: str = ""
    action: str = ""  # the action that failed (apply): create, update, delete, ...
    location: Location | None = None  # where the resource (or the unread state) lives

    @property
    def where(self) -> str:
        """The place, as the one-line form starts: a file position, a resource or a
        location; empty when the failure has none."""
        if self.path:
            # As SpecError prints it: no `:0:0` for a problem without a position.
            return f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        if self.name:
            text = f"{self.kind} {self.name}"
            if self.action:
                text += f" {self.action}"
            return f"{text} ({self.location})" if self.location is not None else text
        return "" if self.location is None else str(self.location)

    def __str__(self) -> str:
        where = self.where
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, str | int | None]:
        """One entry of `/status` `errors`: the line as `text`, and its parts as fields
        (null where the failure has no such part)."""
        return {
            "text": str(self),
            "reason": self.reason.value,
            "message": self.message,
            "file": self.path or None,
            "line": self.line or None,
            "col": self.col or None,
            "kind": self.kind or None,
            "name": self.name or None,
            "action": self.action or None,
            "account": None if self.location is None else self.location.account,
            "region": None if self.location is None else self.location.region,
        }


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
    reason: Reason | None = None  # of a FAILURE: apply, or artifacts (a zip is not git's)
    # (kind, account, region, name) of each resource whose CloudTrail change event this
    # action causes, when that is not just the action's own resource: a rollout step tags
    # the document and pins the ring's associations, possibly in other accounts; () when it
    # makes no recorded change (StartAssociationsOnce only: not an event drift events ask
    # for). The drift-events path recognises these events as its own (runtime/events.py).
    changed: tuple[tuple[str, str, str, str], ...] | None = None

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
    # Where this overview was read: an association placed in several locations has one each.
    account: str = ""
    region: str = ""


@dataclass(frozen=True)
class Overlap:
    """One instance targeted by two or more associations of one package that install
    different versions: it flips between them on every run (reconcile/observe/overlap.py)."""

    package: str
    instance_id: str
    location: Location
    installs: tuple[tuple[str, str], ...]  # sorted (association name, version it installs)

    def __str__(self) -> str:
        who = ", ".join(f"{version} by {name}" for name, version in self.installs)
        return (
            f"{self.instance_id} ({self.location.account}/{self.location.region}) gets "
            f"{self.package} {who}: it flips between them on every run"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "package": self.package,
            "instance": self.instance_id,
            "account": self.location.account,
            "region": self.location.region,
            "associations": [{"association": n, "version": v} for n, v in self.installs],
        }


@dataclass(frozen=True)
class LocationStatus:
    """One (account, region) of the pass: `location_up{account,region}` and `/status`."""

    account: str
    region: str
    up: bool  # read completely this pass
    message: str = ""  # why not, one line

    def to_json(self) -> dict[str, str | bool]:
        return {
            "account": self.account,
            "region": self.region,
            "up": self.up,
            "message": self.message,
        }


@dataclass(frozen=True)
class RolloutStatus:
    """A package's progressive rollout (issue 13), as `/status`, the page and the metrics
    show it: `rollout_state`, `rollout_ring`, `rollout_ring_targets`,
    `rollout_step_deadline_timestamp_seconds`."""

    package: str
    account: str
    region: str
    state: str  # model.rollout.RolloutPhase value, or "idle" (no rollout ever ran)
    ring: int  # 0-based index of the current ring
    rings: tuple[tuple[str, ...], ...]  # each ring's associations
    live_default: str  # VersionName of the live default
    target: str = ""  # VersionName rolled out
    previous: str = ""  # VersionName of the default when it began
    versions: tuple[str, ...] = ()  # VersionNames published
    succeeded: int = 0  # the current ring's targets
    failed: int = 0
    pending: int = 0
    deadline: float = 0.0  # unix time by which the current step should be over (0: idle)
    bake_remaining: float = 0.0
    step: str = ""  # the next step, in words ("waiting for 2 of 5 targets")
    failure: str = ""  # why the gate failed, with the ring
    failed_targets: tuple[tuple[str, str, str], ...] = ()  # (association, instance, error)
    moving: bool = False  # it moves without a new revision: the rollout tick follows it

    def bake_left(self, now: float) -> float:
        """The bake's remaining seconds at `now`: while baking, counted from its end (the
        status is a pass's, and no pass runs while a ring bakes with nothing due)."""
        if self.state == "baking" and self.deadline:
            return max(0.0, self.deadline - now)
        return self.bake_remaining

    def to_json(self) -> dict[str, object]:
        return {
            "package": self.package,
            "account": self.account,
            "region": self.region,
            "state": self.state,
            "ring": self.ring,
            "rings": [
                {
                    "associations": list(ring),
                    "status": _ring_status(self, index),
                    **(
                        {
                            "targets": {
                                "succeeded": self.succeeded,
                                "failed": self.failed,
                                "pending": self.pending,
                            }
                        }
                        if index == self.ring and self.state != "idle"
                        else {}
                    ),
                }
                for index, ring in enumerate(self.rings)
            ],
            "liveDefault": self.live_default,
            "target": self.target,
            "previous": self.previous,
            "versions": list(self.versions),
            "bakeRemainingSeconds": round(self.bake_left(time.time())),
            "deadline": self.deadline,
            "step": self.step,
            "failure": self.failure,
            "failedTargets": [
                {"association": a, "instance": i, "error": e} for a, i, e in self.failed_targets
            ],
        }


def _ring_status(rollout: RolloutStatus, index: int) -> str:
    """One ring's place in its rollout: passed, current, waiting, rolled_back."""
    if rollout.state in ("idle", "succeeded"):
        return "passed" if rollout.state == "succeeded" else "idle"
    if index < rollout.ring:
        return "rolled_back" if rollout.state == "rolled_back" else "passed"
    if index == rollout.ring:
        return rollout.state
    return "waiting"


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
    failures: tuple[Failure, ...] = ()  # what failed in the pass, each with its reason
    api_calls: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (operation, result)
    rollouts: tuple[Rollout, ...] = ()
    overlaps: tuple[Overlap, ...] = ()  # instances two associations fight over
    locations: tuple[LocationStatus, ...] = ()  # every location the pass worked in or pruned
    progressive: tuple[RolloutStatus, ...] = ()  # packages with a `rollout` policy

    @property
    def duration_seconds(self) -> float:
        return self.finished_at - self.started_at

    @property
    def errors(self) -> tuple[str, ...]:
        """The failures as one line each (logs, the CLI's stderr, `apply --json`)."""
        return tuple(str(failure) for failure in self.failures)
