"""Run Command: SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation.

Where it sits: handlers registered with the SSM service. SendCommand is the Distributor's
"install one time" path with `AWS-ConfigureAWSPackage`
(https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-deploy.html).
Targets must be managed instances the fleet registered (InvalidInstanceId otherwise, as AWS
answers for unknown instances); each gets a `Pending` invocation until the fleet records
a result (service.record_command_result).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from controller.local import hooks
from controller.local.ssm.documents import find_document, visible_version
from controller.local.ssm.errors import SsmError
from controller.local.ssm.instances import resolve_targets
from controller.local.ssm.paging import page
from controller.local.ssm.parameters import check_parameters
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import CommandRecord, InvocationRecord, now

_FINAL = ("Success", "Failed", "TimedOut", "Cancelled", "DeliveryTimedOut", "ExecutionTimedOut")


def _status(command: CommandRecord) -> str:
    statuses = [i.status for i in command.invocations.values()]
    if not statuses or all(s == "Pending" for s in statuses):
        return "Pending"
    if any(s not in _FINAL for s in statuses):
        return "InProgress"
    if all(s == "Success" for s in statuses):
        return "Success"
    return "Failed"


def _command(command: CommandRecord) -> Params:
    fields = command.fields
    invocations = list(command.invocations.values())
    status = _status(command)
    result: Params = {
        "CommandId": command.command_id,
        "DocumentName": fields["DocumentName"],
        "DocumentVersion": fields.get("DocumentVersion", "$DEFAULT"),
        "Comment": fields.get("Comment", ""),
        "ExpiresAfter": command.requested
        + timedelta(seconds=int(fields.get("TimeoutSeconds") or 3600)),  # type: ignore[call-overload]
        "Parameters": fields.get("Parameters", {}),
        "InstanceIds": fields.get("InstanceIds", []),
        "Targets": fields.get("Targets", []),
        "RequestedDateTime": command.requested,
        "Status": status,
        "StatusDetails": status,
        "MaxConcurrency": fields.get("MaxConcurrency", "50"),
        "MaxErrors": fields.get("MaxErrors", "0"),
        "TargetCount": len(invocations),
        "CompletedCount": sum(1 for i in invocations if i.status in _FINAL),
        "ErrorCount": sum(1 for i in invocations if i.status in _FINAL and i.status != "Success"),
        "DeliveryTimedOutCount": 0,
        "TimeoutSeconds": fields.get("TimeoutSeconds", 3600),
    }
    for key in ("OutputS3Region", "OutputS3BucketName", "OutputS3KeyPrefix", "ServiceRoleArn"):
        if key in fields:
            result[key if key != "ServiceRoleArn" else "ServiceRole"] = fields[key]
    return result


@operation("SendCommand")
def send_command(context: Context, params: Params) -> Params:
    document = find_document(context, params["DocumentName"])
    if document.document_type != "Command":
        raise SsmError(
            "InvalidDocument",
            f"Document {document.name} is a {document.document_type} document; SendCommand "
            "runs Command documents (AWS-ConfigureAWSPackage installs packages).",
        )
    version = visible_version(context, document, params.get("DocumentVersion"), None)
    check_parameters(document.name, version.parameters, dict(params.get("Parameters") or {}))
    state = context.state
    instance_ids = list(params.get("InstanceIds") or [])
    if instance_ids:
        unknown = [i for i in instance_ids if i not in state.instances]
        if unknown:
            raise SsmError(
                "InvalidInstanceId",
                f"Instances [[{', '.join(unknown)}]] not in a valid state for account "
                f"{context.account}",
            )
        selected = instance_ids
    elif params.get("Targets"):
        selected = resolve_targets(state, list(params["Targets"]))
    else:
        raise SsmError("InvalidTarget", "Specify InstanceIds or Targets.")
    requested = now()
    command = CommandRecord(
        command_id=str(uuid.uuid4()),
        fields={k: v for k, v in params.items()},
        requested=requested,
        invocations={i: InvocationRecord(i, "Pending", "Pending", requested) for i in selected},
    )
    state.commands[command.command_id] = command
    context.emit(
        hooks.CommandSent(
            context.account,
            context.region,
            command.command_id,
            params["DocumentName"],  # as the caller named it (a name or a shared ARN)
            str(version.number),
            {k: list(v) for k, v in dict(params.get("Parameters") or {}).items()},
            tuple(selected),
        )
    )
    return {"Command": _command(command)}


def _get(context: Context, command_id: str) -> CommandRecord:
    command = context.state.commands.get(command_id)
    if command is None:
        raise SsmError("InvalidCommandId", f"Command {command_id} does not exist.")
    return command


def _selected(context: Context, params: Params) -> list[CommandRecord]:
    """The command named by CommandId, else every command newest first, without those
    carrying association executions: those are read by their id, from
    DescribeAssociationExecutionTargets' OutputSource."""
    if params.get("CommandId"):
        return [_get(context, params["CommandId"])]
    commands = [c for c in context.state.commands.values() if c.association_id is None]
    return sorted(commands, key=lambda c: c.requested, reverse=True)


