"""The import rules of docs/architecture.md hold (import-linter contracts in pyproject.toml):
boto3 only behind controller.aws and controller.local; the controller never imports the
embedded endpoint; spec and build never touch the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
