"""Distributor packages (SSM documents of type Package): list, describe, publish, delete.

Stage: observe and apply. Thin wrappers, one AWS operation each, returning plain values;
the caching and the decisions live in `controller.reconcile.observe` / `.apply`.
API reference: https://docs.aws.amazon.com/systems-manager/latest/APIReference/
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from controller.aws.api import items, request
from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.model.state import OWNER_TAG, ObservedVersion


class PublishFailed(AwsError):
    """A created/updated version ended in Status Failed; `StatusInformation` says why."""

    family = "invalid"


@dataclass(frozen=True)
class PackageSummary:
    """One row of ListDocuments."""

    name: str
    # A version's number and VersionName as ListDocuments shows the document
    # (API_DocumentIdentifier: DocumentVersion, VersionName; the reference says only "the
    # document version"; the embedded endpoint shows the default one). It moves when the
    # default moves, maybe not when a version is added: a cache key between resyncs only.
    document_version: str
    tags: tuple[tuple[str, str], ...]
    version_name: str = ""


@dataclass(frozen=True)
class PublishedVersion:
    """A version once Active: its number and the sha256 of its Content (DescribeDocument Hash)."""

    number: str
    content_sha256: str


@dataclass(frozen=True)
class PackagePointers:
    default_number: str
    latest_number: str


def list_owned(clients: AwsClients, owner: str) -> Iterator[PackageSummary]:
    """Our packages, 50 a page: owner Self, type Package, tag ssm-gitops:owner=<owner>.

    ListDocuments filters: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentKeyValuesFilter.html
    """
    filters = [
        {"Key": "Owner", "Values": ["Self"]},
        {"Key": "DocumentType", "Values": ["Package"]},
        {"Key": f"tag:{OWNER_TAG}", "Values": [owner]},
    ]
    listing = items(
        clients, "ssm", "ListDocuments", "DocumentIdentifiers", Filters=filters, MaxResults=50
    )
    for item in listing:
        tags = tuple(sorted((t["Key"], t["Value"]) for t in item.get("Tags", [])))
        # Belt and braces: never trust a filter with ownership.
        if (OWNER_TAG, owner) in tags and item.get("DocumentType", "Package") == "Package":
            yield PackageSummary(
                item["Name"],
                str(item.get("DocumentVersion", "")),
                tags,
                str(item.get("VersionName", "")),
            )


def describe(clients: AwsClients, name: str) -> PackagePointers:
    """DefaultVersion and LatestVersion are version numbers (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentDescription.html)."""
    description = request(clients, "ssm", "DescribeDocument", Name=name)["Document"]
    return PackagePointers(
        str(description.get("DefaultVersion", "")), str(description.get("LatestVersion", ""))
    )


@dataclass(frozen=True)
class VersionInfo:
    """One row of ListDocumentVersions (API_DocumentVersionInfo)."""

    number: str
    name: str  # VersionName ("" when created without one)
    status: str
    information: str  # StatusInformation
    created: str
    is_default: bool  # IsDefaultVersion: the default pointer, without a DescribeDocument


def list_version_infos(clients: AwsClients, name: str) -> list[VersionInfo]:
    """Every version of package `name`, 50 a page. Each row carries `IsDefaultVersion`, so
    this one read answers both which versions exist and which is the default: no
    DescribeDocument is needed for the pointers (latest = the highest number)
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListDocumentVersions.html,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentVersionInfo.html)."""
    return [
        VersionInfo(
            str(item["DocumentVersion"]),
            str(item.get("VersionName", "")),
            str(item.get("Status", "Active")),
            str(item.get("StatusInformation", "")),
            str(item.get("CreatedDate", "")),
            bool(item.get("IsDefaultVersion", False)),
        )
        for item in items(
            clients, "ssm", "ListDocumentVersions", "DocumentVersions", Name=name, MaxResults=50
        )
    ]


def version_hash(clients: AwsClients, name: str, number: str) -> str:
    """The sha256 of one version's Content (DescribeDocument Hash, HashType Sha256,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentDescription.html)."""
    description = request(clients, "ssm", "DescribeDocument", Name=name, DocumentVersion=number)[
        "Document"
    ]
    return str(description.get("Hash", ""))


