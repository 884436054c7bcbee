"""Webhook signatures: GitHub HMAC and GitLab token, right and wrong."""

from __future__ import annotations

import hashlib
import hmac
from email.message import Message

import pytest

from controller.runtime.webhook import Verdict, github_signature, verify

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
