"""Observe a package's sharing: the accounts it is shared with, and which version.

Stage: observe; planned in `controller.reconcile.kinds.sharing`, applied in
`controller.reconcile.apply.sharing`. Sharing has no version number to cache on
(DescribeDocumentPermission returns the accounts only), so it is read every pass, once per
package: the "one sharing read per package" of the no-op budget (contract: Budgets).
"""

from __future__ import annotations

from controller.aws import sharing as aws_sharing
from controller.aws.session import AwsClients


def observe_sharing(clients: AwsClients, name: str) -> tuple[tuple[str, str], ...]:
    """Sorted (account id or "All", shared version) of package `name`; never cached."""
    return aws_sharing.shared_with(clients, name)
