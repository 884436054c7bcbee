"""Webhook signatures: GitHub HMAC and GitLab token, right and wrong."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from email.message import Message

import pytest

from controller.runtime.schedule import Spaced
from controller.runtime.webhook import (
    Followed,
    Push,
    RefusalLog,
    Verdict,
    github_signature,
    repository_key,
    verify,
)

SECRET = b"s3cret"
BODY = b'{"ref": "refs/heads/main"}'


def headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


def test_github_signature_is_hmac_sha256_of_the_body() -> None:
    assert github_signature(SECRET, BODY) == (
        "sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    )


@pytest.mark.parametrize(
    ("header_values", "verdict"),
    [
        ({"X_Hub_Signature_256": github_signature(SECRET, BODY)}, Verdict.ACCEPTED),
        ({"x_hub_signature_256": github_signature(SECRET, BODY)}, Verdict.ACCEPTED),
        ({"X_Hub_Signature_256": github_signature(b"other", BODY)}, Verdict.UNAUTHORIZED),
        ({"X_Hub_Signature_256": github_signature(SECRET, BODY + b" ")}, Verdict.UNAUTHORIZED),
        ({"X_Hub_Signature_256": "sha256="}, Verdict.UNAUTHORIZED),
        ({"X_Hub_Signature_256": "garbage"}, Verdict.UNAUTHORIZED),
        ({"X_Gitlab_Token": "s3cret"}, Verdict.ACCEPTED),
        ({"X_Gitlab_Token": "s3cre"}, Verdict.UNAUTHORIZED),
        ({"X_Gitlab_Token": ""}, Verdict.UNAUTHORIZED),
        ({}, Verdict.UNAUTHORIZED),
        # A wrong GitHub signature is not rescued by a right GitLab token alongside it.
        (
            {"X_Hub_Signature_256": "sha256=00", "X_Gitlab_Token": "s3cret"},
            Verdict.UNAUTHORIZED,
        ),
    ],
)
def test_verdicts(header_values: dict[str, str], verdict: Verdict) -> None:
    assert verify(SECRET, headers(**header_values), BODY) is verdict


def test_without_a_secret_every_webhook_is_refused() -> None:
    assert verify(None, headers(X_Gitlab_Token=""), BODY) is Verdict.DISABLED
    assert verify(b"", headers(X_Gitlab_Token=""), BODY) is Verdict.DISABLED


# -- which pushes matter (issue 11: another repository or branch triggered a pass) ---------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("https://github.com/Acme/Fleet.git", "github.com/acme/fleet"),
        ("https://token:x@github.com/acme/fleet/", "github.com/acme/fleet"),
        ("git@github.com:acme/fleet.git", "github.com/acme/fleet"),
        ("ssh://git@github.com:22/acme/fleet", "github.com/acme/fleet"),
        ("https://gitlab.example.com/group/sub/fleet", "gitlab.example.com/group/sub/fleet"),
        ("/srv/git/fleet", None),
        ("./fleet", None),
        ("", None),
    ],
)
def test_repository_key_joins_every_spelling_of_one_repository(
    address: str, key: str | None
) -> None:
    assert repository_key(address) == key


def github_push(ref: str, clone_url: str, default_branch: str = "main") -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "repository": {
                "clone_url": clone_url,
                "ssh_url": "git@github.com:" + clone_url.split("github.com/", 1)[-1],
                "html_url": clone_url.removesuffix(".git"),
                "default_branch": default_branch,
            },
        }
    ).encode()


def gitlab_push(ref: str, http_url: str) -> bytes:
    return json.dumps(
        {"ref": ref, "project": {"git_http_url": http_url, "default_branch": "main"}}
    ).encode()


OURS = "https://github.com/acme/fleet.git"


@pytest.mark.parametrize(
    ("followed", "event", "body", "acted_on"),
    [
        # --repo https..., no --ref: the default branch named in the payload.
        (
            Followed("github.com/acme/fleet", None),
            "push",
            github_push("refs/heads/main", OURS),
            True,
        ),
        (
            Followed("github.com/acme/fleet", None),
            "push",
            github_push("refs/heads/dev", OURS),
            False,
        ),
        # Another repository entirely, same branch name.
        (
            Followed("github.com/acme/fleet", None),
            "push",
            github_push("refs/heads/main", "https://github.com/acme/other.git"),
            False,
        ),
        # --ref as a branch name, a tag name, and a full ref.
        (
            Followed("github.com/acme/fleet", "prod"),
            "push",
            github_push("refs/heads/prod", OURS),
            True,
        ),
        (
            Followed("github.com/acme/fleet", "prod"),
            "push",
            github_push("refs/heads/main", OURS),
            False,
        ),
        (Followed("github.com/acme/fleet", "v1"), "push", github_push("refs/tags/v1", OURS), True),
        (
            Followed("github.com/acme/fleet", "refs/heads/main"),
            "push",
            github_push("refs/tags/main", OURS),
            False,
        ),
        # A pinned commit never moves: no push concerns it.
        (
            Followed("github.com/acme/fleet", "a" * 40),
            "push",
            github_push("refs/heads/main", OURS),
            False,
        ),
        # Not a push at all.
        (Followed("github.com/acme/fleet", None), "ping", b'{"zen": "hi"}', False),
        (Followed("github.com/acme/fleet", None), "push", b"not json", False),
        (Followed("github.com/acme/fleet", None), "push", b"[" * 100_000, False),
        # A local --repo has no address: any repository, but still the ref.
        (Followed(None, "main"), "push", github_push("refs/heads/main", OURS), True),
        (Followed(None, "main"), "push", github_push("refs/heads/x", OURS), False),
    ],
)
def test_only_pushes_to_the_followed_repository_and_ref_count(
    followed: Followed, event: str, body: bytes, acted_on: bool
) -> None:
    push = Push.parse(headers(X_GitHub_Event=event), body)
    verdict = push if isinstance(push, str) else followed.wants(push)
    assert (verdict is None) is acted_on, verdict


def test_gitlab_push_and_tag_push_hooks_are_read() -> None:
    followed = Followed("gitlab.example.com/g/fleet", None)
    body = gitlab_push("refs/heads/main", "https://gitlab.example.com/g/fleet.git")
    push = Push.parse(headers(X_Gitlab_Event="Push Hook"), body)
    assert isinstance(push, Push) and followed.wants(push) is None
    assert isinstance(Push.parse(headers(X_Gitlab_Event="Issue Hook"), body), str)
    tag = Push.parse(
        headers(X_Gitlab_Event="Tag Push Hook"),
        gitlab_push("refs/tags/v2", "git@gitlab.example.com:g/fleet.git"),
    )
    assert isinstance(tag, Push) and Followed("gitlab.example.com/g/fleet", "v2").wants(tag) is None


def test_github_form_encoded_payload_is_unwrapped() -> None:
    form = urllib.parse.urlencode({"payload": github_push("refs/heads/main", OURS).decode()})
    push = Push.parse(
        headers(X_GitHub_Event="push", Content_Type="application/x-www-form-urlencoded"),
        form.encode(),
    )
    assert isinstance(push, Push) and push.ref == "refs/heads/main"


def test_refused_signatures_are_logged_at_most_once_per_window() -> None:
    """Issue 11: every badly signed request was a log line; a flood flooded the log."""
    now = [0.0]
    log = RefusalLog(every=60.0, clock=lambda: now[0])
    lines = [log.note() for _ in range(1000)]
    assert lines[0] == 1 and lines[1:] == [None] * 999
    now[0] = 61.0
    assert log.note() == 1000  # the 999 held back plus this one


# -- coalescing (issue 11: 2,000 replays cost 1,183 git fetches) ----------------------------


def test_spaced_runs_the_first_at_once_and_folds_a_burst_into_one_more() -> None:
    calls: list[float] = []
    spaced = Spaced(lambda: calls.append(time.monotonic()), spacing=0.5)
    try:
        started = time.monotonic()
        assert spaced.request() is True
        assert [spaced.request() for _ in range(2000)] == [False] * 2000
        assert len(calls) == 1
        time.sleep(0.8)
        assert len(calls) == 2  # the burst's one deferred call, at the end of the window
        assert calls[1] - started >= 0.45
        time.sleep(0.6)
        assert len(calls) == 2  # nothing more without new requests
    finally:
        spaced.stop()


def test_spaced_stop_cancels_the_deferred_call() -> None:
    calls: list[int] = []
    spaced = Spaced(lambda: calls.append(1), spacing=0.3)
    spaced.request()
    spaced.request()
    spaced.stop()
    time.sleep(0.5)
    assert calls == [1]
