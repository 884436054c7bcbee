"""The sharing of a package with other accounts (or with everyone: `All`).

Stage: plan (pure). `plan_sharing` compares `shareWith` with the live permissions and
returns the unshare and share steps; apply runs them in `controller.reconcile.apply.sharing`.
We share every version (`$ALL`), so associations in other accounts may pin any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from controller.model.kinds import Kind, Verb
from controller.model.state import SHARE_ALL, SHARED_VERSION, DesiredPackage, ObservedPackage
from controller.reconcile.kinds.action import Action, Change, StepBase


@dataclass(frozen=True)
class Share(StepBase):
    """ModifyDocumentPermission: add these account ids (or `All`)."""

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.SHARE
    accounts: tuple[str, ...]

    @property
    def subject(self) -> str:
        return ",".join(self.accounts)


@dataclass(frozen=True)
class Unshare(StepBase):
    """ModifyDocumentPermission: remove these account ids (or `All`).

    `before_delete`: the package itself is being removed; DeleteDocument fails while a
    document is shared, so this runs first, and is held back with a blocked deletion
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html).
    """

    kind: ClassVar[Kind] = Kind.PACKAGE
    verb: ClassVar[Verb] = Verb.UNSHARE
    accounts: tuple[str, ...]
    before_delete: bool = False

    @property
    def subject(self) -> str:
        return ",".join(self.accounts)

    @property
    def declared(self) -> bool:
        return not self.before_delete

    @property
    def removal(self) -> bool:
        return self.before_delete


def share_targets(share_with: Iterable[str]) -> tuple[str, ...]:
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ModifyDocumentPermission.html
    # "All" shares publicly and cannot be mixed with account ids.
    accounts = set(share_with)
    if SHARE_ALL in accounts:
        return (SHARE_ALL,)
    return tuple(sorted(accounts))


def share_new(package: DesiredPackage) -> list[Action]:
    """A package just created: share it as declared."""
    shares = share_targets(package.share_with)
    if not shares:
        return []
    step = Share(shares)
    return [
        Action(package.name, package.location, step, (Change("shareWith", "", ",".join(shares)),))
    ]


def plan_sharing(
    package: DesiredPackage, live: ObservedPackage
) -> tuple[Action | None, Action | None]:
    """(unshare, share) for a package that exists. The unshare runs before every other step
    of the package: "All" cannot be mixed with account ids (ModifyDocumentPermission)."""
    wanted_shares = set(share_targets(package.share_with))
    live_shares = dict(live.shared)
    to_share = tuple(sorted(a for a in wanted_shares if live_shares.get(a) != SHARED_VERSION))
    to_unshare = tuple(sorted(a for a in live_shares if a not in wanted_shares))
    unshare = share = None
    if to_unshare:
        unshare = Action(
            package.name,
            package.location,
            Unshare(to_unshare),
            (Change("shareWith", ",".join(to_unshare), ""),),
        )
    if to_share:
        change = Change(
            "shareWith", ",".join(sorted(live_shares)) or "", ",".join(sorted(wanted_shares))
        )
        share = Action(package.name, package.location, Share(to_share), (change,))
    return unshare, share


def unshare_all(live: ObservedPackage) -> list[Action]:
    """A package being removed: every share goes first (with no Change: the package goes)."""
    if not live.shared:
        return []
    accounts = tuple(account for account, _ in live.shared)
    return [Action(live.name, live.location, Unshare(accounts, before_delete=True))]
