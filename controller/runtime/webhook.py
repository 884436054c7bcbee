"""Who may trigger a pass over HTTP: checks a git host's push webhook against the shared secret.

Sits at the HTTP edge (`runtime.server`, `POST /hooks/git`): a request that passes triggers an
immediate pass; one that fails changes nothing and is answered 401. Both ways of signing are
compared in constant time (`hmac.compare_digest`) so the secret cannot be guessed byte by
byte from response times.

- GitHub signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
  (GitHub docs, "Validating webhook deliveries").
- GitLab sends the secret itself: `X-Gitlab-Token: <secret>` (GitLab docs, "Webhooks",
  "Validate requests with a secret token").

A signed request is then read as a push event (`Push.parse`) and acted on only when it is
about the followed repository and ref (`Followed.wants`): a webhook configured on another
repository, or a push to another branch, costs no git fetch.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

# GitHub caps payloads at 25 MB, but a push event's useful part is small and we never parse
# it: anything larger than this is refused before it is read whole.
MAX_BODY_BYTES = 1024 * 1024


class Headers(Protocol):
    """Case-insensitive request headers (`http.client.HTTPMessage`, `email.message.Message`)."""

    def get(self, name: str, default: None = None) -> str | None: ...


class Verdict(StrEnum):
    """The `result` label of `ssm_gitops_webhook_requests_total`."""

    ACCEPTED = "accepted"
    IGNORED = "ignored"  # signed, but not a push to the followed repository and ref
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


# -- which pushes matter ------------------------------------------------------------------

_SCP_LIKE = re.compile(r"^(?:[\w.+-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//).+)$")
_FULL_SHA = re.compile(r"^[0-9a-fA-F]{40}$")


def repository_key(url: str) -> str | None:
    """`host/owner/name` for any spelling of one repository's address, or None.

    https://github.com/Org/Repo.git, git@github.com:org/repo and ssh://git@github.com:22/org/repo
    all give `github.com/org/repo`: the payload names the repository in several forms
    (GitHub `clone_url`, `ssh_url`, `html_url`; GitLab `git_http_url`, `git_ssh_url`,
    `web_url`), and `--repo` is whichever one the operator chose. Credentials and ports are
    dropped; paths compare case-insensitively (GitHub's are).
    """
    text = url.strip()
    if not text:
        return None
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        host, path = (parts.hostname or ""), parts.path
    else:
        match = _SCP_LIKE.match(text)
        if not match:
            return None
        host, path = match["host"], match["path"]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    if not host or not path:
        return None
    return f"{host.lower()}/{path.lower()}"


@dataclass(frozen=True)
class Push:
    """What a push payload says: which repository (every address it gives) and which ref."""

    repositories: frozenset[str]  # repository_key() of every address in the payload
    ref: str  # refs/heads/<branch> or refs/tags/<tag>
    default_branch: str | None = None
    after: str | None = None  # the commit the ref points to after the push

    @classmethod
    def parse(cls, headers: Headers, body: bytes) -> Push | str:
        """The push in a GitHub or GitLab payload, or why this request is no push."""
        github_event = headers.get("X-GitHub-Event")
        gitlab_event = headers.get("X-Gitlab-Event")
        if github_event is not None and github_event != "push":
            return f"GitHub event {github_event!r} is not a push"
        if gitlab_event is not None and gitlab_event not in ("Push Hook", "Tag Push Hook"):
            return f"GitLab event {gitlab_event!r} is not a push"
        document = _payload(headers, body)
        if not isinstance(document, dict) or not isinstance(document.get("ref"), str):
            return "the body is not a push payload (no 'ref')"
        addresses: list[Any] = []
        default_branch = None
        for section in ("repository", "project"):
            part = document.get(section)
            if isinstance(part, dict):
                addresses += [part.get(k) for k in _ADDRESS_FIELDS]
                default_branch = default_branch or part.get("default_branch")
        keys = {repository_key(a) for a in addresses if isinstance(a, str)}
        after = document.get("after")  # GitHub and GitLab both send it
        return cls(
            repositories=frozenset(k for k in keys if k),
            ref=str(document["ref"]),
            default_branch=default_branch if isinstance(default_branch, str) else None,
            after=after if isinstance(after, str) and after else None,
        )


# GitHub: repository.{clone_url, ssh_url, git_url, html_url, svn_url}; GitLab: project.{
# git_http_url, git_ssh_url, web_url, http_url, ssh_url} and repository.{url, homepage}.
_ADDRESS_FIELDS = (
    "clone_url",
    "ssh_url",
    "git_url",
    "html_url",
    "svn_url",
    "git_http_url",
    "git_ssh_url",
    "web_url",
    "http_url",
    "url",
    "homepage",
)


def _payload(headers: Headers, body: bytes) -> Any:
    """The JSON document; GitHub's form encoding (`payload=<json>`) is unwrapped."""
    text = body.decode("utf-8", "replace")
    if "x-www-form-urlencoded" in (headers.get("Content-Type") or "").lower():
        text = (urllib.parse.parse_qs(text).get("payload") or [text])[0]
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class Followed:
    """The repository and ref this controller follows, as a push would name them.

    `repository` is `repository_key(--repo)`: None for a local path (`--repo ./dir`), which
    has no address a git host would send, so any repository's push is taken there (the ref
    is still checked).
    `ref` is `--ref` as given (a branch, a tag, a full `refs/...` name or a commit), or None
    for the remote's HEAD.
    """

    repository: str | None
    ref: str | None

    def wants(self, push: Push) -> str | None:
        """None if `push` may move what we follow, else why it cannot."""
        if self.repository is not None and self.repository not in push.repositories:
            return "another repository"
        wanted = self.ref
        if wanted is None:
            if push.default_branch is None:
                return None if push.ref.startswith("refs/heads/") else "not a branch"
            wanted = f"refs/heads/{push.default_branch}"
        if _FULL_SHA.match(wanted):
            return "a pinned commit never moves"
        names = (
            {wanted}
            if wanted.startswith("refs/")
            else {
                f"refs/heads/{wanted}",
                f"refs/tags/{wanted}",
            }
        )
        return None if push.ref in names else f"another ref ({push.ref})"


class SeenPushes:
    """The (ref, after) pairs already acted on, newest `size` of them.

    A replayed delivery (a proxy retrying, "Redeliver" pressed, a captured request sent
    again) names a commit the controller was already asked to fetch: it costs nothing.
    A push that returns a ref to a commit seen before is left to the next poll.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], None] = {}

    def first_time(self, push: Push) -> bool:
        """True (and remembered) the first time this push's (ref, after) is seen."""
        if push.after is None:
            return True
        key = (push.ref, push.after)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > self._size:
                del self._seen[next(iter(self._seen))]
            return True


class RefusalLog:
    """Logs refused webhooks at most once per `every` seconds, with how many were refused.

    A flood of badly signed requests must not flood the log (issue: each one was a line).
    `note()` returns the count to log when a line is due, else None.
    """

    def __init__(self, every: float = 60.0, clock: Any = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._count = 0

    def note(self) -> int | None:
        with self._lock:
            self._count += 1
            now = self._clock()
            if self._last is not None and now - self._last < self._every:
                return None
            count, self._count, self._last = self._count, 0, now
            return count
