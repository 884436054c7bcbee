"""Built artifacts are checked against their recorded sha256 right before they leave the machine.

Stage 2 helper, called by apply (stage 5) just before an upload. The builder's cache
(`controller.packaging.builder`) trusts a zip whose stamp matches its sources, without reading
the zip: cheap on every pass, but a byte flipped in the cache would then be uploaded and
published. So before a zip goes to S3 it is hashed again, streamed; when it differs from the
sha256 its manifest records, it is rebuilt once from the entries it was built from (this
process remembers them for every zip `build_version` handed out), and only a rebuild that
gives the recorded sha256 is uploaded. Anything else is a `BuildError` naming the file.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from controller.errors import UserError
from controller.packaging.zips import ZipEntry, write_zip


class ArtifactMismatch(UserError):
    """A built file differs from its recorded sha256 and could not be made right."""


# zip path -> (entries, entries digest) of every zip build_version handed out in this
# process. Bounded like the builder's hash memo: forgetting only costs a rebuild that can
# no longer happen, which is then an error that the next revision's build clears.
_recipes: dict[Path, tuple[tuple[ZipEntry, ...], str | None]] = {}
_RECIPES_LIMIT = 20_000
_lock = threading.Lock()


def remember(path: Path, entries: list[ZipEntry], digest: str | None) -> None:
    """Record what the zip at `path` was built from (called by the builder); `digest` is
    its stamp's entries digest, None when it was built without a stamp."""
    with _lock:
        if len(_recipes) >= _RECIPES_LIMIT:
            _recipes.clear()
        _recipes[Path(path)] = (tuple(entries), digest)


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
            "and this process cannot rebuild it: not uploaded; the next revision's build "
            "makes it again"
        )
    entries, digest = recipe
    try:
        rebuilt, size = write_zip(entries, path)
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
    if digest is not None:
        write_stamp(path, digest, rebuilt, size)
    return True


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
