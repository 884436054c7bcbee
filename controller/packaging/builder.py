"""`build_version`: one package version's sources -> its zips and manifest.

Stage 2 of a pass (pure: reads the repository's sources, writes only into `out_dir`).

The reconciler calls this on every pass to learn a version's content identity (the
manifest bytes, which carry each zip's sha256). To keep that cheap, its `out_dir` (in the
cache directory) doubles as a cache: next to each zip a small `.<zip>.build.json` stamp
records the digest of the entries it was made from (names, modes, sizes and content
hashes); when the sources still give that digest, the zip is not rewritten and its
recorded sha256 is used for planning. Content hashes of source files are memoised per process by
(device, inode, size, mtime), so an unchanged checkout, or a new revision's tree whose
unchanged files are hard links into the previous one, costs one `stat` per file. The
stamp is a file in the cache like the zip, so its sha256 is never trusted for an upload:
before a version's first upload, apply rebuilds every zip reused from a stamp and requires
the same bytes (`controller.packaging.integrity`).

`ssm-gitops build --out DIR` passes `stamps=False`: DIR is what a user syncs to S3, so it
gets exactly the zips and manifests, and every zip is written afresh (same bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from controller.errors import UserError
from controller.packaging.installers import generated_scripts
from controller.packaging.integrity import remember
from controller.packaging.manifest import manifest_bytes
from controller.packaging.zips import ZipEntry, write_zip
from controller.repository import rules
from controller.repository.models import Package, PackageFile, PackageVersion, Repository
from controller.repository.naming import file_source, zips_of_version
from controller.repository.sources import scan_source

# Bump when the zip layout changes, so cached zips built the old way are rebuilt.
BUILD_FORMAT = "ssm-gitops-zip/1"
_SCRIPT_NAMES = frozenset(
    action + extension for action in rules.SCRIPT_ACTIONS for extension in (".sh", ".ps1")
)


class BuildError(UserError):
    """A source that passed validation cannot be built (changed on disk, too big)."""


@dataclass(frozen=True)
class BuiltFile:
    """One zip of a version: its attachment name, where it was written, sha256 and size."""

    name: str
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class BuiltVersion:
    """A built version: the manifest bytes to send as the document Content, and its zips."""

    package: str
    version: str
    manifest: bytes
    files: tuple[BuiltFile, ...]


def zip_entries(file: PackageFile, root: Path) -> list[ZipEntry]:
    """What goes into the zip of `file`, sorted by name: its source folder's files, or the
    installer plus its generated scripts. Action scripts are always executable."""
    if file.installer is not None:
        entries = [
            ZipEntry(
                name=file.installer.name,
                executable=False,
                path=file.installer,
                size=file.installer.stat().st_size,
            )
        ]
        entries += [
            ZipEntry.from_bytes(name, data, executable=True)
            for name, data in generated_scripts(file.installer).items()
        ]
        return sorted(entries, key=lambda entry: entry.name)
    assert file.source is not None
    tree = scan_source(file.source, root)
    if tree.problems:
        raise BuildError(f"{file.where}: source {file.source}: {tree.problems[0]}")
    return [
        ZipEntry(
            name=entry.name,
            executable=entry.executable or entry.name in _SCRIPT_NAMES,
            path=entry.path,
            size=entry.size,
        )
        for entry in tree.entries
    ]


# Keyed by the file's identity on disk (device, inode, size, mtime), not its path: a new
# revision's tree hard-links the files it did not change from the previous tree
# (controller.source.git), so they keep their inode and are not hashed again.
_content_hashes: dict[tuple[int, int, int, int], str] = {}
# A long-running controller sees every revision's files: forget them all now and then
# rather than grow without bound (re-hashing is only a cost, never wrong).
_CONTENT_HASHES_LIMIT = 200_000


def _content_hash(path: Path) -> tuple[str, int]:
    info = path.stat()
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    cached = _content_hashes.get(key)
    if cached is None:
        with path.open("rb") as source:
            cached = hashlib.file_digest(source, "sha256").hexdigest()
        if len(_content_hashes) >= _CONTENT_HASHES_LIMIT:
            _content_hashes.clear()
        _content_hashes[key] = cached
    return cached, info.st_size


def entries_digest(entries: list[ZipEntry]) -> str:
    """A digest of everything that determines the zip's bytes (not the zip's own sha256)."""
    digest = hashlib.sha256(BUILD_FORMAT.encode())
    for entry in entries:
        if entry.data is not None:
            content, size = hashlib.sha256(entry.data).hexdigest(), len(entry.data)
        else:
            assert entry.path is not None
            content, size = _content_hash(entry.path)
        digest.update(f"{entry.name}\0{int(entry.executable)}\0{size}\0{content}\n".encode())
    return digest.hexdigest()


def stamp_path(zip_path: Path) -> Path:
    """The stamp beside a cached zip: `.<zip>.build.json`."""
    return zip_path.parent / f".{zip_path.name}.build.json"


def write_stamp(zip_path: Path, digest: str, sha256: str, size: int) -> None:
    """Record that the zip at `zip_path` was built from entries with `digest`."""
    record = {"entries": digest, "sha256": sha256, "size": size}
    _write_atomically(stamp_path(zip_path), json.dumps(record, sort_keys=True))


def _write_atomically(path: Path, text: str) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w") as out:
        out.write(text + "\n")
    os.chmod(name, 0o644)
    os.replace(name, path)


def _cached(out_dir: Path, zip_name: str, digest: str) -> tuple[str, int] | None:
    try:
        record = json.loads(stamp_path(out_dir / zip_name).read_text())
        size = (out_dir / zip_name).stat().st_size
    except (OSError, ValueError):
        return None
    if record.get("entries") != digest or record.get("size") != size:
        return None
    return str(record["sha256"]), size


def _find(
    repo: Repository, package: Package | str, version: PackageVersion | str
) -> tuple[Package, PackageVersion]:
    found_package = repo.package(package) if isinstance(package, str) else package
    if found_package is None:
        raise BuildError(f"no package {package!r} in {repo.root}")
    found_version = found_package.version(version) if isinstance(version, str) else version
    if found_version is None:
        raise BuildError(f"package {found_package.name!r} has no version {version!r}")
    return found_package, found_version


def build_version(
    repo: Repository,
    package: Package | str,
    version: PackageVersion | str,
    out_dir: Path,
    *,
    stamps: bool = True,
) -> BuiltVersion:
    """Build (or reuse from `out_dir`) every zip of `version` and its manifest.

    `stamps=False`: write every zip and leave nothing else in `out_dir` (no reuse)."""
    package, version = _find(repo, package, version)
    try:
        return _build(repo, package, version, Path(out_dir), stamps)
    except OSError as error:  # a source changed since validation, or out_dir is unwritable
        where = error.filename or out_dir
        raise BuildError(
            f"{version.where}: cannot build {package.name} {version.name}: {where}: "
            f"{error.strerror or error}"
        ) from error


def _build(
    repo: Repository, package: Package, version: PackageVersion, out_dir: Path, stamps: bool
) -> BuiltVersion:
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_names = zips_of_version(package.name, version)
    first_file: dict[Path, PackageFile] = {}
    for file in version.files:
        first_file.setdefault(file_source(file), file)
    built: list[BuiltFile] = []
    for source, zip_name in zip_names.items():
        entries = zip_entries(first_file[source], repo.root)
        # Without stamps nothing is reused, so the sources need not be hashed at all
        # (the zip's own sha256 is what the manifest carries).
        digest = entries_digest(entries) if stamps else None
        cached = _cached(out_dir, zip_name, digest) if digest is not None else None
        if cached is None:
            sha256, size = write_zip(entries, out_dir / zip_name)
            if digest is not None:
                write_stamp(out_dir / zip_name, digest, sha256, size)
        else:
            sha256, size = cached
        # A sha256 read from a stamp is only the cache's word: apply rebuilds that zip
        # before its first upload (controller.packaging.integrity.verify_fresh_build).
        remember(out_dir / zip_name, entries, digest, sha256, from_stamp=cached is not None)
        if size > rules.MAX_FILE_BYTES:
            os.unlink(out_dir / zip_name)
            raise BuildError(
                f"{first_file[source].where}: {zip_name} is {size} bytes, over Distributor's "
                "1 GB file limit: split the payload or fetch it at install time"
            )
        built.append(BuiltFile(zip_name, out_dir / zip_name, sha256, size))
    checksums = {file.name: file.sha256 for file in built}
    manifest = manifest_bytes(version, zip_names, checksums)
    return BuiltVersion(package.name, version.name, manifest, tuple(built))
