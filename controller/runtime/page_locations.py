"""The status page at organisation scale: a summary per location, and a location's own view.

Sits beside `runtime/page.py` (which calls it): when the last pass spans more than one
location (account, region), the main page shows one row per location — its state, how many
packages and associations, how many are drifted or failed, the actions of the last pass —
instead of one row per resource (at 100 accounts x 3 regions, 20 associations each, that
would be 6,000 rows). Each row links to `/?location=<account>/<region>`, where the page shows
that location's resources and actions, as the single-location page does. Every value is
HTML-escaped; the location in the link is URL-quoted.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from dataclasses import dataclass, field, replace
from html import escape

from controller.model.state import Location
from controller.reconcile.result import (
    ActionResult,
    Failure,
    PassResult,
    Reason,
    ResourceState,
)

# Worst first: the order of the table and the state a location shows.
_STATES = ("unreadable", "failed", "drifted", "in_sync")
_CSS = {"unreadable": "bad", "failed": "bad", "drifted": "warn", "in_sync": "ok"}


@dataclass
class LocationSummary:
    """What the main page shows of one location."""

    location: Location
    kinds: Counter[str] = field(default_factory=Counter)  # package / association -> count
    states: Counter[str] = field(default_factory=Counter)  # ResourceState value -> count
    applied: int = 0
    failed_actions: int = 0
    unreadable: bool = False

    @property
    def state(self) -> str:
        if self.unreadable:
            return "unreadable"
        for state in ("failed", "drifted"):
            if self.states[state]:
                return state
        return "in_sync"


def summaries(last: PassResult, failures: tuple[Failure, ...] = ()) -> list[LocationSummary]:
    """One summary per location of the pass, worst state first, then by account and region."""
    found: dict[Location, LocationSummary] = {}

    def of(account: str, region: str) -> LocationSummary:
        location = Location(account, region)
        if location not in found:
            found[location] = LocationSummary(location)
        return found[location]

    for resource in last.resources:
        summary = of(resource.account, resource.region)
        summary.kinds[resource.kind] += 1
        summary.states[resource.state.value] += 1
    for action in last.actions:
        summary = of(action.account, action.region)
        summary.applied += action.result is ActionResult.SUCCESS
        summary.failed_actions += action.result is ActionResult.FAILURE
    for failure in failures:
        # A location that could not be read (or whose role could not be assumed).
        if failure.location is not None and failure.reason is Reason.OBSERVE and not failure.name:
            of(failure.location.account, failure.location.region).unreadable = True
    return sorted(
        found.values(),
        key=lambda s: (_STATES.index(s.state), s.location.account, s.location.region),
    )


def spans_locations(last: PassResult | None) -> bool:
    """Whether the page should summarise by location: the pass spans more than one."""
    if last is None:
        return False
    places = {(r.account, r.region) for r in last.resources}
    places.update((a.account, a.region) for a in last.actions)
    return len(places) > 1


def link(location: Location) -> str:
    return "/?location=" + urllib.parse.quote(f"{location.account}/{location.region}", safe="/")


def parse(query: str) -> Location | None:
    """`location=<account>/<region>` of the page's query string, or None."""
    values = urllib.parse.parse_qs(query).get("location")
    if not values:
        return None
    account, _, region = values[0].partition("/")
    return Location(account, region) if account and region else None


def locations_card(last: PassResult, failures: tuple[Failure, ...]) -> str:
    """The table of locations, one row each."""
    rows = []
    found = summaries(last, failures)
    tally = Counter(s.state for s in found)
    for s in found:
        drifted = s.states[ResourceState.DRIFTED.value]
        failed = s.states[ResourceState.FAILED.value]
        problems = ", ".join(
            text for n, text in ((failed, f"{failed} failed"), (drifted, f"{drifted} drifted")) if n
        )
        actions = ""
        if s.applied or s.failed_actions:
            actions = f"{s.applied} applied" + (
                f", {s.failed_actions} failed" if s.failed_actions else ""
            )
        rows.append(
            f'<tr><td class="mono"><a href="{escape(link(s.location))}">'
            f"{escape(s.location.account)}/{escape(s.location.region)}</a></td>"
            f'<td><span class="badge {_CSS[s.state]}">{escape(s.state.replace("_", " "))}'
            f"</span></td><td>{s.kinds['package']}</td><td>{s.kinds['association']}</td>"
            f"<td>{escape(problems)}</td><td>{escape(actions)}</td></tr>"
        )
    heading = f"Locations · {len(found)} (" + ", ".join(
        f"{tally[state]} {state.replace('_', ' ')}" for state in _STATES if tally[state]
    ) + ")"
    return (
        f'<section class="card" id="locations"><h2>{escape(heading)}</h2>'
        "<table><thead><tr><th>Location</th><th>State</th><th>Packages</th>"
        "<th>Associations</th><th>Problems</th><th>Last pass</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def only(last: PassResult, location: Location) -> PassResult:
    """The pass as seen from one location: its resources and actions only."""
    here = (location.account, location.region)
    return replace(
        last,
        resources=tuple(r for r in last.resources if (r.account, r.region) == here),
        actions=tuple(a for a in last.actions if (a.account, a.region) == here),
        # Its own overviews (matched by name on the page): not another location's.
        rollouts=tuple(r for r in last.rollouts if (r.account, r.region) in (here, ("", ""))),
    )
