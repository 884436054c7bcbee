"""Request validation from botocore's model, and AWS-shaped errors (never HTML)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from controller.local.ssm import service
from controller.local.ssm.errors import SsmError
from controller.local.ssm.validation import validate


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "CreateDocument",
            {"Name": "ok-name"},
            "1 validation error detected: Value null at 'content' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            "GetDocument",
            {"Name": "Doc", "DocumentVersion": "01"},
            "1 validation error detected: Value '01' at 'documentVersion' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)",
        ),
        (
            "ListDocuments",
            {"MaxResults": 51},
            "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: "
            "Member must have value less than or equal to 50",
        ),
        (
            "CreateDocument",
            {"Name": "ok-name", "Content": "{}", "DocumentType": "Spreadsheet"},
            "failed to satisfy constraint: Member must satisfy enum value set:",
        ),
        (
            "ModifyDocumentPermission",
            {"Name": "Doc", "PermissionType": "Share", "AccountIdsToAdd": ["12345"]},
            "Value '12345' at 'accountIdsToAdd.1.member' failed to satisfy constraint",
        ),
        (
            "CreateAssociation",
            {"Name": "AWS-RunShellScript", "Targets": [{"Key": "tag:a", "Values": ["b"]}] * 6},
            "Value '",
        ),
    ],
)
def test_validation_messages_have_the_aws_shape(operation: str, params: Any, message: str) -> None:
    with pytest.raises(SsmError) as raised:
        validate(operation, params)
    assert raised.value.code == "ValidationException"
    assert message in raised.value.message


def test_several_problems_are_counted() -> None:
    with pytest.raises(SsmError) as raised:
        validate("CreateDocument", {"Name": "x"})
    assert raised.value.message.startswith("2 validation errors detected: ")


def test_java_style_patterns_are_matched_whole() -> None:
    # DocumentARN's pattern has no anchors; AWS (Java String.matches) matches the whole value.
    with pytest.raises(SsmError):
        validate("DescribeDocument", {"Name": "good/name with space"})
    validate("DescribeDocument", {"Name": "arn:aws:ssm:us-east-1:123456789012:document/Tool"})


def test_validation_reaches_boto3_as_validation_exception(local_aws: LocalAWS) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        local_aws.client("ssm").describe_document(Name="Doc", DocumentVersion="$NEWEST")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unexpected_failure_is_an_aws_shaped_internal_error(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(context: Any, params: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setitem(service.HANDLERS, "ListDocuments", broken)
    request = urllib.request.Request(
        local_aws.endpoint_url + "/",
        data=b"{}",
        headers={"X-Amz-Target": "AmazonSSM.ListDocuments"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 500
    assert json.loads(raised.value.read())["__type"] == "InternalServerError"


def test_malformed_json_is_a_serialization_error(local_aws: LocalAWS) -> None:
    request = urllib.request.Request(
        local_aws.endpoint_url + "/",
        data=b"{not json",
        headers={"X-Amz-Target": "AmazonSSM.ListDocuments"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert json.loads(raised.value.read())["__type"] == "SerializationException"
