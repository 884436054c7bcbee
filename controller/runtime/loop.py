"""One controller pass: fetch git -> load the revision -> reconcile -> record.

Sits between the scheduler (`runtime.schedule`, which decides *when*) and the reconciler
(`controller.reconcile`, which decides *what* to change). This module decides *whether* a
pass is worth running and what happens when a stage fails:

- git fails: one log line, `git_fetch_failures_total`, the last good revision stays; a
  drift resync still runs against it.
- with `--verify-signatures`, the head commit is not signed by a trusted key
  (controller/source/signatures.py): handled exactly like a revision that fails to load,
  with the reason `signature` (`/status`, `pass_errors_total`); a check that could not run
  (a tool crashed) is retried at the next poll and says nothing about the commit.
- the revision fails to load because of its content: nothing changes, `config_valid` is 0,
  `/status` shows every error with its file and line, and the last good revision stays
  applied until a commit that loads arrives (contract: Ownership and safety).
- the revision cannot be checked out or read because of the machine (disk full, read-only
  cache, lost object: `SourceUnavailable` or an OSError): nothing changes, `config_valid`
  stays as it was, `/status` shows the failure as a git error, `pass_errors_total{reason=
  "source"}` counts it, and the same commit is tried again at the next poll.
- the reconciler fails: the pass is recorded as a failure and retried at the next git poll
  or resync (not at a rollout tick: see below).
- anything else escapes a stage (a bug; memory running out, even while the failure was
  being logged): the pass ends there, `/status` says where and why (reason `internal`), and
  the runner thread lives on (`/healthz` stays 200) to run the next pass.

Every failure is recorded as a typed `Failure` with its `Reason` (controller/reconcile/
result.py): the same word in `/status`, `pass_errors_total{reason}` and the log line.

A pass runs when the loaded revision is new, when a full resync is due, or when the last
pass failed; a poll that finds the same commit after a good pass costs one git fetch.

Rollouts are followed between passes: after a pass that started rollouts (an association
created or updated, a package's default version set: instances start installing), a poll
re-reads only the association overviews (`Reconciling.read_rollouts`: ListAssociations
pages) while one counts targets Pending or InProgress, or, within FOLLOW_SECONDS of the
change, is still Pending with no target reported (instances take a while to pick a new
association up; one that waits for its cron stays Pending). `association_targets` and the
status page (the last pass's rollouts) follow the rollout to its end without a pass.

A progressive rollout (issue 13) is followed by the rollout tick (every few seconds): it asks
for a pass only while a rollout is in flight (progressing, baking, or a step that leaves it
so) and then only when a step is due (`Reconciling.rollout_due`). A rollout that failed, was
rolled back or is paused is settled: no tick follows it. Its failure (reason `rollout`) stays
in every pass's result (`/status`, `pass_errors_total`), so those passes are FAILUREs; a
rollout tick never retries a failed pass by itself (that was a full pass every 5 s after a
rollback), the git poll does, once per interval. The lasting failure is logged once, when it
first appears or changes, not at every pass.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from controller.errors import UserError
from controller.model.kinds import Kind, Verb
from controller.model.rollout import RolloutPhase
from controller.model.state import Location
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    PassOutcome,
    PassResult,
    Reason,
    Rollout,
)
from controller.repository.errors import SpecError, UnreadableFiles, caused_by_content
from controller.runtime.logs import log_action, logger
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import PassRequest
from controller.runtime.status import Commit, StatusBoard
from controller.source import Revision, SourceUnavailable, redact_text, source_root
from controller.source.signatures import SignatureCheckFailed, SignatureError, Signer

if TYPE_CHECKING:  # the models only as types: pydantic is imported when a revision loads
    from controller.reconcile.events import EventResult, NamedResource
    from controller.reconcile.heal import Healed
    from controller.repository import Repository


class Source(Protocol):
    """The git side (`controller.source.GitSource`)."""

    def fetch(self) -> Revision: ...

    def materialise(self, revision: Revision) -> Path: ...


class Reconciling(Protocol):
    """What the loop needs of the reconcile side (`controller.reconcile.engine.Reconciler`)."""

    def run_pass(
        self,
        repository: Repository,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult: ...

    def rollout_due(self) -> tuple[bool, Mapping[tuple[str, str], int]]:
        """A progressive rollout in flight would move now (its ring read again); the calls."""

    def read_rollouts(
        self, repository: Repository
    ) -> tuple[tuple[Rollout, ...], Mapping[tuple[str, str], int]]:
        """Each association's rollout from its overview, and the AWS calls that took."""

    def stop(self) -> None:
        """Start no new action (the one in flight finishes)."""


