"""Documents and their versions: Create/Update/Get/Describe/Delete, versions, the default.

Where it sits: handlers registered with the SSM service (service.py); ListDocuments is in
listing.py, Package attachments in packages.py, sharing in sharing.py. Rules, each from the
API reference (https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
- version numbers are integers that never repeat (API_DocumentDescription; sorting them
  as strings, as moto does, overwrites versions after 10);
- `VersionName` is unique per document (API_UpdateDocument: DuplicateDocumentVersionName);
- an update whose content equals an existing version is DuplicateDocumentContent;
- UpdateDocument only updates `$LATEST` (API_UpdateDocument, DocumentVersion);
- the default version cannot be deleted (API_DeleteDocument);
- a Package holds at most 25 versions (Distributor quotas), other documents 1,000;
- a document shared with other accounts cannot be deleted (API_DeleteDocument);
- `$LATEST` and `$DEFAULT` resolve wherever the model's DocumentVersion allows them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from typing import Any

import yaml

from controller.local.hooks import DefaultVersionChanged
from controller.local.ssm import packages
from controller.local.ssm.aws_documents import AWS_DOCUMENTS
from controller.local.ssm.errors import (
    SsmError,
    invalid_document,
    invalid_document_operation,
    invalid_document_version,
)
from controller.local.ssm.paging import page
from controller.local.ssm.service import Context, Params, operation
from controller.local.ssm.store import Document, DocumentVersion, now

MAX_VERSIONS = {"Package": 25}
DEFAULT_MAX_VERSIONS = 1000
RESERVED_PREFIXES = ("aws", "amazon", "amzn")


def document_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:document/{name}"


def find_document(context: Context, name: str, *, owned: bool = False) -> Document:
    """The document a caller means by `name`: its own, an AWS-owned one, or (by ARN) one
    another account shares with it. `owned=True` refuses anything not the caller's."""
    if name.startswith("arn:"):
        parts = name.split(":", 5)
        if len(parts) != 6 or not parts[5].startswith("document/"):
            raise invalid_document()
        account, document_name = parts[4], parts[5].split("/", 1)[1]
        if account != context.account:
            if owned:
                raise invalid_document()
            document = context.state_of(account).documents.get(document_name)
            if document is None or not (
                context.account in document.shared_with or "all" in document.shared_with
            ):
                raise invalid_document()
            return document
        name = document_name
    if name in AWS_DOCUMENTS:
        if owned:
            raise invalid_document_operation(f"You can't modify the AWS-owned document {name}.")
        return AWS_DOCUMENTS[name]
    document = context.state.documents.get(name)
    if document is None:
        raise invalid_document()
    return document


def resolve_version(
    document: Document,
    version: str | None,
    version_name: str | None,
    allowed: set[int] | None = None,
) -> DocumentVersion:
    """The version meant by DocumentVersion ($LATEST, $DEFAULT, a number) and/or VersionName;
    neither means the default version. `allowed` (see `shared_versions`) limits what another
    account may see: neither then means the shared version."""
    chosen: DocumentVersion | None = None
    if version is not None:
        if version == "$LATEST":
            number = document.latest_version
        elif version == "$DEFAULT":
            number = document.default_version
        else:
            number = int(version)
        chosen = document.versions.get(number)
        if chosen is None:
            raise invalid_document_version()
    if version_name is not None:
        named = [v for v in document.versions.values() if v.version_name == version_name]
        if not named or (chosen is not None and chosen is not named[0]):
            raise invalid_document_version()
        chosen = named[0]
    if chosen is None:
        default = document.default_version
        number = default if allowed is None or default in allowed else max(allowed)
        chosen = document.versions[number]
    if allowed is not None and chosen.number not in allowed:
        raise invalid_document_version(
            f"Version {chosen.number} of {document.name} is not shared with this account."
        )
    return chosen


