"""One rollout: run a document on its target instances under rate control.

Used by the fleet for every association execution and every SendCommand: `run_rollout`
takes the resolved instance ids, a function that runs the document on one instance, and
the rate control, and reports each instance's status as it changes (Pending -> InProgress ->
Success | Failed | TimedOut, or Skipped for those never started).

Rate control, from "Understanding targets and rate controls in State Manager associations"
and the CreateAssociation API
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateAssociation.html):
- MaxConcurrency: a number or a percentage of the target set: at most that many instances
  run at a time;
- MaxErrors: a number or a percentage; "if you specify 3, the system stops sending requests
  when the fourth error is received"; executions already running are allowed to complete.
  Instances never started are reported Skipped (for commands: Cancelled) - an inference,
  the docs do not name their status.
Percentages are of the number of targets, rounded down, and at least 1 for MaxConcurrency
(an inference matching the docs' 10%-of-50 example).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

# Never more threads than this, whatever MaxConcurrency says: scripts share the host CPUs.
MAX_WORKERS = 8


class TargetStatus(StrEnum):
    """Per-instance association status (DescribeAssociationExecutionTargets Status)."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"  # Run Command's word for an invocation never started

    @property
    def is_error(self) -> bool:
        return self in (TargetStatus.FAILED, TargetStatus.TIMED_OUT)

    @property
    def is_final(self) -> bool:
        return self not in (TargetStatus.PENDING, TargetStatus.IN_PROGRESS)


@dataclass(frozen=True)
class RateControl:
    max_concurrency: str | None = None  # None: all targets at once
    max_errors: str | None = None  # None: never stop


@dataclass(frozen=True)
class TargetOutcome:
    """One instance's final result in a rollout."""

    instance_id: str
    status: TargetStatus
    detail: str  # DetailedStatus: Success, Failed, Skipped, ... or why it was skipped
    output: str = ""  # the plugin's stdout (+ stderr)
    stdout: str = ""
    stderr: str = ""


class RateControlError(ValueError):
    """A MaxConcurrency / MaxErrors value SSM would reject."""


def parse_limit(text: str | None, total: int, *, at_least_one: bool) -> int | None:
    """'10' -> 10, '25%' of `total` -> rounded down; None -> no limit."""
    if text is None or text == "":
        return None
    try:
        if text.endswith("%"):
            percent = int(text[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            value = total * percent // 100
        else:
            value = int(text)
            if value < 0:
                raise ValueError
    except ValueError as err:
        raise RateControlError(f"{text!r} is not a number or a percentage like 10%") from err
    return max(value, 1) if at_least_one else value


RunOne = Callable[[str], TargetOutcome]
# (instance id, new status, the outcome once the status is final)
OnChange = Callable[[str, TargetStatus, TargetOutcome | None], None]


def run_rollout(
    instance_ids: Sequence[str],
    run_one: RunOne,
    rate: RateControl,
    *,
    on_change: OnChange = lambda _iid, _status, _outcome: None,
    not_started: TargetStatus = TargetStatus.SKIPPED,
    stop: threading.Event | None = None,
) -> list[TargetOutcome]:
    """Run `run_one` on every instance under rate control; outcomes in `instance_ids` order."""
    total = len(instance_ids)
    concurrency = parse_limit(rate.max_concurrency, total, at_least_one=True) or max(total, 1)
    max_errors = parse_limit(rate.max_errors, total, at_least_one=False)
    for instance_id in instance_ids:
        on_change(instance_id, TargetStatus.PENDING, None)
    outcomes: dict[str, TargetOutcome] = {}
    queue = list(instance_ids)
    errors = 0
    running: dict[Future[TargetOutcome], str] = {}
    workers = max(1, min(concurrency, total, MAX_WORKERS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-rollout") as pool:
        while queue or running:
            stopped = (max_errors is not None and errors > max_errors) or bool(
                stop and stop.is_set()
            )
            while queue and not stopped and len(running) < min(concurrency, workers):
                instance_id = queue.pop(0)
                on_change(instance_id, TargetStatus.IN_PROGRESS, None)
                running[pool.submit(_guarded, run_one, instance_id)] = instance_id
            if stopped and queue:
                reason = (
                    f"not started: MaxErrors ({rate.max_errors}) was exceeded with {errors} errors"
                    if not (stop and stop.is_set())
                    else "not started: the fleet was stopped"
                )
                for instance_id in queue:
                    skipped = TargetOutcome(
                        instance_id, not_started, str(not_started), reason, reason
                    )
                    outcomes[instance_id] = skipped
                    on_change(instance_id, not_started, skipped)
                queue.clear()
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                instance_id = running.pop(future)
                outcome = future.result()
                outcomes[instance_id] = outcome
                errors += outcome.status.is_error
                on_change(instance_id, outcome.status, outcome)
    return [outcomes[instance_id] for instance_id in instance_ids]


def _guarded(run_one: RunOne, instance_id: str) -> TargetOutcome:
    """A bug in one instance's run is that instance's failure, never the rollout's."""
    try:
        return run_one(instance_id)
    except Exception as err:  # noqa: BLE001 - reported as the instance's result
        message = f"the simulated agent failed: {type(err).__name__}: {err}"
        return TargetOutcome(instance_id, TargetStatus.FAILED, "Failed", message, "", message)
