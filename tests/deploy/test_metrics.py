"""deploy/grafana/ssm-gitops.json and the alert rules query only metrics (and label values)
that a running controller exposes (issue 6).

The names are extracted from every PromQL expression of the dashboard (panels and template
variables) and of deploy/base/prometheusrule.yaml, never listed by hand; the scrape is
`GET /metrics` of a real `ssm-gitops run` process that reconciled sample-repo/ against
the embedded local endpoint.
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
from pathlib import Path
from typing import Any

import pygit2
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.local import LocalAWS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "ssm-gitops.json"
RULES = ROOT / "deploy" / "base" / "prometheusrule.yaml"
METRIC = re.compile(r"\bssm_gitops_[a-z0-9_]+\b")
# `name{label="v"}`, `name{label=~"a|b"}`: equality and regex matchers right after a name.
SELECTOR = re.compile(r"\b(ssm_gitops_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
# Labels Prometheus adds to every scraped series (target labels), not the controller.
TARGET_LABELS = {"namespace", "job", "instance", "pod", "service", "endpoint", "container"}
# Series names each metric type exposes (Prometheus text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


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


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _exposed_series(text: str) -> dict[str, Any]:
    """Every series name the scrape exposes -> its family (with or without samples)."""
    exposed: dict[str, Any] = {}
    for family in _families(text).values():
        for suffix in SUFFIXES.get(family.type, ("",)):
            exposed[family.name + suffix] = family
    return exposed


def test_the_queries_use_the_contract_metrics() -> None:
    """The extraction finds what it should (guards the regular expression itself)."""
    used = {name for expr in EXPRESSIONS for name in METRIC.findall(expr)}
    assert {
        "ssm_gitops_reconcile_total",
        "ssm_gitops_reconcile_duration_seconds_bucket",
        "ssm_gitops_last_success_timestamp_seconds",
        "ssm_gitops_resources",
        "ssm_gitops_aws_api_calls_total",
        "ssm_gitops_association_targets",
        "ssm_gitops_config_valid",
        "ssm_gitops_prune_blocked_total",
    } <= used


def test_every_metric_queried_exists_in_a_scrape(scrape: str) -> None:
    exposed = _exposed_series(scrape)
    missing = sorted({name for expr in EXPRESSIONS for name in METRIC.findall(expr)} - set(exposed))
    assert missing == []


def test_every_label_and_value_matched_exists_in_the_scrape(scrape: str) -> None:
    """`result="failure"`, `state=~"drifted|failed"`: the label exists on the metric, and each
    value matched for equality is one the controller reports (its series start at zero)."""
    exposed = _exposed_series(scrape)
    problems: list[str] = []
    for expr in EXPRESSIONS:
        for name, matchers in SELECTOR.findall(expr):
            family = exposed.get(name)
            if family is None or not family.samples:
                continue
            labels: dict[str, set[str]] = {}
            for sample in family.samples:
                for key, value in sample.labels.items():
                    labels.setdefault(key, set()).add(value)
            for label, op, value in MATCHER.findall(matchers):
                if label in TARGET_LABELS:
                    continue
                if label not in labels:
                    problems.append(f"{name}: no label {label!r}")
                elif op in ("=", "=~", "!="):
                    wanted = value.split("|") if op == "=~" else [value]
                    problems.extend(
                        f"{name}: {label}={v!r} never reported (has {sorted(labels[label])})"
                        for v in wanted
                        if v not in labels[label]
                    )
    assert problems == []


def test_grouping_labels_exist(scrape: str) -> None:
    """`sum by (kind, state)`: every grouping label is a label of the metric."""
    exposed = _exposed_series(scrape)
    problems = []
    for expr in EXPRESSIONS:
        for by, rest in re.findall(r"by \(([^)]*)\)\s*\(([^()]*(?:\([^()]*\))?[^()]*)\)", expr):
            for name in METRIC.findall(rest):
                family = exposed.get(name)
                if family is None or not family.samples:
                    continue
                have = {k for s in family.samples for k in s.labels}
                for label in (x.strip() for x in by.split(",")):
                    if label and label not in TARGET_LABELS | {"le"} | have:
                        problems.append(f"{name}: grouped by {label!r}, has {sorted(have)}")
    assert problems == []
