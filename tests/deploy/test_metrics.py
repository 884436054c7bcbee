"""deploy/grafana/ssm-gitops.json and the alert rules query only metrics (and label values)
that a running controller exposes (issue 6).

Every PromQL expression of the dashboard (panels and template variables) and of
deploy/base/prometheusrule.yaml is parsed with a real PromQL parser (promql-parser, the
Rust parser's Python binding); metric names, label matchers and grouping labels come from
the syntax tree, never from a hand-made list. The scrape is `GET /metrics` of a real
`ssm-gitops run` process that reconciled sample-repo/ against the embedded local endpoint.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pygit2
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.local import LocalAWS
from tests.deploy import promql
from tests.deploy.features import FEATURES, defined, switched_on_by
from tests.deploy.promql import LABEL_VALUES, TARGET_LABELS, Use, exposed_series, labels_of

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "ssm-gitops.json"
RULES = ROOT / "deploy" / "base" / "prometheusrule.yaml"
# Grafana's template variables, replaced by values Prometheus would see.
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "30s", "$__range": "1h"}


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and "ssm_gitops_" in query:
            found.append(query)
    return found


def _rule_expressions() -> list[str]:
    rule = yaml.safe_load(RULES.read_text())
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


EXPRESSIONS = _dashboard_expressions() + _rule_expressions()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:  # not listening yet
        return 0, ""


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`/metrics` of `ssm-gitops run` after its first completed pass over sample-repo/."""
    work = tmp_path_factory.mktemp("metrics") / "repo"
    shutil.copytree(ROOT / "sample-repo", work)
    repo = pygit2.init_repository(str(work), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    signature = pygit2.Signature("ssm-gitops test", "test@ssm-gitops.invalid")
    repo.create_commit("HEAD", signature, signature, "sample-repo", repo.index.write_tree(), [])
    bucket = re.search(r"bucket:\s*(\S+)", (work / "settings.yaml").read_text())
    assert bucket
    port = _free_port()
    with LocalAWS() as aws:
        aws.client("s3").create_bucket(Bucket=bucket.group(1))
        log = (work.parent / "controller.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller",
                "run",
                "--repo",
                str(work),
                "--listen",
                f"127.0.0.1:{port}",
                "--cache-dir",
                str(work.parent / "cache"),
            ],
            cwd=ROOT,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(work.parent),
                "AWS_ENDPOINT_URL": aws.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 180
            while _get(f"http://127.0.0.1:{port}/readyz")[0] != 200:
                assert process.poll() is None, (work.parent / "controller.log").read_text()
                assert time.monotonic() < deadline, "the controller never became ready"
                time.sleep(0.5)
            status, body = _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            yield body
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def _exposed_series(text: str) -> dict[str, Any]:
    return exposed_series({f.name: f for f in text_string_to_metric_families(text)})


def _all_uses() -> list[Use]:
    """Uses in every expression that parses (test_every_query_is_valid_promql names the rest)."""
    uses: list[Use] = []
    for expr in EXPRESSIONS:
        try:
            uses.extend(promql.uses(expr, GRAFANA_VARIABLES))
        except ValueError:
            continue
    return uses


USES = _all_uses()


def test_every_query_is_valid_promql() -> None:
    assert len(EXPRESSIONS) >= 20
    invalid = []
    for expr in EXPRESSIONS:
        if LABEL_VALUES.match(expr.strip()):
            continue
        try:
            promql.parse(expr, GRAFANA_VARIABLES)
        except ValueError as error:
            invalid.append(f"{error}: {expr}")
    assert invalid == []


def test_the_queries_use_the_contract_metrics() -> None:
    """The extraction finds what it should (guards the extraction itself)."""
    assert {
        "ssm_gitops_reconcile_total",
        "ssm_gitops_reconcile_duration_seconds_bucket",
        "ssm_gitops_last_success_timestamp_seconds",
        "ssm_gitops_revision_info",
        "ssm_gitops_resources",
        "ssm_gitops_actions_total",
        "ssm_gitops_aws_api_calls_total",
        "ssm_gitops_association_targets",
        "ssm_gitops_config_valid",
        "ssm_gitops_prune_blocked_total",
        "ssm_gitops_git_fetch_duration_seconds_bucket",
        "ssm_gitops_git_fetch_failures_total",
    } <= {use.metric for use in USES}


def test_every_metric_queried_exists_in_a_scrape(scrape: str) -> None:
    """Except those a flag switches on (this scrape runs without it;
    tests/e2e/test_prometheus.py has them): tests/deploy/features.py."""
    exposed = _exposed_series(scrape)
    queried = {
        use.metric
        for use in USES
        if switched_on_by(use.metric) is None
    }
    assert sorted(queried - set(exposed)) == []


def test_every_feature_metric_is_defined() -> None:
    """Every feature is merged: each metric the dashboard and alerts were built on for it
    is defined in controller/ (no query is left unchecked waiting for a feature)."""
    assert [m for metrics in FEATURES.values() for m in metrics if not defined(m)] == []


def test_every_label_and_value_matched_exists_in_the_scrape(scrape: str) -> None:
    """`result="failure"`, `state=~"drifted|failed"`, `reason!~"load|signature"`: the label
    exists on the metric, and each value matched is one the controller reports (its series
    start at zero). Metrics without samples yet (rollouts before any association overview)
    are skipped here: tests/e2e/test_prometheus.py checks them on a controller that has
    every feature on."""
    exposed = _exposed_series(scrape)
    problems: list[str] = []
    for use in USES:
        family = exposed.get(use.metric)
        if family is None or not family.samples:
            continue
        problems.extend(promql.matcher_problems(replace(use, grouped_by=()), family))
    assert problems == []


def test_grouping_labels_exist(scrape: str) -> None:
    """`sum by (kind, state) (...)`: every grouping label is a label of the metric inside."""
    exposed = _exposed_series(scrape)
    problems: list[str] = []
    for use in USES:
        family = exposed.get(use.metric)
        if family is None or not family.samples:
            continue
        have = set(labels_of(family)) | TARGET_LABELS | {"le"}
        problems.extend(
            f"{use.metric}: grouped by {label!r}, has {sorted(have - TARGET_LABELS)}"
            for label in use.grouped_by
            if label not in have
        )
    assert problems == []
