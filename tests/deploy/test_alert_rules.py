"""The alert rules of deploy/base/prometheusrule.yaml, checked by Prometheus's own tool
(issue 16): `promtool check rules` on the shipped groups, and `promtool test rules` on
tests/deploy/alert_tests.yaml, where every alert is made to fire from synthetic series,
shown quiet on healthy ones and, where it has a `for:`, not firing before `for:` is over.

The PrometheusRule's `spec` is a Prometheus rule file (`groups:`); the unit tests compare
the `summary` annotation only (the others are prose; `check rules` checks their templates).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.prometheus import tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "base" / "prometheusrule.yaml"
UNIT_TESTS = Path(__file__).with_name("alert_tests.yaml")
ALERTS_DOC = ROOT / "docs" / "alerts.md"


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(RULES.read_text())["spec"]
    return spec


def _alerts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule]


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _run_unit_tests(tmp_path: Path, spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of alert_tests.yaml against `spec` (summaries only)."""
    for rule in _alerts(spec):
        rule["annotations"] = {"summary": rule["annotations"]["summary"]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "alert_tests.yaml").write_text(UNIT_TESTS.read_text())
    return _promtool("test", "rules", "alert_tests.yaml", cwd=tmp_path)


def _unit_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    return tests


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def test_promtool_checks_the_shipped_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_spec()))
    checked = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alerts(_spec()))} rules found" in checked.stdout


def test_promtool_check_can_fail(tmp_path: Path) -> None:
    """Guards the check: a bad template and bad PromQL are refused."""
    spec = _spec()
    _alerts(spec)[0]["annotations"]["summary"] = "{{ $labels.namespace "
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    assert _promtool("check", "rules", "rules.yaml", cwd=tmp_path).returncode != 0
    spec = _spec()
    _alerts(spec)[0]["expr"] = "sum by (job) (increase(ssm_gitops_reconcile_total[15m]) > 0"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    assert _promtool("check", "rules", "rules.yaml", cwd=tmp_path).returncode != 0


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests(tmp_path: Path) -> None:
    result = _run_unit_tests(tmp_path, _spec())
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_a_quiet_and_a_for_edge_case() -> None:
    """Each alert of the rules appears in alert_tests.yaml with an evaluation that expects
    it firing and one that expects it quiet; with a `for:`, one that expects it quiet at
    most one evaluation interval before the first that expects it firing (the edge)."""
    firing: dict[str, list[int]] = {}
    quiet: dict[str, list[int]] = {}
    for test in _unit_tests():
        for case in test["alert_rule_test"]:
            seen = firing if case["exp_alerts"] else quiet
            seen.setdefault(case["alertname"], []).append(_seconds(case["eval_time"]))
    problems = []
    for alert in _alerts(_spec()):
        name = alert["alert"]
        if name not in firing or name not in quiet:
            problems.append(f"{name}: needs a case that fires and one that does not")
            continue
        if "for" in alert and not any(0 < f - q <= 60 for f in firing[name] for q in quiet[name]):
            problems.append(f"{name}: no quiet case one minute before a firing one (for:)")
    assert problems == []


def test_the_unit_tests_catch_a_wrong_for(tmp_path: Path) -> None:
    """Guards the unit tests: with every `for:` dropped, the edge cases fail."""
    spec = _spec()
    for rule in _alerts(spec):
        rule.pop("for", None)
    result = _run_unit_tests(tmp_path, spec)
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+)", result.stdout + result.stderr))
    assert failed == {a["alert"] for a in _alerts(_spec()) if "for" in a}


def test_every_alert_names_what_to_look_at_next() -> None:
    """A summary, a description (the next step) and a runbook section in docs/alerts.md."""
    doc = ALERTS_DOC.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", doc, re.M)
    }
    for alert in _alerts(_spec()):
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        runbook = annotations["runbook"]
        assert runbook == f"docs/alerts.md#{alert['alert'].lower()}"
        assert runbook.split("#")[1] in anchors, f"docs/alerts.md has no section {runbook}"


def test_the_alerts_table_lists_every_alert_with_its_metric_for_and_severity() -> None:
    """docs/alerts.md's table is complete: one row per alert of the rules, in their order,
    with its `for:` (or "at once"), its severity and the metrics its expression reads (an
    alert added without its row, or a `for:` changed without the doc, fails here)."""
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in ALERTS_DOC.read_text().splitlines()
        if line.startswith("| [`SsmGitops")
    ]
    alerts = _alerts(_spec())
    assert [re.sub(r"^\[`(\w+)`\].*", r"\1", row[0]) for row in rows] == [
        a["alert"] for a in alerts
    ]
    for row, alert in zip(rows, alerts, strict=True):
        assert row[0] == f"[`{alert['alert']}`](#{alert['alert'].lower()})", row
        metrics = set(re.findall(r"\bssm_gitops_\w+", alert["expr"]))
        assert set(re.findall(r"`(ssm_gitops_\w+)", row[1])) == metrics, row
        assert row[2] == alert.get("for", "at once"), row
        assert row[3] == alert["labels"]["severity"], row


@pytest.mark.parametrize(
    "alert",
    [
        "SsmGitopsPassErrors",
        "SsmGitopsRolloutFailed",
        "SsmGitopsRolloutStuck",
        "SsmGitopsDriftEventsFailing",
        "SsmGitopsDriftEventsNotArriving",
        "SsmGitopsLocationUnreadable",
        "SsmGitopsAssociationsOverlap",  # issue 13's classic mistake: it had no alert
    ],
)
def test_the_alerts_issue_16_asks_for(alert: str) -> None:
    assert alert in {a["alert"] for a in _alerts(_spec())}
