"""Where a pass works: Settings expanded into locations, and each association's placement.

Stage 2 of a pass, before `desired.desired_state`. Settings `accounts` lists explicit
`{id, roleArn}` entries and `{organizationalUnit, roleName}` entries; the OUs are resolved
through AWS Organizations every pass (`controller.aws.organizations`, cached within the pass),
so an account that joins or leaves an OU is picked up by the next pass. Each account's role is
the entry's `roleArn`, or `arn:aws:iam::<id>:role/<roleName>` for an OU's accounts; the
controller's own (home) account always uses the controller's own credentials, whether it is
listed explicitly or found under an OU. An account both listed and under an OU keeps its
explicit entry's role.

An OU that cannot be read is reported (`Locations.failures`); the pass goes on with what was
read, and `Locations.complete` is False so nothing is pruned where that OU's accounts may be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controller.aws.errors import AwsError
from controller.aws.organizations import OrganizationReader
from controller.model.state import Location
from controller.repository import Association, Settings


def role_arn(account: str, role_name: str) -> str:
    """The role assumed in an account found under an OU (IAM ARN format:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html)."""
    return f"arn:aws:iam::{account}:role/{role_name}"


@dataclass(frozen=True)
class Locations:
    """Settings, resolved: every account (with its role) and region a pass works in."""

    regions: tuple[str, ...]
    accounts: tuple[tuple[str, str | None], ...]  # (account id, role ARN or None: own)
    # OU id (a Settings OU or one nested under it) -> the ACTIVE accounts under it
    units: dict[str, frozenset[str]] = field(default_factory=dict)
    failures: tuple[str, ...] = ()  # one line per OU that could not be read

    @property
    def complete(self) -> bool:
        """Every Settings OU was read: an account missing here really left them."""
        return not self.failures

    @property
    def account_ids(self) -> frozenset[str]:
        return frozenset(account for account, _ in self.accounts)

    def every(self) -> tuple[Location, ...]:
        """Every Settings account x region."""
        return tuple(
            Location(account, region) for account, _ in self.accounts for region in self.regions
        )

    def unresolved(self, association: Association) -> bool:
        """Its placement names an OU that could not be read this pass: where it belongs is
        not known, so it must not be pruned anywhere (never act on a partial view)."""
        placement = association.placement
        if self.complete or placement is None:
            return False
        return any(
            entry.id is None and entry.organizational_unit not in self.units
            for entry in placement.accounts
        )

    def place(self, association: Association) -> tuple[tuple[Location, ...], tuple[str, ...]]:
        """The locations `association` goes to, and what of its placement lies outside
        Settings (one line each: those parts are left out, the rest is placed)."""
        placement = association.placement
        accounts: list[str] = [account for account, _ in self.accounts]
        regions: list[str] = list(self.regions)
        problems: list[str] = []
        where = association.where if association.line else association.path
        if placement is not None and placement.accounts:
            chosen: set[str] = set()
            for entry in placement.accounts:
                if entry.id is not None:
                    if entry.id in self.account_ids:
                        chosen.add(entry.id)
                    elif self.complete:
                        problems.append(
                            f"{where}: placement account {entry.id} is not a Settings account "
                            "(nor under a Settings organizationalUnit): add it to Settings or "
                            "remove it from the placement"
                        )
                elif entry.organizational_unit in self.units:
                    chosen |= self.units[entry.organizational_unit] & self.account_ids
                elif self.complete:
                    problems.append(
                        f"{where}: placement organizationalUnit {entry.organizational_unit} is "
                        "not a Settings organizationalUnit nor nested under one: add it to "
                        "Settings or remove it from the placement"
                    )
            accounts = [account for account in accounts if account in chosen]
        if placement is not None and placement.regions:
            outside = [region for region in placement.regions if region not in self.regions]
            problems.extend(
                f"{where}: placement region {region} is not a Settings region "
                f"({', '.join(self.regions)}): add it to Settings or remove it from the placement"
                for region in outside
            )
            regions = [region for region in regions if region in placement.regions]
        located = tuple(Location(account, region) for account in accounts for region in regions)
        return located, tuple(problems)


def static_locations(
    settings: Settings | None, home_account: str, default_region: str
) -> Locations:
    """Settings' explicit accounts and regions, without reading Organizations (OU entries are
    left out): for callers that only need the explicit part."""
    return resolve_locations(settings, home_account, default_region, None)


def resolve_locations(
    settings: Settings | None,
    home_account: str,
    default_region: str,
    organizations: Callable[[], OrganizationReader] | None,
) -> Locations:
    """Settings expanded: regions (default: the environment's), and accounts (default: our
    own), OUs read through `organizations()` (made at most once per call: one reader, one
    cache, per pass). With `organizations=None` OU entries are skipped."""
    regions = (settings.regions if settings else ()) or (default_region,)
    entries = settings.accounts if settings else ()
    accounts: dict[str, str | None] = {}
    for entry in entries:
        if entry.id is not None:
            accounts[entry.id] = None if entry.id == home_account else entry.role_arn
    units: dict[str, frozenset[str]] = {}
    failures: list[str] = []
    reader: OrganizationReader | None = None
    for entry in entries:
        unit, name = entry.organizational_unit, entry.role_name
        if unit is None or name is None or organizations is None:
            continue
        if reader is None:
            reader = organizations()
        try:
            found = reader.unit(unit)
            nested = {child: frozenset(reader.unit(child).accounts) for child in found.units}
        except AwsError as error:
            failures.append(
                f"organizationalUnit {unit} could not be read ({error}): its accounts were "
                "left as they are this pass; check organizations:List* in the controller's "
                "policy (the controller must run in the management or a delegated "
                "administrator account)"
            )
            continue
        units.update(nested)
        for account in found.accounts:
            if account not in accounts:
                accounts[account] = None if account == home_account else role_arn(account, name)
    if not accounts:
        accounts[home_account] = None
    return Locations(tuple(regions), tuple(accounts.items()), units, tuple(failures))


def placement_problems(
    associations: Iterable[Association], locations: Locations
) -> tuple[str, ...]:
    """Every association's placement problems (see `Locations.place`)."""
    return tuple(
        problem for association in associations for problem in locations.place(association)[1]
    )
