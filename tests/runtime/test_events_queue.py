"""The drift-events consumer against a real SQS (the embedded endpoint): a wrong URL, an
endpoint that is down, and redelivery of what was not handled (issue 14)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.aws.api import CallCounter
from controller.local import LocalAWS
from controller.model.state import Location
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.result import ActionRecord
from controller.runtime.events import EventQueue, OwnChanges, SqsQueue
from tests.local.eventbus import wire_queue
from tests.local.helpers import command_content


class Controller:
    def __init__(self, result: EventResult | None) -> None:
        self.result = result
        self.heals: list[list[NamedResource]] = []

    def heal(
        self, resources: Collection[NamedResource], on_action: Callable[[ActionRecord], None]
    ) -> Mapping[NamedResource, EventResult | None] | None:
        self.heals.append(list(resources))
        return dict.fromkeys(resources, self.result)

    def association_name(self, location: Location, association_id: str) -> str:
        return ""

    def pass_running(self) -> bool:
        return False


def consumer(url: str, controller: Controller) -> tuple[EventQueue, CollectorRegistry]:
    registry = CollectorRegistry()
    events = EventQueue(
        SqsQueue(url, CallCounter()),
        controller,
        session_name="ssm-gitops-test",
        registry=registry,
        own=OwnChanges(),
        wait_seconds=1,
    )
    return events, registry


def test_a_message_not_healed_comes_back_and_a_restart_loses_none(aws_env: LocalAWS) -> None:
    """Messages are deleted only after handling: a failed heal (or a crash) leaves it on the
    queue, and the next consumer (after a restart) gets it after the visibility timeout."""
    sqs = aws_env.client("sqs")
    url = wire_queue(sqs, aws_env.client("events"))
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    aws_env.client("ssm").create_document(
        Name="agent", Content=command_content("x"), DocumentType="Command"
    )
    failing, _ = consumer(url, Controller(result=None))
    report = failing.run_once()
    assert report is not None and report.kept == 1
    time.sleep(1.5)  # the visibility timeout
    restarted, registry = consumer(url, Controller(result=EventResult.HEALED))
    report = restarted.run_once()
    assert report is not None and report.results == {EventResult.HEALED: 1}
    assert registry.get_sample_value("ssm_gitops_drift_events_total", {"result": "healed"}) == 1
    time.sleep(1.5)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


@pytest.mark.parametrize("where", ["wrong queue", "endpoint down"])
def test_an_unreachable_queue_degrades_and_recovers(
    aws_env: LocalAWS, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    sqs = aws_env.client("sqs")
    url = f"{aws_env.endpoint_url}/123456789012/not-yet"
    if where == "endpoint down":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    events, registry = consumer(url, Controller(result=EventResult.HEALED))
    with caplog.at_level(logging.INFO):
        assert events.run_once() is None
        assert events.run_once() is None
        assert registry.get_sample_value("ssm_gitops_drift_events_queue_up") == 0
        if where == "endpoint down":
            # The endpoint is back (the clients are made from the environment).
            monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.endpoint_url)
            events.queue = SqsQueue(url, CallCounter())
        sqs.create_queue(QueueName="not-yet")
        assert events.run_once() is not None
    assert registry.get_sample_value("ssm_gitops_drift_events_queue_up") == 1
    lines = [r.getMessage() for r in caplog.records if "--events-queue" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "cannot be read" in lines[0] and "\n" not in lines[0]
    assert "reachable again" in lines[1]


def test_the_flag_and_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.cli import build_parser
    from controller.errors import UserError
    from controller.runtime.commands import options_from

    def parse(*argv: str) -> Any:
        return build_parser().parse_args(["run", "--repo", "/srv/repo", *argv])

    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/ssm-gitops-drift-events"
    assert options_from(parse("--events-queue", url)).events_queue == url
    assert options_from(parse()).events_queue is None
    with pytest.raises(UserError, match="--events-queue drift: not a queue URL"):
        options_from(parse("--events-queue", "drift"))
    monkeypatch.setenv("SSM_GITOPS_EVENTS_QUEUE", url)
    assert options_from(parse()).events_queue == url


def test_the_queue_region_comes_from_its_url() -> None:
    from controller.aws.queue import queue_region

    assert queue_region("https://sqs.eu-west-1.amazonaws.com/1/q", "us-east-1") == "eu-west-1"
    assert queue_region("https://eu-west-2.queue.amazonaws.com/1/q", "us-east-1") == "eu-west-2"
    assert queue_region("http://127.0.0.1:4566/1/q", "us-east-1") == "us-east-1"
