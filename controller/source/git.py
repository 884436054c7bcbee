"""Where a pass starts: the git repository the controller watches, read through pygit2.

`GitSource.fetch()` returns the newest `Revision` of the followed ref (clone on first use,
incremental fetch afterwards); `GitSource.materialise(revision)` writes that commit's tree
to a directory that `spec.load_repository` then reads. Nothing here knows about YAML.

A local path is read in place (new commits show up at once, no clone); an https or ssh
URL is fetched into a bare repository in the cache directory. Every fetch first asks the
remote what the followed ref is NOW (branch, tag, or the remote HEAD's symref) and takes
exactly that ref: a ref that vanished is an error, never a fall back to a stale local copy
(which would apply an old commit and delete what was added since). `_chosen` is the one
place a fetched commit becomes the `Revision` a pass uses (signature checks hook there).

Every failure a user can cause (wrong URL, bad token, unknown host key, missing ref) is a
`GitError`: one line, with what to do. A failure of the machine rather than the commit
(disk full, read-only cache, lost object) is a `SourceUnavailable`: the loop retries it
next poll instead of marking the commit invalid. A materialised tree is checked against
git's object ids before use and written again when it differs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.remotes import RemoteHead

from controller.errors import UserError
from controller.repository.errors import caused_by_content
from controller.source import cache
from controller.source.objects import SUBMODULE_MARKER, tree_mismatch, write_blob
from controller.source.urls import redact, redact_text

# A pinned commit (`--ref <sha>`) must be reachable from a branch or tag: fetch them all.
_REFSPECS = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
# Where the followed remote ref is fetched to, by its remote name (refs/ssm-gitops/HEAD,
# refs/ssm-gitops/refs/heads/main): keeps its objects and never falls back to another ref.
_FOLLOWED = "refs/ssm-gitops/"
_TREES_KEPT = 3  # materialised trees kept on disk (current, previous, one spare)
_COMMIT_ID = re.compile(r"^[0-9a-fA-F]{7,64}$")
_log = logging.getLogger("ssm-gitops")

# A git server that stops answering must not hang a pass forever (milliseconds).
pygit2.settings.server_connect_timeout = 15_000
pygit2.settings.server_timeout = 120_000


class GitError(UserError):
    """The repository cannot be read: one line naming it, the reason, and what to do."""


class SourceUnavailable(GitError):
    """The machine failed, not the commit (disk full, read-only cache, object lost):
    retried at the next poll, and never a reason to call the commit invalid."""


@dataclass(frozen=True)
class Revision:
    """One commit of the followed ref."""

    commit: str  # full hex sha
    message: str  # first line of the commit message
    author: str
    time: int  # commit time, unix seconds

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass(frozen=True)
class GitCredentials:
    """How to authenticate: an https token, or an ssh key (host keys are always checked)."""

    token: str | None = None
    username: str = "x-access-token"  # GitHub's convention; GitLab accepts any with a token
    ssh_key: Path | None = None
    ssh_public_key: Path | None = None  # default: ssh_key + ".pub"
    ssh_passphrase: str = ""
    known_hosts: Path | None = None  # default: libgit2 checks ~/.ssh/known_hosts

    @classmethod
    def from_files(
        cls,
        token_file: str | None = None,
        ssh_key_file: str | None = None,
        known_hosts_file: str | None = None,
    ) -> GitCredentials | None:
        """Credentials from the `run` flags; the token may also be in SSM_GITOPS_GIT_TOKEN."""
        token = os.environ.get("SSM_GITOPS_GIT_TOKEN")
        if token_file:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as error:
                raise GitError(
                    f"{token_file}: cannot read the git token: {error.strerror}"
                ) from error
        if not token and not ssh_key_file and not known_hosts_file:
            return None
        return cls(
            token=token or None,
            ssh_key=Path(ssh_key_file) if ssh_key_file else None,
            known_hosts=Path(known_hosts_file) if known_hosts_file else None,
        )


def use_known_hosts(known_hosts: Path, home: Path) -> None:
    """Check ssh host keys against exactly `known_hosts` (never the user's own ~/.ssh).

    libgit2 (with libssh2) reads `<home>/.ssh/known_hosts` and has no option naming another
    file, so the file is copied into a home of ours and libgit2's home set to it.
    """
    try:
        content = known_hosts.read_text()
    except OSError as error:
        raise GitError(f"{known_hosts}: cannot read known_hosts: {error.strerror}") from error
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "known_hosts").write_text(content)
    pygit2.settings.homedir = str(home)


class _AuthenticationFailed(Exception):
    """Raised from the credentials callback: libgit2 asks again after every rejection."""


class _Callbacks(pygit2.RemoteCallbacks):
    def __init__(self, credentials: GitCredentials | None) -> None:
        super().__init__()
        self._credentials = credentials
        self.asked_for_credentials = False

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: int
    ) -> pygit2.Keypair | pygit2.UserPass:
        if self.asked_for_credentials:
            # Asked a second time: the server rejected what we gave (libgit2 would loop).
            raise _AuthenticationFailed("authentication failed")
        self.asked_for_credentials = True
        creds = self._credentials
        if creds and creds.ssh_key and allowed_types & pygit2.enums.CredentialType.SSH_KEY:
            public = creds.ssh_public_key or Path(str(creds.ssh_key) + ".pub")
            return pygit2.Keypair(
                username_from_url or "git",
                str(public) if public.exists() else None,
                str(creds.ssh_key),
                creds.ssh_passphrase,
            )
        if creds and creds.token and allowed_types & pygit2.enums.CredentialType.USERPASS_PLAINTEXT:
            return pygit2.UserPass(username_from_url or creds.username, creds.token)
        raise _AuthenticationFailed("the server asks for credentials and none were given")

    def certificate_check(self, certificate: None, valid: bool, host: bytes | str) -> bool:
        # Never connect to a host whose TLS certificate or ssh host key libgit2 could not
        # verify (for ssh: against ~/.ssh/known_hosts, see install_known_hosts).
        return valid


def _is_url(location: str) -> bool:
    return "://" in location or re.match(r"^[\w.-]+@[\w.-]+:", location) is not None


class GitSource:
    """The followed ref of one repository (thread-safe: one fetch or materialise at a time)."""

    def __init__(
        self,
        location: str,
        ref: str | None = None,
        cache_dir: Path | None = None,
        credentials: GitCredentials | None = None,
        *,
        cache_named: str | None = None,
    ) -> None:
        """`cache_named`: how the user gave the cache folder (see `cache.claim`), when
        `cache_dir` is a folder inside it."""
        self.location = location
        self.ref = ref
        self.credentials = credentials
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "ssm-gitops")
        self._lock = threading.Lock()
        self._repo: pygit2.Repository | None = None
        # The tree last materialised and where: files unchanged since are hard-linked from it.
        self._last_tree: tuple[pygit2.Oid, Path] | None = None
        self._remote_url = location if _is_url(location) else None
        # One process per cache directory; what an earlier one left half-written goes.
        cache.claim(self.cache_dir, cache_named)
        if credentials and credentials.known_hosts:
            use_known_hosts(credentials.known_hosts, self.cache_dir / "ssh-home")

    # -- reading the repository -------------------------------------------------------

    def fetch(self) -> Revision:
        """The newest commit of the followed ref (cloning or fetching a URL first)."""
        with self._lock:
            followed = self._repo if self._remote_url is None else None
            if followed is not None and not Path(followed.path).is_dir():
                # Moved or deleted while we followed it: say so, then look again next time.
                self._repo = None
                raise GitError(
                    f"{self._shown}: the repository is no longer there "
                    "(moved or deleted?); the last good revision stays applied"
                )
            repo = self._open()
            commit = self._fetch_remote(repo) if self._remote_url else self._lookup_local(repo)
            return self._chosen(repo, commit)

    def materialise(self, revision: Revision) -> Path:
        """A directory holding exactly the tree of `revision` (kept until superseded).

        A tree already on disk is used only after checking it against git's object ids
        (someone may have edited the cache); one that differs is written again. I/O
        failures raise `SourceUnavailable` and leave no partial tree behind.
        """
        with self._lock:
            repo = self._open()
            trees = self.cache_dir / "trees"
            target = trees / revision.commit
            try:
                commit = repo.get(revision.commit)
            except (ValueError, pygit2.GitError):
                commit = None
            if not isinstance(commit, pygit2.Commit):
                raise SourceUnavailable(
                    f"{self._shown}: commit {revision.commit} is not in the cached repository "
                    "(retried at the next poll)"
                )
            try:
                if target.is_dir():
                    differs = tree_mismatch(repo, commit.tree, target)
                    if differs is None:
                        self._last_tree = (commit.tree.id, target)
                        return target
                    _log.warning(
                        f"cached tree of {revision.short} differs from git ({differs}): "
                        "writing it again from git's objects",
                        extra={"event": "cache", "revision": revision.commit},
                    )
                    if self._last_tree is not None and self._last_tree[1] == target:
                        self._last_tree = None  # never link from a tree known to be altered
                    cache.remove(target)
                return self._write(repo, commit, trees, target)
            except OSError as error:
                raise SourceUnavailable(
                    f"{error.filename or trees}: cannot write the checkout of "
                    f"{revision.short}: {error.strerror} (free disk space or make the cache "
                    "writable; retried at the next poll)"
                ) from error

    def _write(
        self, repo: pygit2.Repository, commit: pygit2.Commit, trees: Path, target: Path
    ) -> Path:
        trees.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".tmp-", dir=trees))
        try:
            previous: tuple[pygit2.Tree, Path] | None = None
            if self._last_tree is not None and self._last_tree[1].is_dir():
                last = repo.get(self._last_tree[0])
                if isinstance(last, pygit2.Tree):
                    previous = (last, self._last_tree[1])
            _write_tree(repo, commit.tree, scratch, previous)
            os.replace(scratch, target)  # atomic: a reader never sees half a tree
        except BaseException:
            cache.remove(scratch)  # a full disk must not leave half a tree behind
            raise
        self._last_tree = (commit.tree.id, target)
        self._forget_old_trees(trees, keep=target)
        return target

    def signature(self, revision: Revision) -> tuple[bytes | None, bytes | None]:
        """The commit's signature and the bytes it signs, (None, None) when unsigned.

        What `--verify-signatures` checks (controller/source/signatures.py).
        """
        with self._lock:
            repo = self._open()
            try:
                commit = repo.get(revision.commit)
                if isinstance(commit, pygit2.Commit):
                    signature, payload = commit.gpg_signature
                    return signature, payload
            except (ValueError, OSError, pygit2.GitError):
                pass  # a lost or unreadable object: the machine's, as in `materialise`
            # Fetched a moment ago: a lost object says nothing about the commit (retried).
            raise SourceUnavailable(
                f"{self._shown}: commit {revision.commit} cannot be read from the cached "
                "repository to check its signature (retried at the next poll)"
            )

    def within(self, path: str | None) -> str:
        """The folder of the repository the user means, relative to its root.

        `--repo` may name a folder inside a local repository (`--repo sample-repo`): that
        folder is then where `--path` starts, as a user expects, rather than the root.
        """
        inner = ""
        if self._remote_url is None:
            try:
                with self._lock:
                    workdir = self._open().workdir
            except GitError:
                workdir = None  # not (yet) a repository: fetch() reports it, in its place
            if workdir:
                here = Path(self.location).expanduser().resolve()
                relative = here.relative_to(Path(workdir).resolve())
                inner = "" if str(relative) == "." else relative.as_posix()
        joined = Path(inner, path or ".").as_posix()
        return "." if joined in ("", ".") else joined

    def uncommitted(self, path: str = ".") -> list[str]:
        """Files under `path` (repository-relative) that differ from HEAD in a local work tree."""
        if self._remote_url is not None:
            return []
        with self._lock:
            repo = self._open()
            if repo.is_bare:
                return []
            prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
            return sorted(
                name
                for name, flags in repo.status().items()
                if name.startswith(prefix) and not flags & pygit2.enums.FileStatus.IGNORED
            )

    # -- internals ----------------------------------------------------------------------

    @property
    def _shown(self) -> str:
        return redact(self.location)

    def _open(self) -> pygit2.Repository:
        if self._repo is not None:
            return self._repo
        if self._remote_url is None:
            path = Path(self.location).expanduser()
            found = pygit2.discover_repository(str(path)) if path.exists() else None
            if not found:
                raise GitError(
                    f"{self._shown}: not a git repository "
                    "(give a local repository's path, or an https:// or ssh URL)"
                )
            self._repo = pygit2.Repository(found)
            return self._repo
        clone_dir = (
            self.cache_dir / "repos" / hashlib.sha256(self._remote_url.encode()).hexdigest()[:16]
        )
        try:
            if (clone_dir / "HEAD").exists():
                self._repo = pygit2.Repository(str(clone_dir))
                return self._repo
            # An empty bare repository with the remote; fetch() takes only the followed ref.
            clone_dir.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".clone-", dir=clone_dir.parent))
            try:
                made = pygit2.init_repository(str(scratch), bare=True)
                made.remotes.create("origin", self._remote_url)
                os.replace(scratch, clone_dir)
            except BaseException:
                cache.remove(scratch)
                raise
        except (OSError, pygit2.GitError) as error:
            raise SourceUnavailable(
                f"{self.cache_dir}: cannot set up the clone: "
                f"{getattr(error, 'strerror', None) or error} "
                "(free disk space or make the cache writable; retried at the next poll)"
            ) from error
        self._repo = pygit2.Repository(str(clone_dir))
        return self._repo

    def _fetch_remote(self, repo: pygit2.Repository) -> pygit2.Commit:
        """Ask the remote what the followed ref is now, fetch exactly that, return its commit."""
        remote = repo.remotes["origin"]
        what = "cannot fetch" if list(repo.references) else "cannot clone"
        try:
            heads = remote.list_heads(callbacks=_Callbacks(self.credentials))
        except (pygit2.GitError, _AuthenticationFailed, KeyError, ValueError) as error:
            raise GitError(self._explain(what, error)) from error
        advertised = {head.name: head for head in heads if head.name}
        wanted = self._wanted(advertised)
        try:
            if wanted is None:
                # A commit id: it never moves, so one already here needs no fetch; else fetch
                # the branches and tags that may hold it (a commit is not advertised).
                pinned = self.ref or ""
                if len(pinned) == 40 and pygit2.Oid(hex=pinned) in repo:
                    return self._peel(repo, pinned, f"{pinned} is not a commit")
                remote.fetch(
                    _REFSPECS,
                    callbacks=_Callbacks(self.credentials),
                    prune=pygit2.enums.FetchPrune.PRUNE,
                )
                return self._peel(
                    repo, self.ref or "", f"no commit {self.ref!r} on any branch or tag"
                )
            local = _FOLLOWED + wanted
            oid = advertised[wanted].oid
            if oid not in repo:  # else nothing new: the poll cost one ls-remote, no fetch
                remote.fetch([f"+{wanted}:{local}"], callbacks=_Callbacks(self.credentials))
            if oid not in repo:
                raise GitError(
                    f"{self._shown}: {wanted} moved while it was fetched (retried at the next poll)"
                )
            # The advertised commit, recorded under our own name (libgit2 writes a fetched
            # tag under refs/tags/ whatever the refspec says): keeps its objects.
            repo.references.create(local, oid, force=True)
        except (pygit2.GitError, _AuthenticationFailed, KeyError, ValueError) as error:
            raise GitError(self._explain(what, error)) from error
        except OSError as error:
            raise SourceUnavailable(
                f"{self.cache_dir}: cannot write the fetched objects: {error.strerror} "
                "(free disk space or make the cache writable; retried at the next poll)"
            ) from error
        # What came back, not what was advertised: the ref may have moved in between.
        return self._peel(repo, local, f"{wanted} did not arrive from the remote (retried)")

    def _wanted(self, advertised: dict[str, RemoteHead]) -> str | None:
        """The remote ref to follow, by its full name; None for a commit id.

        No `--ref`: the branch the remote's HEAD names now (its symref), or HEAD itself
        when it is detached. `--ref X`: refs/heads/X, else refs/tags/X, else a full ref
        name, else a commit id. Nothing else, and never a ref remembered from an earlier
        fetch: a vanished ref is an error that changes nothing.
        """
        if self.ref is None:
            head = advertised.get("HEAD")
            if head is None:
                raise GitError(
                    f"{self._shown}: the remote has no HEAD (its default branch deleted or "
                    "renamed, or nothing pushed yet): nothing changes; fix the remote's default "
                    "branch or give --ref"
                )
            target: str | None = head.symref_target
            if target and target in advertised:
                return target
            if target:
                raise GitError(
                    f"{self._shown}: the remote's HEAD names {target}, which does not exist "
                    "(deleted or renamed?): nothing changes; fix the remote's default branch "
                    "or give --ref"
                )
            return "HEAD"  # detached: followed as it moves
        for name in (f"refs/heads/{self.ref}", f"refs/tags/{self.ref}", self.ref):
            if name in advertised and (name.startswith("refs/") or name == "HEAD"):
                return name
        if _COMMIT_ID.match(self.ref):
            return None
        raise GitError(
            f"{self._shown}: no branch or tag {self.ref!r} on the remote (deleted or renamed?): "
            "nothing changes, the last applied revision stays; check --ref"
        )

    def _peel(self, repo: pygit2.Repository, name: str, missing: str) -> pygit2.Commit:
        try:
            return repo.revparse_single(name).peel(pygit2.Commit)
        except (KeyError, ValueError, TypeError, pygit2.GitError) as error:
            raise GitError(f"{self._shown}: {missing}") from error

    def _explain(self, what: str, error: Exception) -> str:
        reason = redact_text(" ".join(str(error).split()), self.location)
        reason = reason or type(error).__name__
        lowered = reason.lower()
        if "none were given" in lowered:
            hint = "give --git-token-file (https) or --ssh-key-file (ssh)"
        elif "auth" in lowered or "credentials" in lowered or "401" in lowered or "403" in lowered:
            hint = "check the token (--git-token-file) or the ssh key (--ssh-key-file)"
        elif any(w in lowered for w in ("host key", "hostkey", "certificate", "known_hosts")):
            hint = "add the server's host key with --known-hosts-file"
        else:
            hint = "check the URL and that the server is reachable"
        return f"{self._shown}: {what}: {reason} ({hint})"

    def _chosen(self, repo: pygit2.Repository, commit: pygit2.Commit) -> Revision:
        """The one place a fetched commit becomes the revision a pass uses.

        Every check on what may be applied (e.g. commit signatures) belongs here: raising a
        `GitError` keeps the last applied revision, exactly like a failed fetch.
        """
        return Revision(
            commit=str(commit.id),
            message=commit.message.strip().splitlines()[0] if commit.message.strip() else "",
            author=commit.author.name,
            time=commit.commit_time,
        )

    def _lookup_local(self, repo: pygit2.Repository) -> pygit2.Commit:
        """The followed ref of a repository read in place: HEAD, or exactly the named ref."""
        if self.ref is None:
            if repo.head_is_unborn:
                raise GitError(
                    f"{self._shown}: the repository has no commits yet (commit something first)"
                )
            return self._peel(repo, "HEAD", "HEAD does not name a commit")
        candidates = [f"refs/heads/{self.ref}", f"refs/tags/{self.ref}"]
        if self.ref.startswith("refs/"):
            candidates.append(self.ref)
        for name in candidates:
            if name in repo.references:
                return self._peel(repo, name, f"{name} does not name a commit")
        if _COMMIT_ID.match(self.ref):
            try:
                return repo.revparse_single(self.ref).peel(pygit2.Commit)
            except (KeyError, ValueError, TypeError, pygit2.GitError):
                pass
        raise GitError(f"{self._shown}: no branch, tag or commit named {self.ref!r} (check --ref)")

    @staticmethod
    def _forget_old_trees(trees: Path, keep: Path) -> None:
        done = sorted(
            (p for p in trees.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in done[_TREES_KEPT:]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)


def source_root(tree: Path, path: str, revision: Revision) -> Path:
    """The folder `path` of the materialised `tree`, refusing one that leaves the tree.

    Shared by `run`, `plan` and `apply`: `--path ../..`, or a committed symlink on the way,
    must never make the controller read (and publish) the host's files.
    """
    shown = path if len(path) <= 80 else f"{path[:60]}... ({len(path)} characters)"
    try:
        # os.path.realpath, unlike Path.resolve on Python 3.11, never raises on a loop
        top = Path(os.path.realpath(tree))
        root = Path(os.path.realpath(tree / path))
        if not root.is_relative_to(top):
            raise UserError(
                f"--path {shown}: leads outside the repository (through '..' or a committed "
                f"symlink) at {revision.short}: give a folder inside the repository"
            )
        if not root.is_dir():
            raise UserError(
                f"--path {shown}: no such folder in commit {revision.short} (check --path)"
            )
    except OSError as error:  # a name over the system's limits (ENAMETOOLONG), a loop
        if not caused_by_content(error):
            raise  # the machine's (EIO, EACCES): `run` retries it, never blames the commit
        raise UserError(
            f"--path {shown}: cannot be used ({error.strerror}): give a folder inside the "
            "repository"
        ) from None
    return root


def _write_tree(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    into: Path,
    previous: tuple[pygit2.Tree, Path] | None = None,
) -> None:
    """Write `tree` under `into`, keeping the exec bit and symlinks.

    Symlinks are written as they are; the loader refuses one that leads outside the tree.
    A submodule (gitlink) becomes a folder holding only a `.git` file, as `git checkout`
    leaves an uninitialised one: the loader refuses a package source holding it (its files
    are not in this repository), and nothing is silently left out of a zip.
    A file with the same blob and mode at the same place in `previous` (the tree written
    last, and where) is hard-linked from there when its content still hashes to that blob
    (the cache may have been edited): a commit that touches one file writes one file, and
    the build's content-hash memo (keyed by inode) still knows every other file.
    """
    into.mkdir(exist_ok=True)
    for entry in tree:
        name = str(entry.name)
        target = into / name
        mode = entry.filemode
        if mode == pygit2.enums.FileMode.COMMIT:
            target.mkdir()
            (target / ".git").write_text(SUBMODULE_MARKER)
            continue
        before = previous[0][name] if previous is not None and name in previous[0] else None
        if (
            previous is not None
            and mode in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)
            and before is not None
            and before.id == entry.id
            and before.filemode == mode
            and _link(previous[1] / name, target, entry.id)
        ):
            continue
        if mode == pygit2.enums.FileMode.TREE:
            obj = repo[entry.id]
            if isinstance(obj, pygit2.Tree):
                inner = None
                if previous is not None and isinstance(before, pygit2.Tree):
                    inner = (before, previous[1] / name)
                _write_tree(repo, obj, target, inner)
        elif mode == pygit2.enums.FileMode.LINK:
            obj = repo[entry.id]
            if isinstance(obj, pygit2.Blob):
                os.symlink(obj.data, target)
        else:
            write_blob(repo, entry.id, target)
            if mode == pygit2.enums.FileMode.BLOB_EXECUTABLE:
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _link(existing: Path, target: Path, oid: pygit2.Oid) -> bool:
    """Hard-link `existing` as `target` when it still holds blob `oid`; False: write it."""
    try:
        if not stat.S_ISREG(existing.lstat().st_mode):
            return False
        if pygit2.hashfile(str(existing)) != oid:
            _log.warning(
                f"cached file {existing} differs from git: writing it again from git's objects",
                extra={"event": "cache"},
            )
            return False
        os.link(existing, target)
    except OSError:
        return False
    return True
