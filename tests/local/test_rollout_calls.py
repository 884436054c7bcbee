"""The calls a progressive rollout makes, on the embedded endpoint as AWS answers them:
UpdateAssociation (versions), StartAssociationsOnce, DescribeAssociationExecutions,
DescribeAssociationExecutionTargets, CloudWatch alarms, AlarmConfiguration/TriggeredAlarms.
(The fleet running them for real: tests/local/fleet/test_fleet_rollout_calls.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from tests.local.helpers import error_code

ACCOUNT, REGION = "123456789012", "us-east-1"
PARAMS = {"action": ["Install"], "name": ["Tool"], "version": ["1.0"]}
ALARMS = {"Alarms": [{"Name": "canary-errors"}], "IgnorePollAlarmFailure": False}


@pytest.fixture
def ssm(local_aws: LocalAWS) -> Any:
    return local_aws.client("ssm")


def _create(ssm: Any, **extra: Any) -> str:
    return str(
        ssm.create_association(
            Name="AWS-ConfigureAWSPackage",
            Parameters=PARAMS,
            Targets=[{"Key": "tag:ring", "Values": ["canary"]}],
            **extra,
        )["AssociationDescription"]["AssociationId"]
    )


def _alarm(local_aws: LocalAWS, state: str = "OK") -> Any:
    cloudwatch = local_aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="canary-errors",
        MetricName="Errors",
        Namespace="Acme/Agent",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="canary-errors", StateValue=state, StateReason="test")
    return cloudwatch


def test_cloudwatch_alarms_through_the_endpoint(local_aws: LocalAWS) -> None:
    """PutMetricAlarm, SetAlarmState and DescribeAlarms work with boto3 on the endpoint."""
    cloudwatch = _alarm(local_aws)
    cloudwatch.set_alarm_state(AlarmName="canary-errors", StateValue="ALARM", StateReason="fired")
    alarms = cloudwatch.describe_alarms(AlarmNames=["canary-errors"])["MetricAlarms"]
    assert [(a["AlarmName"], a["StateValue"]) for a in alarms] == [("canary-errors", "ALARM")]
    firing = cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert [a["AlarmName"] for a in firing] == ["canary-errors"]


def test_stale_association_version_is_invalid_association_version(ssm: Any) -> None:
    """Bug: a stale AssociationVersion answered AssociationVersionMismatch, an error code
    botocore's model does not have; API_UpdateAssociation lists InvalidAssociationVersion."""
    association_id = _create(ssm)
    ssm.update_association(AssociationId=association_id, Parameters=PARAMS, AssociationVersion="1")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_association(
            AssociationId=association_id, Parameters=PARAMS, AssociationVersion="1"
        )
    assert error_code(raised) == "InvalidAssociationVersion"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_association(AssociationId=association_id, DocumentVersion="99")
    assert error_code(raised) == "InvalidDocumentVersion"


def test_start_associations_once_takes_at_most_ten_ids(ssm: Any) -> None:
    ids = [_create(ssm, AssociationName=f"ring-{n}") for n in range(11)]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.start_associations_once(AssociationIds=ids)
    assert error_code(raised) == "ValidationException"
    ssm.start_associations_once(AssociationIds=ids[:10])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.start_associations_once(AssociationIds=["0" * 8 + "-0000-0000-0000-" + "0" * 12])
    assert error_code(raised) == "AssociationDoesNotExist"


