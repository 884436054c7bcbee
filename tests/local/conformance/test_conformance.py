"""Conformance: the same calls, through boto3 and through the AWS CLI, with AWS's answers.

Runs against the local endpoint always, and against real AWS with SSM_GITOPS_REAL_AWS=1.
Assertions are only what AWS documents, so both targets must pass.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.local.conformance.conftest import ApiError, CliTool, Target
from tests.local.helpers import command_content, manifest

PACKAGE_PARAMS = {
    "action": ["Install"],
    "installationType": ["Uninstall and reinstall"],
    "name": ["Tool"],
}


def _raises(code: str, call: Callable[[], Any]) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call()
    assert raised.value.code == code, raised.value
    return raised.value


def _eventually(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Real AWS creates a command's invocations a moment after SendCommand returns."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return call()
        except ApiError as error:
            if error.code != "InvocationDoesNotExist" or time.monotonic() > deadline:
                raise
            time.sleep(1)


def _wait_active(tool: Any, name: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        document: dict[str, Any] = tool.call(
            "DescribeDocument", Name=name, DocumentVersion=version
        )["Document"]
        if document["Status"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return document
        time.sleep(0.2 if document else 1)


def _upload_version(
    target: Target, bucket: str, package: str, version: str
) -> tuple[str, dict[str, bytes]]:
    files = {f"{package}-{version}-amazon-x86_64.zip": f"{package} {version} payload".encode()}
    s3 = target.client("s3")
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"{package}/{version}/{name}", Body=data)
    return f"s3://{bucket}/{package}/{version}", files


def test_package_lifecycle(target: Target, tool: Any) -> None:
    bucket = target.bucket()
    package = target.unique("Conformance-Tool")
    source, files = _upload_version(target, bucket, package, "1.0.0")
    created = tool.call(
        "CreateDocument",
        Name=package,
        DocumentType="Package",
        Content=manifest("1.0.0", files),
        VersionName="1.0.0",
        Attachments=[{"Key": "SourceUrl", "Values": [source]}],
        Tags=[{"Key": "ssm-gitops:owner", "Value": "conformance"}],
    )["DocumentDescription"]
    try:
        assert created["Status"] == "Creating"
        assert created["DocumentVersion"] == "1"
        assert _wait_active(tool, package, "1")["Status"] == "Active"
        listed = tool.call(
            "ListDocuments",
            Filters=[
                {"Key": "Owner", "Values": ["Self"]},
                {"Key": "DocumentType", "Values": ["Package"]},
                {"Key": "Name", "Values": [package]},
                {"Key": "tag:ssm-gitops:owner", "Values": ["conformance"]},
            ],
        )["DocumentIdentifiers"]
        assert [(d["Name"], d["VersionName"]) for d in listed] == [(package, "1.0.0")]
        document = tool.call("GetDocument", Name=package, DocumentVersion="$DEFAULT")
        (attachment,) = document["AttachmentsContent"]
        name, data = next(iter(files.items()))
        assert (attachment["Name"], attachment["Size"], attachment["HashType"]) == (
            name,
            len(data),
            "Sha256",
        )
        assert attachment["Hash"] == hashlib.sha256(data).hexdigest()

        source2, files2 = _upload_version(target, bucket, package, "2.0.0")
        _raises(
            "DuplicateDocumentVersionName",
            lambda: tool.call(
                "UpdateDocument",
                Name=package,
                Content=manifest("2.0.0", files2),
                VersionName="1.0.0",
                DocumentVersion="$LATEST",
                Attachments=[{"Key": "SourceUrl", "Values": [source2]}],
            ),
        )
        updated = tool.call(
            "UpdateDocument",
            Name=package,
            Content=manifest("2.0.0", files2),
            VersionName="2.0.0",
            DocumentVersion="$LATEST",
            Attachments=[{"Key": "SourceUrl", "Values": [source2]}],
        )["DocumentDescription"]
        assert updated["DocumentVersion"] == "2" and updated["DefaultVersion"] == "1"
        assert _wait_active(tool, package, "2")["Status"] == "Active"
        default = tool.call("UpdateDocumentDefaultVersion", Name=package, DocumentVersion="2")
        assert default["Description"]["DefaultVersionName"] == "2.0.0"
        versions = tool.call("ListDocumentVersions", Name=package)["DocumentVersions"]
        assert {(v["DocumentVersion"], v["IsDefaultVersion"]) for v in versions} == {
            ("1", False),
            ("2", True),
        }
        _raises(
            "InvalidDocumentOperation",
            lambda: tool.call("DeleteDocument", Name=package, VersionName="2.0.0"),
        )
        tool.call("DeleteDocument", Name=package, VersionName="1.0.0")
        versions = tool.call("ListDocumentVersions", Name=package)["DocumentVersions"]
        assert [v["VersionName"] for v in versions] == ["2.0.0"]
        tags = tool.call("ListTagsForResource", ResourceType="Document", ResourceId=package)
        assert tags["TagList"] == [{"Key": "ssm-gitops:owner", "Value": "conformance"}]
    finally:
        tool.call("DeleteDocument", Name=package)
    _raises("InvalidDocument", lambda: tool.call("DescribeDocument", Name=package))


def test_document_errors(target: Target, tool: Any) -> None:
    name = target.unique("Conformance-Command")
    _raises("InvalidDocument", lambda: tool.call("GetDocument", Name=name))
    error = _raises(
        "ValidationException",
        lambda: tool.call("GetDocument", Name=name, DocumentVersion="$NEWEST"),
    )
    assert "validation error detected" in error.message
    tool.call("CreateDocument", Name=name, Content=command_content("one"))
    try:
        _raises(
            "DuplicateDocumentContent",
            lambda: tool.call(
                "UpdateDocument",
                Name=name,
                Content=command_content("one"),
                DocumentVersion="$LATEST",
            ),
        )
        tool.call(
            "UpdateDocument", Name=name, Content=command_content("two"), DocumentVersion="$LATEST"
        )
        _raises(
            "InvalidDocumentVersion",
            lambda: tool.call(
                "UpdateDocument", Name=name, Content=command_content("three"), DocumentVersion="1"
            ),
        )
        shares = {"Name": name, "PermissionType": "Share"}
        _raises(
            "ValidationException",
            lambda: tool.call(
                "ModifyDocumentPermission",
                **shares,
                AccountIdsToAdd=[str(100000000000 + i) for i in range(21)],
            ),
        )
        tool.call("ModifyDocumentPermission", **shares, AccountIdsToAdd=["111122223333"])
        shared = tool.call("DescribeDocumentPermission", **shares)
        assert shared["AccountIds"] == ["111122223333"]
        _raises("InvalidDocumentOperation", lambda: tool.call("DeleteDocument", Name=name))
        tool.call("ModifyDocumentPermission", **shares, AccountIdsToRemove=["111122223333"])
    finally:
        tool.call("DeleteDocument", Name=name)


def test_association_lifecycle(target: Target, tool: Any) -> None:
    association_name = target.unique("conformance-install")
    created = tool.call(
        "CreateAssociation",
        Name="AWS-ConfigureAWSPackage",
        Parameters=PACKAGE_PARAMS,
        Targets=[{"Key": "tag:ssm-gitops-conformance", "Values": [target.suffix]}],
        AssociationName=association_name,
        ScheduleExpression="rate(30 minutes)",
        MaxConcurrency="10%",
        MaxErrors="10%",
        Tags=[{"Key": "ssm-gitops:owner", "Value": "conformance"}],
    )["AssociationDescription"]
    association_id = created["AssociationId"]
    try:
        assert created["AssociationVersion"] == "1"
        assert created["Parameters"] == PACKAGE_PARAMS
        _raises(
            "InvalidParameters",
            lambda: tool.call(
                "CreateAssociation",
                Name="AWS-ConfigureAWSPackage",
                Parameters={"action": ["Install"]},
                Targets=[{"Key": "tag:ssm-gitops-conformance", "Values": [target.suffix]}],
            ),
        )
        summary = tool.call(
            "ListAssociations",
            AssociationFilterList=[{"key": "AssociationId", "value": association_id}],
        )["Associations"]
        assert len(summary) == 1 and "Parameters" not in summary[0]
        assert summary[0]["AssociationName"] == association_name
        updated = tool.call(
            "UpdateAssociation",
            AssociationId=association_id,
            Parameters=PACKAGE_PARAMS,
            Targets=created["Targets"],
        )["AssociationDescription"]
        assert updated["AssociationVersion"] == "2"
        assert "AssociationName" not in updated and "ScheduleExpression" not in updated
        versions = tool.call("ListAssociationVersions", AssociationId=association_id)
        assert {v["AssociationVersion"] for v in versions["AssociationVersions"]} == {"1", "2"}
        tool.call("StartAssociationsOnce", AssociationIds=[association_id])
        tags = tool.call(
            "ListTagsForResource", ResourceType="Association", ResourceId=association_id
        )
        assert tags["TagList"] == [{"Key": "ssm-gitops:owner", "Value": "conformance"}]
    finally:
        tool.call("DeleteAssociation", AssociationId=association_id)
    _raises(
        "AssociationDoesNotExist",
        lambda: tool.call("DescribeAssociation", AssociationId=association_id),
    )


# -- the seed's own commands (Distributor guide, "Install or update packages") ----------


def test_seed_send_command_install_and_in_place_update(target: Target, cli: CliTool) -> None:
    instances = target.instances("i-02573cafcfEXAMPLE")
    for installation_type in ("Uninstall and reinstall", "In-place update"):
        command = cli.run(
            "ssm",
            "send-command",
            "--document-name",
            "AWS-ConfigureAWSPackage",
            "--instance-ids",
            *instances,
            "--parameters",
            json.dumps(
                {
                    "action": ["Install"],
                    "installationType": [installation_type],
                    "name": ["ExamplePackage"],
                }
            ),
        )["Command"]
        assert command["DocumentName"] == "AWS-ConfigureAWSPackage"
        assert command["Parameters"]["installationType"] == [installation_type]
        listed = cli.run("ssm", "list-commands", "--command-id", command["CommandId"])
        assert listed["Commands"][0]["CommandId"] == command["CommandId"]
        command_id = str(command["CommandId"])
        invocation = _eventually(
            lambda command_id=command_id: cli.run(  # type: ignore[misc]
                "ssm",
                "get-command-invocation",
                "--command-id",
                command_id,
                "--instance-id",
                instances[0],
            )
        )
        assert invocation["DocumentName"] == "AWS-ConfigureAWSPackage"


def test_seed_instance_id_placeholder_is_rejected(cli: CliTool) -> None:
    # The guide's example id "i-00000000000000" has 14 characters; the model's InstanceId
    # pattern wants 8 or 17, so AWS refuses it before anything runs.
    error = _raises(
        "ValidationException",
        lambda: cli.run(
            "ssm",
            "send-command",
            "--document-name",
            "AWS-ConfigureAWSPackage",
            "--instance-ids",
            "i-00000000000000",
            "--parameters",
            '{"action":["Install"],"installationType":["Uninstall and reinstall"],'
            '"name":["ExamplePackage"]}',
        ),
    )
    assert "instanceIds" in error.message


@pytest.mark.parametrize("installation_type", ["Uninstall and reinstall", "In-place update"])
def test_seed_create_association(target: Target, cli: CliTool, installation_type: str) -> None:
    created = cli.run(
        "ssm",
        "create-association",
        "--name",
        "AWS-ConfigureAWSPackage",
        "--parameters",
        json.dumps(
            {
                "action": ["Install"],
                "installationType": [installation_type],
                "name": ["Test-ConfigureAWSPackage"],
            }
        ),
        "--targets",
        '[{"Key":"InstanceIds","Values":["i-02573cafcfEXAMPLE","i-0471e04240EXAMPLE"]}]',
    )["AssociationDescription"]
    try:
        assert created["Name"] == "AWS-ConfigureAWSPackage"
        assert created["Targets"] == [
            {"Key": "InstanceIds", "Values": ["i-02573cafcfEXAMPLE", "i-0471e04240EXAMPLE"]}
        ]
        described = cli.run(
            "ssm", "describe-association", "--association-id", created["AssociationId"]
        )["AssociationDescription"]
        assert described["Parameters"]["installationType"] == [installation_type]
    finally:
        cli.run("ssm", "delete-association", "--association-id", created["AssociationId"])
