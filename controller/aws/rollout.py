"""The AWS calls of a progressive rollout (issue 13): start, executions, targets, alarms, tag.

Stage: observe and apply (`controller.reconcile.observe.rollout`,
`controller.reconcile.apply.rollout`). Every call goes through `controller.aws.api`.

AWS facts (https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
- StartAssociationsOnce takes 1-10 association ids per call (API_StartAssociationsOnce.html).
- DescribeAssociationExecutions lists an association's executions, newest first, at most
  50 a page (API_DescribeAssociationExecutions.html); DescribeAssociationExecutionTargets
  lists one execution's targets with their Status and DetailedStatus
  (API_DescribeAssociationExecutionTargets.html).
- CloudWatch DescribeAlarms takes at most 100 AlarmNames and returns metric and composite
  alarms with their StateValue (OK, ALARM, INSUFFICIENT_DATA)
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.aws import tags as aws_tags
from controller.aws.api import items, pages, request
from controller.aws.session import AwsClients
from controller.model.rollout import MAX_ALARMS, ROLLOUT_TAG, START_ONCE_MAX_IDS

# Target statuses (API_AssociationExecutionTarget.html, Status): what the gate counts.
SUCCEEDED_STATUSES = frozenset({"Success", "Skipped"})
PENDING_STATUSES = frozenset({"Pending", "InProgress"})


@dataclass(frozen=True)
class Execution:
    execution_id: str
    created: float  # unix seconds
    status: str


@dataclass(frozen=True)
class TargetResult:
    resource_id: str
    status: str
    detail: str
    # The Run Command command holding the target's output and error (OutputSource,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_OutputSource.html):
    # GetCommandInvocation(CommandId, InstanceId) shows them. "" when not a RunCommand.
    output_command: str = ""


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value or 0)


def start_once(clients: AwsClients, association_ids: Sequence[str]) -> int:
    """StartAssociationsOnce, 10 ids a call; returns the number of calls."""
    ids = list(association_ids)
    calls = 0
    for first in range(0, len(ids), START_ONCE_MAX_IDS):
        # Starting an association twice runs it twice: not retried blindly.
        request(
            clients,
            "ssm",
            "StartAssociationsOnce",
            idempotent=False,
            AssociationIds=ids[first : first + START_ONCE_MAX_IDS],
        )
        calls += 1
    return calls


def executions_since(clients: AwsClients, association_id: str, since: float) -> list[Execution]:
    """The association's executions created at or after `since` (unix seconds), oldest first.

    AWS lists them newest first: the pages stop at the first older one."""
    found: list[Execution] = []
    for page in pages(
        clients, "ssm", "DescribeAssociationExecutions", AssociationId=association_id, MaxResults=50
    ):
        older = False
        for item in page.get("AssociationExecutions", []):
            created = _seconds(item.get("CreatedTime"))
            if created < since:
                older = True
                break
            found.append(Execution(str(item["ExecutionId"]), created, str(item.get("Status", ""))))
        if older:
            break
    return sorted(found, key=lambda execution: execution.created)


def execution_targets(
    clients: AwsClients, association_id: str, execution_id: str
) -> list[TargetResult]:
    """Every target of one execution with its Status, DetailedStatus and output command."""
    return [
        TargetResult(
            str(item.get("ResourceId", "")),
            str(item.get("Status", "")),
            str(item.get("DetailedStatus", "")),
            _output_command(item.get("OutputSource")),
        )
        for item in items(
            clients,
            "ssm",
            "DescribeAssociationExecutionTargets",
            "AssociationExecutionTargets",
            AssociationId=association_id,
            ExecutionId=execution_id,
            MaxResults=50,
        )
    ]


def _output_command(source: Any) -> str:
    if not isinstance(source, dict) or source.get("OutputSourceType") != "RunCommand":
        return ""
    return str(source.get("OutputSourceId") or "")


def alarm_states(clients: AwsClients, names: Sequence[str]) -> dict[str, str]:
    """AlarmName -> StateValue for the alarms that exist (metric and composite)."""
    states: dict[str, str] = {}
    wanted = list(dict.fromkeys(names))
    for first in range(0, len(wanted), MAX_ALARMS):
        for page in pages(
            clients,
            "cloudwatch",
            "DescribeAlarms",
            AlarmNames=wanted[first : first + MAX_ALARMS],
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        ):
            for key in ("MetricAlarms", "CompositeAlarms"):
                for alarm in page.get(key, []):
                    states[str(alarm["AlarmName"])] = str(alarm.get("StateValue", ""))
    return states


def write_state(clients: AwsClients, package: str, value: str) -> None:
    """The `ssm-gitops:rollout` tag on the package document (AddTagsToResource overwrites)."""
    aws_tags.set_tags(clients, "Document", package, ((ROLLOUT_TAG, value),))
