"""The drift-events consumer (issue 14) with a stand-in queue and controller: batching,
coalescing, own changes, delete-after-handling, an unreachable queue."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping

import pytest
from prometheus_client import CollectorRegistry

from controller.aws.errors import ServerError
from controller.aws.queue import Message
from controller.model.kinds import Kind
from controller.model.state import Location
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.result import ActionRecord, ActionResult
from controller.runtime.events import EventQueue, OwnChanges

HERE = Location("123456789012", "us-east-1")
ALICE = "arn:aws:sts::123456789012:assumed-role/Admin/alice"
CONTROLLER = "arn:aws:sts::123456789012:assumed-role/controller/botocore-session-2"


def body(
    name: str,
    request: dict[str, object],
    arn: str = ALICE,
    account: str = "123456789012",
) -> str:
    return json.dumps(
        {
            "source": "aws.ssm",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {
                "eventSource": "ssm.amazonaws.com",
                "eventName": name,
                "awsRegion": "us-east-1",
                "recipientAccountId": account,
                "requestParameters": request,
                "userIdentity": {"type": "AssumedRole", "arn": arn},
            },
        }
    )


class FakeQueue:
    def __init__(self, bodies: list[str] | None = None) -> None:
        self.bodies = list(bodies or [])
        self.deleted: list[str] = []
        self.receives = 0
        self.delete_calls = 0
        self.fail: Exception | None = None
        self._n = 0

    def add(self, text: str) -> None:
        self.bodies.append(text)

    def receive(self, wait_seconds: int) -> list[Message]:
        self.receives += 1
        if self.fail is not None:
            raise self.fail
        taken, self.bodies = self.bodies[:10], self.bodies[10:]
        found = []
        for text in taken:
            self._n += 1
            found.append(Message(f"m{self._n}", f"r{self._n}", text))
        return found

    def identity(self) -> str:
        return "arn:aws:sts::123456789012:assumed-role/controller/botocore-session-1"

    def delete(self, messages: list[Message]) -> int:
        self.delete_calls += (len(messages) + 9) // 10
        self.deleted += [m.message_id for m in messages]
        return 0


class FakeController:
    def __init__(self, result: EventResult | None = EventResult.HEALED) -> None:
        self.result = result
        self.heals: list[list[NamedResource]] = []
        self.running = False

    def heal(
        self, resources: Collection[NamedResource], on_action: Callable[[ActionRecord], None]
    ) -> Mapping[NamedResource, EventResult | None] | None:
        self.heals.append(list(resources))
        return dict.fromkeys(resources, self.result)

    def association_name(self, location: Location, association_id: str) -> str:
        return "agent-prod" if association_id == "8dfe3659-4309-493a-8755-0123456789ab" else ""

    def pass_running(self) -> bool:
        return self.running


def consumer(
    queue: FakeQueue, controller: FakeController, own: OwnChanges | None = None
) -> tuple[EventQueue, CollectorRegistry]:
    registry = CollectorRegistry()
    return (
        EventQueue(
            queue,
            controller,
            session_name="ssm-gitops-test",
            registry=registry,
            own=own or OwnChanges(),
            wait_seconds=0,
        ),
        registry,
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    assert found is not None, name
    return found


def test_a_burst_is_coalesced_into_one_heal_per_resource() -> None:
    """Issue 14: a flood of events for a few resources costs one heal, not one per event."""
    queue = FakeQueue(
        [
            body("UpdateDocumentDefaultVersion", {"name": f"pkg-{i % 3}", "documentVersion": "1"})
            for i in range(3000)
        ]
    )
    controller = FakeController()
    events, registry = consumer(queue, controller)
    rounds = 0
    while queue.bodies:
        report = events.run_once()
        assert report is not None
        rounds += 1
    assert rounds == 6  # 3000 / MAX_BATCH (500)
    assert len(controller.heals) == 6 and all(len(h) == 3 for h in controller.heals)
    assert queue.receives == 300 + 0 and queue.delete_calls == 300
    assert len(queue.deleted) == 3000
    assert value(registry, "ssm_gitops_drift_events_total", result="healed") == 3000


def test_malformed_and_foreign_are_counted_and_deleted_never_a_crash() -> None:
    queue = FakeQueue(
        ["not json", "[" * 100_000, body("PutParameter", {"name": "/x"}), "x" * 300_000]
    )
    controller = FakeController()
    events, registry = consumer(queue, controller)
    events.run_once()
    assert controller.heals == []
    assert len(queue.deleted) == 4
    assert value(registry, "ssm_gitops_drift_events_total", result="malformed") == 3
    assert value(registry, "ssm_gitops_drift_events_total", result="foreign") == 1


def test_a_failed_heal_leaves_the_message_for_redelivery() -> None:
    """Messages are deleted only after they were handled: a heal that failed keeps it."""
    queue = FakeQueue(
        [body("UpdateDocumentDefaultVersion", {"name": "agent", "documentVersion": "1"})]
    )
    events, registry = consumer(queue, FakeController(result=None))
    report = events.run_once()
    assert report is not None and report.kept == 1
    assert queue.deleted == []
    assert value(registry, "ssm_gitops_drift_events_total", result="healed") == 0


def test_own_changes_cause_no_heal() -> None:
    """By session name, and by the record of what the controller just changed (its home
    account credentials have no session name of ours)."""
    clock = [1000.0]
    own = OwnChanges(clock=lambda: clock[0])
    own.record(
        ActionRecord(
            "package", "set_default", "agent", "123456789012", "us-east-1", ActionResult.SUCCESS
        )
    )
    own.record(
        ActionRecord(
            "association", "delete", "agent-prod", "123456789012", "us-east-1", ActionResult.SUCCESS
        )
    )
    queue = FakeQueue(
        [
            body(  # a role the controller assumes in another account: its session name
                "UpdateDocumentDefaultVersion",
                {"name": "other", "documentVersion": "1"},
                arn="arn:aws:sts::111122223333:assumed-role/r/ssm-gitops-test",
                account="111122223333",
            ),
            body(
                "UpdateDocumentDefaultVersion",
                {"name": "agent", "documentVersion": "1"},
                arn=CONTROLLER,
            ),
            body(
                "DeleteAssociation",
                {"associationId": "8dfe3659-4309-493a-8755-0123456789ab"},
                arn=CONTROLLER,
            ),
            # Someone else changing the same resource at the same time is drift.
            body("UpdateDocumentDefaultVersion", {"name": "agent", "documentVersion": "1"}),
        ]
    )
    controller = FakeController()
    events, registry = consumer(queue, controller, own)
    events.run_once()
    assert controller.heals == [[NamedResource(Kind.PACKAGE, HERE, name="agent")]]
    assert value(registry, "ssm_gitops_drift_events_total", result="own") == 3
    # Later, the same resource changed with the controller's credentials is drift again.
    clock[0] += 1000
    queue.add(
        body(
            "UpdateDocumentDefaultVersion",
            {"name": "agent", "documentVersion": "1"},
            arn=CONTROLLER,
        )
    )
    events.run_once()
    assert len(controller.heals) == 2


def test_own_changes_whose_event_never_came_are_counted() -> None:
    clock = [1000.0]
    own = OwnChanges(clock=lambda: clock[0])
    own.record(
        ActionRecord("package", "share", "agent", "123456789012", "us-east-1", ActionResult.SUCCESS)
    )
    events, registry = consumer(FakeQueue(), FakeController(), own)
    events.run_once()
    assert value(registry, "ssm_gitops_drift_events_unconfirmed_changes") == 0
    clock[0] += 301
    events.run_once()
    assert value(registry, "ssm_gitops_drift_events_unconfirmed_changes") == 1


def test_an_unreachable_queue_is_one_log_line_and_a_metric_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 14: the queue being unreachable degrades to the resync with one log line (not
    one per poll) and drift_events_queue_up 0; it recovers when the queue is back."""
    queue = FakeQueue()
    queue.fail = ServerError("ReceiveMessage", "EndpointConnectionError", "could not connect")
    events, registry = consumer(queue, FakeController())
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            assert events.run_once() is None
        assert value(registry, "ssm_gitops_drift_events_queue_up") == 0
        queue.fail = None
        assert events.run_once() is not None
    lines = [r.getMessage() for r in caplog.records if "events-queue" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "cannot be read" in lines[0] and "reachable again" in lines[1]
    assert value(registry, "ssm_gitops_drift_events_queue_up") == 1


def test_a_flood_of_giant_bodies_is_handled_in_bounded_batches() -> None:
    """Hostile bodies: 1 MiB messages (SQS's maximum) are batched by bytes, not only by
    count, and each is malformed (over EventBridge's 256 KB)."""
    queue = FakeQueue(["x" * (1024 * 1024)] * 60)
    controller = FakeController()
    events, registry = consumer(queue, controller)
    report = events.run_once()
    assert report is not None and report.messages <= 20
    while queue.bodies:
        events.run_once()
    assert value(registry, "ssm_gitops_drift_events_total", result="malformed") == 60
    assert controller.heals == []


def test_our_session_name_from_someone_else_in_our_own_account_is_drift() -> None:
    """Bug: an event was the controller's own when its session name was `ssm-gitops-<owner>`,
    whoever made it; anyone allowed to assume a role in the controller's account can name a
    session so (AssumeRole RoleSessionName): their hand change was never healed by its event,
    only at the next resync. In the controller's own account the principal must match."""
    forged = body(
        "UpdateDocumentDefaultVersion",
        {"name": "agent", "documentVersion": "1"},
        arn="arn:aws:sts::123456789012:assumed-role/Admin/ssm-gitops-test",
    )
    controller = FakeController()
    events, registry = consumer(FakeQueue([forged]), controller)
    events.run_once()
    assert controller.heals == [[NamedResource(Kind.PACKAGE, HERE, name="agent")]]
    assert value(registry, "ssm_gitops_drift_events_total", result="own") == 0
