"""Fixtures for the runtime tests: pass results as the reconciler reports them."""

from __future__ import annotations

import pytest

from controller.model.state import Location
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    PassOutcome,
    PassResult,
    Reason,
    ResourceState,
    ResourceStatus,
    Rollout,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"


def make_pass(
    revision: str = "a" * 40,
    outcome: PassOutcome = PassOutcome.SUCCESS,
    *,
    finished_at: float = 1_700_000_010.0,
) -> PassResult:
    return PassResult(
        revision=revision,
        outcome=outcome,
        started_at=finished_at - 2.5,
        finished_at=finished_at,
        resources=(
            ResourceStatus("package", "datadog-agent", ACCOUNT, REGION, ResourceState.IN_SYNC),
            ResourceStatus(
                "package",
                "nginx",
                ACCOUNT,
                REGION,
                ResourceState.DRIFTED,
                "default version is 1.2 live, 1.3 wanted",
            ),
            ResourceStatus(
                "association", "datadog-agent-prod", ACCOUNT, REGION, ResourceState.IN_SYNC
            ),
            ResourceStatus(
                "association",
                "nginx-web",
                ACCOUNT,
                REGION,
                ResourceState.FAILED,
                "AccessDenied: not allowed to UpdateAssociation",
            ),
        ),
        actions=(
            ActionRecord(
                "package",
                "add_version",
                "datadog-agent",
                ACCOUNT,
                REGION,
                ActionResult.SUCCESS,
                "6.9.0",
                1.25,
            ),
            ActionRecord(
                "package",
                "set_default",
                "datadog-agent",
                ACCOUNT,
                REGION,
                ActionResult.SUCCESS,
                "6.9.0",
                0.1,
            ),
            ActionRecord(
                "association",
                "update",
                "nginx-web",
                ACCOUNT,
                REGION,
                ActionResult.FAILURE,
                "AccessDenied",
                0.2,
            ),
            ActionRecord(
                "package",
                "delete_version",
                "nginx",
                ACCOUNT,
                REGION,
                ActionResult.BLOCKED,
                "maxDeletes reached",
            ),
        ),
        blocked=("delete version 0.9 of package nginx: prune.maxDeletes (1) reached",),
        failures=(
            Failure(
                Reason.APPLY,
                "AccessDenied: not allowed to UpdateAssociation nginx-web",
                kind="association",
                name="nginx-web",
                action="update",
                location=Location(ACCOUNT, REGION),
            ),
        ),
        api_calls={("ListDocuments", "ok"): 2, ("UpdateAssociation", "AccessDenied"): 1},
        rollouts=(
            Rollout("datadog-agent-prod", "InProgress", {"Success": 3, "Pending": 2}),
            Rollout("nginx-web", "Failed", {"Failed": 1}),
        ),
    )


@pytest.fixture
def a_pass() -> PassResult:
    return make_pass()
