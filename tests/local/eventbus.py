"""The drift-events wiring of deploy/events/, made with boto3 on an endpoint: a queue fed by
an EventBridge rule (source aws.ssm, detail-type AWS API Call via CloudTrail)."""

from __future__ import annotations

import json
from typing import Any

PATTERN = {
    "source": ["aws.ssm"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["ssm.amazonaws.com"]},
}


def wire_queue(sqs: Any, events: Any, name: str = "drift") -> str:
    """A queue fed by a rule on the default bus, as deploy/events/ makes it; its URL."""
    url = str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule=f"{name}-rule", Targets=[{"Id": "queue", "Arn": arn}])
    return url


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every event waiting on the queue (received and deleted)."""
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
