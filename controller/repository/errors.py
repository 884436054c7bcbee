"""The errors of stage 1: one `SpecError` per problem, all of them together in `SpecErrors`.

The loader collects every problem of a repository in one run (a user fixes them all at
once, not one per attempt) and raises them together, sorted by file and line, except that
a file that could not be read (broken YAML, not a regular file, ...) comes first.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.errors import UserError


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem at one place: `str()` is `path:line:col: message` (1-based line/col).

    `message` says what is wrong and what to do. `line`/`col` are 0 when the problem has no
    position inside the file (e.g. the path is not a folder); `str()` is then `path: message`.
    """

    path: str
    line: int
    col: int
    message: str
    # A file that could not be read (in full): listed before every other error, since the
    # others may follow from it (a package it defines looks undefined).
    first: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        if self.line == 0:  # no position to point at: `:0:0` would only confuse
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


# OSError numbers that a commit's own content causes: a symlink loop, an over-long name, a
# path running through a file or naming a folder. Any other errno met while reading what
# git wrote (EIO, ENOSPC, EACCES, ENOMEM, ...) is the machine's: the controller retries
# the commit at the next poll instead of marking it invalid (controller/runtime/loop.py).
CONTENT_ERRNOS = frozenset({errno.ELOOP, errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR})


def caused_by_content(error: OSError) -> bool:
    """True when `error` says something about the files read, not about the machine."""
    return error.errno in CONTENT_ERRNOS


class SpecErrors(UserError):
    """Every problem found in one load of a repository: files that could not be read (in
    full) first, then sorted by path, line and column."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        self.errors: list[SpecError] = sorted(set(errors), key=lambda e: (not e.first, e))
        super().__init__("\n".join(str(error) for error in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class UnreadableFiles(SpecErrors):
    """A load that could not read some files or folders because of the machine (an I/O
    error, a full disk, a permission), not because of what the commit holds.

    `errors` is every problem found (`validate` shows them all, as for any SpecErrors);
    `unread` those the machine caused. The controller treats the whole load as a source
    failure and tries the same commit again at the next poll: nothing in it is judged.
    """

    def __init__(self, errors: Iterable[SpecError], unread: Iterable[SpecError]) -> None:
        self.unread: list[SpecError] = sorted(set(unread))
        super().__init__([*errors, *self.unread])
