"""The one request path (controller.aws.api): calls by API name with their count, one pager
that follows NextToken, and the non-idempotent create that looks before every retry."""

from __future__ import annotations

import json

import pytest

from controller.aws import api
from controller.aws.api import create_once, items, pages, request
from controller.aws.errors import Denied, ServerError, Throttled
from controller.aws.session import AwsClients, Sessions


def _command_documents(clients: AwsClients, count: int) -> None:
    content = json.dumps(
        {
            "schemaVersion": "2.2",
            "mainSteps": [
                {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo"]}}
            ],
        }
    )
    for i in range(count):
        request(
            clients,
            "ssm",
            "CreateDocument",
            Name=f"doc-{i}",
            DocumentType="Command",
            Content=content,
        )


def test_the_pager_follows_next_token_one_call_per_page(
    sessions: Sessions, clients: AwsClients
) -> None:
    _command_documents(clients, 3)
    sessions.counter.take()
    filters = [{"Key": "Owner", "Values": ["Self"]}]
    listed = list(pages(clients, "ssm", "ListDocuments", Filters=filters, MaxResults=2))
    names = [d["Name"] for page in listed for d in page["DocumentIdentifiers"]]
    assert sorted(names) == ["doc-0", "doc-1", "doc-2"]
    assert sessions.counter.take() == {("ListDocuments", "success"): len(listed)}
    assert "NextToken" not in listed[-1]
    entries = items(
        clients, "ssm", "ListDocuments", "DocumentIdentifiers", Filters=filters, MaxResults=2
    )
    assert sorted(d["Name"] for d in entries) == ["doc-0", "doc-1", "doc-2"]


def test_create_once_takes_what_exists_and_never_creates_it_again() -> None:
    def create() -> str:
        raise AssertionError("created again")

    assert create_once(create, lambda: "assoc-1") == "assoc-1"


def test_create_once_looks_again_after_a_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first create went through but its answer was throttled away: the next look
    finds it, and there is no second create."""
    monkeypatch.setattr(api, "_CREATE_BACKOFF", 0)
    made: list[str] = []

    def create() -> str:
        made.append("assoc-1")
        raise Throttled("CreateAssociation", "ThrottlingException", "slow down")

    assert create_once(create, lambda: made[0] if made else None) == "assoc-1"
    assert made == ["assoc-1"]


def test_create_once_gives_up_after_four_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_CREATE_BACKOFF", 0)
    attempts: list[int] = []

    def create() -> str:
        attempts.append(1)
        raise ServerError("CreateAssociation", "InternalServerError", "oops")

    with pytest.raises(ServerError):
        create_once(create, lambda: None)
    assert len(attempts) == 4


def test_create_once_does_not_retry_other_errors() -> None:
    attempts: list[int] = []

    def create() -> str:
        attempts.append(1)
        raise Denied("CreateAssociation", "AccessDeniedException", "no")

    with pytest.raises(Denied):
        create_once(create, lambda: None)
    assert len(attempts) == 1


def test_create_once_waits_out_a_throttled_location(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: CreateAssociation gave up after four throttles (3.5 s), so a location whose
    bucket was busy failed its creates; throttles now get a longer, capped budget, still
    looking before every attempt."""
    monkeypatch.setattr(api, "_CREATE_BACKOFF", 0)
    looks: list[int] = []
    attempts: list[int] = []

    def create() -> str:
        attempts.append(1)
        if len(attempts) < 7:
            raise Throttled("CreateAssociation", "ThrottlingException", "slow down")
        return "assoc-1"

    assert create_once(create, lambda: looks.append(1) or None) == "assoc-1"
    assert len(attempts) == 7 and len(looks) == 7
