"""observe -> plan -> apply against the embedded local endpoint (real boto3, real HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from controller.model.state import DesiredVersion
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import ActionResult, PassOutcome, ResourceState
from tests.reconcile.conftest import association, package, target


def converge(reconciler: Reconciler, wanted: Any, passes: int = 1) -> None:
    for _ in range(passes):
        result = reconciler.run_desired(wanted)
        assert not result.errors, result.errors
    again = reconciler.run_desired(wanted, full_resync=True)
    assert again.outcome is PassOutcome.NO_CHANGE, [a for a in again.actions]
    assert all(r.state is ResourceState.IN_SYNC for r in again.resources), again.resources


def test_from_empty_converges_and_second_pass_is_no_change(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    v1, v2 = make_version("agent", "1.0"), make_version("agent", "1.1")
    wanted = target(
        (package("agent", (v1, v2), default="1.0", share=("111122223333",)),),
        (association("agent-prod", "agent"),),
    )
    result = reconciler.run_desired(wanted)
    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert [(r.kind, r.action, r.result) for r in result.actions] == [
        ("package", "create", ActionResult.SUCCESS),
        ("package", "add_version", ActionResult.SUCCESS),  # the default stays on 1.0
        ("package", "share", ActionResult.SUCCESS),
        ("association", "create", ActionResult.SUCCESS),
    ]
    converge(reconciler, wanted, passes=0)

    ssm = aws_env.client("ssm")
    versions = ssm.list_document_versions(Name="agent")["DocumentVersions"]
    assert sorted(v["VersionName"] for v in versions) == ["1.0", "1.1"]
    assert ssm.describe_document(Name="agent")["Document"]["DefaultVersion"] == "1"
    shared = ssm.describe_document_permission(Name="agent", PermissionType="Share")
    assert shared["AccountIds"] == ["111122223333"]
    associations = ssm.list_associations()["Associations"]
    assert [a["AssociationName"] for a in associations] == ["agent-prod"]


def test_a_create_pass_makes_no_redundant_calls(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    """Regression: the bucket was checked twice (engine and applier), the content hash
    was read by a second DescribeDocument, and set_default listed the versions again."""
    v1, v2 = make_version("agent", "1.0"), make_version("agent", "1.1")
    wanted = target(
        (package("agent", (v1, v2), default="1.1", share=("111122223333",)),),
        (association("agent-prod", "agent"),),
    )
    result = reconciler.run_desired(wanted)
    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert dict(result.api_calls) == {
        ("GetCallerIdentity", "success"): 1,
        ("ListDocuments", "success"): 1,
        ("ListAssociations", "success"): 2,  # observe, then the lookup before create
        ("HeadBucket", "success"): 1,
        ("HeadObject", "not_found"): 4,
        ("PutObject", "success"): 4,
        ("CreateDocument", "success"): 1,
        ("ListDocumentVersions", "success"): 2,  # add_version: published already? + the result
        ("UpdateDocument", "success"): 1,
        ("DescribeDocument", "success"): 4,  # Creating, then Active, per version
        ("UpdateDocumentDefaultVersion", "success"): 1,
        ("ModifyDocumentPermission", "success"): 1,
        ("CreateAssociation", "success"): 1,
        ("AddTagsToResource", "success"): 1,  # the package's fingerprint (model/fingerprint.py)
    }


def test_no_op_pass_reads_only_list_pages_and_sharing(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    wanted = target(
        tuple(package(f"pkg{i}", (make_version(f"pkg{i}", "1.0"),)) for i in range(3)),
        tuple(association(f"assoc{i}", "pkg0") for i in range(2)),
    )
    reconciler.run_desired(wanted)
    reconciler.run_desired(wanted)  # warms the cache after our own changes
    result = reconciler.run_desired(wanted)
    assert result.outcome is PassOutcome.NO_CHANGE
    assert dict(result.api_calls) == {
        ("ListDocuments", "success"): 1,
        ("DescribeDocumentPermission", "success"): 3,
        ("ListAssociations", "success"): 1,
    }


def test_changes_converge(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    v1, v2 = make_version("agent", "1.0"), make_version("agent", "1.1")
    steps = [
        target((package("agent", (v1,)),), (association("agent-prod", "agent"),)),
        target((package("agent", (v1, v2)),), (association("agent-prod", "agent"),)),
        target(
            (package("agent", (v1, v2), share=("111122223333",)),),
            (association("agent-prod", "agent", schedule="rate(2 days)", targets=("prod", "qa")),),
        ),
        target((package("agent", (v1, v2), default="1.0"),), (association("agent-prod", "agent"),)),
        target((package("agent", (v2,), prune_versions=True),), ()),
        target((package("other", (make_version("other", "1"),)),), ()),
    ]
    for wanted in steps:
        converge(reconciler, wanted)


def test_unowned_resources_with_the_same_names_are_never_changed(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    theirs = Reconciler("someone-else", work_dir=reconciler.work_dir)
    v1 = make_version("agent", "1.0")
    theirs.run_desired(
        target(
            (package("agent", (v1,), owner="someone-else"),), (association("agent-prod", "agent"),)
        )
    )
    ssm = aws_env.client("ssm")
    (their_association,) = ssm.list_associations()["Associations"]

    wanted = target(
        (
            package("agent", (make_version("agent", "2.0"),)),
            package("mine", (make_version("mine", "1.0"),)),
        ),
        (association("agent-prod", "mine", schedule="rate(7 days)"),),
    )
    result = reconciler.run_desired(wanted)
    failures = [r for r in result.actions if r.result is ActionResult.FAILURE]
    assert [(r.name, r.action) for r in failures] == [("agent", "create")]
    assert "not ours" in failures[0].message
    # their package and association are untouched; ours were created next to them
    assert [
        v["VersionName"] for v in ssm.list_document_versions(Name="agent")["DocumentVersions"]
    ] == ["1.0"]
    described = ssm.describe_association(AssociationId=their_association["AssociationId"])
    assert described["AssociationDescription"]["ScheduleExpression"] == "rate(1 day)"
    assert len(ssm.list_associations()["Associations"]) == 2
    # and pruning everything of ours never deletes theirs
    reconciler.run_desired(target((package("mine", (make_version("mine", "1.0"),)),), ()))
    assert len(ssm.list_associations()["Associations"]) == 1
    assert ssm.describe_document(Name="agent")["Document"]["Name"] == "agent"


def test_a_stale_plan_rerun_makes_no_duplicates(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """Idempotency: applying the same plan twice (as after a crash) duplicates nothing."""
    wanted = target(
        (
            package(
                "agent",
                (make_version("agent", "1.0"), make_version("agent", "1.1")),
                share=("111122223333",),
            ),
        ),
        (association("agent-prod", "agent"),),
    )
    planned = reconciler.plan_desired(wanted)
    from controller.reconcile.apply import Applier

    for _ in range(2):
        records = Applier(
            reconciler._clients_for,
            owner="ssm-gitops",
            observer=reconciler.observer,
            artifacts=planned.artifacts,
        ).apply(planned.plan)
        assert all(r.result is ActionResult.SUCCESS for r in records), records
    ssm = aws_env.client("ssm")
    assert len(ssm.list_document_versions(Name="agent")["DocumentVersions"]) == 2
    assert len(ssm.list_associations()["Associations"]) == 1
    converge(reconciler, wanted, passes=0)


def test_changed_published_content_is_an_error_and_others_proceed(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    reconciler.run_desired(target((package("agent", (make_version("agent", "1.0"),)),), ()))
    changed = make_version("agent", "1.0", payload="edited")
    result = reconciler.run_desired(
        target((package("agent", (changed,)), package("bee", (make_version("bee", "1"),))), ())
    )
    assert result.outcome is PassOutcome.FAILURE
    assert any("bump the version" in error for error in result.errors)
    assert [(r.name, r.action, r.result) for r in result.actions] == [
        ("bee", "create", ActionResult.SUCCESS)
    ]


def test_a_failed_publication_reports_its_status_information(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    built = make_version("agent", "1.0")
    (file,) = built.files
    # A manifest naming a file that is not uploaded: SSM finds no such attachment. (A bad
    # object already in the bucket no longer does it: the upload replaces it, see
    # tests/aws/test_artifacts.py.)
    version = replace(built, files=())
    result = reconciler.run_desired(target((package("agent", (version,)),), ()))
    (record,) = result.actions
    assert record.result is ActionResult.FAILURE
    assert "agent 1.0:" in record.message and file.name in record.message
    assert result.outcome is PassOutcome.FAILURE
    # and every later pass keeps saying so, instead of calling the failed version in sync
    later = reconciler.run_desired(target((package("agent", (version,)),), ()), full_resync=True)
    assert later.outcome is PassOutcome.FAILURE and later.actions == ()
    assert "version 1.0 failed to publish:" in later.errors[0]
    assert [r.state for r in later.resources] == [ResourceState.FAILED]


def test_a_cached_pass_sees_an_out_of_band_association_edit(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    wanted = target(
        (package("agent", (make_version("agent", "1.0"),)),), (association("agent-prod", "agent"),)
    )
    converge(reconciler, wanted)
    ssm = aws_env.client("ssm")
    (live,) = ssm.list_associations()["Associations"]
    described = ssm.describe_association(AssociationId=live["AssociationId"])[
        "AssociationDescription"
    ]
    ssm.update_association(
        AssociationId=live["AssociationId"],
        AssociationName="agent-prod",
        Parameters=described["Parameters"],
        Targets=described["Targets"],
        ScheduleExpression="rate(9 days)",
    )
    result = reconciler.run_desired(wanted)  # no full resync: AssociationVersion moved
    assert [(r.action, r.result) for r in result.actions] == [("update", ActionResult.SUCCESS)]
    assert ("DescribeAssociation", "success") in result.api_calls


def test_rollouts_come_from_the_association_overview(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    wanted = target(
        (package("agent", (make_version("agent", "1.0"),)),), (association("agent-prod", "agent"),)
    )
    reconciler.run_desired(wanted)
    (live,) = aws_env.client("ssm").list_associations()["Associations"]
    ssm = aws_env.ssm
    execution = ssm.start_association_execution("123456789012", "us-east-1", live["AssociationId"])
    ssm.record_association_result(
        "123456789012",
        "us-east-1",
        live["AssociationId"],
        execution,
        "i-0123456789abcdef0",
        "Success",
    )
    result = reconciler.run_desired(wanted)
    (rollout,) = result.rollouts
    assert rollout.association == "agent-prod"
    assert rollout.status == "Success" and rollout.counts == {"Success": 1}


def test_same_manifest_formatted_differently_is_not_a_change(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    """Should the stored Content hash differently (AWS normalising JSON), the content
    itself decides; one GetDocument, then cached."""
    import hashlib
    import json
    from dataclasses import replace

    version = make_version("agent", "1.0")
    reconciler.run_desired(target((package("agent", (version,)),), ()))
    compact = json.dumps(json.loads(version.content), separators=(",", ":"))
    same = replace(
        version, content=compact, content_sha256=hashlib.sha256(compact.encode()).hexdigest()
    )
    wanted = target((package("agent", (same,)),), ())
    first = reconciler.run_desired(wanted, full_resync=True)
    assert first.outcome is PassOutcome.NO_CHANGE, first.errors
    assert first.api_calls[("GetDocument", "success")] == 1
    second = reconciler.run_desired(wanted, full_resync=True)
    assert ("GetDocument", "success") not in second.api_calls


def test_stop_lets_the_action_in_flight_finish_and_starts_no_other(
    aws_env: Any, tmp_path: Any, make_version: Callable[..., DesiredVersion]
) -> None:
    """SIGTERM (Reconciler.stop) mid-pass: the running action completes, the others are
    skipped, and a new controller converges from there without duplicates."""
    from controller.aws.session import Sessions
    from tests.reconcile.conftest import BUCKET

    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    wanted = target(
        (package("agent", (make_version("agent", "1.0"),)),),
        (association("agent-prod", "agent"), association("agent-canary", "agent")),
    )
    first = Reconciler("ssm-gitops", work_dir=tmp_path / "a", max_workers=1, sessions=Sessions())

    def stop_after_the_first(record: Any) -> None:
        if record.result is ActionResult.SUCCESS:
            first.stop()

    result = first.run_desired(wanted, on_action=stop_after_the_first)
    assert [(r.action, r.result) for r in result.actions] == [
        ("create", ActionResult.SUCCESS),
        ("create", ActionResult.SKIPPED),
        ("create", ActionResult.SKIPPED),
    ]
    assert {r.message for r in result.actions[1:]} == {"the controller is stopping"}
    states = {r.name: r.state for r in result.resources}
    assert states == {
        "agent": ResourceState.IN_SYNC,
        "agent-prod": ResourceState.DRIFTED,
        "agent-canary": ResourceState.DRIFTED,
    }
    assert aws_env.client("ssm").list_associations()["Associations"] == []

    again = Reconciler("ssm-gitops", work_dir=tmp_path / "b", sessions=Sessions())
    converge(again, wanted)
    names = [
        a["AssociationName"] for a in aws_env.client("ssm").list_associations()["Associations"]
    ]
    assert sorted(names) == ["agent-canary", "agent-prod"]


def test_an_association_whose_owner_tag_was_removed_is_never_changed_or_deleted(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: Any
) -> None:
    """Regression (review M1): ownership was cached until the next full resync, so an
    association whose owner tag was removed by hand was still deleted or updated."""
    from controller.model.state import OWNER_TAG

    agent = package("agent", (make_version("agent", "1.0"),))
    both = (association("agent-prod", "agent"), association("agent-dev", "agent"))
    converge(reconciler, target((agent,), both))
    reconciler.run_desired(target((agent,), both))  # the cache now says "ours" for both
    ssm = aws_env.client("ssm")
    ids = {
        a["AssociationName"]: a["AssociationId"] for a in ssm.list_associations()["Associations"]
    }
    for name in ("agent-dev", "agent-prod"):
        ssm.remove_tags_from_resource(
            ResourceType="Association", ResourceId=ids[name], TagKeys=[OWNER_TAG]
        )

    # agent-dev removed from the repository, agent-prod's schedule changed.
    changed = (association("agent-prod", "agent", schedule="rate(2 days)"),)
    result = reconciler.run_desired(target((agent,), changed))
    assert sorted(
        (r.name, r.action, r.result) for r in result.actions if r.kind == "association"
    ) == [
        ("agent-dev", "delete", ActionResult.SKIPPED),
        ("agent-prod", "update", ActionResult.SKIPPED),
    ]
    assert all("no longer carries ssm-gitops:owner" in r.message for r in result.actions)
    live = {a["AssociationName"]: a for a in ssm.list_associations()["Associations"]}
    assert sorted(live) == ["agent-dev", "agent-prod"]
    assert live["agent-prod"]["ScheduleExpression"] == "rate(1 day)"
