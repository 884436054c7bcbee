"""Injected latency, throttling and server errors, deterministic by seed.

Where it sits: the router asks `Faults.decide(operation, ssm, account, region)` before
serving a request. Latency applies to every request; injected 5xx (`InternalServerError`)
apply to SSM operations, whose error shape we own. Two kinds of throttling:

- the global bucket (`throttle`): one token bucket for every SSM call of every caller;
- per-location rates (`rates`), as AWS throttles: one token bucket per (account, region,
  operation), each operation with its own rate and burst. AWS applies its API rate quotas
  per account and per Region ("Service quotas ... are Region-specific unless noted",
  https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html). They apply to the
  JSON services we route (SSM, Organizations, SQS, EventBridge); the refusal carries the
  service's own throttling error from botocore's model (`throttle_error`).

Settings come from LocalAWS options, `ssm-gitops local` flags and `POST /_local/faults`.
Operation names are `ssm:CreateDocument`-style; a bare `CreateDocument`, `ssm:*` or `*` also
match (the most specific pattern wins); a rate pattern may end in `@<account>/<region>`
to throttle one location only. Buckets start full and refill continuously, so a
test that makes N calls into a bucket of burst B at rate R sees exactly max(0, N - B - R*t)
refusals: deterministic up to the clock.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rate:
    """One per-location token bucket: `rate` tokens a second, at most `burst` stored."""

    rate: float
    burst: float

    def as_json(self) -> dict[str, float]:
        return {"rate": self.rate, "burst": self.burst}


# The `"rates": "aws"` preset: per (account, region) rates close to what AWS applies to the
# SSM calls of this controller. AWS publishes SSM's API rates only in part: the Systems
# Manager endpoints and quotas page (https://docs.aws.amazon.com/general/latest/gr/ssm.html)
# lists Parameter Store throughput (GetParameter* 40 TPS by default) and says other API
# actions are throttled per account and Region without a published figure. The values below
# are therefore conservative estimates of the observed behaviour (mutations slower than
# reads, a small burst); override any of them per operation.
AWS_RATES: dict[str, Rate] = {
    "ssm:*": Rate(10.0, 20.0),
    "ssm:List*": Rate(20.0, 40.0),
    "ssm:Describe*": Rate(20.0, 40.0),
    "ssm:Get*": Rate(40.0, 40.0),
    "ssm:CreateDocument": Rate(5.0, 5.0),
    "ssm:UpdateDocument": Rate(5.0, 5.0),
    "ssm:DeleteDocument": Rate(5.0, 5.0),
    "ssm:CreateAssociation": Rate(5.0, 10.0),
    "ssm:UpdateAssociation": Rate(5.0, 10.0),
    "ssm:DeleteAssociation": Rate(5.0, 10.0),
    "ssm:ModifyDocumentPermission": Rate(5.0, 5.0),
    "organizations:*": Rate(10.0, 10.0),
}


@dataclass
class FaultSettings:
    latency: dict[str, float] = field(default_factory=dict)  # operation or "*" -> seconds
    throttle_rate: float = 0.0  # tokens per second; 0 = no throttling
    throttle_burst: float = 0.0  # bucket size (defaults to the rate)
    throttle_operations: list[str] = field(default_factory=lambda: ["*"])
    error_rate: float = 0.0  # fraction of SSM requests answered with a 500
    seed: int = 0
    # operation pattern -> a token bucket per (account, region, operation); empty = off
    rates: dict[str, Rate] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "latency": dict(self.latency),
            "throttle": {
                "rate": self.throttle_rate,
                "burst": self.throttle_burst,
                "operations": list(self.throttle_operations),
            },
            "rates": {pattern: rate.as_json() for pattern, rate in self.rates.items()},
            "error_rate": self.error_rate,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Any) -> FaultSettings:
        """Settings from `POST /_local/faults`; ValueError names the field and its range."""
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(data) - {"latency", "throttle", "rates", "error_rate", "seed"}
        if unknown:
            raise ValueError(
                f"unknown field(s) {sorted(unknown)}: "
                "use latency, throttle, rates, error_rate, seed"
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
            rates=parse_rates(data.get("rates") or {}),
        )
        return settings


def parse_rates(data: Any) -> dict[str, Rate]:
    """`rates` of `POST /_local/faults`: `"aws"` (the preset `AWS_RATES`) or
    `{"ssm:CreateAssociation": {"rate": 1, "burst": 2}, "ssm:*": {...}}`, where `"aws"` may
    also be a key whose value is ignored, to start from the preset and override some."""
    if data == "aws":
        return dict(AWS_RATES)
    if not isinstance(data, dict):
        raise ValueError('rates must be "aws" or a JSON object of operation -> {rate, burst}')
    rates: dict[str, Rate] = dict(AWS_RATES) if "aws" in data else {}
    for pattern, value in data.items():
        if pattern == "aws":
            continue
        if not isinstance(value, dict) or set(value) - {"rate", "burst"}:
            raise ValueError(f"rates.{pattern} must be {{rate, burst}}, not {value!r}")
        rate = _number(f"rates.{pattern}.rate", value.get("rate", 0.0), 0.001, 1e6)
        burst = _number(f"rates.{pattern}.burst", value.get("burst", rate), 1.0, 1e6)
        rates[str(pattern)] = Rate(rate, burst)
    return rates


def parse_rate_flag(text: str) -> dict[str, Any]:
    """One `ssm-gitops local --rate` value: `aws`, or `OPERATION=PER_SECOND[/BURST]`
    (`ssm:CreateAssociation=1/2`); the `rates` JSON for it, or ValueError."""
    if text == "aws":
        return {"aws": True}
    operation, _, value = text.partition("=")
    per_second, _, burst = value.partition("/")
    try:
        rate = float(per_second)
        entry = {"rate": rate, "burst": float(burst) if burst else max(rate, 1.0)}
    except ValueError:
        raise ValueError(
            f"--rate {text!r}: use aws or OPERATION=PER_SECOND[/BURST], "
            "e.g. ssm:CreateAssociation=1/2"
        ) from None
    if not operation:
        raise ValueError(f"--rate {text!r}: name the operation, e.g. ssm:CreateAssociation=1/2")
    return {operation: entry}


def _number(name: str, value: Any, low: float, high: float) -> float:
    """`value` as a float within [low, high], or a ValueError that says so."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
    return float(value)


