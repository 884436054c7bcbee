"""Stage 5 of a pass: apply a `Plan` to AWS, phase by phase, with bounded concurrency.

Within a phase, actions of different resources run concurrently (at most `max_workers`);
the actions of one resource run in plan order, and a failure skips that resource's later
actions only — every other resource proceeds (kopf-style: errors are values at the boundary).

Each step is run by the module of its kind (`.package`, `.version`, `.sharing`,
`.association`, mirroring `controller.reconcile.kinds`), chosen by the one dispatch switch
`run_step` below; `.context` holds what the steps of a pass share.

Every action is idempotent, so a pass killed at any point and run again converges with no
duplicate version, association or share:
- a version is published under its VersionName; "already exists" is checked against the
  live content hash and is then success (DuplicateDocumentVersionName, DocumentAlreadyExists);
- an association is looked up by name + owner tag before it is created, and CreateAssociation
  is never retried blindly: after a throttle or 5xx we look again before retrying;
- shares, tags, default pointer and deletions converge by nature (NotFound on delete = done).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from typing import assert_never

from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.errors import UserError
from controller.model.kinds import Kind
from controller.model.state import Location
from controller.packaging import ArtifactMismatch
from controller.reconcile.apply import association, package, rollout, sharing, version
from controller.reconcile.apply.context import ActionFailed, ApplyContext, ArtifactBucket, NotOwned
from controller.reconcile.apply.fingerprint import (
    ClearedFingerprints,
    record_package_fingerprints,
)
from controller.reconcile.kinds import (
    Action,
    AddVersion,
    AdvanceRollout,
    CreateAssociation,
    CreatePackage,
    DeleteAssociation,
    DeletePackage,
    DeleteVersion,
    SetDefault,
    Share,
    TagAssociation,
    TagPackage,
    Unshare,
    UpdateAssociation,
)
from controller.reconcile.observe import Observer
from controller.reconcile.plan import Plan
from controller.reconcile.result import ActionRecord, ActionResult, Reason

__all__ = ["ActionFailed", "Applier", "ArtifactBucket", "NotOwned", "run_step"]

# Test hook for the crash-safety tests: the process exits (as if killed) right after this
# many actions have completed. Never set in production.
CRASH_AFTER_ENV = "SSM_GITOPS_TEST_CRASH_AFTER_ACTIONS"


def run_step(ctx: ApplyContext, clients: AwsClients, action: Action) -> str | None:
    """The one dispatch table: each step type to the function of its kind that applies it
    (exhaustive: mypy reports a step type without a case)."""
    step = action.step
    match step:
        case CreatePackage():
            return package.create(ctx, clients, action, step)
        case TagPackage():
            return package.tag(ctx, clients, action, step)
        case DeletePackage():
            return package.delete(ctx, clients, action, step)
        case AddVersion():
            return version.add_version(ctx, clients, action, step)
        case SetDefault():
            return version.set_default(ctx, clients, action, step)
        case DeleteVersion():
            return version.delete_version(ctx, clients, action, step)
        case Share():
            return sharing.share(ctx, clients, action, step)
        case Unshare():
            return sharing.unshare(ctx, clients, action, step)
        case CreateAssociation():
            return association.create(ctx, clients, action, step)
        case UpdateAssociation():
            return association.update(ctx, clients, action, step)
        case TagAssociation():
            return association.tag(ctx, clients, action, step)
        case DeleteAssociation():
            return association.delete(ctx, clients, action, step)
        case AdvanceRollout():
            return rollout.advance(ctx, clients, action, step)
        case _:
            assert_never(step)


def fan_out(groups: list[list[Action]]) -> list[list[Action]]:
    """The groups of one phase taken round-robin across locations (first group of each
    location, then the second of each...), so a bounded pool works on every location at once
    instead of finishing one location's 20 associations before it starts the next."""
    by_location: dict[Location, list[list[Action]]] = {}
    for group in groups:
        by_location.setdefault(group[0].location, []).append(group)
    queues = list(by_location.values())
    ordered: list[list[Action]] = []
    for index in range(max((len(q) for q in queues), default=0)):
        ordered.extend(queue[index] for queue in queues if index < len(queue))
    return ordered


