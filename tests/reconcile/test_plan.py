"""plan(desired, observed): the ordered actions and the safety rules, as tables."""

from __future__ import annotations

import dataclasses

import pytest

from controller.model.state import (
    OWNER_TAG,
    AssociationFields,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    DesiredVersion,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedVersion,
    PruneRules,
)
from controller.reconcile.commands import render_plan
from controller.reconcile.kinds import (
    Action,
    DeleteAssociation,
    TagAssociation,
    UpdateAssociation,
)
from controller.reconcile.plan import plan
from controller.reconcile.result import ResourceState

HOME = Location("123456789012", "us-east-1")
OWNER = ((OWNER_TAG, "ssm-gitops"),)


def version(name: str, content: str | None = None) -> DesiredVersion:
    content = content or f"manifest {name}"
    return DesiredVersion(name, content, f"sha-{content}")


def package(
    name: str = "agent",
    versions: tuple[str, ...] = ("1.0",),
    default: str | None = None,
    share: tuple[str, ...] = (),
    prune_versions: bool = False,
    tags: tuple[tuple[str, str], ...] = OWNER,
    disabled: bool = False,
) -> DesiredPackage:
    return DesiredPackage(
        name,
        HOME,
        default or (versions[-1] if versions else ""),
        frozenset(share),
        tags,
        prune_versions,
        tuple(version(v) for v in versions),
        source="repo/agent.yaml:1",
        disabled=disabled,
    )


def live(
    name: str = "agent",
    versions: tuple[str, ...] = ("1.0",),
    default: str | None = None,
    shared: tuple[str, ...] = (),
    tags: tuple[tuple[str, str], ...] = OWNER,
    content: dict[str, str] | None = None,
) -> ObservedPackage:
    content = content or {}
    observed = tuple(
        ObservedVersion(v, str(i + 1), f"sha-{content.get(v, f'manifest {v}')}")
        for i, v in enumerate(versions)
    )
    default_number = next(o.number for o in observed if o.name == (default or versions[-1]))
    return ObservedPackage(
        name, HOME, default_number, observed, tuple((a, "$ALL") for a in sorted(shared)), tags
    )


def spec(
    schedule: str = "rate(1 day)", targets: tuple[str, ...] = ("prod",), package_name: str = "agent"
) -> AssociationFields:
    return AssociationFields(
        parameters=(("action", "Install"), ("name", package_name)),
        targets=(("tag:env", targets),),
        schedule=schedule,
    )


def association(name: str = "agent-prod", **kwargs: object) -> DesiredAssociation:
    return DesiredAssociation(name, HOME, spec(**kwargs), "agent")  # type: ignore[arg-type]


def live_association(
    name: str = "agent-prod", association_id: str = "a-1", **kwargs: object
) -> ObservedAssociation:
    return ObservedAssociation(association_id, name, HOME, "1", spec(**kwargs))  # type: ignore[arg-type]


PRUNE = PruneRules(enabled=True, max_deletes=10)


def steps(desired: Desired, observed: Observed) -> list[str]:
    return [f"{a.kind}:{a.name}:{a.verb}:{_subject(a)}" for a in plan(desired, observed).actions]


def _subject(action: Action) -> str:
    """The version or accounts a step acts on; an association's id once it has one."""
    match action.step:
        case UpdateAssociation(association_id=found) | TagAssociation(association_id=found):
            return found
        case DeleteAssociation(association_id=found):
            return found
    return action.step.subject


