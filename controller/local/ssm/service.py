"""The local SSM service: routes an `AmazonSSM.<Operation>` request to its handler.

Where it sits: the WSGI router (controller/local/server.py) hands every request whose
`X-Amz-Target` starts with `AmazonSSM.` to `SsmService.handle`. It parses the JSON body,
validates it against botocore's model (validation.py), runs the handler with the store
locked, turns `SsmError` into AWS's JSON error shape and anything unexpected into an
AWS-shaped `InternalServerError`, then delivers fleet events (hooks.py) unlocked.

The methods below `handle` are the fleet's side of the extension point (docs/local.md).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.local import hooks
from controller.local.ssm import validation
from controller.local.ssm.errors import SsmError, association_does_not_exist, internal
from controller.local.ssm.store import (
    CommandRecord,
    ExecutionRecord,
    InvocationRecord,
    RegionState,
    Store,
    TargetResult,
    now,
)

log = logging.getLogger(__name__)

Params = dict[str, Any]
Handler = Callable[["Context", Params], Params]
HANDLERS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for one SSM operation (the name in botocore's model)."""

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


@dataclass(frozen=True)
class Options:
    """Behaviour knobs of the local SSM (set by LocalAWS / `ssm-gitops local`)."""

    create_delay: float = 0.05  # seconds a new document version stays Creating/Updating
    check_responses: bool = False  # check every answer against the model (tests turn it on)


@dataclass
class Context:
    """What a handler may use: the caller's account and region, the store, the endpoint."""

    service: SsmService
    account: str
    region: str
    endpoint: str
    events: list[hooks.Event] = field(default_factory=list)

    @property
    def state(self) -> RegionState:
        return self.service.store.state(self.account, self.region)

    def state_of(self, account: str) -> RegionState:
        return self.service.store.state(account, self.region)

    @property
    def options(self) -> Options:
        return self.service.options

    def emit(self, event: hooks.Event) -> None:
        self.events.append(event)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _load_handlers() -> None:
    # Importing the modules registers their operations.
    from controller.local.ssm import (  # noqa: F401
        associations,
        commands,
        documents,
        executions,
        instances,
        listing,
        sharing,
        tags,
    )


