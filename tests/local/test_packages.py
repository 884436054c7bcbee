"""Package versions: attachments read from the local S3, checked against the manifest."""

from __future__ import annotations

import hashlib
import urllib.request

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from tests.local.helpers import create_package, error_code, manifest, upload, wait_status


def test_package_becomes_active_and_attachments_are_downloadable(local_aws: LocalAWS) -> None:
    # moto drops Package attachments (AttachmentsContent: [{}]).
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    files = {"tool-1.0.0-amazon-x86_64.zip": b"zip one", "tool-1.0.0-ubuntu-x86_64.zip": b"two"}
    created = create_package(ssm, s3, "Tool", "1.0.0", files=files)
    assert created["Status"] == "Creating"
    assert created["AttachmentsInformation"] == [{"Name": n} for n in sorted(files)]
    assert wait_status(ssm, "Tool", "1")["Status"] == "Active"
    document = ssm.get_document(Name="Tool")
    contents = {a["Name"]: a for a in document["AttachmentsContent"]}
    assert set(contents) == set(files)
    for name, data in files.items():
        item = contents[name]
        assert item["Size"] == len(data)
        assert item["Hash"] == hashlib.sha256(data).hexdigest()
        assert item["HashType"] == "Sha256"
        with urllib.request.urlopen(item["Url"], timeout=10) as response:
            assert response.read() == data


def test_missing_file_fails_the_version_and_names_it(local_aws: LocalAWS) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    files = {"a.zip": b"a", "b.zip": b"b"}
    upload(s3, "pkg-bucket", "Broken/1", {"a.zip": b"a"})
    ssm.create_document(
        Name="Broken",
        Content=manifest("1", files),
        DocumentType="Package",
        VersionName="1",
        Attachments=[{"Key": "SourceUrl", "Values": ["s3://pkg-bucket/Broken/1"]}],
    )
    document = wait_status(ssm, "Broken", "1")
    assert document["Status"] == "Failed"
    assert "'b.zip'" in document["StatusInformation"]
    assert "not found" in document["StatusInformation"]


def test_checksum_mismatch_fails_the_version(local_aws: LocalAWS) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    upload(s3, "pkg-bucket", "Tampered/1", {"a.zip": b"tampered"})
    ssm.create_document(
        Name="Tampered",
        Content=manifest("1", {"a.zip": b"original"}),
        DocumentType="Package",
        Attachments=[{"Key": "SourceUrl", "Values": ["s3://pkg-bucket/Tampered/1"]}],
    )
    document = wait_status(ssm, "Tampered", "1")
    assert document["Status"] == "Failed"
    assert "'a.zip'" in document["StatusInformation"] and "sha256" in document["StatusInformation"]


def test_s3_file_url_attachments(local_aws: LocalAWS) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    upload(s3, "pkg-bucket", "elsewhere", {"stored-name.zip": b"payload"})
    ssm.create_document(
        Name="ByFile",
        Content=manifest("1", {"pkg.zip": b"payload"}),
        DocumentType="Package",
        Attachments=[
            {
                "Key": "S3FileUrl",
                "Name": "pkg.zip",
                "Values": ["https://pkg-bucket.s3.amazonaws.com/elsewhere/stored-name.zip"],
            }
        ],
    )
    assert wait_status(ssm, "ByFile", "1")["Status"] == "Active"
    assert [a["Name"] for a in ssm.get_document(Name="ByFile")["AttachmentsContent"]] == ["pkg.zip"]


def test_malformed_manifest_is_refused_at_once(local_aws: LocalAWS) -> None:
    ssm = local_aws.client("ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_document(
            Name="NoFiles", Content='{"schemaVersion": "2.0"}', DocumentType="Package"
        )
    assert error_code(raised) == "InvalidDocumentContent"


def test_more_than_20_attachments_is_refused(local_aws: LocalAWS) -> None:
    ssm = local_aws.client("ssm")
    sources = [
        {"Key": "S3FileUrl", "Name": f"f{i}.zip", "Values": [f"s3://b/f{i}.zip"]} for i in range(21)
    ]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_document(
            Name="TooMany",
            Content=manifest("1", {f"f{i}.zip": b"x" for i in range(21)}),
            DocumentType="Package",
            Attachments=sources,
        )
    assert error_code(raised) == "ValidationException"
    # And through a folder: the manifest naming 21 files ends Failed.
    files = {f"f{i}.zip": str(i).encode() for i in range(21)}
    upload(local_aws.client("s3"), "pkg-bucket", "TooMany/1", files)
    ssm.create_document(
        Name="TooMany",
        Content=manifest("1", files),
        DocumentType="Package",
        Attachments=[{"Key": "SourceUrl", "Values": ["s3://pkg-bucket/TooMany/1"]}],
    )
    document = wait_status(ssm, "TooMany", "1")
    assert document["Status"] == "Failed" and "20" in document["StatusInformation"]


def test_a_package_holds_at_most_25_versions(local_aws: LocalAWS) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    create_package(ssm, s3, "Big", "v1")
    for i in range(2, 26):
        files = {f"big-{i}.zip": f"v{i}".encode()}
        upload(s3, "packages-bucket", f"Big/v{i}", files)
        ssm.update_document(
            Name="Big",
            Content=manifest(f"v{i}", files),
            VersionName=f"v{i}",
            DocumentVersion="$LATEST",
            Attachments=[{"Key": "SourceUrl", "Values": [f"s3://packages-bucket/Big/v{i}"]}],
        )
    files = {"big-26.zip": b"v26"}
    upload(s3, "packages-bucket", "Big/v26", files)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document(
            Name="Big",
            Content=manifest("v26", files),
            VersionName="v26",
            DocumentVersion="$LATEST",
            Attachments=[{"Key": "SourceUrl", "Values": ["s3://packages-bucket/Big/v26"]}],
        )
    assert error_code(raised) == "DocumentVersionLimitExceeded"


def test_failed_version_cannot_become_default(local_aws: LocalAWS) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    create_package(ssm, s3, "Half", "1")
    ssm.update_document(
        Name="Half",
        Content=manifest("2", {"missing.zip": b"?"}),
        VersionName="2",
        DocumentVersion="$LATEST",
        Attachments=[{"Key": "SourceUrl", "Values": ["s3://packages-bucket/Half/2"]}],
    )
    assert wait_status(ssm, "Half", "2")["Status"] == "Failed"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document_default_version(Name="Half", DocumentVersion="2")
    assert error_code(raised) == "InvalidDocumentVersion"
