"""Who may trigger a pass over HTTP: checks a git host's push webhook against the shared secret.

Sits at the HTTP edge (`runtime.http`, `POST /hooks/git`): a request that passes triggers an
immediate pass; one that fails changes nothing and is answered 401. Both ways of signing are
compared in constant time (`hmac.compare_digest`) so the secret cannot be guessed byte by
byte from response times.

- GitHub signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
  (GitHub docs, "Validating webhook deliveries").
- GitLab sends the secret itself: `X-Gitlab-Token: <secret>` (GitLab docs, "Webhooks",
  "Validate requests with a secret token").
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Protocol

# GitHub caps payloads at 25 MB, but a push event's useful part is small and we never parse
# it: anything larger than this is refused before it is read whole.
MAX_BODY_BYTES = 1024 * 1024


class Headers(Protocol):
    """Case-insensitive request headers (`http.client.HTTPMessage`, `email.message.Message`)."""

    def get(self, name: str, default: None = None) -> str | None: ...


class Verdict(StrEnum):
    """The `result` label of `ssm_gitops_webhook_requests_total`."""

    ACCEPTED = "accepted"
    UNAUTHORIZED = "unauthorized"
    TOO_LARGE = "too_large"
    DISABLED = "disabled"  # no secret configured: webhooks are refused


def github_signature(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes | None, headers: Headers, body: bytes) -> Verdict:
    """Decide whether a webhook request comes from someone who knows the secret.

    `headers` must be case-insensitive (an `http.client.HTTPMessage` is).
    """
    if not secret:
        return Verdict.DISABLED
    signature = headers.get("X-Hub-Signature-256")
    if signature is not None:
        expected = github_signature(secret, body)
        ok = hmac.compare_digest(signature.strip().encode(), expected.encode())
        return Verdict.ACCEPTED if ok else Verdict.UNAUTHORIZED
    token = headers.get("X-Gitlab-Token")
    if token is not None:
        ok = hmac.compare_digest(token.encode(), secret)
        return Verdict.ACCEPTED if ok else Verdict.UNAUTHORIZED
    return Verdict.UNAUTHORIZED


def read_secret(path: str) -> bytes:
    """The secret file's content without the trailing newline editors add."""
    with open(path, "rb") as handle:
        return handle.read().strip()
