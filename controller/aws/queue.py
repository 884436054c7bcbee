"""The drift-events queue (SQS): long-poll receive and batch delete, through `api.request`.

Stage: the AWS edge of the event path (`run --events-queue`, runtime/events.py). The queue is
read with the controller's own credentials in the queue's region (from its URL); the IAM
policy allows exactly sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on
that queue (deploy/iam/controller-policy.json).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError

from controller.aws.api import CallCounter, request
from controller.aws.session import AwsClients, AwsConfigError

# ReceiveMessage: MaxNumberOfMessages 1..10, WaitTimeSeconds 0..20 (a long poll);
# DeleteMessageBatch: at most 10 entries
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html,
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html).
MAX_MESSAGES = 10
MAX_WAIT_SECONDS = 20
MAX_DELETE_BATCH = 10

# https://sqs.<region>.amazonaws.com/<account>/<name> (and .amazonaws.com.cn), or the legacy
# https://<region>.queue.amazonaws.com/... (https://docs.aws.amazon.com/general/latest/gr/sqs-service.html).
_REGION_IN_URL = re.compile(r"^https://(?:sqs\.([a-z0-9-]+)\.|([a-z0-9-]+)\.queue\.)amazonaws\.com")


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str


def queue_region(url: str, default: str) -> str:
    """The region a queue URL names; `default` for URLs without one (a local endpoint)."""
    match = _REGION_IN_URL.match(url)
    if match is None:
        return default
    return match.group(1) or match.group(2)


def queue_clients(url: str, counter: CallCounter) -> AwsClients:
    """Clients with the controller's own credentials, in the queue's region."""
    try:
        session = boto3.Session()
    except BotoCoreError as error:
        raise AwsConfigError(f"AWS configuration: {error} (check AWS_PROFILE)") from error
    region = queue_region(url, session.region_name or "us-east-1")
    return AwsClients("", region, session, counter)


def receive(clients: AwsClients, url: str, *, wait_seconds: int) -> list[Message]:
    """Up to 10 messages; waits up to `wait_seconds` (a long poll) when the queue is empty."""
    response = request(
        clients,
        "sqs",
        "ReceiveMessage",
        QueueUrl=url,
        MaxNumberOfMessages=MAX_MESSAGES,
        WaitTimeSeconds=min(max(wait_seconds, 0), MAX_WAIT_SECONDS),
    )
    found = []
    for message in response.get("Messages", []):
        found.append(
            Message(
                str(message.get("MessageId", "")),
                str(message.get("ReceiptHandle", "")),
                str(message.get("Body", "")),
            )
        )
    return found


def delete(clients: AwsClients, url: str, messages: list[Message]) -> int:
    """Delete handled messages, 10 a call; how many could not be deleted (they come back
    after their visibility timeout and are handled again: handling is idempotent)."""
    failed = 0
    for start in range(0, len(messages), MAX_DELETE_BATCH):
        chunk = messages[start : start + MAX_DELETE_BATCH]
        response = request(
            clients,
            "sqs",
            "DeleteMessageBatch",
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message.receipt_handle}
                for index, message in enumerate(chunk)
            ],
        )
        failed += len(response.get("Failed", []))
    return failed


def caller_arn(clients: AwsClients) -> str:
    """The ARN the controller's own calls carry in CloudTrail's userIdentity (STS
    GetCallerIdentity, https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)."""
    return str(request(clients, "sts", "GetCallerIdentity").get("Arn", ""))
