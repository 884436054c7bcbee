"""Package sharing (document permissions): who may use our packages from other accounts.

Stage: observe (one DescribeDocumentPermission per package per pass) and apply.
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ModifyDocumentPermission.html:
at most 20 account ids per call; "All" (public) cannot be mixed with account ids;
SharedDocumentVersion is $DEFAULT, $LATEST or $ALL.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.aws.api import pages, request
from controller.aws.session import AwsClients
from controller.model.state import SHARE_ALL, SHARED_VERSION

MAX_IDS_PER_CALL = 20


def shared_with(clients: AwsClients, name: str) -> tuple[tuple[str, str], ...]:
    """Sorted (account id or "All", shared version); AccountSharingInfoList carries the
    SharedDocumentVersion (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AccountSharingInfo.html)."""
    found: dict[str, str] = {}
    for page in pages(
        clients, "ssm", "DescribeDocumentPermission", Name=name, PermissionType="Share"
    ):
        for account in page.get("AccountIds", []):
            found.setdefault(str(account), "")
        for info in page.get("AccountSharingInfoList", []):
            found[str(info["AccountId"])] = str(info.get("SharedDocumentVersion", ""))
    # AWS reports a public share as "all"; the repository (and the API input) say "All"
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeDocumentPermission.html,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ModifyDocumentPermission.html).
    return tuple(
        sorted(
            (SHARE_ALL if account.lower() == "all" else account, version or SHARED_VERSION)
            for account, version in found.items()
        )
    )


def _chunks(accounts: Sequence[str]) -> list[list[str]]:
    return [
        list(accounts[i : i + MAX_IDS_PER_CALL]) for i in range(0, len(accounts), MAX_IDS_PER_CALL)
    ]


def share(clients: AwsClients, name: str, accounts: Sequence[str]) -> None:
    for chunk in _chunks(accounts):
        request(
            clients,
            "ssm",
            "ModifyDocumentPermission",
            Name=name,
            PermissionType="Share",
            AccountIdsToAdd=chunk,
            SharedDocumentVersion=SHARED_VERSION,
        )


def unshare(clients: AwsClients, name: str, accounts: Sequence[str]) -> None:
    for chunk in _chunks(accounts):
        request(
            clients,
            "ssm",
            "ModifyDocumentPermission",
            Name=name,
            PermissionType="Share",
            AccountIdsToRemove=chunk,
        )
