"""`ssm-gitops plan` / `apply` end to end: real CLI processes, real git repositories,
the embedded local endpoint, and live state checked with boto3 and the AWS CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.plan_apply_helpers import (
    SETTINGS,
    GitRepo,
    cli,
    plan_actions,
    sample_repo,
    small_association,
    small_package,
    small_sources,
)


@pytest.fixture
def env(aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The local endpoint for subprocesses, a private cache, the artifacts buckets."""
    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket="ssm-gitops-demo-artifacts")
    s3.create_bucket(Bucket="artifacts")
    return aws_env


def test_sample_repo_from_empty_converges(env: Any, tmp_path: Path) -> None:
    repo = sample_repo(tmp_path / "repo")
    plan = cli("plan", "--repo", str(repo.path))
    assert plan.code == 2, plan.err
    assert plan.out.rstrip().endswith("Plan: 10 to add, 4 to change, 0 to destroy, 0 blocked")
    assert "+ package datadog-agent (123456789012/us-east-1)" in plan.out

    apply = cli("apply", "--repo", str(repo.path))
    assert apply.code == 0, apply.out + apply.err
    lines = apply.out.splitlines()
    assert len(lines) == 15  # one line per action, then the summary
    assert lines[-1].startswith("Apply converged: 10 added, 4 changed, 0 destroyed")

    again = cli("plan", "--repo", str(repo.path))
    assert again.code == 0, again.out + again.err
    assert "No changes" in again.out

    ssm = env.client("ssm")
    document = ssm.describe_document(Name="datadog-agent")["Document"]
    assert document["DefaultVersion"] == "1"  # 6.9.0, the first published
    assert len(ssm.list_associations()["Associations"]) == 4


def test_each_commit_shows_exactly_its_change_and_converges(env: Any, tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("settings.yaml", SETTINGS)
    for version in ("1.0", "1.1", "1.2"):
        small_sources(repo, "toolbox", version)
    small_sources(repo, "extra-tool", "1.0")

    def commit_and_converge(message: str, expected: list[tuple[str, str, str]]) -> None:
        repo.commit(message)
        # exactly these actions, in this order for each resource
        assert _by_resource(plan_actions(repo)) == _by_resource(expected), message
        apply = cli("apply", "--repo", str(repo.path))
        assert apply.code == 0, apply.out + apply.err
        assert cli("plan", "--repo", str(repo.path)).code == 0, message

    repo.write("toolbox.yaml", small_package("toolbox", ["1.0"], "1.0"))
    repo.write("assoc.yaml", small_association("toolbox-prod", "toolbox"))
    repo.write("extra.yaml", small_package("extra-tool", ["1.0"], "1.0"))
    commit_and_converge(
        "start",
        [
            ("package", "toolbox", "create"),
            ("package", "extra-tool", "create"),
            ("association", "toolbox-prod", "create"),
        ],
    )
    repo.write("toolbox.yaml", small_package("toolbox", ["1.0", "1.1"], "1.0"))
    commit_and_converge("new version", [("package", "toolbox", "add_version")])
    repo.write("toolbox.yaml", small_package("toolbox", ["1.0", "1.1"], "1.1"))
    commit_and_converge("default bump", [("package", "toolbox", "set_default")])
    repo.write(
        "toolbox.yaml", small_package("toolbox", ["1.0", "1.1"], "1.1", share=["111122223333"])
    )
    commit_and_converge("share added", [("package", "toolbox", "share")])
    repo.write("toolbox.yaml", small_package("toolbox", ["1.0", "1.1"], "1.1"))
    commit_and_converge("share removed", [("package", "toolbox", "unshare")])
    repo.write(
        "assoc.yaml",
        small_association("toolbox-prod", "toolbox", schedule="rate(2 days)", targets="[prod, qa]"),
    )
    commit_and_converge("schedule and targets", [("association", "toolbox-prod", "update")])
    repo.write("toolbox.yaml", small_package("toolbox", ["1.1", "1.2"], "1.2", prune_versions=True))
    commit_and_converge(
        "pruned version",
        [
            ("package", "toolbox", "add_version"),
            ("package", "toolbox", "set_default"),
            ("package", "toolbox", "delete_version"),
        ],
    )
    repo.remove("assoc.yaml")
    commit_and_converge("association removed", [("association", "toolbox-prod", "delete")])
    repo.remove("extra.yaml")
    commit_and_converge("package removed", [("package", "extra-tool", "delete")])

    ssm = env.client("ssm")
    assert ssm.list_associations()["Associations"] == []
    versions = ssm.list_document_versions(Name="toolbox")["DocumentVersions"]
    assert sorted(v["VersionName"] for v in versions) == ["1.1", "1.2"]
    assert (
        ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"][
            0
        ]["Name"]
        == "toolbox"
    )


