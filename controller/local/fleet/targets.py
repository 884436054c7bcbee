"""Which instances an association or command targets (pure).

Used by the fleet when an association or SendCommand runs: `resolve_targets(targets, tags)`
turns the API's `Targets` (or `InstanceIds`) into instance ids, from each instance's tags as
EC2 DescribeInstances reports them. Rules from "Understanding targets and rate controls in
State Manager associations" and the Target data type
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html):
`InstanceIds` with ids or `*` (all managed instances), `tag:<key>` with values, `tag-key`
with keys; the values of one key are alternatives (OR), several keys must all match (AND).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def resolve_targets(
    targets: Sequence[Mapping[str, object]],
    instance_tags: Mapping[str, Mapping[str, str]],
) -> tuple[str, ...]:
    """Sorted ids of the instances matching every target; unknown keys match nothing."""
    if not targets:
        return ()
    matching = set(instance_tags)
    for target in targets:
        key = str(target.get("Key", ""))
        values = [str(v) for v in target.get("Values", []) or []]  # type: ignore[attr-defined]
        matching &= _matching_one(key, values, instance_tags)
    return tuple(sorted(matching))


def _matching_one(
    key: str, values: Sequence[str], instance_tags: Mapping[str, Mapping[str, str]]
) -> set[str]:
    if key.lower() == "instanceids":
        if "*" in values:
            return set(instance_tags)
        return {value for value in values if value in instance_tags}
    if key.startswith("tag:"):
        tag = key[len("tag:") :]
        return {iid for iid, tags in instance_tags.items() if tags.get(tag) in values}
    if key == "tag-key":
        return {iid for iid, tags in instance_tags.items() if any(v in tags for v in values)}
    # resource-groups:Name and others are not simulated: they match no instance.
    return set()
