"""The extension point between the local SSM service and the simulated fleet (issue 7).

Where it sits: the SSM service (controller/local/ssm) tells one optional `FleetListener`
what happened, after the request that caused it has been answered from the store (never
while holding the store's lock, so a listener may call straight back into the service).
The fleet answers through the `SsmService` methods documented in docs/local.md:
`register_instance`, `start_association_execution`, `record_association_result`,
`record_command_result`, `resolve_package`, `associations`.

Events carry frozen snapshots: a listener can keep them without seeing later changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ParameterMap = dict[str, list[str]]


@dataclass(frozen=True)
class Target:
    """One target: `InstanceIds`, `tag:KEY`, `tag-key` or `resource-groups:Name`."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class AssociationSnapshot:
    """An association as it stands after the change (what DescribeAssociation would say)."""

    account: str
    region: str
    association_id: str
    association_version: str
    name: str  # document name or ARN, as the caller gave it
    document_version: str  # "$DEFAULT", "$LATEST" or a number
    parameters: ParameterMap
    targets: tuple[Target, ...]
    instance_id: str | None
    schedule_expression: str | None
    apply_only_at_cron_interval: bool
    association_name: str | None


@dataclass(frozen=True)
class AssociationChanged:
    kind: Literal["created", "updated", "deleted"]
    association: AssociationSnapshot


@dataclass(frozen=True)
class DefaultVersionChanged:
    """UpdateDocumentDefaultVersion succeeded (associations on $DEFAULT should re-run)."""

    account: str
    region: str
    document_name: str
    default_version: str
    default_version_name: str | None


@dataclass(frozen=True)
class AssociationsStartedOnce:
    account: str
    region: str
    association_ids: tuple[str, ...]


@dataclass(frozen=True)
class CommandSent:
    """SendCommand accepted; `instance_ids` are the resolved targets (instances registered)."""

    account: str
    region: str
    command_id: str
    document_name: str
    document_version: str
    parameters: ParameterMap
    instance_ids: tuple[str, ...]


@dataclass(frozen=True)
class ManagedInstance:
    """One managed node as DescribeInstanceInformation lists it; the fleet registers these."""

    instance_id: str
    platform_type: str = "Linux"  # Windows | Linux | MacOS
    platform_name: str = "Amazon Linux"
    platform_version: str = "2023"
    agent_version: str = "3.3.0.0"
    ping_status: str = "Online"  # Online | ConnectionLost | Inactive
    computer_name: str = ""
    ip_address: str = "10.0.0.1"
    resource_type: str = "EC2Instance"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PackageFile:
    """One attachment of a package version, where the fleet can read it in the local S3."""

    name: str
    sha256: str
    size: int
    bucket: str
    key: str


@dataclass(frozen=True)
class ResolvedPackage:
    """What `resolve_package` returns: the version the agent would install, and its files."""

    name: str
    owner: str
    document_version: str
    version_name: str | None
    manifest: str
    files: tuple[PackageFile, ...]


class FleetListener(Protocol):
    """Implemented by the simulated fleet. Each method is called once per event."""

    def association_changed(self, event: AssociationChanged) -> None: ...

    def default_version_changed(self, event: DefaultVersionChanged) -> None: ...

    def associations_started_once(self, event: AssociationsStartedOnce) -> None: ...

    def command_sent(self, event: CommandSent) -> None: ...


Event = AssociationChanged | DefaultVersionChanged | AssociationsStartedOnce | CommandSent


def deliver(listener: FleetListener, event: Event) -> None:
    """Call the listener method that matches the event."""
    if isinstance(event, AssociationChanged):
        listener.association_changed(event)
    elif isinstance(event, DefaultVersionChanged):
        listener.default_version_changed(event)
    elif isinstance(event, AssociationsStartedOnce):
        listener.associations_started_once(event)
    else:
        listener.command_sent(event)
