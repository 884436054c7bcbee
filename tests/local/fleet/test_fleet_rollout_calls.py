"""The fleet under the calls a progressive rollout makes: a pinned version installs that
version, StartAssociationsOnce makes a new execution, a failed install is that target's
Failed with its error, and an alarm in ALARM stops the association (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.local.fleet import Fleet, start_fleet
from controller.local.fleet.agent import PackageRequest, PluginStatus
from controller.local.fleet.schedule import ManualClock
from controller.local.fleet.state import installed_packages

from .conftest import AgentFactory, MemorySource, needs_bwrap
from .test_fleet_local import PACKAGE, SPECS, associate, by_platform, file_in, publish

pytestmark = needs_bwrap
EVERY = [{"Key": "InstanceIds", "Values": ["*"]}]


@pytest.fixture
def fleet(local_aws: Any, tmp_path: Path) -> Iterator[Fleet]:
    running = start_fleet(
        local_aws, SPECS, tmp_path / "fleet", clock=ManualClock(), tick_seconds=None
    )
    yield running
    running.stop()


def _latest_targets(ssm: Any, association_id: str) -> list[dict[str, Any]]:
    newest = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ][0]
    targets: list[dict[str, Any]] = ssm.describe_association_execution_targets(
        AssociationId=association_id, ExecutionId=newest["ExecutionId"]
    )["AssociationExecutionTargets"]
    return targets


def test_pinning_installs_the_pinned_version_and_start_once_reruns(
    fleet: Fleet, local_aws: Any
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    publish(ssm, s3, "2.0")  # published, not the default
    association_id = associate(ssm, targets=EVERY)  # follows the default: 1.0
    assert fleet.wait_idle(60)
    assert {v[PACKAGE] for v in fleet.installed().values()} == {"1.0"}

    parameters = {"action": ["Install"], "name": [PACKAGE], "version": ["2.0"]}
    ssm.update_association(AssociationId=association_id, Parameters=parameters, Targets=EVERY)
    assert fleet.wait_idle(60)
    assert {v[PACKAGE] for v in fleet.installed().values()} == {"2.0"}

    ssm.start_associations_once(AssociationIds=[association_id])
    assert fleet.wait_idle(60)
    executions = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    assert len(executions) == 3
    assert [e["AssociationVersion"] for e in executions] == ["2", "2", "1"]
    assert all(e["Status"] == "Success" for e in executions)
    # The same version again: the agent only validates (agent-semantics: "already installed").
    amazon = by_platform(fleet)[("amazon", "2023")]
    assert file_in(fleet, amazon, "opt/acme/log").splitlines()[-3:] == [
        "install 2.0",
        "validate 2.0",
        "validate 2.0",
    ]


def test_a_failing_install_is_that_targets_failure_with_its_error(
    fleet: Fleet, local_aws: Any
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    publish(ssm, s3, "2.0", failing_platform="ubuntu")
    association_id = associate(ssm, version="2.0", targets=EVERY)
    assert fleet.wait_idle(60)
    failing = by_platform(fleet)[("ubuntu", "22.04")]
    targets = {t["ResourceId"]: t for t in _latest_targets(ssm, association_id)}
    assert targets[failing]["Status"] == "Failed"
    assert targets[failing]["DetailedStatus"] == "Failed"
    assert {t["Status"] for i, t in targets.items() if i != failing} == {"Success"}
    source = targets[failing]["OutputSource"]
    invocation = ssm.get_command_invocation(
        CommandId=source["OutputSourceId"], InstanceId=failing
    )
    assert invocation["Status"] == "Failed"
    both = invocation["StandardOutputContent"] + invocation["StandardErrorContent"]
    assert "cannot install here" in both


def test_an_alarm_in_alarm_stops_the_association(fleet: Fleet, local_aws: Any) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    cloudwatch = local_aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="agent-errors",
        MetricName="Errors",
        Namespace="Acme/Agent",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="agent-errors", StateValue="ALARM", StateReason="t")
    publish(ssm, s3, "1.0", first=True)
    association_id = associate(
        ssm, version="1.0", targets=EVERY, AlarmConfiguration={"Alarms": [{"Name": "agent-errors"}]}
    )
    assert fleet.wait_idle(60)
    assert all(not packages for packages in fleet.installed().values())
    assert {t["Status"] for t in _latest_targets(ssm, association_id)} == {"Skipped"}
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    assert described["TriggeredAlarms"] == [{"Name": "agent-errors", "State": "ALARM"}]

    cloudwatch.set_alarm_state(AlarmName="agent-errors", StateValue="OK", StateReason="t")
    ssm.start_associations_once(AssociationIds=[association_id])
    assert fleet.wait_idle(60)
    assert {v.get(PACKAGE) for v in fleet.installed().values()} == {"1.0"}
    newest = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ][0]
    assert newest["Status"] == "Success" and "TriggeredAlarms" not in newest


def _sample_scripts(version: str) -> dict[str, str]:
    folder = Path(__file__).parents[3] / "sample-repo" / "packages" / "datadog-agent"
    return {p.name: p.read_text() for p in (folder / version / "linux").iterdir()}


def test_the_samples_bad_release_fails_and_rolls_back(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    """sample-repo's datadog-agent 6.11.0 (the README's bad rollout) fails its install with
    a readable error, and the agent rolls back to the version it had."""
    source.add("datadog-agent", "6.10.0", _sample_scripts("6.10.0"))
    source.add("datadog-agent", "6.11.0", _sample_scripts("6.11.0"), default=False)
    agent = make_agent()
    first = agent.configure_package(PackageRequest("Install", "datadog-agent", "6.10.0"))
    assert first.status is PluginStatus.SUCCESS, first.output
    bad = agent.configure_package(PackageRequest("Install", "datadog-agent", "6.11.0"))
    assert bad.status is PluginStatus.FAILED
    assert "config check failed: tags must be a map in 6.11" in bad.output
    assert "successfully rolled back" in bad.output
    assert installed_packages(agent.instance.root) == {"datadog-agent": "6.10.0"}
