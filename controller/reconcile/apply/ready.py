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

No worker ever waits: an association group is handed to the pool only once the package
groups it needs are done (so no deadlock, and no location idles behind another's package).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from controller.model.kinds import Kind, Phase
from controller.model.state import DesiredAssociation, Location
from controller.reconcile.kinds import Action

__all__ = ["can_overlap", "package_of", "run_overlapped"]

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
    return (
        bool(packages)
        and all(
            action.phase is Phase.ASSOCIATIONS and package_of(action) is not None
            for action in associations
        )
        and all(action.phase is Phase.PACKAGES for action in packages)
    )


def run_overlapped(
    workers: int,
    run: Callable[[list[Action]], None],
    packages: Sequence[list[Action]],
    associations: Sequence[list[Action]],
) -> None:
    """Run the package groups, and each association group once the package groups it
    needs are done (any outcome); returns when every group has run.

    An association group is handed to the pool only when it can start, so no worker ever
    waits for a package while another association could be created (with 150 locations,
    workers blocked on the first packages held up every location's next association)."""
    pending = threading.Condition()
    left = [len(packages) + len(associations)]
    needs: dict[int, set[tuple[Location, str]]] = {}
    waiting: dict[tuple[Location, str], list[int]] = {}
    planned = {(group[0].location, group[0].name) for group in packages}
    with ThreadPoolExecutor(max(1, workers)) as pool:

        def finished() -> None:
            with pending:
                left[0] -= 1
                pending.notify_all()

        def association(index: int) -> None:
            try:
                run(list(associations[index]))
            finally:
                finished()

        def package(group: list[Action]) -> None:
            try:
                run(group)
            finally:
                key = (group[0].location, group[0].name)
                released = []
                with pending:
                    for index in waiting.pop(key, []):
                        needs[index].discard(key)
                        if not needs[index]:
                            released.append(index)
                for index in released:
                    pool.submit(association, index)
                finished()

        # Package groups first; then, under the lock, the association groups: those whose
        # package is not in the plan start now, the others when it is done.
        with pending:
            for group in packages:
                pool.submit(package, list(group))
            for index, group in enumerate(associations):
                wanted = {package_of(action) for action in group} & planned
                if not wanted:
                    pool.submit(association, index)
                    continue
                needs[index] = {key for key in wanted if key is not None}
                for key in needs[index]:
                    waiting.setdefault(key, []).append(index)
            while left[0]:
                pending.wait()
