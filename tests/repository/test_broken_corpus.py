"""The corpus of broken repositories: each must produce exactly its expected lines.

Every folder under `broken/` holds a tiny repository (`repo/`) and `expected.txt`, the
exact `path:line:col: message` lines a user sees (paths relative to the repository, as
the controller shows them for a git checkout and as `validate .` prints them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.repository import SpecErrors, load_repository

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(path.name for path in BROKEN.iterdir() if path.is_dir())
PROJECT = Path(__file__).resolve().parents[2]
# The real CLI runs on a third of the corpus (each run starts a Python process), always
# including the cases whose files are unusual (binary, symlink, broken YAML).
CLI_CASES = sorted(
    set(CASES[::3])
    | {"not-utf8", "source-symlink-outside", "broken-yaml", "many-errors-in-one-run"}
    | {"syntax-error-comes-first", "version-name-path-like", "zip-name-wildcard-spellings"}
)


def expected_lines(case: str) -> list[str]:
    return (BROKEN / case / "expected.txt").read_text().splitlines()


def test_the_corpus_covers_at_least_thirty_mistakes() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_load_repository_reports_exactly_the_expected_errors(case: str) -> None:
    with pytest.raises(SpecErrors) as caught:
        load_repository(BROKEN / case / "repo", display_prefix="")
    assert [str(error) for error in caught.value.errors] == expected_lines(case)


@pytest.mark.parametrize("case", CLI_CASES)
def test_validate_command_prints_the_lines_and_no_traceback(case: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller", "validate", "."],
        cwd=BROKEN / case / "repo",
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected_lines(case)