def test_plan_diff_names_the_changed_fields(env: Any, tmp_path: Path) -> None:
    repo = sample_repo(tmp_path / "repo")
    assert cli("apply", "--repo", str(repo.path)).code == 0
    path = repo.path / "associations" / "metrics-exporter.yaml"
    path.write_text(path.read_text().replace("rate(7 days)", "rate(3 days)"))
    repo.commit("faster")
    plan = cli("plan", "--repo", str(repo.path))
    assert plan.code == 2
    assert (
        "~ association metrics-exporter-web (123456789012/us-east-1)\n"
        "    ~ schedule: rate(7 days) -> rate(3 days)\n" in plan.out
    )
    assert "Plan: 0 to add, 1 to change, 0 to destroy, 0 blocked" in plan.out


def test_out_of_band_drift_is_shown_and_healed(env: Any, tmp_path: Path) -> None:
    repo = sample_repo(tmp_path / "repo")
    assert cli("apply", "--repo", str(repo.path)).code == 0
    ssm = env.client("ssm")
    # the AWS CLI moves the default back, boto3 adds a share, edits and deletes associations
    subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "ssm",
            "update-document-default-version",
            "--name",
            "metrics-exporter",
            "--document-version",
            "1",
        ],
        check=True,
        capture_output=True,
        env=_cli_env(env),
    )
    ssm.modify_document_permission(
        Name="ops-toolkit", PermissionType="Share", AccountIdsToAdd=["999988887777"]
    )
    by_name = {a["AssociationName"]: a for a in ssm.list_associations()["Associations"]}
    edited = ssm.describe_association(AssociationId=by_name["datadog-agent-prod"]["AssociationId"])[
        "AssociationDescription"
    ]
    ssm.update_association(
        AssociationId=edited["AssociationId"],
        AssociationName=edited["AssociationName"],
        Parameters=edited["Parameters"],
        Targets=edited["Targets"],
        ScheduleExpression="rate(30 days)",
    )  # nulls rate control too
    ssm.delete_association(AssociationId=by_name["ops-toolkit-everywhere"]["AssociationId"])

    assert sorted(plan_actions(repo)) == [
        ("association", "datadog-agent-prod", "update"),
        ("association", "ops-toolkit-everywhere", "create"),
        ("package", "metrics-exporter", "set_default"),
        ("package", "ops-toolkit", "unshare"),
    ]
    assert cli("apply", "--repo", str(repo.path)).code == 0
    assert cli("plan", "--repo", str(repo.path)).code == 0
    healed = ssm.describe_association(AssociationId=edited["AssociationId"])
    assert healed["AssociationDescription"]["MaxConcurrency"] == "10%"  # re-sent in full


def test_unowned_resources_are_never_changed(env: Any, tmp_path: Path) -> None:
    ssm = env.client("ssm")
    repo = sample_repo(tmp_path / "repo")
    assert cli("apply", "--repo", str(repo.path), "--name", "someone-else").code == 0
    before = {
        a["AssociationId"]: a["AssociationVersion"] for a in ssm.list_associations()["Associations"]
    }
    apply = cli("apply", "--repo", str(repo.path))
    assert apply.code == 1  # the packages exist and are not ours: one line each
    assert "not ours" in apply.err
    after = {
        a["AssociationId"]: a["AssociationVersion"] for a in ssm.list_associations()["Associations"]
    }
    assert {k: after[k] for k in before} == before  # theirs untouched
    assert len(after) == 8  # ours were created next to theirs


def test_crash_after_each_action_then_rerun_converges_without_duplicates(
    env: Any, tmp_path: Path
) -> None:
    repo = sample_repo(tmp_path / "repo")
    total_actions = 14
    for crash_after in range(1, total_actions):
        env.reset()
        env.client("s3").create_bucket(Bucket="ssm-gitops-demo-artifacts")
        crashed = cli(
            "apply",
            "--repo",
            str(repo.path),
            env={"SSM_GITOPS_TEST_CRASH_AFTER_ACTIONS": str(crash_after)},
        )
        assert crashed.code == 70, crashed.out + crashed.err
        rerun = cli("apply", "--repo", str(repo.path))
        assert rerun.code == 0, f"after crash at {crash_after}: {rerun.out}{rerun.err}"
        _assert_sample_live_state(env)


@pytest.mark.parametrize("lines_before_kill", [1, 5, 10])
def test_apply_killed_mid_pass_then_rerun_converges(
    env: Any, tmp_path: Path, lines_before_kill: int
) -> None:
    """SIGKILL the apply process while actions are in flight (not between them)."""
    import os
    import signal

    from tests.e2e.plan_apply_helpers import WORKTREE

    repo = sample_repo(tmp_path / "repo")
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", "apply", "--repo", str(repo.path)],
        cwd=WORKTREE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert process.stdout is not None
    for _ in range(lines_before_kill):
        process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    rerun = cli("apply", "--repo", str(repo.path))
    assert rerun.code == 0, rerun.out + rerun.err
    _assert_sample_live_state(env)
    assert cli("plan", "--repo", str(repo.path)).code == 0


