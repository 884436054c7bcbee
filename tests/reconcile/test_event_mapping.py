"""Drift events (issue 14): a CloudTrail event as EventBridge delivers it -> the one resource
it names, or foreign/malformed. Table tests with the event shapes CloudTrail records for SSM
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html), and hostile
bodies: huge, not JSON, wrong types, deep nesting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.model.kinds import Kind
from controller.model.state import Location
from controller.reconcile.events import (
    MAX_BODY,
    DriftEvent,
    EventResult,
    Ignored,
    NamedResource,
    is_own,
    read_event,
)

HERE = Location("123456789012", "eu-west-1")
ASSOC_ID = "8dfe3659-4309-493a-8755-0123456789ab"
ALICE: dict[str, Any] = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLEID:alice@example.com",
    "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com",
    "accountId": "123456789012",
    "accessKeyId": "ASIAEXAMPLEKEY000001",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLEID",
            "arn": "arn:aws:iam::123456789012:role/Admin",
            "accountId": "123456789012",
            "userName": "Admin",
        },
        "attributes": {"creationDate": "2026-12-01T03:00:00Z", "mfaAuthenticated": "false"},
    },
}


def event(
    name: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    identity: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """One EventBridge event carrying a CloudTrail record of an SSM call."""
    detail = {
        "eventVersion": "1.08",
        "userIdentity": identity or ALICE,
        "eventTime": "2026-12-01T03:10:00Z",
        "eventSource": "ssm.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": "6a3c2b1e-0000-4000-8000-000000000001",
        "eventID": "1b2c3d4e-0000-4000-8000-000000000002",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
        **extra,
    }
    return json.dumps(
        {
            "version": "0",
            "id": "0d5f1a2b-0000-4000-8000-000000000003",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ssm",
            "account": "123456789012",
            "time": "2026-12-01T03:10:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": detail,
        }
    )


def package(name: str) -> NamedResource:
    return NamedResource(Kind.PACKAGE, HERE, name=name)


NAMED = [
    (
        "CreateDocument",
        {"name": "agent", "documentType": "Package", "content": "HIDDEN"},
        None,
        package("agent"),
    ),
    (
        "UpdateDocument",
        {"name": "agent", "documentVersion": "$LATEST", "versionName": "1.1"},
        None,
        package("agent"),
    ),
    (
        "UpdateDocumentDefaultVersion",
        {"name": "agent", "documentVersion": "1"},
        {"description": {"name": "agent", "defaultVersion": "1"}},
        package("agent"),
    ),
    ("DeleteDocument", {"name": "agent", "force": False}, None, package("agent")),
    (
        "ModifyDocumentPermission",
        {"name": "agent", "permissionType": "Share", "accountIdsToRemove": ["111122223333"]},
        None,
        package("agent"),
    ),
    (
        "UpdateDocumentDefaultVersion",
        {"name": "arn:aws:ssm:eu-west-1:123456789012:document/agent", "documentVersion": "2"},
        None,
        package("agent"),
    ),
    (
        "AddTagsToResource",
        {"resourceType": "Document", "resourceId": "agent", "tags": [{"key": "k", "value": "v"}]},
        None,
        package("agent"),
    ),
    (
        "RemoveTagsFromResource",
        {"resourceType": "Document", "resourceId": "agent", "tagKeys": ["ssm-gitops:owner"]},
        None,
        package("agent"),
    ),
    (
        "RemoveTagsFromResource",
        {"resourceType": "Association", "resourceId": ASSOC_ID, "tagKeys": ["ssm-gitops:owner"]},
        None,
        NamedResource(Kind.ASSOCIATION, HERE, association_id=ASSOC_ID),
    ),
    (
        "CreateAssociation",
        {"name": "AWS-ConfigureAWSPackage", "associationName": "agent-prod"},
        {
            "associationDescription": {
                "associationId": ASSOC_ID,
                "associationName": "agent-prod",
                "name": "AWS-ConfigureAWSPackage",
            }
        },
        NamedResource(Kind.ASSOCIATION, HERE, name="agent-prod", association_id=ASSOC_ID),
    ),
    (
        "UpdateAssociation",
        {"associationId": ASSOC_ID, "maxErrors": "50%"},
        {
            "associationDescription": {
                "associationId": ASSOC_ID,
                "associationName": "agent-prod",
                "associationVersion": "3",
            }
        },
        NamedResource(Kind.ASSOCIATION, HERE, name="agent-prod", association_id=ASSOC_ID),
    ),
    (
        "UpdateAssociation",
        {"associationId": ASSOC_ID},
        None,
        NamedResource(Kind.ASSOCIATION, HERE, association_id=ASSOC_ID),
    ),
    (
        "DeleteAssociation",
        {"associationId": ASSOC_ID},
        None,
        NamedResource(Kind.ASSOCIATION, HERE, association_id=ASSOC_ID),
    ),
]


@pytest.mark.parametrize(("name", "request_parameters", "response", "expected"), NAMED)
def test_each_mutating_call_names_its_resource(
    name: str,
    request_parameters: dict[str, Any],
    response: dict[str, Any] | None,
    expected: NamedResource,
) -> None:
    found = read_event(event(name, request_parameters, response))
    assert isinstance(found, DriftEvent), found
    assert found.resource == expected
    assert found.event_name == name
    assert found.session == "alice@example.com"


FOREIGN = [
    ("AddTagsToResource", {"resourceType": "ManagedInstance", "resourceId": "mi-0123"}),
    ("PutParameter", {"name": "/x", "type": "String"}),
    ("SendCommand", {"documentName": "AWS-RunShellScript"}),
    ("StartAssociationsOnce", {"associationIds": [ASSOC_ID]}),
    ("DeleteAssociation", {"name": "AWS-ConfigureAWSPackage", "instanceId": "i-0123"}),
]


@pytest.mark.parametrize(("name", "request_parameters"), FOREIGN)
def test_calls_on_what_we_do_not_manage_are_foreign(
    name: str, request_parameters: dict[str, Any]
) -> None:
    found = read_event(event(name, request_parameters))
    assert isinstance(found, Ignored) and found.result is EventResult.FOREIGN, found


def test_a_failed_call_changed_nothing() -> None:
    body = event(
        "UpdateDocumentDefaultVersion",
        {"name": "agent", "documentVersion": "9"},
        errorCode="InvalidDocumentVersion",
    )
    found = read_event(body)
    assert isinstance(found, Ignored) and found.result is EventResult.FOREIGN


def test_another_source_or_detail_type_is_foreign() -> None:
    other = json.loads(event("CreateDocument", {"name": "agent"}))
    other["source"] = "aws.ec2"
    assert read_event(json.dumps(other)) == Ignored(
        EventResult.FOREIGN, "not an SSM API call recorded by CloudTrail"
    )


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("not json", "hello"),
    ("binary", b"\xff\xfe\x00\x01"),
    ("a list", "[1, 2]"),
    ("a string", '"aws.ssm"'),
    ("deep nesting", _nested(100_000)),
    (
        "deep nesting in detail",
        '{"source":"aws.ssm","detail-type":"AWS API Call via CloudTrail","detail":'
        + _nested(50_000)
        + "}",
    ),
    ("huge", '{"pad":"' + "x" * (MAX_BODY + 1) + '"}'),
    (
        "detail a string",
        json.dumps(
            {"source": "aws.ssm", "detail-type": "AWS API Call via CloudTrail", "detail": "x"}
        ),
    ),
    (
        "eventName a number",
        event("CreateDocument", {"name": "agent"}).replace(
            '"eventName": "CreateDocument"', '"eventName": 7'
        ),
    ),
    (
        "account wrong",
        event("CreateDocument", {"name": "agent"}).replace(
            '"recipientAccountId": "123456789012"', '"recipientAccountId": "../../x"'
        ),
    ),
    (
        "region wrong",
        event("CreateDocument", {"name": "agent"}).replace(
            '"awsRegion": "eu-west-1"', '"awsRegion": {"a": 1}'
        ),
    ),
    ("name a list", event("CreateDocument", {"name": ["agent"]})),
    ("name with a slash", event("CreateDocument", {"name": "../agent"})),
    ("request not an object", event("UpdateDocumentDefaultVersion", None)),
    ("association id not a uuid", event("UpdateAssociation", {"associationId": "x" * 5000})),
    ("tag without type", event("AddTagsToResource", {"resourceId": "agent"})),
]


@pytest.mark.parametrize(("label", "body"), HOSTILE, ids=[label for label, _ in HOSTILE])
def test_hostile_bodies_are_malformed_never_a_crash(label: str, body: str | bytes) -> None:
    """Issue 14: a malformed event is counted and dropped, never a crash."""
    found = read_event(body)
    assert isinstance(found, Ignored) and found.result is EventResult.MALFORMED, (label, found)


def test_own_changes_are_recognised_by_session_name_or_source_identity() -> None:
    """The controller's session name and SourceIdentity are ssm-gitops-<owner>
    (controller/aws/session.py); someone else's session is not ours."""
    ours = dict(ALICE, arn="arn:aws:sts::123456789012:assumed-role/ssm-gitops/ssm-gitops-team")
    found = read_event(
        event(
            "UpdateDocumentDefaultVersion", {"name": "agent", "documentVersion": "1"}, identity=ours
        )
    )
    assert isinstance(found, DriftEvent) and is_own(found, "ssm-gitops-team")
    assert not is_own(found, "ssm-gitops-other")
    chained = dict(
        ALICE, sessionContext={**ALICE["sessionContext"], "sourceIdentity": "ssm-gitops-team"}
    )
    found = read_event(
        event(
            "UpdateDocumentDefaultVersion",
            {"name": "agent", "documentVersion": "1"},
            identity=chained,
        )
    )
    assert isinstance(found, DriftEvent) and is_own(found, "ssm-gitops-team")
    found = read_event(
        event("UpdateDocumentDefaultVersion", {"name": "agent", "documentVersion": "1"})
    )
    assert isinstance(found, DriftEvent) and not is_own(found, "ssm-gitops-team")