def version_content(clients: AwsClients, name: str, number: str) -> str:
    document = request(clients, "ssm", "GetDocument", Name=name, DocumentVersion=number)
    return str(document.get("Content", ""))


def _attachments(url: str) -> list[dict[str, object]]:
    return [{"Key": "SourceUrl", "Values": [url]}]


def create(
    clients: AwsClients,
    name: str,
    version_name: str,
    content: str,
    attachments_url: str,
    tags: Sequence[tuple[str, str]],
) -> None:
    """CreateDocument: the package and its first version, tagged at birth (owner tag)
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateDocument.html)."""
    request(
        clients,
        "ssm",
        "CreateDocument",
        Name=name,
        Content=content,
        DocumentType="Package",
        DocumentFormat="JSON",
        VersionName=version_name,
        Attachments=_attachments(attachments_url),
        Tags=[{"Key": key, "Value": value} for key, value in tags],
    )


def add_version(
    clients: AwsClients, name: str, version_name: str, content: str, attachments_url: str
) -> None:
    """UpdateDocument on $LATEST; Attachments must be re-sent for a Package
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateDocument.html)."""
    request(
        clients,
        "ssm",
        "UpdateDocument",
        Name=name,
        Content=content,
        DocumentFormat="JSON",
        VersionName=version_name,
        DocumentVersion="$LATEST",
        Attachments=_attachments(attachments_url),
    )


def find_version(clients: AwsClients, name: str, version_name: str) -> ObservedVersion | None:
    for info in list_version_infos(clients, name):
        if info.name == version_name:
            return ObservedVersion(info.name, info.number, "", info.status, info.information)
    return None


def wait_active(
    clients: AwsClients, name: str, version_name: str, timeout: float = 300.0
) -> PublishedVersion:
    """Poll until the version is Active; return its number and content hash.

    Creation is asynchronous (DocumentStatus: Creating | Active | Updating | Deleting |
    Failed, https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentDescription.html);
    the same DescribeDocument answer carries the Hash, so no second call is needed.
    """
    delay = 0.05
    deadline = time.monotonic() + timeout
    while True:
        description = request(
            clients, "ssm", "DescribeDocument", Name=name, VersionName=version_name
        )["Document"]
        status = description.get("Status", "Active")
        if status == "Active":
            return PublishedVersion(
                str(description["DocumentVersion"]), str(description.get("Hash", ""))
            )
        if status == "Failed":
            raise PublishFailed(
                "CreateDocument"
                if str(description.get("DocumentVersion")) == "1"
                else "UpdateDocument",
                "Failed",
                f"{name} {version_name}: {description.get('StatusInformation', 'no reason given')}",
            )
        if time.monotonic() > deadline:
            raise PublishFailed(
                "DescribeDocument",
                "Timeout",
                f"{name} {version_name} still {status} after {timeout:.0f}s",
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def set_default(clients: AwsClients, name: str, number: str) -> None:
    """UpdateDocumentDefaultVersion takes a version number (pattern ^[1-9][0-9]*$), not a
    VersionName (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateDocumentDefaultVersion.html)."""
    request(
        clients,
        "ssm",
        "UpdateDocumentDefaultVersion",
        Name=name,
        DocumentVersion=number,
    )


def delete_version(clients: AwsClients, name: str, version_name: str) -> None:
    """DeleteDocument with VersionName deletes that version only
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html)."""
    request(clients, "ssm", "DeleteDocument", Name=name, VersionName=version_name)


def delete(clients: AwsClients, name: str) -> None:
    """DeleteDocument with only Name deletes every version (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html)."""
    request(clients, "ssm", "DeleteDocument", Name=name)