def _assert_sample_live_state(env: Any) -> None:
    ssm = env.client("ssm")
    versions = {
        name: sorted(
            v["VersionName"] for v in ssm.list_document_versions(Name=name)["DocumentVersions"]
        )
        for name in ("datadog-agent", "metrics-exporter", "ops-toolkit")
    }
    assert versions == {
        "datadog-agent": ["6.10.0", "6.9.0"],
        "metrics-exporter": ["1.6.1", "1.7.0"],
        "ops-toolkit": ["1.0.0", "1.1.0"],
    }
    names = sorted(a["AssociationName"] for a in ssm.list_associations()["Associations"])
    assert names == [
        "datadog-agent-canary",
        "datadog-agent-prod",
        "metrics-exporter-web",
        "ops-toolkit-everywhere",
    ]
    shares = {
        name: sorted(
            ssm.describe_document_permission(Name=name, PermissionType="Share")["AccountIds"]
        )
        for name in ("datadog-agent", "ops-toolkit")
    }
    assert shares == {
        "datadog-agent": ["111122223333", "444455556666"],
        "ops-toolkit": ["444455556666"],
    }


def test_converges_under_throttling_and_server_errors(env: Any, tmp_path: Path) -> None:
    from tests.aws.conftest import set_faults

    repo = sample_repo(tmp_path / "repo")
    set_faults(
        env,
        {"throttle": {"rate": 15, "burst": 5, "operations": ["*"]}, "error_rate": 0.15, "seed": 7},
    )
    for _ in range(4):  # a pass may end with failures; the next one picks them up
        if cli("apply", "--repo", str(repo.path)).code == 0:
            break
    set_faults(env, {})
    final = cli("plan", "--repo", str(repo.path))
    assert final.code == 0, final.out + final.err
    _assert_sample_live_state(env)


def test_errors_are_one_line(env: Any, tmp_path: Path) -> None:
    missing = cli("plan", "--repo", str(tmp_path / "nowhere"))
    assert missing.code == 1
    assert len(missing.err.strip().splitlines()) == 1, missing.err
    as_json = cli("plan", "--repo", str(tmp_path / "nowhere"), "--json")
    assert as_json.code == 1 and "not a git repository" in as_json.json()["errors"][0]

    repo = GitRepo(tmp_path / "bad")
    repo.write("settings.yaml", SETTINGS.replace("bucket: artifacts", "bucket: no-such-bucket"))
    small_sources(repo, "toolbox", "1.0")
    repo.write("toolbox.yaml", small_package("toolbox", ["1.0"], "1.0"))
    repo.commit("bad bucket")
    plan = cli("plan", "--repo", str(repo.path))
    assert plan.code == 1 and "artifacts bucket 'no-such-bucket' does not exist" in plan.err
    apply = cli("apply", "--repo", str(repo.path))
    assert apply.code == 1
    assert apply.err.strip() == (
        "ssm-gitops: artifacts bucket 'no-such-bucket' does not exist in "
        "us-east-1: create it or fix spec.artifacts.bucket in the "
        "Settings document"
    )

    repo.write("toolbox.yaml", small_package("toolbox", ["1.0"], "9.9"))
    repo.commit("invalid")
    invalid = cli("plan", "--repo", str(repo.path))
    assert invalid.code == 1
    assert "toolbox.yaml:" in invalid.err and "Traceback" not in invalid.err

    # Regression (review M3): AWS configuration mistakes were tracebacks.
    repo.write("toolbox.yaml", small_package("toolbox", ["1.0"], "1.0"))
    repo.commit("valid again")
    for setting, expected in (
        ({"AWS_PROFILE": "nosuch"}, "The config profile (nosuch) could not be found"),
        ({"AWS_ENDPOINT_URL": "notaurl"}, "Invalid endpoint: notaurl"),
    ):
        bad = cli("plan", "--repo", str(repo.path), env=setting)
        assert bad.code == 1, bad.err
        assert "Traceback" not in bad.err and len(bad.err.strip().splitlines()) == 1, bad.err
        assert expected in bad.err and "AWS configuration" in bad.err


def _by_resource(actions: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for kind, name, action in actions:
        grouped.setdefault((kind, name), []).append(action)
    return grouped


def _cli_env(env: Any) -> dict[str, str]:
    import os

    return {**os.environ, "AWS_ENDPOINT_URL": env.endpoint_url}


def test_repo_may_name_a_folder_inside_a_repository(env: Any, tmp_path: Path) -> None:
    """`plan --repo checkout/config` reads that folder, not the whole checkout (which may hold
    other YAML, such as Kubernetes manifests), and says when edits are not committed."""
    repo = GitRepo(tmp_path / "checkout")
    repo.write("deploy/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\n")
    repo.write("config/settings.yaml", SETTINGS)
    small_sources(repo, "toolbox", "1.0", folder="config")
    repo.write("config/toolbox.yaml", small_package("toolbox", ["1.0"], "1.0"))
    repo.commit("config beside other YAML")
    run = cli("plan", "--repo", str(repo.path / "config"), env=_cli_env(env))
    assert run.code == 2, run.err
    assert "+ package toolbox" in run.out and "deployment.yaml" not in run.err
    (repo.path / "config" / "toolbox.yaml").write_text("# edited\n")
    edited = cli("plan", "--repo", str(repo.path / "config"), env=_cli_env(env))
    assert "note: uncommitted changes are not part of this plan (config/toolbox.yaml)" in edited.err
