"""Two repositories, one account, default settings (issue 10, DATA LOSS between teams).

Every controller used to tag `ssm-gitops:owner=ssm-gitops` and nothing else, so each team's
apply pruned the other's packages. Now each resource also carries `ssm-gitops:source` (the
repository and path): another source's resources are never changed or pruned, a resource
both declare is a conflict, and an unclaimed one (owner tag only) is adopted or kept.
Real CLI processes against the embedded endpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from controller.model.ownership import OWNER_TAG, SOURCE_TAG
from tests.e2e.plan_apply_helpers import (
    SETTINGS,
    GitRepo,
    cli,
    small_association,
    small_package,
    small_sources,
)


@pytest.fixture
def env(aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    return aws_env


def team(path: Path, *packages: str, version: str = "1.0") -> GitRepo:
    repo = GitRepo(path)
    repo.write("settings.yaml", SETTINGS)
    for name in packages:
        repo.write(f"{name}.yaml", small_package(name, [version], version))
        repo.write(f"{name}-prod.yaml", small_association(f"{name}-prod", name))
        small_sources(repo, name, version)
    repo.commit("packages")
    return repo


def _tags(env: Any, kind: str, resource: str) -> dict[str, str]:
    listed = env.client("ssm").list_tags_for_resource(ResourceType=kind, ResourceId=resource)
    return {t["Key"]: t["Value"] for t in listed["TagList"]}


def _association_ids(env: Any, name: str) -> list[str]:
    listed = env.client("ssm").list_associations()["Associations"]
    return [a["AssociationId"] for a in listed if a.get("AssociationName") == name]


def test_a_second_repository_never_prunes_the_first(env: Any, tmp_path: Path) -> None:
    """Bug (issue 10): team A applies PkgTeamA; team B (another repository, default
    settings, same account) planned `- package PkgTeamA delete` and its apply deleted it."""
    a = team(tmp_path / "team-a", "PkgTeamA")
    b = team(tmp_path / "team-b", "PkgTeamB")
    assert cli("apply", "--repo", str(a.path)).code == 0
    ssm = env.client("ssm")
    before = ssm.describe_document(Name="PkgTeamA")["Document"]

    plan = cli("plan", "--repo", str(b.path), "--json")
    assert plan.code == 2, plan.err
    touched = [x for x in plan.json()["actions"] + plan.json()["blocked"] if "TeamA" in x["name"]]
    assert touched == [], touched
    applied = cli("apply", "--repo", str(b.path))
    assert applied.code == 0, applied.out + applied.err
    assert "TeamA" not in applied.out

    # A's resources are untouched, and carry A's source; B's carry B's.
    assert ssm.describe_document(Name="PkgTeamA")["Document"] == before
    assert _tags(env, "Document", "PkgTeamA")[SOURCE_TAG] == str(a.path)
    assert _tags(env, "Document", "PkgTeamB")[SOURCE_TAG] == str(b.path)
    assert _tags(env, "Document", "PkgTeamB")[OWNER_TAG] == "ssm-gitops"
    (a_prod,) = _association_ids(env, "PkgTeamA-prod")
    assert _tags(env, "Association", a_prod)[SOURCE_TAG] == str(a.path)
    for repo in (a, b):
        quiet = cli("plan", "--repo", str(repo.path))
        assert quiet.code == 0, quiet.out + quiet.err


def test_a_package_both_declare_is_a_conflict_not_a_tug_of_war(env: Any, tmp_path: Path) -> None:
    """Bug (issue 10): two repositories declaring one package name overwrote each other every
    pass. Now the first one's stays as it is; the second reports a conflict, changes nothing,
    and both stay that way over two passes each."""
    a = team(tmp_path / "team-a", "Shared", version="1.0")
    b = team(tmp_path / "team-b", "Shared", version="2.0")
    assert cli("apply", "--repo", str(a.path)).code == 0
    ssm = env.client("ssm")
    before = ssm.describe_document(Name="Shared")["Document"]
    (association,) = _association_ids(env, "Shared-prod")
    association_before = ssm.describe_association(AssociationId=association)[
        "AssociationDescription"
    ]["AssociationVersion"]

    plan = cli("plan", "--repo", str(b.path), "--json")
    assert plan.code == 1
    assert plan.json()["actions"] == [] and plan.json()["blocked"] == []
    conflicts = [e for e in plan.json()["errors"] if "conflict" in e]
    assert len(conflicts) == 2, plan.json()["errors"]  # the package and the association
    assert str(a.path) in conflicts[0]
    states = {(r["kind"], r["state"]) for r in plan.json()["resources"]}
    assert states == {("package", "failed"), ("association", "failed")}
    text = cli("plan", "--repo", str(b.path))
    assert "conflict" in text.err and "Plan: 0 to add, 0 to change, 0 to destroy" in text.out

    for _ in range(2):
        for repo, code in ((b, 1), (a, 0)):
            run = cli("apply", "--repo", str(repo.path))
            assert run.code == code, run.out + run.err
            assert "0 added, 0 changed, 0 destroyed" in run.out
    assert ssm.describe_document(Name="Shared")["Document"] == before
    assert _association_ids(env, "Shared-prod") == [association]
    assert (
        ssm.describe_association(AssociationId=association)["AssociationDescription"][
            "AssociationVersion"
        ]
        == association_before
    )
    assert _tags(env, "Document", "Shared")[SOURCE_TAG] == str(a.path)


def test_unclaimed_resources_are_adopted_when_declared_and_never_pruned(
    env: Any, tmp_path: Path
) -> None:
    """Existing installations (owner tag, no source tag): the repository that declares a
    resource adopts it (the source tag is added, shown in the plan); one that does not
    declare it never prunes it and reports it as unclaimed."""
    a = team(tmp_path / "team-a", "Legacy")
    assert cli("apply", "--repo", str(a.path)).code == 0
    ssm = env.client("ssm")
    (association,) = _association_ids(env, "Legacy-prod")
    # As an older controller left them: the owner tag only.
    ssm.remove_tags_from_resource(
        ResourceType="Document", ResourceId="Legacy", TagKeys=[SOURCE_TAG]
    )
    ssm.remove_tags_from_resource(
        ResourceType="Association", ResourceId=association, TagKeys=[SOURCE_TAG]
    )
    # An older controller left no observe cache of ours behind (a tag edited by hand on a
    # resource we cached is seen at its drift event or when the cached ownership expires).
    shutil.rmtree(tmp_path / "cache" / "observe", ignore_errors=True)

    other = team(tmp_path / "team-b", "Other")
    plan = cli("plan", "--repo", str(other.path), "--json")
    assert plan.code == 2, plan.err
    blocked = {(x["name"], x["action"]): x["reason"] for x in plan.json()["blocked"]}
    assert set(blocked) == {("Legacy", "delete"), ("Legacy-prod", "delete")}
    assert all(reason.startswith("unclaimed, not pruned") for reason in blocked.values())
    assert cli("apply", "--repo", str(other.path)).code == 0
    assert ssm.describe_document(Name="Legacy")["Document"]["Name"] == "Legacy"
    assert _association_ids(env, "Legacy-prod") == [association]

    adopt = cli("plan", "--repo", str(a.path), "--json")
    assert adopt.code == 2, adopt.err
    changes = {
        (x["kind"], x["action"], c["field"], c["new"])
        for x in adopt.json()["actions"]
        for c in x["changes"]
    }
    assert changes == {
        ("package", "tag", f"tags.{SOURCE_TAG}", str(a.path)),
        ("association", "tag", f"tags.{SOURCE_TAG}", str(a.path)),
    }
    assert cli("apply", "--repo", str(a.path)).code == 0
    assert _tags(env, "Document", "Legacy")[SOURCE_TAG] == str(a.path)
    assert _tags(env, "Association", association)[SOURCE_TAG] == str(a.path)
    assert cli("plan", "--repo", str(a.path)).code == 0
