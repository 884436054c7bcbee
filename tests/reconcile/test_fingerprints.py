"""Fingerprints (issue 14, follow-up): what a cold read (an empty cache folder: `plan` on a
CI runner) can skip because apply recorded what it wrote; against the embedded endpoint,
counted by the endpoint's call counter."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.aws.session import Sessions
from controller.model.fingerprint import (
    SPEC_TAG,
    parse_spec_tag,
    spec_digest,
    spec_matches,
    spec_tag_value,
)
from controller.model.state import DesiredVersion
from controller.reconcile import cache
from controller.reconcile.engine import DesiredPass, Reconciler
from controller.reconcile.result import PassOutcome
from tests.reconcile.conftest import BUCKET, association, package, target

P = 3  # packages, 2 versions each; 2 associations per package

# API_Tag: Value `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`, at most 256 characters
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html).
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$")


def _fresh(cache_dir: Path, *, dry_run: bool = False) -> Reconciler:
    """A Reconciler as a new process makes it: nothing in memory, the cache folder on disk."""
    return Reconciler(
        "ssm-gitops",
        work_dir=cache_dir / "work",
        sessions=Sessions(),
        dry_run=dry_run,
        store=cache.LastingStore(cache.store_path(cache_dir, "ssm-gitops", "")),
    )


@pytest.fixture
def converged(
    aws_env: Any, tmp_path: Path, make_version: Callable[..., DesiredVersion]
) -> DesiredPass:
    """P packages (2 versions each) and 2P associations, applied by one process."""
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    packages = tuple(
        package(
            f"pkg-{i}",
            (make_version(f"pkg-{i}", "1.0"), make_version(f"pkg-{i}", "1.1")),
            default="1.0",
        )
        for i in range(P)
    )
    associations = tuple(
        association(f"assoc-{i}-{j}", f"pkg-{i}") for i in range(P) for j in range(2)
    )
    wanted = target(packages, associations)
    first = _fresh(tmp_path / "applied")
    assert first.run_desired(wanted).outcome is PassOutcome.SUCCESS
    return wanted


def _ids(aws_env: Any) -> dict[str, str]:
    listed = aws_env.client("ssm").list_associations()["Associations"]
    return {a["AssociationName"]: a["AssociationId"] for a in listed}


def _tags(aws_env: Any, association_id: str) -> dict[str, str]:
    found = aws_env.client("ssm").list_tags_for_resource(
        ResourceType="Association", ResourceId=association_id
    )["TagList"]
    return {t["Key"]: t["Value"] for t in found}


def _with(wanted: DesiredPass, name: str, **fields: Any) -> DesiredPass:
    desired = wanted.desired
    package_name = name.split("-")[1]
    changed = tuple(
        association(name, f"pkg-{package_name}", **fields) if a.name == name else a
        for a in desired.associations
    )
    return target(desired.packages, changed)


def test_the_tag_value_is_a_valid_tag_value() -> None:
    spec = association("a", "pkg-0").spec
    value = spec_tag_value("12", spec)
    assert _TAG_VALUE.match(value) and len(value) <= 256
    assert parse_spec_tag(value) == ("12", spec_digest(spec))
    assert spec_matches(value, "12", spec)
    assert not spec_matches(value, "13", spec)
    assert not spec_matches(value, "12", association("a", "pkg-0", schedule="rate(2 days)").spec)
    for broken in ("", "2:12:" + spec_digest(spec), "1:x:" + spec_digest(spec), "1:12:abc", None):
        assert parse_spec_tag(broken) is None


def test_a_cold_plan_describes_no_association_apply_wrote(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """Regression (issue 14): with an empty cache folder every association cost a
    ListTagsForResource and a DescribeAssociation (2A of Terraform's 4P + 2A); the tag read
    (needed for ownership anyway) now carries the fingerprint apply wrote at create."""
    for association_id in _ids(aws_env).values():
        assert parse_spec_tag(_tags(aws_env, association_id).get(SPEC_TAG)) is not None
    planned = _fresh(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions and not planned.errors
    assert planned.api_calls[("ListTagsForResource", "success")] == 2 * P
    assert ("DescribeAssociation", "success") not in planned.api_calls


def test_an_update_records_the_new_version_for_one_more_call(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """UpdateAssociation moves AssociationVersion: apply tags the new version (one
    AddTagsToResource per updated association), so the next cold read describes nothing."""
    wanted = _with(converged, "assoc-0-0", schedule="rate(2 days)")
    result = _fresh(tmp_path / "applied").run_desired(wanted)
    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert result.api_calls[("UpdateAssociation", "success")] == 1
    assert result.api_calls[("AddTagsToResource", "success")] == 1
    recorded = parse_spec_tag(_tags(aws_env, _ids(aws_env)["assoc-0-0"]).get(SPEC_TAG))
    assert recorded == ("2", spec_digest(wanted.desired.associations[0].spec))
    planned = _fresh(tmp_path / "empty", dry_run=True).plan_desired(wanted)
    assert not planned.plan.actions
    assert ("DescribeAssociation", "success") not in planned.api_calls


def test_a_hand_edit_moves_the_version_and_is_described(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """A hand edit moves AssociationVersion past the fingerprint's: that association (only)
    is described, and its drift is planned."""
    ssm = aws_env.client("ssm")
    association_id = _ids(aws_env)["assoc-1-0"]
    full = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    ssm.update_association(
        AssociationId=association_id,
        Name=full["Name"],
        AssociationName=full["AssociationName"],
        Parameters=full["Parameters"],
        Targets=full["Targets"],
        ScheduleExpression=full["ScheduleExpression"],
        MaxConcurrency="7",  # a field ListAssociations does not show
    )
    planned = _fresh(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert [(a.name, str(a.verb)) for a in planned.plan.actions] == [("assoc-1-0", "update")]
    assert planned.api_calls[("DescribeAssociation", "success")] == 1


def test_a_changed_repository_describes_to_show_the_old_values(
    converged: DesiredPass, tmp_path: Path
) -> None:
    """The desired spec no longer has the fingerprint's digest: the association is described,
    so the plan shows the live value it replaces."""
    wanted = _with(converged, "assoc-2-1", max_concurrency="5")
    planned = _fresh(tmp_path / "empty", dry_run=True).plan_desired(wanted)
    [action] = planned.plan.actions
    assert action.name == "assoc-2-1"
    assert [(c.field, c.old, c.new) for c in action.changes] == [("maxConcurrency", "", "5")]
    assert planned.api_calls[("DescribeAssociation", "success")] == 1


def test_an_association_without_a_fingerprint_is_described(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """Associations written by an older controller carry no fingerprint (here: removed by
    hand), or one that does not parse: they are described, as before."""
    ssm = aws_env.client("ssm")
    ids = _ids(aws_env)
    ssm.remove_tags_from_resource(
        ResourceType="Association", ResourceId=ids["assoc-0-1"], TagKeys=[SPEC_TAG]
    )
    ssm.add_tags_to_resource(
        ResourceType="Association",
        ResourceId=ids["assoc-1-1"],
        Tags=[{"Key": SPEC_TAG, "Value": "something else"}],
    )
    planned = _fresh(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions
    assert planned.api_calls[("DescribeAssociation", "success")] == 2
