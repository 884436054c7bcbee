"""Fingerprints (issue 14, follow-up): what a cold read (an empty cache folder: `plan` on a
CI runner) can skip because apply recorded what it wrote; against the embedded endpoint,
counted by the endpoint's call counter."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from controller.aws import api as aws_api
from controller.aws import tags as aws_tags
from controller.model.fingerprint import (
    SPEC_TAG,
    VERSIONS_TAG,
    parse_spec_tag,
    spec_digest,
    spec_matches,
    spec_tag_value,
    versions_from_tag,
    versions_tag_value,
)
from controller.model.state import OWNER_TAG, DesiredVersion
from controller.reconcile.engine import DesiredPass
from controller.reconcile.result import ActionResult, PassOutcome
from tests.aws.conftest import set_faults
from tests.reconcile.conftest import (
    BUCKET,
    association,
    fresh_reconciler,
    package,
    packages_with_associations,
    target,
)

P = 3  # packages, 2 versions each; 2 associations per package

# API_Tag: Value `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`, at most 256 characters
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html).
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$")


@pytest.fixture
def converged(
    aws_env: Any, tmp_path: Path, make_version: Callable[..., DesiredVersion]
) -> DesiredPass:
    """P packages (2 versions each) and 2P associations, applied by one process."""
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    wanted = packages_with_associations(make_version, P)
    first = fresh_reconciler(tmp_path / "applied")
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
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions and not planned.errors
    assert planned.api_calls[("ListTagsForResource", "success")] == 2 * P
    assert ("DescribeAssociation", "success") not in planned.api_calls


def test_an_update_records_the_new_version_for_one_more_call(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """UpdateAssociation moves AssociationVersion: apply tags the new version (one
    AddTagsToResource per updated association), so the next cold read describes nothing."""
    wanted = _with(converged, "assoc-0-0", schedule="rate(2 days)")
    result = fresh_reconciler(tmp_path / "applied").run_desired(wanted)
    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert result.api_calls[("UpdateAssociation", "success")] == 1
    assert result.api_calls[("AddTagsToResource", "success")] == 1
    recorded = parse_spec_tag(_tags(aws_env, _ids(aws_env)["assoc-0-0"]).get(SPEC_TAG))
    assert recorded == ("2", spec_digest(wanted.desired.associations[0].spec))
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(wanted)
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
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert [(a.name, str(a.verb)) for a in planned.plan.actions] == [("assoc-1-0", "update")]
    assert planned.api_calls[("DescribeAssociation", "success")] == 1


def test_a_changed_repository_describes_to_show_the_old_values(
    converged: DesiredPass, tmp_path: Path
) -> None:
    """The desired spec no longer has the fingerprint's digest: the association is described,
    so the plan shows the live value it replaces."""
    wanted = _with(converged, "assoc-2-1", max_concurrency="5")
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(wanted)
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
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions
    assert planned.api_calls[("DescribeAssociation", "success")] == 2


# -- packages ----------------------------------------------------------------------------------


def _with_versions(wanted: DesiredPass, name: str, *versions: DesiredVersion) -> DesiredPass:
    desired = wanted.desired
    changed = tuple(
        package(name, versions, default="1.0") if p.name == name else p for p in desired.packages
    )
    return target(changed, desired.associations)


def test_the_versions_tag_value_fits_and_round_trips() -> None:
    rows = [("1.0", "1", "a" * 64), ("1.1", "2", "b" * 64), ("2.0", "5", "c" * 64)]
    value = versions_tag_value("2", rows)
    assert value is not None and _TAG_VALUE.match(value)
    assert versions_from_tag(value, "2", "1.1", [(n, h) for n, _, h in rows]) == ("2", rows)
    assert versions_from_tag(value, "1", "1.0", [(n, h) for n, _, h in rows]) is None  # default
    assert versions_from_tag(value, "2", "1.1", [("1.0", "a" * 64), ("1.1", "b" * 64)]) is None
    changed = [("1.0", "a" * 64), ("1.1", "d" * 64), ("2.0", "c" * 64)]  # content differs
    assert versions_from_tag(value, "2", "1.1", changed) is None
    many = [(f"{i}.0", str(i), "a" * 64) for i in range(1, 200, 2)]  # no runs: too long
    assert versions_tag_value("1", many) is None


def test_a_cold_plan_lists_no_versions_apply_recorded(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """Regression (issue 14): with an empty cache folder every package cost a
    ListDocumentVersions and a DescribeDocument per version; the ListDocuments page now
    carries the document's fingerprint, written by apply when it published the versions."""
    tags = aws_env.client("ssm").list_tags_for_resource(ResourceType="Document", ResourceId="pkg-0")
    assert any(t["Key"] == VERSIONS_TAG for t in tags["TagList"])
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert not planned.plan.actions and not planned.errors
    assert ("ListDocumentVersions", "success") not in planned.api_calls
    assert ("DescribeDocument", "success") not in planned.api_calls
    # Per package its sharing only; per association its tags only.
    assert planned.api_calls[("DescribeDocumentPermission", "success")] == P
    assert planned.api_calls[("ListTagsForResource", "success")] == 2 * P
    assert ("DescribeAssociation", "success") not in planned.api_calls


