"""The source id (`ssm-gitops:source` tag value) and whose a tagged resource is (issue 10)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.aws.session import Sessions
from controller.model.ownership import OWNER_TAG, SOURCE_TAG, TAG_VALUE_MAX, Claim, claim, source_id
from controller.model.state import DesiredVersion
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import ActionResult, PassOutcome


@pytest.mark.parametrize(
    "location",
    [
        "https://github.com/acme/infra",
        "https://github.com/acme/infra.git/",
        "https://x-access-token:s3cr3t@GitHub.com:443/acme/infra.git?private_token=abc#frag",
        "ssh://git@github.com/acme/infra.git",
        "ssh://git@github.com:22/acme/infra",
        "git@github.com:acme/infra.git",
    ],
)
def test_one_repository_spelt_any_way_is_one_source_without_credentials(location: str) -> None:
    assert source_id(location, "teams/web") == "github.com/acme/infra//teams/web"
    assert source_id(location) == "github.com/acme/infra"
    assert "s3cr3t" not in source_id(location) and "abc" not in source_id(location)


def test_a_non_default_port_and_another_path_are_other_sources() -> None:
    assert source_id("https://git.example:8443/acme/infra") == "git.example:8443/acme/infra"
    assert source_id("https://github.com/acme/infra", "a") != source_id(
        "https://github.com/acme/infra", "b"
    )


def test_a_local_repository_is_its_absolute_root(tmp_path: Path) -> None:
    (tmp_path / "repo" / "teams").mkdir(parents=True)
    root = (tmp_path / "repo").resolve().as_posix()
    assert source_id(str(tmp_path / "repo")) == root
    # `--repo repo/teams` (a folder inside it): the same repository, that folder as path.
    assert source_id(str(tmp_path / "repo" / "teams"), "teams", inner="teams") == f"{root}//teams"


def test_an_id_a_tag_value_cannot_hold_is_a_readable_prefix_and_a_hash() -> None:
    long = source_id("https://github.com/acme/" + "x" * 300)
    odd = source_id("https://github.com/acme/in~fra")
    for value in (long, odd):
        assert len(value) <= TAG_VALUE_MAX and "/sha256=" in value
        assert value.startswith("github.com/acme/")
    assert source_id("https://github.com/acme/in~fra") == odd  # stable
    assert source_id("https://github.com/acme/in^fra") != odd  # distinct


def test_claim() -> None:
    mine = {OWNER_TAG: "ssm-gitops", SOURCE_TAG: "a"}
    assert claim(mine, "ssm-gitops", "a") is Claim.OURS
    assert claim(mine, "ssm-gitops", "b") is Claim.OTHER_SOURCE
    assert claim({OWNER_TAG: "ssm-gitops"}, "ssm-gitops", "a") is Claim.UNCLAIMED
    assert claim(mine, "other", "a") is Claim.NOT_OURS
    assert claim({}, "ssm-gitops", "a") is Claim.NOT_OURS


def test_a_source_tag_changed_since_observe_protects_the_association(
    aws_env: Any, tmp_path: Path, make_version: Callable[..., DesiredVersion]
) -> None:
    """Regression (issue 10): right before a change or delete, the owner tag was re-read but
    not the source: an association another repository had taken over since our (cached)
    observe would still be updated or deleted."""
    from tests.reconcile.conftest import BUCKET, association, package, target

    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = Reconciler(
        "ssm-gitops", source="repo-a", work_dir=tmp_path / "work", sessions=Sessions()
    )
    agent = package("agent", (make_version("agent", "1.0"),))
    both = (association("agent-prod", "agent"), association("agent-dev", "agent"))
    assert not reconciler.run_desired(target((agent,), both)).errors
    assert reconciler.run_desired(target((agent,), both)).outcome is PassOutcome.NO_CHANGE
    ssm = aws_env.client("ssm")
    ids = {
        a["AssociationName"]: a["AssociationId"] for a in ssm.list_associations()["Associations"]
    }
    for name in ("agent-dev", "agent-prod"):
        ssm.add_tags_to_resource(
            ResourceType="Association",
            ResourceId=ids[name],
            Tags=[{"Key": SOURCE_TAG, "Value": "repo-b"}],
        )

    changed = (association("agent-prod", "agent", schedule="rate(2 days)"),)
    result = reconciler.run_desired(target((agent,), changed))
    assert sorted((r.name, r.action, r.result) for r in result.actions) == [
        ("agent-dev", "delete", ActionResult.SKIPPED),
        ("agent-prod", "update", ActionResult.SKIPPED),
    ]
    assert all("ssm-gitops:source=repo-a" in r.message for r in result.actions)
    live = {a["AssociationName"]: a for a in ssm.list_associations()["Associations"]}
    assert sorted(live) == ["agent-dev", "agent-prod"]
    assert live["agent-prod"]["ScheduleExpression"] == "rate(1 day)"
    # Next pass: observed afresh as another source's: a conflict, not a change.
    again = reconciler.run_desired(target((agent,), changed))
    assert not again.actions and any("conflict" in e for e in again.errors), again.errors


def test_plan_by_source() -> None:
    """plan(): another source's resource is a conflict when declared and invisible
    otherwise; an unclaimed one is adopted (source tag added, with any update) when declared,
    and its deletion is held back as "unclaimed, not pruned" when not."""
    from controller.model.state import Desired, Observed, OtherSource, PruneRules
    from controller.reconcile.plan import plan
    from tests.reconcile.test_plan import HOME, association, live, live_association, package

    prune = PruneRules(enabled=True, max_deletes=10)
    mine = ((OWNER_TAG, "ssm-gitops"), (SOURCE_TAG, "a"))
    observed = Observed(
        (live("agent", tags=mine), live("old", tags=((OWNER_TAG, "ssm-gitops"),))),
        (
            live_association("agent-prod", "a-1", schedule="rate(2 days)"),  # unclaimed
            live_association("agent-dev", "a-2"),  # unclaimed, not declared
        ),
        others=(
            OtherSource("package", "theirs", HOME, "b"),
            OtherSource("package", "both", HOME, "b"),
            OtherSource("association", "their-prod", HOME, "b", "a-9"),
        ),
    )
    desired = Desired(
        (package("agent"), package("both")), (association("agent-prod"),), prune, source="a"
    )
    result = plan(desired, observed)
    assert sorted((a.kind, a.name, a.verb) for a in result.actions) == [
        ("association", "agent-prod", "tag"),
        ("association", "agent-prod", "update"),
    ]
    assert sorted((b.action.name, b.action.verb) for b in result.blocked) == [
        ("agent-dev", "delete"),
        ("old", "delete"),
    ]
    assert all(b.reason.startswith("unclaimed, not pruned") for b in result.blocked)
    (conflict,) = result.errors
    assert conflict.name == "both" and "another source (b)" in conflict.message


def test_an_association_of_a_conflicted_package_is_not_created() -> None:
    """It would install another source's package under our name: held, reported failed."""
    from controller.model.state import Desired, Observed, OtherSource
    from controller.reconcile.plan import plan
    from tests.reconcile.test_plan import HOME, association, package

    observed = Observed(others=(OtherSource("package", "agent", HOME, "b"),))
    result = plan(Desired((package("agent"),), (association("agent-prod"),), source="a"), observed)
    assert result.actions == ()
    assert [(r.kind, r.state.value) for r in result.resources] == [
        ("package", "failed"),
        ("association", "failed"),
    ]
    assert "in conflict" in result.resources[1].message


def test_a_local_clone_is_named_by_its_origin(tmp_path: Path) -> None:
    """An operator's `plan --repo ./infra` on a clone must see what the controller following
    the repository's URL owns as its own, not as another source's."""
    import pygit2

    from controller.model.ownership import local_origin

    clone = pygit2.init_repository(str(tmp_path / "clone"))
    assert local_origin(str(tmp_path / "clone")) is None
    clone.remotes.create("origin", "https://github.com/acme/infra.git")
    origin = local_origin(str(tmp_path / "clone"))
    assert origin == "https://github.com/acme/infra.git"
    assert source_id(str(tmp_path / "clone"), "teams", origin=origin) == source_id(
        "git@github.com:acme/infra.git", "teams"
    )
    assert local_origin("https://github.com/acme/infra") is None
