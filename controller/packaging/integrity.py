"""Only git's bytes leave the machine: built artifacts are checked before they are uploaded.

Stage 2 helpers, called by apply (stage 5) when a version is about to be published. The
builder's cache (`controller.packaging.builder`) reuses a zip whose stamp matches its
sources without reading the zip, and takes the zip's sha256 from that stamp: cheap on
every pass, but the stamp is a file in the cache like the zip beside it. Whoever can write
the cache can replace both consistently (any zip, its sha256 and size in the stamp), and
the manifest then vouches for the planted zip. So a stamp's sha256 is never trusted for
anything that is uploaded:

- `verify_fresh_build`, before the FIRST upload of a version: every zip whose sha256 this
  process took from a stamp is rebuilt into a temporary folder from the entries it was
  built from (the materialised tree of the revision; zips are deterministic), and must give
  the same sha256 as the stamp and as the manifest to be published. It then replaces the
  cached zip (same bytes, or the repair of a changed one). On a mismatch the cache entry
  (zip and stamp) is deleted and the version is refused (`ArtifactMismatch`): the next
  build makes it from scratch. A zip this process wrote itself carries the sha256 that
  writing it computed, so it is not rebuilt; nor is a zip already proven once.
- `verify_artifact`, right before each PutObject: the file is hashed again, streamed,
  against that (now proven) sha256; a file changed since is rebuilt once, and only a
  rebuild that gives the sha256 is uploaded.

Anything else is an `ArtifactMismatch` naming the file, one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.errors import UserError
from controller.packaging.zips import ZipEntry, write_zip


class ArtifactMismatch(UserError):
    """A built file is not what git's tree builds to (or differs from its recorded sha256)
    and could not be made right: nothing of its version is uploaded or published."""


@dataclass
class _Recipe:
    """What a zip was built from, and the sha256 this process saw those entries give."""

    entries: tuple[ZipEntry, ...]
    digest: str | None  # the entries digest (its stamp's), None when built without a stamp
    proven: str | None  # written by this process or proven by a fresh build; None: a stamp's


# zip path -> its recipe, for every zip build_version handed out in this process. Bounded
# like the builder's hash memo: forgetting one only costs a rebuild that can no longer
# happen, which is then a refusal that the next build clears.
_recipes: dict[Path, _Recipe] = {}
_RECIPES_LIMIT = 20_000
# Every zip path build_version handed out in this process, never forgotten: a zip built
# here whose recipe was forgotten must be refused, not taken on its stamp's word. One path
# per package version seen, so it grows with the versions, not with the passes.
_built_here: set[Path] = set()
# (zip path, entries digest, sha256 from the stamp) -> the refusal: the other locations
# publishing the same version fail at once, and the same bytes planted again are refused
# without another rebuild.
_refused: dict[tuple[Path, str | None, str], str] = {}
_REFUSED_LIMIT = 1_000
_lock = threading.Lock()
_path_locks: dict[Path, threading.Lock] = {}  # one fresh build of a zip at a time


def remember(
    path: Path,
    entries: list[ZipEntry],
    digest: str | None,
    sha256: str = "",
    *,
    from_stamp: bool = False,
) -> None:
    """Record what the zip at `path` was built from (called by the builder); `digest` is
    its stamp's entries digest, None when it was built without a stamp. `from_stamp`: the
    zip was reused and `sha256` read from its stamp, so it is rebuilt before its first
    upload (unless these very entries were proven to give that sha256 already); otherwise
    the builder just wrote it and `sha256` is what writing it computed."""
    path = Path(path)
    with _lock:
        if len(_recipes) >= _RECIPES_LIMIT:
            _recipes.clear()
        known = _recipes.get(path)
        proven: str | None = sha256
        if from_stamp and not (known and known.digest == digest and known.proven == sha256):
            proven = None
        _recipes[path] = _Recipe(tuple(entries), digest, proven)
        _built_here.add(path)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks: memory stays flat whatever its size."""
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


def verify_artifact(path: Path, sha256: str) -> bool:
    """Make sure the zip at `path` hashes to `sha256` (its manifest's checksum).

    Returns False when it already does, True when it had to be rebuilt (once) to do so;
    raises ArtifactMismatch when it cannot be made to (no recipe, or the rebuild differs too).
    """
    from controller.packaging.builder import write_stamp

    try:
        actual = file_sha256(path)
    except OSError as error:
        actual = f"unreadable ({error.strerror or error})"
    if actual == sha256:
        return False
    with _lock:
        recipe = _recipes.get(Path(path))
    if recipe is None:
        raise ArtifactMismatch(
            f"{path.name}: the built file has sha256 {actual}, its manifest says {sha256}, "
            "and this process cannot rebuild it: not uploaded; the next pass builds it again"
        )
    try:
        rebuilt, size = write_zip(recipe.entries, path)
    except OSError as error:
        raise ArtifactMismatch(
            f"{path.name}: the built file has sha256 {actual}, its manifest says {sha256}, "
            f"and rebuilding it failed: {error.filename or path}: {error.strerror or error}"
        ) from error
    if rebuilt != sha256:
        raise ArtifactMismatch(
            f"{path.name}: the built file has sha256 {actual}, its manifest says {sha256}, "
            f"and a rebuild from its sources gives {rebuilt}: the sources changed since the "
            "version was built; not uploaded"
        )
    if recipe.digest is not None:
        write_stamp(path, recipe.digest, rebuilt, size)
    return True