def test_a_default_moved_by_hand_moves_the_row_and_is_listed(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    aws_env.client("ssm").update_document_default_version(Name="pkg-1", DocumentVersion="2")
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(converged)
    assert [(a.name, str(a.verb)) for a in planned.plan.actions] == [("pkg-1", "set_default")]
    assert planned.api_calls[("ListDocumentVersions", "success")] == 1


def test_published_content_that_differs_is_still_an_error(
    converged: DesiredPass, tmp_path: Path, make_version: Callable[..., DesiredVersion]
) -> None:
    """The digest covers each version's content hash: a version whose repository content
    differs from what is published is read, and is an error as before (never republished)."""
    wanted = _with_versions(
        converged,
        "pkg-2",
        make_version("pkg-2", "1.0"),
        make_version("pkg-2", "1.1", payload="changed"),
    )
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(wanted)
    assert planned.api_calls[("ListDocumentVersions", "success")] == 1
    assert any("pkg-2" in str(e) and "1.1" in str(e) for e in planned.plan.errors), (
        planned.plan.errors
    )


def test_a_new_version_is_listed_published_and_recorded(
    converged: DesiredPass, tmp_path: Path, make_version: Callable[..., DesiredVersion]
) -> None:
    """A version the repository adds: the package is listed and the version published; apply
    then records the new fingerprint (one ListDocumentVersions, one AddTagsToResource), so
    the next cold plan lists nothing."""
    wanted = _with_versions(
        converged,
        "pkg-0",
        make_version("pkg-0", "1.0"),
        make_version("pkg-0", "1.1"),
        make_version("pkg-0", "1.2"),
    )
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(wanted)
    assert [(a.name, str(a.verb)) for a in planned.plan.actions] == [("pkg-0", "add_version")]
    result = fresh_reconciler(tmp_path / "applied").run_desired(wanted)
    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert result.api_calls[("RemoveTagsFromResource", "success")] == 1  # cleared first
    assert result.api_calls[("AddTagsToResource", "success")] == 1
    again = fresh_reconciler(tmp_path / "empty-2", dry_run=True).plan_desired(wanted)
    assert not again.plan.actions
    assert ("ListDocumentVersions", "success") not in again.api_calls


def test_a_full_resync_lists_every_package_whatever_its_fingerprint(
    converged: DesiredPass, tmp_path: Path, aws_env: Any
) -> None:
    """A version added by hand moves no ListDocuments row (it shows the default version), so
    only a listing sees it: apply and the controller's resyncs (full) always list."""
    ssm = aws_env.client("ssm")
    content = ssm.get_document(Name="pkg-0", DocumentVersion="2")["Content"]
    ssm.update_document(
        Name="pkg-0",
        Content=content.replace('"1.1"', '"9.9"'),
        VersionName="9.9",
        DocumentVersion="$LATEST",
        Attachments=[{"Key": "SourceUrl", "Values": [f"s3://{BUCKET}/packages/pkg-0/1.1/"]}],
    )
    planned = fresh_reconciler(tmp_path / "empty").plan_desired(converged, full_resync=True)
    assert planned.api_calls[("ListDocumentVersions", "success")] == P
    [live] = [p for p in planned.observed.packages if p.name == "pkg-0"]
    assert "9.9" in {v.name for v in live.versions}


def test_a_failed_change_leaves_no_fingerprint(
    converged: DesiredPass, tmp_path: Path, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint is cleared before a package's versions change and written only when
    every step succeeded: after a failure (or a pass killed halfway) a cold plan lists."""
    monkeypatch.setattr(aws_api, "RETRIES", Config(retries={"mode": "standard", "max_attempts": 1}))
    desired = converged.desired
    moved = tuple(
        package(p.name, p.versions, default="1.1") if p.name == "pkg-1" else p
        for p in desired.packages
    )
    wanted = target(moved, desired.associations)
    set_faults(
        aws_env,
        {"throttle": {"rate": 0.001, "burst": 0, "operations": ["UpdateDocumentDefaultVersion"]}},
    )
    result = fresh_reconciler(tmp_path / "applied").run_desired(wanted)
    set_faults(aws_env, {})
    assert [(r.name, r.action, r.result) for r in result.actions] == [
        ("pkg-1", "set_default", ActionResult.FAILURE)
    ]
    tags = aws_env.client("ssm").list_tags_for_resource(ResourceType="Document", ResourceId="pkg-1")
    assert VERSIONS_TAG not in {t["Key"] for t in tags["TagList"]}
    planned = fresh_reconciler(tmp_path / "empty", dry_run=True).plan_desired(wanted)
    assert [(a.name, str(a.verb)) for a in planned.plan.actions] == [("pkg-1", "set_default")]
    assert planned.api_calls[("ListDocumentVersions", "success")] == 1


def test_an_unowned_package_keeps_its_tags(
    converged: DesiredPass, tmp_path: Path, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Safety unchanged: the fingerprint is cleared only after the package's ownership was
    read afresh; a package that lost our owner tag since it was observed is left alone, its
    tags included."""
    real = aws_tags.tags_of

    def owner_gone(clients: Any, resource_type: str, resource_id: str) -> dict[str, str]:
        tags = real(clients, resource_type, resource_id)
        if resource_type == "Document":  # as if removed by hand between observe and apply
            tags.pop(OWNER_TAG, None)
        return tags

    monkeypatch.setattr(aws_tags, "tags_of", owner_gone)
    desired = converged.desired
    moved = tuple(
        package(p.name, p.versions, default="1.1") if p.name == "pkg-1" else p
        for p in desired.packages
    )
    result = fresh_reconciler(tmp_path / "applied").run_desired(target(moved, desired.associations))
    assert [(r.name, r.action, r.result) for r in result.actions] == [
        ("pkg-1", "set_default", ActionResult.SKIPPED)
    ]
    assert ("RemoveTagsFromResource", "success") not in result.api_calls
    assert ("AddTagsToResource", "success") not in result.api_calls
    tags = aws_env.client("ssm").list_tags_for_resource(ResourceType="Document", ResourceId="pkg-1")
    assert VERSIONS_TAG in {t["Key"] for t in tags["TagList"]}
