"""`ssm-gitops run` end to end: real processes (`local` and `run`), a real git repository.

One local endpoint process serves the module; each test starts its own controller on a
fresh git repository and checks live SSM with boto3, `/status`, the status page and
`/metrics` over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.runtime.webhook import github_signature
from tests.runtime import samples
from tests.runtime.gitrepo import GitRepo
from tests.runtime.processes import (
    Controller,
    Process,
    free_port,
    http_get,
    http_post,
    wait_for_port,
    wait_until,
)

SECRET = "e2e-webhook-secret"
POLL = 2.0  # seconds: --interval of the controllers here
# With associations the local endpoint must support them (issue 2); the test repository
# holds one package and one association.
WITH_ASSOCIATION = os.environ.get("SSM_GITOPS_E2E_NO_ASSOCIATION") != "1"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("local") / "local.log"
    process = Process(["local", "--port", str(port)], log)
    try:
        wait_for_port(port, 30, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean endpoint with the artifact bucket, and AWS_ENDPOINT_URL set for children."""
    code, _ = http_post_json(endpoint + "/_local/reset", {})
    assert code == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    client("s3", endpoint).create_bucket(Bucket=samples.BUCKET)
    return endpoint


def http_post_json(url: str, document: dict[str, Any]) -> tuple[int, str]:
    code = http_post(url, json.dumps(document).encode(), {"Content-Type": "application/json"})
    return code, ""


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def live_versions(endpoint: str, name: str = "agent") -> list[str]:
    ssm = client("ssm", endpoint)
    try:
        pages = ssm.get_paginator("list_document_versions").paginate(Name=name)
        return sorted(v.get("VersionName", "") for p in pages for v in p["DocumentVersions"])
    except ssm.exceptions.InvalidDocument:
        return []


def live_default(endpoint: str, name: str = "agent") -> str:
    document = client("ssm", endpoint).describe_document(Name=name)["Document"]
    return str(document.get("VersionName", ""))


def live_associations(endpoint: str, name: str = "agent-prod") -> list[dict[str, Any]]:
    ssm = client("ssm", endpoint)
    found = []
    for page in ssm.get_paginator("list_associations").paginate(
        AssociationFilterList=[{"key": "AssociationName", "value": name}]
    ):
        found.extend(page["Associations"])
    return found


def start_controller(
    tmp_path: Path,
    repo: GitRepo,
    *,
    interval: float = POLL,
    extra: list[str] | None = None,
    cache: Path | None = None,
    tag: str = "run",
) -> Controller:
    port = free_port()
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    process = Process(
        [
            "run",
            "--repo",
            str(repo.path),
            "--listen",
            f"127.0.0.1:{port}",
            "--interval",
            f"{interval:g}s",
            "--resync-interval",
            "10m",
            "--webhook-secret-file",
            str(secret_file),
            "--cache-dir",
            str(cache or tmp_path / "cache"),
            *(extra or []),
        ],
        tmp_path / f"{tag}.log",
    )
    wait_for_port(port, 30, process)
    return Controller(process, port)


@pytest.fixture
def controllers() -> Iterator[list[Controller]]:
    started: list[Controller] = []
    yield started
    for c in started:
        c.process.stop()


def commit_repo(repo: GitRepo, versions: list[str], message: str, **kw: Any) -> str:
    return repo.commit(
        samples.repository(versions, with_association=WITH_ASSOCIATION, **kw), message
    )


