"""CloudTrail-shaped events for the local SSM's mutating calls, put on moto's EventBridge.

Where it sits: the WSGI router (controller/local/server.py) calls `emit_ssm_call` after our
SSM answered a mutating call with 200. The event goes to moto's default event bus of the
caller's account and region; moto matches the bus's rules and delivers to their SQS targets,
so `run --events-queue` runs its whole path on one laptop (docs/drift-events.md).

The shape follows what EventBridge delivers for CloudTrail-recorded API calls: source
`aws.ssm`, detail-type `AWS API Call via CloudTrail`, and a CloudTrail record as `detail`
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
CloudTrail writes request and response members with a lower-case first letter
(`requestParameters.name`, `responseElements.associationDescription.associationId`).
Reads (Describe*, Get*, List*) emit nothing: the rule of deploy/events/ does not ask for them,
and CloudTrail marks them `readOnly`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

SOURCE = "aws.ssm"
DETAIL_TYPE = "AWS API Call via CloudTrail"
_READ_PREFIXES = ("Describe", "Get", "List")
# Document content can be 64 KB and more; an EventBridge event is at most 256 KB
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html).
_DROPPED = frozenset({"content", "attachments"})


def is_mutating(operation: str) -> bool:
    """A call CloudTrail records as a write (`readOnly: false`)."""
    return not operation.startswith(_READ_PREFIXES)


def _camel(value: Any) -> Any:
    """AWS's member names as CloudTrail writes them: `DocumentVersion` -> `documentVersion`."""
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: _camel(item)
            for key, item in value.items()
            if key[:1].lower() + key[1:] not in _DROPPED
        }
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if isinstance(value, float) and value > 1e9:  # our answers carry times as epoch seconds
        return datetime.fromtimestamp(value, UTC).strftime("%b %d, %Y %I:%M:%S %p")
    return value


def user_identity(access_key: str, account: str, region: str) -> dict[str, Any]:
    """CloudTrail's `userIdentity` for the caller's key, as moto's STS knows it: an assumed
    role (its ARN ends in the session name), an IAM user, or moto's default user."""
    from moto.sts.models import sts_backends

    for account_id in list(sts_backends.keys()):
        for backend in list(sts_backends[account_id].values()):
            role = backend.get_assumed_role_from_access_key(access_key)
            if role is None:
                continue
            role_name = role.role_arn.split("/")[-1]
            return {
                "type": "AssumedRole",
                "principalId": f"AROA{role_name.upper()[:16]}:{role.session_name}",
                "arn": role.arn,
                "accountId": role.account_id,
                "accessKeyId": access_key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": role.role_arn,
                        "accountId": role.account_id,
                        "userName": role_name,
                    },
                    "attributes": {"mfaAuthenticated": "false"},
                },
            }
    _user_id, arn, account_id = sts_backends[account]["aws"].get_caller_identity(access_key, region)
    return {
        "type": "IAMUser",
        "arn": arn,
        "accountId": account_id,
        "accessKeyId": access_key,
        "userName": arn.rsplit("/", 1)[-1],
    }


def cloudtrail_detail(
    operation: str,
    request: dict[str, Any],
    response: dict[str, Any],
    *,
    account: str,
    region: str,
    identity: dict[str, Any],
) -> dict[str, Any]:
    """The CloudTrail record of one successful SSM call (the event's `detail`)."""
    return {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ssm.amazonaws.com",
        "eventName": operation,
        "awsRegion": region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "ssm-gitops-local",
        "requestParameters": _camel(request) or None,
        "responseElements": _camel(response) or None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def emit_ssm_call(
    operation: str,
    request_body: bytes,
    response_body: bytes,
    *,
    account: str,
    region: str,
    access_key: str,
) -> None:
    """Put the event of one successful mutating SSM call on the default bus of the caller's
    account and region. Never fails the call it describes: a problem is logged."""
    if not is_mutating(operation):
        return
    try:
        from moto.events.models import events_backends

        request = json.loads(request_body or b"{}")
        response = json.loads(response_body or b"{}")
        detail = cloudtrail_detail(
            operation,
            request if isinstance(request, dict) else {},
            response if isinstance(response, dict) else {},
            account=account,
            region=region,
            identity=user_identity(access_key, account, region),
        )
        events_backends[account][region].put_events(
            [{"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}]
        )
    except Exception:  # noqa: BLE001 - an event lost is drift found at the next resync
        log.exception("local endpoint: could not emit the event of %s", operation)


def speed_up_sqs() -> None:
    """moto's SQS re-reads every queue attribute (a scan of every message) for each message
    it returns, so a receive from a queue of n messages costs O(n) per message: 3,000
    events took seconds per ReceiveMessage. Read the retention period directly instead;
    the answer is the same (moto 5.2.5 `SQSBackend.is_message_valid_based_on_retention_period`)."""
    from moto.sqs.models import SQSBackend

    def retained(backend: Any, queue_name: str, message: Any) -> bool:
        queue = backend.get_queue(queue_name)
        period = float(queue.message_retention_period)
        return bool(period + float(message.sent_timestamp) / 1000 > time.time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period", retained)  # noqa: B010


@dataclass(frozen=True)
class DriftQueue:
    """The drift-events wiring `ssm-gitops demo` makes on the local endpoint, and the keys
    of a person ("you") whose changes the controller must see as drift, not as its own."""

    url: str
    access_key: str
    secret_key: str


def create_drift_queue(aws: Any, event_names: Iterable[str]) -> DriftQueue:
    """What deploy/events/drift-events.yaml makes (the queue, the rule on the default bus
    for SSM's mutating CloudTrail calls), plus an IAM user `you` with an access key."""
    sqs, events, iam = aws.client("sqs"), aws.client("events"), aws.client("iam")
    name = "ssm-gitops-drift-events"
    url = str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"eventSource": ["ssm.amazonaws.com"], "eventName": sorted(event_names)},
    }
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    iam.create_user(UserName="you")
    key = iam.create_access_key(UserName="you")["AccessKey"]
    return DriftQueue(url, str(key["AccessKeyId"]), str(key["SecretAccessKey"]))
