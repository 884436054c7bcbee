"""In-memory SSM state, one `RegionState` per (account, region), behind one lock.

Where it sits: handlers read and change these records while the service holds
`Store.lock` for the whole request, so every operation is atomic and concurrent clients
are safe. Document versions are immutable values; a document, an association or a
command is a mutable row that only handlers touch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.local.hooks import ManagedInstance


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Attachment:
    """A package file: read and hashed from the local S3 when the version was created."""

    name: str
    size: int
    sha256: str
    bucket: str
    key: str


@dataclass(frozen=True)
class DocumentVersion:
    """One immutable version. Its status is `Creating`/`Updating` until `ready_at`."""

    number: int
    version_name: str | None
    content: str
    content_hash: str
    document_format: str
    created: datetime
    ready_at: float  # time.monotonic() when the asynchronous creation finishes
    pending_status: str  # "Creating" (first version) or "Updating"
    final_status: str  # "Active" or "Failed"
    status_information: str | None
    attachments: tuple[Attachment, ...]
    display_name: str | None
    target_type: str | None
    parameters: dict[str, dict[str, object]]
    description: str | None
    schema_version: str | None

    def status(self) -> str:
        return self.final_status if time.monotonic() >= self.ready_at else self.pending_status


@dataclass
class Document:
    name: str
    owner: str  # account id, or "Amazon"
    document_type: str
    created: datetime
    versions: dict[int, DocumentVersion]
    default_version: int
    next_version: int
    tags: dict[str, str] = field(default_factory=dict)
    # account id -> SharedDocumentVersion; the key "all" means public.
    shared_with: dict[str, str] = field(default_factory=dict)

    @property
    def latest_version(self) -> int:
        return max(self.versions)


@dataclass
class AssociationRecord:
    association_id: str
    version: int
    fields: dict[str, object]  # the request's fields as AWS echoes them
    created: datetime
    updated: datetime
    tags: dict[str, str] = field(default_factory=dict)
    history: list[tuple[int, datetime, dict[str, object]]] = field(default_factory=list)
    executions: dict[str, ExecutionRecord] = field(default_factory=dict)
    last_execution: datetime | None = None
    last_success: datetime | None = None


@dataclass
class TargetResult:
    """One instance's result inside an association execution (recorded by the fleet)."""

    instance_id: str
    status: str
    detailed_status: str
    when: datetime
    output: str
    error_code: str


@dataclass
class ExecutionRecord:
    """One run of an association. `command_id` names the Run Command command that carries
    its per-instance output (DescribeAssociationExecutionTargets `OutputSource`)."""

    execution_id: str
    association_version: int
    created: datetime
    command_id: str = ""
    targets: dict[str, TargetResult] = field(default_factory=dict)
    last: datetime | None = None
    alarm_configuration: dict[str, object] | None = None
    # AlarmStateInformation items (at most one, as the model says) of alarms that fired.
    triggered_alarms: list[dict[str, str]] = field(default_factory=list)


@dataclass
class InvocationRecord:
    instance_id: str
    status: str
    status_details: str
    requested: datetime
    output: str = ""
    error: str = ""
    response_code: int = -1
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class CommandRecord:
    command_id: str
    fields: dict[str, object]
    requested: datetime
    invocations: dict[str, InvocationRecord] = field(default_factory=dict)
    # Set for the command an association execution runs through (not listed by
    # ListCommands without CommandId; read through OutputSource).
    association_id: str | None = None


@dataclass
class RegionState:
    documents: dict[str, Document] = field(default_factory=dict)
    associations: dict[str, AssociationRecord] = field(default_factory=dict)
    commands: dict[str, CommandRecord] = field(default_factory=dict)
    instances: dict[str, ManagedInstance] = field(default_factory=dict)
    # instance id -> association id -> the latest per-instance result
    instance_association_status: dict[str, dict[str, TargetResult]] = field(default_factory=dict)


class Store:
    """All SSM state of the endpoint. Hold `lock` while reading or changing any of it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._states: dict[tuple[str, str], RegionState] = {}

    def state(self, account: str, region: str) -> RegionState:
        key = (account, region)
        if key not in self._states:
            self._states[key] = RegionState()
        return self._states[key]

    def accounts_in(self, region: str) -> list[tuple[str, RegionState]]:
        """Every account's state in one region (for documents shared across accounts)."""
        return [(account, state) for (account, r), state in self._states.items() if r == region]

    def reset(self) -> None:
        with self.lock:
            self._states.clear()
