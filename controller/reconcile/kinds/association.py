"""An association of AWS-ConfigureAWSPackage: create it, update it, adopt it, delete it.

Stage: plan (pure). `plan_association` pairs one desired association with the live one of
the same name and returns its steps, with the changed fields in the repository's words;
apply runs them in `controller.reconcile.apply.association`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from controller.model.kinds import Kind, Verb
from controller.model.state import (
    SOURCE_TAG,
    AssociationFields,
    DesiredAssociation,
    ObservedAssociation,
    association_fields,
)
from controller.reconcile.kinds.action import Action, Change, StepBase


@dataclass(frozen=True)
class CreateAssociation(StepBase):
    kind: ClassVar[Kind] = Kind.ASSOCIATION
    verb: ClassVar[Verb] = Verb.CREATE
    association: DesiredAssociation


@dataclass(frozen=True)
class UpdateAssociation(StepBase):
    kind: ClassVar[Kind] = Kind.ASSOCIATION
    verb: ClassVar[Verb] = Verb.UPDATE
    association: DesiredAssociation
    association_id: str
    association_version: str  # the AssociationVersion we planned against


@dataclass(frozen=True)
class TagAssociation(StepBase):
    """Adopt an unclaimed association we declare: it gets our source tag."""

    kind: ClassVar[Kind] = Kind.ASSOCIATION
    verb: ClassVar[Verb] = Verb.TAG
    association_id: str
    tags_set: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DeleteAssociation(StepBase):
    kind: ClassVar[Kind] = Kind.ASSOCIATION
    verb: ClassVar[Verb] = Verb.DELETE
    association_id: str

    @property
    def declared(self) -> bool:
        return False


# AssociationFields field -> the repository's (YAML) name, so the plan speaks the user's words;
# from each field's declaration (model.state.AssociationField), in declaration order.
_ASSOCIATION_FIELDS = {name: declared.yaml for name, declared in association_fields()}


def plan_association(
    wanted: DesiredAssociation, live: ObservedAssociation | None, source: str = ""
) -> list[Action]:
    """Create, or update the fields that differ, then adopt an unclaimed live one."""
    if live is None:
        changes = _association_changes(None, wanted.spec)
        return [Action(wanted.name, wanted.location, CreateAssociation(wanted), changes)]
    steps: list[Action] = []
    if live.spec != wanted.spec:
        step = UpdateAssociation(wanted, live.association_id, live.version)
        changes = _association_changes(live.spec, wanted.spec)
        steps.append(Action(wanted.name, wanted.location, step, changes))
    if source and live.source != source:
        tag = TagAssociation(live.association_id, ((SOURCE_TAG, source),))
        changes = (Change(f"tags.{SOURCE_TAG}", live.source, source),)
        steps.append(Action(wanted.name, wanted.location, tag, changes))
    return steps


def plan_removal(live: ObservedAssociation) -> list[Action]:
    """A live association the repository no longer declares (or a duplicate): delete it."""
    return [
        Action(
            live.name or live.association_id,  # AssociationName is optional: show the id then
            live.location,
            DeleteAssociation(live.association_id),
            (Change("association", live.association_id, ""),),
        )
    ]


def _association_changes(
    live: AssociationFields | None, wanted: AssociationFields
) -> tuple[Change, ...]:
    changes: list[Change] = []
    for name, shown in _ASSOCIATION_FIELDS.items():
        new = getattr(wanted, name)
        old = getattr(live, name) if live else None
        if name == "parameters":
            old_map = dict(old or ())
            for key, value in new:
                if old_map.get(key) != value:
                    changes.append(Change(f"parameters.{key}", old_map.get(key, ""), value))
            changes.extend(
                Change(f"parameters.{key}", value, "")
                for key, value in sorted(old_map.items())
                if key not in dict(new)
            )
        elif old != new and (live is not None or new not in (None, False, ())):
            show = _show_output if name == "output" else _show
            changes.append(Change(shown, show(old), show(new)))
    return tuple(changes)


def _show_output(value: tuple[str, str, str] | None) -> str:
    """(bucket, key prefix, region) as the user reads it: `s3://bucket/prefix (region)`."""
    if value is None:
        return ""
    bucket, prefix, region = value
    url = f"s3://{bucket}/{prefix.lstrip('/')}" if prefix else f"s3://{bucket}"
    return f"{url} ({region})" if region else url


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        parts = []
        for key, values in value:
            shown = ",".join(values) if isinstance(values, tuple) else str(values)
            parts.append(f"{key}={shown}")
        return "; ".join(parts)
    if isinstance(value, tuple):
        return "/".join(str(part) for part in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
