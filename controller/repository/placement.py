"""Placement of an association within Settings: the check made when a repository loads.

Stage 1 (repository), called from `checks.check_repository`. What can be told from the YAML
alone is checked here, with the file:line of the placement entry: a region Settings does not
list, an account id that is neither a Settings account nor possibly inside a Settings OU, an
OU when Settings names none. Whether an id or an OU lies *under* a Settings OU is known only
from AWS Organizations: `controller.reconcile.locations` checks that every pass.
"""

from __future__ import annotations

from controller.repository.loader import LoadedDocument, Problems
from controller.repository.models import Association, Settings


def check_placement(
    association: Association, loaded: LoadedDocument, settings: Settings | None, problems: Problems
) -> None:
    placement = association.placement
    if placement is None:
        return
    if settings is None:
        # A Settings document that failed its own checks is absent here: its errors, already
        # reported, come first (this one would mislead).
        if (placement.accounts or placement.regions) and not problems.errors:
            problems.add(
                loaded.shown,
                loaded.position("spec", "placement"),
                "placement needs a Settings document listing its accounts and regions: "
                "add one, or remove placement (the association then goes to our own account "
                "in the environment's region)",
            )
        return
    ids = {account.id for account in settings.accounts if account.id}
    units = {a.organizational_unit for a in settings.accounts if a.organizational_unit}
    for index, entry in enumerate(placement.accounts):
        where = loaded.position("spec", "placement", "accounts", index)
        if entry.id is not None and entry.id not in ids and not units:
            listed = ", ".join(sorted(ids)) or "none"
            problems.add(
                loaded.shown,
                where,
                f"placement account {entry.id} is not in Settings accounts ({listed}): add it "
                "to Settings spec.accounts or remove it here",
            )
        if entry.organizational_unit is not None and not units:
            problems.add(
                loaded.shown,
                where,
                f"placement organizationalUnit {entry.organizational_unit} lies outside "
                "Settings, which lists no organizationalUnit: add it to Settings spec.accounts "
                "or remove it here",
            )
    if settings.regions:
        for index, region in enumerate(placement.regions):
            if region not in settings.regions:
                problems.add(
                    loaded.shown,
                    loaded.position("spec", "placement", "regions", index),
                    f"placement region {region} is not in Settings regions "
                    f"({', '.join(settings.regions)}): add it there or remove it here",
                )
