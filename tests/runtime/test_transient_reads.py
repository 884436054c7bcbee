"""A machine failure while the real loader reads a good commit never blames the commit.

Regression (issue 11, review of issues 10/11): the loader turned every OSError met while
reading the checkout (EIO, ENOSPC, EACCES, ...) into an ordinary load error, so the loop
never saw it as the machine's: a GOOD commit was marked invalid for good (config_valid 0,
not tried again until another commit arrived). Now only what the commit causes (a symlink
loop, an over-long name, a FIFO, a file over the size limit) is its fault; any other errno
is a source failure: `pass_errors_total{reason="source"}`, config_valid unchanged, and the
same commit is tried again at the next poll.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.reconcile.result import ActionRecord, PassResult
from controller.repository import Repository, load_repository
from controller.runtime.loop import ControllerLoop
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import PassRequest
from controller.runtime.status import Status, StatusBoard
from controller.source import GitSource
from tests.runtime import samples
from tests.runtime.fakes import RevisionRecorder
from tests.runtime.gitrepo import GitRepo

POLL = PassRequest(frozenset({"poll"}))


def good_files(version: str) -> dict[str, str | None]:
    return {
        "settings.yaml": samples.settings(),
        "agent.yaml": samples.package("agent", [version], version),
        **samples.package_sources("agent", [version]),
    }


class Recorder(RevisionRecorder):
    """Stands in for the reconciler, and checks it was given a loaded repository."""

    def run_pass(
        self,
        repository: Repository,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        assert repository.settings is not None and repository.packages
        return super().run_pass(repository, revision)


class Loop:
    """The controller loop with the real loader over a real git checkout."""

    def __init__(self, tmp_path: Path) -> None:
        self.git = GitRepo(tmp_path / "repo")
        self.revisions: list[str] = []
        self.board = StatusBoard(Status(repo=str(self.git.path)))
        self.metrics = Metrics()
        self.loop = ControllerLoop(
            GitSource(str(self.git.path), cache_dir=tmp_path / "cache"),
            lambda root: load_repository(root, display_prefix=""),
            lambda detect_only: Recorder(self.revisions),
            board=self.board,
            metrics=self.metrics,
        )

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value("ssm_gitops_" + name, labels or {})
        assert value is not None
        return value

    def errors(self, reason: str) -> float:
        return self.sample("pass_errors_total", {"reason": reason})


@pytest.fixture
def loop(tmp_path: Path) -> Loop:
    return Loop(tmp_path)


class Fault:
    """Make one `os` function fail with `code` for paths whose last part is `name`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, function: str, name: str, code: int):
        self.armed = False
        real: Callable[..., Any] = getattr(os, function)

        def failing(path: Any, *args: Any, **kwargs: Any) -> Any:
            if self.armed and Path(os.fsdecode(path)).name == name and _reads(function, args):
                raise OSError(code, os.strerror(code), os.fsdecode(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, function, failing)


def _reads(function: str, args: tuple[Any, ...]) -> bool:
    """Only reads fail: git's own writes into the cache go through."""
    if function != "open":
        return True
    flags = args[0] if args else 0
    return bool(flags & os.O_ACCMODE == os.O_RDONLY)


FAULTS = [
    pytest.param("open", "settings.yaml", errno.EIO, id="EIO-reading-settings.yaml"),
    pytest.param("open", "settings.yaml", errno.EACCES, id="EACCES-reading-settings.yaml"),
    pytest.param("lstat", "agent.yaml", errno.EIO, id="EIO-examining-agent.yaml"),
    pytest.param("open", "agent.yaml", errno.ENOSPC, id="ENOSPC-reading-agent.yaml"),
    pytest.param("scandir", "1.0", errno.EIO, id="EIO-listing-a-source-folder"),
    pytest.param("scandir", "agent", errno.EACCES, id="EACCES-listing-a-folder"),
    pytest.param("stat", "1.0", errno.ENOMEM, id="ENOMEM-resolving-a-source"),
]


@pytest.mark.parametrize(("function", "name", "code"), FAULTS)
def test_a_read_failure_of_the_machine_is_retried_not_blamed_on_the_commit(
    loop: Loop, monkeypatch: pytest.MonkeyPatch, function: str, name: str, code: int
) -> None:
    """Bug: the loader made EIO/EACCES/... while reading a GOOD commit a load error: the
    commit was marked invalid for good (config_valid 0, reason load, never retried)."""
    first = loop.git.commit(good_files("1.0"), "first")
    loop.loop(POLL)
    assert loop.sample("config_valid") == 1
    assert loop.revisions[-1] == first
    second = loop.git.commit({"notes.txt": "a second, equally good commit\n"}, "second")

    fault = Fault(monkeypatch, function, name, code)
    fault.armed = True
    loop.loop(POLL)
    status = loop.board.get()
    assert loop.sample("config_valid") == 1 and status.config_errors == ()
    assert loop.errors("source") == 1 and loop.errors("load") == 0
    assert os.strerror(code) in status.git_error and "retried" in status.git_error
    assert "\n" not in status.git_error
    assert status.applied is not None and status.applied.commit == first
    assert loop.revisions[-1] == first

    fault.armed = False  # the fault is gone: the same commit loads at the next poll
    loop.loop(POLL)
    status = loop.board.get()
    assert status.applied is not None and status.applied.commit == second
    assert status.git_error == "" and loop.revisions[-1] == second
    assert loop.sample("config_valid") == 1 and loop.errors("load") == 0


def test_a_symlink_loop_in_the_commit_is_still_the_commits_fault(loop: Loop) -> None:
    """The other side: what the commit holds (here a YAML symlink loop) marks it invalid."""
    loop.git.commit(good_files("1.0"), "first")
    loop.loop(POLL)
    (loop.git.path / "a.yaml").symlink_to("b.yaml")
    (loop.git.path / "b.yaml").symlink_to("a.yaml")
    loop.git.commit({}, "loop")
    loop.loop(POLL)
    status = loop.board.get()
    assert loop.sample("config_valid") == 0 and loop.errors("source") == 0
    assert any("symlink loop" in error for error in status.config_errors)
