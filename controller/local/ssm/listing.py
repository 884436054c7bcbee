"""ListDocuments: which documents a caller sees, its filters and paging.

Where it sits: a handler registered with the SSM service (service.py), next to
documents.py. A caller sees its own documents, the AWS-owned ones, and documents other
accounts share with it (listed by ARN). Filters follow API_DocumentKeyValuesFilter
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentKeyValuesFilter.html):
`Owner` (Self, Amazon, Private = shared with you, Public, All; only one per request),
`Name` (a prefix), `DocumentType`, `PlatformTypes`, `TargetType`, `SearchKeyword`,
`tag:KEY` (any of the values), `tag-key`; all keys must match.
"""

from __future__ import annotations

from controller.local.ssm.aws_documents import AWS_DOCUMENTS
from controller.local.ssm.documents import document_arn, platform_types, visible_version
from controller.local.ssm.errors import SsmError
from controller.local.ssm.paging import page
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import Document


def _matches_filters(context: Context, document: Document, filters: list[Params]) -> bool:
    version = visible_version(context, document, None, None)
    for item in filters:
        key, values = item.get("Key", ""), item.get("Values") or []
        if key == "Owner":
            kinds = {v.lower() for v in values}
            own = document.owner == context.account
            shared = not own and document.owner != "Amazon"
            ok = (
                ("self" in kinds and own)
                or ("amazon" in kinds and document.owner == "Amazon")
                or ("private" in kinds and shared)
                or ("public" in kinds and "all" in document.shared_with)
                or "all" in kinds
            )
            if not ok:
                return False
        elif key == "Name":
            if not any(document.name.startswith(v) for v in values):
                return False
        elif key == "DocumentType":
            if document.document_type not in values:
                return False
        elif key == "PlatformTypes":
            if not set(values) & set(platform_types(document, version)):
                return False
        elif key == "TargetType":
            if (version.target_type or "") not in values:
                return False
        elif key == "SearchKeyword":
            if not any(v.lower() in document.name.lower() for v in values):
                return False
        elif key.startswith("tag:"):
            tag = key[4:]
            if tag not in document.tags or (values and document.tags[tag] not in values):
                return False
        elif key == "tag-key":
            if not set(values) & set(document.tags):
                return False
        else:
            raise SsmError("InvalidFilterKey", f"The filter key {key} is not valid.")
    return True


def visible_documents(context: Context) -> list[Document]:
    """Own documents, documents shared with the caller, and the AWS-owned ones."""
    found = list(context.state.documents.values()) + list(AWS_DOCUMENTS.values())
    for account, state in context.service.store.accounts_in(context.region):
        if account == context.account:
            continue
        found += [
            d
            for d in state.documents.values()
            if context.account in d.shared_with or "all" in d.shared_with
        ]
    return found


@operation("ListDocuments")
def list_documents(context: Context, params: Params) -> Params:
    filters = list(params.get("Filters") or [])
    owners = [v for f in filters if f.get("Key") == "Owner" for v in f.get("Values") or []]
    if len(owners) > 1:
        # DocumentKeyValuesFilter: "only one Owner can be specified in a request".
        raise SsmError(
            "ValidationException", "Only one Owner can be specified in a ListDocuments request."
        )
    for legacy in params.get("DocumentFilterList") or []:
        filters.append({"Key": legacy["key"], "Values": [legacy["value"]]})
    documents = sorted(
        (d for d in visible_documents(context) if _matches_filters(context, d, filters)),
        key=lambda d: (d.name, d.owner),
    )
    chunk, token = page(documents, params.get("MaxResults"), params.get("NextToken"), 50)
    items = []
    for document in chunk:
        version = visible_version(context, document, None, None)
        item: Params = {
            "Name": document.name,
            "CreatedDate": document.created,
            "Owner": document.owner,
            "PlatformTypes": platform_types(document, version),
            "DocumentVersion": str(version.number),
            "DocumentType": document.document_type,
            "DocumentFormat": version.document_format,
            "Tags": [{"Key": k, "Value": v} for k, v in document.tags.items()],
        }
        if document.owner not in ("Amazon", context.account):
            item["Name"] = document_arn(context.region, document.owner, document.name)
        for key, value in (
            ("VersionName", version.version_name),
            ("DisplayName", version.display_name),
            ("SchemaVersion", version.schema_version),
            ("TargetType", version.target_type),
        ):
            if value:
                item[key] = value
        items.append(item)
    return {"DocumentIdentifiers": items, **({"NextToken": token} if token else {})}
