"""`--path` never leaves the repository: one check (`source_root`) for run, plan and apply."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2
import pytest

from controller.cli import build_parser
from tests.source.test_git import commit


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize("path", ["../..", "link", "link/etc"])
def test_plan_and_apply_refuse_a_path_out_of_the_repository(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    path: str,
) -> None:
    """`plan`/`apply --path` through `..` or a committed symlink: one line, exit 1, and no
    AWS call (the same check as `run`, see tests/runtime/test_loop.py)."""
    from controller.reconcile.commands import apply_command, plan_command

    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    repo = pygit2.init_repository(str(tmp_path / "repo"), initial_head="main")
    os.symlink("/", Path(repo.workdir) / "link")
    commit(repo, {"settings.yaml": "x: 1\n"}, "c")
    args = build_parser().parse_args([command, "--repo", repo.workdir, "--path", path])
    assert (plan_command if command == "plan" else apply_command)(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ssm-gitops: --path {path}: leads outside the repository"), err
    assert "\n" not in err


@pytest.mark.parametrize(
    ("path", "said"),
    [("a/" * 3000, "File name too long"), ("loop/x", "no such folder")],
    ids=["6000-characters", "symlink-loop"],
)
def test_a_path_the_system_cannot_resolve_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: str,
    said: str,
) -> None:
    """Bug: `plan --path $(python3 -c 'print("a/"*3000)')` was an ENAMETOOLONG traceback
    (source/git.py `source_root`); a committed symlink loop on the way was a RuntimeError."""
    from controller.cli import main

    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    repo = pygit2.init_repository(str(tmp_path / "repo"), initial_head="main")
    os.symlink("loop", Path(repo.workdir) / "loop")
    commit(repo, {"settings.yaml": "x: 1\n"}, "c")
    assert main(["plan", "--repo", repo.workdir, "--path", path]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ssm-gitops: --path {path[:20]}") and said in err, err
    assert err.count("\n") == 1 and len(err) < 300


def test_a_machine_failure_resolving_the_path_is_not_turned_into_a_path_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An EIO while looking at --path is the machine's: raised as the OSError it is (the
    controller loop then retries the commit), not a one-line --path error that blames it."""
    import errno

    from controller.source import Revision, source_root

    (tmp_path / "tree" / "sub").mkdir(parents=True)
    revision = Revision("a" * 40, "m", "a", 0)

    def failing(path: object, *args: object, **kwargs: object) -> os.stat_result:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(os, "stat", failing)
    with pytest.raises(OSError) as caught:
        source_root(tmp_path / "tree", "sub", revision)
    assert caught.value.errno == errno.EIO
