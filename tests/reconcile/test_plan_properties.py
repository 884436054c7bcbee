"""Properties of plan(): applying a plan converges (planning again finds nothing), and the
safety rules hold for any desired/observed pair. Apply is simulated on the frozen values."""

from __future__ import annotations

from dataclasses import replace
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.model.kinds import Phase
from controller.model.state import (
    OWNER_TAG,
    SHARED_VERSION,
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
from controller.reconcile.kinds import (
    Action,
    AddVersion,
    CreateAssociation,
    CreatePackage,
    DeleteAssociation,
    DeletePackage,
    DeleteVersion,
    SetDefault,
    Share,
    TagPackage,
    Unshare,
    UpdateAssociation,
)
from controller.reconcile.plan import plan

HOME = Location("123456789012", "us-east-1")
OWNER = (OWNER_TAG, "ssm-gitops")
NAMES = ["alpha", "bravo", "charlie"]
VERSIONS = ["1", "2", "3", "4"]
ACCOUNTS = ["111111111111", "222222222222", "All"]


def sha(package: str, version: str) -> str:
    return f"sha-{package}-{version}"


def spec(schedule: str) -> AssociationFields:
    return AssociationFields(
        parameters=(("action", "Install"), ("name", "alpha")),
        targets=(("tag:env", ("prod",)),),
        schedule=schedule,
    )


@st.composite
def desired_packages(draw: st.DrawFn) -> tuple[DesiredPackage, ...]:
    packages = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=1, unique=True))
        packages.append(
            DesiredPackage(
                name,
                HOME,
                draw(st.sampled_from(versions)),
                frozenset(draw(st.lists(st.sampled_from(ACCOUNTS), unique=True))),
                tuple(
                    sorted([OWNER, *draw(st.sampled_from([[], [("team", "a")], [("team", "b")]]))])
                ),
                draw(st.booleans()),
                tuple(DesiredVersion(v, "{}", sha(name, v)) for v in versions),
            )
        )
    return tuple(packages)


@st.composite
def observed_packages(draw: st.DrawFn) -> tuple[ObservedPackage, ...]:
    packages = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=1, unique=True))
        live = tuple(ObservedVersion(v, str(i + 1), sha(name, v)) for i, v in enumerate(versions))
        packages.append(
            ObservedPackage(
                name,
                HOME,
                draw(st.sampled_from(live)).number,
                live,
                tuple(
                    sorted(
                        (a, SHARED_VERSION)
                        for a in draw(st.lists(st.sampled_from(ACCOUNTS[:2]), unique=True))
                    )
                ),
                tuple(
                    sorted([OWNER, *draw(st.sampled_from([[], [("team", "a")], [("old", "x")]]))])
                ),
            )
        )
    return tuple(packages)


desired_associations = st.lists(
    st.tuples(
        st.sampled_from(["a1", "a2", "a3"]), st.sampled_from(["rate(1 day)", "rate(2 days)"])
    ),
    unique_by=lambda pair: pair[0],
).map(lambda pairs: tuple(DesiredAssociation(n, HOME, spec(s), "alpha") for n, s in pairs))

observed_associations = st.lists(
    st.tuples(
        st.sampled_from(["a1", "a2", "a4"]), st.sampled_from(["rate(1 day)", "rate(3 days)"])
    ),
).map(
    lambda pairs: tuple(
        ObservedAssociation(f"id-{i}", n, HOME, "1", spec(s)) for i, (n, s) in enumerate(pairs)
    )
)


