"""Never act on a partial view (contract: Ownership and safety; issue 10, DATA LOSS).

A location (account, region) that could not be read completely gets no deletion in that
pass, and no change that depends on what was not read; its desired state is never dropped.
Against the embedded endpoint with its fault injection (`/_local/faults`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from controller.aws import api as aws_api
from controller.aws.session import Sessions
from controller.model.fingerprint import SPEC_TAG
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import ActionResult, PassOutcome, ResourceState
from controller.repository import load_repository
from tests.aws.conftest import set_faults

REGIONS = ("us-east-1", "eu-west-1")
# The issue saw 60% 5xx over botocore's six attempts: a call then fails 0.6**6 = 4.7% of
# the time. Two attempts at 22% fail a call as often (0.22**2 = 4.8%), in a tenth of the time.
ERROR_RATE = 0.22


def _settings(regions: tuple[str, ...]) -> str:
    return f"""
apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts, prefix: p/}}
  regions: [{", ".join(regions)}]
  prune: {{enabled: true, maxDeletes: 10}}
"""


def _package(name: str) -> str:
    return f"""
apiVersion: ssm-gitops/v1
kind: Package
metadata: {{name: {name}}}
spec:
  defaultVersion: "1.0"
  versions:
    - name: "1.0"
      files: [{{platform: amazon, arch: x86_64, source: src}}]
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: {name}-all}}
spec:
  package: {name}
  targets: [{{key: "tag:env", values: [prod]}}]
  schedule: rate(1 day)
"""


PACKAGES = ("toolbox", "agent", "exporter")


def _write(root: Path, regions: tuple[str, ...]) -> Any:
    files = {"settings.yaml": _settings(regions)}
    files |= {f"{name}.yaml": _package(name) for name in PACKAGES}
    files |= {"src/install.sh": "#!/bin/sh\necho i\n", "src/uninstall.sh": "#!/bin/sh\necho u\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return load_repository(root)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two attempts instead of six: the faults here are meant to win, and quickly."""
    monkeypatch.setattr(
        aws_api,
        "RETRIES",
        Config(retries={"mode": "standard", "max_attempts": 2}, max_pool_connections=32),
    )


def _fresh(tmp_path: Path, name: str) -> Reconciler:
    """A new process's reconciler (`ssm-gitops apply`): empty observe cache."""
    return Reconciler("ssm-gitops", work_dir=tmp_path / name, sessions=Sessions())


def _live(aws_env: Any) -> dict[str, tuple[set[str], set[str]]]:
    """region -> (package names, association names) that exist."""
    found = {}
    for region in REGIONS:
        ssm = aws_env.client("ssm", region=region)
        documents = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])
        associations = ssm.list_associations()["Associations"]
        found[region] = (
            {d["Name"] for d in documents["DocumentIdentifiers"]},
            {a.get("AssociationName", "") for a in associations},
        )
    return found


def _declared(regions: tuple[str, ...]) -> dict[str, tuple[set[str], set[str]]]:
    return {
        region: (
            (set(PACKAGES), {f"{name}-all" for name in PACKAGES})
            if region in regions
            else (set(), set())
        )
        for region in REGIONS
    }


