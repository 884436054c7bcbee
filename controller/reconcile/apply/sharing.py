"""Apply the sharing steps of a package (ModifyDocumentPermission).

Stage: apply; planned in `controller.reconcile.kinds.sharing`. Both converge by nature:
sharing twice is harmless, and unsharing a document that is gone is done.
"""

from __future__ import annotations

import contextlib

from controller.aws import sharing as aws_sharing
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.reconcile.apply.context import ApplyContext
from controller.reconcile.kinds import Action, Share, Unshare


def share(ctx: ApplyContext, clients: AwsClients, action: Action, step: Share) -> str:
    aws_sharing.share(clients, action.name, step.accounts)
    return ",".join(step.accounts)


def unshare(ctx: ApplyContext, clients: AwsClients, action: Action, step: Unshare) -> str:
    with contextlib.suppress(NotFound):
        aws_sharing.unshare(clients, action.name, step.accounts)
    return ",".join(step.accounts)
