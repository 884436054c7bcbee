"""A hand-edited or hostile `ssm-gitops:rollout` tag on the package document (issue 13).

The tag is AWS state anyone with ssm:AddTagsToResource can write. Whatever it holds, the
plan makes ONE clear failure of it (`Reason.rollout`, one line naming the tag and what to
do), never a traceback, and moves nothing: no ring is pinned, started or unpinned, and the
default stays, so no ring is skipped. The same fixture as test_rollout_plan.py: `agent`
with versions 1.0 (document version 1, live default) and 2.0 (2), rings canary and prod.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from controller.local import LocalAWS
from controller.model.rollout import ROLLOUT_TAG, decode
from controller.model.state import DesiredVersion, Observed
from controller.reconcile.engine import Reconciler
from controller.reconcile.plan import plan
from controller.reconcile.result import ActionResult, PassOutcome, Reason
from tests.reconcile.test_rollout_engine import _pinned, _runs, _setup
from tests.reconcile.test_rollout_plan import NOW, _desired, _observed

HOSTILE = {
    # not a state at all
    "garbage": "hello world",
    "no fields": "t=2",
    "a negative ring": f"t=2 p=1 r=-1 s=progressing a={NOW - 10} b=0 h=- w=-",
    "not a finite time": "t=2 p=1 r=0 s=progressing a=nan b=0 h=- w=-",
    # ring index out of range (the policy has 2 rings)
    "ring out of range, rolled back": f"t=2 p=1 r=7 s=rolled_back a={NOW - 10} b=0 h=- w=targets",
    "ring out of range, progressing": f"t=2 p=1 r=2 s=progressing a={NOW - 10} b=0 h=- w=-",
    # a version number that does not exist
    "previous does not exist": f"t=2 p=99 r=0 s=rolled_back a={NOW - 10} b=0 h=- w=targets",
    "target does not exist": f"t=42 p=1 r=1 s=baking a={NOW - 10} b={NOW + 5} h=- w=-",
    # a bake (or a ring start) in the far future: it would wait forever
    "bake end in the far future": f"t=2 p=1 r=0 s=baking a={NOW - 10} b={NOW + 10**9} h=- w=-",
    "paused bake of years": f"t=2 p=1 r=0 s=paused a={NOW - 10} b={10**9} h=baking w=-",
    "ring started in the future": f"t=2 p=1 r=0 s=progressing a={NOW + 10**6} b=0 h=- w=-",
    # succeeded at ring 1 of 2: a forged end would move the default past the prod ring
    "succeeded before the last ring": f"t=2 p=1 r=0 s=succeeded a={NOW - 10} b=0 h=- w=-",
}


def _tagged(text: str, pins: dict[str, str]) -> Observed:
    """Observed as observe reads it: the tag on the document, its decoded state (if any)."""
    observed = _observed(decode(text), pins)
    live = observed.packages[0]
    return replace(observed, packages=(replace(live, tags=(*live.tags, (ROLLOUT_TAG, text))),))


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("pins", [{}, {"canary": "2.0"}], ids=["unpinned", "canary pinned"])
def test_a_hostile_rollout_tag_is_one_clear_failure_and_moves_nothing(
    text: str, pins: dict[str, str]
) -> None:
    """Bugs: a garbage tag restarted the rollout at ring 1 (re-running a ring already
    passed, unpinning the others); a ring index out of range raised IndexError (a
    traceback, every pass); a previous version that does not exist was pinned as the
    rollback version; a bake end years away waited forever without a word; `succeeded` at
    ring 1 moved the default past ring 2."""
    result = plan(_desired(), _tagged(text, pins))
    assert [a.describe() for a in result.actions] == []  # no pin, no start, no unpin, no default
    assert [e.reason for e in result.errors] == [Reason.ROLLOUT], result.errors
    message = result.errors[0].message
    assert "\n" not in message
    assert ROLLOUT_TAG in message and "remove-tags-from-resource" in message, message
    (status,) = result.rollouts
    assert status.state == "failed" and status.failure == message


def test_a_tag_of_an_older_finished_rollout_is_not_hostile() -> None:
    """The tag of a finished rollout of another version (even one pruned since) is
    history: naming a new version starts its rollout at ring 1."""
    text = f"t=7 p=1 r=1 s=succeeded a={NOW - 99} b=0 h=- w=-"
    result = plan(_desired(), _tagged(text, {}))
    assert result.errors == ()
    assert [a.step.subject for a in result.actions] == ["ring 1/2: pin canary to 2.0 and start it"]


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "t=2 p=1 r=9 s=rolled_back a=1 b=0 h=- w=targets",
        "t=2 p=1 r=0 s=baking a=1 b=9999999999 h=- w=-",
    ],
    ids=["garbage", "ring out of range", "far-future bake"],
)
def test_through_the_reconciler_a_hostile_tag_fails_the_pass_once_and_changes_nothing(
    reconciler: Reconciler,
    make_version: Callable[..., DesiredVersion],
    aws_env: LocalAWS,
    text: str,
) -> None:
    """The same against the embedded endpoint: the tag is read from AWS by observe (a ring
    index out of range raised IndexError in the plan: the pass died with a traceback)."""
    wanted, seen = _setup(reconciler, make_version, aws_env)
    for _ in range(2):  # 2.0 published, then ring 1 pinned to it and started
        started = reconciler.run_desired(wanted)
        assert [a.result for a in started.actions] == [ActionResult.SUCCESS]
    _runs(aws_env, seen)
    before = _pinned(aws_env)
    assert before == {"canary": "2.0", "prod-a": "", "prod-b": ""}
    aws_env.client("ssm").add_tags_to_resource(
        ResourceType="Document", ResourceId="agent", Tags=[{"Key": ROLLOUT_TAG, "Value": text}]
    )
    for _ in range(2):
        result = reconciler.run_desired(wanted)
        assert result.actions == ()
        assert [f.reason for f in result.failures] == [Reason.ROLLOUT], result.failures
        assert "remove-tags-from-resource" in str(result.failures[0])
        # A lasting rollout failure is reported, not a failed pass (which every poll would
        # retry and the pass alerts would page on while nothing is wrong with the controller).
        assert result.outcome is not PassOutcome.FAILURE
        assert _pinned(aws_env) == before
        document = aws_env.client("ssm").describe_document(Name="agent")["Document"]
        assert document["VersionName"] == "1.0"  # the default did not move
