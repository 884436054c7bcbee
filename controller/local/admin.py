"""Admin routes under `/_local/` and the per-operation call counter.

Where it sits: the router sends every `/_local/...` path here. Routes (JSON in and out):
  GET  /_local/health        {"ok": true}
  GET  /_local/calls         {"calls": {"ssm:CreateDocument": 2, "s3:PutObject": 1}, "total": 3}
  POST /_local/calls/reset   zero the counters
  POST /_local/reset         all state: SSM, moto (S3, STS, EC2, IAM), counters, faults
  GET  /_local/faults        the fault settings (faults.FaultSettings.as_json)
  POST /_local/faults        replace them (same JSON shape; omitted parts are off)
  GET  /_local/in-flight     {"peak": {"<account>/<region>": most requests served at once,
                             "*": the same over every location}}
  POST /_local/in-flight/reset  zero the peaks
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from controller.local.faults import Faults, FaultSettings


class CallCounter:
    """Counts requests by `service:Operation`, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class InFlight:
    """Requests being served per (account, region), and the peak of each: how the fan-out
    tests see how many calls a client had in flight in one location at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()

    @contextmanager
    def request(self, account: str, region: str) -> Iterator[None]:
        key = f"{account}/{region}"
        with self._lock:
            for where in (key, "*"):  # "*": every location together
                self._now[where] += 1
                self._peak[where] = max(self._peak[where], self._now[where])
        try:
            yield
        finally:
            with self._lock:
                self._now[key] -= 1
                self._now["*"] -= 1

    def peaks(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._peak.items()))

    def reset(self) -> None:
        with self._lock:
            self._peak = Counter(self._now)


Response = tuple[int, dict[str, Any]]


def handle_admin(
    method: str,
    path: str,
    body: bytes,
    calls: CallCounter,
    faults: Faults,
    reset_all: Callable[[], None],
    in_flight: InFlight | None = None,
) -> Response:
    """Answer one admin request: (HTTP status, JSON document)."""
    route = (method, path.rstrip("/"))
    if route == ("GET", "/_local/health"):
        return 200, {"ok": True}
    if route == ("GET", "/_local/calls"):
        counts = calls.snapshot()
        return 200, {"calls": counts, "total": sum(counts.values())}
    if route == ("POST", "/_local/calls/reset"):
        calls.reset()
        return 200, {"ok": True}
    if route == ("POST", "/_local/reset"):
        reset_all()
        return 200, {"ok": True}
    if in_flight is not None and route == ("GET", "/_local/in-flight"):
        return 200, {"peak": in_flight.peaks()}
    if in_flight is not None and route == ("POST", "/_local/in-flight/reset"):
        in_flight.reset()
        return 200, {"ok": True}
    if route == ("GET", "/_local/faults"):
        return 200, faults.settings.as_json()
    if route == ("POST", "/_local/faults"):
        try:
            data = json.loads(body or b"{}")
            settings = FaultSettings.from_json(data)
        except (ValueError, RecursionError) as error:
            return 400, {"error": f"invalid fault settings: {error}"}
        faults.configure(settings)
        return 200, settings.as_json()
    return 404, {"error": f"no admin route {method} {path}"}
