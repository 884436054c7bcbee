"""Association results: DescribeAssociationExecutions, DescribeAssociationExecutionTargets,
DescribeInstanceAssociationsStatus.

Where it sits: handlers registered with the SSM service, reading what the simulated fleet
recorded through `SsmService.start_association_execution` and `record_association_result`
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationExecution.html).
An execution's status is `InProgress` while any instance is Pending/InProgress, then
`Failed` if any failed, else `Success`; `ResourceCountByStatus` reads like AWS's
"{Failed=1, Success=2}".
"""

from __future__ import annotations

from controller.local.ssm.associations import find_association
from controller.local.ssm.errors import SsmError
from controller.local.ssm.paging import page
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import ExecutionRecord


def _execution_status(execution: ExecutionRecord) -> tuple[str, str]:
    statuses = [t.status for t in execution.targets.values()]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    text = "{" + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + "}"
    if not statuses:
        return "Pending", text
    if any(s in ("Pending", "InProgress") for s in statuses):
        return "InProgress", text
    return ("Failed" if "Failed" in statuses else "Success"), text


def _compare(actual: str, wanted: str, kind: str) -> bool:
    if kind == "LESS_THAN":
        return actual < wanted
    if kind == "GREATER_THAN":
        return actual > wanted
    return actual == wanted


@operation("DescribeAssociationExecutions")
def describe_association_executions(context: Context, params: Params) -> Params:
    record = find_association(context, {"AssociationId": params["AssociationId"]})
    items = []
    for execution in sorted(record.executions.values(), key=lambda e: e.created, reverse=True):
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
        values = {
            "ExecutionId": execution.execution_id,
            "Status": status,
            "CreatedTime": execution.created.isoformat(),
        }
        if all(
            _compare(values[f["Key"]], f["Value"], f["Type"]) for f in params.get("Filters") or []
        ):
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
                "OutputSource": {
                    "OutputSourceId": execution.execution_id,
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
