"""The controller's cache directory: claimed by one process, cleaned of half-written work.

Sits under `controller.source.git`: before a `GitSource` clones, fetches or materialises
anything, it claims its cache directory here. A second process on the same directory would
fetch into the same clone and rename trees under the other's feet, so it is refused with one
line (an fcntl lock on `<cache>/lock`, released by the kernel when the holder exits, even
after a crash). Whatever a killed process left half-done (`.tmp-*` trees, `.clone-*`
clones) is removed once the directory is ours.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from pathlib import Path

from controller.errors import UserError

# Lock file descriptors held for the life of the process, by resolved cache directory.
# POSIX record locks belong to the process, and closing ANY descriptor of the file drops
# them, so each directory is opened exactly once and never closed.
_HELD: dict[Path, int] = {}


class CacheError(UserError):
    """The cache directory cannot be used (a file, not writable, or another process's)."""


def claim(cache_dir: Path, named: str | None = None, flag: str = "--cache-dir") -> None:
    """Make `cache_dir` ours: create it, lock it, remove what an earlier process left half-done.

    `named` is how the user gave the directory, for messages (`--cache-dir ~/cache`,
    `SSM_GITOPS_CACHE_DIR=/srv/cache`): the git cache is a folder inside what they gave."""
    named = named or f"{flag} {cache_dir}"
    key = Path(os.path.abspath(cache_dir))
    if key in _HELD:
        return
    for path in (key, *key.parents):
        if path.exists():
            if not path.is_dir():
                shown = "" if path == key else f" ({path} is a file)"
                raise CacheError(
                    f"{named}: is not a folder{shown}: remove the file or give another {flag} "
                    "(SSM_GITOPS_CACHE_DIR)"
                )
            break
    try:
        key.mkdir(parents=True, exist_ok=True)
        fd = os.open(key / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise CacheError(
            f"{named}: cannot use it: {error.strerror} "
            f"(make it writable by this user or give another {flag} (SSM_GITOPS_CACHE_DIR))"
        ) from error
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = ""
        with contextlib.suppress(OSError):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        if error.errno in (errno.EACCES, errno.EAGAIN):
            raise CacheError(
                f"{named}: in use by another ssm-gitops process"
                + (f" (pid {holder})" if holder else "")
                + f": give each controller its own {flag} (SSM_GITOPS_CACHE_DIR)"
            ) from error
        raise CacheError(f"{named}: cannot lock it: {error.strerror}") from error
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # the pid is only shown to the next process; the lock is what counts
    _HELD[key] = fd
    clean_partial(key)


def clean_partial(cache_dir: Path) -> None:
    """Remove half-written trees and clones (a killed process, a full disk)."""
    for parent, prefixes in (
        (cache_dir / "trees", (".tmp-",)),
        (cache_dir / "repos", (".clone-",)),
    ):
        try:
            children = list(parent.iterdir())
        except OSError:
            continue
        for child in children:
            if child.name.startswith(prefixes):
                remove(child)


def remove(path: Path) -> None:
    """Delete a file or tree we wrote (missing is fine: someone else cleaned it)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
