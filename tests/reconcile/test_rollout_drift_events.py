"""A progressive rollout with drift events on (issue 13 x issue 14), against the embedded
endpoint: the rollout's own changes are its own, and a hand edit of a ring's association
during a rollout is healed back to the rollout's pin, not to the default.

The rollout runs through the reconciler (`run_desired`, each action recorded as `run`
records it for the events path); the CloudTrail events of its changes are written as
EventBridge delivers them (tests/runtime/test_events.py `body`) with the controller's
credentials but no session name of ours (a home account's own keys), so only the record of
what the controller changed can tell them apart from drift.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.local import LocalAWS
from controller.model.kinds import Kind
from controller.model.rollout import ROLLOUT_TAG
from controller.model.state import DesiredVersion, Location
from controller.reconcile.engine import Reconciler
from controller.reconcile.events import EventResult, NamedResource
from controller.reconcile.result import ActionRecord, ActionResult
from controller.runtime.events import OwnChanges
from tests.reconcile.conftest import ACCOUNT, REGION
from tests.reconcile.test_rollout_engine import _pinned, _runs, _setup
from tests.runtime.test_events import CONTROLLER, FakeController, FakeQueue, body, consumer, value

HERE = Location(ACCOUNT, REGION)


def _association_id(aws: LocalAWS, name: str) -> str:
    found = aws.client("ssm").list_associations(
        AssociationFilterList=[{"key": "AssociationName", "value": name}]
    )["Associations"]
    return str(found[0]["AssociationId"])


def test_the_rollouts_own_tag_writes_pins_and_starts_are_own_changes(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    """Bug: the rollout step was recorded as a change of the package only, so the events of
    its pins (UpdateAssociation of each ring association) were taken for drift and healed,
    and a step that only started associations (StartAssociationsOnce: no event is asked
    for) waited for an event that never comes: `drift_events_unconfirmed_changes` said the
    event path was broken."""
    clock = [1000.0]
    own = OwnChanges(clock=lambda: clock[0])
    records: list[ActionRecord] = []

    def record(action: ActionRecord) -> None:
        records.append(action)
        own.record(action)

    wanted, seen = _setup(reconciler, make_version, aws_env)
    for _ in range(2):  # 2.0 published, then ring 1: the tag written, canary pinned, started
        reconciler.run_desired(wanted, on_action=record)
    assert _pinned(aws_env)["canary"] == "2.0"
    assert [r.action for r in records] == ["add_version", "rollout"]
    canary = _association_id(aws_env, "canary")
    queue = FakeQueue(
        [
            body(
                "AddTagsToResource",
                {
                    "resourceType": "Document",
                    "resourceId": "agent",
                    "tags": [{"key": ROLLOUT_TAG, "value": "t=2"}],
                },
                arn=CONTROLLER,
            ),
            body(
                "UpdateAssociation",
                {"associationId": canary, "associationName": "canary"},
                arn=CONTROLLER,
            ),
        ]
    )
    controller = FakeController()
    events, registry = consumer(queue, controller, own)
    events.run_once()
    assert controller.heals == []  # nothing of it is drift
    assert value(registry, "ssm_gitops_drift_events_total", result="own") == 2
    # Every change the step recorded was confirmed by its event: none counts as missing.
    clock[0] += 301
    events.run_once()
    assert value(registry, "ssm_gitops_drift_events_unconfirmed_changes") == 0


def test_a_start_only_rollout_step_expects_no_change_event() -> None:
    """The record of a rollout step that wrote no tag and pinned nothing names nothing."""
    clock = [1000.0]
    own = OwnChanges(clock=lambda: clock[0])
    own.record(
        ActionRecord(
            "package", "rollout", "agent", ACCOUNT, REGION, ActionResult.SUCCESS, changed=()
        )
    )
    clock[0] += 301
    assert own.unconfirmed() == 0


def test_a_hand_edit_of_a_ring_association_is_healed_back_to_the_rollouts_pin(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion], aws_env: LocalAWS
) -> None:
    """During ring 1 of the rollout of 2.0, someone points the canary association back at
    the default (no `version`): the heal its event triggers pins it to 2.0 again (the
    rollout's pin), it does not leave it on the default, and nothing else moves."""
    wanted, seen = _setup(reconciler, make_version, aws_env)
    for _ in range(2):
        reconciler.run_desired(wanted)
    _runs(aws_env, seen)
    assert _pinned(aws_env) == {"canary": "2.0", "prod-a": "", "prod-b": ""}
    ssm = aws_env.client("ssm")
    canary = _association_id(aws_env, "canary")
    described = ssm.describe_association(AssociationId=canary)["AssociationDescription"]
    parameters = {k: v for k, v in described["Parameters"].items() if k != "version"}
    ssm.update_association(
        AssociationId=canary,
        AssociationName="canary",
        Name=described["Name"],
        Parameters=parameters,
        Targets=described["Targets"],
        AssociationVersion=described["AssociationVersion"],
    )
    assert _pinned(aws_env)["canary"] == ""  # drifted to the default
    resource = NamedResource(Kind.ASSOCIATION, HERE, name="canary", association_id=canary)
    healed = reconciler.heal_desired(wanted, "r1", [resource])
    assert healed.outcomes == {resource: EventResult.HEALED}
    assert _pinned(aws_env) == {"canary": "2.0", "prod-a": "", "prod-b": ""}
    assert ssm.describe_document(Name="agent")["Document"]["VersionName"] == "1.0"
    assert [(a.kind, a.name) for a in healed.result.actions] == [("association", "canary")]
