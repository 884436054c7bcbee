"""When passes run: single flight plus the git poll and drift resync timers.

Sits in front of the controller loop (`runtime.loop`): everything that wants a pass — the
poll timer, the resync timer, a webhook, start-up — calls `SingleFlight.request()`, which
never blocks. One worker thread runs one pass at a time; requests that arrive while a pass
runs coalesce into exactly one more pass (a full resync if any of them asked for one), so
a burst of pushes costs two passes, not one per push.

The timers are APScheduler interval jobs with jitter, so many controllers started at the
same moment do not poll git or AWS in lockstep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassRequest:
    """Why a pass runs: the merged reasons of every request it serves."""

    reasons: frozenset[str]
    full_resync: bool = False

    def merge(self, other: PassRequest) -> PassRequest:
        return PassRequest(self.reasons | other.reasons, self.full_resync or other.full_resync)


class SingleFlight:
    """Runs `work(request)` on one thread, one pass at a time, coalescing what arrives meanwhile."""

    def __init__(self, work: Callable[[PassRequest], None]) -> None:
        self._work = work
        self._lock = threading.Condition()
        self._pending: PassRequest | None = None
        self._running = False
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, reason: str, *, full_resync: bool = False) -> None:
        """Ask for a pass; returns at once. Merges into the pending request if there is one."""
        new = PassRequest(frozenset({reason}), full_resync)
        with self._lock:
            if self._stopping:
                return
            self._pending = new if self._pending is None else self._pending.merge(new)
            self._lock.notify_all()

    @property
    def busy(self) -> bool:
        """A pass is running or waiting to run."""
        with self._lock:
            return self._running or self._pending is not None

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> bool:
        """Take no more requests, let the pass in flight finish; True if it finished in time."""
        with self._lock:
            self._stopping = True
            self._pending = None
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._stopping:
                    self._lock.wait()
                if self._stopping or self._pending is None:
                    return
                request, self._pending = self._pending, None
                self._running = True
            try:
                self._work(request)
            except Exception:
                # The loop turns every expected failure into a pass result; this guard only
                # keeps a programming error from silently ending all future passes.
                _log.exception("pass crashed", extra={"event": "pass_crashed"})
            finally:
                with self._lock:
                    self._running = False
                    self._lock.notify_all()


# How often a progressive rollout in progress is looked at (at most the poll interval).
ROLLOUT_TICK_SECONDS = 5.0


def jitter_for(interval: float) -> int:
    """Random delay added to each timer tick: a tenth of the interval, at most 30 s."""
    return int(min(interval * 0.1, 30.0))


class Timers:
    """The git poll and the full drift resync, as APScheduler interval jobs feeding SingleFlight."""

    def __init__(
        self,
        flight: SingleFlight,
        *,
        poll_interval: float,
        resync_interval: float,
        rollout_tick: Callable[[], None] | None = None,
    ):
        if poll_interval <= 0 or resync_interval <= 0:
            raise ValueError("intervals must be positive")
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            # A tick missed while the machine slept is one tick, not a burst of them; the
            # request itself never blocks, so one instance at a time is plenty.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_job(
            flight.request,
            IntervalTrigger(seconds=poll_interval, jitter=jitter_for(poll_interval) or None),
            args=("poll",),
            id="poll",
        )
        self._scheduler.add_job(
            flight.request,
            IntervalTrigger(seconds=resync_interval, jitter=jitter_for(resync_interval) or None),
            args=("resync",),
            kwargs={"full_resync": True},
            id="resync",
        )
        if rollout_tick is not None:
            # A progressive rollout in progress is looked at every few seconds, not at the
            # next git poll (issue 13): the callback asks for a pass only while one runs.
            self._scheduler.add_job(
                rollout_tick,
                IntervalTrigger(seconds=min(poll_interval, ROLLOUT_TICK_SECONDS)),
                id="rollout",
            )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)


class Spaced:
    """Hands `request()` on to `action` at most once per `spacing` seconds.

    The webhook's brake: the first push of a burst triggers a pass at once; every push in
    the following `spacing` seconds folds into ONE more call at the end of that window, so
    the last push of a burst is never lost. The service spaces webhooks by 5 s (or the poll
    interval, if shorter): a burst of distinct pushes costs at most one git fetch per window.
    Replays of a push already handled never get here (`webhook.SeenPushes`): a replay storm
    costs no fetch at all.
    """

    def __init__(
        self,
        action: Callable[[], None],
        spacing: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._action = action
        self._spacing = spacing
        self._clock = clock
        self._lock = threading.Lock()
        self._next = float("-inf")  # when the next call may go straight through
        self._timer: threading.Timer | None = None
        self._stopped = False

    def request(self) -> bool:
        """True if the action ran now, False if it was folded into the window's one call."""
        with self._lock:
            if self._stopped:
                return False
            now = self._clock()
            if self._timer is None and now >= self._next:
                self._next = now + self._spacing
                run_now = True
            else:
                run_now = False
                if self._timer is None:
                    self._timer = threading.Timer(max(self._next - now, 0.0), self._fire)
                    self._timer.daemon = True
                    self._timer.start()
        if run_now:
            self._action()
        return run_now

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            if self._stopped:
                return
            self._next = self._clock() + self._spacing
        self._action()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
