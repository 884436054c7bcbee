"""IAM policy documents of deploy/iam/ and how AWS API operations map to IAM actions.

Used by tests/deploy/test_iam.py, which records the operations a real `apply` makes against
the embedded local endpoint (`GET /_local/calls`) and compares them with the policies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

IAM = Path(__file__).resolve().parents[2] / "deploy" / "iam"

# Operations whose IAM action differs from `service:Operation` (Service Authorization
# Reference, "Actions defined by Amazon S3": HeadObject and HEAD requests are authorised as
# s3:GetObject, HeadBucket as s3:ListBucket; every part of a multipart upload as
# s3:PutObject; https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html,
# API_HeadBucket.html, mpuoverview.html#mpuAndPermissions).
_IAM_ACTION = {
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:AbortMultipartUpload": "s3:AbortMultipartUpload",
}
# "No permissions are required to perform this operation."
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)
_NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}


# Tagging a resource while creating it is also authorised as ssm:AddTagsToResource (the
# "dependent actions" of CreateDocument and CreateAssociation in the Service Authorization
# Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html);
# the controller always sends its owner tag with both (controller/aws/packages.py,
# controller/aws/associations.py).
_ALSO_NEEDS = {
    "ssm:CreateDocument": {"ssm:AddTagsToResource"},
    "ssm:CreateAssociation": {"ssm:AddTagsToResource"},
}


def iam_actions(operation: str) -> set[str]:
    """The IAM actions one recorded operation needs: `ssm:ListDocuments` ->
    {`ssm:ListDocuments`}; `s3:HeadObject` -> {`s3:GetObject`}; `sts:GetCallerIdentity` -> {}."""
    if operation in _NEEDS_NO_PERMISSION:
        return set()
    return {_IAM_ACTION.get(operation, operation)} | _ALSO_NEEDS.get(operation, set())


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((IAM / name).read_text())
    return document


def allowed_actions(policy: dict[str, Any]) -> set[str]:
    """Every action an identity policy allows (it must name them: no wildcards, no Deny)."""
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        named = statement["Action"]
        actions.update([named] if isinstance(named, str) else named)
    return actions


def resources_of(policy: dict[str, Any], action: str) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        named = statement["Action"]
        if action in ([named] if isinstance(named, str) else named):
            resource = statement["Resource"]
            found.update([resource] if isinstance(resource, str) else resource)
    return found


# -- placeholders ---------------------------------------------------------------------------
# ACCOUNT_ID is part of CONTROLLER_ACCOUNT_ID and MEMBER_ACCOUNT_ID: replace whole words only.
_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]*[A-Z]\b")


def fill(policy: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The policy with its placeholders (ACCOUNT_ID, OWNER_NAME, ...) replaced as
    docs/deploy.md tells; a placeholder without a value is left as it is."""

    def one(match: re.Match[str]) -> str:
        return values.get(match.group(0), match.group(0))

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(one, value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    filled: dict[str, Any] = walk(policy)
    return filled


def placeholders(policy: dict[str, Any]) -> set[str]:
    """Every placeholder a policy still holds (all-capital words such as OWNER_NAME)."""
    return set(_PLACEHOLDER.findall(json.dumps(policy))) - {"AWS"}
