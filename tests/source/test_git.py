"""GitSource against real repositories: local paths, a smart-HTTP server with a token."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pygit2
import pytest

from controller.source import GitCredentials, GitError, GitSource, redact
from tests.source.git_http import git_http_server
from tests.source.sshd import available as sshd_available
from tests.source.sshd import sshd

SIGNATURE = pygit2.Signature("Test", "test@example.com")


def commit(repo: pygit2.Repository, files: dict[str, str | bytes], message: str) -> str:
    """Write `files` into the work tree and commit them on the current branch."""
    workdir = Path(repo.workdir)
    for name, content in files.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        if name.endswith(".sh"):
            path.chmod(0o755)
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", SIGNATURE, SIGNATURE, message, tree, parents))


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "repo"), initial_head="main")


def test_local_path_follows_new_commits(repo: pygit2.Repository, tmp_path: Path) -> None:
    first = commit(repo, {"a.yaml": "one\n"}, "first\n\nbody")
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    revision = source.fetch()
    assert (revision.commit, revision.message, revision.author) == (first, "first", "Test")
    second = commit(repo, {"a.yaml": "two\n"}, "second")
    assert source.fetch().commit == second


def test_materialise_writes_the_tree_with_exec_bits(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    commit(
        repo, {"pkg/install.sh": "echo hi\n", "pkg/data.bin": b"\x00\x01", "x.yaml": "k: v\n"}, "c"
    )
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    tree = source.materialise(source.fetch())
    assert (tree / "x.yaml").read_text() == "k: v\n"
    assert (tree / "pkg" / "data.bin").read_bytes() == b"\x00\x01"
    assert (tree / "pkg" / "install.sh").stat().st_mode & stat.S_IXUSR
    assert not (tree / "x.yaml").stat().st_mode & stat.S_IXUSR
    assert not (tree / ".git").exists()


def test_materialise_keeps_only_recent_trees(repo: pygit2.Repository, tmp_path: Path) -> None:
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    for i in range(6):
        commit(repo, {"a.yaml": f"{i}\n"}, f"c{i}")
        tree = source.materialise(source.fetch())
        os.utime(tree, (1_000_000 + i, 1_000_000 + i))
    assert len(list((tmp_path / "cache" / "trees").iterdir())) == 3


def test_a_new_tree_links_the_files_it_did_not_change(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression: every commit wrote (and the build then re-hashed) every file of the
    repository; now unchanged files are hard links into the previous tree, same inode."""
    commit(
        repo, {"pkg/install.sh": "echo hi\n", "pkg/big.bin": b"\x00" * 4096, "a.yaml": "1\n"}, "c1"
    )
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    first = source.materialise(source.fetch())
    commit(repo, {"a.yaml": "2\n", "pkg/install.sh": "echo hi\n"}, "c2")
    (Path(repo.workdir) / "pkg" / "install.sh").chmod(0o644)  # same blob, mode changed
    commit(repo, {}, "c3")
    second = source.materialise(source.fetch())
    assert second != first
    assert (second / "pkg/big.bin").stat().st_ino == (first / "pkg/big.bin").stat().st_ino
    assert (second / "a.yaml").read_text() == "2\n"
    assert (first / "a.yaml").read_text() == "1\n"  # the old tree is untouched
    assert (second / "a.yaml").stat().st_ino != (first / "a.yaml").stat().st_ino
    # a mode change is a new file, never a link that would change the old tree's mode
    assert not (second / "pkg/install.sh").stat().st_mode & stat.S_IXUSR
    assert (first / "pkg/install.sh").stat().st_mode & stat.S_IXUSR


def test_ref_may_be_branch_tag_or_commit(repo: pygit2.Repository, tmp_path: Path) -> None:
    first = commit(repo, {"a.yaml": "1\n"}, "one")
    repo.create_tag("v1", pygit2.Oid(hex=first), pygit2.enums.ObjectType.COMMIT, SIGNATURE, "v1")
    repo.branches.local.create("release", repo[first])
    second = commit(repo, {"a.yaml": "2\n"}, "two")
    cache = tmp_path / "cache"
    assert GitSource(repo.workdir, "v1", cache).fetch().commit == first
    assert GitSource(repo.workdir, "release", cache).fetch().commit == first
    assert GitSource(repo.workdir, first[:10], cache).fetch().commit == first
    assert GitSource(repo.workdir, "main", cache).fetch().commit == second


@pytest.mark.parametrize(
    ("location", "ref", "expected"),
    [
        ("missing-dir", None, "not a git repository"),
        ("REPO", "nope", "no branch, tag or commit named 'nope' (check --ref)"),
    ],
)
def test_user_mistakes_are_one_line(
    repo: pygit2.Repository, tmp_path: Path, location: str, ref: str | None, expected: str
) -> None:
    commit(repo, {"a.yaml": "1\n"}, "one")
    where = repo.workdir if location == "REPO" else str(tmp_path / location)
    with pytest.raises(GitError) as caught:
        GitSource(where, ref, tmp_path / "cache").fetch()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_repository_is_explained(repo: pygit2.Repository, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="no commits yet"):
        GitSource(repo.workdir, cache_dir=tmp_path / "cache").fetch()


def _bare_copy(repo: pygit2.Repository, root: Path) -> Path:
    """Publish `repo` as root/team/config.git, as a git server would hold it."""
    bare = root / "team" / "config.git"
    pygit2.clone_repository(repo.workdir, str(bare), bare=True)
    return bare


