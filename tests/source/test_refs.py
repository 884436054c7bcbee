"""The followed ref is resolved on the remote at every fetch (issue 11, "DATA LOSS").

Remotes are real: a repository read through file:// and a bare copy behind the smart-HTTP
server (tests/source/git_http.py). Nothing here mocks git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pygit2
import pytest

from controller.source import GitError, GitSource
from tests.source.git_http import git_http_server
from tests.source.test_git import SIGNATURE, commit


@pytest.fixture
def upstream(tmp_path: Path) -> pygit2.Repository:
    """The team's repository: the remote the controller follows (through file://)."""
    return pygit2.init_repository(str(tmp_path / "upstream"), initial_head="main")


def url(repo: pygit2.Repository) -> str:
    return "file://" + str(Path(repo.workdir).resolve())


def test_default_branch_renamed_follows_the_remote_head_not_the_clone_time_ref(
    upstream: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression (DATA LOSS): the remote's default branch renamed (HEAD moved to it): the
    cached clone's clone-time `main` was used, the first commit re-applied and everything
    added since deleted. Now the remote HEAD's branch is followed."""
    commit(upstream, {"a.yaml": "1\n"}, "one")
    source = GitSource(url(upstream), cache_dir=tmp_path / "cache")
    source.fetch()
    latest = commit(upstream, {"b.yaml": "2\n"}, "two")
    assert source.fetch().commit == latest
    upstream.branches.local["main"].rename("trunk")
    upstream.set_head("refs/heads/trunk")
    assert source.fetch().commit == latest
    newer = commit(upstream, {"c.yaml": "3\n"}, "three")
    assert source.fetch().commit == newer


def test_default_branch_deleted_is_an_error_never_an_old_commit(
    upstream: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression (DATA LOSS): the branch the remote HEAD names deleted: the controller fell
    back to the clone-time commit. Now: one line, and no revision at all."""
    commit(upstream, {"a.yaml": "1\n"}, "one")
    source = GitSource(url(upstream), cache_dir=tmp_path / "cache")
    source.fetch()
    commit(upstream, {"b.yaml": "2\n"}, "two")
    source.fetch()
    upstream.references.delete("refs/heads/main")
    with pytest.raises(GitError) as caught:
        source.fetch()
    assert "deleted or renamed" in str(caught.value) and "\n" not in str(caught.value)


def test_followed_branch_deleted_is_an_error(upstream: pygit2.Repository, tmp_path: Path) -> None:
    """Regression: `--ref feature` deleted on the remote is one line naming it, never an
    older copy of the branch kept in the cache."""
    first = commit(upstream, {"a.yaml": "1\n"}, "one")
    upstream.branches.local.create("feature", upstream[first])
    source = GitSource(url(upstream), "feature", cache_dir=tmp_path / "cache")
    assert source.fetch().commit == first
    upstream.branches.local.delete("feature")
    with pytest.raises(GitError, match="no branch or tag 'feature' on the remote"):
        source.fetch()


def test_force_moved_tag_is_followed(upstream: pygit2.Repository, tmp_path: Path) -> None:
    """Regression: `--ref v1` with the tag force-moved kept the old target forever."""
    first = commit(upstream, {"a.yaml": "1\n"}, "one")
    upstream.create_tag("v1", pygit2.Oid(hex=first), pygit2.enums.ObjectType.COMMIT, SIGNATURE, "")
    source = GitSource(url(upstream), "v1", cache_dir=tmp_path / "cache")
    assert source.fetch().commit == first
    second = commit(upstream, {"a.yaml": "2\n"}, "two")
    upstream.references.delete("refs/tags/v1")
    upstream.references.create("refs/tags/v1", pygit2.Oid(hex=second))  # lightweight now
    assert source.fetch().commit == second


def test_detached_remote_head_that_moves_is_followed(
    upstream: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression: a detached remote HEAD was never followed as it moved."""
    first = commit(upstream, {"a.yaml": "1\n"}, "one")
    second = commit(upstream, {"a.yaml": "2\n"}, "two")
    upstream.set_head(pygit2.Oid(hex=first))
    source = GitSource(url(upstream), cache_dir=tmp_path / "cache")
    assert source.fetch().commit == first
    upstream.set_head(pygit2.Oid(hex=second))
    assert source.fetch().commit == second


def test_over_http_a_renamed_branch_is_an_error_and_a_poll_without_change_costs_no_fetch(
    upstream: pygit2.Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same over smart HTTP: the ref is asked of the server (ls-remote) every time, and
    only a ref that moved is fetched. (Weak test, fixed: it asserted nothing about fetches;
    now it counts the server's `git-upload-pack` POSTs, the transfers, and the source's
    fetch calls, which libgit2 may answer without a POST: fetching every poll fails it.)"""
    first = commit(upstream, {"a.yaml": "1\n"}, "one")
    bare = tmp_path / "srv" / "team" / "config.git"
    pygit2.clone_repository(upstream.workdir, str(bare), bare=True)
    server = pygit2.Repository(str(bare))
    requests: list[str] = []
    calls: list[object] = []
    real_fetch = pygit2.remotes.Remote.fetch

    def counted(self: pygit2.remotes.Remote, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(pygit2.remotes.Remote, "fetch", counted)

    def fetches() -> int:
        return sum(r == "POST /team/config.git/git-upload-pack" for r in requests)

    def lists() -> int:
        return sum(r == "GET /team/config.git/info/refs" for r in requests)

    with git_http_server(tmp_path / "srv", requests=requests) as base:
        source = GitSource(f"{base}/team/config.git", "main", cache_dir=tmp_path / "cache")
        assert source.fetch().commit == first
        assert fetches() >= 1 and lists() >= 1
        after_clone, listed, called = fetches(), lists(), len(calls)
        for _ in range(3):  # polls that find nothing new: one ls-remote each, no fetch
            assert source.fetch().commit == first
        assert fetches() == after_clone and len(calls) == called, requests
        assert lists() == listed + 3, requests
        server.references["refs/heads/main"].set_target(
            server.create_commit(
                None,
                SIGNATURE,
                SIGNATURE,
                "two",
                server[pygit2.Oid(hex=first)].peel(pygit2.Commit).tree.id,
                [pygit2.Oid(hex=first)],
            )
        )
        second = source.fetch().commit
        assert second != first and fetches() > after_clone  # a moved ref is fetched
        assert len(calls) == called + 1
        server.branches.local["main"].rename("trunk")
        with pytest.raises(GitError, match="no branch or tag 'main' on the remote"):
            source.fetch()


def test_pinned_commit_and_full_ref_names_still_work(
    upstream: pygit2.Repository, tmp_path: Path
) -> None:
    first = commit(upstream, {"a.yaml": "1\n"}, "one")
    commit(upstream, {"a.yaml": "2\n"}, "two")
    cache = tmp_path / "cache"
    assert GitSource(url(upstream), first, cache).fetch().commit == first
    assert GitSource(url(upstream), "refs/heads/main", cache).fetch().commit != first
