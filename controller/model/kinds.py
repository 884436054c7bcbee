"""The vocabulary of a plan: which kind of resource a step touches and what it does to it.

Shared by every stage: `controller.reconcile.plan` emits actions of a `Kind` and a `Verb`,
apply dispatches on them, and the command line, `/status` and the metrics print them. The
values are the strings of the metric labels and the JSON (`actions_total{kind,action}`,
`plan --json`), so a StrEnum member compares equal to, and prints as, that string.

What a verb means for the reader (its symbol, whether it adds, changes or destroys, whether
the safety rules count it as a deletion) and when it runs (its `Phase`) is answered here
only, after gitops-engine's `pkg/sync/common/types.go` (vocabularies with behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class Kind(StrEnum):
    """`actions_total{kind}`, `resources{kind}`: the SSM resources the controller owns.

    A package's versions and its sharing are steps of the package (kind `package`).
    """

    PACKAGE = "package"  # an SSM document of type Package
    ASSOCIATION = "association"  # a State Manager association of AWS-ConfigureAWSPackage

    def phase(self, verb: Verb, *, removal: bool = False) -> Phase:
        """When a step runs. `removal`: the step is part of removing the whole resource (the
        unshare that precedes DeleteDocument), so it runs with the deletions."""
        deleting = removal or verb.is_deletion
        if verb is Verb.ROLLOUT:
            # A rollout step pins and starts associations: after those are created/updated.
            return Phase.ASSOCIATIONS
        if self is Kind.PACKAGE:
            return Phase.PACKAGE_DELETES if deleting else Phase.PACKAGES
        return Phase.ASSOCIATION_DELETES if deleting else Phase.ASSOCIATIONS

    def publishes(self, verb: Verb) -> bool:
        """The step uploads artifacts and publishes a document version: it needs the bucket."""
        return self is Kind.PACKAGE and verb in (Verb.CREATE, Verb.ADD_VERSION)

    def starts_runs(self, verb: Verb) -> bool:
        """After this step SSM runs associations on their targets: an association's create
        and update, and a package's new default version, which associations that follow the
        default install
        (https://docs.aws.amazon.com/systems-manager/latest/userguide/state-manager-about.html).
        """
        if self is Kind.ASSOCIATION:
            return verb in (Verb.CREATE, Verb.UPDATE)
        return verb in (Verb.SET_DEFAULT, Verb.ROLLOUT)


class Effect(StrEnum):
    """The plan summary's buckets: `Plan: 1 to add, 2 to change, 0 to destroy`."""

    ADD = "add"
    CHANGE = "change"
    DESTROY = "destroy"


class Verb(StrEnum):
    """`actions_total{action}`: what one step does to its resource."""

    CREATE = "create"
    ADD_VERSION = "add_version"
    SET_DEFAULT = "set_default"
    TAG = "tag"
    SHARE = "share"
    UNSHARE = "unshare"
    UPDATE = "update"
    DELETE = "delete"
    DELETE_VERSION = "delete_version"
    ROLLOUT = "rollout"  # one step of a progressive rollout (issue 13): pin, start, gate

    @property
    def effect(self) -> Effect:
        return _EFFECTS.get(self, Effect.CHANGE)

    @property
    def symbol(self) -> str:
        """`+` adds (a resource, a version, a share), `-` takes away, `~` changes."""
        if self is Verb.SHARE:
            return "+"
        if self is Verb.UNSHARE:
            return "-"
        return {Effect.ADD: "+", Effect.DESTROY: "-", Effect.CHANGE: "~"}[self.effect]

    @property
    def is_deletion(self) -> bool:
        """Counted by the safety rules: only with prune enabled, at most maxDeletes a pass.
        An unshare is not: it goes or stays with its package's deletion."""
        return self.effect is Effect.DESTROY


_EFFECTS = {
    Verb.CREATE: Effect.ADD,
    Verb.ADD_VERSION: Effect.ADD,
    Verb.DELETE: Effect.DESTROY,
    Verb.DELETE_VERSION: Effect.DESTROY,
}


def resource_symbol(verbs: Iterable[Verb]) -> str:
    """The symbol of one resource's block in the plan: `+` created, `-` deleted, `~` changed."""
    found = set(verbs)
    if Verb.CREATE in found:
        return "+"
    return "-" if Verb.DELETE in found else "~"


class Phase(IntEnum):
    """The order apply respects (a stable sort keeps plan order within a phase): versions
    before the default pointer and packages before the associations that use them;
    associations deleted before the packages they use."""

    PACKAGES = 1
    ASSOCIATIONS = 2
    ASSOCIATION_DELETES = 3
    PACKAGE_DELETES = 4
