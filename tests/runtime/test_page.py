"""The status page, rendered by headless Chromium from a real server, checked on its DOM text."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.reconcile.result import Failure, PassResult, Reason
from controller.runtime import page
from controller.runtime.metrics import Metrics
from controller.runtime.server import App, HttpServer
from controller.runtime.status import Commit, Status, StatusBoard
from tests.runtime.browser import dump_dom, screenshot
from tests.runtime.conftest import make_pass

GOOD = Commit(
    "3f2a9c1d0b7e" + "0" * 28,
    "Bump datadog-agent to 6.9.0\n\nRoll out to prod.",
    "Ann Operator",
    1_700_000_000.0,
)
BROKEN = Commit("9e8d7c6b5a4f" + "1" * 28, "Typo in nginx package", "Bob", 1_700_000_050.0)
SPEC_ERROR = Failure(
    Reason.LOAD,
    "unknown field 'defaultVersio' (did you mean defaultVersion?)",
    path="packages/nginx.yaml",
    line=12,
    col=5,
)


def text_of(dom: str) -> str:
    """The visible text, with tags dropped and whitespace collapsed."""
    no_style = re.sub(r"<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", no_style)))


@pytest.fixture
def served_status() -> Iterator[tuple[StatusBoard, str]]:
    board = StatusBoard(Status(repo="https://git.example.com/ops/distributor.git", ref="main"))
    server = HttpServer(App(board, Metrics(), lambda _reason: None), "127.0.0.1", 0)
    server.start()
    yield board, f"http://127.0.0.1:{server.port}/"
    server.stop()


def test_page_shows_everything_at_a_glance(
    served_status: tuple[StatusBoard, str], a_pass: PassResult, tmp_path: Path
) -> None:
    board, url = served_status
    board.update(
        fetched=BROKEN,
        applied=GOOD,
        config_failures=(SPEC_ERROR,),
        last_pass=a_pass,
        passes=3,
    )
    text = text_of(dump_dom(url))
    # Revision and commit message; the newest commit that did not load.
    assert "3f2a9c1d0b7e Bump datadog-agent to 6.9.0" in text
    assert "not applied newest commit 9e8d7c6b5a4f Typo in nginx package" in text
    # The current error with its file and line.
    assert "packages/nginx.yaml:12 unknown field 'defaultVersio'" in text
    # Last pass and its result.
    assert "success finished" in text and "took 2.5s" in text
    # Every package and association with its state; rollouts.
    assert "datadog-agent 123456789012 us-east-1 in sync" in text
    assert "nginx 123456789012 us-east-1 drifted default version is 1.2 live" in text
    assert "nginx-web 123456789012 us-east-1 failed Failed Failed 1" in text
    assert (
        "datadog-agent-prod 123456789012 us-east-1 in sync InProgress Pending 2, Success 3" in text
    )
    # Blocked prunes.
    assert "Blocked prunes delete version 0.9 of package nginx" in text
    assert "needs attention" in text
    shot = screenshot(url, tmp_path / "status.png")
    keep = os.environ.get("SSM_GITOPS_SCREENSHOTS")  # a folder to keep the picture in
    if keep:
        (Path(keep) / "status-page.png").write_bytes(shot.read_bytes())


def test_page_before_the_first_pass(served_status: tuple[StatusBoard, str]) -> None:
    _, url = served_status
    text = text_of(dump_dom(url))
    assert "starting" in text
    assert "no revision loaded yet" in text
    assert "no pass completed yet" in text


def test_repository_text_is_escaped() -> None:
    status = Status(
        repo="r",
        applied=Commit("a" * 40, "<script>alert(1)</script>"),
        config_failures=(Failure(Reason.LOAD, "<b>bold</b>", path="x.yaml", line=1, col=1),),
    )
    rendered = page.render(status)
    assert "<script>alert" not in rendered and "&lt;script&gt;" in rendered
    assert "<b>bold</b>" not in rendered


def test_dry_run_is_visible() -> None:
    assert "dry run: detect only" in page.render(
        Status(repo="r", dry_run=True, last_pass=make_pass())
    )
    assert "suspended: detect only" in page.render(Status(repo="r", suspended=True))


def test_each_error_shows_its_reason_and_its_place(a_pass: PassResult) -> None:
    text = text_of(page.render(Status(repo="r", config_failures=(SPEC_ERROR,), last_pass=a_pass)))
    assert "load packages/nginx.yaml:12 unknown field 'defaultVersio'" in text
    assert (
        "apply association nginx-web update (123456789012/us-east-1) AccessDenied: not allowed"
        in text
    )