def test_throttled_describe_association_in_one_region_deletes_nothing_there(
    aws_env: Any, tmp_path: Path, quick_retries: None
) -> None:
    """Bug (issue 10, DATA LOSS on a partial view): adding a second region while
    DescribeAssociation is throttled in the first deleted every declared package of the first
    region: the desired state of the unreadable location was dropped, what was observed there
    was kept, so plan read the packages as removed from the repository and pruned them."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    one = _write(tmp_path / "repo", REGIONS[:1])
    first = _fresh(tmp_path, "a").run_pass(one, "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    assert _live(aws_env) == _declared(REGIONS[:1])
    # Associations of an older controller (no fingerprint): their fields need a description.
    ssm = aws_env.client("ssm", region=REGIONS[0])
    for listed in ssm.list_associations()["Associations"]:
        ssm.remove_tags_from_resource(
            ResourceType="Association", ResourceId=listed["AssociationId"], TagKeys=[SPEC_TAG]
        )

    both = _write(tmp_path / "repo", REGIONS)
    set_faults(
        aws_env,
        {"throttle": {"rate": 0.001, "burst": 0, "operations": ["DescribeAssociation"]}},
    )
    result = _fresh(tmp_path, "b").run_pass(both, "c2", full_resync=True)
    set_faults(aws_env, {})

    assert not [a for a in result.actions if a.action in ("delete", "delete_version")]
    live = _live(aws_env)
    assert live["us-east-1"] == _declared(REGIONS)["us-east-1"]  # nothing deleted there
    assert live["eu-west-1"][0] == set(PACKAGES)  # the readable region went ahead
    # Reported: the pass failed, the location named once, its resources failed.
    assert result.outcome is PassOutcome.FAILURE
    unreadable = [e for e in result.errors if "123456789012/us-east-1" in e]
    assert len(unreadable) == 1, result.errors
    assert "could not read its associations completely" in unreadable[0]
    states = {(r.kind, r.name): r.state for r in result.resources if r.region == "us-east-1"}
    assert states[("association", "toolbox-all")] is ResourceState.FAILED

    after = _fresh(tmp_path, "c").run_pass(both, "c2", full_resync=True)
    assert after.outcome is not PassOutcome.FAILURE, after.errors
    assert _live(aws_env) == _declared(REGIONS)
    quiet = _fresh(tmp_path, "d").plan_only(both, "c2", full_resync=True)
    assert not quiet.plan.actions and not quiet.errors


@pytest.mark.parametrize("seed", range(6))
def test_random_server_errors_never_delete_a_declared_resource(
    aws_env: Any, tmp_path: Path, quick_retries: None, seed: int
) -> None:
    """Bug (issue 10, DATA LOSS on a partial view): with 60% random 5xx over two converged
    regions, 4 of 6 seeds deleted every declared association of one region."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    repository = _write(tmp_path / "repo", REGIONS)
    first = _fresh(tmp_path, "a").run_pass(repository, "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    assert _live(aws_env) == _declared(REGIONS)

    set_faults(aws_env, {"error_rate": ERROR_RATE, "seed": seed})
    try:
        for attempt in range(2):
            result = _fresh(tmp_path, f"f{attempt}").run_pass(repository, "c1", full_resync=True)
            deleted = [
                a
                for a in result.actions
                if a.action in ("delete", "delete_version") and a.result is ActionResult.SUCCESS
            ]
            assert not deleted, deleted
    finally:
        set_faults(aws_env, {})
    assert _live(aws_env) == _declared(REGIONS)

    after = _fresh(tmp_path, "z").run_pass(repository, "c1", full_resync=True)
    assert after.outcome is not PassOutcome.FAILURE, after.errors
    quiet = _fresh(tmp_path, "q").plan_only(repository, "c1", full_resync=True)
    assert not quiet.plan.actions and not quiet.errors, quiet.plan.actions


# -- the same rules, pure (plan only) -------------------------------------------------------


def test_plan_holds_back_package_deletions_while_a_location_of_its_region_is_unread() -> None:
    """Bug (issue 10): a package is used by associations in every account of its region (by
    ARN); deleting it while one of those locations was not read could break what we did not
    see. The deletion is blocked, with the reason, and not counted against maxDeletes."""
    from controller.model.state import Desired, Location, Observed, PruneRules, Unread
    from controller.reconcile.plan import plan
    from tests.reconcile.test_plan import association, live, package

    other = Location("111122223333", "us-east-1")
    desired = Desired((package("kept"),), (), PruneRules(enabled=True, max_deletes=10))
    observed = Observed(
        (live("kept"), live("gone", versions=("1.0",))),
        (),
        (Unread(other, "association", "ThrottlingException"),),
    )
    result = plan(desired, observed)
    assert not [a for a in result.actions if a.is_deletion]
    (held,) = result.blocked
    assert (held.action.name, held.action.verb) == ("gone", "delete")
    assert "111122223333/us-east-1 could not be read" in held.reason

    # An association whose package could not be read is neither created nor updated.
    home = Location("123456789012", "us-east-1")
    desired = Desired((package("agent"),), (association(),), PruneRules(enabled=True))
    observed = Observed((), (), (Unread(home, "package", "InternalServerError"),))
    result = plan(desired, observed)
    assert result.actions == ()
    assert {(r.kind, r.state.value) for r in result.resources} == {
        ("package", "failed"),
        ("association", "failed"),
    }
