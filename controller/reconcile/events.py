"""Drift events: one CloudTrail event (an SQS message body) -> the one resource it names.

Where it sits: between the queue and the heal. `runtime.events` long-polls the queue
(`run --events-queue`) and hands each message body to `read_event`; the resources that come
out are coalesced and healed by `reconcile.heal` (re-observed, planned with the normal plan,
only their actions applied). Pure: no AWS, no clock, no I/O; every input is hostile until
checked (a queue policy mistake can let anyone send anything).

EventBridge delivers SSM's CloudTrail-recorded calls with source `aws.ssm` and detail-type
`AWS API Call via CloudTrail`; `detail` is the CloudTrail record: `eventName`,
`requestParameters` / `responseElements` (member names with a lower-case first letter),
`userIdentity`, `awsRegion`, `recipientAccountId`, and `errorCode` when the call failed
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from controller.model.kinds import Kind
from controller.model.state import Location

SOURCE = "aws.ssm"
DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENT_SOURCE = "ssm.amazonaws.com"
# An EventBridge event is at most 256 KB
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html): a longer
# body is not an event EventBridge delivered.
MAX_BODY = 256 * 1024

# The calls that change a document (Distributor package) named by requestParameters.name
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateDocumentDefaultVersion.html
# and the other operations' Request Parameters).
DOCUMENT_CALLS = frozenset(
    {
        "CreateDocument",
        "UpdateDocument",
        "UpdateDocumentDefaultVersion",
        "UpdateDocumentMetadata",
        "DeleteDocument",
        "ModifyDocumentPermission",
    }
)
ASSOCIATION_CALLS = frozenset({"CreateAssociation", "UpdateAssociation", "DeleteAssociation"})
TAG_CALLS = frozenset({"AddTagsToResource", "RemoveTagsFromResource"})
# The event names deploy/events/ asks EventBridge for.
WATCHED_CALLS = DOCUMENT_CALLS | ASSOCIATION_CALLS | TAG_CALLS

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# Document names: [a-zA-Z0-9_\-.]{3,128}; a shared document may be named by its ARN
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentIdentifier.html).
_DOCUMENT = re.compile(
    r"^(?:arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:document/)?([a-zA-Z0-9_.-]{3,128})$"
)
# AssociationId: a UUID (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationDescription.html).
_ASSOCIATION_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_ASSOCIATION_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,128}$")


class EventResult(StrEnum):
    """`drift_events_total{result}`: what became of one event."""

    HEALED = "healed"  # it named a resource of ours that had drifted: healed
    IN_SYNC = "in_sync"  # it named a resource of ours that matched git already
    OWN = "own"  # the controller's own change: no pass
    FOREIGN = "foreign"  # not a resource of ours, or nothing changed (a failed call)
    MALFORMED = "malformed"  # not a CloudTrail event of SSM that we can read


@dataclass(frozen=True)
class NamedResource:
    """The one resource an event names. A package by its document name; an association by
    its id, and its name when the event carries it (DeleteAssociation does not)."""

    kind: Kind
    location: Location
    name: str = ""
    association_id: str = ""


@dataclass(frozen=True)
class DriftEvent:
    """A readable SSM change event: what it names, and who made the call."""

    resource: NamedResource
    event_name: str
    actor_arn: str  # userIdentity.arn
    session: str  # the assumed role's session name or the SourceIdentity ("" if neither)
    source_identity: str
    event_id: str


@dataclass(frozen=True)
class Ignored:
    """An event that names nothing to heal, and why (`result` is foreign or malformed)."""

    result: EventResult
    why: str


def read_event(body: str | bytes) -> DriftEvent | Ignored:
    """One SQS message body -> the resource its event names, or why it names none."""
    if len(body) > MAX_BODY:
        return _malformed(f"the body is {len(body)} bytes, more than an EventBridge event")
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return _malformed("the body is not JSON")
    if not isinstance(event, dict):
        return _malformed("the body is not a JSON object")
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        return Ignored(EventResult.FOREIGN, "not an SSM API call recorded by CloudTrail")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return _malformed("detail is not an object")
    name = detail.get("eventName")
    if not isinstance(name, str) or detail.get("eventSource") != EVENT_SOURCE:
        return _malformed("detail has no SSM eventName")
    account, region = detail.get("recipientAccountId"), detail.get("awsRegion")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        return _malformed("recipientAccountId is not an account id")
    if not isinstance(region, str) or not _REGION.match(region):
        return _malformed("awsRegion is not a region")
    if detail.get("errorCode"):
        # CloudTrail records failed calls too; a failed call changed nothing.
        return Ignored(EventResult.FOREIGN, f"{name} failed: nothing changed")
    location = Location(account, region)
    found = _resource(
        name, location, _object(detail, "requestParameters"), _object(detail, "responseElements")
    )
    if isinstance(found, Ignored):
        return found
    identity = _object(detail, "userIdentity")
    arn = identity.get("arn")
    arn_text = arn if isinstance(arn, str) else ""
    context = _object(identity, "sessionContext")
    source_identity = context.get("sourceIdentity")
    source_text = source_identity if isinstance(source_identity, str) else ""
    event_id = detail.get("eventID")
    return DriftEvent(
        found,
        name,
        arn_text,
        _session_of(identity, arn_text),
        source_text,
        event_id if isinstance(event_id, str) else "",
    )


def _resource(
    name: str, location: Location, request: dict[str, object], response: dict[str, object]
) -> NamedResource | Ignored:
    if name in DOCUMENT_CALLS:
        document = _document(request.get("name"))
        if document is None:
            return _malformed(f"{name} names no document")
        return NamedResource(Kind.PACKAGE, location, name=document)
    if name in TAG_CALLS:
        # ResourceType: Document | ManagedInstance | MaintenanceWindow | Parameter | ...
        # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html).
        kind, resource_id = request.get("resourceType"), request.get("resourceId")
        if kind == "Document":
            document = _document(resource_id)
            if document is None:
                return _malformed(f"{name} names no document")
            return NamedResource(Kind.PACKAGE, location, name=document)
        if kind == "Association":
            if not isinstance(resource_id, str) or not _ASSOCIATION_ID.match(resource_id):
                return _malformed(f"{name} names no association id")
            return NamedResource(Kind.ASSOCIATION, location, association_id=resource_id)
        if isinstance(kind, str):
            return Ignored(EventResult.FOREIGN, f"{name} on a {kind}, not a package or association")
        return _malformed(f"{name} has no resourceType")
    if name in ASSOCIATION_CALLS:
        description = _object(response, "associationDescription")
        association_id = request.get("associationId") or description.get("associationId")
        association_name = request.get("associationName") or description.get("associationName")
        if not isinstance(association_id, str) or not _ASSOCIATION_ID.match(association_id):
            if name == "DeleteAssociation" and "instanceId" in request:
                # The legacy form (Name + InstanceId) deletes an instance association, never
                # one of ours: ours target by tag or id list, with an AssociationName.
                return Ignored(EventResult.FOREIGN, "DeleteAssociation of an instance association")
            return _malformed(f"{name} names no association id")
        if not isinstance(association_name, str) or not _ASSOCIATION_NAME.match(association_name):
            association_name = ""
        return NamedResource(
            Kind.ASSOCIATION, location, name=association_name, association_id=association_id
        )
    return Ignored(EventResult.FOREIGN, f"{name} changes nothing ssm-gitops manages")


def _document(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _DOCUMENT.match(value)
    return match.group(1) if match else None


def _session_of(identity: dict[str, object], arn: str) -> str:
    """An assumed role's session name: the last part of `arn:aws:sts::ACCOUNT:assumed-role/
    ROLE/SESSION` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns)."""
    if identity.get("type") != "AssumedRole" or ":assumed-role/" not in arn:
        return ""
    return arn.rsplit("/", 1)[-1]


def _object(parent: dict[str, object], key: str) -> dict[str, object]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _malformed(why: str) -> Ignored:
    return Ignored(EventResult.MALFORMED, why)


def is_own(event: DriftEvent, session_name: str) -> bool:
    """Made by a controller of this owner name: its session name / SourceIdentity is
    `ssm-gitops-<owner>` (controller/aws/session.py `session_name`)."""
    return session_name in (event.session, event.source_identity)
