"""Each resource kind has one name under the three stages that touch AWS state (issue 12):
`controller.reconcile.observe.<kind>`, `controller.reconcile.kinds.<kind>` (plan, pure) and
`controller.reconcile.apply.<kind>`, as docs/reconcile.md's table says."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("package", "version", "sharing", "association")
STAGES = ("observe", "kinds", "apply")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_observed_planned_and_applied_under_its_name(kind: str) -> None:
    """Bug guarded: observing was one module (controller/reconcile/observe.py) for every
    kind, so a reader found plan and apply per kind but not observe."""
    for stage in STAGES:
        module = importlib.import_module(f"controller.reconcile.{stage}.{kind}")
        assert module.__doc__, f"{module.__name__} opens with no docstring"


def test_the_layout_table_names_every_kind_module() -> None:
    """docs/reconcile.md shows the three-way layout, one row per kind."""
    text = (ROOT / "docs" / "reconcile.md").read_text(encoding="utf-8")
    for kind in KINDS:
        row = re.search(rf"^\| {kind} \|.*$", text, re.MULTILINE)
        assert row, f"no row for {kind}"
        for stage in STAGES:
            assert f"`{stage}/{kind}.py`" in row.group(0), (kind, stage)


def test_no_function_in_the_reconcile_and_aws_layers_is_over_80_lines() -> None:
    """Issue 12: no function in the reconcile and AWS layers over about 80 lines."""
    long = []
    for folder in ("reconcile", "aws"):
        for path in sorted((ROOT / "controller" / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > 80:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long, long
