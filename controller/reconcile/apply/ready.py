"""When an association may start: as soon as the package it installs is ready there.

Stage: apply (`Applier`). The plan's phases put every package step before every
association step (`controller.model.kinds.Phase`), because an association must not be
created before its package is published and shared with its account. Waiting for *all*
packages of *all* regions is more than that rule asks: at organisation scale the
association phase is the long one (a location's CreateAssociation bucket refills at a few
calls a second), and every second before it starts is added to the whole apply. So the
package phase and the association phase run as one: each association's steps wait only
for the steps of the package it installs, in that package's location (its home account
and the association's region; the ARN of a package in another account names both,
`controller.reconcile.desired.package_arn`), whatever their outcome, exactly as the
phase barrier waited for them. An association whose package the plan does not change
starts at once.

The order stays safe from deadlock without a timeout: the steps are handed to a FIFO
thread pool package groups first, so by the time a worker takes an association group
every package group it may wait for has been taken by a worker already, and package
groups wait for nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from controller.model.kinds import Kind, Phase
from controller.model.state import DesiredAssociation, Location
from controller.reconcile.kinds import Action

__all__ = ["Readiness", "can_overlap", "package_of"]

_ARN_PREFIX = "arn:aws:ssm:"


def package_of(action: Action) -> tuple[Location, str] | None:
    """(location, name) of the package an association step installs; None when unknown."""
    association = getattr(action.step, "association", None)
    if action.kind is not Kind.ASSOCIATION or not isinstance(association, DesiredAssociation):
        return None
    ref = association.package
    if ref.startswith(_ARN_PREFIX):
        # arn:aws:ssm:REGION:ACCOUNT:document/NAME
        parts = ref.split(":", 5)
        if len(parts) != 6 or not parts[5].startswith("document/"):
            return None
        return Location(parts[4], parts[3]), parts[5].removeprefix("document/")
    return action.location, ref


def can_overlap(packages: Sequence[Action], associations: Sequence[Action]) -> bool:
    """The two phases may run as one when every step of the second is an association step
    whose package is known (a rollout step, for one, waits for the whole phase as before)."""
    return bool(packages) and all(
        action.phase is Phase.ASSOCIATIONS and package_of(action) is not None
        for action in associations
    ) and all(action.phase is Phase.PACKAGES for action in packages)


class Readiness:
    """One event per package group of the plan: set when its steps are done (any outcome)."""

    def __init__(self, package_groups: Sequence[Sequence[Action]]) -> None:
        self._done: dict[tuple[Location, str], threading.Event] = {
            (group[0].location, group[0].name): threading.Event() for group in package_groups
        }

    def run_package(self, run: Callable[[list[Action]], None], group: list[Action]) -> None:
        try:
            run(group)
        finally:
            event = self._done.get((group[0].location, group[0].name))
            if event is not None:
                event.set()

    def run_association(self, run: Callable[[list[Action]], None], group: list[Action]) -> None:
        for needed in {package_of(action) for action in group}:
            event = self._done.get(needed) if needed is not None else None
            if event is not None:
                event.wait()
        run(group)