class Applier:
    def __init__(
        self,
        clients_for: Callable[[Location], AwsClients],
        *,
        owner: str,
        source: str = "",
        observer: Observer,
        artifacts: ArtifactBucket | None,
        max_workers: int = 8,
        on_action: Callable[[ActionRecord], None] | None = None,
        stopping: threading.Event | None = None,
        bucket_checked: bool = False,
        calls_per_location: int = 0,
        locations_in_parallel: int = 16,
    ) -> None:
        self.clients_for = clients_for
        self.stopping = stopping
        self.observer = observer
        self.fingerprints = ClearedFingerprints()
        self.context = ApplyContext(
            owner=owner,
            source=source,
            observer=observer,
            artifacts=artifacts,
            bucket_checked=bucket_checked,
            clients_for=clients_for,
        )
        self.max_workers = max_workers
        self.calls_per_location = calls_per_location
        self.locations_in_parallel = locations_in_parallel
        self.on_action = on_action
        self._lock = threading.Lock()
        self._records: list[ActionRecord] = []
        crash = os.environ.get(CRASH_AFTER_ENV, "")
        self._crash_after = int(crash) if crash.isdigit() else None

    def apply(self, plan: Plan) -> tuple[ActionRecord, ...]:
        for _phase, in_phase in groupby(plan.actions, key=lambda action: action.phase):
            groups: dict[tuple[Kind, str, Location], list[Action]] = {}
            for action in in_phase:
                groups.setdefault(action.group, []).append(action)
            ordered = fan_out(list(groups.values()))
            with ThreadPoolExecutor(self._workers(ordered)) as pool:
                list(pool.map(self._run_group, ordered))
        # The versions this pass changed, recorded for a cold `plan` (.fingerprint).
        record_package_fingerprints(
            self.clients_for,
            self.observer.versions,
            plan.actions,
            self._records,
            self.context.published,
        )
        return tuple(self._records)

    def _workers(self, groups: list[list[Action]]) -> int:
        """Threads for one phase: `max_workers` in one location; across locations enough to
        keep every location's calls in flight busy (`calls_per_location`, the bound each
        location enforces itself), for at most `locations_in_parallel` locations at once."""
        spread = len({group[0].location for group in groups})
        wanted = min(spread, self.locations_in_parallel) * self.calls_per_location
        return max(1, min(len(groups), max(self.max_workers, wanted)))

    def skip(self, plan: Plan, reason: str) -> tuple[ActionRecord, ...]:
        """A dry run: report every action as skipped."""
        for action in plan.actions:
            self._record(action, ActionResult.SKIPPED, reason, 0.0)
        return tuple(self._records)

    def _run_group(self, actions: list[Action]) -> None:
        failed = False
        for action in actions:
            if self.stopping is not None and self.stopping.is_set():
                # SIGTERM: the action in flight finishes, no new one starts. Every action
                # is idempotent, so the next start picks up exactly where this one stopped.
                self._record(action, ActionResult.SKIPPED, "the controller is stopping", 0.0)
                continue
            if failed:
                self._record(action, ActionResult.SKIPPED, "an earlier step failed", 0.0)
                continue
            started = time.monotonic()
            try:
                message = self._run(action) or ""
            except NotOwned as error:
                self._record(action, ActionResult.SKIPPED, str(error), time.monotonic() - started)
            except (AwsError, UserError) as error:
                failed = True
                # A zip that is not git's is the artifacts stage's failure, not an AWS call's.
                reason = Reason.ARTIFACTS if isinstance(error, ArtifactMismatch) else Reason.APPLY
                self._record(
                    action, ActionResult.FAILURE, str(error), time.monotonic() - started, reason
                )
            except Exception as error:  # noqa: BLE001 - one resource never stops the pass
                failed = True
                text = " ".join(f"{type(error).__name__}: {error}".split())
                self._record(
                    action, ActionResult.FAILURE, text, time.monotonic() - started, Reason.APPLY
                )
            else:
                self._record(action, ActionResult.SUCCESS, message, time.monotonic() - started)
            finally:
                self._forget(action)

    def _forget(self, action: Action) -> None:
        """What a package step changed is read afresh next pass (whatever its result)."""
        if action.kind is not Kind.PACKAGE:
            return
        if isinstance(action.step, DeletePackage):
            self.observer.forget_package_versions(action.location, action.name)
        else:
            self.observer.forget(Kind.PACKAGE, action.location, action.name)

    def _record(
        self,
        action: Action,
        result: ActionResult,
        message: str,
        seconds: float,
        reason: Reason | None = None,
    ) -> None:
        record = ActionRecord(
            action.kind,
            action.verb,
            action.name,
            action.location.account,
            action.location.region,
            result,
            message,
            seconds,
            reason,
        )
        with self._lock:
            self._records.append(record)
            done = sum(1 for r in self._records if r.result is ActionResult.SUCCESS)
        if self.on_action is not None:
            self.on_action(record)
        if self._crash_after is not None and done >= self._crash_after:
            os._exit(70)

    def _run(self, action: Action) -> str | None:
        clients = self.clients_for(action.location)
        if action.kind is Kind.PACKAGE and not isinstance(action.step, CreatePackage):
            self.context.ensure_package_owned(clients, action)
        self.fingerprints.before(clients, action)  # after the ownership check
        return run_step(self.context, clients, action)
