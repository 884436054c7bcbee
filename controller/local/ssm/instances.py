"""Managed instances: DescribeInstanceInformation and target resolution.

Where it sits: the simulated fleet registers instances through `SsmService.register_instance`;
this module lists them (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html)
and resolves association/command targets (`InstanceIds`, `tag:KEY`, `tag-key`) against them
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html).
"""

from __future__ import annotations

from typing import Any

from controller.local.hooks import ManagedInstance
from controller.local.ssm.errors import SsmError
from controller.local.ssm.paging import page
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import RegionState, now


def resolve_targets(state: RegionState, targets: list[dict[str, Any]]) -> list[str]:
    """The registered instances a target list selects (all keys must match: AND)."""
    selected: set[str] | None = None
    for target in targets:
        key, values = target.get("Key", ""), list(target.get("Values") or [])
        if key == "InstanceIds":
            ids = set(state.instances) if "*" in values else set(values) & set(state.instances)
        elif key.startswith("tag:"):
            tag = key[4:]
            ids = {i.instance_id for i in state.instances.values() if i.tags.get(tag) in values}
        elif key == "tag-key":
            ids = {i.instance_id for i in state.instances.values() if set(values) & set(i.tags)}
        else:
            ids = set()
        selected = ids if selected is None else selected & ids
    return sorted(selected or set())


def _describe(instance: ManagedInstance) -> Params:
    return {
        "InstanceId": instance.instance_id,
        "PingStatus": instance.ping_status,
        "LastPingDateTime": now(),
        "AgentVersion": instance.agent_version,
        "IsLatestVersion": True,
        "PlatformType": instance.platform_type,
        "PlatformName": instance.platform_name,
        "PlatformVersion": instance.platform_version,
        "ResourceType": instance.resource_type,
        "IPAddress": instance.ip_address,
        "ComputerName": instance.computer_name or instance.instance_id,
        "AssociationStatus": "Success",
    }


def _matches(instance: ManagedInstance, filters: list[Params]) -> bool:
    fields = {
        "InstanceIds": [instance.instance_id],
        "PingStatus": [instance.ping_status],
        "PlatformTypes": [instance.platform_type],
        "ResourceType": [instance.resource_type],
        "AgentVersion": [instance.agent_version],
    }
    for item in filters:
        key = item.get("Key") or item.get("key") or ""
        values = item.get("Values") or item.get("valueSet") or []
        if key.startswith("tag:"):
            if instance.tags.get(key[4:]) not in values:
                return False
        elif key == "tag-key":
            if not set(values) & set(instance.tags):
                return False
        elif key in fields:
            if not set(values) & set(fields[key]):
                return False
        else:
            raise SsmError("InvalidInstanceInformationFilterValue", f"Unknown filter key {key}.")
    return True


@operation("DescribeInstanceInformation")
def describe_instance_information(context: Context, params: Params) -> Params:
    filters = list(params.get("Filters") or []) + list(
        params.get("InstanceInformationFilterList") or []
    )
    instances = [i for _, i in sorted(context.state.instances.items()) if _matches(i, filters)]
    chunk, token = page(instances, params.get("MaxResults"), params.get("NextToken"), 50)
    result: Params = {"InstanceInformationList": [_describe(i) for i in chunk]}
    if token:
        result["NextToken"] = token
    return result
