"""What a PromQL expression asks of the metrics: each selector's metric, label matchers and
the labels it is grouped by, from the syntax tree of a real PromQL parser (promql-parser,
the Rust parser's Python binding), never from a hand-made list. Used by test_metrics.py
(a plain scrape) and tests/e2e/test_prometheus.py (a controller with every feature on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import promql_parser

# Grafana's `label_values(metric, label)` variable query is not PromQL.
LABEL_VALUES = re.compile(r"^label_values\((\w+),\s*(\w+)\)$")
# Labels Prometheus adds to every scraped series (target labels), not the controller.
TARGET_LABELS = {"namespace", "job", "instance", "pod", "service", "endpoint", "container"}
# Series names each metric type exposes (Prometheus text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


@dataclass(frozen=True)
class Use:
    """One metric as a query uses it: matchers, and the labels it is grouped by."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)
    grouped_by: tuple[str, ...]


def parse(expr: str, variables: dict[str, str]) -> promql_parser.Expr:
    for variable, value in variables.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def uses(expr: str, variables: dict[str, str]) -> list[Use]:
    """Every `ssm_gitops_` selector of `expr` (Grafana `variables` substituted first)."""
    found = LABEL_VALUES.match(expr.strip())
    if found:
        return [Use(found.group(1), (), ())]
    result: list[Use] = []
    grouping: list[tuple[str, ...]] = []

    def enter(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            modifier = node.modifier
            by = modifier is not None and modifier.type == promql_parser.AggModifierType.By
            grouping.append(tuple(modifier.labels) if modifier is not None and by else ())
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple(
                (m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers
            )
            name = node.name or next((v for k, _, v in matchers if k == "__name__"), "")
            result.append(Use(name, matchers, tuple(x for g in grouping for x in g)))

    def leave(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            grouping.pop()

    promql_parser.walk(parse(expr, variables), enter, leave)
    return [use for use in result if use.metric.startswith("ssm_gitops_")]


def exposed_series(families: dict[str, Any]) -> dict[str, Any]:
    """Every series name a scrape exposes -> its family (with or without samples)."""
    exposed: dict[str, Any] = {}
    for family in families.values():
        for suffix in SUFFIXES.get(family.type, ("",)):
            exposed[family.name + suffix] = family
    return exposed


def labels_of(family: Any) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = {}
    for sample in family.samples:
        for key, value in sample.labels.items():
            labels.setdefault(key, set()).add(value)
    return labels


# A regex matcher's value the checks can read as a list of values: `a|b|c`, nothing else.
_ALTERNATION = re.compile(r"^[A-Za-z0-9_:.-]+(\|[A-Za-z0-9_:.-]+)*$")


def matcher_problems(use: Use, family: Any) -> list[str]:
    """`result="failure"`, `state=~"failed|rolled_back"`, `reason!~"load|signature"`: the
    label exists on the metric and each value named (for =, !=, =~ and !~) is one the
    controller reports; a grouping label is one of the metric's (or a target label)."""
    labels = labels_of(family)
    problems: list[str] = []
    for label, op, value in use.matchers:
        if label in TARGET_LABELS or label == "__name__":
            continue
        if label not in labels:
            problems.append(f"{use.metric}: no label {label!r} (has {sorted(labels)})")
            continue
        if op in ("Re", "NotRe") and not _ALTERNATION.match(value):
            problems.append(f"{use.metric}: {label}~{value!r} is not a plain a|b list")
            continue
        wanted = value.split("|") if op in ("Re", "NotRe") else [value]
        problems.extend(
            f"{use.metric}: {label}={v!r} never reported (has {sorted(labels[label])})"
            for v in wanted
            if v not in labels[label]
        )
    have = set(labels) | TARGET_LABELS | {"le"}
    problems.extend(
        f"{use.metric}: grouped by {label!r}, has {sorted(have - TARGET_LABELS)}"
        for label in use.grouped_by
        if label not in have
    )
    return problems
