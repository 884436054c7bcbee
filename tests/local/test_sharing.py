"""Sharing: AWS's limits on ModifyDocumentPermission, paging, and access by ARN."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from tests.local.helpers import create_package, error_code, wait_status

OWN = "123456789012"


def _accounts(n: int, start: int = 100000000000) -> list[str]:
    return [str(start + i) for i in range(n)]


def _other_account_ssm(local_aws: LocalAWS, account: str) -> Any:
    creds = local_aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/reader", RoleSessionName="reader"
    )["Credentials"]
    return local_aws.client(
        "ssm",
        access_key=creds["AccessKeyId"],
        secret_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
    )


@pytest.fixture
def shared(local_aws: LocalAWS) -> Any:
    ssm = local_aws.client("ssm")
    create_package(ssm, local_aws.client("s3"), "SharedTool", "1.0")
    wait_status(ssm, "SharedTool", "1")
    return ssm


def test_at_most_20_ids_per_call(shared: Any) -> None:
    # moto accepts 21.
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        shared.modify_document_permission(
            Name="SharedTool", PermissionType="Share", AccountIdsToAdd=_accounts(21)
        )
    assert error_code(raised) == "ValidationException"


def test_at_most_1000_accounts_in_total(shared: Any) -> None:
    for batch in range(50):
        shared.modify_document_permission(
            Name="SharedTool",
            PermissionType="Share",
            AccountIdsToAdd=_accounts(20, 100000000000 + batch * 20),
        )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        shared.modify_document_permission(
            Name="SharedTool", PermissionType="Share", AccountIdsToAdd=["999999999999"]
        )
    assert error_code(raised) == "DocumentPermissionLimit"
    ids: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = shared.describe_document_permission(
            Name="SharedTool", PermissionType="Share", MaxResults=200, **token
        )
        ids += page["AccountIds"]
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert len(ids) == 1000


def test_all_is_not_mixed_with_ids_and_own_account_is_refused(shared: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        shared.modify_document_permission(
            Name="SharedTool", PermissionType="Share", AccountIdsToAdd=["All", "111122223333"]
        )
    assert error_code(raised) == "InvalidPermissionType"
    with pytest.raises(botocore.exceptions.ClientError):
        shared.modify_document_permission(
            Name="SharedTool", PermissionType="Share", AccountIdsToAdd=[OWN]
        )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        shared.modify_document_permission(
            Name="SharedTool",
            PermissionType="Share",
            AccountIdsToAdd=["111122223333"],
            SharedDocumentVersion="2",
        )
    assert error_code(raised) == "ValidationException"


def test_shared_version_is_reported_and_paged(shared: Any) -> None:
    shared.modify_document_permission(
        Name="SharedTool",
        PermissionType="Share",
        AccountIdsToAdd=["111122223333", "444455556666"],
        SharedDocumentVersion="$LATEST",
    )
    first = shared.describe_document_permission(
        Name="SharedTool", PermissionType="Share", MaxResults=1
    )
    assert first["AccountIds"] == ["111122223333"]
    assert first["AccountSharingInfoList"] == [
        {"AccountId": "111122223333", "SharedDocumentVersion": "$LATEST"}
    ]
    second = shared.describe_document_permission(
        Name="SharedTool", PermissionType="Share", NextToken=first["NextToken"]
    )
    assert second["AccountIds"] == ["444455556666"] and "NextToken" not in second


def test_delete_refused_while_shared(shared: Any) -> None:
    shared.modify_document_permission(
        Name="SharedTool", PermissionType="Share", AccountIdsToAdd=["111122223333"]
    )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        shared.delete_document(Name="SharedTool")
    assert error_code(raised) == "InvalidDocumentOperation"
    shared.modify_document_permission(
        Name="SharedTool", PermissionType="Share", AccountIdsToRemove=["111122223333"]
    )
    shared.delete_document(Name="SharedTool")


def test_shared_package_is_visible_by_arn_from_the_other_account(
    local_aws: LocalAWS, shared: Any
) -> None:
    other = _other_account_ssm(local_aws, "111122223333")
    arn = f"arn:aws:ssm:us-east-1:{OWN}:document/SharedTool"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        other.describe_document(Name=arn)
    assert error_code(raised) == "InvalidDocument"
    shared.modify_document_permission(
        Name="SharedTool", PermissionType="Share", AccountIdsToAdd=["111122223333"]
    )
    described = other.describe_document(Name=arn)["Document"]
    assert described["Owner"] == OWN and described["DocumentType"] == "Package"
    assert other.get_document(Name=arn)["AttachmentsContent"]
    listed = other.list_documents(Filters=[{"Key": "Owner", "Values": ["Private"]}])
    assert [d["Name"] for d in listed["DocumentIdentifiers"]] == [arn]
    # The fleet resolves it the same way for an instance in the other account.
    resolved = local_aws.ssm.resolve_package("111122223333", "us-east-1", arn)
    assert (resolved.owner, resolved.version_name) == (OWN, "1.0")
    # The other account can use it, but not change or re-share it.
    with pytest.raises(botocore.exceptions.ClientError):
        other.modify_document_permission(
            Name=arn, PermissionType="Share", AccountIdsToAdd=["444455556666"]
        )
    with pytest.raises(botocore.exceptions.ClientError):
        other.delete_document(Name=arn)


def test_shared_document_version_limits_what_the_other_account_sees(
    local_aws: LocalAWS, shared: Any
) -> None:
    # API_ModifyDocumentPermission: SharedDocumentVersion is the version shared ($DEFAULT
    # when not given); $ALL shares every version.
    s3 = local_aws.client("s3")
    from tests.local.helpers import manifest, upload

    files = {"shared-2.zip": b"two"}
    upload(s3, "packages-bucket", "SharedTool/2.0", files)
    shared.update_document(
        Name="SharedTool",
        Content=manifest("2.0", files),
        VersionName="2.0",
        DocumentVersion="$LATEST",
        Attachments=[{"Key": "SourceUrl", "Values": ["s3://packages-bucket/SharedTool/2.0"]}],
    )
    wait_status(shared, "SharedTool", "2")
    other = _other_account_ssm(local_aws, "111122223333")
    arn = f"arn:aws:ssm:us-east-1:{OWN}:document/SharedTool"
    share = {"Name": "SharedTool", "PermissionType": "Share"}
    shared.modify_document_permission(**share, AccountIdsToAdd=["111122223333"])
    assert other.get_document(Name=arn)["VersionName"] == "1.0"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        other.get_document(Name=arn, VersionName="2.0")
    assert error_code(raised) == "InvalidDocumentVersion"
    versions = other.list_document_versions(Name=arn)["DocumentVersions"]
    assert [v["VersionName"] for v in versions] == ["1.0"]
    shared.modify_document_permission(
        **share, AccountIdsToAdd=["111122223333"], SharedDocumentVersion="$LATEST"
    )
    assert other.get_document(Name=arn)["VersionName"] == "2.0"
    shared.modify_document_permission(
        **share, AccountIdsToAdd=["111122223333"], SharedDocumentVersion="$ALL"
    )
    assert other.get_document(Name=arn, VersionName="1.0")["DocumentVersion"] == "1"
    assert len(other.list_document_versions(Name=arn)["DocumentVersions"]) == 2
