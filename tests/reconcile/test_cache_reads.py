"""What a fresh process reads, with the cache folder an earlier process left (issue 14):
against the embedded endpoint, counted by the endpoint's call counter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.model.fingerprint import VERSIONS_TAG
from controller.model.state import OWNER_TAG, DesiredVersion
from controller.reconcile import cache
from controller.reconcile.engine import DesiredPass
from controller.reconcile.observe import package as observe_package
from controller.reconcile.result import ActionResult, PassOutcome
from tests.reconcile.conftest import (
    BUCKET,
    association,
    fresh_reconciler,
    packages_with_associations,
    target,
)

P = 3  # packages, 2 versions each
# The list pages, and who we are (STS, once per process).
LIST_PAGES = {
    ("GetCallerIdentity", "success"): 1,
    ("ListDocuments", "success"): 1,
    ("ListAssociations", "success"): 1,
}


@pytest.fixture
def converged(
    aws_env: Any, tmp_path: Path, make_version: Callable[..., DesiredVersion]
) -> DesiredPass:
    """P packages (2 versions each) and 2P associations, applied by one process."""
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    wanted = packages_with_associations(make_version, P)
    first = fresh_reconciler(tmp_path / "cache")
    assert first.run_desired(wanted).outcome is PassOutcome.SUCCESS
    assert first.run_desired(wanted, full_resync=True).outcome is PassOutcome.NO_CHANGE
    return wanted


def test_plan_in_a_fresh_process_with_the_cache_folder_reads_at_the_floor(
    converged: DesiredPass, tmp_path: Path
) -> None:
    """Regression (issue 14): `plan` in a fresh process read everything again (3,025 calls at
    P=200/A=1000, 13.5x the floor): every tag, description, version list and hash."""
    planned = fresh_reconciler(tmp_path / "cache", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions and not planned.errors
    assert dict(planned.api_calls) == LIST_PAGES | {("DescribeDocumentPermission", "success"): P}


def test_a_full_resync_reads_pages_plus_two_per_package(
    converged: DesiredPass, tmp_path: Path
) -> None:
    """Regression (issue 14): a full resync re-read every association's tags and description
    and three DescribeDocument per package (2,624 calls at P=200/A=1000)."""
    reconciler = fresh_reconciler(tmp_path / "cache")
    result = reconciler.run_desired(converged, full_resync=True)
    assert result.outcome is PassOutcome.NO_CHANGE, result.errors
    assert dict(result.api_calls) == LIST_PAGES | {
        ("DescribeDocumentPermission", "success"): P,
        ("ListDocumentVersions", "success"): P,  # versions and IsDefaultVersion, one call
    }


def _drop_fingerprints(aws_env: Any) -> None:
    ssm = aws_env.client("ssm")
    for i in range(P):
        ssm.remove_tags_from_resource(
            ResourceType="Document", ResourceId=f"pkg-{i}", TagKeys=[VERSIONS_TAG]
        )


def test_version_hashes_are_read_once_ever(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """What AWS never changes (a version's content hash) is kept for good, on disk: a fresh
    process whose package entries are too old to trust lists the versions again, but
    describes none of them."""
    _drop_fingerprints(aws_env)  # as an older controller left them: the versions are listed
    reconciler = fresh_reconciler(tmp_path / "cache")
    observe_package.TRUSTED_FOR_SECONDS, saved = -1.0, observe_package.TRUSTED_FOR_SECONDS
    try:
        planned = reconciler.plan_desired(converged)
    finally:
        observe_package.TRUSTED_FOR_SECONDS = saved
    assert ("DescribeDocument", "success") not in planned.api_calls
    assert planned.api_calls[("ListDocumentVersions", "success")] == P


def test_an_empty_cache_folder_reads_no_pointer_description(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """A cold read without the packages' fingerprints (an older controller's): ListDocumentVersions
    carries IsDefaultVersion, so the default pointer needs no DescribeDocument; one
    DescribeDocument per version (its hash), one tag read per association (its fingerprint
    stands for the description: test_fingerprints.py)."""
    _drop_fingerprints(aws_env)
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions, planned.plan.actions
    assert dict(planned.api_calls) == LIST_PAGES | {
        ("DescribeDocumentPermission", "success"): P,
        ("ListDocumentVersions", "success"): P,
        ("DescribeDocument", "success"): 2 * P,
        ("ListTagsForResource", "success"): 2 * P,
    }


def test_hand_edits_are_seen_through_the_cache(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """An association edited by hand (its AssociationVersion moves) is described again; a
    default moved by hand (its ListDocuments row moves) is listed again; nothing else is."""
    ssm = aws_env.client("ssm")
    edited = next(
        a for a in ssm.list_associations()["Associations"] if a["AssociationName"] == "assoc-0-0"
    )
    full = ssm.describe_association(AssociationId=edited["AssociationId"])["AssociationDescription"]
    ssm.update_association(
        AssociationId=full["AssociationId"],
        Name=full["Name"],
        AssociationName=full["AssociationName"],
        Parameters=full["Parameters"],
        Targets=full["Targets"],
        ScheduleExpression="rate(3 days)",
    )
    ssm.update_document_default_version(Name="pkg-1", DocumentVersion="2")
    planned = fresh_reconciler(tmp_path / "cache", dry_run=True).plan_desired(converged)
    assert sorted((a.name, str(a.verb)) for a in planned.plan.actions) == [
        ("assoc-0-0", "update"),
        ("pkg-1", "set_default"),
    ]
    assert planned.api_calls[("DescribeAssociation", "success")] == 1
    assert planned.api_calls[("ListDocumentVersions", "success")] == 1
    assert ("ListTagsForResource", "success") not in planned.api_calls


def test_ownership_from_the_cache_folder_is_read_again_before_a_change(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """The safety rule on the cached path: a fresh process takes the owner tag from the cache
    folder to plan, but reads it afresh before it changes anything (the tag was removed by
    hand after the cache was written)."""
    ssm = aws_env.client("ssm")
    ids = {
        a["AssociationName"]: a["AssociationId"] for a in ssm.list_associations()["Associations"]
    }
    ssm.remove_tags_from_resource(
        ResourceType="Association", ResourceId=ids["assoc-0-0"], TagKeys=[OWNER_TAG]
    )
    desired = converged.desired
    changed = tuple(
        association("assoc-0-0", "pkg-0", schedule="rate(2 days)") if a.name == "assoc-0-0" else a
        for a in desired.associations
    )
    wanted = target(desired.packages, changed)
    result = fresh_reconciler(tmp_path / "cache").run_desired(wanted)
    [record] = [r for r in result.actions if r.name == "assoc-0-0"]
    assert (record.action, record.result) == ("update", ActionResult.SKIPPED)
    assert "no longer carries ssm-gitops:owner" in record.message
    live = ssm.describe_association(AssociationId=ids["assoc-0-0"])["AssociationDescription"]
    assert live["ScheduleExpression"] == "rate(1 day)"
    # ... and the cache folder forgets that owner: the next process reads the tag again.
    again = fresh_reconciler(tmp_path / "cache", dry_run=True).plan_desired(wanted)
    assert again.api_calls[("ListTagsForResource", "success")] == 1
    assert not [a for a in again.plan.actions if a.name == "assoc-0-0" and a.verb == "update"]


def test_a_hostile_cache_file_costs_reads_only(converged: DesiredPass, tmp_path: Path) -> None:
    """Entries that do not decode are misses: read from AWS, never trusted, never a crash."""
    path = cache.store_path(tmp_path / "cache", "ssm-gitops", "")
    data = json.loads(path.read_text())
    for section in ("specs", "packages", "owners", "hashes"):
        data[section] = {key: {"evil": [1, 2]} for key in data[section]}
    path.write_text(json.dumps(data))
    planned = fresh_reconciler(tmp_path / "cache", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions and not planned.errors
    # Owners are read again, and with them each association's fingerprint: no description.
    assert planned.api_calls[("ListTagsForResource", "success")] == 2 * P
    assert ("DescribeAssociation", "success") not in planned.api_calls
    # Rewritten whole: the next fresh process is back at the floor.
    planned = fresh_reconciler(tmp_path / "cache", dry_run=True).plan_desired(converged)
    assert sum(planned.api_calls.values()) == 3 + P