class Healer(Protocol):
    """What drift events need of the reconcile side (`Reconciler.heal`, reconcile/heal.py)."""

    @property
    def association_names(self) -> Mapping[tuple[Location, str], str]:
        """(location, association id) -> name, from the last observations."""

    def heal(
        self,
        repository: Repository,
        revision: str,
        resources: Collection[NamedResource],
        *,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> Healed: ...


# Loads the YAML under a directory; raises a `UserError` (SpecErrors: one SpecError per
# problem in `.errors`, with its file, line and column) when the revision is not valid.
Loader = Callable[[Path], "Repository"]
# --verify-signatures: returns who signed the revision, or raises `SignatureError`.
Verifier = Callable[[Revision], Signer]
# Returns the reconciler for detect-only (True) or applying (False) passes.
ReconcilerFor = Callable[[bool], Reconciling]


# AssociationStatusAggregatedCount keys of targets that have not finished yet
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationOverview.html).
_RUNNING = frozenset({"Pending", "InProgress"})
# Progressive rollout states the rollout tick follows (controller.model.rollout.RolloutPhase).
_ROLLING = frozenset({RolloutPhase.PROGRESSING.value, RolloutPhase.BAKING.value})
# Rollouts that wait for a person (a new version, the annotation removed): nothing to follow.
_SETTLED = frozenset(
    {RolloutPhase.FAILED.value, RolloutPhase.ROLLED_BACK.value, RolloutPhase.PAUSED.value}
)
FOLLOW_SECONDS = 600.0  # how long a change's rollouts are followed while nothing reports


def _started_rollouts(result: PassResult) -> bool:
    """An action after which SSM runs associations on their targets (`Kind.starts_runs`)."""
    return any(
        Kind(a.kind).starts_runs(Verb(a.action)) and a.result is ActionResult.SUCCESS
        for a in result.actions
    )


def _stepped(action: ActionRecord) -> bool:
    """A progressive rollout's step the pass applied."""
    return action.action == Verb.ROLLOUT and action.result is ActionResult.SUCCESS


def _unsettled_steps(result: PassResult) -> list[ActionRecord]:
    """The pass's actions but the steps that left their rollout failed, rolled back or
    paused (the rollback's re-pin, a pause): after those there is nothing to follow."""
    settled = {(r.package, r.account, r.region) for r in result.progressive if r.state in _SETTLED}
    return [a for a in result.actions if (a.name, a.account, a.region) not in settled]


@dataclass(frozen=True)
class _Loaded:
    """A revision that loaded: what passes reconcile until a newer one loads."""

    revision: Revision
    repository: Repository


def is_suspended(repository: Repository) -> bool:
    """`Settings.spec.suspend: true`: the repository asks for detect-only passes."""
    return repository.settings is not None and repository.settings.suspend


def _one_line(error: BaseException) -> str:
    """`Type: message` on one line (a MemoryError has no message)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_failures(error: Exception, reason: Reason) -> tuple[Failure, ...]:
    """The failures of a revision that does not load: one per problem, each with its file,
    line and column where the loader knows them (SpecErrors carries one SpecError each)."""
    found = getattr(error, "errors", None)
    if not found:
        return (Failure(reason, str(error) or type(error).__name__),)
    return tuple(
        Failure(reason, e.message, path=e.path, line=e.line, col=e.col)
        if isinstance(e, SpecError)
        else Failure(reason, str(e))
        for e in found
    )


class _QuietLog:
    """The loop's logger: a record that cannot be written (memory running out while a
    traceback is formatted, a broken handler) is dropped, never raised into the pass."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log

    def __getattr__(self, name: str) -> Callable[..., None]:
        method = getattr(self._log, name)

        def call(*args: Any, **kwargs: Any) -> None:
            with contextlib.suppress(Exception):
                method(*args, **kwargs)

        return call


