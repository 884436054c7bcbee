"""Ownership tags: the marks that make an SSM resource ours to change or delete.

Shared by every stage: the spec layer refuses them as user tags, desired state adds them,
observe and apply trust only resources that carry them (contract: Ownership and safety).
A neutral module, so the spec layer need not import reconcile.

Two tags, both required:
- `ssm-gitops:owner=<name>` (the `--name` flag): the shipped IAM policies condition on it;
- `ssm-gitops:source=<source id>`: the repository and path the resource came from, so two
  repositories applied to one account with the same owner name never change or prune each
  other's resources (issue 10). A resource with our owner tag and no source tag predates the
  source tag ("unclaimed"): adopted when we declare it, never pruned when we do not.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

OWNER_TAG = "ssm-gitops:owner"
SOURCE_TAG = "ssm-gitops:source"

# A tag value: at most 256 characters of letters, separators, digits and `_ . : / = + - @`
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html).
TAG_VALUE_MAX = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.*)$")


class Claim(StrEnum):
    """Whose a resource with tags is, seen from one (owner, source)."""

    OURS = "ours"  # both tags match: ours to change and prune
    UNCLAIMED = "unclaimed"  # our owner tag, no source tag: adopt if declared, never prune
    OTHER_SOURCE = "other_source"  # our owner tag, another source: a conflict if declared
    NOT_OURS = "not_ours"  # another owner name, or none: never touched


def claim(tags: Mapping[str, str], owner: str, source: str) -> Claim:
    if tags.get(OWNER_TAG) != owner:
        return Claim.NOT_OURS
    live = tags.get(SOURCE_TAG, "")
    if live == source:
        return Claim.OURS
    if not live:
        return Claim.UNCLAIMED
    return Claim.OTHER_SOURCE


def _valid_tag_value(text: str) -> bool:
    return len(text) <= TAG_VALUE_MAX and all(
        unicodedata.category(char)[0] in "LZN" or char in _TAG_PUNCTUATION for char in text
    )


def _repository(location: str, inner: str) -> str:
    """A repository's identity: host/path of a URL (no credentials, query, port 443, .git),
    or a local repository's absolute root folder."""
    if "://" in location:
        parts = urlsplit(location)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return _repository(parts.path, inner)
        host = (parts.hostname or "").lower()  # hostname drops user:password@
        try:
            port = parts.port
        except ValueError:
            port = None
        if port and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        path = parts.path
    else:
        scp = _SCP_LIKE.match(location)
        if scp is None or "/" in scp.group("host") or Path(location).expanduser().exists():
            here = Path(location).expanduser().resolve()
            depth = 0 if inner in ("", ".") else len(PurePosixPath(inner).parts)
            return (here.parents[depth - 1] if depth else here).as_posix()
        host, path = scp.group("host").lower(), scp.group("path")
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return f"{host}/{path}".rstrip("/")


def local_origin(location: str) -> str | None:
    """The `origin` remote's URL of a local repository (None: a URL, or no origin).

    A clone names the repository it came from: `plan --repo ./infra` on an operator's clone
    then gets the same source id as the controller following `https://.../infra`, instead
    of reading every resource as another source's.
    """
    if "://" in location or (_SCP_LIKE.match(location) and not Path(location).exists()):
        return None
    import pygit2  # local: the spec layer imports this module and needs no git

    try:
        found = pygit2.discover_repository(str(Path(location).expanduser()))
        if not found:
            return None
        remotes = pygit2.Repository(found).remotes
        url = remotes["origin"].url if "origin" in [r.name for r in remotes] else None
    except (pygit2.GitError, KeyError, ValueError):
        return None
    return str(url) if url else None


def source_id(
    location: str, path: str = ".", *, inner: str = ".", origin: str | None = None
) -> str:
    """The value of the source tag for `--repo location` and the repository-relative folder
    `path` (for a local `--repo` naming a folder inside a repository, `inner` is that folder,
    so the id names the repository's root either way).

    `github.com/org/infra//teams/a`: https, ssh and scp-like spellings of one repository give
    one id; a local clone with an `origin` remote (`local_origin`) is named by that remote.
    Too long or with characters a tag value may not hold: a readable prefix and a hash of
    the whole id, so two sources never share one.
    """
    folder = PurePosixPath(path or ".").as_posix().strip("/")
    text = _repository(origin, ".") if origin else _repository(location, inner)
    if folder not in ("", "."):
        text = f"{text}//{folder}"
    if _valid_tag_value(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    readable = "".join(
        char if _valid_tag_value(char) else "-" for char in text[: TAG_VALUE_MAX - 24]
    )
    return f"{readable}/sha256={digest}"
