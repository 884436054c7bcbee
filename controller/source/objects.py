"""Git objects to files and back: a tree written to disk, and checked against git's ids.

Sits under `controller.source.git` (`GitSource.materialise`). Two jobs:

- `write_blob` writes one blob without holding it in memory: libgit2 (and so pygit2,
  `Blob.data` or `BlobIO`) inflates a whole object before returning any of it, so a 600 MB
  file would need 600 MB (1.2 GB through `.data`). A blob stored whole (a loose object, or
  a pack entry that is not a delta: git stores large files that way) is inflated here in
  chunks straight from its file; the result is hashed as a git blob and must equal the
  blob's id, else (a delta, an alternate object store, anything unexpected) the file is
  written from libgit2's object, which costs the blob's size once, never twice.
- `tree_mismatch` says whether a directory holds exactly a git tree (names, modes, blob
  ids, symlink targets), so a cached tree edited on disk is never used as the commit.

Formats: gitformat-pack(5) (pack and idx v2 layout) and gitformat-loose(5) (zlib of
`blob <size>\\0<content>`), https://git-scm.com/docs/gitformat-pack.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from pathlib import Path

import pygit2

CHUNK = 1 << 20  # bytes read or inflated at a time
STREAM_FROM = 1 << 20  # smaller blobs are read through libgit2 (faster, memory is no issue)
SUBMODULE_MARKER = "gitdir: a git submodule, not part of this repository's commits\n"
_BLOB = 3  # pack entry types (gitformat-pack: "Object types")
_IDX_MAGIC = b"\xfftOc\x00\x00\x00\x02"


def write_blob(repo: pygit2.Repository, oid: pygit2.Oid, target: Path) -> None:
    """Write blob `oid` to the new file `target` (raises OSError when the disk refuses)."""
    if _stream(repo, oid, target):
        return
    blob = repo[oid]
    with open(target, "wb") as out:
        # memoryview: the bytes libgit2 already holds, without a second copy in Python.
        out.write(memoryview(blob))  # type: ignore[arg-type]


def _stream(repo: pygit2.Repository, oid: pygit2.Oid, target: Path) -> bool:
    """True if `target` now holds the blob, inflated in chunks from its stored form."""
    raw = oid.raw
    if len(raw) != 20:
        return False  # a SHA-256 repository: the idx layout below is SHA-1's
    objects = Path(repo.path) / "objects"
    hexed = str(oid)
    try:
        loose = objects / hexed[:2] / hexed[2:]
        if loose.is_file():
            done = _inflate(loose, 0, target, loose_header=True)
        else:
            done = False
            for index in sorted((objects / "pack").glob("pack-*.idx")):
                offset = _pack_offset(index, raw)
                if offset is not None:
                    done = _inflate(index.with_suffix(".pack"), offset, target, loose_header=False)
                    break
    except (OSError, zlib.error, struct.error, ValueError):
        done = False
    if done and pygit2.hashfile(str(target)) == oid:
        return True
    target.unlink(missing_ok=True)
    return False


def _pack_offset(index: Path, raw: bytes) -> int | None:
    """Where object `raw` starts in the pack of idx v2 file `index`, or None."""
    with open(index, "rb") as f:
        if f.read(8) != _IDX_MAGIC:
            return None
        fanout = struct.unpack(">256I", f.read(1024))
        count = fanout[255]
        low = fanout[raw[0] - 1] if raw[0] else 0
        high = fanout[raw[0]]
        names = 8 + 1024
        while low < high:
            middle = (low + high) // 2
            f.seek(names + middle * 20)
            found = f.read(20)
            if found == raw:
                f.seek(names + count * 24 + middle * 4)  # after names and CRC32s
                (offset,) = struct.unpack(">I", f.read(4))
                if offset & 0x80000000:  # in the table of 8-byte offsets
                    f.seek(names + count * 28 + (offset & 0x7FFFFFFF) * 8)
                    (offset,) = struct.unpack(">Q", f.read(8))
                return int(offset)
            if found < raw:
                low = middle + 1
            else:
                high = middle
    return None


def _inflate(stored: Path, offset: int, target: Path, *, loose_header: bool) -> bool:
    """Inflate one zlib stream at `offset` of `stored` into `target`, a chunk at a time."""
    with open(stored, "rb") as f:
        f.seek(offset)
        if loose_header:
            size = -1  # read from the inflated `blob <size>\0` header
        else:
            byte = f.read(1)[0]
            kind, size, shift = (byte >> 4) & 7, byte & 15, 4
            while byte & 0x80:
                byte = f.read(1)[0]
                size |= (byte & 0x7F) << shift
                shift += 7
            if kind != _BLOB or size < STREAM_FROM:
                return False  # a delta (or small): libgit2 resolves it
        inflater = zlib.decompressobj()
        written = 0
        header = b""
        with open(target, "wb") as out:
            while not inflater.eof:
                data = inflater.unconsumed_tail or f.read(CHUNK)
                if not data:
                    return False  # truncated
                # max_length bounds memory: 1 MB of zeros inflates to ~1 GB otherwise
                chunk = inflater.decompress(data, CHUNK)
                if size < 0:
                    header += chunk
                    if b"\0" not in header:
                        if len(header) > 64:
                            return False
                        continue
                    head, _, chunk = header.partition(b"\0")
                    kind_name, _, length = head.partition(b" ")
                    if kind_name != b"blob":
                        return False
                    size = int(length)
                    if size < STREAM_FROM:
                        return False
                out.write(chunk)
                written += len(chunk)
        return written == size


def tree_mismatch(repo: pygit2.Repository, tree: pygit2.Tree, directory: Path) -> str | None:
    """The first path where `directory` differs from `tree` (None: it holds exactly the tree).

    Every file is hashed as a git blob (`pygit2.hashfile`, read in chunks by libgit2): a
    file edited in place with its size and mtime restored is caught; so are an added,
    removed or retyped entry, a changed exec bit and a changed symlink target.
    """
    try:
        present = set(os.listdir(directory))
    except OSError as error:
        return f"{directory}: {error.strerror}"
    wanted = {str(entry.name) for entry in tree}
    extra = sorted(present - wanted)
    if extra:
        return f"{directory / extra[0]} is not in the commit"
    for entry in tree:
        path = directory / str(entry.name)
        mode = entry.filemode
        try:
            info = path.lstat()
        except OSError:
            return f"{path} is missing"
        if mode == pygit2.enums.FileMode.TREE:
            inner = repo[entry.id]
            if not stat.S_ISDIR(info.st_mode) or not isinstance(inner, pygit2.Tree):
                return f"{path} is not a folder"
            found = tree_mismatch(repo, inner, path)
            if found:
                return found
        elif mode == pygit2.enums.FileMode.LINK:
            blob = repo[entry.id]
            if not stat.S_ISLNK(info.st_mode) or not isinstance(blob, pygit2.Blob):
                return f"{path} is not a symlink"
            if os.readlink(os.fsencode(path)) != blob.data:
                return f"{path} points elsewhere"
        elif mode == pygit2.enums.FileMode.COMMIT:
            if not stat.S_ISDIR(info.st_mode):
                return f"{path} is not a submodule folder"
        else:
            if not stat.S_ISREG(info.st_mode):
                return f"{path} is not a regular file"
            executable = mode == pygit2.enums.FileMode.BLOB_EXECUTABLE
            if bool(info.st_mode & stat.S_IXUSR) != executable:
                return f"{path} has another exec bit"
            if pygit2.hashfile(str(path)) != entry.id:
                return f"{path} has other content"
    return None