def shared_versions(context: Context, document: Document) -> set[int] | None:
    """The version numbers another account may use of a document shared with it, from
    ModifyDocumentPermission's SharedDocumentVersion ("$DEFAULT" when not given:
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ModifyDocumentPermission.html);
    None means every version (the caller's own documents, AWS's, or "$ALL")."""
    if document.owner in (context.account, "Amazon"):
        return None
    shared = document.shared_with.get(context.account) or document.shared_with.get("all")
    if shared == "$LATEST":
        return {document.latest_version}
    if shared == "$DEFAULT":
        return {document.default_version}
    return None


def visible_version(
    context: Context, document: Document, version: str | None, version_name: str | None
) -> DocumentVersion:
    """`resolve_version` as the caller may see it (shared documents: the shared version)."""
    return resolve_version(document, version, version_name, shared_versions(context, document))


def platform_types(document: Document, version: DocumentVersion) -> list[str]:
    """PlatformTypes as AWS derives them from the plugins a document runs."""
    if document.document_type == "Package" or "aws:configurePackage" in version.content:
        return ["Windows", "Linux", "MacOS"]
    found = []
    if "aws:runPowerShellScript" in version.content:
        found.append("Windows")
    if "aws:runShellScript" in version.content:
        found += ["Linux", "MacOS"]
    return found or ["Windows", "Linux", "MacOS"]


def _parse_content(content: str, document_format: str, document_type: str) -> dict[str, Any]:
    """The document body as a mapping, or InvalidDocumentContent."""
    try:
        parsed = json.loads(content) if document_format == "JSON" else yaml.safe_load(content)
    except (ValueError, yaml.YAMLError) as error:
        raise SsmError(
            "InvalidDocumentContent", f"The content is not valid {document_format}: {error}"
        ) from None
    if not isinstance(parsed, dict):
        raise SsmError("InvalidDocumentContent", "The document content must be an object.")
    if document_type != "Package" and "schemaVersion" not in parsed:
        raise SsmError("InvalidDocumentContent", "The document content is missing schemaVersion.")
    return parsed


def _new_version(
    context: Context,
    document: Document,
    params: Params,
    number: int,
    pending_status: str,
) -> DocumentVersion:
    content: str = params["Content"]
    document_format = params.get("DocumentFormat", "JSON")
    if document.document_type == "Package":
        if document_format != "JSON":
            raise SsmError("InvalidDocumentSchemaVersion", "A package manifest must be JSON.")
        files = packages.check_manifest(content)
        outcome = packages.collect_attachments(files, params.get("Attachments") or [])
        body: dict[str, Any] = json.loads(content)
        final_status = "Failed" if outcome.failure else "Active"
        attachments, status_information = outcome.attachments, outcome.failure
    else:
        body = _parse_content(content, document_format, document.document_type)
        attachments = ()  # attachments of non-package documents are not emulated
        final_status, status_information = "Active", None
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    return DocumentVersion(
        number=number,
        version_name=params.get("VersionName"),
        content=content,
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
        document_format=document_format,
        created=now(),
        ready_at=time.monotonic() + context.options.create_delay,
        pending_status=pending_status,
        final_status=final_status,
        status_information=status_information,
        attachments=attachments,
        display_name=params.get("DisplayName"),
        target_type=params.get("TargetType"),
        parameters=parameters or {},
        description=str(body.get("description")) if body.get("description") else None,
        schema_version=str(body.get("schemaVersion")) if body.get("schemaVersion") else None,
    )


def describe(context: Context, document: Document, version: DocumentVersion) -> Params:
    """A DocumentDescription (API_DocumentDescription)."""
    owner = document.owner
    result: Params = {
        "Hash": version.content_hash,
        "HashType": "Sha256",
        "Name": document.name,
        "Owner": owner,
        "CreatedDate": version.created,
        "Status": version.status(),
        "DocumentVersion": str(version.number),
        "Parameters": [
            {
                "Name": name,
                "Type": str(spec.get("type", "String")),
                "Description": str(spec.get("description", "")),
                **({"DefaultValue": _default_text(spec["default"])} if "default" in spec else {}),
            }
            for name, spec in version.parameters.items()
            if isinstance(spec, dict)
        ],
        "PlatformTypes": platform_types(document, version),
        "DocumentType": document.document_type,
        "LatestVersion": str(document.latest_version),
        "DefaultVersion": str(document.default_version),
        "DocumentFormat": version.document_format,
        "AttachmentsInformation": [{"Name": a.name} for a in version.attachments],
    }
    optional = {
        "VersionName": version.version_name,
        "DisplayName": version.display_name,
        "StatusInformation": version.status_information if version.status() == "Failed" else None,
        "Description": version.description,
        "SchemaVersion": version.schema_version,
        "TargetType": version.target_type,
    }
    result.update({k: v for k, v in optional.items() if v is not None})
    return result