class ControllerLoop:
    """The work function `SingleFlight` runs: one call is one (possibly skipped) pass."""

    def __init__(
        self,
        source: Source,
        load: Loader,
        reconciler_for: ReconcilerFor,
        *,
        board: StatusBoard,
        metrics: Metrics,
        sub_path: str = ".",
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        verify: Verifier | None = None,
        healer_for: Callable[[bool], Healer] | None = None,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> None:
        self._source = source
        self._healer_for = healer_for  # --events-queue: heals what events name
        self._on_action = on_action  # every action of a pass (drift events: own changes)
        self._load = load
        self._reconciler_for = reconciler_for
        self._board = board
        self._metrics = metrics
        self._sub_path = sub_path
        self._dry_run = dry_run
        self._clock = clock
        self._verify = verify
        self._seen: str | None = None  # the newest commit we tried to load
        self._good: _Loaded | None = None
        self._last_outcome: PassOutcome | None = None
        self._last_reconciled: str | None = None
        self._changed_at: float | None = None  # when a pass last started rollouts
        self._read_since_change = False  # overviews re-read since that pass
        self._logged_rollout: frozenset[str] = frozenset()  # lasting rollout failures logged
        self._stage = "starting"  # what the pass is doing, for an error that escapes it
        self._log = _QuietLog(logger())
        board.update(dry_run=dry_run, path=sub_path)

    def __call__(self, request: PassRequest) -> None:
        try:
            self._pass(request)
        except Exception as error:  # noqa: BLE001 - the last guard: see `_contain`
            self._contain(error)

    def _contain(self, error: Exception) -> None:
        """Whatever escaped a stage (a bug, or memory running out while a failure was being
        logged) ends this pass only: the runner thread lives on, so `/healthz` stays up and
        the next tick runs a pass (issue 10: an alias bomb once killed the runner for good).
        """
        error.__traceback__ = None  # let the failed stage's frames (and memory) go first
        message = f"the pass stopped unexpectedly while {self._stage}: {_one_line(error)}"
        loading = self._stage == "loading the revision"
        # A load that blew up is that revision's failure; anywhere else it is our own.
        reason = Reason.LOAD if loading else Reason.INTERNAL
        with contextlib.suppress(Exception):
            if loading:
                self._metrics.record_load(valid=False)
                self._board.update(config_failures=(Failure(reason, message),), pass_running=False)
            else:
                now = self._clock()
                failed = PassResult(
                    revision=self._last_reconciled or "",
                    outcome=PassOutcome.FAILURE,
                    started_at=now,
                    finished_at=now,
                    failures=(Failure(reason, message),),
                )
                self._last_outcome = PassOutcome.FAILURE  # the next poll runs a full pass
                status = self._board.get()
                self._board.update(last_pass=failed, pass_running=False, passes=status.passes + 1)
            # After the board: /status must tell even when the metrics are what failed.
            self._metrics.record_pass_error(reason)
        self._log.error(
            message, extra={"event": "pass", "result": "crashed", "reason": reason.value}
        )

    def rollout_in_flight(self) -> bool:
        """A progressive rollout is under way (targets reporting, a bake), or the last pass
        moved one a step that did not settle it: the rollout tick asks for a pass (issue 13).
        A step that halted, rolled back or paused a rollout leaves nothing to follow."""
        last = self._board.get().last_pass
        if last is None or self._dry_run:
            return False
        return any(r.moving or r.state in _ROLLING for r in last.progressive) or any(
            _stepped(a) for a in _unsettled_steps(last)
        )

    def _rollout_due(self, good: _Loaded) -> bool:
        """The rollout tick: a pass only when a rollout would move. A step the last pass
        applied, or a rollout waiting on no ring (a version being published, the default to
        move), is due at once; a ring running or baking is read again first (its executions,
        targets and alarms: a few calls instead of a pass)."""
        if not self.rollout_in_flight():
            return False
        last = self._board.get().last_pass
        if last is None:
            return False
        if any(_stepped(a) for a in _unsettled_steps(last)):
            return True
        if any(r.moving and r.state not in _ROLLING for r in last.progressive):
            return True
        reconciler = self._reconciler_for(self._dry_run or is_suspended(good.repository))
        try:
            due, api_calls = reconciler.rollout_due()
        except Exception:  # noqa: BLE001 - a pass reads it again and reports what failed
            return True
        self._metrics.record_api_calls(api_calls)
        return due

    def _pass(self, request: PassRequest) -> None:
        self._stage = "fetching git"
        # A rollout tick alone needs no git fetch: it moves the rollout of what is applied.
        revision = None if request.reasons == {"rollout"} else self._fetch()
        if revision is not None and revision.commit != self._seen:
            self._stage = "loading the revision"
            if self._try_load(revision):
                self._seen = revision.commit  # loaded or found invalid: not tried again
        good = self._good
        if good is None:
            return  # nothing has ever loaded: /status says why
        self._stage = "reconciling"
        worth_it = (
            request.full_resync
            or good.revision.commit != self._last_reconciled
            # A failed pass is retried by the poll (once per interval), never by a rollout
            # tick alone: a lasting rollout failure fails every pass, and a tick every 5 s
            # retrying it was a full pass every 5 s (issue 13 follow-up).
            or (self._last_outcome is PassOutcome.FAILURE and request.reasons != {"rollout"})
            or ("rollout" in request.reasons and self._rollout_due(good))
        )
        if worth_it:
            self._reconcile(good, request)
        elif self._following_rollouts():
            self._refresh_rollouts(good)

    def _following_rollouts(self) -> bool:
        """A rollout the last pass started, or saw running, may have moved: look again."""
        last = self._board.get().last_pass
        if last is None or self._dry_run or self._last_outcome is PassOutcome.FAILURE:
            return False
        if any(
            count > 0 and status in _RUNNING
            for rollout in last.rollouts
            for status, count in rollout.counts.items()
        ):
            return True
        if self._changed_at is None or self._clock() - self._changed_at >= FOLLOW_SECONDS:
            return False
        # the pass read the overviews before its own changes: read them at least once after
        return not self._read_since_change or any(r.status in _RUNNING for r in last.rollouts)

    def _refresh_rollouts(self, good: _Loaded) -> None:
        """Re-read the association overviews only; the last pass shows them (no new pass)."""
        reconciler = self._reconciler_for(self._dry_run or is_suspended(good.repository))
        try:
            rollouts, api_calls = reconciler.read_rollouts(good.repository)
        except Exception as error:  # noqa: BLE001 - the next pass reads them again
            self._log.warning(
                f"reading the association overviews failed: {error}", extra={"event": "rollouts"}
            )
            return
        self._read_since_change = True
        self._metrics.record_rollouts(tuple(rollouts), api_calls)
        last = self._board.get().last_pass
        if last is not None:
            self._board.update(last_pass=replace(last, rollouts=tuple(rollouts)))

    # -- stages ---------------------------------------------------------------------------

    def _fetch(self) -> Revision | None:
        started = time.monotonic()
        try:
            revision = self._source.fetch()
        except Exception as error:  # noqa: BLE001 - every failure is one line and a metric
            self._metrics.record_fetch(time.monotonic() - started, ok=False)
            message = str(error) if isinstance(error, UserError) else f"git fetch failed: {error}"
            message = redact_text(message)  # a URL quoted by libgit2 may hold a token
            self._log.warning(
                message,
                extra={"event": "git_fetch", "result": "failure", "reason": Reason.SOURCE.value},
            )
            # Counted by git_fetch_failures_total (not pass_errors_total): nothing was fetched
            # to blame or retry, the poll itself retries.
            self._board.update(git_failure=Failure(Reason.SOURCE, message))
            return None
        self._metrics.record_fetch(time.monotonic() - started, ok=True)
        self._board.update(
            git_failure=None,
            fetched=Commit(revision.commit, revision.message, revision.author, revision.time),
        )
        return revision

    def _try_load(self, revision: Revision) -> bool:
        """Load `revision`; False when the machine failed (retry it), True otherwise."""
        signer = None
        try:
            if self._verify is not None:  # before anything of the commit is read
                signer = self._verify(revision)
            root = source_root(self._source.materialise(revision), self._sub_path, revision)
            repository = self._load(root)
        except SignatureCheckFailed as error:
            # Not a verdict on the commit (a tool crashed or timed out): look again next poll.
            self._source_failed(revision, error, f"{error}; checked again at the next poll")
            return False
        except (SourceUnavailable, OSError) as error:
            # An OSError a commit's content causes (a symlink loop, an over-long name) makes
            # it invalid; any other is the machine's, not the commit's: retried next poll.
            if not isinstance(error, SourceUnavailable) and caused_by_content(error):
                self._invalid(revision, error)
                return True
            self._source_failed(revision, error)
            return False
        except UnreadableFiles as error:
            # The loader could not read what git wrote (EIO, EACCES, ENOSPC): same as above.
            more = len(error.unread) - 1
            self._source_failed(
                revision,
                error,
                f"{error.unread[0]}{f' (and {more} more)' if more else ''}: revision "
                f"{revision.short} could not be read, retried at the next poll",
            )
            return False
        except Exception as error:  # noqa: BLE001 - a bad revision never stops the controller
            self._invalid(revision, error)
            return True
        self._good = _Loaded(revision, repository)
        self._metrics.record_load(valid=True)
        self._board.update(
            config_failures=(),
            applied=Commit(revision.commit, revision.message, revision.author, revision.time),
            suspended=is_suspended(repository),
        )
        signed = {} if signer is None else {"signature": signer.describe()}
        self._log.info(
            f"revision {revision.short} loaded: {revision.message}",
            extra={"event": "load", "result": "valid", "revision": revision.commit, **signed},
        )
        return True

    def _invalid(self, revision: Revision, error: Exception) -> None:
        """The commit itself does not load (or is refused for its signature): every error
        reported with its reason, the last good revision kept."""
        reason = Reason.SIGNATURE if isinstance(error, SignatureError) else Reason.LOAD
        if isinstance(error, UserError):
            failures = load_failures(error, reason)
        else:
            # A bug or exhaustion (MemoryError): record it before anything that needs
            # memory, and free the failed load's frames first (issue 10).
            error.__traceback__ = None
            failures = (
                Failure(
                    reason,
                    f"loading revision {revision.short} failed unexpectedly: "
                    f"{_one_line(error)}; the last good revision stays applied",
                ),
            )
        self._metrics.record_load(valid=False)
        self._metrics.record_pass_error(reason)
        self._board.update(config_failures=failures)
        result = "refused" if reason is Reason.SIGNATURE else "invalid"
        for failure in failures:
            self._log.error(
                str(failure),
                extra={
                    "event": "load",
                    "result": result,
                    "reason": reason.value,
                    "revision": revision.commit,
                },
            )
        self._log.warning(
            f"revision {revision.short} "
            + ("is refused (signature)" if reason is Reason.SIGNATURE else "does not load")
            + "; "
            + (
                f"keeping {self._good.revision.short} applied"
                if self._good
                else "nothing applied yet"
            ),
            extra={"event": "load", "result": result, "revision": revision.commit},
        )

    def _source_failed(
        self, revision: Revision, error: Exception, message: str | None = None
    ) -> None:
        """The checkout, a read or a signature check failed for a reason outside the
        commit: say so, retry at the next poll."""
        if message is None and isinstance(error, UserError):
            message = str(error)
        elif message is None:
            where = getattr(error, "filename", None)
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            message = (
                f"{where or 'the checkout'}: cannot read revision {revision.short}: {reason} "
                "(retried at the next poll)"
            )
        self._metrics.record_pass_error(Reason.SOURCE)
        self._board.update(git_failure=Failure(Reason.SOURCE, message))
        self._log.warning(
            message
            + (
                f"; keeping {self._good.revision.short} applied"
                if self._good
                else "; nothing applied yet"
            ),
            extra={
                "event": "load",
                "result": "source_error",
                "reason": Reason.SOURCE.value,
                "revision": revision.commit,
            },
        )

    def _reconcile(self, good: _Loaded, request: PassRequest) -> None:
        commit = good.revision.commit
        detect_only = self._dry_run or is_suspended(good.repository)
        self._board.update(pass_running=True)
        started = self._clock()

        def on_action(action: ActionRecord) -> None:
            log_action(action, commit)
            if self._on_action is not None:
                self._on_action(action)

        try:
            reconciler = self._reconciler_for(detect_only)
            result = reconciler.run_pass(
                good.repository, commit, full_resync=request.full_resync, on_action=on_action
            )
        except Exception as error:  # noqa: BLE001 - a failed pass is a result, not a crash
            if not isinstance(error, UserError):
                self._log.exception("the pass crashed", extra={"event": "pass"})
            # The reconciler reports every stage's failure as a value (`run_pass` never
            # raises for AWS errors): what escapes it is the controller's own failure.
            message = str(error) if isinstance(error, UserError) else _one_line(error)
            result = PassResult(
                revision=commit,
                outcome=PassOutcome.FAILURE,
                started_at=started,
                finished_at=self._clock(),
                failures=(Failure(Reason.INTERNAL, message),),
            )
        self._last_outcome = result.outcome
        self._last_reconciled = commit
        if _started_rollouts(result):
            self._changed_at = self._clock()
            self._read_since_change = False
        self._metrics.record_pass(result)
        status = self._board.get()
        self._board.update(last_pass=result, pass_running=False, passes=status.passes + 1)
        # A rollout's failure lasts until a person acts (a new version): every pass reports
        # it (/status, pass_errors_total), the log says it once, when it appears or changes.
        said = self._logged_rollout
        self._logged_rollout = frozenset(
            str(f) for f in result.failures if f.reason is Reason.ROLLOUT
        )
        new = [f for f in result.failures if f.reason is not Reason.ROLLOUT or str(f) not in said]
        self._log.log(
            logging.WARNING if result.outcome is PassOutcome.FAILURE and new else logging.INFO,
            f"pass {result.outcome.value}: {len(result.actions)} actions, "
            f"{len(result.errors)} errors, {len(result.blocked)} blocked",
            extra={
                "event": "pass",
                "result": result.outcome.value,
                "revision": commit,
                "reasons": sorted(request.reasons),
                "full_resync": request.full_resync,
                "detect_only": detect_only,
                "duration_seconds": round(result.duration_seconds, 3),
            },
        )
        for failure in new:
            self._log.error(
                str(failure),
                extra={"event": "pass_error", "reason": failure.reason.value, "revision": commit},
            )

    # -- drift events (runtime/events.py) ------------------------------------------------

    def heal(
        self, resources: Collection[NamedResource], on_action: Callable[[ActionRecord], None]
    ) -> Mapping[NamedResource, EventResult | None] | None:
        """Heal just `resources` against the revision the last pass reconciled; None when
        no revision has been reconciled yet, or a newer one waits for its pass (that pass
        covers every resource anyway)."""
        good = self._good
        if self._healer_for is None or good is None:
            return None
        commit = good.revision.commit
        if commit != self._last_reconciled:
            return None
        healer = self._healer_for(self._dry_run or is_suspended(good.repository))

        def record(action: ActionRecord) -> None:
            log_action(action, commit)
            on_action(action)

        healed = healer.heal(good.repository, commit, resources, on_action=record)
        self._metrics.record_heal(healed.result)
        for resource, outcome in healed.outcomes.items():
            if outcome is not None and outcome.value == "healed":  # what moved it: an event
                name = resource.name or resource.association_id
                self._log.info(
                    f"drift event: healed {resource.kind.value} {name} "
                    f"({resource.location.account}/{resource.location.region})",
                    extra={"event": "heal", "revision": commit, "kind": resource.kind.value},
                )
        for failure in healed.result.failures:
            self._log.error(
                str(failure),
                extra={"event": "heal_error", "reason": failure.reason.value, "revision": commit},
            )
        return healed.outcomes

    def association_name(self, location: Location, association_id: str) -> str:
        """One of our associations' name by id, as the last observations saw it."""
        good = self._good
        if self._healer_for is None or good is None:
            return ""
        healer = self._healer_for(self._dry_run or is_suspended(good.repository))
        return healer.association_names.get((location, association_id), "")

    def pass_running(self) -> bool:
        return self._board.get().pass_running
