"""`ssm-gitops validate`: the summary line, exit codes, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.repository.conftest import PROJECT


def validate(path: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "validate", path],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_valid_repository_prints_one_summary_line() -> None:
    result = validate("sample-repo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sample-repo: 3 packages, 6 versions, 4 associations: valid\n"
    assert result.stderr == ""


def test_a_missing_folder_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = validate(str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr == f"{tmp_path / 'nope'}: no such directory: give the repository folder\n"


def test_a_file_given_for_the_folder_says_so_and_names_the_folder() -> None:
    """Regression: `validate sample-repo/settings.yaml` said `:0:0: no such directory`."""
    result = validate("sample-repo/settings.yaml")
    assert result.returncode == 1
    assert result.stderr == (
        "sample-repo/settings.yaml: is a file, not a folder: give the repository folder "
        "(sample-repo)\n"
    )