CASES = [
    pytest.param(
        Desired(
            (package(versions=("1.0", "1.1"), default="1.0", share=("111122223333",)),),
            (association(),),
        ),
        Observed(),
        [
            "package:agent:create:1.0",
            "package:agent:add_version:1.1",
            "package:agent:share:111122223333",
            "association:agent-prod:create:",
        ],
        id="from-empty: versions, then share, then the association",
    ),
    pytest.param(
        Desired((package(versions=("1.0", "1.1")),), ()),
        Observed((live(versions=("1.0",)),)),
        ["package:agent:add_version:1.1", "package:agent:set_default:1.1"],
        id="new version and default bump: version before the pointer",
    ),
    pytest.param(
        Desired((package(versions=("1.0", "1.1"), default="1.1"),), ()),
        Observed((live(versions=("1.0", "1.1"), default="1.0"),)),
        ["package:agent:set_default:1.1"],
        id="default moved back out of band",
    ),
    pytest.param(
        Desired((package(share=("111122223333", "444455556666")),), ()),
        Observed((live(shared=("111122223333", "999999999999")),)),
        ["package:agent:unshare:999999999999", "package:agent:share:444455556666"],
        id="share added and removed",
    ),
    pytest.param(
        Desired((package(share=("All",)),), ()),
        Observed((live(shared=("111122223333",)),)),
        ["package:agent:unshare:111122223333", "package:agent:share:All"],
        id="public share replaces account ids (All cannot be mixed)",
    ),
    pytest.param(
        Desired((package(tags=OWNER + (("team", "obs"),)),), ()),
        Observed((live(tags=OWNER + (("old", "x"),)),)),
        ["package:agent:tag:"],
        id="tags changed",
    ),
    pytest.param(
        Desired((package(),), (association(schedule="rate(2 days)", targets=("prod", "qa")),)),
        Observed((live(),), (live_association(),)),
        ["association:agent-prod:update:a-1"],
        id="association schedule and targets changed",
    ),
    pytest.param(
        Desired((package(),), (association(),)),
        Observed((live(),), (live_association(),)),
        [],
        id="in sync: nothing",
    ),
    pytest.param(
        Desired((package(),), (), PRUNE),
        Observed((live(),), (live_association(),)),
        ["association:agent-prod:delete:a-1"],
        id="association removed (prune on)",
    ),
    pytest.param(
        Desired((package(name="other"),), (), PRUNE),
        Observed((live(shared=("111122223333",)), live(name="other")), (live_association(),)),
        [
            "association:agent-prod:delete:a-1",
            "package:agent:unshare:111122223333",
            "package:agent:delete:",
        ],
        id="package removed: association first, unshare before delete",
    ),
    pytest.param(
        Desired((package(versions=("1.1", "1.2"), prune_versions=True),), (), PRUNE),
        Observed((live(versions=("1.0", "1.1", "1.2")),)),
        ["package:agent:delete_version:1.0"],
        id="pruneVersions deletes a stale version",
    ),
    pytest.param(
        Desired((package(versions=("1.1", "1.2"), default="1.2", prune_versions=True),), (), PRUNE),
        Observed((live(versions=("1.0", "1.1", "1.2"), default="1.0"),)),
        ["package:agent:set_default:1.2", "package:agent:delete_version:1.0"],
        id="pruneVersions deletes the old default after moving the pointer",
    ),
    pytest.param(
        Desired((package(versions=("1.1",)),), ()),
        Observed((live(versions=("1.0", "1.1")),)),
        [],
        id="without pruneVersions old versions stay",
    ),
    pytest.param(
        Desired((package(disabled=True), package(name="b")), ()),
        Observed((live(default="1.0", versions=("1.0",), shared=("1",)),)),
        ["package:b:create:1.0"],
        id="reconcile disabled annotation leaves that package alone",
    ),
]


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_plan_orders_actions(desired: Desired, observed: Observed, expected: list[str]) -> None:
    assert steps(desired, observed) == expected


SAFETY = [
    pytest.param(
        Desired((package(name="keep"),), ()),
        Observed((live(name="keep"), live(name="gone")), (live_association(),)),
        [],
        ["association:delete", "package:delete"],
        id="prune disabled: deletions blocked",
    ),
    pytest.param(
        Desired((package(name="keep"),), (), PruneRules(True, 1)),
        Observed((live(name="keep"), live(name="gone")), (live_association(),)),
        ["association:agent-prod:delete:a-1"],
        ["package:delete"],
        id="maxDeletes: the rest blocked",
    ),
    pytest.param(
        Desired((package(name="keep"),), (), PruneRules(True, 1)),
        Observed((live(name="keep"), live(name="gone", shared=("1",))), (live_association(),)),
        ["association:agent-prod:delete:a-1"],
        ["package:delete"],
        id="maxDeletes: a blocked deletion keeps its share",
    ),
    pytest.param(
        Desired((package(versions=("1.1",), prune_versions=True),), ()),
        Observed((live(versions=("1.0", "1.1")),)),
        [],
        ["package:delete_version"],
        id="pruneVersions without prune enabled: the version deletion is blocked",
    ),
    pytest.param(
        Desired((), (), PRUNE),
        Observed((live(),), (live_association(),)),
        [],
        ["association:delete", "package:delete"],
        id="empty desired set: nothing deleted",
    ),
    pytest.param(
        Desired((package(),), (association(),), PRUNE, suspended=True),
        Observed(),
        [],
        ["package:create", "association:create"],
        id="suspended: everything held",
    ),
]


@pytest.mark.parametrize(("desired", "observed", "expected", "blocked"), SAFETY)
def test_safety_rules(
    desired: Desired, observed: Observed, expected: list[str], blocked: list[str]
) -> None:
    result = plan(desired, observed)
    assert steps(desired, observed) == expected
    assert [f"{b.action.kind}:{b.action.verb}" for b in result.blocked] == blocked