def test_executions_newest_first_filters_and_output_source(
    ssm: Any, local_aws: LocalAWS
) -> None:
    """Bugs: a CreatedTime filter compared text (timezones, precision), and a target's
    OutputSourceId was the execution id, which GetCommandInvocation cannot read; AWS names
    the Run Command command holding the target's output and error."""
    association_id = _create(ssm)
    first = local_aws.ssm.start_association_execution(ACCOUNT, REGION, association_id)
    local_aws.ssm.record_association_result(
        ACCOUNT, REGION, association_id, first, "i-0000000000000000a", "Success", output="ok"
    )
    between = datetime.now(UTC)
    second = local_aws.ssm.start_association_execution(ACCOUNT, REGION, association_id)
    local_aws.ssm.record_association_result(
        ACCOUNT,
        REGION,
        association_id,
        second,
        "i-0000000000000000a",
        "Failed",
        output="Failed to install package; install action state during install is Failed",
        error="marker /etc/canary missing",
    )
    executions = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    assert [e["ExecutionId"] for e in executions] == [second, first]
    assert [e["Status"] for e in executions] == ["Failed", "Success"]

    def ids(*filters: dict[str, str]) -> list[str]:
        found = ssm.describe_association_executions(
            AssociationId=association_id, Filters=list(filters)
        )["AssociationExecutions"]
        return [e["ExecutionId"] for e in found]

    moment = between.astimezone(timezone_plus_two()).isoformat()
    assert ids({"Key": "CreatedTime", "Value": moment, "Type": "GREATER_THAN"}) == [second]
    assert ids({"Key": "CreatedTime", "Value": moment, "Type": "LESS_THAN"}) == [first]
    assert ids({"Key": "Status", "Value": "Success", "Type": "EQUAL"}) == [first]
    assert ids({"Key": "ExecutionId", "Value": second, "Type": "EQUAL"}) == [second]

    target = ssm.describe_association_execution_targets(
        AssociationId=association_id,
        ExecutionId=second,
        Filters=[{"Key": "Status", "Value": "Failed"}],
    )["AssociationExecutionTargets"][0]
    assert (target["Status"], target["DetailedStatus"]) == ("Failed", "Failed")
    assert target["OutputSource"]["OutputSourceType"] == "RunCommand"
    invocation = ssm.get_command_invocation(
        CommandId=target["OutputSource"]["OutputSourceId"], InstanceId=target["ResourceId"]
    )
    assert invocation["Status"] == "Failed"
    assert invocation["StandardErrorContent"] == "marker /etc/canary missing"
    assert "install action state during install is Failed" in invocation["StandardOutputContent"]
    # The association's commands are read by id; SendCommand's history stays its own.
    assert ssm.list_commands()["Commands"] == []


def timezone_plus_two() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_alarm_configuration_is_stored_and_triggered_alarms_reported(
    ssm: Any, local_aws: LocalAWS
) -> None:
    """AlarmConfiguration is echoed by Create/Update/Describe; an alarm in ALARM when an
    execution checks it is that execution's and the association's TriggeredAlarms."""
    _alarm(local_aws, "OK")
    association_id = _create(ssm, AlarmConfiguration=ALARMS)
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    assert described["AlarmConfiguration"] == ALARMS
    assert "TriggeredAlarms" not in described

    quiet = local_aws.ssm.start_association_execution(ACCOUNT, REGION, association_id)
    assert local_aws.ssm.check_alarms(ACCOUNT, REGION, association_id, quiet) is None

    local_aws.client("cloudwatch").set_alarm_state(
        AlarmName="canary-errors", StateValue="ALARM", StateReason="errors"
    )
    fired = local_aws.ssm.start_association_execution(ACCOUNT, REGION, association_id)
    reason = local_aws.ssm.check_alarms(ACCOUNT, REGION, association_id, fired)
    assert reason == "not started: CloudWatch alarm canary-errors is in ALARM"
    executions = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    assert executions[0]["TriggeredAlarms"] == [{"Name": "canary-errors", "State": "ALARM"}]
    assert executions[0]["AlarmConfiguration"] == ALARMS
    assert executions[0]["Status"] == "Failed"
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    assert described["TriggeredAlarms"] == [{"Name": "canary-errors", "State": "ALARM"}]

    # UpdateAssociation without AlarmConfiguration clears it (API_UpdateAssociation nulls).
    ssm.update_association(AssociationId=association_id, Parameters=PARAMS)
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    assert "AlarmConfiguration" not in described
    later = local_aws.ssm.start_association_execution(ACCOUNT, REGION, association_id)
    assert local_aws.ssm.check_alarms(ACCOUNT, REGION, association_id, later) is None


def test_an_alarm_that_cannot_be_read_stops_unless_ignored(
    ssm: Any, local_aws: LocalAWS
) -> None:
    """API_AlarmConfiguration: IgnorePollAlarmFailure true runs on when the alarm status
    cannot be retrieved; false (the default) does not."""
    strict = _create(ssm, AlarmConfiguration={"Alarms": [{"Name": "no-such-alarm"}]})
    execution = local_aws.ssm.start_association_execution(ACCOUNT, REGION, strict)
    assert "could not be read" in str(
        local_aws.ssm.check_alarms(ACCOUNT, REGION, strict, execution)
    )
    described = ssm.describe_association(AssociationId=strict)["AssociationDescription"]
    assert described["TriggeredAlarms"] == [{"Name": "no-such-alarm", "State": "UNKNOWN"}]
    lenient = _create(
        ssm,
        AssociationName="lenient",
        AlarmConfiguration={"Alarms": [{"Name": "no-such-alarm"}], "IgnorePollAlarmFailure": True},
    )
    execution = local_aws.ssm.start_association_execution(ACCOUNT, REGION, lenient)
    assert local_aws.ssm.check_alarms(ACCOUNT, REGION, lenient, execution) is None
