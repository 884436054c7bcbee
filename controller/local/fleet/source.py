"""Where an instance's agent gets a package from: the package document and its attachments.

The agent (`agent.py`) only sees the `PackageSource` protocol; `SsmPackageSource` is the real
one, the way the agent's "document archive" service works (agent source:
agent/plugins/configurepackage/birdwatcher/documentarchive/documentarchive.go): `GetDocument`
gives the manifest (the document `Content`) and, in `AttachmentsContent`, one URL per file
name, which the agent then downloads
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetDocument.html).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class PackageSourceError(Exception):
    """The document or a file could not be fetched; the message says which and why."""


@dataclass(frozen=True)
class PackageDocument:
    """One version of a package document as the agent reads it."""

    name: str
    version_name: str  # the package version, e.g. "1.2.0"
    content: str  # the manifest JSON
    attachments: Mapping[str, str]  # file name -> download URL


class PackageSource(Protocol):
    def package_document(self, name: str, version: str) -> PackageDocument:
        """The document version `version` of package `name`; "" means its default version."""
        ...

    def download(self, url: str) -> bytes: ...


class SsmPackageSource:
    """Reads package documents through a boto3 SSM client and downloads their attachments."""

    def __init__(self, ssm_client: Any, timeout: float = 30.0) -> None:
        self._ssm = ssm_client
        self._timeout = timeout

    def package_document(self, name: str, version: str) -> PackageDocument:
        request: dict[str, str] = {"Name": name}
        if version:
            # For a Package document the version parameter is the package version, sent
            # as VersionName (API_GetDocument.html).
            request["VersionName"] = version
        try:
            response = self._ssm.get_document(**request)
        except Exception as err:  # a ClientError: name it as the agent's log would
            raise PackageSourceError(f"failed to retrieve package document {name}: {err}") from err
        attachments = {
            item["Name"]: item["Url"] for item in response.get("AttachmentsContent", []) or []
        }
        return PackageDocument(
            name=name,
            version_name=response.get("VersionName") or version,
            content=response["Content"],
            attachments=attachments,
        )

    def download(self, url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:
                data: bytes = response.read()
                return data
        except OSError as err:
            raise PackageSourceError(f"failed to download {url}: {err}") from err
