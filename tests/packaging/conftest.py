"""Fixtures of the build tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE_REPO = PROJECT / "sample-repo"


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A copy of sample-repo at another path (as another checkout would be)."""
    copy = tmp_path / "checkout" / "sample-repo"
    shutil.copytree(SAMPLE_REPO, copy, symlinks=True)
    return copy