def _default_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@functools.cache
def _presigner(endpoint: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def _attachment_url(context: Context, bucket: str, key: str) -> str:
    """A presigned GET of the attachment on the local S3, like AWS's AttachmentsContent.Url."""
    url: str = _presigner(context.endpoint, context.region).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
    )
    return url


def _convert(content: str, source: str, target: str | None) -> str:
    if not target or target == source or "TEXT" in (source, target):
        return content
    parsed = json.loads(content) if source == "JSON" else yaml.safe_load(content)
    if target == "JSON":
        return json.dumps(parsed, indent=2)
    return str(yaml.safe_dump(parsed, sort_keys=False))


def _check_version_name(document: Document, version_name: str | None) -> None:
    if version_name and any(v.version_name == version_name for v in document.versions.values()):
        raise SsmError(
            "DuplicateDocumentVersionName",
            f"The version name {version_name} is already used by a version of {document.name}.",
        )


@operation("CreateDocument")
def create_document(context: Context, params: Params) -> Params:
    name: str = params["Name"]
    if name.lower().startswith(RESERVED_PREFIXES):
        # API_CreateDocument, Name: "You can't use the following strings as document name
        # prefixes ... aws, amazon, amzn"
        raise SsmError(
            "ValidationException",
            f"Document name {name} is not valid: names can't start with aws, amazon or amzn.",
        )
    if name in context.state.documents:
        raise SsmError(
            "DocumentAlreadyExists", "Document with same name " + name + " already exists"
        )
    document_type = params.get("DocumentType", "Command")
    document = Document(
        name=name,
        owner=context.account,
        document_type=document_type,
        created=now(),
        versions={},
        default_version=1,
        next_version=2,
        tags={t["Key"]: t["Value"] for t in params.get("Tags") or []},
    )
    version = _new_version(context, document, params, 1, "Creating")
    document.versions[1] = version
    context.state.documents[name] = document
    description = describe(context, document, version)
    if document.tags:
        description["Tags"] = [{"Key": k, "Value": v} for k, v in document.tags.items()]
    return {"DocumentDescription": description}


