"""AWS Organizations: the ACTIVE accounts under an OU, nested OUs included.

Stage: the AWS edge of a pass, read by `controller.reconcile.locations` when Settings lists
`{organizationalUnit, roleName}`. Two paged listings, walked breadth-first from the OU:
ListOrganizationalUnitsForParent for the child OUs and ListAccountsForParent for the accounts
directly under each. Both can be called only from the organization's management account or a
delegated administrator (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccountsForParent.html).
Results are kept per `OrganizationReader`, i.e. per pass: an account moved between OUs is seen
by the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.aws.api import Clients, items

# Account `State` (ACTIVE, PENDING_ACTIVATION, SUSPENDED, PENDING_CLOSURE, CLOSED) replaces
# the deprecated `Status` (ACTIVE, SUSPENDED, PENDING_CLOSURE); only ACTIVE accounts take
# associations (https://docs.aws.amazon.com/organizations/latest/APIReference/API_Account.html).
ACTIVE = "ACTIVE"


@dataclass(frozen=True)
class OrganizationalUnit:
    """What one OU holds: its ACTIVE account ids and every OU below it (itself included)."""

    id: str
    accounts: tuple[str, ...]
    units: frozenset[str]


class OrganizationReader:
    """Reads OUs through one set of clients; each OU is listed once per reader (per pass)."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self._children: dict[str, tuple[str, ...]] = {}
        self._accounts: dict[str, tuple[str, ...]] = {}

    def unit(self, unit_id: str) -> OrganizationalUnit:
        """The OU `unit_id` with every ACTIVE account under it, nested OUs included."""
        accounts: list[str] = []
        seen: set[str] = set()
        queue = [unit_id]
        while queue:
            parent = queue.pop(0)
            if parent in seen:
                continue
            seen.add(parent)
            accounts.extend(self._accounts_of(parent))
            queue.extend(self._children_of(parent))
        return OrganizationalUnit(unit_id, tuple(dict.fromkeys(accounts)), frozenset(seen))

    def _children_of(self, parent: str) -> tuple[str, ...]:
        if parent not in self._children:
            self._children[parent] = tuple(
                str(unit["Id"])
                for unit in items(
                    self.clients,
                    "organizations",
                    "ListOrganizationalUnitsForParent",
                    "OrganizationalUnits",
                    ParentId=parent,
                )
            )
        return self._children[parent]

    def _accounts_of(self, parent: str) -> tuple[str, ...]:
        if parent not in self._accounts:
            self._accounts[parent] = tuple(
                str(account["Id"])
                for account in items(
                    self.clients,
                    "organizations",
                    "ListAccountsForParent",
                    "Accounts",
                    ParentId=parent,
                )
                if account.get("State", account.get("Status")) == ACTIVE
            )
        return self._accounts[parent]
