"""Repository URLs made fit to show: the one redaction every log line, `/status` and the page use.

Sits at the very start of the pipeline, beside `controller.source.git`: a repository URL may
carry a secret in its userinfo (`https://user:token@host/...`, possibly with a raw `@` in the
password), in its query (`?private_token=...`, GitLab's convention) or in its fragment
(`...repo.git#TOKEN`: never sent to a server, so nothing there is worth showing, and
whatever a user put there is hidden whole). Wherever a URL (or an
error message that may quote one) is shown, it goes through `redact` or `redact_text` first.
"""

from __future__ import annotations

import re

HIDDEN = "***"

# Query parameters whose value is a credential: any name containing one of these words
# (private_token, access_token, password, X-Amz-Signature, client_secret, api_key, auth ...).
_SENSITIVE = re.compile(r"token|secret|pass|pwd|key|sig|auth|cred|session", re.IGNORECASE)
# A URL inside free text (an error message from libgit2 quotes the URL it was given).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact(url: str) -> str:
    """`url` with its userinfo, every credential-like query value and its fragment (the
    part after `#`, whole) replaced by `***`.

        The userinfo ends at the LAST `@` before the host (RFC 3986 section 3.2 forbids a raw `@`
        in userinfo, but people paste tokens and passwords that hold one): `https://u:p@ss@host/r`
        shows as `https://***@host/r`, never `https://***@ss@host/r`.
    """
    url, hash_sign, _fragment = url.partition("#")
    hidden = f"#{HIDDEN}" if hash_sign else ""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return _redact_query(url) + hidden
    # The authority ends at the first `/`, `?` or `#`; a raw `@` inside the password comes
    # before it, so the last `@` before that end is the one that separates the host.
    end = len(rest)
    for index, char in enumerate(rest):
        if char in "/?#":
            end = index
            break
    at = rest.rfind("@", 0, end)
    if at >= 0:
        rest = f"{HIDDEN}@{rest[at + 1 :]}"
    return f"{scheme}://{_redact_query(rest)}{hidden}"


def _redact_query(text: str) -> str:
    base, question, query = text.partition("?")
    if not question:
        return text
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        parts.append(f"{name}={HIDDEN}" if equals and _SENSITIVE.search(name) else part)
    return f"{base}?{'&'.join(parts)}"


def redact_text(text: str, *urls: str) -> str:
    """`text` (an error message) with each of `urls`, and any URL it quotes, redacted."""
    for url in urls:
        if url:
            text = text.replace(url, redact(url))
    return _URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
