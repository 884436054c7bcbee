"""Associations start as soon as their own package is ready (issue 15 follow-up), not after
every package of every region: against the embedded endpoint, with one package made slow."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from controller.model.state import DesiredVersion, Location
from controller.reconcile.apply.ready import package_of
from controller.reconcile.engine import Reconciler
from controller.reconcile.kinds import Action, CreateAssociation
from controller.reconcile.result import ActionRecord, PassOutcome
from tests.reconcile.conftest import HOME, association, package, target


def _faults(aws: Any, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        aws.endpoint_url + "/_local/faults", data=json.dumps(body).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


def test_an_association_does_not_wait_for_another_package(
    aws_env: Any, reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    """Regression: apply created no association before every package of every region was
    published and shared (12.8 s of a 102.6 s converge at 50 accounts x 3 regions); an
    association needs only its own package there."""
    fast = package("fast", (make_version("fast", "1.0"),))
    slow = package("slow", tuple(make_version("slow", f"1.{n}") for n in range(4)), default="1.3")
    # UpdateDocument publishes every version after the first: only `slow` is slowed.
    _faults(aws_env, {"latency": {"ssm:UpdateDocument": 0.4}})
    done: dict[tuple[str, str], float] = {}

    def heard(record: ActionRecord) -> None:
        done[(record.kind, record.name)] = time.monotonic()

    wanted = target(
        (fast, slow), (association("uses-fast", "fast"), association("uses-slow", "slow"))
    )
    result = reconciler.run_desired(wanted, on_action=heard)

    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert done[("association", "uses-fast")] < done[("package", "slow")]
    # ... and one that installs the slow package still waits for all of its steps.
    assert done[("association", "uses-slow")] > done[("package", "slow")]


def test_the_package_of_an_association_by_name_or_by_arn() -> None:
    other = Location("111122223333", "eu-west-1")
    by_name = association("a", "agent", location=HOME)
    by_arn = association("b", "arn:aws:ssm:eu-west-1:123456789012:document/agent", location=other)
    assert package_of(Action("a", HOME, CreateAssociation(by_name))) == (HOME, "agent")
    assert package_of(Action("b", other, CreateAssociation(by_arn))) == (
        Location("123456789012", "eu-west-1"),
        "agent",
    )
