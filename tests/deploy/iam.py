"""IAM policy documents of deploy/iam/ and how AWS API operations map to IAM actions.

Used by tests/deploy/test_iam.py, which records the operations a real `apply` makes against
the embedded local endpoint (`GET /_local/calls`) and compares them with the policies.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deploy.policy_eval import Request, Resource, request_tag_context, tag_keys_context

IAM = Path(__file__).resolve().parents[2] / "deploy" / "iam"

# Operations whose IAM action differs from `service:Operation` (Service Authorization
# Reference, "Actions defined by Amazon S3": HeadObject and HEAD requests are authorised as
# s3:GetObject, HeadBucket as s3:ListBucket; every part of a multipart upload as
# s3:PutObject; https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html,
# API_HeadBucket.html, mpuoverview.html#mpuAndPermissions).
_IAM_ACTION = {
    # CloudWatch signs as "monitoring"; its IAM actions are "cloudwatch:..."
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
    "monitoring:DescribeAlarms": "cloudwatch:DescribeAlarms",
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:AbortMultipartUpload": "s3:AbortMultipartUpload",
    # DeleteMessageBatch is authorised as sqs:DeleteMessage ("Amazon SQS API permissions:
    # Actions and resource reference",
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html).
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
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
    # AssumeRole with SourceIdentity is also authorised as sts:SetSourceIdentity
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_monitor.html);
    # the controller always sets it (controller/aws/session.py).
    "sts:AssumeRole": {"sts:SetSourceIdentity"},
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


# -- what a recorded call asks IAM ----------------------------------------------------------

OWNER_TAG = "ssm-gitops:owner"


@dataclass(frozen=True)
class Call:
    """One request a real `apply` sent to the embedded endpoint, as tests/deploy/test_iam.py
    records it: who (account, region), what (`service:Operation`), its parameters (the SSM
    JSON body, the STS form), the tags each SSM resource it names had just BEFORE the call
    (ARN -> tags), the answer (the id of a new association), and for S3 the path."""

    account: str
    region: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    response: Mapping[str, Any] = field(default_factory=dict)
    method: str = ""
    path: str = ""
    query: str = ""


@dataclass(frozen=True)
class Needed:
    """One authorisation a call needs. `role`: "read", "create" (judged by the tags the
    request carries), "tag-on-create" (the tagging CreateDocument/CreateAssociation also
    need), "change" (judged by the tags the resource has), "assume" (STS), "artifact" (S3)."""

    request: Request
    role: str


def document_arn(name: str, region: str, account: str) -> str:
    """Amazon's documents (AWS-*) have no account in their ARN
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html#awssystemsmanager-resources-for-iam-policies)."""
    if name.startswith("arn:"):
        return name
    if name.startswith("AWS-"):
        return f"arn:aws:ssm:{region}::document/{name}"
    return f"arn:aws:ssm:{region}:{account}:document/{name}"


