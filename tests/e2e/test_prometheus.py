"""The dashboard and the alerts against a real Prometheus (issue 16).

Real processes: the embedded local AWS endpoint (with a simulated fleet of one instance,
sandboxed by bubblewrap, which scripts/setup installs), `ssm-gitops run` on a local git
repository (two packages, two associations), and Debian's `prometheus` server on a
loopback port. Its
configuration is the shipped ServiceMonitor's (same path, the labels the Prometheus
Operator adds for it: namespace, service, endpoint, pod, job), with the interval scaled
down from 30 s to 1 s, and its rule file is the PrometheusRule's groups with every `for:`
cut to 2 s. Then, through Prometheus's HTTP API:

- every feature is on and really works: `tools` rolls out to the simulated fleet's canary
  instance (ring 0 runs it and bakes), and a change made by hand comes back as a drift
  event through the queue, while Prometheus scrapes;
- every query of every dashboard panel (Grafana's variables substituted) returns data, none
  skipped;
- every selector of every alert and panel names a series, labels and label values that this
  controller really exports (promtool's unit tests use synthetic series: they cannot catch
  a wrong label value);
- the dashboard's variables resolve, from a series present in every scrape since the first;
- a broken commit makes SsmGitopsConfigInvalid fire in Prometheus itself, and then the
  ring's alarm in ALARM rolls `tools` back and makes SsmGitopsRolloutFailed fire;
- every counter of a fresh controller exists at zero for each of its known label values.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.model.kinds import Kind, Verb
from controller.reconcile.events import EventResult
from controller.reconcile.result import ActionResult, PassOutcome, Reason
from controller.runtime.metrics import WATCHED_CALL_RESULTS
from controller.runtime.webhook import Verdict
from tests.deploy import promql
from tests.deploy.features import feature_of, metrics_in
from tests.deploy.prometheus import tool
from tests.local.eventbus import wire_queue
from tests.runtime import samples
from tests.runtime.gitrepo import GitRepo
from tests.runtime.processes import (
    Controller,
    Process,
    free_port,
    http_get,
    wait_for_port,
    wait_until,
)

pytestmark = pytest.mark.xdist_group("prometheus")  # one stack, one worker

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = json.loads((DEPLOY / "grafana" / "ssm-gitops.json").read_text())


def _manifest(name: str) -> Any:
    return yaml.safe_load((DEPLOY / "base" / name).read_text())


NAMESPACE: str = _manifest("kustomization.yaml")["namespace"]
SERVICE: str = _manifest("service.yaml")["metadata"]["name"]
ENDPOINT: dict[str, Any] = _manifest("servicemonitor.yaml")["spec"]["endpoints"][0]
RULES: dict[str, Any] = _manifest("prometheusrule.yaml")
SCRAPE_INTERVAL = "1s"  # the ServiceMonitor's 30s, scaled down
SHORT_FOR = "2s"
# Grafana's variables as Grafana would fill them in for this Prometheus: $__rate_interval is
# at least four scrape intervals.
GRAFANA_VARIABLES = {
    "$__rate_interval": "10s",
    "$__interval": SCRAPE_INTERVAL,
    "$__range": "1m",
    "$namespace": NAMESPACE,
}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Known label values of each counter, all exported at zero by a fresh controller (with
# --events-queue: drift_events_total is registered only then).
COUNTERS: dict[str, tuple[tuple[str, ...], list[tuple[str, ...]]]] = {
    "ssm_gitops_reconcile_total": (("result",), [(o.value,) for o in PassOutcome]),
    "ssm_gitops_pass_errors_total": (("reason",), [(r.value,) for r in Reason]),
    "ssm_gitops_actions_total": (
        ("kind", "action", "result"),
        [(k.value, v.value, r.value) for k in Kind for v in Verb for r in ActionResult],
    ),
    "ssm_gitops_webhook_requests_total": (("result",), [(v.value,) for v in Verdict]),
    "ssm_gitops_drift_events_total": (("result",), [(r.value,) for r in EventResult]),
}


def _panel_queries() -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every panel target, rows' nested panels included."""
    found: list[tuple[str, str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend((panel["title"], t["refId"], t["expr"]) for t in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(DASHBOARD["panels"])
    return found


def _grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


class Server(Process):
    """Another program than ssm-gitops (the Prometheus server), handled like the others:
    its output in `log`, killed at teardown."""

    def __init__(self, command: list[str], log: Path, cwd: Path) -> None:
        self.args = command
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(command, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT)


@dataclass
class Stack:
    repo: GitRepo
    controller_url: str
    prometheus_url: str
    first_scrape: str  # /metrics of the controller as soon as it listened
    endpoint: str  # the local AWS endpoint

    def query(self, expr: str) -> list[dict[str, Any]]:
        code, body = http_get(
            f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        )
        assert code == 200, f"{expr}: {body}"
        document = json.loads(body)
        assert document["status"] == "success", document
        result: list[dict[str, Any]] = document["data"]["result"]
        return result

    def api(self, path: str) -> Any:
        code, body = http_get(self.prometheus_url + path)
        assert code == 200, body
        return json.loads(body)["data"]


def _prometheus_config(target: str) -> dict[str, Any]:
    """What the Prometheus Operator generates for the ServiceMonitor, one static target."""
    labels = {
        "namespace": NAMESPACE,
        "service": SERVICE,
        "endpoint": ENDPOINT["port"],
        "pod": f"{SERVICE}-0",
        "job": SERVICE,  # the Operator's job label: the Service's name
    }
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {
                "job_name": f"serviceMonitor/{NAMESPACE}/{SERVICE}/0",
                "metrics_path": ENDPOINT["path"],
                "scrape_interval": SCRAPE_INTERVAL,
                "static_configs": [{"targets": [target]}],
                "relabel_configs": [
                    {"target_label": label, "replacement": value} for label, value in labels.items()
                ],
            }
        ],
    }


def _test_rules() -> dict[str, Any]:
    """The PrometheusRule's groups with every `for:` cut to SHORT_FOR."""
    spec: dict[str, Any] = json.loads(json.dumps(RULES["spec"]))
    for group in spec["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
    return spec


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = tool("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    started: list[Process] = []
    try:
        aws_port = free_port()
        (work / "fleet.yaml").write_text(FLEET)
        local = Process(
            ["local", "--port", str(aws_port), "--fleet-file", str(work / "fleet.yaml")],
            work / "local.log",
            env=AWS_ENV,
        )
        started.append(local)
        wait_for_port(aws_port, 30, local)
        endpoint = f"http://127.0.0.1:{aws_port}"
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", **_credentials()
        ).create_bucket(Bucket=samples.BUCKET)
        _alarm(endpoint, "OK")  # the gate of `tools`' ring

        repo = GitRepo(work / "repo")
        first = repo.commit(
            samples.repository(["1.0.0"]) | _rollout_files(["1.0"]), "Add agent 1.0.0"
        )
        port = free_port()
        controller = Process(
            [
                "run",
                "--repo",
                str(repo.path),
                "--listen",
                f"127.0.0.1:{port}",
                "--interval",
                "1s",
                "--resync-interval",
                "1s",  # a pass every second: the pass panels have rates to show
                "--cache-dir",
                str(work / "cache"),
                "--events-queue",
                _events_queue(endpoint),
            ],
            work / "controller.log",
            env={**AWS_ENV, "AWS_ENDPOINT_URL": endpoint},
        )
        started.append(controller)
        wait_for_port(port, 30, controller)
        url = f"http://127.0.0.1:{port}"
        first_scrape = http_get(url + "/metrics")[1]
        running = Controller(controller, port)
        running.wait_for_applied(first, 60)
        # A second version of `tools` starts a rollout: ring 0 (the canary instance) runs
        # 2.0, passes its gate and bakes for an hour.
        repo.commit(_rollout_files(["1.0", "2.0"]), "tools 2.0")
        wait_until(
            lambda: running.metric("rollout_state", package="tools", state="baking") == 1,
            90,
            "the rollout of tools 2.0 baking in ring 0",
        )

        (work / "prometheus.yml").write_text(
            yaml.safe_dump(_prometheus_config(f"127.0.0.1:{port}"))
        )
        (work / "rules.yaml").write_text(yaml.safe_dump(_test_rules()))
        prometheus_port = free_port()
        server = Server(
            [
                prometheus,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            work / "prometheus.log",
            cwd=work,
        )
        started.append(server)
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        wait_until(
            lambda: (
                http_get(prometheus_url + "/-/ready")[0] == 200 or server.proc.poll() is not None
            ),
            30,
            "Prometheus ready",
        )
        assert server.proc.poll() is None, server.output()
        stack = Stack(repo, url, prometheus_url, first_scrape, endpoint)
        # Drift by hand once Prometheus has the drift-event counters (at zero), so it sees
        # the event as an increase, as an alert or a panel over `increase()` would.
        wait_until(
            lambda: stack.query('ssm_gitops_drift_events_total{result="healed"}'),
            30,
            "Prometheus scraping the drift-event counters",
        )
        _drift_by_hand(endpoint)
        wait_until(
            lambda: _hand_made_events(running) == 1, 30, "the hand-made change's drift event"
        )
        yield stack
    finally:
        for process in reversed(started):
            process.stop()


# Rollouts (issue 13): a package `tools` with a one-ring rollout policy (gate: an alarm and
# no failed target) whose ring is the fleet's canary instance; its second version then rolls
# out and bakes for an hour, so the rollout series (state, ring, ring targets, a step
# deadline) have data from a real rollout.
def _rollout_files(versions: list[str]) -> dict[str, str | None]:
    blocks = "".join(
        f'    - name: "{v}"\n      files: [{{platform: amazon, arch: x86_64, source: tools/{v}}}]\n'
        for v in versions
    )
    package = (
        "apiVersion: ssm-gitops/v1\nkind: Package\nmetadata: {name: tools}\n"
        f'spec:\n  defaultVersion: "{versions[-1]}"\n  rollout:\n    rings:\n'
        "      - {associations: [tools-canary], bake: 1h}\n"
        f'    maxFailed: "0"\n    alarms: [{ALARM}]\n  versions:\n{blocks}'
    )
    association = (
        "apiVersion: ssm-gitops/v1\nkind: Association\nmetadata: {name: tools-canary}\n"
        'spec:\n  package: tools\n  targets: [{key: "tag:ring", values: [canary]}]\n'
    )
    return {
        "packages/tools.yaml": package,
        "associations/tools-canary.yaml": association,
        **{f"packages/{k}": v for k, v in samples.package_sources("tools", versions).items()},
    }


ALARM = "tools-errors"
# The simulated fleet of the local endpoint: one instance, the canary of `tools`' ring.
FLEET = "instances:\n  - {platform: amazon, version: '2023', arch: x86_64, tags: {ring: canary}}\n"


def _alarm(endpoint: str, state: str) -> None:
    """The CloudWatch alarm of `tools`' ring (made if new), set to `state`: in ALARM, the
    ring's gate fails at once and the rollout is rolled back (docs/rollouts.md)."""
    cloudwatch = boto3.client(
        "cloudwatch", endpoint_url=endpoint, region_name="us-east-1", **_credentials()
    )
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        MetricName="Errors",
        Namespace="Tools",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason="test")


def _events_queue(endpoint: str) -> str:
    """Drift events (issue 14): deploy/events/'s wiring on the local endpoint, an SQS queue
    fed by an EventBridge rule on SSM's CloudTrail events; its URL for --events-queue."""
    return wire_queue(
        boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **_credentials()),
        boto3.client("events", endpoint_url=endpoint, region_name="us-east-1", **_credentials()),
    )


def _hand_made_events(controller: Controller) -> float:
    """Events of someone else's change to a resource of ours: `healed`, or `in_sync` when a
    pass (one a second here) put it back before its event came."""
    return sum(
        controller.metric("drift_events_total", result=r) or 0 for r in ("healed", "in_sync")
    )


def _drift_by_hand(endpoint: str) -> None:
    """Someone else (an assumed role `Admin`, session `alice`) edits `agent-prod`'s schedule:
    its CloudTrail event reaches the queue, and the controller heals it (`healed`)."""

    def client(service: str, **keys: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **keys)

    client("iam", **_credentials()).create_role(RoleName="Admin", AssumeRolePolicyDocument="{}")
    credentials = client("sts", **_credentials()).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/Admin", RoleSessionName="alice"
    )["Credentials"]
    alice = client(
        "ssm",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    (live,) = [
        a for a in alice.list_associations()["Associations"] if a["AssociationName"] == "agent-prod"
    ]
    described = alice.describe_association(AssociationId=live["AssociationId"])[
        "AssociationDescription"
    ]
    alice.update_association(
        AssociationId=live["AssociationId"],
        Name=described["Name"],
        AssociationName=described["AssociationName"],
        Parameters=described["Parameters"],
        Targets=described["Targets"],
        ScheduleExpression="rate(7 days)",
    )


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def _hint(*metrics: str) -> str:
    """For a failure on a feature's metric: the stack may not switch that feature on."""
    features = sorted({f for m in metrics if (f := feature_of(m)) is not None})
    return f" (needs {', '.join(features)}: does this test's stack enable it?)" if features else ""


def _has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (NaN, e.g. 0/0 or a quantile of no events, is none)."""
    return any(sample["value"][1] != "NaN" for sample in result)


@pytest.mark.parametrize(
    ("title", "ref", "expr"),
    _panel_queries(),
    ids=[f"{title}/{ref}" for title, ref, _ in _panel_queries()],
)
def test_every_panel_query_returns_data(stack: Stack, title: str, ref: str, expr: str) -> None:
    """After a few passes scraped every second, each panel's query returns a number."""
    query = _grafana(expr)
    assert "$" not in query, f"a Grafana variable the test does not know: {query}"
    stack.query(query)  # valid PromQL for this Prometheus, data or not
    hint = _hint(*metrics_in(expr))
    wait_until(lambda: _has_data(stack.query(query)), 30, f"data for {title!r}{hint}: {query}", 0.5)


def test_a_real_rollout_and_a_real_drift_event_are_what_the_panels_show(stack: Stack) -> None:
    """The rollout and drift-event panels have data from real passes, not only series at
    zero: `tools` 2.0 ran on the canary instance of ring 0, passed its gate and bakes until
    a deadline an hour away; the hand-made change was one event, seen by Prometheus as an
    increase (the counter was there at zero before it); the controller's own changes came
    back as `own` events."""
    checks = {
        'ssm_gitops_rollout_state{package="tools",state="baking"} == 1': "baking",
        'ssm_gitops_rollout_ring_targets{package="tools",status="succeeded"} == 1': "canary ok",
        'ssm_gitops_rollout_ring{package="tools"} == 0': "ring 0",
        'ssm_gitops_rollout_step_deadline_timestamp_seconds{package="tools"} > time() + 3000': (
            "the bake's deadline"
        ),
        'count(ssm_gitops_rollout_ring_targets{package="tools"}) == 3': "ring targets",
        'sum(increase(ssm_gitops_drift_events_total{result=~"healed|in_sync"}[1h])) > 0.5': (
            "the hand-made change's event"
        ),
        'ssm_gitops_drift_events_total{result="own"} > 0': "own changes recognised",
        "ssm_gitops_drift_events_last_received_timestamp_seconds > time() - 3600": "received",
        "ssm_gitops_drift_events_queue_up == 1": "queue up",
    }
    for query, what in checks.items():
        wait_until(lambda q=query: stack.query(q), 30, f"{what}: {query}", 0.5)


def _selectors() -> list[tuple[str, str]]:
    """(where, expr) of every alert of the PrometheusRule and every dashboard query."""
    alerts = [
        (f"alert {rule['alert']}", rule["expr"])
        for group in RULES["spec"]["groups"]
        for rule in group["rules"]
    ]
    return alerts + [(f"panel {title}/{ref}", expr) for title, ref, expr in _panel_queries()]


@pytest.mark.parametrize(("where", "expr"), _selectors(), ids=[w for w, _ in _selectors()])
def test_every_selector_matches_what_the_running_controller_exports(
    stack: Stack, where: str, expr: str
) -> None:
    """Each metric an alert or a panel selects is in this controller's /metrics (every
    feature on, a rollout and drift events done) with samples, every label it matches or
    groups by is one of the metric's, and every value it names (`state=~"failed|rolled_back"`,
    `reason!~"load|signature"`, `result="healed"`) is one the controller exports. An alert on
    a misspelt label value never fires, and promtool's unit tests, fed synthetic series
    spelt like the rule, cannot tell."""
    code, text = http_get(stack.controller_url + "/metrics")
    assert code == 200
    exposed = promql.exposed_series(
        {family.name: family for family in text_string_to_metric_families(text)}
    )
    problems: list[str] = []
    for use in promql.uses(expr, GRAFANA_VARIABLES):
        family = exposed.get(use.metric)
        if family is None or not family.samples:
            problems.append(f"{use.metric}: not exported{_hint(use.metric)}")
            continue
        problems.extend(promql.matcher_problems(use, family))
    assert problems == [], where


def test_the_dashboard_variables_resolve_from_the_first_scrape(stack: Stack) -> None:
    """`label_values(metric, label)`, as a fresh Grafana runs it (/api/v1/series of the
    metric): the label's values include this controller's, and the metric was in every
    scrape since the first (so the variable resolves as soon as a controller is scraped)."""
    up = f'up{{job="{SERVICE}"}}'
    wait_until(lambda: stack.query(f"count_over_time({up}[1h]) >= 3"), 20, "three scrapes")
    variables = [v for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    assert variables
    for variable in variables:
        metric, label = (
            part.strip()
            for part in variable["definition"].removeprefix("label_values(").rstrip(")").split(",")
        )
        series = stack.api("/api/v1/series?" + urllib.parse.urlencode({"match[]": metric}))
        assert NAMESPACE in {s.get(label) for s in series}, variable["name"]
        scrapes = stack.query(f"count_over_time({up}[1h])")
        present = stack.query(f"count_over_time({metric}[1h])")
        assert present and present[0]["value"][1] == scrapes[0]["value"][1], metric


def test_the_rule_file_loads(stack: Stack) -> None:
    groups = stack.api("/api/v1/rules")["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    shipped = {rule["alert"] for group in RULES["spec"]["groups"] for rule in group["rules"]}
    assert loaded == shipped
    assert all(rule["health"] != "err" for g in groups for rule in g["rules"]), groups


def _firing(stack: Stack, alert: str) -> list[dict[str, Any]]:
    alerts = stack.api("/api/v1/alerts")["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alert and a["state"] == "firing"]


def test_a_broken_commit_makes_the_config_alert_fire(stack: Stack) -> None:
    """The stack keeps the broken commit (passes go on with the last good one)."""
    wait_until(lambda: stack.query("ssm_gitops_config_valid == 1"), 20, "config_valid 1")
    time.sleep(3)  # longer than the test `for:`: a healthy controller fires no alert
    alerts = stack.api("/api/v1/alerts")["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"] == []
    stack.repo.commit({"packages/agent.yaml": "name: agent\nversions: [unclosed\n"}, "Broken")
    firing = wait_until(
        lambda: _firing(stack, "SsmGitopsConfigInvalid"), 30, "SsmGitopsConfigInvalid firing", 0.5
    )
    assert firing[0]["labels"]["namespace"] == NAMESPACE
    assert firing[0]["labels"]["job"] == SERVICE
    assert firing[0]["labels"]["severity"] == "warning"


def test_a_failed_gate_makes_the_rollout_alert_fire(stack: Stack) -> None:
    """Runs after the broken commit (the last good revision stays applied): the alarm of
    `tools`' ring goes into ALARM, the gate fails, the rollout is rolled back, and
    SsmGitopsRolloutFailed fires in Prometheus with the package and the state; the
    `rollout` errors each pass then reports are that alert's, not SsmGitopsPassErrors'."""
    _alarm(stack.endpoint, "ALARM")
    firing = wait_until(
        lambda: _firing(stack, "SsmGitopsRolloutFailed"), 60, "SsmGitopsRolloutFailed firing", 0.5
    )
    labels = firing[0]["labels"]
    assert (labels["package"], labels["state"], labels["namespace"]) == (
        "tools",
        "rolled_back",
        NAMESPACE,
    )
    assert stack.query('increase(ssm_gitops_pass_errors_total{reason="rollout"}[1m]) > 0')
    time.sleep(3)  # longer than the test `for:`
    assert [
        a for a in _firing(stack, "SsmGitopsPassErrors") if a["labels"]["reason"] == "rollout"
    ] == []


@pytest.mark.parametrize("counter", sorted(COUNTERS))
def test_a_fresh_controller_exports_every_counter_at_zero(stack: Stack, counter: str) -> None:
    """Each known label value of each counter is in the controller's very first /metrics
    (issue 16: an `increase()` or `rate()` over a counter that appears only with its
    first event misses that event)."""
    labels, wanted = COUNTERS[counter]
    found = {
        tuple(sample.labels[label] for label in labels)
        for family in text_string_to_metric_families(stack.first_scrape)
        for sample in family.samples
        if sample.name == counter
    }
    assert sorted(set(wanted) - found) == [], f"{counter}{_hint(counter)}"


def test_every_aws_operation_exports_its_watched_results(stack: Stack) -> None:
    """AWS operations are not a fixed set: each appears with its first call, and then with
    every result the dashboard watches (throttled, denied, server_error) at zero."""
    code, text = http_get(stack.controller_url + "/metrics")
    assert code == 200
    calls: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ssm_gitops_aws_api_calls_total":
                calls.setdefault(sample.labels["operation"], set()).add(sample.labels["result"])
    assert calls, "no AWS call counted"
    missing = {op: set(WATCHED_CALL_RESULTS) - results for op, results in calls.items()}
    assert {op: m for op, m in missing.items() if m} == {}
