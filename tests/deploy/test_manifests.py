"""deploy/: the kustomize base and every overlay render, validate against the Kubernetes
schemas offline, and say what docs/deploy.md promises (issue 6)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from controller.aws.session import session_name
from controller.cli import build_parser
from tests.deploy.manifests import DEPLOY, kustomize_command, render, validation_errors

pytestmark = pytest.mark.skipif(
    kustomize_command() is None, reason="needs kubectl (kubectl kustomize) or kustomize"
)

TARGETS = [DEPLOY / "base", *sorted((DEPLOY / "overlays").iterdir())]


@pytest.fixture(scope="module", params=TARGETS, ids=lambda p: str(p.relative_to(DEPLOY)))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    directory: Path = request.param
    return render(directory)


def one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_every_resource_validates(rendered: list[dict[str, Any]]) -> None:
    errors = [error for resource in rendered for error in validation_errors(resource)]
    assert errors == []


def test_every_kind_is_there(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(r["kind"] for r in rendered)
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Service",
            "NetworkPolicy",
            "ServiceMonitor",
            "PrometheusRule",
        ]
    )
    namespaced = [r for r in rendered if r["kind"] != "Namespace"]
    assert {r["metadata"].get("namespace") for r in namespaced} == {"ssm-gitops"}


def test_validation_catches_a_typo() -> None:
    """The check can fail: an unknown field in a Deployment and in a PrometheusRule."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "replica": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}},
        },
    }
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "fro": "5m"}]}]},
    }
    assert validation_errors(deployment)
    assert validation_errors(rule)


def test_deployment_is_one_hardened_replica(rendered: list[dict[str, Any]]) -> None:
    spec = one(rendered, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8080)
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}


