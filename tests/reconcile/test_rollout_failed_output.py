"""A failed ring's evidence names where its error is (issue 13), against the embedded
endpoint.

Found running the README walkthrough: the page promised the failed instance "and its
error", but showed only `Failed` (the target's DetailedStatus). The error is in the Run
Command command the target's OutputSource names; the evidence now gives the one command
that shows it."""

from __future__ import annotations

import re
from collections.abc import Callable

from controller.local import LocalAWS
from controller.model.state import DesiredVersion
from controller.reconcile.engine import Reconciler
from tests.reconcile.conftest import ACCOUNT, REGION
from tests.reconcile.test_rollout_engine import _setup


def test_a_failed_target_names_the_command_that_shows_its_error(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    wanted, _ = _setup(reconciler, make_version, aws_env)
    for _ in range(2):  # 2.0 published, then ring 1 (canary) pinned and started
        reconciler.run_desired(wanted)
    ssm = aws_env.client("ssm")
    canary = ssm.list_associations(
        AssociationFilterList=[{"key": "AssociationName", "value": "canary"}]
    )["Associations"][0]["AssociationId"]
    run = aws_env.ssm.start_association_execution(ACCOUNT, REGION, canary)
    aws_env.ssm.record_association_result(
        ACCOUNT,
        REGION,
        canary,
        run,
        "i-0123456789abcdef0",
        "Failed",
        error="agent 2.0: config check failed: tags must be a map",
    )
    failed = reconciler.run_desired(wanted)
    (rollout,) = failed.progressive
    assert rollout.state == "rolled_back"
    ((association, instance, detail),) = rollout.failed_targets
    assert (association, instance) == ("canary", "i-0123456789abcdef0")
    found = re.search(
        r"aws ssm get-command-invocation --command-id (\S+) --instance-id (\S+)", detail
    )
    assert found, detail
    shown = ssm.get_command_invocation(CommandId=found.group(1), InstanceId=found.group(2))
    assert "tags must be a map" in shown["StandardErrorContent"]
