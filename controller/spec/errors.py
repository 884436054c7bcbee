"""The errors of stage 1: one `SpecError` per problem, all of them together in `SpecErrors`.

The loader collects every problem of a repository in one run (a user fixes them all at
once, not one per attempt) and raises them together, sorted by file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

    def __str__(self) -> str:
        if self.line == 0:  # no position to point at: `:0:0` would only confuse
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class SpecErrors(UserError):
    """Every problem found in one load of a repository, sorted by path, line and column."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        self.errors: list[SpecError] = sorted(set(errors))
        super().__init__("\n".join(str(error) for error in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)
