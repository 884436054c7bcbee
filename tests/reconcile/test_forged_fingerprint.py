"""A forged association fingerprint (controller/model/fingerprint.py), issue 14/16 review.

The association fingerprint stood for a DescribeAssociation in every observe (apply and the
running controller's passes, full resyncs included), and the spec it vouched for was then
kept in the cache under that AssociationVersion. So a hand edit followed by a forged
`ssm-gitops:spec` tag (one that names the new AssociationVersion and the digest of the
repository's spec) was never reverted: not by apply, not by a full resync, not by a new
process. Now every cached spec records where it came from (described, written by apply,
fingerprint only); a fingerprint-only spec serves `plan` only, and a pass that acts, or a
full resync, describes it once (then it is "described").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.aws.session import Sessions
from controller.model.fingerprint import SPEC_TAG, VERSIONS_TAG, spec_tag_value
from controller.model.state import DesiredVersion
from controller.reconcile import cache
from controller.reconcile.engine import DesiredPass, Reconciler
from controller.reconcile.result import PassOutcome
from tests.reconcile.conftest import BUCKET, association, fresh_reconciler, package, target

EVIL = [{"Key": "tag:env", "Values": ["elsewhere"]}]
DESCRIBED = ("DescribeAssociation", "success")


@pytest.fixture
def wanted(aws_env: Any, make_version: Callable[..., DesiredVersion]) -> DesiredPass:
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    return target(
        (package("agent", (make_version("agent", "1.0"),)),),
        (association("agent-prod", "agent"),),
    )


def _forge(aws_env: Any, wanted: DesiredPass) -> str:
    """A hand edit (other targets), then a forged fingerprint naming the new version and the
    repository's spec; returns the association id."""
    ssm = aws_env.client("ssm")
    (live,) = ssm.list_associations()["Associations"]
    fields = ssm.describe_association(AssociationId=live["AssociationId"])["AssociationDescription"]
    ssm.update_association(  # a hand edit: other targets
        AssociationId=fields["AssociationId"],
        AssociationName=fields["AssociationName"],
        Name=fields["Name"],
        Targets=EVIL,
        Parameters=fields["Parameters"],
        **{k: fields[k] for k in ("ScheduleExpression",) if k in fields},
    )
    moved = ssm.describe_association(AssociationId=live["AssociationId"])
    version = moved["AssociationDescription"]["AssociationVersion"]
    forged = spec_tag_value(version, wanted.desired.associations[0].spec)
    ssm.add_tags_to_resource(
        ResourceType="Association",
        ResourceId=live["AssociationId"],
        Tags=[{"Key": SPEC_TAG, "Value": forged}],
    )
    return str(live["AssociationId"])


def _targets(aws_env: Any, association_id: str) -> Any:
    found = aws_env.client("ssm").describe_association(AssociationId=association_id)
    return found["AssociationDescription"]["Targets"]


def test_a_forged_fingerprint_never_hides_a_hand_edit_from_a_full_resync(
    wanted: DesiredPass, aws_env: Any, tmp_path: Path
) -> None:
    """Bug (issue 14/16 review): a full resync in a new process took the forged fingerprint
    for a description and never reverted the hand edit."""
    assert fresh_reconciler(tmp_path / "first").run_desired(wanted).outcome is PassOutcome.SUCCESS
    association_id = _forge(aws_env, wanted)
    fresh = Reconciler("ssm-gitops", work_dir=tmp_path / "other", sessions=Sessions())
    fresh.run_desired(wanted, full_resync=True)
    assert _targets(aws_env, association_id) != EVIL


def test_a_plan_shares_its_fingerprint_only_spec_but_apply_describes_it(
    wanted: DesiredPass, aws_env: Any, tmp_path: Path
) -> None:
    """Bug (issue 14/16 review): a `plan` (which may trust a fingerprint) left the spec the
    forged tag vouched for in the shared cache folder, and a later `apply` (a quiet pass of
    another process) took it from there as if described."""
    assert fresh_reconciler(tmp_path / "first").run_desired(wanted).outcome is PassOutcome.SUCCESS
    association_id = _forge(aws_env, wanted)
    planned = fresh_reconciler(tmp_path / "shared", dry_run=True).plan_desired(wanted)
    assert not planned.plan.actions  # documented: a forged fingerprint can fool a plan
    assert DESCRIBED not in planned.api_calls
    applied = fresh_reconciler(tmp_path / "shared").run_desired(wanted)
    assert applied.api_calls[DESCRIBED] == 1
    assert applied.outcome is PassOutcome.SUCCESS, applied.errors
    assert _targets(aws_env, association_id) != EVIL