def test_commits_are_applied_within_the_poll_interval_and_bad_commits_change_nothing(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    first = commit_repo(repo, ["1.0.0"], "Add agent 1.0.0")
    c = start_controller(tmp_path, repo)
    controllers.append(c)
    status = c.wait_for_applied(first, 30)
    assert status["last_pass"]["result"] == "success", c.process.output()
    assert http_get(c.url + "/readyz")[0] == 200
    assert live_versions(aws) == ["1.0.0"]

    # A new commit is applied within the poll interval (plus the pass itself).
    second = commit_repo(repo, ["1.0.0", "1.1.0"], "Add agent 1.1.0 and make it the default")
    committed = time.monotonic()
    status = c.wait_for_applied(second, 30)
    took = time.monotonic() - committed
    assert took <= POLL + status["last_pass"]["duration_seconds"] + 1.0, took
    assert live_versions(aws) == ["1.0.0", "1.1.0"] and live_default(aws) == "1.1.0"

    # A broken commit on top: nothing changes, the metric and the page say so.
    broken_files = samples.repository(
        ["1.0.0", "1.1.0", "2.0.0"], with_association=WITH_ASSOCIATION
    )
    broken_files["packages/agent.yaml"] = str(broken_files["packages/agent.yaml"]).replace(
        "defaultVersion", "defaultVersio"
    )
    broken = repo.commit(broken_files, "Typo in agent.yaml")

    def shows_error() -> dict[str, Any] | None:
        s = c.status()
        return s if s["fetched"] and s["fetched"]["commit"] == broken and s["errors"] else None

    status = wait_until(shows_error, POLL + 10, "the broken commit's error in /status")
    assert status["config_valid"] is False
    assert status["revision"]["commit"] == second  # the last good revision stays applied
    error = next(e for e in status["errors"] if e["file"] == "packages/agent.yaml")
    assert error["line"] > 0 and "defaultVersio" in error["message"], error
    assert c.metric("config_valid") == 0
    page = http_get(c.url + "/")[1]
    assert "packages/agent.yaml:" in page and "Typo in agent.yaml" in page
    time.sleep(POLL + 0.5)  # another poll: still nothing applied from the broken commit
    assert live_versions(aws) == ["1.0.0", "1.1.0"] and live_default(aws) == "1.1.0"

    # The next good commit converges.
    fixed = commit_repo(repo, ["1.0.0", "1.1.0", "2.0.0"], "Fix the typo, add 2.0.0")
    status = c.wait_for_applied(fixed, 30)
    assert status["config_valid"] is True and status["errors"] == []
    assert live_versions(aws) == ["1.0.0", "1.1.0", "2.0.0"] and live_default(aws) == "2.0.0"
    if WITH_ASSOCIATION:
        assert len(live_associations(aws)) == 1

    # Every contract metric, scraped over HTTP, holds what these passes did.
    m = c.metrics()

    def value(name: str, **labels: str) -> float | None:
        return m.get(("ssm_gitops_" + name, tuple(sorted(labels.items()))))

    assert (value("reconcile_total", result="success") or 0) >= 3
    assert value("reconcile_total", result="failure") == 0
    assert (value("reconcile_duration_seconds_count") or 0) >= 3
    assert (value("last_success_timestamp_seconds") or 0) > time.time() - 60
    assert value("revision_info", revision=fixed) == 1
    assert value("revision_info", revision=second) is None
    assert value("resources", kind="package", state="in_sync") == 1
    assert value("resources", kind="package", state="failed") == 0
    if WITH_ASSOCIATION:
        assert value("resources", kind="association", state="in_sync") == 1
    # Rollout counts need instances (the fleet, issue 7); without them the family is declared
    # and holds no series. tests/runtime/test_metrics.py checks its values.
    assert "# TYPE ssm_gitops_association_targets gauge" in http_get(c.url + "/metrics")[1]
    assert value("actions_total", kind="package", action="create", result="success") == 1
    assert (value("aws_api_calls_total", operation="ListDocuments", result="success") or 0) >= 3
    assert value("prune_blocked_total") == 0
    assert (value("git_fetch_duration_seconds_count") or 0) >= 4
    assert value("git_fetch_failures_total") == 0
    assert value("config_valid") == 1


def test_signed_webhook_applies_within_two_seconds_and_a_bad_one_changes_nothing(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    first = commit_repo(repo, ["1.0.0"], "first")
    c = start_controller(tmp_path, repo, interval=600)  # polling will not find it: hooks must
    controllers.append(c)
    c.wait_for_applied(first, 30)
    second = commit_repo(repo, ["1.0.0", "1.1.0"], "second")
    body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()

    bad = github_signature(b"not-the-secret", body)
    assert http_post(c.url + "/hooks/git", body, {"X-Hub-Signature-256": bad}) == 401
    assert http_post(c.url + "/hooks/git", body, {"X-Gitlab-Token": "nope"}) == 401
    time.sleep(2)
    assert c.status()["revision"]["commit"] == first
    assert live_versions(aws) == ["1.0.0"]
    assert c.metric("webhook_requests_total", result="unauthorized") == 2

    signed = github_signature(SECRET.encode(), body)
    sent = time.monotonic()
    assert http_post(c.url + "/hooks/git", body, {"X-Hub-Signature-256": signed}) == 202
    status = c.wait_for_applied(second, 30)
    took = time.monotonic() - sent
    assert took <= 2.0 + status["last_pass"]["duration_seconds"], took
    assert live_versions(aws) == ["1.0.0", "1.1.0"]
    third = commit_repo(repo, ["1.0.0", "1.1.0", "1.2.0"], "third")
    # A body that is no push payload is ignored (200), then a GitLab push is taken.
    assert http_post(c.url + "/hooks/git", b"{}", {"X-Gitlab-Token": SECRET}) == 200
    gitlab = json.dumps({"ref": "refs/heads/main", "after": third}).encode()
    headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"}
    assert http_post(c.url + "/hooks/git", gitlab, headers) == 202
    c.wait_for_applied(third, 2.0 + 30)
    assert c.metric("webhook_requests_total", result="accepted") == 2
    assert c.metric("webhook_requests_total", result="ignored") == 1


def test_a_replay_storm_costs_at_most_one_fetch_per_interval(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    """Issue 11: 2,000 replays of one signed push cost 1,183 git fetches."""
    repo = GitRepo(tmp_path / "repo")
    first = commit_repo(repo, ["1.0.0"], "first")
    c = start_controller(tmp_path, repo, interval=600)
    controllers.append(c)
    c.wait_for_applied(first, 30)
    second = commit_repo(repo, ["1.0.0", "1.1.0"], "second")
    fetches_before = c.metric("git_fetch_duration_seconds_count") or 0.0
    body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
    headers = {"X-Hub-Signature-256": github_signature(SECRET.encode(), body)}
    codes = [http_post(c.url + "/hooks/git", body, headers) for _ in range(2000)]
    assert codes.count(202) == 1 and codes.count(200) == 1999
    c.wait_for_applied(second, 30)
    time.sleep(1.0)
    fetches = (c.metric("git_fetch_duration_seconds_count") or 0.0) - fetches_before
    assert fetches <= 2, fetches
    assert c.metric("webhook_requests_total", result="ignored") == 1999


def test_sigkill_mid_pass_then_restart_converges_without_duplicates(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    head = commit_repo(repo, versions, "four versions at once")
    # Slow every SSM write down so the pass is surely mid-way when it is killed.
    http_post_json(
        aws + "/_local/faults", {"latency": {"ssm:UpdateDocument": 0.4, "ssm:CreateDocument": 0.4}}
    )
    c = start_controller(tmp_path, repo, tag="killed")
    controllers.append(c)
    wait_until(lambda: '"event": "action"' in c.process.output(), 30, "the first action")
    c.process.signal(signal.SIGKILL)
    c.process.wait(10)
    partial = live_versions(aws)
    assert len(partial) < len(versions), "the pass finished before it was killed"
    http_post_json(aws + "/_local/faults", {})
    again = start_controller(tmp_path, repo, tag="restarted")
    controllers.append(again)
    status = again.wait_for_applied(head, 60)
    assert status["last_pass"]["result"] == "success", again.process.output()
    assert status["errors"] == []
    assert live_versions(aws) == versions  # each exactly once
    assert live_default(aws) == "1.3.0"
    if WITH_ASSOCIATION:
        assert len(live_associations(aws)) == 1


def test_sigterm_lets_the_action_in_flight_finish_then_exits_zero(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    head = commit_repo(repo, versions, "three versions")
    http_post_json(
        aws + "/_local/faults", {"latency": {"ssm:UpdateDocument": 0.4, "ssm:CreateDocument": 0.4}}
    )
    try:
        c = start_controller(tmp_path, repo)
        controllers.append(c)
        wait_until(lambda: '"event": "action"' in c.process.output(), 30, "the first action")
        c.process.signal(signal.SIGTERM)
        assert c.process.wait(30) == 0
    finally:
        http_post_json(aws + "/_local/faults", {})
    events = [json.loads(line) for line in c.process.output().splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "stopped" and events[-1]["clean"] is True
    after = [e for e in events[kinds.index("stopping") :] if e["event"] == "action"]
    # The version being published when SIGTERM came is finished; nothing new starts.
    assert [e["result"] for e in after].count("success") <= 1
    assert any(e["result"] == "skipped" for e in after)
    live = live_versions(aws)
    assert live in (versions[:1], versions[:2])

    # The next start converges from there, without duplicates.
    again = start_controller(tmp_path, repo, tag="again")
    controllers.append(again)
    again.wait_for_applied(head, 60)
    assert live_versions(aws) == versions


def test_detect_only_with_dry_run_or_suspend_changes_nothing(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    first = commit_repo(repo, ["1.0.0"], "first")
    dry = start_controller(tmp_path, repo, extra=["--dry-run"], tag="dry")
    controllers.append(dry)
    status = dry.wait_for_applied(first, 30)
    assert status["mode"] == "dry-run" and live_versions(aws) == []
    assert {r["state"] for r in status["resources"]} == {"drifted"}
    assert (dry.metric("resources", kind="package", state="drifted") or 0) == 1
    assert (dry.metric("actions_total", kind="package", action="create", result="skipped")) == 1
    dry.process.signal(signal.SIGTERM)
    assert dry.process.wait(30) == 0

    c = start_controller(tmp_path, repo, cache=tmp_path / "cache2")
    controllers.append(c)
    c.wait_for_applied(first, 30)
    assert live_versions(aws) == ["1.0.0"]
    suspended = commit_repo(repo, ["1.0.0", "2.0.0"], "suspend, then add 2.0.0", suspend=True)
    status = c.wait_for_applied(suspended, 30)
    assert status["mode"] == "suspended"
    assert live_versions(aws) == ["1.0.0"]
    assert any(r["state"] == "drifted" for r in status["resources"])
    assert "suspended: detect only" in http_get(c.url + "/")[1]


def test_blocked_prunes_and_git_failures_are_reported_and_counted(
    aws: str, tmp_path: Path, controllers: list[Controller]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    first = repo.commit(samples.repository(["1.0.0"], max_deletes=0), "with an association")
    c = start_controller(tmp_path, repo)
    controllers.append(c)
    c.wait_for_applied(first, 30)
    assert len(live_associations(aws)) == 1

    # Removing the association asks for a deletion; maxDeletes 0 holds it back.
    files = samples.repository(["1.0.0"], max_deletes=0, with_association=False)
    files["associations/agent-prod.yaml"] = None
    second = repo.commit(files, "drop the association")
    status = c.wait_for_applied(second, 30)
    assert status["blocked_prunes"] and "agent-prod" in status["blocked_prunes"][0]
    assert len(live_associations(aws)) == 1
    assert (c.metric("prune_blocked_total") or 0) >= 1
    # Regression: blocked deletions were missing from actions_total.
    blocked = c.metric("actions_total", kind="association", action="delete", result="blocked")
    assert (blocked or 0) >= 1
    assert "Blocked prunes" in http_get(c.url + "/")[1]

    # The repository goes away: one log line per failed fetch, a metric, still serving.
    repo.path.rename(tmp_path / "moved")
    wait_until(lambda: (c.metric("git_fetch_failures_total") or 0) >= 1, POLL + 10, "a failure")
    assert http_get(c.url + "/healthz")[0] == 200
    assert any("git" in e["text"] or "repository" in e["text"] for e in c.status()["errors"])
    (tmp_path / "moved").rename(repo.path)
    wait_until(lambda: c.status()["errors"] == [] or None, POLL + 10, "the error to clear")
    lines = [line for line in c.process.output().splitlines() if '"event": "git_fetch"' in line]
    assert lines and all(json.loads(line)["level"] == "warning" for line in lines)
