"""Association results: DescribeAssociationExecutions, DescribeAssociationExecutionTargets,
DescribeInstanceAssociationsStatus.

Where it sits: handlers registered with the SSM service, reading what the simulated fleet
recorded through `SsmService.start_association_execution` and `record_association_result`
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationExecution.html).
An execution's status is `InProgress` while any instance is Pending/InProgress, then
`Failed` if any failed or timed out, or an alarm of its AlarmConfiguration stopped it
(alarms.py), else `Success`; `ResourceCountByStatus` reads like AWS's "{Failed=1, Success=2}".
A target's output and error are in the Run Command command its `OutputSource` names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from controller.local.ssm.associations import find_association
from controller.local.ssm.errors import SsmError
from controller.local.ssm.paging import page
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import AssociationRecord, ExecutionRecord


def _execution_status(execution: ExecutionRecord) -> tuple[str, str]:
    statuses = [t.status for t in execution.targets.values()]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    text = "{" + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + "}"
    if not statuses and not execution.triggered_alarms:
        return "Pending", text
    if any(s in ("Pending", "InProgress") for s in statuses):
        return "InProgress", text
    # An execution an alarm stopped did not do its job: Failed, like one with a failed target.
    failed = execution.triggered_alarms or any(s in ("Failed", "TimedOut") for s in statuses)
    return ("Failed" if failed else "Success"), text


def _moment(text: str) -> datetime:
    """A CreatedTime filter value, e.g. 2018-07-05T00:00:00.000Z (ISO 8601)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise SsmError(
            "ValidationException", f"CreatedTime {text!r} is not an ISO 8601 date and time."
        ) from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _passes(execution: ExecutionRecord, status: str, item: Params) -> bool:
    """API_AssociationExecutionFilter: ExecutionId and Status EQUAL; CreatedTime EQUAL,
    LESS_THAN or GREATER_THAN
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeAssociationExecutions.html)."""
    key, value, kind = item["Key"], item["Value"], item["Type"]
    if key == "CreatedTime":
        moment = _moment(value)
        if kind == "LESS_THAN":
            return execution.created < moment
        if kind == "GREATER_THAN":
            return execution.created > moment
        return execution.created == moment
    if kind != "EQUAL":
        raise SsmError("ValidationException", f"Filter {key} supports only the type EQUAL.")
    return bool((execution.execution_id if key == "ExecutionId" else status) == value)


def execution_item(record: AssociationRecord, execution: ExecutionRecord) -> Params:
    """API_AssociationExecution."""
    status, counts = _execution_status(execution)
    item: Params = {
        "AssociationId": record.association_id,
        "AssociationVersion": str(execution.association_version),
        "ExecutionId": execution.execution_id,
        "Status": status,
        "DetailedStatus": status,
        "CreatedTime": execution.created,
        "ResourceCountByStatus": counts,
    }
    if execution.last:
        item["LastExecutionDate"] = execution.last
    if execution.alarm_configuration:
        item["AlarmConfiguration"] = execution.alarm_configuration
    if execution.triggered_alarms:
        item["TriggeredAlarms"] = execution.triggered_alarms
    return item


@operation("DescribeAssociationExecutions")
def describe_association_executions(context: Context, params: Params) -> Params:
    """Newest first (the API returns an association's execution history)."""
    record = find_association(context, {"AssociationId": params["AssociationId"]})
    items = []
    for execution in sorted(record.executions.values(), key=lambda e: e.created, reverse=True):
        item = execution_item(record, execution)
        if all(_passes(execution, item["Status"], f) for f in params.get("Filters") or []):
            items.append(item)
    chunk, token = page(items, params.get("MaxResults"), params.get("NextToken"), 50)
    return {"AssociationExecutions": chunk, **({"NextToken": token} if token else {})}


@operation("DescribeAssociationExecutionTargets")
def describe_association_execution_targets(context: Context, params: Params) -> Params:
    record = find_association(context, {"AssociationId": params["AssociationId"]})
    execution = record.executions.get(params["ExecutionId"])
    if execution is None:
        raise SsmError(
            "AssociationExecutionDoesNotExist", "The specified execution ID does not exist."
        )
    items = []
    for result in sorted(execution.targets.values(), key=lambda t: t.instance_id):
        values = {
            "Status": result.status,
            "ResourceId": result.instance_id,
            "ResourceType": "ManagedInstance",
        }
        if not all(values.get(f["Key"]) == f["Value"] for f in params.get("Filters") or []):
            continue
        items.append(
            {
                "AssociationId": record.association_id,
                "AssociationVersion": str(execution.association_version),
                "ExecutionId": execution.execution_id,
                "ResourceId": result.instance_id,
                "ResourceType": "ManagedInstance",
                "Status": result.status,
                "DetailedStatus": result.detailed_status,
                "LastExecutionDate": result.when,
                # The target's output and error: GetCommandInvocation(CommandId=
                # OutputSourceId, InstanceId=ResourceId), as for an association in AWS.
                "OutputSource": {
                    "OutputSourceId": execution.command_id,
                    "OutputSourceType": "RunCommand",
                },
            }
        )
    chunk, token = page(items, params.get("MaxResults"), params.get("NextToken"), 50)
    return {"AssociationExecutionTargets": chunk, **({"NextToken": token} if token else {})}


@operation("DescribeInstanceAssociationsStatus")
def describe_instance_associations_status(context: Context, params: Params) -> Params:
    instance_id = params["InstanceId"]
    results = context.state.instance_association_status.get(instance_id, {})
    items = []
    for association_id, result in sorted(results.items()):
        record = context.state.associations.get(association_id)
        if record is None:
            continue
        item: Params = {
            "AssociationId": association_id,
            "Name": record.fields["Name"],
            "DocumentVersion": record.fields.get("DocumentVersion") or "$DEFAULT",
            "AssociationVersion": str(record.version),
            "InstanceId": instance_id,
            "ExecutionDate": result.when,
            "Status": result.status,
            "DetailedStatus": result.detailed_status,
            "ExecutionSummary": result.output[:512] if result.output else result.status,
        }
        if result.error_code:
            item["ErrorCode"] = result.error_code
        if record.fields.get("AssociationName"):
            item["AssociationName"] = record.fields["AssociationName"]
        items.append(item)
    chunk, token = page(items, params.get("MaxResults"), params.get("NextToken"), 50)
    return {"InstanceAssociationStatusInfos": chunk, **({"NextToken": token} if token else {})}
