"""Apply one step of a progressive rollout (issue 13): the tag first, then pins, then starts.

Stage: apply; planned in `controller.reconcile.kinds.rollout`. The order is what makes a
restart safe: the `ssm-gitops:rollout` tag announcing the step is written BEFORE any ring is
pinned or started, so a controller killed in between finds the step in the tag and finishes
it (the overlay re-pins; an association of the ring with no run since the ring began is
started), and never starts a ring it already started (a run since then is recognised).
The package's owner tags were re-read by the `Applier` before this step
(`ApplyContext.ensure_package_owned`); each association's are re-read before its pin, or
before the tag write when the step only starts it.
"""

from __future__ import annotations

import time
from dataclasses import replace

from controller.aws import associations as aws_associations
from controller.aws import rollout as aws_rollout
from controller.aws.session import AwsClients
from controller.model.rollout import encode
from controller.model.state import Location
from controller.reconcile.apply.context import ApplyContext
from controller.reconcile.kinds import Action, AdvanceRollout


def advance(ctx: ApplyContext, clients: AwsClients, action: Action, step: AdvanceRollout) -> str:
    since = step.since
    # Starting an association runs it on its targets: its owner and source tags are read
    # afresh first, as before a pin (contract: Ownership and safety; the IAM policy gates
    # StartAssociationsOnce on the owner tag only, so the source is checked here alone).
    # Before the tag write, so a step that cannot start a ring announces nothing.
    pinned = {pin.association_id for pin in step.pins}
    for location, association_id in step.start:
        if association_id not in pinned:  # a pinned one is re-read right before its pin
            ctx.ensure_association_owned(ctx.clients_for(location), action, association_id)
    if step.state is not None:
        state = step.state
        if step.stamp:  # the ring starts now: its runs are those created from here on
            since = round(time.time(), 3)
            state = replace(state, started_at=since)
        aws_rollout.write_state(clients, action.name, encode(state))
    for pin in step.pins:
        where = ctx.clients_for(pin.association.location)
        ctx.ensure_association_owned(where, action, pin.association_id)
        # UpdateAssociation with every field (it nulls what it is not given) and the
        # `version` parameter of AWS-ConfigureAWSPackage set to the VersionName
        # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateAssociation.html).
        # AssociationVersion read afresh: an ordinary update of its other fields may have
        # run earlier in this pass (concurrency control, as in apply.association).
        current = aws_associations.describe(where, pin.association_id)
        version = aws_associations.update(
            where,
            pin.association_id,
            pin.association.name,
            pin.association.spec,
            str(current.get("AssociationVersion", pin.association_version)),
        )
        ctx.observer.record_written(
            pin.association.location, pin.association_id, version, pin.association.spec
        )
    waiting: dict[Location, list[str]] = {}
    for location, association_id in step.start:
        where = ctx.clients_for(location)
        if since and aws_rollout.executions_since(where, association_id, since):
            continue  # already running since the step began: never started twice
        waiting.setdefault(location, []).append(association_id)
    for location, ids in sorted(waiting.items()):
        aws_rollout.start_once(ctx.clients_for(location), ids)
    return step.text