def simulate(observed: Observed, actions: tuple[Action, ...]) -> Observed:
    """What SSM looks like after the actions succeed (the apply side of the model)."""
    packages = {p.name: p for p in observed.packages}
    associations = {a.association_id: a for a in observed.associations}
    ids = count(1000)
    for action in actions:
        live = packages.get(action.name)
        match action.step:
            case CreatePackage(package=package, version=version):
                packages[action.name] = ObservedPackage(
                    action.name,
                    HOME,
                    "1",
                    (ObservedVersion(version.name, "1", version.content_sha256),),
                    (),
                    package.tags,
                )
            case AddVersion(version=version):
                assert live
                number = str(max(int(v.number) for v in live.versions) + 1)
                packages[action.name] = replace(
                    live,
                    versions=live.versions
                    + (ObservedVersion(version.name, number, version.content_sha256),),
                )
            case SetDefault(version_name=version_name):
                assert live
                found = live.version(version_name)
                assert found is not None, "the default is set only to a published version"
                packages[action.name] = replace(live, default_number=found.number)
            case TagPackage(tags_set=tags_set, tags_removed=tags_removed):
                assert live
                tags = dict(live.tags) | dict(tags_set)
                for key in tags_removed:
                    tags.pop(key)
                packages[action.name] = replace(live, tags=tuple(sorted(tags.items())))
            case Share(accounts=accounts):
                assert live
                shared = dict(live.shared) | {a: SHARED_VERSION for a in accounts}
                assert not ("All" in shared and len(shared) > 1), "All is never mixed"
                packages[action.name] = replace(live, shared=tuple(sorted(shared.items())))
            case Unshare(accounts=accounts):
                assert live
                packages[action.name] = replace(
                    live, shared=tuple((a, v) for a, v in live.shared if a not in accounts)
                )
            case DeleteVersion(version_name=version_name):
                assert live
                assert version_name != live.default_version, "never the default"
                packages[action.name] = replace(
                    live, versions=tuple(v for v in live.versions if v.name != version_name)
                )
            case DeletePackage():
                assert live and not live.shared, "unshare before delete"
                del packages[action.name]
            case CreateAssociation(association=association):
                new_id = f"new-{next(ids)}"
                associations[new_id] = ObservedAssociation(
                    new_id, action.name, HOME, "1", association.spec
                )
            case UpdateAssociation(association=association, association_id=association_id):
                old = associations[association_id]
                associations[old.association_id] = replace(
                    old, spec=association.spec, version=str(int(old.version) + 1)
                )
            case DeleteAssociation(association_id=association_id):
                del associations[association_id]
    return Observed(tuple(packages.values()), tuple(associations.values()))


@settings(max_examples=300, deadline=None)
@given(desired_packages(), desired_associations, observed_packages(), observed_associations)
def test_applying_the_plan_converges(
    packages: tuple[DesiredPackage, ...],
    associations: tuple[DesiredAssociation, ...],
    live_packages: tuple[ObservedPackage, ...],
    live_associations: tuple[ObservedAssociation, ...],
) -> None:
    desired = Desired(packages, associations, PruneRules(enabled=True, max_deletes=100))
    observed = Observed(live_packages, live_associations)
    first = plan(desired, observed)
    after = simulate(observed, first.actions)
    second = plan(desired, after)
    if packages or associations:
        assert second.actions == (), [a.describe() for a in second.actions]
    else:
        assert all(a.is_deletion is False for a in first.actions)


@settings(max_examples=300, deadline=None)
@given(
    desired_packages(),
    desired_associations,
    observed_packages(),
    observed_associations,
    st.booleans(),
    st.integers(min_value=0, max_value=3),
)
def test_safety_rules_hold(
    packages: tuple[DesiredPackage, ...],
    associations: tuple[DesiredAssociation, ...],
    live_packages: tuple[ObservedPackage, ...],
    live_associations: tuple[ObservedAssociation, ...],
    prune: bool,
    max_deletes: int,
) -> None:
    desired = Desired(packages, associations, PruneRules(enabled=prune, max_deletes=max_deletes))
    result = plan(desired, Observed(live_packages, live_associations))
    deletions = [a for a in result.actions if a.is_deletion]
    assert len(deletions) <= max_deletes
    if not prune:
        assert deletions == []  # not even versions: pruneVersions needs prune enabled too
    if not packages and not associations:
        assert deletions == []
    phases = [a.phase for a in result.actions]
    assert phases == sorted(phases)
    for package in {a.name for a in result.actions if a.kind == "package"}:
        steps = [a.verb for a in result.actions if a.kind == "package" and a.name == package]
        if "set_default" in steps and "add_version" in steps:
            assert steps.index("add_version") < steps.index("set_default")
    assert all(
        a.phase is Phase.PACKAGE_DELETES
        for a in result.actions
        if a.kind == "package" and a.is_deletion
    )
