"""The status page at 100 accounts x 3 regions (issue 15): a table of locations on the main
page, the resources on a location's own view (`/?location=<account>/<region>`)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from controller.model.state import Location
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    PassOutcome,
    PassResult,
    Reason,
    ResourceState,
    ResourceStatus,
)
from controller.runtime import page
from controller.runtime.metrics import Metrics
from controller.runtime.server import App, HttpServer
from controller.runtime.status import Status, StatusBoard

ACCOUNTS = tuple(f"{100000000000 + n:012d}" for n in range(100))
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ASSOCIATIONS = 20
FAILED = Location(ACCOUNTS[42], "eu-west-1")
UNREADABLE = Location(ACCOUNTS[7], "us-east-1")


def _organisation_pass() -> tuple[PassResult, tuple[Failure, ...]]:
    resources = [
        ResourceStatus("package", f"pkg-{n}", ACCOUNTS[0], region, ResourceState.IN_SYNC)
        for region in REGIONS
        for n in range(10)
    ]
    for account in ACCOUNTS:
        for region in REGIONS:
            for n in range(ASSOCIATIONS):
                failed = (account, region) == (FAILED.account, FAILED.region) and n == 3
                resources.append(
                    ResourceStatus(
                        "association",
                        f"assoc-{n}",
                        account,
                        region,
                        ResourceState.FAILED if failed else ResourceState.IN_SYNC,
                        "AccessDenied: not allowed" if failed else "",
                    )
                )
    actions = (
        ActionRecord(
            "association",
            "update",
            "assoc-3",
            FAILED.account,
            FAILED.region,
            ActionResult.FAILURE,
            "AccessDenied: not allowed",
        ),
    )
    failures = (
        Failure(Reason.OBSERVE, "could not read its associations", location=UNREADABLE),
    )
    result = PassResult(
        "a" * 40,
        PassOutcome.FAILURE,
        1_700_000_000.0,
        1_700_000_030.0,
        resources=tuple(resources),
        actions=actions,
        failures=failures,
    )
    return result, failures


@pytest.fixture
def served() -> Iterator[str]:
    last, _failures = _organisation_pass()
    board = StatusBoard(Status(repo="https://git.example.com/ops/fleet.git", ref="main"))
    board.update(last_pass=last)
    server = HttpServer(App(board, Metrics(), lambda _reason: None), "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.port}/"
    server.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_main_page_at_300_locations_is_one_row_per_location(served: str) -> None:
    """Issue 15: the page listed every resource: 6,030 rows at 100 accounts x 3 regions."""
    html = _get(served)
    assert html.count("<tr>") <= 300 + 1 + 5  # the locations and their header
    assert len(html.encode()) < 200_000, len(html.encode())
    assert "assoc-19" not in html  # no resource rows on the main page
    assert "Locations · 300" in html
    # Problems first: the unreadable location, then the failed one.
    unreadable = html.index(f"{UNREADABLE.account}/{UNREADABLE.region}</a>")
    failed = html.index(f"{FAILED.account}/{FAILED.region}</a>")
    first_ok = html.index(f"{ACCOUNTS[0]}/ap-southeast-2</a>")
    assert unreadable < failed < first_ok
    assert f'href="/?location={FAILED.account}/{FAILED.region}"' in html


def test_a_location_view_shows_its_resources_and_actions(served: str) -> None:
    html = _get(f"{served}?location={FAILED.account}/{FAILED.region}")
    assert html.count("assoc-") >= ASSOCIATIONS
    assert "AccessDenied: not allowed" in html
    assert ACCOUNTS[1] not in html  # only this location
    assert 'href="/"' in html  # back to all locations


def test_one_location_keeps_the_resource_page() -> None:
    last, _failures = _organisation_pass()
    home = tuple(r for r in last.resources if (r.account, r.region) == (ACCOUNTS[0], REGIONS[0]))
    single = PassResult("b" * 40, PassOutcome.SUCCESS, 1.0, 2.0, resources=home)
    html = page.render(Status(repo="r", last_pass=single), now=3.0)
    assert "assoc-19" in html and 'id="locations"' not in html


def test_a_location_view_shows_that_locations_rollout() -> None:
    """Bug (merge of organisations and association overviews): the overviews carried no
    location and a location's own view matched them by association name, so it showed
    whichever location's overview came last (here another account's failed run)."""
    import time

    from controller.reconcile.result import Rollout

    here, there = Location(ACCOUNTS[1], "us-east-1"), Location(ACCOUNTS[2], "us-east-1")
    now = time.time()
    last = PassResult(
        "abc",
        PassOutcome.NO_CHANGE,
        now,
        now,
        resources=tuple(
            ResourceStatus("association", "agent-all", a.account, a.region, ResourceState.IN_SYNC)
            for a in (here, there)
        ),
        rollouts=(
            Rollout("agent-all", "Success", {"Success": 4}, here.account, here.region),
            Rollout("agent-all", "Failed", {"Failed": 9}, there.account, there.region),
        ),
    )
    html = page.render(Status(repo="r", last_pass=last), now, f"location={here}")
    assert "Success 4" in html
    assert "Failed 9" not in html