def verify_fresh_build(files: Sequence[tuple[Path, str]], manifest: str | bytes) -> None:
    """Before a version's first upload: prove each of its zips, given as (path, sha256),
    is what git's tree builds to, and that `manifest` (the document Content to publish)
    carries exactly those sha256s.

    A zip whose sha256 came from a stamp is rebuilt into a temporary folder from the
    entries it was built from; the fresh build must give that sha256, and then takes the
    cached zip's place. On any mismatch the cache entry is deleted and `ArtifactMismatch`
    raised, before anything is uploaded. A zip written by this process, or proven once
    already, costs nothing here (it is hashed again before its PutObject anyway).
    """
    checksums = _manifest_checksums(manifest)
    for path, sha256 in files:
        path = Path(path)
        if checksums.get(path.name) != sha256:
            raise ArtifactMismatch(
                f"{path.name}: the manifest to publish says sha256 "
                f"{checksums.get(path.name) or 'nothing'}, the built file {sha256}: not "
                "published; the next build makes both again"
            )
        _prove(path, sha256)


def _manifest_checksums(manifest: str | bytes) -> dict[str, str]:
    try:
        files = json.loads(manifest).get("files", {})
        return {str(name): str(file["checksums"]["sha256"]) for name, file in files.items()}
    except (ValueError, AttributeError, KeyError, TypeError) as error:
        raise ArtifactMismatch(
            f"the manifest to publish cannot be read ({error}): not published"
        ) from error


def _prove(path: Path, sha256: str) -> None:
    with _lock:
        lock = _path_locks.setdefault(path, threading.Lock())
    with lock:  # a version published to several locations at once is rebuilt once
        with _lock:
            if path not in _built_here:
                return  # not built by build_version (a caller's own file): nothing to prove
            recipe = _recipes.get(path)
            if recipe is not None and recipe.proven == sha256:
                return  # written by this process, or proven already
            key = (path, recipe.digest if recipe else None, sha256)
            refused = _refused.get(key)
        if refused is not None:
            _discard(path)  # planted again since: the same refusal, and gone again
            raise ArtifactMismatch(refused)
        fresh = _fresh_build(path, sha256, recipe)
        if fresh != sha256:
            message = (
                f"{path.name}: cached artifact differs from a fresh build from git (its "
                f"stamp and the manifest say sha256 {sha256}, the fresh build {fresh}): "
                "deleted from the cache, not published; the next pass builds it again"
            )
            _discard(path)
            with _lock:
                if len(_refused) >= _REFUSED_LIMIT:
                    _refused.clear()  # forgetting a refusal only costs a rebuild
                _refused[key] = message
            raise ArtifactMismatch(message)
        with _lock:
            if recipe is not None and _recipes.get(path) is recipe:
                recipe.proven = sha256


def _fresh_build(path: Path, sha256: str, recipe: _Recipe | None) -> str:
    """Rebuild the zip at `path` from its recipe in a temporary folder beside it and move
    the result over it; the fresh sha256, or why there is none."""
    if recipe is None:
        return "none (this process no longer knows what the zip was built from)"
    try:
        with tempfile.TemporaryDirectory(prefix=".fresh-", dir=path.parent) as folder:
            fresh, _size = write_zip(recipe.entries, Path(folder) / path.name)
            if fresh == sha256:
                # Same bytes as the stamp says; if the cached zip was changed on disk
                # (same stamp), this also repairs it.
                (Path(folder) / path.name).replace(path)
    except OSError as error:
        return f"none (the rebuild failed: {error.filename or path}: {error.strerror or error})"
    return fresh


def _discard(path: Path) -> None:
    """Delete a cache entry (zip and stamp): the next build writes it from scratch."""
    from controller.packaging.builder import stamp_path

    for stale in (path, stamp_path(path)):
        # An unwritable cache: the refusal stands at every pass (and is reported).
        with contextlib.suppress(OSError):
            stale.unlink(missing_ok=True)


def verify_manifest(path: Path, content: bytes) -> bool:
    """Make sure the manifest file at `path` holds exactly `content` (the bytes sent as the
    document Content, whose sha256 SSM reports); rewrite it when it does not. True if
    rewritten."""
    try:
        if file_sha256(path) == hashlib.sha256(content).hexdigest():
            return False
    except OSError:
        pass
    path.write_bytes(content)
    return True