def test_https_clone_then_incremental_fetch_with_token(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    first = commit(repo, {"a.yaml": "1\n"}, "one")
    bare = _bare_copy(repo, tmp_path / "srv")
    with git_http_server(tmp_path / "srv", token="s3cret") as base:
        url = f"{base}/team/config.git"
        source = GitSource(
            url, cache_dir=tmp_path / "cache", credentials=GitCredentials(token="s3cret")
        )
        assert source.fetch().commit == first
        # A new commit pushed to the server arrives through an incremental fetch.
        second = commit(repo, {"a.yaml": "2\n"}, "two")
        pygit2.Repository(str(bare)).remotes["origin"].fetch(["+refs/heads/*:refs/heads/*"])
        assert source.fetch().commit == second
        assert (source.materialise(source.fetch()) / "a.yaml").read_text() == "2\n"


def test_https_wrong_or_missing_token_is_one_clear_line(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    commit(repo, {"a.yaml": "1\n"}, "one")
    _bare_copy(repo, tmp_path / "srv")
    with git_http_server(tmp_path / "srv", token="s3cret") as base:
        for creds in (GitCredentials(token="wrong"), None):
            with pytest.raises(GitError) as caught:
                GitSource(
                    f"{base}/team/config.git", cache_dir=tmp_path / "c", credentials=creds
                ).fetch()
            message = str(caught.value)
            assert message.startswith(f"{base}/team/config.git: cannot clone")
            assert "--git-token-file" in message and "\n" not in message


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="check the URL and that the server is reachable"):
        GitSource("http://127.0.0.1:9/none.git", cache_dir=tmp_path / "c").fetch()


def test_token_in_url_is_never_shown() -> None:
    assert redact("https://user:tok@example.com/r.git") == "https://***@example.com/r.git"


def test_token_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("abc\n")
    assert GitCredentials.from_files(token_file=str(token_file)) == GitCredentials(token="abc")
    monkeypatch.setenv("SSM_GITOPS_GIT_TOKEN", "from-env")
    assert GitCredentials.from_files() == GitCredentials(token="from-env")
    monkeypatch.delenv("SSM_GITOPS_GIT_TOKEN")
    assert GitCredentials.from_files() is None
    with pytest.raises(GitError, match="cannot read the git token"):
        GitCredentials.from_files(token_file=str(tmp_path / "absent"))


@pytest.mark.skipif(not sshd_available(), reason="needs root and openssh-server (scripts/setup)")
def test_ssh_with_key_and_known_hosts(
    repo: pygit2.Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pygit2.settings, "homedir", str(tmp_path / "home"))  # no host known
    first = commit(repo, {"a.yaml": "1\n"}, "one")
    bare = _bare_copy(repo, tmp_path / "srv")
    with sshd(tmp_path / "sshd") as server:
        url = f"ssh://root@127.0.0.1:{server.port}{bare}"
        # Without the server's host key, nothing is fetched: one line saying what to add.
        with pytest.raises(GitError) as caught:
            GitSource(
                url,
                cache_dir=tmp_path / "c1",
                credentials=GitCredentials(ssh_key=server.client_key),
            ).fetch()
        assert "--known-hosts-file" in str(caught.value) and "\n" not in str(caught.value)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(server.known_hosts_line + "\n")
        creds = GitCredentials.from_files(
            ssh_key_file=str(server.client_key), known_hosts_file=str(known_hosts)
        )
        assert creds is not None and creds.known_hosts == known_hosts
        source = GitSource(url, cache_dir=tmp_path / "c2", credentials=creds)
        assert source.fetch().commit == first
        second = commit(repo, {"a.yaml": "2\n"}, "two")
        pygit2.Repository(str(bare)).remotes["origin"].fetch(["+refs/heads/*:refs/heads/*"])
        assert source.fetch().commit == second


def test_moved_local_repository_is_named_not_mistaken_for_empty(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression: a followed repository that was moved away read as 'no commits yet'."""
    commit(repo, {"a.yaml": "1\n"}, "one")
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    source.fetch()
    Path(repo.workdir).rename(tmp_path / "moved")
    with pytest.raises(GitError, match="no longer there"):
        source.fetch()
    with pytest.raises(GitError, match="not a git repository"):
        source.fetch()


def test_a_folder_inside_a_local_repository_is_where_paths_start(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    commit(repo, {"config/a.yaml": "1\n", "deploy/b.yaml": "2\n"}, "one")
    root = GitSource(repo.workdir, cache_dir=tmp_path / "c")
    inner = GitSource(str(Path(repo.workdir) / "config"), cache_dir=tmp_path / "c")
    assert (root.within(None), root.within("config"), inner.within(None)) == (
        ".",
        "config",
        "config",
    )
    assert inner.within("sub") == "config/sub"
    assert GitSource("https://example.com/r.git", cache_dir=tmp_path / "c").within("x") == "x"


def test_uncommitted_changes_are_listed_under_a_path(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    commit(repo, {"config/a.yaml": "1\n", "other/b.yaml": "2\n"}, "one")
    source = GitSource(repo.workdir, cache_dir=tmp_path / "c")
    assert source.uncommitted("config") == []
    (Path(repo.workdir) / "config" / "a.yaml").write_text("changed\n")
    (Path(repo.workdir) / "config" / "new.yaml").write_text("new\n")
    (Path(repo.workdir) / "other" / "b.yaml").write_text("changed\n")
    assert source.uncommitted("config") == ["config/a.yaml", "config/new.yaml"]
    assert len(source.uncommitted(".")) == 3
