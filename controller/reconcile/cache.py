"""The lasting observe cache: what a pass learned about live SSM, kept on disk between processes.

Stage: observe. The `Observer` (`controller.reconcile.observe`) keeps its caches in memory for
the life of a `Reconciler`; this store keeps them in the cache directory
(`<cache-dir>/observe/`) so that `plan` in a fresh process, `apply`, and a restarted `run`
start where the last process stopped (contract: Budgets). Sections, each a map of string key
to a JSON value the observe module that owns it encodes and checks:

    hashes    a published version's content hash by (account, region, document, number,
              VersionName, created): AWS never changes it (a version is immutable), kept for good
    specs     an association's fields by (account, region, id, AssociationVersion): an
              AssociationVersion never changes either (every update makes a new one); also
              from apply's own Create/UpdateAssociation answers
    owners    an association's owner and source tags, with when they were read (or sent, by
              the create that made it): a hint for a resync only; apply reads them afresh
              right before any change
    packages  a package's versions and default, keyed by what its ListDocuments row showed,
              with when they were read (trusted for a short while, see observe/package.py)

Safe by construction rather than by trust:
- bounded: at most `max_entries` per section (the oldest written go first) and `max_bytes` on
  disk; a bigger file is not read;
- written atomically (a temporary file in the same folder, fsync, rename), merged with what
  other processes wrote since (under a short `flock` on `observe.lock`), so `plan` and `run`
  can share one cache directory: readers take no lock, and see an old or a new file, never a
  half-written one;
- a truncated, corrupt or hostile file (wrong types, huge, deeply nested) is ignored and
  rebuilt by the next save; so is a file that is not a regular file of this user that only
  this user may write (a symlink, a FIFO, another user's file: the folder may be shared);
  an entry that does not decode is a miss. Never a traceback: a cache that cannot be read
  or written costs AWS calls, nothing else (one log line).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SECTIONS", "LastingStore"]

log = logging.getLogger(__name__)

SECTIONS = ("hashes", "specs", "owners", "packages")
FORMAT = 1
MAX_ENTRIES = 100_000  # per section: ~2,000 packages x 25 versions in each of 2 regions
MAX_BYTES = 64 * 1024 * 1024
LOCK_WAIT_SECONDS = 5.0


def store_path(cache_dir: Path, owner: str, source: str) -> Path:
    """One file per owner and source: ownership and package entries depend on both."""
    digest = hashlib.sha256(f"{owner}\n{source}".encode()).hexdigest()[:16]
    return cache_dir / "observe" / f"observe-{digest}.json"


class LastingStore:
    """A bounded map per section, loaded from and saved to one JSON file (or memory only)."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        # What this process wrote or dropped since the last save: merged over the disk's.
        self._written: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        self._dropped: dict[str, set[str]] = {section: set() for section in SECTIONS}
        self._warned = False
        if path is not None:
            self._data = self._read()

    # -- entries ------------------------------------------------------------------------

    def get(self, section: str, key: str) -> Any:
        with self._lock:
            return self._data[section].get(key)

    def put(self, section: str, key: str, value: Any) -> None:
        with self._lock:
            entries = self._data[section]
            entries.pop(key, None)  # re-inserted last: the newest entry
            entries[key] = value
            self._written[section][key] = value
            self._dropped[section].discard(key)
            self._trim(entries)

    def drop(self, section: str, key: str) -> None:
        with self._lock:
            self._data[section].pop(key, None)
            self._written[section].pop(key, None)
            self._dropped[section].add(key)

    def keys(self, section: str) -> list[str]:
        with self._lock:
            return list(self._data[section])

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._data.values())

    def _trim(self, entries: dict[str, Any]) -> None:
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]  # dicts keep insertion order: the oldest

    # -- disk ---------------------------------------------------------------------------

    def save(self) -> None:
        """Merge what this process learned into the file; never raises."""
        if self.path is None:
            return
        with self._lock:
            written = {s: dict(v) for s, v in self._written.items()}
            dropped = {s: set(v) for s, v in self._dropped.items()}
        if not any(written.values()) and not any(dropped.values()):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path.parent / "observe.lock"):
                merged = self._read()  # what others saved since we loaded
                for section in SECTIONS:
                    entries = merged[section]
                    for key in dropped[section]:
                        entries.pop(key, None)
                    for key, value in written[section].items():
                        entries.pop(key, None)
                        entries[key] = value
                    self._trim(entries)
                self._write(merged)
        except OSError as error:
            self._warn(f"cannot write the observe cache {self.path}: {error.strerror or error}")
            return
        with self._lock:
            for section in SECTIONS:  # keep what others learned too
                for key, value in merged[section].items():
                    self._data[section].setdefault(key, value)
                self._written[section] = {
                    k: v for k, v in self._written[section].items() if written[section].get(k) != v
                }
                self._dropped[section] -= dropped[section]

    def _read(self) -> dict[str, dict[str, Any]]:
        empty: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        assert self.path is not None
        try:
            raw = _read_own(self.path, self.max_bytes + 1)
        except FileNotFoundError:
            return empty
        except OSError as error:
            self._warn(f"cannot read the observe cache {self.path}: {error.strerror or error}")
            return empty
        if raw is None:
            self._warn(
                f"the observe cache {self.path} is not a regular file of this user that only "
                "this user may write: ignored (remove it; check who else writes --cache-dir)"
            )
            return empty
        if len(raw) > self.max_bytes:
            self._warn(f"the observe cache {self.path} is over {self.max_bytes} bytes: ignored")
            return empty
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # truncated, corrupt, or nested to blow the stack
            self._warn(f"the observe cache {self.path} is not valid JSON: ignored, rebuilt")
            return empty
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return empty
        out = empty
        for section in SECTIONS:
            entries = document.get(section)
            if isinstance(entries, dict):
                # Keys must be text; values are checked by whoever decodes them.
                kept = {k: v for k, v in entries.items() if isinstance(k, str)}
                out[section] = dict(list(kept.items())[-self.max_entries :])
        return out

    def _write(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        assert self.path is not None
        sections = {section: dict(data[section]) for section in SECTIONS}
        text = _dump(sections)
        while len(text) > self.max_bytes and any(sections.values()):
            for entries in sections.values():  # halve every section, oldest first
                for key in list(entries)[: (len(entries) + 1) // 2]:
                    del entries[key]
            text = _dump(sections)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)  # readers see the old file or the new one, whole
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _warn(self, message: str) -> None:
        if not self._warned:  # one line per process, not one per pass
            self._warned = True
            log.warning("%s (costs AWS reads, nothing else)", message)


def _read_own(path: Path, limit: int) -> bytes | None:
    """At most `limit` bytes of `path`, or None when it is not a regular file owned by this
    user and writable by no one else. Without following a symlink (O_NOFOLLOW) and without
    waiting on a FIFO (O_NONBLOCK): the folder may be shared and the file name is predictable,
    and a forged `hashes` entry would pass different content off as git's."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink
            return None
        raise
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return None
        return file.read(limit)


def _dump(sections: Mapping[str, Mapping[str, Any]]) -> str:
    return json.dumps({"format": FORMAT, **sections}, separators=(",", ":"))


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    """An exclusive flock on `path` for the length of one save (others wait, at most a few
    seconds: a save that cannot get it gives up, the cache is only a cache)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() > deadline:
                    raise OSError(errno.EAGAIN, "another process holds its lock") from error
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the flock
