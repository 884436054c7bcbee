"""Deterministic, streaming zip files: the same entries always give the same bytes.

Stage 2 helper. What makes the bytes stable: entries in the caller's (sorted) order, a
fixed timestamp (1980-01-01, the earliest a zip can hold), Unix modes normalised to 0644,
or 0755 for executables (scripts keep their exec bit when unpacked), no directory entries
(git does not keep empty folders, so a checkout and a working tree agree), and a
compression choice made from the content alone: deflate, unless the first 64 KiB do not
shrink (already-compressed payloads such as .rpm, .msi, .tar.gz), which are stored, so
big payloads go at disk speed instead of zlib speed.

Memory stays flat: files are copied in 1 MiB chunks, then the finished zip is hashed in
chunks too.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SAMPLE = 64 * 1024


@dataclass(frozen=True)
class ZipEntry:
    """One file of a zip: its name inside, and its bytes from a file or given directly."""

    name: str
    executable: bool
    path: Path | None = None
    data: bytes | None = None
    size: int = 0

    @staticmethod
    def from_bytes(name: str, data: bytes, *, executable: bool) -> ZipEntry:
        return ZipEntry(name=name, executable=executable, data=data, size=len(data))


def _head(entry: ZipEntry) -> bytes:
    if entry.data is not None:
        return entry.data[:_SAMPLE]
    assert entry.path is not None
    with entry.path.open("rb") as source:
        return source.read(_SAMPLE)


def compression_for(head: bytes) -> int:
    """Deflate what shrinks, store what does not (decided from the first 64 KiB)."""
    if len(head) >= 1024 and len(zlib.compress(head, 1)) > 0.9 * len(head):
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


def _info(entry: ZipEntry, size: int, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry.name, date_time=FIXED_TIME)
    info.create_system = 3  # Unix: unzip and the agent honour the mode bits below
    mode = 0o755 if entry.executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = compression
    info.file_size = size  # known up front, so zipfile picks zip64 from the size alone
    return info


def write_zip(entries: Sequence[ZipEntry], destination: Path) -> tuple[str, int]:
    """Write `entries` (in the given order) to `destination`; return (sha256, size).

    Written to a temporary name and renamed, so a crash never leaves a half zip under
    the final name.
    """
    # A unique temporary name: two builds of the same zip at once (threads, processes)
    # each write their own file, and the last rename wins with identical bytes.
    handle, name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        with zipfile.ZipFile(temporary, "w", allowZip64=True) as archive:
            for entry in entries:
                head = _head(entry)
                if entry.data is not None:
                    info = _info(entry, len(entry.data), compression_for(head))
                    with archive.open(info, "w") as target:
                        target.write(entry.data)
                    continue
                assert entry.path is not None
                with entry.path.open("rb") as source:
                    size = os.fstat(source.fileno()).st_size
                    info = _info(entry, size, compression_for(head))
                    with archive.open(info, "w") as target:
                        while chunk := source.read(CHUNK):
                            target.write(chunk)
        with temporary.open("rb") as written:
            digest = hashlib.file_digest(written, "sha256").hexdigest()
        size = temporary.stat().st_size
        temporary.chmod(0o644)  # mkstemp makes it private; a build output is not secret
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return digest, size
