"""The pacer per location and operation (controller.aws.pacing, issue 15)."""

from __future__ import annotations

import time

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
