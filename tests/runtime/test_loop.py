"""The controller loop against a real git repository, with a fake loader and reconciler.

The fakes stand in for the spec and reconcile stages only here; the e2e tests run the real
ones. The loader reads `state.txt` (a line `broken` makes it fail like SpecErrors does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.errors import UserError
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    PassOutcome,
    PassResult,
    Reason,
)
from controller.runtime import logs
from controller.runtime.loop import ControllerLoop
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import PassRequest, SingleFlight
from controller.runtime.status import Status, StatusBoard, to_json
from controller.source import GitSource
from tests.runtime.gitrepo import GitRepo

POLL = PassRequest(frozenset({"poll"}))
RESYNC = PassRequest(frozenset({"resync"}), full_resync=True)


class FakeSpecErrors(UserError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors


@dataclass(frozen=True)
class FakeSettings:
    suspend: bool


@dataclass(frozen=True)
class FakeRepository:
    content: str
    settings: FakeSettings


def load(root: Path) -> FakeRepository:
    content = (root / "state.txt").read_text()
    if "broken" in content:
        raise FakeSpecErrors(["state.txt:1:1: broken on purpose", "state.txt:2:1: and again"])
    return FakeRepository(content, FakeSettings(suspend="suspend" in content))


@dataclass
class Call:
    content: str
    revision: str
    full_resync: bool
    dry_run: bool


class FakeReconciler:
    def __init__(self, calls: list[Call], dry_run: bool, fail: Callable[[], Exception | None]):
        self.calls, self.dry_run, self.fail = calls, dry_run, fail

    def stop(self) -> None:
        pass

    def read_rollouts(self, repository: Any) -> tuple[tuple[Any, ...], dict[Any, int]]:
        return (), {}

    def run_pass(
        self,
        repository: Any,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        self.calls.append(Call(repository.content, revision, full_resync, self.dry_run))
        error = self.fail()
        if error is not None:
            raise error
        action = ActionRecord(
            "package",
            "create",
            "p",
            "123456789012",
            "us-east-1",
            ActionResult.SKIPPED if self.dry_run else ActionResult.SUCCESS,
        )
        if on_action:
            on_action(action)
        return PassResult(revision, PassOutcome.SUCCESS, 1.0, 2.0, actions=(action,))


class Harness:
    def __init__(self, tmp_path: Path, *, dry_run: bool = False) -> None:
        self.git = GitRepo(tmp_path / "repo")
        self.calls: list[Call] = []
        self.failure: Exception | None = None
        self.board = StatusBoard(Status(repo=str(self.git.path)))
        self.metrics = Metrics()
        self.source = GitSource(str(self.git.path), cache_dir=tmp_path / "cache")
        self.loop = ControllerLoop(
            self.source,
            load,
            lambda detect_only: FakeReconciler(self.calls, detect_only, lambda: self.failure),
            board=self.board,
            metrics=self.metrics,
            dry_run=dry_run,
        )

    @property
    def status(self) -> Status:
        return self.board.get()

    def metric(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value("ssm_gitops_" + name)
        assert value is not None
        return value


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_a_new_commit_is_reconciled_once(h: Harness) -> None:
    first = h.git.commit({"state.txt": "v1"}, "first")
    h.loop(POLL)
    h.loop(POLL)  # same commit, last pass good: nothing to do
    assert [(c.content, c.revision) for c in h.calls] == [("v1", first)]
    second = h.git.commit({"state.txt": "v2"}, "second")
    h.loop(POLL)
    assert [c.revision for c in h.calls] == [first, second]
    assert h.status.applied is not None and h.status.applied.commit == second
    assert h.status.ready and h.status.passes == 2


def test_resync_runs_without_a_new_commit(h: Harness) -> None:
    h.git.commit({"state.txt": "v1"}, "first")
    h.loop(POLL)
    h.loop(RESYNC)
    assert [c.full_resync for c in h.calls] == [False, True]


def test_a_broken_commit_changes_nothing_and_the_next_good_one_converges(h: Harness) -> None:
    good = h.git.commit({"state.txt": "v1"}, "good")
    h.loop(POLL)
    broken = h.git.commit({"state.txt": "broken"}, "oops")
    h.loop(POLL)
    h.loop(RESYNC)  # drift resync keeps healing towards the last good revision
    assert [c.revision for c in h.calls] == [good, good]
    assert h.metric("config_valid") == 0
    s = h.status
    assert s.config_errors == ("state.txt:1:1: broken on purpose", "state.txt:2:1: and again")
    assert s.fetched is not None and s.fetched.commit == broken
    assert s.applied is not None and s.applied.commit == good
    fixed = h.git.commit({"state.txt": "v3"}, "fixed")
    h.loop(POLL)
    assert h.calls[-1].revision == fixed
    assert h.metric("config_valid") == 1 and h.status.config_errors == ()


def test_nothing_is_applied_until_a_revision_loads(h: Harness) -> None:
    h.git.commit({"state.txt": "broken"}, "broken from the start")
    h.loop(RESYNC)
    assert h.calls == [] and not h.status.ready and h.status.applied is None
    assert h.status.config_errors


def test_git_failure_is_counted_and_the_last_good_revision_stays(
    h: Harness, tmp_path: Path
) -> None:
    good = h.git.commit({"state.txt": "v1"}, "good")
    h.loop(POLL)
    # The repository disappears (think: the git server is down).
    h.git.path.rename(tmp_path / "gone")
    h.source._repo = None  # a fresh controller would open it again  # noqa: SLF001
    h.loop(POLL)
    assert h.metric("git_fetch_failures_total") == 1
    assert "not a git repository" in h.status.git_error
    h.loop(RESYNC)  # resync still heals drift against what we have
    assert [c.revision for c in h.calls] == [good, good]
    (tmp_path / "gone").rename(h.git.path)
    h.loop(POLL)
    assert h.status.git_error == ""


def test_a_failed_pass_is_recorded_and_retried_at_the_next_poll(h: Harness) -> None:
    h.git.commit({"state.txt": "v1"}, "good")
    h.failure = UserError("AccessDenied: ssm:CreateDocument not allowed")
    h.loop(POLL)
    s = h.status
    assert s.last_pass is not None and s.last_pass.outcome is PassOutcome.FAILURE
    assert "AccessDenied" in s.errors[0]
    assert (
        h.metrics.registry.get_sample_value("ssm_gitops_reconcile_total", {"result": "failure"})
        == 1
    )
    h.failure = None
    h.loop(POLL)
    assert len(h.calls) == 2 and h.status.last_pass.outcome is PassOutcome.SUCCESS  # type: ignore[union-attr]
    h.loop(POLL)
    assert len(h.calls) == 2


def test_dry_run_and_suspend_make_passes_detect_only(tmp_path: Path) -> None:
    h = Harness(tmp_path, dry_run=True)
    h.git.commit({"state.txt": "v1"}, "c")
    h.loop(POLL)
    assert h.calls[-1].dry_run and h.status.mode == "dry-run"
    h2 = Harness(tmp_path / "second")
    h2.git.commit({"state.txt": "suspend"}, "c")
    h2.loop(POLL)
    assert h2.calls[-1].dry_run and h2.status.mode == "suspended"


def test_a_missing_sub_path_is_a_config_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.loop._sub_path = "deploy/ssm"  # noqa: SLF001
    h.git.commit({"state.txt": "v1"}, "c")
    h.loop(POLL)
    assert h.status.config_errors == (
        f"--path deploy/ssm: no such folder in commit {h.status.fetched.short} (check --path)",  # type: ignore[union-attr]
    )


def test_each_action_is_one_json_log_event(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from controller.runtime import logs

    logs.configure()
    try:
        sha = h.git.commit({"state.txt": "v1"}, "c")
        h.loop(POLL)
    finally:
        logging.getLogger().handlers[:] = []
    err = capsys.readouterr().err
    events = [json.loads(line) for line in err.splitlines()]
    action = next(e for e in events if e["event"] == "action")
    assert {
        k: action[k] for k in ("kind", "action", "name", "account", "region", "revision", "result")
    } == {
        "kind": "package",
        "action": "create",
        "name": "p",
        "account": "123456789012",
        "region": "us-east-1",
        "revision": sha,
        "result": "success",
    }
    assert "duration_seconds" in action
    assert any(e["event"] == "pass" and e["result"] == "success" for e in events)


def _errors(h: Harness, reason: str) -> float:
    value = h.metrics.registry.get_sample_value("ssm_gitops_pass_errors_total", {"reason": reason})
    assert value is not None
    return value


def test_a_full_disk_does_not_blame_the_commit_and_is_retried(
    h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 11): a transient failure (disk full) while checking out a GOOD
    commit marked it invalid until another commit arrived, and config_valid blamed it.
    Now: reported as a source error, config_valid unchanged, retried at the next poll,
    and no partial `.tmp-*` checkout is left behind."""
    import errno

    import controller.source.git as git

    good = h.git.commit({"state.txt": "v1"}, "good")
    h.loop(POLL)
    new = h.git.commit({"state.txt": "v2", "more.txt": "x"}, "new")
    real = git.write_blob

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(args[2]))

    monkeypatch.setattr(git, "write_blob", full)
    h.loop(POLL)
    s = h.status
    assert h.metric("config_valid") == 1 and s.config_errors == ()
    assert s.applied is not None and s.applied.commit == good
    assert "No space left on device" in s.git_error and "retried" in s.git_error
    assert _errors(h, "source") == 1 and _errors(h, "load") == 0
    trees = tmp_path / "cache" / "trees"
    assert not [p for p in trees.iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.setattr(git, "write_blob", real)
    h.loop(POLL)  # the same commit, tried again: no new commit needed
    assert h.status.applied is not None and h.status.applied.commit == new
    assert h.status.git_error == "" and h.calls[-1].revision == new


def test_a_broken_commit_counts_as_a_load_error(h: Harness) -> None:
    h.git.commit({"state.txt": "broken"}, "broken")
    h.loop(POLL)
    assert _errors(h, "load") == 1 and _errors(h, "source") == 0


@pytest.mark.parametrize("sub_path", ["../..", "link", "link/etc"])
def test_a_path_leading_out_of_the_repository_is_refused(tmp_path: Path, sub_path: str) -> None:
    """Regression (issue 11): `run --path` followed a committed symlink or `../..` out of the
    checkout and read (then published) the host's files; `plan`/`apply` refused it."""
    h = Harness(tmp_path)
    h.loop._sub_path = sub_path  # noqa: SLF001
    (h.git.path / "link").symlink_to("/")
    h.git.commit({"state.txt": "v1"}, "c")
    h.loop(POLL)
    assert h.calls == []
    (error,) = h.status.config_errors
    assert error.startswith(f"--path {sub_path}: leads outside the repository")


def test_a_vanished_remote_branch_keeps_the_last_revision_and_never_an_older_one(
    tmp_path: Path,
) -> None:
    """Regression (issue 11, DATA LOSS): the followed default branch deleted on the remote:
    the cached clone's clone-time ref was used and a pass applied the OLD commit (deleting
    everything added since). Now: one git error, and passes stay on the last applied commit."""
    h = Harness(tmp_path)
    h.git.commit({"state.txt": "v1"}, "first")
    h.source = GitSource("file://" + str(h.git.path.resolve()), cache_dir=tmp_path / "c2")
    h.loop._source = h.source  # noqa: SLF001
    h.loop(POLL)
    latest = h.git.commit({"state.txt": "v2"}, "second")
    h.loop(POLL)
    h.git.repo.references.delete("refs/heads/main")
    h.loop(POLL)
    h.loop(RESYNC)
    assert [c.revision for c in h.calls][-2:] == [latest, latest]
    assert "deleted or renamed" in h.status.git_error
    assert h.metric("git_fetch_failures_total") == 2  # the poll and the resync
    assert h.status.applied is not None and h.status.applied.commit == latest


class _NoMemoryForLogs(logging.Handler):
    """Stands in for logging under memory exhaustion: formatting a record fails."""

    def emit(self, record: logging.LogRecord) -> None:
        raise MemoryError


def _exploding_load(root: Path) -> FakeRepository:
    if "explode" in (root / "state.txt").read_text():
        ballast = [bytearray(1024) for _ in range(1000)]  # held by the traceback's frames
        raise MemoryError(f"{len(ballast)} KiB")
    return load(root)


def _settle(flight: SingleFlight) -> None:
    deadline = time.monotonic() + 20
    while flight.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not flight.busy


@pytest.mark.timeout(60)
def test_a_load_that_blows_up_never_kills_the_pass_runner(tmp_path: Path) -> None:
    """Bug (issue 10): in `run`, a load that blew up (an alias bomb: MemoryError, and
    logging it ran out of memory too) killed the pass runner: `/healthz` turned 503 for
    good while `/status` still said the config was valid."""
    h = Harness(tmp_path)
    h.loop._load = _exploding_load  # noqa: SLF001
    flight = SingleFlight(h.loop)
    flight.start()
    handler = _NoMemoryForLogs()
    try:
        good = h.git.commit({"state.txt": "v1"}, "good")
        flight.request("poll")
        _settle(flight)
        bomb = h.git.commit({"state.txt": "explode"}, "bomb")
        logging.getLogger().addHandler(handler)
        flight.request("poll")
        _settle(flight)
        logging.getLogger().removeHandler(handler)
        assert flight.alive()  # /healthz: 200
        assert h.metric("config_valid") == 0
        assert h.status.config_errors == (
            f"loading revision {bomb[:12]} failed unexpectedly: MemoryError: 1000 KiB; the "
            "last good revision stays applied",
        )
        assert h.status.applied is not None and h.status.applied.commit == good
        fixed = h.git.commit({"state.txt": "v3"}, "fixed")
        flight.request("poll")
        _settle(flight)
        assert [c.revision for c in h.calls] == [good, fixed]
        assert h.metric("config_valid") == 1 and h.board.get().config_errors == ()
    finally:
        logging.getLogger().removeHandler(handler)
        flight.stop(timeout=10)


@pytest.mark.timeout(60)
def test_an_error_escaping_a_stage_ends_the_pass_not_the_runner(h: Harness) -> None:
    """The last guard: whatever escapes a stage is a failed pass, reported in one line."""
    h.git.commit({"state.txt": "v1"}, "good")

    def no_memory(result: PassResult) -> None:
        raise MemoryError

    h.metrics.record_pass = no_memory  # type: ignore[method-assign]
    h.loop(POLL)  # must not raise
    s = h.status
    assert not s.pass_running
    assert s.last_pass is not None and s.last_pass.outcome is PassOutcome.FAILURE
    assert s.last_pass.errors == ("the pass stopped unexpectedly while reconciling: MemoryError",)
    del h.metrics.record_pass
    h.loop(POLL)  # the failed pass is retried
    assert len(h.calls) == 2 and h.status.last_pass.outcome is PassOutcome.SUCCESS  # type: ignore[union-attr]


def test_an_unexpected_reconcile_error_is_one_line(h: Harness) -> None:
    h.git.commit({"state.txt": "v1"}, "good")
    h.failure = RuntimeError("a bug\nover two lines")
    h.loop(POLL)
    assert h.status.errors == ("RuntimeError: a bug over two lines",)


def test_load_errors_keep_their_file_line_and_column_as_fields(h: Harness) -> None:
    """`/status` shows where each load error is from the loader's own fields (it once
    parsed `path:line:col` back out of the one-line text with a regex)."""
    from controller.repository.errors import SpecError, SpecErrors

    def load_real_errors(root: Path) -> FakeRepository:
        raise SpecErrors(
            [
                SpecError("packages/a.yaml", 4, 3, "unknown field 'x'"),
                SpecError("packages", 0, 0, "not a folder"),
            ]
        )

    h.loop._load = load_real_errors  # noqa: SLF001
    h.git.commit({"state.txt": "v1"}, "c")
    h.loop(POLL)
    errors = to_json(h.status)["errors"]
    assert [(e["reason"], e["file"], e["line"], e["col"], e["message"]) for e in errors] == [
        ("load", "packages", None, None, "not a folder"),  # sorted by path (SpecErrors)
        ("load", "packages/a.yaml", 4, 3, "unknown field 'x'"),
    ]
    assert [e["text"] for e in errors] == list(h.status.config_errors)
    assert _errors(h, "load") == 1


def test_each_failure_of_a_pass_is_counted_and_logged_with_its_reason(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    h.git.commit({"state.txt": "v1"}, "good")
    h.failure = RuntimeError("a bug")
    logs.configure()
    try:
        h.loop(POLL)
    finally:
        logging.getLogger().handlers[:] = []
    (failure,) = h.status.failures
    assert failure.reason is Reason.INTERNAL and failure.message == "RuntimeError: a bug"
    assert _errors(h, "internal") == 1 and _errors(h, "apply") == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    (logged,) = [e for e in events if e["event"] == "pass_error"]
    assert logged["reason"] == "internal" and logged["message"] == "RuntimeError: a bug"


def test_a_git_failure_is_a_source_error_on_status(h: Harness, tmp_path: Path) -> None:
    h.git.commit({"state.txt": "v1"}, "good")
    h.loop(POLL)
    h.git.path.rename(tmp_path / "gone")
    h.source._repo = None  # noqa: SLF001
    h.loop(POLL)
    (error,) = to_json(h.status)["errors"]
    assert error["reason"] == "source" and error["text"] == h.status.git_error
    assert error["message"] == h.status.git_error and error["file"] is None


def test_an_error_escaping_a_stage_is_an_internal_failure(h: Harness) -> None:
    h.git.commit({"state.txt": "v1"}, "good")

    def no_memory(result: PassResult) -> None:
        raise MemoryError

    h.metrics.record_pass = no_memory  # type: ignore[method-assign]
    h.loop(POLL)
    (failure,) = h.status.failures
    assert failure.reason is Reason.INTERNAL
    assert _errors(h, "internal") == 1
