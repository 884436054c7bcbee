"""The pacer per location and operation (controller.aws.pacing, issue 15)."""

from __future__ import annotations

import time

import pytest

from controller.aws import pacing
from controller.aws.pacing import Pacer


def test_an_operation_never_throttled_is_never_paced() -> None:
    pacer = Pacer()
    started = time.monotonic()
    for _ in range(50):
        pacer.wait("ListDocuments")
        pacer.outcome("ListDocuments", throttled=False)
    assert time.monotonic() - started < 0.5
    assert pacer.gap("ListDocuments") == 0.0


def test_a_throttle_spaces_that_operation_only_and_grows_once_per_gap() -> None:
    pacer = Pacer()
    for _ in range(4):  # four calls in flight met the same empty bucket
        pacer.outcome("CreateAssociation", throttled=True)
    assert pacer.gap("CreateAssociation") == pacing.FIRST_GAP
    assert pacer.gap("ListAssociations") == 0.0
    started = time.monotonic()
    for _ in range(3):
        pacer.wait("CreateAssociation")
    assert time.monotonic() - started >= 2 * pacing.FIRST_GAP * 0.9


def test_successes_narrow_the_gap_until_it_goes() -> None:
    pacer = Pacer()
    pacer.outcome("CreateAssociation", throttled=True)
    for _ in range(100):
        pacer.outcome("CreateAssociation", throttled=False)
    assert pacer.gap("CreateAssociation") == 0.0


class _Clock:
    """Virtual time for the pacer: `sleep` advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def _creates_through_a_bucket(clock: _Clock, creates: int = 20) -> tuple[int, float]:
    """`creates` CreateAssociation through one location's bucket (0.25/s, burst 2), each
    throttle followed by create_once's short pause; (throttles, seconds)."""
    pacer = Pacer()
    tokens, refilled, throttles = 2.0, 0.0, 0
    for _ in range(creates):
        while True:
            pacer.wait("CreateAssociation")
            tokens = min(2.0, tokens + (clock.now - refilled) * 0.25)
            refilled = clock.now
            if tokens >= 1.0:
                tokens -= 1.0
                pacer.outcome("CreateAssociation", throttled=False)
                break
            throttles += 1
            pacer.outcome("CreateAssociation", throttled=True)
            clock.sleep(0.15)  # api._THROTTLED_PAUSE, on average
    return throttles, clock.now


def test_a_slow_bucket_is_found_with_few_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (benchmarks/organization_scale.py): the gap grew by half per throttle from
    0.2 s and shrank by a tenth per success, so a 0.25/s CreateAssociation bucket took about
    ten throttles to find (19 throttles for 20 creates here; each costs a look-up and a
    retry). Doubling the gap while no call gets through keeps the same pace with fewer."""
    clock = _Clock()
    monkeypatch.setattr(pacing.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(pacing.time, "sleep", clock.sleep)
    throttles, seconds = _creates_through_a_bucket(clock)
    minimum = (20 - 2) / 0.25
    assert seconds <= minimum * 1.1, seconds
    assert throttles <= 15, throttles  # 19 before