def association_arn(association_id: str, region: str, account: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:association/{association_id}"


def named_resources(call: Call) -> list[str]:
    """The ARNs of the SSM documents and associations a call names (before it runs)."""
    p, region, account = call.params, call.region, call.account
    arns = []
    if "Name" in p:
        arns.append(document_arn(str(p["Name"]), region, account))
    if "AssociationId" in p:
        arns.append(association_arn(str(p["AssociationId"]), region, account))
    for association_id in p.get("AssociationIds", []):
        arns.append(association_arn(str(association_id), region, account))
    if p.get("ResourceType") == "Document":
        arns.append(document_arn(str(p["ResourceId"]), region, account))
    if p.get("ResourceType") == "Association":
        arns.append(association_arn(str(p["ResourceId"]), region, account))
    return arns


def _instances(call: Call) -> list[str]:
    ids = [str(i) for i in call.params.get("InstanceIds", [])]
    if "InstanceId" in call.params:
        ids.append(str(call.params["InstanceId"]))
    for target in call.params.get("Targets", []):
        if target.get("Key") == "InstanceIds":
            ids.extend(str(i) for i in target.get("Values", []))
    return [
        f"arn:aws:ssm:{call.region}:{call.account}:managed-instance/{i}"
        if i.startswith("mi-")
        else f"arn:aws:ec2:{call.region}:{call.account}:instance/{i}"
        for i in ids
    ]


# The SSM operations a pass makes, and the resources each is authorised on (Service
# Authorization Reference for Systems Manager,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html:
# the "Resource types" column; CreateAssociation needs association* and document*, and every
# association action may also name the document and the instances).
# DescribeInstanceInformation (overlap detection) has no resource-level permissions either
# (Service Authorization Reference, "Actions defined by AWS Systems Manager").
_SSM_UNSCOPED = {"ListDocuments", "ListAssociations", "DescribeInstanceInformation"}
_SSM_READS = {
    "DescribeDocument",
    "DescribeDocumentPermission",
    "ListDocumentVersions",
    "GetDocument",
    "DescribeAssociation",
    "ListTagsForResource",
    # Rollout (issue: progressive rollout) reads executions of its rings' associations.
    "DescribeAssociationExecutions",
    "DescribeAssociationExecutionTargets",
}
_SSM_CHANGES = {
    "UpdateDocument",
    "UpdateDocumentDefaultVersion",
    "DeleteDocument",
    "ModifyDocumentPermission",
    "UpdateAssociation",
    "DeleteAssociation",
    "AddTagsToResource",
    "RemoveTagsFromResource",
    # Rollout starts each ring at once: on association*, aws:ResourceTag supported.
    "StartAssociationsOnce",
}
# Drift events (SQS receive/delete on the events queue) are not SSM calls: when they
# arrive, map them in `needed_for` below (as rollout alarms, CloudWatch DescribeAlarms,
# are); an unmapped call fails the IAM test with its name.


class UnmappedCall(Exception):
    """A recorded call `needed_for` does not know: say which resources it is authorised on."""


def needed_for(call: Call) -> list[Needed]:
    """The authorisations one recorded call needs, with the request context IAM would see."""
    service, operation = call.operation.split(":", 1)
    label = f"{call.operation} {call.account} {json.dumps(dict(call.params))[:160]}"
    if service == "ssm":
        return _ssm_needed(call, operation, label)
    if call.operation == "ec2:DescribeInstances":
        # No resource-level permissions: Resource "*" (Service Authorization Reference,
        # "Actions defined by Amazon EC2"); overlap detection reads instance tags.
        return [Needed(Request(call.operation, (Resource("*"),), label=label), "read")]
    if call.operation == "sts:GetCallerIdentity":
        return []  # needs no permission
    if call.operation == "sts:AssumeRole":
        role = Resource(str(call.params["RoleArn"]))
        context: dict[str, tuple[str, ...]] = {
            "sts:RoleSessionName": (str(call.params["RoleSessionName"]),)
        }
        if "SourceIdentity" in call.params:
            context["sts:SourceIdentity"] = (str(call.params["SourceIdentity"]),)
        needed = [Needed(Request("sts:AssumeRole", (role,), context, label=label), "assume")]
        if "SourceIdentity" in call.params:
            needed.append(
                Needed(Request("sts:SetSourceIdentity", (role,), context, label=label), "assume")
            )
        return needed
    if service == "organizations":
        # Organizations' List* actions take no resource type: "*" only (Service
        # Authorization Reference, AWS Organizations:
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html).
        return [Needed(Request(call.operation, (Resource("*"),), label=label), "read")]
    if service == "s3":
        parts = [p for p in urllib.parse.unquote(call.path).split("/") if p]
        arn = "arn:aws:s3:::" + "/".join(parts)
        return [
            Needed(Request(action, (Resource(arn),), label=label), "artifact")
            for action in iam_actions(call.operation)
        ]
    if service == "sqs":
        # The drift-events queue (`run --events-queue`): the queue named by its URL,
        # https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (the path is the same locally).
        account, name = urllib.parse.urlparse(str(call.params["QueueUrl"])).path.split("/")[1:3]
        queue = Resource(f"arn:aws:sqs:{call.region}:{account}:{name}")
        return [
            Needed(Request(action, (queue,), label=label), "events")
            for action in iam_actions(call.operation)
        ]
    if call.operation == "monitoring:DescribeAlarms":
        # A rollout's gate reads the alarms its package names, in the controller's own
        # account; the request (CBOR) is not decoded here: authorised on every alarm of the
        # account, as the policy allows (the alarms are the user's, not ours: no owner tag).
        alarms = Resource(f"arn:aws:cloudwatch:{call.region}:{call.account}:alarm:*")
        return [Needed(Request("cloudwatch:DescribeAlarms", (alarms,), label=label), "read")]
    raise UnmappedCall(f"{call.operation}: map it in tests/deploy/iam.py needed_for")


def _ssm_needed(call: Call, operation: str, label: str) -> list[Needed]:
    region, account, p = call.region, call.account, call.params

    def resource(arn: str) -> Resource:
        return Resource(arn, dict(call.tags.get(arn, {})))

    action = f"ssm:{operation}"
    if operation in _SSM_UNSCOPED:
        return [Needed(Request(action, (Resource("*"),), label=label), "read")]
    if operation == "CreateDocument":
        new = Resource(document_arn(str(p["Name"]), region, account))
        tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
        context = request_tag_context(tags) if tags else {}
        needed = [Needed(Request(action, (new,), context, label=label), "create")]
        if tags:
            tagging = Request("ssm:AddTagsToResource", (new,), context, label=label)
            needed.append(Needed(tagging, "tag-on-create"))
        return needed
    if operation == "CreateAssociation":
        created = call.response.get("AssociationDescription", {}).get("AssociationId", "(new)")
        new = Resource(association_arn(str(created), region, account))
        document = Resource(document_arn(str(p["Name"]), region, account))
        instances = tuple(Resource(arn) for arn in _instances(call))
        tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
        context = request_tag_context(tags) if tags else {}
        needed = [
            Needed(Request(action, (new, document, *instances), context, label=label), "create")
        ]
        if tags:
            tagging = Request("ssm:AddTagsToResource", (new,), context, label=label)
            needed.append(Needed(tagging, "tag-on-create"))
        return needed
    arns = named_resources(call)
    if operation in ("UpdateAssociation", "DeleteAssociation") and "_document" in p:
        # The association's document, read from the endpoint before the call (a
        # DeleteAssociation by id does not name it).
        arns.append(document_arn(str(p["_document"]), region, account))
    resources = tuple(resource(arn) for arn in dict.fromkeys(arns)) + tuple(
        Resource(arn) for arn in _instances(call)
    )
    if not resources:
        raise UnmappedCall(f"{action}: names no resource the IAM test knows")
    context = {}
    if operation == "AddTagsToResource":
        context = request_tag_context({t["Key"]: t["Value"] for t in p["Tags"]})
    if operation == "RemoveTagsFromResource":
        context = tag_keys_context(p["TagKeys"])
    if operation in _SSM_READS:
        return [Needed(Request(action, resources, context, label=label), "read")]
    if operation in _SSM_CHANGES:
        return [Needed(Request(action, resources, context, label=label), "change")]
    raise UnmappedCall(f"{action}: map it in tests/deploy/iam.py (_SSM_READS or _SSM_CHANGES)")
