"""Distributor packages (SSM documents of type Package): list, describe, publish, delete.

Stage: observe and apply. Thin wrappers, one AWS operation each, returning plain values;
the caching and the decisions live in `controller.reconcile.observe` / `.apply`.
API reference: https://docs.aws.amazon.com/systems-manager/latest/APIReference/
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from controller.aws.errors import AwsError, call
from controller.aws.session import AwsClients
from controller.model.state import OWNER_TAG, ObservedVersion


class PublishFailed(AwsError):
    """A created/updated version ended in Status Failed; `StatusInformation` says why."""

    family = "invalid"


@dataclass(frozen=True)
class PackageSummary:
    """One row of ListDocuments."""

    name: str
    document_version: str  # changes when the document changes: our cache key
    tags: tuple[tuple[str, str], ...]


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
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "Filters": [
                {"Key": "Owner", "Values": ["Self"]},
                {"Key": "DocumentType", "Values": ["Package"]},
                {"Key": f"tag:{OWNER_TAG}", "Values": [owner]},
            ],
            "MaxResults": 50,
        }
        if token:
            request["NextToken"] = token
        page = call("ListDocuments", clients.ssm.list_documents, **request)
        for item in page.get("DocumentIdentifiers", []):
            tags = tuple(sorted((t["Key"], t["Value"]) for t in item.get("Tags", [])))
            # Belt and braces: never trust a filter with ownership.
            if (OWNER_TAG, owner) in tags and item.get("DocumentType", "Package") == "Package":
                yield PackageSummary(item["Name"], str(item.get("DocumentVersion", "")), tags)
        token = page.get("NextToken")
        if not token:
            return


def describe(clients: AwsClients, name: str) -> PackagePointers:
    """DefaultVersion and LatestVersion are version numbers (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentDescription.html)."""
    description = call("DescribeDocument", clients.ssm.describe_document, Name=name)["Document"]
    return PackagePointers(
        str(description.get("DefaultVersion", "")), str(description.get("LatestVersion", ""))
    )


def list_versions(clients: AwsClients, name: str) -> list[tuple[str, str, str, str, str]]:
    """(number, VersionName, Status, StatusInformation, CreatedDate) of every version,
    50 a page (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListDocumentVersions.html)."""
    versions: list[tuple[str, str, str, str, str]] = []
    token: str | None = None
    while True:
        request: dict[str, Any] = {"Name": name, "MaxResults": 50}
        if token:
            request["NextToken"] = token
        page = call("ListDocumentVersions", clients.ssm.list_document_versions, **request)
        for item in page.get("DocumentVersions", []):
            versions.append(
                (
                    str(item["DocumentVersion"]),
                    str(item.get("VersionName", "")),
                    str(item.get("Status", "Active")),
                    str(item.get("StatusInformation", "")),
                    str(item.get("CreatedDate", "")),
                )
            )
        token = page.get("NextToken")
        if not token:
            return versions


def version_hash(clients: AwsClients, name: str, number: str) -> str:
    """The sha256 of one version's Content (DescribeDocument Hash, HashType Sha256,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentDescription.html)."""
    description = call(
        "DescribeDocument", clients.ssm.describe_document, Name=name, DocumentVersion=number
    )["Document"]
    return str(description.get("Hash", ""))


def version_content(clients: AwsClients, name: str, number: str) -> str:
    document = call("GetDocument", clients.ssm.get_document, Name=name, DocumentVersion=number)
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
    call(
        "CreateDocument",
        clients.ssm.create_document,
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
    call(
        "UpdateDocument",
        clients.ssm.update_document,
        Name=name,
        Content=content,
        DocumentFormat="JSON",
        VersionName=version_name,
        DocumentVersion="$LATEST",
        Attachments=_attachments(attachments_url),
    )


def find_version(clients: AwsClients, name: str, version_name: str) -> ObservedVersion | None:
    for number, found, status, information, _created in list_versions(clients, name):
        if found == version_name:
            return ObservedVersion(found, number, "", status, information)
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
        description = call(
            "DescribeDocument",
            clients.ssm.describe_document,
            Name=name,
            VersionName=version_name,
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
    call(
        "UpdateDocumentDefaultVersion",
        clients.ssm.update_document_default_version,
        Name=name,
        DocumentVersion=number,
    )


def delete_version(clients: AwsClients, name: str, version_name: str) -> None:
    """DeleteDocument with VersionName deletes that version only
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html)."""
    call("DeleteDocument", clients.ssm.delete_document, Name=name, VersionName=version_name)


def delete(clients: AwsClients, name: str) -> None:
    """DeleteDocument with only Name deletes every version (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html)."""
    call("DeleteDocument", clients.ssm.delete_document, Name=name)
