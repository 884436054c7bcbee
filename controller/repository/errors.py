"""The errors of stage 1: one `SpecError` per problem, all of them together in `SpecErrors`.

The loader collects every problem of a repository in one run (a user fixes them all at
once, not one per attempt) and raises them together, sorted by file and line, except that
a file that could not be read (broken YAML, not a regular file, ...) comes first.
"""

from __future__ import annotations

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


class SpecErrors(UserError):
    """Every problem found in one load of a repository: files that could not be read (in
    full) first, then sorted by path, line and column."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        self.errors: list[SpecError] = sorted(set(errors), key=lambda e: (not e.first, e))
        super().__init__("\n".join(str(error) for error in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)