def _passes(command: CommandRecord, filters: list[Params]) -> bool:
    for item in filters:
        key, value = item["key"], item["value"]
        if key == "Status" and _status(command) != value:
            return False
        if key == "DocumentName" and command.fields["DocumentName"] != value:
            return False
        if key in ("InvokedAfter", "InvokedBefore"):
            from datetime import datetime

            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if (command.requested < moment) != (key == "InvokedBefore"):
                return False
    return True


@operation("ListCommands")
def list_commands(context: Context, params: Params) -> Params:
    commands = _selected(context, params)
    instance_id = params.get("InstanceId")
    commands = [
        c
        for c in commands
        if (instance_id is None or instance_id in c.invocations)
        and _passes(c, params.get("Filters") or [])
    ]
    chunk, token = page(commands, params.get("MaxResults"), params.get("NextToken"), 50)
    return {"Commands": [_command(c) for c in chunk], **({"NextToken": token} if token else {})}


def _invocation(command: CommandRecord, invocation: InvocationRecord, details: bool) -> Params:
    fields = command.fields
    result: Params = {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": "",
        "Comment": fields.get("Comment", ""),
        "DocumentName": fields["DocumentName"],
        "DocumentVersion": fields.get("DocumentVersion", "$DEFAULT"),
        "RequestedDateTime": invocation.requested,
        "Status": invocation.status,
        "StatusDetails": invocation.status_details,
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
    }
    if details:
        plugin: Params = {
            "Name": _plugin_name(fields),
            "Status": invocation.status,
            "StatusDetails": invocation.status_details,
            "ResponseCode": invocation.response_code,
            "Output": invocation.output[:2500],
        }
        if invocation.start:
            plugin["ResponseStartDateTime"] = invocation.start
        if invocation.end:
            plugin["ResponseFinishDateTime"] = invocation.end
        result["CommandPlugins"] = [plugin]
    return result


def _plugin_name(fields: dict[str, object]) -> str:
    return (
        "configurePackage"
        if fields["DocumentName"] == "AWS-ConfigureAWSPackage"
        else "aws:runShellScript"
    )


@operation("ListCommandInvocations")
def list_command_invocations(context: Context, params: Params) -> Params:
    commands = _selected(context, params)
    instance_id = params.get("InstanceId")
    pairs = [
        (c, i)
        for c in commands
        for _, i in sorted(c.invocations.items())
        if instance_id is None or i.instance_id == instance_id
    ]
    chunk, token = page(pairs, params.get("MaxResults"), params.get("NextToken"), 50)
    details = bool(params.get("Details"))
    return {
        "CommandInvocations": [_invocation(c, i, details) for c, i in chunk],
        **({"NextToken": token} if token else {}),
    }


@operation("GetCommandInvocation")
def get_command_invocation(context: Context, params: Params) -> Params:
    command = context.state.commands.get(params["CommandId"])
    invocation = command.invocations.get(params["InstanceId"]) if command else None
    if command is None or invocation is None:
        raise SsmError("InvocationDoesNotExist", "The command or the instance does not exist.")
    fields = command.fields
    result: Params = {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "Comment": fields.get("Comment", ""),
        "DocumentName": fields["DocumentName"],
        "DocumentVersion": fields.get("DocumentVersion", "$DEFAULT"),
        "PluginName": params.get("PluginName") or _plugin_name(fields),
        "ResponseCode": invocation.response_code,
        "Status": invocation.status,
        "StatusDetails": invocation.status_details,
        "StandardOutputContent": invocation.output,
        "StandardOutputUrl": "",
        "StandardErrorContent": invocation.error,
        "StandardErrorUrl": "",
    }
    # Execution times are ISO-8601 strings (the model's StringDateTime), present once known.
    if invocation.start:
        result["ExecutionStartDateTime"] = invocation.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    if invocation.end:
        result["ExecutionEndDateTime"] = invocation.end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return result
