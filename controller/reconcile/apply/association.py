"""Apply the steps of an association: create, update, adopt (tag), delete.

Stage: apply; planned in `controller.reconcile.kinds.association`. An association is looked
up by name + owner tag before it is created, and CreateAssociation is never retried
blindly: after a throttle or 5xx we look again before retrying. Every change re-reads the
association's tags first (`ApplyContext.ensure_association_owned`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from controller.aws import associations as aws_associations
from controller.aws import tags as aws_tags
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.model.ownership import Claim, claim
from controller.model.state import SOURCE_TAG, Location
from controller.reconcile.apply.context import ActionFailed, ApplyContext
from controller.reconcile.kinds import (
    Action,
    CreateAssociation,
    DeleteAssociation,
    TagAssociation,
    UpdateAssociation,
)


def create(ctx: ApplyContext, clients: AwsClients, action: Action, step: CreateAssociation) -> str:
    association = step.association
    remember = _remembered(ctx, action.location)

    def existing() -> str | None:
        found = _owned_by_name(ctx, clients, association.name)
        if found is None:
            return None
        # Created by an earlier attempt or pass: make it exactly what we want. AWS's answer
        # (the version's fields) is remembered: the next pass describes nothing.
        aws_associations.update(
            clients, found.association_id, association.name, association.spec, "", written=remember
        )
        return found.association_id

    def created(description: Mapping[str, Any]) -> None:
        # Born with the tags create() sent: ours. The next observe need not read them back.
        tags = aws_associations.birth_tags(ctx.owner, ctx.source, association.spec)
        ctx.observer.associations.remember(action.location, description, tags=tags)

    # CreateAssociation is not idempotent: controller.aws.api.create_once looks again (with
    # `existing`) before every retry after a throttle or 5xx.
    return aws_associations.create(
        clients,
        association.name,
        association.spec,
        ctx.owner,
        ctx.source,
        existing=existing,
        written=created,
    )


def _remembered(ctx: ApplyContext, location: Location) -> Callable[[Mapping[str, Any]], None]:
    """What an UpdateAssociation answered, kept by the observer (its tags are unchanged)."""
    return lambda description: ctx.observer.associations.remember(location, description)


def _owned_by_name(
    ctx: ApplyContext, clients: AwsClients, name: str
) -> aws_associations.AssociationSummary | None:
    adoptable: aws_associations.AssociationSummary | None = None
    for summary in aws_associations.find_by_name(clients, name):
        tags = aws_tags.tags_of(clients, "Association", summary.association_id)
        whose = claim(tags, ctx.owner, ctx.source)
        if whose is Claim.OURS:
            return summary
        if whose is Claim.OTHER_SOURCE:
            # Created by another repository since we observed: never overwrite it.
            raise ActionFailed(
                f"conflict: association {name} ({summary.association_id}) belongs to "
                f"another source ({tags.get(SOURCE_TAG)}): left alone; declare it in one "
                "repository only"
            )
        if whose is Claim.UNCLAIMED and adoptable is None:
            adoptable = summary
    if adoptable is not None:  # declared by us: adopt it (our source tag)
        aws_tags.set_tags(
            clients, "Association", adoptable.association_id, ((SOURCE_TAG, ctx.source),)
        )
    return adoptable


def tag(ctx: ApplyContext, clients: AwsClients, action: Action, step: TagAssociation) -> str:
    """Adopt an unclaimed association we declare: add our source tag."""
    ctx.ensure_association_owned(clients, action, step.association_id)
    aws_tags.set_tags(clients, "Association", step.association_id, step.tags_set)
    ctx.observer.forget_owner(action.location, step.association_id)
    return ", ".join(c.field for c in action.changes)


def update(ctx: ApplyContext, clients: AwsClients, action: Action, step: UpdateAssociation) -> str:
    ctx.ensure_association_owned(clients, action, step.association_id)
    # UpdateAssociation nulls every optional field it is not given: the adapter sends all
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateAssociation.html).
    # AWS's answer (the new version and its fields) is remembered: the next pass describes
    # nothing (what we sent would be the same, unless AWS normalised a field).
    aws_associations.update(
        clients,
        step.association_id,
        step.association.name,
        step.association.spec,
        step.association_version,
        written=_remembered(ctx, action.location),
    )
    return ", ".join(c.field for c in action.changes)


def delete(ctx: ApplyContext, clients: AwsClients, action: Action, step: DeleteAssociation) -> str:
    with contextlib.suppress(NotFound):
        ctx.ensure_association_owned(clients, action, step.association_id)
        aws_associations.delete(clients, step.association_id)
    return step.association_id
