"""Tags on documents and associations: AddTagsToResource, RemoveTagsFromResource,
ListTagsForResource.

Where it sits: handlers registered with the SSM service. ResourceType `Document` takes the
document name, `Association` the association id
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html);
at most 50 tags per resource (TooManyTagsError).
"""

from __future__ import annotations

from controller.local.ssm.documents import find_document
from controller.local.ssm.errors import SsmError
from controller.local.ssm.service import Context, Params, operation

MAX_TAGS = 50


def _tags_of(context: Context, params: Params) -> dict[str, str]:
    kind, resource_id = params["ResourceType"], params["ResourceId"]
    if kind == "Document":
        document = find_document(context, resource_id, owned=True)
        return document.tags
    if kind == "Association":
        record = context.state.associations.get(resource_id)
        if record is None:
            raise SsmError("InvalidResourceId", f"The association {resource_id} does not exist.")
        return record.tags
    raise SsmError(
        "InvalidResourceType", f"The local endpoint tags Document and Association, not {kind}."
    )


@operation("AddTagsToResource")
def add_tags_to_resource(context: Context, params: Params) -> Params:
    tags = _tags_of(context, params)
    merged = dict(tags)
    merged.update({t["Key"]: t["Value"] for t in params["Tags"]})
    if len(merged) > MAX_TAGS:
        raise SsmError("TooManyTagsError", f"A resource can have at most {MAX_TAGS} tags.")
    tags.update(merged)
    return {}


@operation("RemoveTagsFromResource")
def remove_tags_from_resource(context: Context, params: Params) -> Params:
    tags = _tags_of(context, params)
    for key in params["TagKeys"]:
        tags.pop(key, None)
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(context: Context, params: Params) -> Params:
    tags = _tags_of(context, params)
    return {"TagList": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
