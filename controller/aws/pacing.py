"""Pacing per location and operation: the controller's side of AWS's token buckets.

Stage: the AWS edge of a pass, used by `api.request` only. AWS throttles each API action
per account and Region; once a call of an operation is throttled in a location, retrying
with growing exponential backoff leaves that location's bucket idle for longer and longer,
while retrying at once wastes calls. A `Pacer` (one per location, shared by its
`AwsClients`) instead spaces that operation's calls there by a gap it learns: the gap
doubles on a throttle while no call has got through since it last grew (still far too
short: a 0.25/s bucket is found in about six throttles instead of ten), grows by half on a
throttle after successes (nearly right), once per gap either way (the calls already in
flight met the same empty bucket), shrinks by a tenth on each success, and disappears once
it is small, so it settles close to the rate the bucket refills at. Each throttled
CreateAssociation costs a look-up and a retry (`api.create_once`); shrinking more slowly
(by a twentieth) throttled less but left the bucket idle after an overshoot and converged
slower (benchmarks/organization_scale.py); an operation never throttled is never paced.
Other operations and other locations are not touched.
"""

from __future__ import annotations

import threading
import time

# The gap after the first throttle, and its bounds (seconds).
FIRST_GAP = 0.2
MAX_GAP = 10.0
GROW = 1.5  # a throttle after successes: the gap was nearly right
RAMP = 2.0  # a throttle with no success since the gap last grew: still far too short
SHRINK = 0.9  # per success: 0.95 throttled less but converged slower


class Pacer:
    """Spaces the calls of each throttled operation of one location; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gap: dict[str, float] = {}
        self._next: dict[str, float] = {}
        self._widened: dict[str, float] = {}  # when the gap last grew
        self._succeeded: set[str] = set()  # operations with a success since then

    def wait(self, operation: str) -> None:
        """Before a call: wait for this operation's turn (no wait when it is not paced)."""
        with self._lock:
            gap = self._gap.get(operation)
            if gap is None:
                return
            now = time.monotonic()
            turn = max(now, self._next.get(operation, now))
            self._next[operation] = turn + gap
        if turn > now:
            time.sleep(turn - now)

    def outcome(self, operation: str, *, throttled: bool) -> None:
        """After a call: widen the gap on a throttle, narrow it on anything else."""
        with self._lock:
            gap = self._gap.get(operation)
            if throttled:
                # Calls already in flight when the gap grew are throttled by the same
                # empty bucket: one growth per gap, not one per call.
                now = time.monotonic()
                if gap and now - self._widened.get(operation, 0.0) < gap:
                    return
                self._widened[operation] = now
                factor = GROW if operation in self._succeeded else RAMP
                self._succeeded.discard(operation)
                self._gap[operation] = min(MAX_GAP, gap * factor if gap else FIRST_GAP)
            elif gap is not None:
                self._succeeded.add(operation)
                if gap * SHRINK < FIRST_GAP / 2:
                    del self._gap[operation]
                    self._next.pop(operation, None)
                    self._widened.pop(operation, None)
                    self._succeeded.discard(operation)
                else:
                    self._gap[operation] = gap * SHRINK

    def gap(self, operation: str) -> float:
        with self._lock:
            return self._gap.get(operation, 0.0)
