"""Admin routes under `/_local/` and the per-operation call counter.

Where it sits: the router sends every `/_local/...` path here. Routes (JSON in and out):
  GET  /_local/health        {"ok": true}
  GET  /_local/calls         {"calls": {"ssm:CreateDocument": 2, "s3:PutObject": 1}, "total": 3}
  POST /_local/calls/reset   zero the counters
  POST /_local/reset         all state: SSM, moto (S3, STS, EC2, IAM), counters, faults
  GET  /_local/faults        the fault settings (faults.FaultSettings.as_json)
  POST /_local/faults        replace them (same JSON shape; omitted parts are off)
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
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


Response = tuple[int, dict[str, Any]]


def handle_admin(
    method: str,
    path: str,
    body: bytes,
    calls: CallCounter,
    faults: Faults,
    reset_all: Callable[[], None],
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
