"""State Manager associations: Create/Update/Describe/List/Delete, versions, executions.

Where it sits: handlers registered with the SSM service; changes are announced to the
fleet (hooks.py). Rules from the API reference
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
- API_UpdateAssociation: "the system removes all optional parameters from the request and
  overwrites the association with null values for those parameters" -- every optional field
  not sent is cleared (Name, InstanceId and Targets are kept), and AssociationVersion
  increments; a stale AssociationVersion is InvalidAssociationVersion.
- API_ListAssociations returns AssociationSummary items: no Parameters, no rate control.
- Parameters are checked against the document's (parameters.py); the document must exist
  (InvalidDocument) and its version must exist (InvalidDocumentVersion).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import regex

from controller.local import hooks
from controller.local.ssm.documents import find_document, visible_version
from controller.local.ssm.errors import SsmError, association_does_not_exist
from controller.local.ssm.paging import page
from controller.local.ssm.parameters import check_parameters
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import AssociationRecord, RegionState, now

# Fields of CreateAssociation/UpdateAssociation that AWS echoes in AssociationDescription.
OPTIONAL_FIELDS = (
    "DocumentVersion",
    "Parameters",
    "ScheduleExpression",
    "OutputLocation",
    "AssociationName",
    "AutomationTargetParameterName",
    "MaxErrors",
    "MaxConcurrency",
    "ComplianceSeverity",
    "SyncCompliance",
    "ApplyOnlyAtCronInterval",
    "CalendarNames",
    "TargetLocations",
    "ScheduleOffset",
    "Duration",
    "TargetMaps",
    "AlarmConfiguration",
)
KEPT_FIELDS = ("Name", "InstanceId", "Targets")
SUMMARY_FIELDS = (
    "Name",
    "InstanceId",
    "DocumentVersion",
    "Targets",
    "ScheduleExpression",
    "AssociationName",
    "ScheduleOffset",
    "Duration",
    "TargetMaps",
)

# State Manager schedules: cron/rate expressions, rate at least 30 minutes
# (https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html).
_RATE = regex.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = regex.compile(r"cron\(.+\)")


def check_schedule(expression: str | None) -> None:
    if expression is None:
        return
    rate = _RATE.fullmatch(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        minutes = amount * {"m": 1, "h": 60, "d": 1440}[unit[0]]
        singular = unit.rstrip("s") == unit
        if amount == 0 or (amount == 1) != singular or minutes < 30:
            raise SsmError(
                "InvalidSchedule",
                f"Schedule expression {expression} is not valid: rates are at least 30 minutes, "
                "e.g. rate(30 minutes), rate(1 hour).",
            )
        return
    if not _CRON.fullmatch(expression):
        raise SsmError("InvalidSchedule", f"Schedule expression {expression} is not valid.")


def _check_against_document(context: Context, fields: dict[str, Any]) -> None:
    document = find_document(context, str(fields["Name"]))
    if document.document_type not in ("Command", "Automation", "Policy"):
        raise SsmError(
            "InvalidDocument",
            f"Document {document.name} is a {document.document_type} document; associations "
            "run Command, Automation or Policy documents (AWS-ConfigureAWSPackage installs "
            "packages).",
        )
    requested = fields.get("DocumentVersion")
    version = visible_version(
        context, document, None if requested is None else str(requested), None
    )
    check_parameters(document.name, version.parameters, dict(fields.get("Parameters") or {}))
    check_schedule(fields.get("ScheduleExpression"))


def _overview(state: RegionState, record: AssociationRecord) -> Params:
    counts: dict[str, int] = {}
    for results in state.instance_association_status.values():
        result = results.get(record.association_id)
        if result is not None:
            counts[result.status] = counts.get(result.status, 0) + 1
    if not counts:
        return {
            "Status": "Pending",
            "DetailedStatus": "Creating",
            "AssociationStatusAggregatedCount": {},
        }
    if counts.get("Failed"):
        status = "Failed"
    elif set(counts) == {"Success"}:
        status = "Success"
    else:
        status = "Pending"
    return {"Status": status, "DetailedStatus": status, "AssociationStatusAggregatedCount": counts}


def _description(context: Context, record: AssociationRecord) -> Params:
    fields = record.fields
    result: Params = {
        k: fields[k] for k in KEPT_FIELDS + OPTIONAL_FIELDS if fields.get(k) is not None
    }
    result.setdefault("DocumentVersion", "$DEFAULT")
    result.setdefault("ApplyOnlyAtCronInterval", False)
    overview = _overview(context.state, record)
    result.update(
        {
            "AssociationId": record.association_id,
            "AssociationVersion": str(record.version),
            "Date": record.created,
            "LastUpdateAssociationDate": record.updated,
            # API_AssociationStatus: Name is Pending | Success | Failed.
            "Status": {
                "Date": record.updated,
                "Name": overview["Status"],
                "Message": f"Associated with {fields['Name']}",
            },
            "Overview": overview,
        }
    )
    if record.last_execution:
        result["LastExecutionDate"] = record.last_execution
    # API_AssociationDescription TriggeredAlarms: "The CloudWatch alarm that was invoked
    # during the association" -- the one that stopped its latest execution.
    latest = max(record.executions.values(), key=lambda e: e.created, default=None)
    if latest is not None and latest.triggered_alarms:
        result["TriggeredAlarms"] = latest.triggered_alarms
    if record.last_success:
        result["LastSuccessfulExecutionDate"] = record.last_success
    return result


def snapshot(account: str, region: str, record: AssociationRecord) -> hooks.AssociationSnapshot:
    fields = record.fields
    return hooks.AssociationSnapshot(
        account=account,
        region=region,
        association_id=record.association_id,
        association_version=str(record.version),
        name=str(fields["Name"]),
        document_version=str(fields.get("DocumentVersion") or "$DEFAULT"),
        parameters={k: list(v) for k, v in dict(fields.get("Parameters") or {}).items()},  # type: ignore[call-overload]
        targets=tuple(
            hooks.Target(t["Key"], tuple(t["Values"]))
            for t in list(fields.get("Targets") or [])  # type: ignore[call-overload]
        ),
        instance_id=fields.get("InstanceId"),  # type: ignore[arg-type]
        schedule_expression=fields.get("ScheduleExpression"),  # type: ignore[arg-type]
        apply_only_at_cron_interval=bool(fields.get("ApplyOnlyAtCronInterval")),
        association_name=fields.get("AssociationName"),  # type: ignore[arg-type]
    )


def find_association(context: Context, params: Params) -> AssociationRecord:
    state = context.state
    association_id = params.get("AssociationId")
    if association_id:
        record = state.associations.get(association_id)
        if record is None:
            raise association_does_not_exist()
        return record
    name, instance_id = params.get("Name"), params.get("InstanceId")
    for record in state.associations.values():
        if record.fields.get("Name") == name and record.fields.get("InstanceId") == instance_id:
            return record
    raise association_does_not_exist()


@operation("CreateAssociation")
def create_association(context: Context, params: Params) -> Params:
    fields = {k: params[k] for k in KEPT_FIELDS + OPTIONAL_FIELDS if k in params}
    if not fields.get("InstanceId") and not fields.get("Targets"):
        raise SsmError("InvalidTarget", "Specify Targets (or the legacy InstanceId).")
    if fields.get("InstanceId") and fields.get("Targets"):
        raise SsmError("InvalidTarget", "Specify either Targets or InstanceId, not both.")
    _check_against_document(context, fields)
    if fields.get("InstanceId"):
        for record in context.state.associations.values():
            if (
                record.fields.get("InstanceId") == fields["InstanceId"]
                and record.fields.get("Name") == fields["Name"]
            ):
                raise SsmError(
                    "AssociationAlreadyExists", "The specified association already exists."
                )
    created = now()
    record = AssociationRecord(
        association_id=str(uuid.uuid4()),
        version=1,
        fields=fields,
        created=created,
        updated=created,
        tags={t["Key"]: t["Value"] for t in params.get("Tags") or []},
        history=[(1, created, dict(fields))],
    )
    context.state.associations[record.association_id] = record
    context.emit(
        hooks.AssociationChanged("created", snapshot(context.account, context.region, record))
    )
    return {"AssociationDescription": _description(context, record)}


@operation("UpdateAssociation")
def update_association(context: Context, params: Params) -> Params:
    record = find_association(context, {"AssociationId": params["AssociationId"]})
    expected = params.get("AssociationVersion")
    if expected not in (None, "$LATEST") and expected != str(record.version):
        # API_UpdateAssociation names no other error for a stale AssociationVersion ("You
        # must specify the latest association version in the service"); botocore's model
        # lists InvalidAssociationVersion and no AssociationVersionMismatch.
        raise SsmError(
            "InvalidAssociationVersion",
            f"The association version {expected} is not the latest ({record.version}).",
        )
    fields = {k: record.fields[k] for k in KEPT_FIELDS if record.fields.get(k) is not None}
    fields.update({k: params[k] for k in KEPT_FIELDS + OPTIONAL_FIELDS if k in params})
    _check_against_document(context, fields)
    record.version += 1
    record.fields = fields
    record.updated = now()
    record.history.append((record.version, record.updated, dict(fields)))
    context.emit(
        hooks.AssociationChanged("updated", snapshot(context.account, context.region, record))
    )
    return {"AssociationDescription": _description(context, record)}


@operation("DescribeAssociation")
def describe_association(context: Context, params: Params) -> Params:
    record = find_association(context, params)
    description = _description(context, record)
    wanted = params.get("AssociationVersion")
    if wanted not in (None, "$LATEST", str(record.version)):
        old = [fields for number, _, fields in record.history if str(number) == wanted]
        if not old:
            raise SsmError(
                "InvalidAssociationVersion", f"Association version {wanted} does not exist."
            )
        for key in OPTIONAL_FIELDS + KEPT_FIELDS:
            description.pop(key, None)
        description.update({k: v for k, v in old[0].items() if v is not None})
        description["AssociationVersion"] = wanted
    return {"AssociationDescription": description}


@operation("DeleteAssociation")
def delete_association(context: Context, params: Params) -> Params:
    record = find_association(context, params)
    del context.state.associations[record.association_id]
    for results in context.state.instance_association_status.values():
        results.pop(record.association_id, None)
    context.emit(
        hooks.AssociationChanged("deleted", snapshot(context.account, context.region, record))
    )
    return {}


def _passes(context: Context, record: AssociationRecord, item: Params) -> bool:
    key, value = str(item["key"]), str(item["value"])
    fields = record.fields
    if key == "AssociationId":
        return record.association_id == value
    if key == "AssociationStatusName":
        return bool(_overview(context.state, record)["Status"] == value)
    if key in ("LastExecutedBefore", "LastExecutedAfter"):
        if record.last_execution is None:
            return False
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        before = record.last_execution < moment
        return before if key == "LastExecutedBefore" else not before
    if key == "ResourceGroupName":
        return any(
            t.get("Key") == "resource-groups:Name" and value in t.get("Values", [])
            for t in list(fields.get("Targets") or [])  # type: ignore[call-overload]
        )
    return bool(fields.get(key) == value)


@operation("ListAssociations")
def list_associations(context: Context, params: Params) -> Params:
    filters = params.get("AssociationFilterList") or []
    records = [
        r
        for r in sorted(context.state.associations.values(), key=lambda r: r.created)
        if all(_passes(context, r, item) for item in filters)
    ]
    chunk, token = page(records, params.get("MaxResults"), params.get("NextToken"), 50)
    summaries = []
    for record in chunk:
        summary: Params = {
            k: record.fields[k] for k in SUMMARY_FIELDS if record.fields.get(k) is not None
        }
        summary.setdefault("DocumentVersion", "$DEFAULT")
        summary["AssociationId"] = record.association_id
        summary["AssociationVersion"] = str(record.version)
        summary["Overview"] = _overview(context.state, record)
        if record.last_execution:
            summary["LastExecutionDate"] = record.last_execution
        summaries.append(summary)
    return {"Associations": summaries, **({"NextToken": token} if token else {})}


@operation("ListAssociationVersions")
def list_association_versions(context: Context, params: Params) -> Params:
    record = find_association(context, {"AssociationId": params["AssociationId"]})
    versions = []
    for number, created, fields in reversed(record.history):
        item: Params = {k: v for k, v in fields.items() if k != "InstanceId" and v is not None}
        item.update(
            {
                "AssociationId": record.association_id,
                "AssociationVersion": str(number),
                "CreatedDate": created,
            }
        )
        versions.append(item)
    chunk, token = page(versions, params.get("MaxResults"), params.get("NextToken"), 50)
    return {"AssociationVersions": chunk, **({"NextToken": token} if token else {})}


@operation("StartAssociationsOnce")
def start_associations_once(context: Context, params: Params) -> Params:
    ids = list(params["AssociationIds"])
    for association_id in ids:
        if association_id not in context.state.associations:
            raise association_does_not_exist()
    context.emit(hooks.AssociationsStartedOnce(context.account, context.region, tuple(ids)))
    return {}
