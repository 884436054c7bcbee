"""The resource kinds of a plan, one module each: what steps a resource needs (pure).

Stage: plan. `controller.reconcile.plan` pairs desired and live resources and applies the
safety rules; for each pair it asks the kind's module for the steps:

    package.py      a package document: create, tags, removal (unshare, then delete)
    version.py      its versions: publish, default pointer, prune; immutability, the quota
    sharing.py      its sharing: share, unshare
    association.py  an association: create, update, adopt (tag), delete
    rollout.py      a package's progressive rollout: the overlay, its next step (issue 13)

Each module defines its steps (a frozen dataclass per verb) next to the planning of them;
apply runs each step in the module of the same name under `controller.reconcile.apply`, and
the live state they are planned against is read by the module of that name under
`controller.reconcile.observe`.
`Step` is every step type: apply's one dispatch switch covers it (mypy checks that).
"""

from __future__ import annotations

from controller.reconcile.kinds.action import Action, Change, ResourceError
from controller.reconcile.kinds.association import (
    CreateAssociation,
    DeleteAssociation,
    TagAssociation,
    UpdateAssociation,
)
from controller.reconcile.kinds.package import CreatePackage, DeletePackage, TagPackage
from controller.reconcile.kinds.rollout import AdvanceRollout
from controller.reconcile.kinds.sharing import Share, Unshare
from controller.reconcile.kinds.version import AddVersion, DeleteVersion, SetDefault

Step = (
    CreatePackage
    | AddVersion
    | SetDefault
    | TagPackage
    | Share
    | Unshare
    | DeleteVersion
    | DeletePackage
    | CreateAssociation
    | UpdateAssociation
    | TagAssociation
    | DeleteAssociation
    | AdvanceRollout
)

__all__ = [
    "Action",
    "AddVersion",
    "AdvanceRollout",
    "Change",
    "CreateAssociation",
    "CreatePackage",
    "DeleteAssociation",
    "DeletePackage",
    "DeleteVersion",
    "ResourceError",
    "SetDefault",
    "Share",
    "Step",
    "TagAssociation",
    "TagPackage",
    "Unshare",
    "UpdateAssociation",
]