def test_the_same_process_plans_on_a_fingerprint_then_describes_before_acting(
    wanted: DesiredPass, aws_env: Any, tmp_path: Path
) -> None:
    """Bug (issue 14/16 review): the in-memory cache kept the fingerprint's spec too, so a
    quiet pass of the process that planned on it never described it."""
    assert fresh_reconciler(tmp_path / "first").run_desired(wanted).outcome is PassOutcome.SUCCESS
    association_id = _forge(aws_env, wanted)
    one = fresh_reconciler(tmp_path / "one")
    assert not one.plan_desired(wanted).plan.actions
    acted = one.run_desired(wanted)
    assert acted.outcome is PassOutcome.SUCCESS, acted.errors
    assert _targets(aws_env, association_id) != EVIL


def test_a_fingerprint_only_spec_is_described_once_then_kept(
    wanted: DesiredPass, tmp_path: Path
) -> None:
    """Budget: the first acting pass after a cold `plan` describes what the fingerprint
    vouched for, once; from then on it is "described" in the cache folder: no further
    description in that process or the next."""
    assert fresh_reconciler(tmp_path / "first").run_desired(wanted).outcome is PassOutcome.SUCCESS
    assert (
        DESCRIBED
        not in fresh_reconciler(tmp_path / "c", dry_run=True).plan_desired(wanted).api_calls
    )
    controller = fresh_reconciler(tmp_path / "c")
    assert controller.run_desired(wanted, full_resync=True).api_calls[DESCRIBED] == 1
    assert DESCRIBED not in controller.run_desired(wanted, full_resync=True).api_calls
    assert DESCRIBED not in fresh_reconciler(tmp_path / "c").run_desired(wanted).api_calls


def test_what_apply_wrote_is_not_described_again(wanted: DesiredPass, tmp_path: Path) -> None:
    """Budget: apply records the spec it sent under the AssociationVersion its own
    Create/UpdateAssociation returned ("written"), so the passes after it, in this process
    and the next, describe nothing (the no-op pass stays at the floor)."""
    first = fresh_reconciler(tmp_path / "c")
    assert first.run_desired(wanted).outcome is PassOutcome.SUCCESS
    assert DESCRIBED not in first.run_desired(wanted, full_resync=True).api_calls
    changed = target(
        wanted.desired.packages,
        (association("agent-prod", "agent", schedule="rate(2 days)"),),
    )
    updated = first.run_desired(changed)
    assert updated.outcome is PassOutcome.SUCCESS, updated.errors
    assert DESCRIBED not in first.run_desired(changed).api_calls
    assert (
        DESCRIBED
        not in fresh_reconciler(tmp_path / "c").run_desired(changed, full_resync=True).api_calls
    )


def test_a_spec_cached_without_its_origin_is_not_trusted_by_apply(
    wanted: DesiredPass, aws_env: Any, tmp_path: Path
) -> None:
    """A cache folder written before origins were recorded may hold a fingerprint's spec
    under the forged version: an entry without an origin serves `plan` only."""
    assert fresh_reconciler(tmp_path / "first").run_desired(wanted).outcome is PassOutcome.SUCCESS
    association_id = _forge(aws_env, wanted)
    assert not fresh_reconciler(tmp_path / "old", dry_run=True).plan_desired(wanted).plan.actions
    path = cache.store_path(tmp_path / "old", "ssm-gitops", "")
    document = json.loads(path.read_text())
    for entry in document["specs"].values():
        entry.pop("from", None)
    path.write_text(json.dumps(document))
    applied = fresh_reconciler(tmp_path / "old").run_desired(wanted)
    assert applied.outcome is PassOutcome.SUCCESS, applied.errors
    assert _targets(aws_env, association_id) != EVIL


def test_a_versions_fingerprint_never_hides_a_deleted_version_from_an_acting_pass(
    aws_env: Any, make_version: Callable[..., DesiredVersion], tmp_path: Path
) -> None:
    """Bug (issue 14/16 review): the package fingerprint stood for ListDocumentVersions in
    any quiet pass without a cache entry, not only `plan`: a heal (which forgets the
    package first) or a fresh process's quiet pass. A version deleted by hand moves no
    ListDocuments row, and the tag (apply's own, or a forged one) still names it: the pass
    that acts lists the versions and publishes it again."""
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    versions = (make_version("agent", "1.0"), make_version("agent", "1.1"))
    wanted = target((package("agent", versions, default="1.0"),))
    assert fresh_reconciler(tmp_path / "first").run_desired(wanted).outcome is PassOutcome.SUCCESS
    ssm = aws_env.client("ssm")
    tags = ssm.list_tags_for_resource(ResourceType="Document", ResourceId="agent")["TagList"]
    assert any(t["Key"] == VERSIONS_TAG for t in tags)
    ssm.delete_document(Name="agent", VersionName="1.1")  # a hand edit: the row stays
    assert not fresh_reconciler(tmp_path / "plan", dry_run=True).plan_desired(wanted).plan.actions
    applied = fresh_reconciler(tmp_path / "apply").run_desired(wanted)
    assert [(a.name, a.action) for a in applied.actions] == [("agent", "add_version")]
