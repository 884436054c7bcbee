"""Guards tests/deploy/promql.py, the selector checks of test_metrics.py and
tests/e2e/test_prometheus.py: a misspelt label value (`=`, `=~` or `!~`), a label the
metric does not have and a grouping label it does not have are each reported."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy import promql

SCRAPE = """# TYPE ssm_gitops_rollout_state gauge
ssm_gitops_rollout_state{package="tools",state="failed"} 0
ssm_gitops_rollout_state{package="tools",state="rolled_back"} 1
# TYPE ssm_gitops_pass_errors_total counter
ssm_gitops_pass_errors_total{reason="load"} 0
ssm_gitops_pass_errors_total{reason="signature"} 0
"""


def _problems(expr: str) -> list[str]:
    families = {f.name: f for f in text_string_to_metric_families(SCRAPE)}
    exposed = promql.exposed_series(families)
    found: list[str] = []
    for use in promql.uses(expr, {}):
        found.extend(promql.matcher_problems(use, exposed[use.metric]))
    return found


def test_values_and_labels_the_controller_exports_pass() -> None:
    assert (
        _problems('max by (package) (ssm_gitops_rollout_state{state=~"failed|rolled_back"})') == []
    )
    assert (
        _problems('sum(increase(ssm_gitops_pass_errors_total{reason!~"load|signature"}[5m]))') == []
    )


def test_a_misspelt_value_is_reported_for_every_matcher() -> None:
    assert _problems('ssm_gitops_rollout_state{state="rolledback"}')
    assert _problems('ssm_gitops_rollout_state{state=~"failed|rolledback"}')
    assert _problems('ssm_gitops_pass_errors_total{reason!~"load|signatures"}')


def test_a_missing_label_or_grouping_label_is_reported() -> None:
    assert _problems('ssm_gitops_rollout_state{phase="failed"}')
    assert _problems("max by (region) (ssm_gitops_rollout_state)")
    assert _problems('ssm_gitops_rollout_state{state=~"fail.*"}')  # not a plain a|b list
