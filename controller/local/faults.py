"""Injected latency, throttling and server errors, deterministic by seed.

Where it sits: the router asks `Faults.decide(operation)` before serving a request. Latency
applies to every request; throttling (a token bucket -> `ThrottlingException`) and injected
5xx (`InternalServerError`) apply to SSM operations, whose error shape we own. Settings
come from LocalAWS options, `ssm-gitops local` flags and `POST /_local/faults`.
Operation names are `ssm:CreateDocument`-style; a bare `CreateDocument` or `*` also match.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultSettings:
    latency: dict[str, float] = field(default_factory=dict)  # operation or "*" -> seconds
    throttle_rate: float = 0.0  # tokens per second; 0 = no throttling
    throttle_burst: float = 0.0  # bucket size (defaults to the rate)
    throttle_operations: list[str] = field(default_factory=lambda: ["*"])
    error_rate: float = 0.0  # fraction of SSM requests answered with a 500
    seed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "latency": dict(self.latency),
            "throttle": {
                "rate": self.throttle_rate,
                "burst": self.throttle_burst,
                "operations": list(self.throttle_operations),
            },
            "error_rate": self.error_rate,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Any) -> FaultSettings:
        """Settings from `POST /_local/faults`; ValueError names the field and its range."""
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(data) - {"latency", "throttle", "error_rate", "seed"}
        if unknown:
            raise ValueError(
                f"unknown field(s) {sorted(unknown)}: use latency, throttle, error_rate, seed"
            )
        throttle = data.get("throttle") or {}
        latency = data.get("latency") or {}
        if not isinstance(throttle, dict) or not isinstance(latency, dict):
            raise ValueError("latency and throttle must be JSON objects")
        operations = throttle.get("operations", ["*"])
        if not isinstance(operations, list):
            raise ValueError("throttle.operations must be a list of operation names")
        settings = cls(
            latency={str(k): _number(f"latency.{k}", v, 0.0, 60.0) for k, v in latency.items()},
            throttle_rate=_number("throttle.rate", throttle.get("rate", 0.0), 0.0, 1e6),
            throttle_burst=_number("throttle.burst", throttle.get("burst", 0.0), 0.0, 1e6),
            throttle_operations=[str(o) for o in operations],
            error_rate=_number("error_rate", data.get("error_rate", 0.0), 0.0, 1.0),
            seed=int(_number("seed", data.get("seed", 0), -(2**63), 2**63 - 1)),
        )
        return settings


def _number(name: str, value: Any, low: float, high: float) -> float:
    """`value` as a float within [low, high], or a ValueError that says so."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
    return float(value)


def _matches(patterns: list[str] | dict[str, float], operation: str) -> str | None:
    bare = operation.split(":", 1)[-1]
    for candidate in (operation, bare, "*"):
        if candidate in patterns:
            return candidate
    return None


@dataclass(frozen=True)
class Decision:
    delay: float
    throttled: bool
    fail: bool


class Faults:
    """Thread-safe fault injector. Same seed and same request order -> same decisions."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(settings or FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._random = random.Random(settings.seed)
            self._tokens = settings.throttle_burst or settings.throttle_rate
            self._last = time.monotonic()

    def decide(self, operation: str, ssm: bool) -> Decision:
        with self._lock:
            settings = self.settings
            key = _matches(settings.latency, operation)
            delay = settings.latency[key] if key else 0.0
            throttled = False
            if (
                ssm
                and settings.throttle_rate > 0
                and _matches(settings.throttle_operations, operation)
            ):
                burst = settings.throttle_burst or settings.throttle_rate
                current = time.monotonic()
                self._tokens = min(
                    burst, self._tokens + (current - self._last) * settings.throttle_rate
                )
                self._last = current
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                else:
                    throttled = True
            fail = (
                ssm
                and not throttled
                and settings.error_rate > 0
                and self._random.random() < settings.error_rate
            )
            return Decision(delay, throttled, fail)
