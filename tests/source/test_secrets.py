"""Secrets in a repository URL are never shown (issue 10): logs, /status, the page, errors.

The URLs are followed for real (a smart-HTTP server that wants a token), so every message
libgit2 produces about them goes through the same paths as in production.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pygit2
import pytest

from controller.cli import build_parser
from controller.runtime import logs
from controller.runtime.page import render
from controller.runtime.service import Options, Service
from controller.runtime.status import to_json
from controller.source import redact
from tests.source.git_http import git_http_server
from tests.source.test_git import commit

PASSWORD = "p@ss@SECRET-ONE"
QUERY_TOKEN = "SECRET-TWO"
FRAGMENT_TOKEN = "SECRET-THREE"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:p@ss@word@git.example.com/r.git", "https://***@git.example.com/r.git"),
        ("https://tok@git.example.com/r.git", "https://***@git.example.com/r.git"),
        (
            "https://gitlab.example.com/g/r.git?private_token=abc&ref=main",
            "https://gitlab.example.com/g/r.git?private_token=***&ref=main",
        ),
        ("https://h/r.git?access_token=a#x", "https://h/r.git?access_token=***#***"),
        ("https://h/r.git#SECRET", "https://h/r.git#***"),
        ("https://h/r.git?ref=main#SECRET#more", "https://h/r.git?ref=main#***"),
        ("https://u:p@h#SECRET", "https://***@h#***"),
        ("https://h/r#a@b", "https://h/r#***"),
        ("/srv/repos/r.git#SECRET", "/srv/repos/r.git#***"),
        ("git@github.com:org/r.git", "git@github.com:org/r.git"),
        ("https://github.com/org/r.git", "https://github.com/org/r.git"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    """Regression: a raw `@` in the password left its tail shown (`ss@word@host`), a token
    in the query was shown whole, and so was one in the fragment (`r.git#SECRET`)."""
    assert redact(url) == shown


def _urls(base: str) -> list[str]:
    return [
        f"{base.replace('://', f'://x-access-token:{PASSWORD}@')}/team/config.git",
        f"{base}/team/config.git?private_token={QUERY_TOKEN}",
        f"{base}/team/config.git#{FRAGMENT_TOKEN}",
    ]


def test_no_secret_in_logs_status_page_or_error_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 10): a token in the query or a password holding a raw `@` leaked
    into the log lines, `/status`, the page and the `plan` error line; so did a token in
    the URL's fragment (`...config.git#SECRET`)."""
    from controller.reconcile.commands import plan_command

    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "plan-cache"))

    work = pygit2.init_repository(str(tmp_path / "work"), initial_head="main")
    commit(work, {"a.yaml": "1\n"}, "one")
    pygit2.clone_repository(work.workdir, str(tmp_path / "srv" / "team" / "config.git"), bare=True)
    logs.configure()
    try:
        with git_http_server(tmp_path / "srv", token="the-real-token") as base:
            for index, url in enumerate(_urls(base)):
                service = Service(Options(repo=url, port=0, cache_dir=tmp_path / f"c{index}"))
                service.start()
                deadline = time.monotonic() + 30
                while not service.board.get().git_error and time.monotonic() < deadline:
                    time.sleep(0.05)
                status = service.board.get()
                service.stop(grace=5)
                assert status.git_error, "the fetch was expected to fail (wrong credentials)"
                shown = json.dumps(to_json(status)) + render(status)
                plan_command(build_parser().parse_args(["plan", "--repo", url]))
                shown += capsys.readouterr().err
                assert "cannot clone" in shown and '"event": "started"' in shown
                for secret in (PASSWORD, "SECRET-ONE", "ss@SECRET", QUERY_TOKEN, FRAGMENT_TOKEN):
                    assert secret not in shown
                assert "***" in status.repo
    finally:
        logging.getLogger().handlers[:] = []