def test_only_the_cache_and_tmp_are_writable(rendered: list[dict[str, Any]]) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {
        m["mountPath"]
        for m in container["volumeMounts"]
        if not m.get("readOnly") and "emptyDir" in volumes[m["name"]]
    }
    assert writable == {"/var/cache/ssm-gitops", "/tmp"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SSM_GITOPS_CACHE_DIR"] == "/var/cache/ssm-gitops"
    assert env["HOME"] == "/tmp"


def _run_flags() -> set[str]:
    """SSM_GITOPS_<FLAG> for every flag of `ssm-gitops run` (controller/cli.py)."""
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    run: argparse.ArgumentParser = commands.choices["run"]
    return {
        "SSM_GITOPS_" + option[2:].upper().replace("-", "_")
        for action in run._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def test_every_ssm_gitops_variable_is_a_run_flag(rendered: list[dict[str, Any]]) -> None:
    """A misspelt SSM_GITOPS_* variable would be ignored silently by the controller."""
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container["env"]}
    names |= set(one(rendered, "ConfigMap")["data"])
    known = _run_flags()
    assert {n for n in names if n.startswith("SSM_GITOPS_")} <= known
    assert container["args"] == ["run"]


def test_secrets_are_referenced_not_shipped(rendered: list[dict[str, Any]]) -> None:
    assert not [r for r in rendered if r["kind"] == "Secret"]
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    webhook_file = next(
        e["value"] for e in container["env"] if e["name"] == "SSM_GITOPS_WEBHOOK_SECRET_FILE"
    )
    mount = next(m for m in container["volumeMounts"] if webhook_file.startswith(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "ssm-gitops-webhook"


def _secret_mount(pod: dict[str, Any], path: str) -> str | None:
    """The secret mounted where `path` lies, if any."""
    container = pod["containers"][0]
    for mount in container["volumeMounts"]:
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            assert mount.get("readOnly") is True, mount
            name: str | None = volume.get("secret", {}).get("secretName")
            return name
    return None


def test_git_credentials_are_files_of_a_mounted_secret(rendered: list[dict[str, Any]]) -> None:
    """Bug guarded (issue 11): the git token travelled as an environment variable
    (SSM_GITOPS_GIT_TOKEN from a secretKeyRef) while the webhook secret was a file. No
    variable takes its value from a Secret; secret ssm-gitops-git is mounted read-only
    (optional: a public repository needs none) and every git credential flag points into
    it."""
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    from_secrets = [e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert from_secrets == []
    assert not [e for e in container.get("envFrom", []) if "secretRef" in e]
    names = {e["name"] for e in container["env"]} | set(one(rendered, "ConfigMap")["data"])
    assert "SSM_GITOPS_GIT_TOKEN" not in names
    git = next(
        v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "ssm-gitops-git"
    )
    assert git["secret"]["optional"] is True
    assert git["secret"]["defaultMode"] == 0o440
    settings = dict(one(rendered, "ConfigMap")["data"])
    settings.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    for flag in (
        "SSM_GITOPS_GIT_TOKEN_FILE",
        "SSM_GITOPS_SSH_KEY_FILE",
        "SSM_GITOPS_KNOWN_HOSTS_FILE",
    ):
        if flag in settings:
            assert _secret_mount(pod, settings[flag]) == "ssm-gitops-git", flag


def test_the_irsa_session_is_named_like_the_controller(rendered: list[dict[str, Any]]) -> None:
    """CloudTrail tells controllers apart in the home account too: the web identity session
    (AWS_ROLE_SESSION_NAME, read by botocore) has the name the controller gives the roles it
    assumes elsewhere (controller/aws/session.py)."""
    settings = one(rendered, "ConfigMap")["data"]
    assert settings["AWS_ROLE_SESSION_NAME"] == session_name(settings["SSM_GITOPS_NAME"])


def test_service_account_is_annotated_for_irsa(rendered: list[dict[str, Any]]) -> None:
    account = one(rendered, "ServiceAccount")
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role)
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_find_their_targets(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = one(rendered, "Service")
    assert _selects(service["spec"]["selector"], pod_labels)
    policy = one(rendered, "NetworkPolicy")
    assert _selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    monitor = one(rendered, "ServiceMonitor")
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}
    config = one(rendered, "ConfigMap")["metadata"]["name"]
    refs = {
        e["configMapRef"]["name"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    }  # noqa: E501
    assert refs == {config}


def test_network_policy_admits_only_monitoring_and_webhooks(
    rendered: list[dict[str, Any]],
) -> None:
    """Bug guarded (issue 11): every pod of the cluster could reach `/` and `/status`. In:
    port http only, from two namespaces chosen by selector (Prometheus, the ingress
    controller), never from everywhere. Out: DNS on 53 UDP/TCP, and TCP 443 and 22 only."""
    policy = one(rendered, "NetworkPolicy")
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    http = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert len(spec["ingress"]) == 2, "one rule for metrics, one for webhooks"
    for rule in spec["ingress"]:
        assert [(p["port"], p["protocol"]) for p in rule["ports"]] == [("http", "TCP")]
        assert rule.get("from"), "an ingress rule without `from` admits every pod"
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"}, peer
            labels = peer["namespaceSelector"].get("matchLabels")
            assert labels and set(labels) == {"kubernetes.io/metadata.name"}, peer
    assert http == 8080
    egress = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert egress == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (22, "TCP")}
    assert all(rule.get("ports") for rule in spec["egress"]), "egress without ports: anything"


def test_overlay_names_its_own_namespaces() -> None:
    """The ingress selectors are parameters: the example overlay sets them."""
    base = one(render(DEPLOY / "base"), "NetworkPolicy")["spec"]["ingress"]
    example = one(render(DEPLOY / "overlays" / "example"), "NetworkPolicy")["spec"]["ingress"]
    assert [r["from"] for r in base] != [r["from"] for r in example]


def test_the_alerts_the_issue_asks_for(rendered: list[dict[str, Any]]) -> None:
    rules = one(rendered, "PrometheusRule")["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r for r in rules}
    assert {
        "SsmGitopsPassesFailing",
        "SsmGitopsConfigInvalid",
        "SsmGitopsDriftPersists",
        "SsmGitopsPrunesBlocked",
        "SsmGitopsNoSuccessfulPass",
    } <= set(alerts)
    assert "> 1800" in alerts["SsmGitopsNoSuccessfulPass"]["expr"]  # 30 minutes
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
