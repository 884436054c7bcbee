"""`run --events-queue`: long-poll the drift-events queue, heal what the events name.

Where it sits: beside the pass loop, in its own thread (`EventQueue.start`). Each round:

1. receive: a long poll (ReceiveMessage, WaitTimeSeconds 20, 10 messages); while messages
   keep coming at once, more are received without waiting, up to `MAX_BATCH` messages, so a
   burst is handled as one batch;
2. read: each body -> the one resource its event names (`reconcile.events.read_event`);
   malformed and foreign events are counted and deleted;
3. own: an event of the controller's own change (its session name / SourceIdentity, or a
   resource it changed itself within `OWN_WINDOW` seconds: `OwnChanges`) causes nothing;
4. heal: the remaining resources, each once however many events named it, in ONE restricted
   pass (`ControllerLoop.heal` -> `Reconciler.heal`);
5. delete: every message that was handled (DeleteMessageBatch). A message whose resource
   could not be healed is not deleted: SQS delivers it again after its visibility timeout,
   so a crash or restart loses no event.

A queue that cannot be read (wrong URL, access denied, endpoint down) is one log line, then
`drift_events_queue_up 0` and a retry with backoff; the resync interval keeps healing
meanwhile. The line "reachable again" closes the episode.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller.aws import queue as aws_queue
from controller.aws.api import CallCounter
from controller.aws.errors import AwsError
from controller.aws.queue import Message
from controller.model.kinds import Kind
from controller.model.state import Location
from controller.reconcile.events import (
    DriftEvent,
    EventResult,
    Ignored,
    NamedResource,
    is_own,
    read_event,
)
from controller.reconcile.result import ActionRecord, ActionResult
from controller.runtime.logs import emit

PREFIX = "ssm_gitops_"
MAX_BATCH = 500  # messages handled as one batch (one heal), at most
# ... and received for at most this long, so the batch is handled and deleted well within
# the queue's visibility timeout (deploy/events/: 60 s; SQS's default: 30 s).
BURST_SECONDS = 2.0
# ... and at most this many bytes of bodies held at once (SQS messages may be 1 MiB each:
# a flood of hostile giants must not cost 500 MiB).
MAX_BATCH_BYTES = 16 * 1024 * 1024
WAIT_SECONDS = 20  # the long poll (ReceiveMessage's maximum)
# An event that names a resource the controller changed itself this recently is its own
# (CloudTrail delivers to EventBridge within minutes, usually seconds).
OWN_WINDOW = 120.0
UNCONFIRMED_AFTER = 300.0  # an own change without its event after this: the path is broken
FORGET_AFTER = 3600.0
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # between failed receives
LOG_EVERY = 600.0  # "still unreachable" at most this often

Key = tuple[Kind, Location, str]


class Queue(Protocol):
    """The queue's two calls (controller.aws.queue with bound clients)."""

    def receive(self, wait_seconds: int) -> list[Message]: ...

    def delete(self, messages: list[Message]) -> int: ...

    def identity(self) -> str:
        """The ARN of the credentials the controller calls AWS with."""


class SqsQueue:
    """The queue at `url`, read with the controller's own credentials (controller.aws.queue)."""

    def __init__(self, url: str, counter: CallCounter) -> None:
        self.url = url
        self.clients = aws_queue.queue_clients(url, counter)

    def receive(self, wait_seconds: int) -> list[Message]:
        return aws_queue.receive(self.clients, self.url, wait_seconds=wait_seconds)

    def delete(self, messages: list[Message]) -> int:
        return aws_queue.delete(self.clients, self.url, messages)

    def identity(self) -> str:
        return aws_queue.caller_arn(self.clients)


class Healing(Protocol):
    """What the event path needs of the controller (`ControllerLoop`)."""

    def heal(
        self, resources: Collection[NamedResource], on_action: Callable[[ActionRecord], None]
    ) -> Mapping[NamedResource, EventResult | None] | None:
        """Each resource's result (None: not healed, retry); None: no revision reconciled
        yet (the first pass heals everything anyway)."""

    def association_name(self, location: Location, association_id: str) -> str:
        """The name of one of our associations by id, "" if unknown."""

    def pass_running(self) -> bool:
        """A pass is applying changes now (its own events are not all recorded yet)."""


