"""Where a pass starts: the git repository the controller watches, read through pygit2.

`GitSource.fetch()` returns the newest `Revision` of the followed ref (clone on first use,
incremental fetch afterwards); `GitSource.materialise(revision)` writes that commit's tree
to a directory that `spec.load_repository` then reads. Nothing here knows about YAML.

A local path is read in place (new commits show up at once, no clone); an https or ssh
URL is cloned bare into the cache directory. Every failure a user can cause (wrong URL,
bad token, unknown host key, missing ref) is a `GitError`: one line, with what to do.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pygit2

from controller.errors import UserError

# Fetch every branch into origin/* and every tag: a ref may name either, and a pinned
# commit must be reachable from one of them.
_REFSPECS = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
_TREES_KEPT = 3  # materialised trees kept on disk (current, previous, one spare)
_SECRET_IN_URL = re.compile(r"(?<=://)[^/@]+@")

# A git server that stops answering must not hang a pass forever (milliseconds).
pygit2.settings.server_connect_timeout = 15_000
pygit2.settings.server_timeout = 120_000


class GitError(UserError):
    """The repository cannot be read: one line naming it, the reason, and what to do."""


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


def redact(url: str) -> str:
    """A URL fit for logs: any user:password@ part removed."""
    return _SECRET_IN_URL.sub("", url)


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
    ) -> None:
        self.location = location
        self.ref = ref
        self.credentials = credentials
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "ssm-gitops")
        self._lock = threading.Lock()
        self._repo: pygit2.Repository | None = None
        # The tree last materialised and where: files unchanged since are hard-linked from it.
        self._last_tree: tuple[pygit2.Oid, Path] | None = None
        self._remote_url = location if _is_url(location) else None
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
                    f"{self.location}: the repository is no longer there "
                    "(moved or deleted?); the last good revision stays applied"
                )
            repo = self._open()
            if self._remote_url:
                self._fetch_remote(repo)
            return self._resolve(repo)

    def materialise(self, revision: Revision) -> Path:
        """A directory holding exactly the tree of `revision` (kept until superseded)."""
        with self._lock:
            repo = self._open()
            trees = self.cache_dir / "trees"
            target = trees / revision.commit
            commit = repo.get(revision.commit)
            if not isinstance(commit, pygit2.Commit):
                raise GitError(f"{self._shown}: commit {revision.commit} is not in the repository")
            if target.is_dir():
                self._last_tree = (commit.tree.id, target)
                return target
            trees.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".tmp-", dir=trees))
            previous: tuple[pygit2.Tree, Path] | None = None
            if self._last_tree is not None and self._last_tree[1].is_dir():
                last = repo.get(self._last_tree[0])
                if isinstance(last, pygit2.Tree):
                    previous = (last, self._last_tree[1])
            _write_tree(repo, commit.tree, scratch, previous)
            os.replace(scratch, target)  # atomic: a reader never sees half a tree
            self._last_tree = (commit.tree.id, target)
            self._forget_old_trees(trees, keep=target)
            return target

    def signature(self, revision: Revision) -> tuple[bytes | None, bytes | None]:
        """The commit's signature and the bytes it signs, (None, None) when unsigned.

        What `--verify-signatures` checks (controller/source/signatures.py).
        """
        with self._lock:
            commit = self._open().get(revision.commit)
            if not isinstance(commit, pygit2.Commit):
                raise GitError(f"{self._shown}: commit {revision.commit} is not in the repository")
            signature, payload = commit.gpg_signature
            return signature, payload

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
                    f"{self.location}: not a git repository "
                    "(give a local repository's path, or an https:// or ssh URL)"
                )
            self._repo = pygit2.Repository(found)
            return self._repo
        clone_dir = (
            self.cache_dir / "repos" / hashlib.sha256(self._remote_url.encode()).hexdigest()[:16]
        )
        if (clone_dir / "HEAD").exists():
            self._repo = pygit2.Repository(str(clone_dir))
            return self._repo
        clone_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".clone-", dir=clone_dir.parent))
        callbacks = _Callbacks(self.credentials)
        try:
            pygit2.clone_repository(self._remote_url, str(scratch), bare=True, callbacks=callbacks)
        except (pygit2.GitError, _AuthenticationFailed, KeyError, ValueError) as error:
            shutil.rmtree(scratch, ignore_errors=True)
            raise GitError(self._explain("cannot clone", error)) from error
        os.replace(scratch, clone_dir)
        self._repo = pygit2.Repository(str(clone_dir))
        return self._repo

    def _fetch_remote(self, repo: pygit2.Repository) -> None:
        callbacks = _Callbacks(self.credentials)
        try:
            repo.remotes["origin"].fetch(
                _REFSPECS, callbacks=callbacks, prune=pygit2.enums.FetchPrune.PRUNE
            )
        except (pygit2.GitError, _AuthenticationFailed, KeyError, ValueError) as error:
            raise GitError(self._explain("cannot fetch", error)) from error

    def _explain(self, what: str, error: Exception) -> str:
        reason = " ".join(str(error).split()) or type(error).__name__
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

    def _resolve(self, repo: pygit2.Repository) -> Revision:
        commit = self._lookup(repo)
        return Revision(
            commit=str(commit.id),
            message=commit.message.strip().splitlines()[0] if commit.message.strip() else "",
            author=commit.author.name,
            time=commit.commit_time,
        )

    def _lookup(self, repo: pygit2.Repository) -> pygit2.Commit:
        remote = self._remote_url is not None
        if self.ref is None:
            candidates = ["HEAD"]
            if remote:
                # A bare clone's HEAD names the remote's default branch; follow its
                # remote-tracking ref, which fetch() keeps current.
                head = repo.references.get("HEAD")
                target = head.target if head is not None else None
                if isinstance(target, str) and target.startswith("refs/heads/"):
                    candidates.insert(
                        0, "refs/remotes/origin/" + target.removeprefix("refs/heads/")
                    )
        elif remote:
            candidates = [f"refs/remotes/origin/{self.ref}", f"refs/tags/{self.ref}", self.ref]
        else:
            candidates = [f"refs/heads/{self.ref}", f"refs/tags/{self.ref}", self.ref]
        for name in candidates:
            try:
                obj = repo.revparse_single(name)
            except (KeyError, ValueError, pygit2.GitError):
                continue
            try:
                return obj.peel(pygit2.Commit)
            except (pygit2.GitError, ValueError, TypeError):
                continue
        if self.ref is None:
            raise GitError(
                f"{self._shown}: the repository has no commits yet (commit something first)"
            )
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


def _write_tree(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    into: Path,
    previous: tuple[pygit2.Tree, Path] | None = None,
) -> None:
    """Write `tree` under `into`, keeping the exec bit and symlinks (submodules are skipped).

    Symlinks are written as they are; the loader refuses one that leads outside the tree.
    A file with the same blob and mode at the same place in `previous` (the tree written
    last, and where) is hard-linked from there instead of written again: a commit that
    touches one file costs one file, and the build's content-hash memo (keyed by inode)
    still knows every other file. Materialised trees are never written to after this.
    """
    into.mkdir(exist_ok=True)
    for entry in tree:
        name = str(entry.name)
        target = into / name
        mode = entry.filemode
        if mode == pygit2.enums.FileMode.COMMIT:
            continue  # a submodule: its commit is not in this repository
        before = previous[0][name] if previous is not None and name in previous[0] else None
        if (
            previous is not None
            and mode in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)
            and before is not None
            and before.id == entry.id
            and before.filemode == mode
            and _link(previous[1] / name, target)
        ):
            continue  # checked before reading the blob: an unchanged file costs no read
        obj = repo[entry.id]
        if mode == pygit2.enums.FileMode.TREE and isinstance(obj, pygit2.Tree):
            inner = None
            if previous is not None and isinstance(before, pygit2.Tree):
                inner = (before, previous[1] / name)
            _write_tree(repo, obj, target, inner)
        elif mode == pygit2.enums.FileMode.LINK and isinstance(obj, pygit2.Blob):
            os.symlink(obj.data, target)
        elif isinstance(obj, pygit2.Blob):
            target.write_bytes(obj.data)
            if mode == pygit2.enums.FileMode.BLOB_EXECUTABLE:
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _link(existing: Path, target: Path) -> bool:
    """Hard-link `existing` as `target`; False (write it instead) when that is not possible."""
    try:
        if not stat.S_ISREG(existing.lstat().st_mode):
            return False
        os.link(existing, target)
    except OSError:
        return False
    return True
