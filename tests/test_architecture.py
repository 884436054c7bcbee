"""The import rules of docs/architecture.md hold (import-linter contracts in pyproject.toml):
boto3 only behind controller.aws and controller.local; the controller never imports the
embedded endpoint; the repository format and packaging never touch the network; the layers
runtime > reconcile > aws | source | packaging > repository > model; plan() is pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)


def test_import_contracts_are_kept() -> None:
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_layers_and_the_pure_plan_are_contracts() -> None:
    """Issue 12: the layers and plan()'s purity are checked by the tool, not only described."""
    result = _lint_imports()
    kept = [line for line in result.stdout.splitlines() if line.endswith(" KEPT")]
    assert any(line.startswith("Layers: runtime > reconcile > aws") for line in kept), kept
    assert any(line.startswith("The plan is pure") for line in kept), kept
