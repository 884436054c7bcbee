"""The embedded endpoint emits CloudTrail-shaped events for mutating SSM calls (issue 14).

Every mutating SSM call that succeeds puts an `AWS API Call via CloudTrail` event on moto's
EventBridge; a rule like deploy/events/ delivers it to SQS. Reads and failed calls emit
nothing.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from tests.local import eventbus
from tests.local.helpers import command_content


def wire_queue(aws: LocalAWS) -> str:
    return eventbus.wire_queue(aws.client("sqs"), aws.client("events"))


def drain(aws: LocalAWS, url: str) -> list[dict[str, Any]]:
    return eventbus.drain(aws.client("sqs"), url)


def wait_active(ssm: Any, name: str) -> None:
    for _ in range(200):
        if ssm.describe_document(Name=name, DocumentVersion="2")["Document"]["Status"] == "Active":
            return
        time.sleep(0.02)


def test_mutating_calls_emit_cloudtrail_events_and_reads_do_not(local_aws: LocalAWS) -> None:
    """Issue 14: the local endpoint emitted no drift events, so the event path could not run."""
    url = wire_queue(local_aws)
    ssm = local_aws.client("ssm")
    ssm.create_document(Name="doc-a", Content=command_content("1"), DocumentType="Command")
    ssm.update_document(Name="doc-a", Content=command_content("2"), DocumentVersion="$LATEST")
    wait_active(ssm, "doc-a")
    ssm.update_document_default_version(Name="doc-a", DocumentVersion="2")
    ssm.modify_document_permission(
        Name="doc-a", PermissionType="Share", AccountIdsToAdd=["111122223333"]
    )
    ssm.add_tags_to_resource(
        ResourceType="Document", ResourceId="doc-a", Tags=[{"Key": "k", "Value": "v"}]
    )
    ssm.describe_document(Name="doc-a")
    ssm.list_documents()
    created = ssm.create_association(
        Name="doc-a", AssociationName="assoc-a", Targets=[{"Key": "InstanceIds", "Values": ["i-1"]}]
    )
    association_id = created["AssociationDescription"]["AssociationId"]
    ssm.update_association(
        AssociationId=association_id,
        AssociationName="assoc-a",
        Name="doc-a",
        Targets=[{"Key": "InstanceIds", "Values": ["i-2"]}],
    )
    ssm.delete_association(AssociationId=association_id)
    ssm.remove_tags_from_resource(ResourceType="Document", ResourceId="doc-a", TagKeys=["k"])
    ssm.modify_document_permission(
        Name="doc-a", PermissionType="Share", AccountIdsToRemove=["111122223333"]
    )
    ssm.delete_document(Name="doc-a")
    events = drain(local_aws, url)
    names = [e["detail"]["eventName"] for e in events]
    assert names == [
        "CreateDocument",
        "UpdateDocument",
        "UpdateDocumentDefaultVersion",
        "ModifyDocumentPermission",
        "AddTagsToResource",
        "CreateAssociation",
        "UpdateAssociation",
        "DeleteAssociation",
        "RemoveTagsFromResource",
        "ModifyDocumentPermission",
        "DeleteDocument",
    ]
    for event in events:
        assert event["source"] == "aws.ssm"
        assert event["detail-type"] == "AWS API Call via CloudTrail"
        detail = event["detail"]
        assert detail["eventSource"] == "ssm.amazonaws.com"
        assert detail["awsRegion"] == "us-east-1"
        assert detail["recipientAccountId"] == "123456789012"
        assert detail["userIdentity"]["arn"].startswith("arn:aws:")
        assert detail["readOnly"] is False
    by_name = {e["detail"]["eventName"]: e["detail"] for e in events}
    assert by_name["UpdateDocumentDefaultVersion"]["requestParameters"] == {
        "name": "doc-a",
        "documentVersion": "2",
    }
    assert "content" not in by_name["CreateDocument"]["requestParameters"]
    assert (
        by_name["CreateAssociation"]["responseElements"]["associationDescription"]["associationId"]
        == association_id
    )
    assert by_name["DeleteAssociation"]["requestParameters"] == {"associationId": association_id}


def test_failed_calls_emit_nothing(local_aws: LocalAWS) -> None:
    url = wire_queue(local_aws)
    ssm = local_aws.client("ssm")
    with pytest.raises(botocore.exceptions.ClientError):
        ssm.update_document_default_version(Name="missing", DocumentVersion="2")
    assert drain(local_aws, url) == []


def test_assumed_role_caller_carries_its_session_name(local_aws: LocalAWS) -> None:
    """userIdentity names the assumed role and the session (how the controller's own calls
    are told apart: its session name is ssm-gitops-<owner>)."""
    url = wire_queue(local_aws)
    iam = local_aws.client("iam")
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument="{}")
    credentials = local_aws.client("sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/deployer", RoleSessionName="alice"
    )["Credentials"]
    ssm = local_aws.client(
        "ssm",
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )
    ssm.create_document(Name="doc-b", Content=command_content("b"), DocumentType="Command")
    (event,) = drain(local_aws, url)
    identity = event["detail"]["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == "arn:aws:sts::123456789012:assumed-role/deployer/alice"
    assert identity["sessionContext"]["sessionIssuer"]["arn"].endswith(":role/deployer")
