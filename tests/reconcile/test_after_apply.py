"""The pass right after an apply costs the no-op floor (issue 14/15 follow-up): apply fills
the observe cache with what it wrote itself, so nothing it just made is read back. Against
the embedded endpoint, counted by the controller's call counter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from controller.model.state import OWNER_TAG, DesiredVersion, Location
from controller.reconcile.engine import DesiredPass
from controller.reconcile.result import ActionResult, PassOutcome
from tests.reconcile.conftest import BUCKET, association, fresh_reconciler, package, target

P = 3  # packages
A = 2 * P  # associations
# A quiet pass at the floor: the list pages and one sharing read per package.
FLOOR = {
    ("ListDocuments", "success"): 1,
    ("ListAssociations", "success"): 1,
    ("DescribeDocumentPermission", "success"): P,
}


@pytest.fixture
def wanted(aws_env: Any, make_version: Callable[..., DesiredVersion]) -> DesiredPass:
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    packages = tuple(
        package(f"pkg-{i}", (make_version(f"pkg-{i}", "1.0"),), share=("111122223333",))
        for i in range(P)
    )
    associations = tuple(
        association(f"assoc-{i}-{j}", f"pkg-{i}") for i in range(P) for j in range(2)
    )
    return target(packages, associations)


def test_the_pass_after_a_big_apply_reads_nothing_apply_created(
    wanted: DesiredPass, tmp_path: Path
) -> None:
    """Regression: the first pass after an apply read back every association it had just
    created (a ListTagsForResource each, 3,000 calls at 50 accounts x 3 regions) and listed
    every package it had just created (ListDocumentVersions and a DescribeDocument per
    version), though apply had sent (or been answered) all of it."""
    reconciler = fresh_reconciler(tmp_path / "cache")
    first = reconciler.run_desired(wanted)
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    after = reconciler.run_desired(wanted)
    assert after.outcome is PassOutcome.NO_CHANGE, after.errors
    # No association is read back. A package apply published is listed once more (its
    # versions and default: the versions fingerprint serves `plan` only, so that a version
    # deleted by hand is never hidden from a pass that acts); the pass after is the floor.
    assert dict(after.api_calls) == FLOOR | {
        ("ListDocumentVersions", "success"): P,
        ("DescribeDocument", "success"): P,
    }
    again = reconciler.run_desired(wanted)
    assert dict(again.api_calls) == FLOOR


def test_a_fresh_process_plans_at_the_floor_right_after_an_apply(
    wanted: DesiredPass, tmp_path: Path
) -> None:
    """The same for `plan` in another process sharing the cache folder: what apply wrote
    into the cache is saved on disk with the pass."""
    assert fresh_reconciler(tmp_path / "cache").run_desired(wanted).outcome is PassOutcome.SUCCESS
    planned = fresh_reconciler(tmp_path / "cache", dry_run=True).plan_desired(wanted)
    assert not planned.plan.actions and not planned.errors
    assert dict(planned.api_calls) == FLOOR | {("GetCallerIdentity", "success"): 1}


def test_an_update_is_not_described_again(wanted: DesiredPass, tmp_path: Path) -> None:
    """Regression: after an UpdateAssociation the next pass described the association again
    (its AssociationVersion moved), though UpdateAssociation's answer carries it."""
    reconciler = fresh_reconciler(tmp_path / "cache")
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    assert reconciler.run_desired(wanted).outcome is PassOutcome.NO_CHANGE
    changed = replace(
        wanted,
        desired=replace(
            wanted.desired,
            associations=tuple(
                replace(a, spec=replace(a.spec, schedule="rate(2 days)"))
                for a in wanted.desired.associations
            ),
        ),
    )
    updated = reconciler.run_desired(changed)
    assert updated.outcome is PassOutcome.SUCCESS, updated.errors
    assert sum(1 for a in updated.actions if a.action == "update") == A
    after = reconciler.run_desired(changed)
    assert after.outcome is PassOutcome.NO_CHANGE, after.errors
    assert dict(after.api_calls) == FLOOR


def test_what_apply_remembered_never_replaces_the_owner_check(
    wanted: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """Safety unchanged: an association whose owner tag was removed by hand after apply
    created it is left alone by the next change (its tags are read afresh before it)."""
    reconciler = fresh_reconciler(tmp_path / "cache")
    assert reconciler.run_desired(wanted).outcome is PassOutcome.SUCCESS
    ssm = aws_env.client("ssm")
    taken = next(
        a
        for a in ssm.list_associations()["Associations"]
        if a.get("AssociationName") == "assoc-0-0"
    )
    ssm.remove_tags_from_resource(
        ResourceType="Association", ResourceId=taken["AssociationId"], TagKeys=[OWNER_TAG]
    )
    changed = replace(
        wanted,
        desired=replace(
            wanted.desired,
            associations=tuple(
                replace(a, spec=replace(a.spec, schedule="rate(3 days)"))
                for a in wanted.desired.associations
            ),
        ),
    )
    result = reconciler.run_desired(changed)
    # Planned from the cache's hint, then refused by the fresh read: never applied.
    # (A create of ours next to it is what the contract asks once it is seen as foreign.)
    touched = [a for a in result.actions if a.name == "assoc-0-0" and a.action == "update"]
    assert all(a.result is not ActionResult.SUCCESS for a in touched), touched
    live = ssm.describe_association(AssociationId=taken["AssociationId"])
    assert live["AssociationDescription"]["ScheduleExpression"] == "rate(1 day)"


def test_an_answer_of_an_unexpected_shape_is_only_not_remembered(tmp_path: Path) -> None:
    """What apply remembers is a cache: an answer it cannot read never fails the change."""
    reconciler = fresh_reconciler(tmp_path / "cache")
    observer = reconciler.observer.associations
    where = Location("123456789012", "us-east-1")
    observer.remember(where, {"AssociationId": "a-1", "AssociationVersion": "1", "Targets": 3})
    assert observer.store.get("specs", "123456789012/us-east-1/a-1") is None
