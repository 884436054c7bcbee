"""The vocabulary of a plan (controller.model.kinds), as a table: each verb's symbol, summary
bucket, deletion and phase, and what each kind's verbs start. The strings are the metric
labels and the JSON, so they are asserted too."""

from __future__ import annotations

import pytest

from controller.model.kinds import Effect, Kind, Phase, Verb, resource_symbol

P, A = Kind.PACKAGE, Kind.ASSOCIATION

VERBS = [
    # verb, label, symbol, effect, is_deletion
    (Verb.CREATE, "create", "+", Effect.ADD, False),
    (Verb.ADD_VERSION, "add_version", "+", Effect.ADD, False),
    (Verb.SET_DEFAULT, "set_default", "~", Effect.CHANGE, False),
    (Verb.TAG, "tag", "~", Effect.CHANGE, False),
    (Verb.SHARE, "share", "+", Effect.CHANGE, False),
    (Verb.UNSHARE, "unshare", "-", Effect.CHANGE, False),
    (Verb.UPDATE, "update", "~", Effect.CHANGE, False),
    (Verb.DELETE, "delete", "-", Effect.DESTROY, True),
    (Verb.DELETE_VERSION, "delete_version", "-", Effect.DESTROY, True),
    (Verb.ROLLOUT, "rollout", "~", Effect.CHANGE, False),
]


@pytest.mark.parametrize(("verb", "label", "symbol", "effect", "deletion"), VERBS)
def test_verbs(verb: Verb, label: str, symbol: str, effect: Effect, deletion: bool) -> None:
    assert (verb, str(verb), f"{verb}") == (label, label, label)
    assert (verb.symbol, verb.effect, verb.is_deletion) == (symbol, effect, deletion)


def test_every_verb_is_in_the_table() -> None:
    assert {row[0] for row in VERBS} == set(Verb)


@pytest.mark.parametrize(
    ("kind", "verb", "removal", "phase"),
    [
        (P, Verb.CREATE, False, Phase.PACKAGES),
        (P, Verb.SET_DEFAULT, False, Phase.PACKAGES),
        (P, Verb.UNSHARE, False, Phase.PACKAGES),  # shareWith shrank: with the package
        (P, Verb.UNSHARE, True, Phase.PACKAGE_DELETES),  # before DeleteDocument
        (P, Verb.DELETE_VERSION, False, Phase.PACKAGE_DELETES),
        (P, Verb.DELETE, False, Phase.PACKAGE_DELETES),
        (A, Verb.CREATE, False, Phase.ASSOCIATIONS),
        (A, Verb.TAG, False, Phase.ASSOCIATIONS),
        (A, Verb.DELETE, False, Phase.ASSOCIATION_DELETES),
        (P, Verb.ROLLOUT, False, Phase.ASSOCIATIONS),  # pins associations: after their updates
    ],
)
def test_phases(kind: Kind, verb: Verb, removal: bool, phase: Phase) -> None:
    assert kind.phase(verb, removal=removal) is phase


def test_what_publishes_and_what_starts_runs() -> None:
    assert {v for v in Verb if P.publishes(v)} == {Verb.CREATE, Verb.ADD_VERSION}
    assert {v for v in Verb if A.publishes(v)} == set()
    assert {v for v in Verb if P.starts_runs(v)} == {Verb.SET_DEFAULT, Verb.ROLLOUT}
    assert {v for v in Verb if A.starts_runs(v)} == {Verb.CREATE, Verb.UPDATE}


@pytest.mark.parametrize(
    ("verbs", "symbol"),
    [
        ((Verb.CREATE, Verb.ADD_VERSION, Verb.SHARE), "+"),
        ((Verb.UNSHARE, Verb.DELETE), "-"),
        ((Verb.DELETE_VERSION,), "~"),  # the package stays
        ((Verb.ADD_VERSION, Verb.SET_DEFAULT), "~"),
    ],
)
def test_resource_symbol(verbs: tuple[Verb, ...], symbol: str) -> None:
    assert resource_symbol(verbs) == symbol