@dataclass
class OwnChanges:
    """What the controller changed, and when: an event for such a resource within
    `OWN_WINDOW`, made with the controller's own credentials (`arn`, when known), is its
    own. Also counts own changes whose event never came."""

    clock: Callable[[], float] = time.time
    arn: str | None = None  # the controller's identity (GetCallerIdentity), once read
    _changes: dict[Key, deque[list[float | bool]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, action: ActionRecord) -> None:
        if action.result is not ActionResult.SUCCESS:
            return
        changed = action.changed
        if changed is None:
            changed = ((action.kind, action.account, action.region, action.name),)
        now = self.clock()
        with self._lock:
            # A rollout step changes the document's tag and the ring's associations: each
            # event is ours; a step that only started associations expects none.
            for kind, account, region, name in changed:
                key = (Kind(kind), Location(account, region), name)
                self._changes.setdefault(key, deque(maxlen=32)).append([now, False])

    def claim(self, key: Key, actor_arn: str) -> bool:
        """An event for `key`, made by `actor_arn`, arrived: is it one of our changes (and
        confirm them)? Someone else's change of the same resource is never ours."""
        if self.arn and actor_arn and _principal(actor_arn) != _principal(self.arn):
            return False
        now = self.clock()
        with self._lock:
            recent = [c for c in self._changes.get(key, ()) if now - float(c[0]) <= OWN_WINDOW]
            for change in recent:
                change[1] = True
            return bool(recent)

    def unconfirmed(self) -> int:
        """Own changes older than UNCONFIRMED_AFTER whose event never arrived."""
        now = self.clock()
        with self._lock:
            for key in list(self._changes):
                kept = deque(
                    (c for c in self._changes[key] if now - float(c[0]) < FORGET_AFTER),
                    maxlen=32,
                )
                if kept:
                    self._changes[key] = kept
                else:
                    del self._changes[key]
            return sum(
                1
                for changes in self._changes.values()
                for at, seen in changes
                if not seen and now - float(at) >= UNCONFIRMED_AFTER
            )


def _principal(arn: str) -> str:
    """An ARN without an assumed role's session name: the session of a web identity or an
    instance role changes as its credentials are renewed, the role does not
    (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns)."""
    if ":assumed-role/" in arn:
        return arn.rsplit("/", 1)[0]
    return arn


def _account_of(arn: str) -> str:
    """The account id of an ARN (`arn:partition:service:region:account:resource`)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


class EventMetrics:
    """The drift-event series (contract: Metrics), registered only with --events-queue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(
            PREFIX + "drift_events",
            "Drift events by result (healed, in_sync, own, foreign, malformed).",
            ["result"],
            registry=registry,
        )
        self.queue_up = Gauge(
            PREFIX + "drift_events_queue_up",
            "1 if the last receive from the events queue worked, 0 if not.",
            registry=registry,
        )
        self.last_received = Gauge(
            PREFIX + "drift_events_last_received_timestamp_seconds",
            "When the last message arrived from the events queue (unix time).",
            registry=registry,
        )
        self.unconfirmed = Gauge(
            PREFIX + "drift_events_unconfirmed_changes",
            "The controller's own changes older than 5 minutes whose CloudTrail event never "
            "arrived (the event path is broken).",
            registry=registry,
        )
        for result in EventResult:
            self.total.labels(result.value)
        self.queue_up.set(1)


@dataclass(frozen=True)
class RoundReport:
    """One round: messages received, AWS calls for the queue, what became of the events."""

    messages: int
    results: Mapping[EventResult, int]
    healed_resources: int
    kept: int  # left on the queue for redelivery


class EventQueue:
    """The consumer: `start()` a thread, `stop()` it; `run_once()` for tests."""

    def __init__(
        self,
        queue: Queue,
        healing: Healing,
        *,
        session_name: str,
        registry: CollectorRegistry,
        own: OwnChanges,
        counter: CallCounter | None = None,
        on_calls: Callable[[Mapping[tuple[str, str], int]], None] | None = None,
        describe: str = "the events queue",
        clock: Callable[[], float] = time.time,
        wait_seconds: int = WAIT_SECONDS,
    ) -> None:
        self.queue = queue
        self.healing = healing
        self.session_name = session_name
        self.metrics = EventMetrics(registry)
        self.own = own
        self.counter = counter
        self.on_calls = on_calls  # the queue's AWS calls, for aws_api_calls_total
        self.describe = describe
        self.clock = clock
        self.wait_seconds = wait_seconds
        self._down_since: float | None = None
        self._last_logged = 0.0
        self._failures = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drift-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop after the round in flight; a long poll in flight is abandoned (its messages
        come back after their visibility timeout)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                report = self.run_once()
            except Exception as error:  # noqa: BLE001 - the consumer never dies
                emit(
                    logging.ERROR,
                    "events",
                    "drift events: round failed: " + " ".join(str(error).split()),
                )
                report = None
            if report is None:  # the queue could not be read (or the round failed): back off
                delay = RETRY_DELAYS[min(max(self._failures, 1), len(RETRY_DELAYS)) - 1]
                self._stopping.wait(delay)

    # -- one round ----------------------------------------------------------------------

    def run_once(self) -> RoundReport | None:
        """Receive a batch, handle it, delete what was handled; None if the queue failed."""
        try:
            return self._round()
        finally:
            if self.counter is not None and self.on_calls is not None:
                self.on_calls(self.counter.take())

    def _round(self) -> RoundReport | None:
        if self.own.arn is None:
            # Tried again next round; meanwhile own changes are told by time alone.
            with contextlib.suppress(AwsError):
                self.own.arn = self.queue.identity()
        self._wait_for_the_pass()  # not while a pass runs: its messages would time out
        messages = self._receive()
        if messages is None:
            return None
        self.metrics.unconfirmed.set(self.own.unconfirmed())
        if not messages:
            return RoundReport(0, {}, 0, 0)
        self.metrics.last_received.set(self.clock())
        # The pass in flight records its actions as it goes: wait for it, so its own
        # changes' events are recognised.
        self._wait_for_the_pass()
        results: dict[str, EventResult | None] = {}
        pending: dict[NamedResource, list[str]] = {}
        for message in messages:
            read = read_event(message.body)
            if isinstance(read, Ignored):
                results[message.message_id] = read.result
            elif self._is_own(read):
                results[message.message_id] = EventResult.OWN
            else:
                pending.setdefault(read.resource, []).append(message.message_id)
        if pending:
            healed = self.healing.heal(list(pending), self.own.record)
            for resource, ids in pending.items():
                # No revision reconciled yet: the first pass (a full resync) covers it.
                outcome = EventResult.IN_SYNC if healed is None else healed.get(resource)
                for message_id in ids:
                    results[message_id] = outcome
        handled = [m for m in messages if results.get(m.message_id) is not None]
        counts: dict[EventResult, int] = {}
        for message in handled:
            result = results[message.message_id]
            assert result is not None
            counts[result] = counts.get(result, 0) + 1
            self.metrics.total.labels(result.value).inc()
        try:
            self.queue.delete(handled)
        except AwsError as error:  # they come back and are handled again: idempotent
            emit(logging.WARNING, "events", f"drift events: delete failed: {error}")
        kept = len(messages) - len(handled)
        if counts.get(EventResult.HEALED) or kept:
            emit(
                logging.INFO,
                "events",
                f"drift events: {len(messages)} messages, "
                + ", ".join(f"{n} {r.value}" for r, n in sorted(counts.items()))
                + (f", {kept} left for redelivery" if kept else ""),
            )
        return RoundReport(len(messages), counts, len(pending), kept)

    def _wait_for_the_pass(self) -> None:
        while self.healing.pass_running() and not self._stopping.is_set():
            self._stopping.wait(0.05)

    def _is_own(self, event: DriftEvent) -> bool:
        if is_own(event, self.session_name) and self._may_be_ours(event):
            self.own.claim(self._key(event.resource), "")  # confirms the change
            return True
        return self.own.claim(self._key(event.resource), event.actor_arn)

    def _may_be_ours(self, event: DriftEvent) -> bool:
        """A session name is chosen by whoever assumes a role (AssumeRole RoleSessionName,
        https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html): anyone in
        an account may call theirs `ssm-gitops-<owner>`. In the controller's own account it
        calls with its own credentials, so there the principal must be the controller's too;
        elsewhere (a role it assumes) the name is all the event tells."""
        arn = self.own.arn
        if not arn or _account_of(arn) != event.resource.location.account:
            return True
        return _principal(event.actor_arn) == _principal(arn)

    def _key(self, resource: NamedResource) -> Key:
        name = resource.name
        if resource.kind is Kind.ASSOCIATION and not name:
            name = self.healing.association_name(resource.location, resource.association_id)
        return (resource.kind, resource.location, name)

    def _receive(self) -> list[Message] | None:
        """A long poll, then more without waiting while a burst lasts (up to MAX_BATCH
        messages, MAX_BATCH_BYTES or BURST_SECONDS). A message received twice (its
        visibility timeout ran out) counts once, with its latest receipt handle."""
        try:
            messages = self.queue.receive(self.wait_seconds)
            started = time.monotonic()
            while (
                messages
                and len(messages) < MAX_BATCH
                and sum(len(m.body) for m in messages) < MAX_BATCH_BYTES
                and time.monotonic() - started < BURST_SECONDS
            ):
                more = self.queue.receive(0)
                if not more:
                    break
                messages.extend(more)
        except AwsError as error:
            self._unreachable(error)
            return None
        self._reachable()
        return list({m.message_id: m for m in messages}.values())

    def _unreachable(self, error: AwsError) -> None:
        now = self.clock()
        self._failures += 1
        self.metrics.queue_up.set(0)
        if self._down_since is None or now - self._last_logged >= LOG_EVERY:
            since = "" if self._down_since is None else " still"
            emit(
                logging.WARNING,
                "events",
                f"--events-queue {self.describe}:{since} cannot be read: {error} "
                "(check the URL, the queue policy and sqs:ReceiveMessage; drift is healed at "
                "the resync interval meanwhile)",
            )
            self._last_logged = now
        if self._down_since is None:
            self._down_since = now

    def _reachable(self) -> None:
        self.metrics.queue_up.set(1)
        self._failures = 0
        if self._down_since is not None:
            emit(
                logging.INFO,
                "events",
                f"--events-queue {self.describe}: reachable again after "
                f"{self.clock() - self._down_since:.0f}s",
            )
            self._down_since = None
