"""Resource tags: how ownership (`ssm-gitops:owner=<name>` and `ssm-gitops:source=<id>`,
see controller.model.ownership) and package tags are read and set.

Stage: observe (association ownership; packages get their tags from the ListDocuments page)
and apply (package tags). ResourceType is `Document` or `Association`
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html).
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.aws.api import request
from controller.aws.session import AwsClients


def tags_of(clients: AwsClients, resource_type: str, resource_id: str) -> dict[str, str]:
    response = request(
        clients,
        "ssm",
        "ListTagsForResource",
        ResourceType=resource_type,
        ResourceId=resource_id,
    )
    return {t["Key"]: t["Value"] for t in response.get("TagList", [])}


def set_tags(
    clients: AwsClients, resource_type: str, resource_id: str, tags: Sequence[tuple[str, str]]
) -> None:
    if tags:
        request(
            clients,
            "ssm",
            "AddTagsToResource",
            ResourceType=resource_type,
            ResourceId=resource_id,
            Tags=[{"Key": key, "Value": value} for key, value in tags],
        )


def remove_tags(
    clients: AwsClients, resource_type: str, resource_id: str, keys: Sequence[str]
) -> None:
    if keys:
        request(
            clients,
            "ssm",
            "RemoveTagsFromResource",
            ResourceType=resource_type,
            ResourceId=resource_id,
            TagKeys=list(keys),
        )