@operation("UpdateDocument")
def update_document(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"], owned=True)
    requested = params.get("DocumentVersion", "$LATEST")
    if requested not in ("$LATEST", str(document.latest_version)):
        raise invalid_document_version(
            "You can only update the latest version of the document "
            f"($LATEST or {document.latest_version}); {requested} is not."
        )
    limit = MAX_VERSIONS.get(document.document_type, DEFAULT_MAX_VERSIONS)
    if len(document.versions) >= limit:
        raise SsmError(
            "DocumentVersionLimitExceeded",
            f"The document has the maximum of {limit} versions. Delete a version and try again.",
        )
    _check_version_name(document, params.get("VersionName"))
    content_hash = hashlib.sha256(params["Content"].encode()).hexdigest()
    if any(v.content_hash == content_hash for v in document.versions.values()):
        raise SsmError(
            "DuplicateDocumentContent",
            "The content of the association document matches another document. Change the "
            "content of the document and try again.",
        )
    params.setdefault("DocumentFormat", document.versions[document.latest_version].document_format)
    number = document.next_version
    version = _new_version(context, document, params, number, "Updating")
    document.versions[number] = version
    document.next_version = number + 1
    return {"DocumentDescription": describe(context, document, version)}


@operation("DescribeDocument")
def describe_document(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"])
    version = visible_version(
        context, document, params.get("DocumentVersion"), params.get("VersionName")
    )
    return {"Document": describe(context, document, version)}


@operation("GetDocument")
def get_document(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"])
    version = visible_version(
        context, document, params.get("DocumentVersion"), params.get("VersionName")
    )
    target_format = params.get("DocumentFormat")
    result: Params = {
        "Name": document.name,
        "CreatedDate": version.created,
        "DocumentVersion": str(version.number),
        "Status": version.status(),
        "Content": _convert(version.content, version.document_format, target_format),
        "DocumentType": document.document_type,
        "DocumentFormat": target_format or version.document_format,
    }
    if version.version_name:
        result["VersionName"] = version.version_name
    if version.display_name:
        result["DisplayName"] = version.display_name
    if version.status() == "Failed" and version.status_information:
        result["StatusInformation"] = version.status_information
    if document.document_type == "Package" and version.status() == "Active":
        result["AttachmentsContent"] = [
            {
                "Name": a.name,
                "Size": a.size,
                "Hash": a.sha256,
                "HashType": "Sha256",
                "Url": _attachment_url(context, a.bucket, a.key),
            }
            for a in version.attachments
        ]
    return result


@operation("ListDocumentVersions")
def list_document_versions(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"])
    allowed = shared_versions(context, document)
    versions = [
        document.versions[n]
        for n in sorted(document.versions, reverse=True)
        if allowed is None or n in allowed
    ]
    chunk, token = page(versions, params.get("MaxResults"), params.get("NextToken"), 50)
    items = []
    for version in chunk:
        item: Params = {
            "Name": document.name,
            "DocumentVersion": str(version.number),
            "CreatedDate": version.created,
            "IsDefaultVersion": version.number == document.default_version,
            "DocumentFormat": version.document_format,
            "Status": version.status(),
        }
        if version.version_name:
            item["VersionName"] = version.version_name
        if version.display_name:
            item["DisplayName"] = version.display_name
        if version.status() == "Failed" and version.status_information:
            item["StatusInformation"] = version.status_information
        items.append(item)
    return {"DocumentVersions": items, **({"NextToken": token} if token else {})}


@operation("UpdateDocumentDefaultVersion")
def update_document_default_version(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"], owned=True)
    version = resolve_version(document, params["DocumentVersion"], None)
    if version.status() != "Active":
        raise invalid_document_version(
            f"Version {version.number} of {document.name} is {version.status()}, not Active; "
            "only an Active version can become the default."
        )
    document.default_version = version.number
    context.emit(
        DefaultVersionChanged(
            context.account,
            context.region,
            document.name,
            str(version.number),
            version.version_name,
        )
    )
    description: Params = {"Name": document.name, "DefaultVersion": str(version.number)}
    if version.version_name:
        description["DefaultVersionName"] = version.version_name
    return {"Description": description}


@operation("DeleteDocument")
def delete_document(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"], owned=True)
    if params.get("DocumentVersion") is None and params.get("VersionName") is None:
        if document.shared_with:
            raise invalid_document_operation(
                f"You can't delete {document.name} while it is shared with other accounts. "
                "Stop sharing it (ModifyDocumentPermission AccountIdsToRemove) first."
            )
        del context.state.documents[document.name]
        _delete_associations_to(context, document.name)
        return {}
    version = resolve_version(document, params.get("DocumentVersion"), params.get("VersionName"))
    if version.number == document.default_version:
        raise invalid_document_operation(
            f"Version {version.number} is the default version of {document.name} and can't be "
            "deleted. Set another default version first."
        )
    del document.versions[version.number]
    return {}


def _delete_associations_to(context: Context, name: str) -> None:
    """API_DeleteDocument: "Deletes the ... document and all managed node associations to
    the document." """
    from controller.local.hooks import AssociationChanged
    from controller.local.ssm.associations import snapshot

    arn = document_arn(context.region, context.account, name)
    state = context.state
    for association_id, record in list(state.associations.items()):
        if record.fields.get("Name") in (name, arn):
            del state.associations[association_id]
            context.emit(
                AssociationChanged("deleted", snapshot(context.account, context.region, record))
            )
