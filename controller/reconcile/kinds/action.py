"""`Action`: one step of a plan, as `plan()` emits it and apply runs it.

Stage: the value between plan and apply. An action is an envelope (which resource, where,
what changes for the reviewer) around one typed step: a small frozen dataclass per verb of a
kind, defined next to the planning of that kind (`controller.reconcile.kinds.package`,
`.version`, `.sharing`, `.association`). A step holds exactly what apply needs, so apply
never checks an optional field back into existence; its kind and verb are fixed by its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from controller.model.kinds import Kind, Phase, Verb
from controller.model.state import Location

if TYPE_CHECKING:
    from controller.reconcile.kinds import Step


@dataclass(frozen=True)
class Change:
    """One field that differs, for the reviewer: `field: old -> new`."""

    field: str
    old: str
    new: str


class ResourceError(Exception):
    """A problem confined to one resource (e.g. a published version changed): plan reports
    it for that resource and plans the others."""


@dataclass(frozen=True)
class StepBase:
    """What every step says about itself; each step type sets `kind` and `verb`."""

    kind: ClassVar[Kind]
    verb: ClassVar[Verb]

    @property
    def subject(self) -> str:
        """What the step acts on within its resource (a version, accounts), for one line."""
        return ""

    @property
    def declared(self) -> bool:
        """The resource is declared in the repository: an unclaimed one (our owner tag, no
        source tag) may then be adopted (controller.model.ownership)."""
        return True

    @property
    def removal(self) -> bool:
        """Part of removing the whole resource: runs with, and is held with, its deletion."""
        return False


@dataclass(frozen=True)
class Action:
    """One step apply takes. Frozen: apply reads it, never edits it."""

    name: str
    location: Location
    step: Step
    changes: tuple[Change, ...] = ()

    @property
    def kind(self) -> Kind:
        return self.step.kind

    @property
    def verb(self) -> Verb:
        return self.step.verb

    @property
    def phase(self) -> Phase:
        return self.step.kind.phase(self.step.verb, removal=self.step.removal)

    @property
    def symbol(self) -> str:
        return self.verb.symbol

    @property
    def is_deletion(self) -> bool:
        return self.verb.is_deletion

    @property
    def group(self) -> tuple[Kind, str, Location]:
        """Actions of one group run in order; different groups may run concurrently."""
        return (self.kind, self.name, self.location)

    def describe(self) -> str:
        """One line: `+ package datadog-agent add_version 6.9.1 (123/us-east-1)`."""
        text = f"{self.symbol} {self.kind} {self.name} {self.verb}"
        if self.step.subject:
            text += f" {self.step.subject}"
        return f"{text} ({self.location})"