def test_changed_published_version_is_an_error_for_that_package_only() -> None:
    desired = Desired(
        (package(versions=("1.0",)), package(name="b", versions=("2.0",))), (association(),)
    )
    observed = Observed(
        (
            live(content={"1.0": "something else"}),
            live(name="b", versions=())
            if False
            else live(name="b", versions=("1.0",), default="1.0"),
        ),
        (),
    )
    result = plan(desired, observed)
    assert [str(e) for e in result.errors] == [
        f"package agent ({HOME}): version 1.0 is already published with different content "
        "(live sha256 sha-somethin, repository sha-manifest): bump the version name in "
        "repo/agent.yaml:1"
    ]
    assert [(a.name, a.verb) for a in result.actions] == [
        ("b", "add_version"),
        ("b", "set_default"),
        ("agent-prod", "create"),
    ]
    states = {(r.name): r.state for r in result.resources}
    assert states["agent"] is ResourceState.FAILED


def test_too_many_versions_is_an_error() -> None:
    names = tuple(f"1.{i}" for i in range(26))
    result = plan(Desired((package(versions=names),), ()), Observed((live(versions=names[:25]),)))
    assert result.actions == ()
    assert "exceed the 25 a package may hold" in str(result.errors[0])


def test_duplicate_owned_associations_are_cleaned_up() -> None:
    result = plan(
        Desired((package(),), (association(),), PRUNE),
        Observed((live(),), (live_association(), live_association(association_id="a-2"))),
    )
    assert [(a.verb, a.step) for a in result.actions] == [("delete", DeleteAssociation("a-2"))]


def test_summary_line() -> None:
    result = plan(
        Desired(
            (package(versions=("1.0", "1.1"), share=("1",)),), (association(),), PruneRules(True, 0)
        ),
        Observed((live(versions=("1.0",)), live(name="gone")), ()),
    )
    assert result.summary() == "Plan: 2 to add, 2 to change, 0 to destroy, 1 blocked"


def test_update_lists_the_changed_fields() -> None:
    result = plan(
        Desired((package(),), (association(schedule="rate(2 days)"),)),
        Observed((live(),), (live_association(),)),
    )
    (action,) = result.actions
    assert [(c.field, c.old, c.new) for c in action.changes] == [
        ("schedule", "rate(1 day)", "rate(2 days)")
    ]


def test_a_failed_live_version_is_an_error_not_in_sync() -> None:
    failed = live()
    failed = ObservedPackage(
        failed.name,
        failed.location,
        failed.default_number,
        (
            ObservedVersion(
                "1.0", "1", "sha-manifest 1.0", "Failed", "install.zip does not match the manifest"
            ),
        ),
        failed.shared,
        failed.tags,
    )
    result = plan(Desired((package(),), ()), Observed((failed,)))
    assert result.actions == ()
    assert "failed to publish: install.zip does not match the manifest" in str(result.errors[0])


def test_a_package_that_failed_to_build_is_failed_and_never_pruned() -> None:
    """Regression: a package whose build failed was dropped from the desired set, so its
    error was lost and, with prune on, the live package was planned for deletion."""
    desired = Desired(
        (package(versions=()), package(name="b")),
        (association(),),
        PRUNE,
        errors=(("agent", "build failed: disk full"),),
    )
    observed = Observed((live(), live(name="b")), (live_association(),))
    result = plan(desired, observed)
    assert [str(e) for e in result.errors] == [f"package agent ({HOME}): build failed: disk full"]
    assert [(a.name, a.verb) for a in result.actions] == []
    assert result.blocked == ()
    assert {r.name: r.state for r in result.resources}["agent"] is ResourceState.FAILED


def test_an_output_change_reads_as_an_s3_url() -> None:
    """Regression: the output location showed as `bucket/prefix/region`."""
    wanted = association()
    wanted = dataclasses.replace(
        wanted, spec=dataclasses.replace(wanted.spec, output=("logs", "ssm/", "eu-west-1"))
    )
    result = plan(Desired((package(),), (wanted,)), Observed((live(),), (live_association(),)))
    (action,) = result.actions
    assert [(c.field, c.old, c.new) for c in action.changes] == [
        ("output", "", "s3://logs/ssm/ (eu-west-1)")
    ]


def test_an_unnamed_association_is_shown_by_its_id() -> None:
    """Regression: an owned association without AssociationName showed as
    `- association  (account/region)`."""
    result = plan(
        Desired((package(),), (association(),), PRUNE),
        Observed((live(),), (live_association(), live_association("", association_id="a-9"))),
    )
    (action,) = result.actions
    assert action.describe() == f"- association a-9 delete ({HOME})"
    shown = render_plan(result, "0123456789abcdef", "ssm-gitops")
    assert f"- association a-9 ({HOME})" in shown
    assert "association  (" not in shown
