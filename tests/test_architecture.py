"""The import rules of docs/architecture.md hold (import-linter contracts in pyproject.toml):
boto3 only behind controller.aws and controller.local; the controller never imports the
embedded endpoint; the repository format and packaging never touch the network; the layers
runtime > reconcile > aws | source | packaging > repository > model; plan() is pure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

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


def _functions(folder: str) -> list[tuple[int, str]]:
    found = []
    for path in sorted((ROOT / "controller" / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((length, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return found


@pytest.mark.parametrize("folder", ["reconcile", "aws"])
def test_no_function_of_the_reconcile_and_aws_layers_is_long(folder: str) -> None:
    """Issue 12: `_plan_package` was 147 lines mixing seven concerns and `plan()` 180; a
    function a reader must scroll through hides which rule it applies."""
    longest = sorted(_functions(folder), reverse=True)[:3]
    assert all(length <= 80 for length, _ in longest), longest


def test_nothing_dispatches_by_a_formatted_attribute_name() -> None:
    """Issue 12: apply dispatched with getattr(self, f"_{kind}_{action}"), which mypy cannot
    check and dead-code tools report as unused handlers."""
    offenders = []
    for path in sorted((ROOT / "controller").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.JoinedStr)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_no_class_name_is_defined_twice_outside_the_embedded_endpoint() -> None:
    """Issue 12: two pydantic layers and the stages each had their own `Artifacts`,
    `AssociationSpec` and `Reconciler`: a reader could not tell which one a name meant.
    The embedded endpoint (controller/local) mirrors AWS's own names and is left out."""
    homes: dict[str, list[str]] = {}
    for path in sorted((ROOT / "controller").rglob("*.py")):
        if "local" in path.relative_to(ROOT / "controller").parts[:1]:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                homes.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