class SsmService:
    """Thread-safe in-memory SSM, one state per (account, region)."""

    def __init__(self, options: Options | None = None) -> None:
        _load_handlers()
        self.options = options or Options()
        self.store = Store()
        self.listener: hooks.FleetListener | None = None
        self._listener_lock = threading.Lock()

    # -- requests -----------------------------------------------------------------------

    def handle(
        self, operation_name: str, body: bytes, account: str, region: str, endpoint: str
    ) -> tuple[int, bytes]:
        """Answer one request: (HTTP status, JSON body)."""
        context = Context(self, account, region, endpoint)
        try:
            params = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            return 400, SsmError("SerializationException", "Malformed JSON body.").body()
        try:
            validation.validate(operation_name, params)
            handler = HANDLERS.get(operation_name)
            if handler is None:
                raise SsmError(
                    "UnknownOperationException",
                    f"Operation {operation_name} is not supported by the local endpoint.",
                )
            with self.store.lock:
                result = handler(context, params)
            if self.options.check_responses:
                problems = validation.response_problems(operation_name, result)
                if problems:
                    log.error("%s answered off-model: %s", operation_name, problems)
                    raise SsmError(
                        "InternalServerError",
                        f"local endpoint bug: {operation_name} response breaks the model: "
                        + "; ".join(problems),
                        500,
                    )
            payload = json.dumps(result, default=_json_default).encode()
        except SsmError as error:
            return error.status, error.body()
        except Exception:
            log.exception("local SSM failed on %s", operation_name)
            return 500, internal().body()
        self._deliver(context.events)
        return 200, payload

    def _deliver(self, events: list[hooks.Event]) -> None:
        listener = self.listener
        if listener is None:
            return
        for event in events:
            try:
                hooks.deliver(listener, event)
            except Exception:
                log.exception("fleet listener failed on %s", type(event).__name__)

    def reset(self) -> None:
        self.store.reset()

    # -- the fleet's side (hooks.py, docs/local.md) -------------------------------------

    def set_listener(self, listener: hooks.FleetListener | None) -> None:
        """Install (or remove, with None) the one listener told about changes."""
        with self._listener_lock:
            self.listener = listener

    def register_instance(self, account: str, region: str, instance: hooks.ManagedInstance) -> None:
        """Make a managed node known: DescribeInstanceInformation lists it, targets match it."""
        with self.store.lock:
            self.store.state(account, region).instances[instance.instance_id] = instance

    def deregister_instance(self, account: str, region: str, instance_id: str) -> None:
        with self.store.lock:
            self.store.state(account, region).instances.pop(instance_id, None)

    def associations(self, account: str, region: str) -> list[hooks.AssociationSnapshot]:
        """Every association of one account and region, as snapshots."""
        from controller.local.ssm.associations import snapshot

        with self.store.lock:
            state = self.store.state(account, region)
            return [snapshot(account, region, record) for record in state.associations.values()]

    def start_association_execution(self, account: str, region: str, association_id: str) -> str:
        """Open a new execution of an association; returns its ExecutionId."""
        with self.store.lock:
            record = self.store.state(account, region).associations.get(association_id)
            if record is None:
                raise association_does_not_exist()
            execution_id = str(uuid.uuid4())
            created = now()
            # The execution's per-instance output lives in a Run Command command, which
            # DescribeAssociationExecutionTargets names as its OutputSource
            # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_OutputSource.html).
            command = CommandRecord(
                command_id=str(uuid.uuid4()),
                fields={
                    "DocumentName": record.fields["Name"],
                    "DocumentVersion": record.fields.get("DocumentVersion") or "$DEFAULT",
                    "Parameters": record.fields.get("Parameters") or {},
                    "Comment": f"State Manager association {association_id}",
                },
                requested=created,
                association_id=association_id,
            )
            state = self.store.state(account, region)
            state.commands[command.command_id] = command
            alarms = record.fields.get("AlarmConfiguration")
            record.executions[execution_id] = ExecutionRecord(
                execution_id=execution_id,
                association_version=record.version,
                created=created,
                command_id=command.command_id,
                alarm_configuration=dict(alarms) if isinstance(alarms, dict) else None,
            )
            record.last_execution = created
            return execution_id

    def check_alarms(
        self, account: str, region: str, association_id: str, execution_id: str
    ) -> str | None:
        """Why the execution must stop now (an alarm of its AlarmConfiguration is in ALARM,
        or cannot be read without IgnorePollAlarmFailure), or None; the alarm is recorded
        as the execution's TriggeredAlarms (controller/local/ssm/alarms.py)."""
        from controller.local.ssm import alarms

        with self.store.lock:
            record = self.store.state(account, region).associations.get(association_id)
            execution = record.executions.get(execution_id) if record else None
            if execution is None:
                return None
            configuration = execution.alarm_configuration
        fired = alarms.triggered(account, region, configuration)
        if fired is None:
            return None
        with self.store.lock:
            execution.triggered_alarms = [fired]
        if fired["State"] == "ALARM":
            return f"not started: CloudWatch alarm {fired['Name']} is in ALARM"
        return (
            f"not started: CloudWatch alarm {fired['Name']} could not be read "
            "(IgnorePollAlarmFailure is false)"
        )

    def record_association_result(
        self,
        account: str,
        region: str,
        association_id: str,
        execution_id: str,
        instance_id: str,
        status: str,
        detailed_status: str | None = None,
        output: str = "",
        error_code: str = "",
        error: str = "",
    ) -> None:
        """One instance's outcome in an execution: status `Pending`, `InProgress`, `Success`,
        `Failed`, `TimedOut` or `Skipped` (DetailedStatus defaults to the status). `output`
        and `error` become the instance's invocation of the execution's command
        (GetCommandInvocation with the target's OutputSourceId)."""
        with self.store.lock:
            state = self.store.state(account, region)
            record = state.associations.get(association_id)
            if record is None or execution_id not in record.executions:
                raise association_does_not_exist()
            when = now()
            result = TargetResult(
                instance_id, status, detailed_status or status, when, output, error_code
            )
            execution = record.executions[execution_id]
            execution.targets[instance_id] = result
            execution.last = when
            record.last_execution = when
            if status == "Success":
                record.last_success = when
            state.instance_association_status.setdefault(instance_id, {})[association_id] = result
            command = state.commands.get(execution.command_id)
            if command is not None:
                # Run Command's word for a target never started is Cancelled.
                word = "Cancelled" if status == "Skipped" else status
                invocation = command.invocations.get(instance_id)
                if invocation is None:
                    invocation = InvocationRecord(instance_id, word, word, execution.created)
                    command.invocations[instance_id] = invocation
                invocation.status = invocation.status_details = word
                invocation.output, invocation.error = output, error
                invocation.response_code = 0 if status == "Success" else 1
                if status != "Pending":
                    invocation.start = invocation.start or when
                if status not in ("Pending", "InProgress"):
                    invocation.end = when

    def record_command_result(
        self,
        account: str,
        region: str,
        command_id: str,
        instance_id: str,
        status: str,
        output: str = "",
        error: str = "",
        response_code: int = 0,
    ) -> None:
        """One instance's outcome of a command: `Pending`, `InProgress`, `Success`,
        `Failed`, `TimedOut`, `Cancelled`."""
        with self.store.lock:
            command = self.store.state(account, region).commands.get(command_id)
            if command is None:
                raise SsmError("InvalidCommandId", f"Command {command_id} does not exist.")
            invocation = command.invocations.get(instance_id)
            if invocation is None:
                invocation = InvocationRecord(instance_id, status, status, now())
                command.invocations[instance_id] = invocation
            invocation.status = status
            invocation.status_details = status
            invocation.output = output
            invocation.error = error
            invocation.response_code = response_code
            invocation.start = invocation.start or now()
            if status not in ("Pending", "InProgress"):
                invocation.end = now()

    def resolve_package(
        self, account: str, region: str, name: str, version_name: str | None = None
    ) -> hooks.ResolvedPackage:
        """The package version an agent in `account` would install: by VersionName, or the
        default version; `name` may be an ARN of a package shared from another account."""
        from controller.local.ssm.documents import find_document, visible_version

        context = Context(self, account, region, endpoint="")
        with self.store.lock:
            document = find_document(context, name)
            version = visible_version(context, document, None, version_name)
            return hooks.ResolvedPackage(
                name=document.name,
                owner=document.owner,
                document_version=str(version.number),
                version_name=version.version_name,
                manifest=version.content,
                files=tuple(
                    hooks.PackageFile(a.name, a.sha256, a.size, a.bucket, a.key)
                    for a in version.attachments
                ),
            )
