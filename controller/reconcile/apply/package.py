"""Apply the steps of a package document: create it, tag it, delete it.

Stage: apply; planned in `controller.reconcile.kinds.package`. A create that finds the
document already there is ours from a pass cut short (then the version is published as
usual) or someone else's (then it fails with what to do).
"""

from __future__ import annotations

import contextlib

from controller.aws import packages as aws_packages
from controller.aws import tags as aws_tags
from controller.aws.errors import Conflict, NotFound
from controller.aws.session import AwsClients
from controller.model.ownership import Claim, claim
from controller.model.state import OWNER_TAG, SOURCE_TAG
from controller.reconcile.apply.context import ActionFailed, ApplyContext
from controller.reconcile.apply.version import publish, upload
from controller.reconcile.kinds import Action, CreatePackage, DeletePackage, TagPackage


def create(ctx: ApplyContext, clients: AwsClients, action: Action, step: CreatePackage) -> str:
    package, version = step.package, step.version
    url = upload(ctx, clients, package, version)
    try:
        aws_packages.create(
            clients, package.name, version.name, version.content, url, step.tags or package.tags
        )
    except Conflict:
        # Exists already: ours from a pass that was cut short, or someone else's.
        tags = aws_tags.tags_of(clients, "Document", package.name)
        whose = claim(tags, ctx.owner, ctx.source)
        if whose is Claim.NOT_OURS:
            raise ActionFailed(
                f"package {package.name} already exists in {action.location} without the "
                f"tag {OWNER_TAG}={ctx.owner}: it is not ours, rename the package in "
                f"{package.source}"
            ) from None
        if whose is Claim.OTHER_SOURCE:
            raise ActionFailed(
                f"conflict: package {package.name} in {action.location} belongs to another "
                f"source ({tags.get(SOURCE_TAG)}): left alone; declare it in one "
                f"repository only ({package.source})"
            ) from None
        return publish(ctx, clients, action.location, package, version, url)
    published = aws_packages.wait_active(clients, package.name, version.name)
    ctx.remember(action.location, package.name, version.name, published.number)
    ctx.created(action.location, package.name)
    return f"{version.name} (version {published.number})"


def tag(ctx: ApplyContext, clients: AwsClients, action: Action, step: TagPackage) -> str:
    aws_tags.set_tags(clients, "Document", action.name, step.tags_set)
    aws_tags.remove_tags(clients, "Document", action.name, step.tags_removed)
    return ""


def delete(ctx: ApplyContext, clients: AwsClients, action: Action, step: DeletePackage) -> str:
    # Unshared first (DeleteDocument fails while a document is shared); gone = done.
    with contextlib.suppress(NotFound):
        aws_packages.delete(clients, action.name)
    return ""
