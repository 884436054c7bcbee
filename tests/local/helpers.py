"""Small builders shared by the local endpoint's tests: command documents and packages."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import botocore.exceptions
import pytest


def command_content(marker: str = "hello") -> str:
    """A valid Command document; `marker` makes the content unique."""
    return json.dumps(
        {
            "schemaVersion": "2.2",
            "description": f"test document {marker}",
            "parameters": {"message": {"type": "String", "default": marker}},
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": "run",
                    "inputs": {"runCommand": ["echo {{ message }}"]},
                }
            ],
        }
    )


def manifest(version: str, files: dict[str, bytes]) -> str:
    """A Distributor manifest naming `files` (one per platform entry) with their sha256."""
    names = sorted(files)
    return json.dumps(
        {
            "schemaVersion": "2.0",
            "version": version,
            "packages": {
                "amazon": {"_any": {"x86_64": {"file": names[0]}}},
                **{f"linux{i}": {"_any": {"x86_64": {"file": n}}} for i, n in enumerate(names)},
            },
            "files": {
                name: {"checksums": {"sha256": hashlib.sha256(data).hexdigest()}}
                for name, data in files.items()
            },
        }
    )


def upload(s3: Any, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",):
            raise
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)


def create_package(
    ssm: Any,
    s3: Any,
    name: str,
    version: str = "1.0.0",
    bucket: str = "packages-bucket",
    files: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """Upload files and create a package whose manifest names them; returns the description."""
    files = files or {f"{name}-{version}.zip": f"{name} {version}".encode()}
    upload(s3, bucket, f"{name}/{version}", files)
    response = ssm.create_document(
        Name=name,
        Content=manifest(version, files),
        DocumentType="Package",
        VersionName=version,
        Attachments=[{"Key": "SourceUrl", "Values": [f"s3://{bucket}/{name}/{version}"]}],
    )
    description: dict[str, Any] = response["DocumentDescription"]
    return description


def wait_status(ssm: Any, name: str, version: str, timeout: float = 5.0) -> dict[str, Any]:
    """DescribeDocument until the version leaves Creating/Updating."""
    deadline = time.monotonic() + timeout
    while True:
        document: dict[str, Any] = ssm.describe_document(Name=name, DocumentVersion=version)[
            "Document"
        ]
        if document["Status"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return document
        time.sleep(0.02)


def error_code(raised: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])