def _rate_for(rates: dict[str, Rate], operation: str, account: str, region: str) -> Rate | None:
    """The most specific pattern for `operation` in this location: a pattern may end in
    `@<account>/<region>` to apply to that location only (which wins over one without);
    then `ssm:Op`, `Op`, the longest matching `ssm:Prefix*`, `ssm:*`, `*`."""
    bare = operation.split(":", 1)[-1]
    for where in (f"@{account}/{region}", ""):
        scoped = {
            p[: len(p) - len(where)]: rate
            for p, rate in rates.items()
            if (p.endswith(where) if where else "@" not in p)
        }
        for candidate in (operation, bare):
            if candidate in scoped:
                return scoped[candidate]
        wildcards = [p for p in scoped if p.endswith("*") and operation.startswith(p[:-1])]
        if wildcards:
            return scoped[max(wildcards, key=len)]
    return None


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
            # (account, region, operation) -> [tokens, last refill]
            self._buckets: dict[tuple[str, str, str], list[float]] = {}

    def decide(
        self, operation: str, ssm: bool, account: str = "", region: str = "", *, rated: bool = True
    ) -> Decision:
        """Latency, throttling and failure for one request. `rated`: whether the per-location
        rates apply (the router says so for services whose throttling error it can shape)."""
        with self._lock:
            settings = self.settings
            if rated and settings.rates and self._take(operation, account, region):
                key = _matches(settings.latency, operation)
                return Decision(settings.latency[key] if key else 0.0, True, False)
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

    def _take(self, operation: str, account: str, region: str) -> bool:
        """Take a token from this location's bucket of `operation`; True = throttled."""
        rate = _rate_for(self.settings.rates, operation, account, region)
        if rate is None:
            return False
        now = time.monotonic()
        bucket = self._buckets.setdefault((account, region, operation), [rate.burst, now])
        bucket[0] = min(rate.burst, bucket[0] + (now - bucket[1]) * rate.rate)
        bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return False
        return True
