"""`--verify-signatures`: the head commit's signature checked with real keys made here.

SSH keys by `ssh-keygen`, OpenPGP keys by `gpg --quick-gen-key`, commits signed by the git
CLI; the verdicts come from the real `ssh-keygen -Y verify` and `gpg --verify`.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli import build_parser
from controller.errors import UserError
from controller.repository import Repository
from controller.runtime.loop import ControllerLoop
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import PassRequest
from controller.runtime.status import Status, StatusBoard, to_json
from controller.source import GitSource, Revision, SourceUnavailable
from controller.source.signatures import (
    SignatureCheckFailed,
    SignatureError,
    Signer,
    TrustedKeys,
    verify_commit,
    verify_revision,
)
from tests.runtime.fakes import RevisionRecorder
from tests.source.signing import (
    GpgKey,
    SshKey,
    git_commit,
    gpg_home,
    init_repo,
    make_gpg_key,
    make_ssh_key,
    require_tools,
    stop_gpg,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SshKey | GpgKey]]:
    require_tools()
    directory = tmp_path_factory.mktemp("keys")
    homes = [gpg_home(), gpg_home()]
    try:
        yield {
            "alice": make_ssh_key(directory, "alice"),
            "mallory": make_ssh_key(directory, "mallory"),
            "carol": make_gpg_key(homes[0], "Carol", "carol@example.com"),
            "eve": make_gpg_key(homes[1], "Eve", "eve@example.com"),
        }
    finally:
        for home in homes:
            stop_gpg(home)


def ssh(keys: dict[str, SshKey | GpgKey], name: str) -> SshKey:
    key = keys[name]
    assert isinstance(key, SshKey)
    return key


def gpg(keys: dict[str, SshKey | GpgKey], name: str) -> GpgKey:
    key = keys[name]
    assert isinstance(key, GpgKey)
    return key


@pytest.fixture
def trusted(keys: dict[str, SshKey | GpgKey], tmp_path: Path) -> TrustedKeys:
    """alice's SSH key and carol's GPG key are trusted; mallory and eve are not."""
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"# the release team\nalice@example.com {ssh(keys, 'alice').public}\n")
    keyring = tmp_path / "trusted.asc"
    keyring.write_bytes(gpg(keys, "carol").export())
    found = TrustedKeys.from_flags(True, str(allowed), str(keyring))
    assert found is not None
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo")


def head(repo: Path, tmp_path: Path, trusted: TrustedKeys) -> str:
    """Verify the followed ref's head through GitSource, as the controller does."""
    source = GitSource(str(repo), cache_dir=tmp_path / "cache")
    return verify_revision(source, source.fetch(), trusted).describe()


def test_a_commit_signed_by_a_listed_ssh_key_passes(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path, trusted: TrustedKeys
) -> None:
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", ssh(keys, "alice"))
    described = head(repo, tmp_path, trusted)
    assert described.startswith("ssh signature of alice@example.com (SHA256:"), described


def test_a_commit_signed_by_a_listed_gpg_key_passes(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path, trusted: TrustedKeys
) -> None:
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", gpg(keys, "carol"))
    described = head(repo, tmp_path, trusted)
    assert described == (
        f"gpg signature of Carol <carol@example.com> ({gpg(keys, 'carol').fingerprint})"
    )


def test_an_unsigned_commit_is_refused(repo: Path, tmp_path: Path, trusted: TrustedKeys) -> None:
    """Bug guarded: with --verify-signatures an unsigned head commit was applied."""
    commit = git_commit(repo, {"a.yaml": "x: 1\n"}, "unsigned")
    with pytest.raises(SignatureError) as caught:
        head(repo, tmp_path, trusted)
    message = str(caught.value)
    assert message.startswith(f"commit {commit[:12]} refused by --verify-signatures: not signed")
    assert "\n" not in message and caught.value.reason == "signature"


@pytest.mark.parametrize(
    ("signer", "said"),
    [
        ("mallory", "signed by an SSH key that --allowed-signers-file does not list (SHA256:"),
        ("eve", "signed by a GPG key that --trusted-gpg-keys-file does not list ("),
    ],
)
def test_a_commit_signed_by_an_unknown_key_is_refused(
    keys: dict[str, SshKey | GpgKey],
    repo: Path,
    tmp_path: Path,
    trusted: TrustedKeys,
    signer: str,
    said: str,
) -> None:
    """Bug guarded: a commit signed by anybody's key passed as "signed"."""
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed by a stranger", keys[signer])
    with pytest.raises(SignatureError, match=said.replace("(", r"\(")):
        head(repo, tmp_path, trusted)


@pytest.mark.parametrize(("signer", "said"), [("alice", "bad SSH"), ("carol", "bad GPG")])
def test_a_signature_that_does_not_match_the_commit_is_refused(
    keys: dict[str, SshKey | GpgKey],
    repo: Path,
    tmp_path: Path,
    trusted: TrustedKeys,
    signer: str,
    said: str,
) -> None:
    """A trusted signature moved onto other content (a forged commit) is a bad signature."""
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", keys[signer])
    source = GitSource(str(repo), cache_dir=tmp_path / "cache")
    signature, payload = source.signature(source.fetch())
    assert signature is not None and payload is not None
    forged = payload.replace(b"signed", b"forged")
    with pytest.raises(SignatureError, match=said):
        verify_commit("f" * 40, signature, forged, trusted)


def test_a_signed_message_passed_off_as_a_signature_is_refused(
    keys: dict[str, SshKey | GpgKey], tmp_path: Path, trusted: TrustedKeys
) -> None:
    """A trusted key's opaque or clear-signed message carries its own data: used as a
    commit's signature it must not vouch for the commit (only detached signatures count)."""
    carol = gpg(keys, "carol")
    env = {**os.environ, "GNUPGHOME": str(carol.home)}

    def sign(*mode: str) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", *mode, "-u", carol.fingerprint],
            input=b"innocent data\n",
            env=env,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout

    binary = base64.b64encode(sign("--sign")).decode()
    rearmored = "\n".join(
        ["-----BEGIN PGP SIGNATURE-----", ""]
        + [binary[i : i + 64] for i in range(0, len(binary), 64)]
        + ["-----END PGP SIGNATURE-----", ""]
    ).encode()
    payload = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmalicious\n"
    for forged in (sign("--sign", "--armor"), sign("--clearsign"), rearmored):
        with pytest.raises(SignatureError):
            verify_commit("f" * 40, forged, payload, trusted)


def test_a_signature_of_a_kind_nobody_trusts_is_refused(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example.com {ssh(keys, 'alice').public}\n")
    only_ssh = TrustedKeys.from_flags(True, str(allowed), None)
    assert only_ssh is not None
    git_commit(repo, {"a.yaml": "x: 1\n"}, "gpg signed", gpg(keys, "carol"))
    with pytest.raises(SignatureError, match="signed with a GPG key, but no GPG key is trusted"):
        head(repo, tmp_path, only_ssh)


def test_an_ssh_key_outside_its_validity_window_is_refused(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path
) -> None:
    """`valid-before` in allowed_signers is checked at the current time (a retired key)."""
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'alice@example.com valid-before="20200101" {ssh(keys, "alice").public}\n')
    retired = TrustedKeys.from_flags(True, str(allowed), None)
    assert retired is not None
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed with a retired key", ssh(keys, "alice"))
    with pytest.raises(SignatureError, match="signed by a listed SSH key that is not valid now"):
        head(repo, tmp_path, retired)


# -- the flags: every mistake is one line at startup ------------------------------------


def test_verification_is_off_unless_asked_for() -> None:
    assert TrustedKeys.from_flags(False, None, None) is None


@pytest.mark.parametrize(
    ("verify", "allowed", "gpg_file", "said"),
    [
        (True, None, None, "--verify-signatures needs the trusted keys"),
        (False, "allowed_signers", None, "--allowed-signers-file is given but signatures"),
        (False, None, "trusted.asc", "--trusted-gpg-keys-file is given but signatures"),
        (True, "missing", None, "missing: cannot read the allowed signers file"),
        (True, "empty", None, "empty: the allowed signers file is empty"),
        (True, "comments", None, "comments: the allowed signers file lists no key"),
        (True, "broken", None, "broken:2: not an allowed_signers line"),
        (True, "directory", None, "directory: cannot read the allowed signers file"),
        (True, None, "missing", "missing: cannot read the trusted GPG keyring"),
        (True, None, "garbage.asc", "garbage.asc: no OpenPGP public key in it"),
        (True, None, "secret.asc", "secret.asc: holds a secret key"),
    ],
)
def test_a_bad_key_flag_is_one_line(
    keys: dict[str, SshKey | GpgKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    verify: bool,
    allowed: str | None,
    gpg_file: str | None,
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("allowed_signers").write_text(f"alice@example.com {ssh(keys, 'alice').public}\n")
    Path("trusted.asc").write_bytes(gpg(keys, "carol").export())
    Path("empty").write_text("\n")
    Path("comments").write_text("# nobody yet\n")
    Path("broken").write_text(f"alice@example.com {ssh(keys, 'alice').public}\njust-a-name\n")
    Path("directory").mkdir()
    Path("garbage.asc").write_text("this is not a key\n")
    carol = gpg(keys, "carol")
    Path("secret.asc").write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
            + ["--armor", "--export-secret-keys", carol.fingerprint],
            env={**os.environ, "GNUPGHOME": str(carol.home)},
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    )
    with pytest.raises(UserError) as caught:
        TrustedKeys.from_flags(verify, allowed, gpg_file)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_check_that_cannot_run_is_not_a_verdict(
    keys: dict[str, SshKey | GpgKey],
    repo: Path,
    tmp_path: Path,
    trusted: TrustedKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ssh-keygen gone (or hung) after startup: SignatureCheckFailed, not "bad signature"."""
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", ssh(keys, "alice"))
    source = GitSource(str(repo), cache_dir=tmp_path / "cache")
    revision = source.fetch()
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(SignatureCheckFailed) as caught:
        verify_revision(source, revision, trusted)
    assert str(caught.value).startswith("cannot check commit signatures: `ssh-keygen` failed")
    assert not isinstance(caught.value, SignatureError)


def _shim(directory: Path, tool: str, step: str, how: str) -> None:
    """Put a `tool` on PATH that runs the real one, except that the run whose arguments
    include `step` is killed (SIGKILL) or fails without a verdict (an allocation failure)."""
    real = shutil.which(tool)
    assert real is not None
    action = "kill -KILL $$" if how == "killed" else "echo 'xmalloc: out of memory' >&2; exit 2"
    script = directory / tool
    script.write_text(
        f'#!/bin/sh\ncase " $* " in *" {step} "*) {action} ;; esac\nexec {real} "$@"\n'
    )
    script.chmod(0o755)


@pytest.mark.parametrize("how", ["killed", "failed"])
@pytest.mark.parametrize(
    ("signer", "tool", "step"),
    [
        ("alice", "ssh-keygen", "find-principals"),
        ("mallory", "ssh-keygen", "check-novalidate"),
        ("alice", "ssh-keygen", "verify"),
        ("carol", "gpg", "--verify"),
    ],
)
def test_a_tool_killed_or_failing_without_a_verdict_is_a_check_that_failed(
    keys: dict[str, SshKey | GpgKey],
    repo: Path,
    tmp_path: Path,
    trusted: TrustedKeys,
    monkeypatch: pytest.MonkeyPatch,
    signer: str,
    tool: str,
    step: str,
    how: str,
) -> None:
    """Bug: `ssh-keygen`/`gpg` killed (OOM killer, SIGKILL) or exiting non-zero with no
    verdict line was read as a bad signature: a GOOD commit was refused (reason signature,
    config_valid 0) instead of being checked again at the next poll."""
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", keys[signer])
    source = GitSource(str(repo), cache_dir=tmp_path / "cache")
    revision = source.fetch()
    shims = tmp_path / "shims"
    shims.mkdir()
    _shim(shims, tool, step, how)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(SignatureCheckFailed) as caught:
        verify_revision(source, revision, trusted)
    assert not isinstance(caught.value, SignatureError)
    said = str(caught.value)
    assert (
        said.startswith(f"cannot check commit signatures: `{tool}` failed (") and "\n" not in said
    )
    assert ("signal 9" if how == "killed" else "out of memory") in said


# -- the controller loop: a refused head keeps the last good revision --------------------


def test_the_loop_keeps_the_last_good_revision_and_retries_a_check_that_failed(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path, trusted: TrustedKeys
) -> None:
    """A refused head changes nothing (reason `signature`); a check that could not run is
    retried at the next poll instead of marking a good commit invalid."""
    good = git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", ssh(keys, "alice"))
    source = GitSource(str(repo), cache_dir=tmp_path / "cache")
    board = StatusBoard(Status(repo=str(repo)))
    metrics = Metrics()
    passes: list[str] = []
    broken_tools = [False]

    def verify(revision: Revision) -> Signer:
        if broken_tools[0]:
            raise SignatureCheckFailed("cannot check commit signatures: `ssh-keygen` failed")
        return verify_revision(source, revision, trusted)

    loop = ControllerLoop(
        source,
        lambda root: Repository(root=root),
        lambda detect_only: RevisionRecorder(passes),
        board=board,
        metrics=metrics,
        verify=verify,
    )
    poll = PassRequest(frozenset({"poll"}))
    loop(poll)
    assert passes == [good] and board.get().applied is not None

    refused = git_commit(repo, {"a.yaml": "x: 2\n"}, "unsigned")
    loop(poll)
    status = board.get()
    assert status.applied is not None and status.applied.commit == good
    assert [e["reason"] for e in to_json(status)["errors"]] == ["signature"]
    assert refused[:12] in status.config_errors[0] and passes == [good]
    assert metrics.registry.get_sample_value("ssm_gitops_config_valid") == 0
    sample = metrics.registry.get_sample_value
    assert sample("ssm_gitops_pass_errors_total", {"reason": "signature"}) == 1

    signed = git_commit(repo, {"a.yaml": "x: 3\n"}, "signed again", ssh(keys, "alice"))
    broken_tools[0] = True
    loop(poll)
    status = board.get()
    assert status.applied is not None and status.applied.commit == good
    assert "ssh-keygen" in status.git_error and "checked again at the next poll" in status.git_error
    broken_tools[0] = False
    loop(poll)  # the same commit, checked again now that the tools work
    status = board.get()
    assert status.applied is not None and status.applied.commit == signed
    assert status.errors == () and passes == [good, signed]
    assert metrics.registry.get_sample_value("ssm_gitops_config_valid") == 1


class _LostObject:
    """The source of a fetched revision whose commit object is then lost from the cache."""

    def __init__(self, source: GitSource, revision: Revision) -> None:
        self.source, self.revision, self.lost = source, revision, True

    def fetch(self) -> Revision:
        return self.revision

    def materialise(self, revision: Revision) -> Path:
        return self.source.materialise(revision)

    def signature(self, revision: Revision) -> tuple[bytes | None, bytes | None]:
        if self.lost:
            revision = dataclasses.replace(revision, commit="0" * 40)  # not in the repository
        return self.source.signature(revision)


def test_a_commit_object_lost_from_the_cache_is_retried_not_refused(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path, trusted: TrustedKeys
) -> None:
    """Bug: `GitSource.signature()` raised a plain GitError for a commit missing from the
    cached repository, so the loop marked the (good, signed) commit invalid (reason load,
    config_valid 0) instead of retrying it like `materialise` does."""
    good = git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", ssh(keys, "alice"))
    real = GitSource(str(repo), cache_dir=tmp_path / "cache")
    source = _LostObject(real, real.fetch())
    with pytest.raises(SourceUnavailable, match="retried at the next poll"):
        verify_revision(source, source.revision, trusted)
    board = StatusBoard(Status(repo=str(repo)))
    metrics = Metrics()
    passes: list[str] = []
    loop = ControllerLoop(
        source,
        lambda root: Repository(root=root),
        lambda detect_only: RevisionRecorder(passes),
        board=board,
        metrics=metrics,
        verify=lambda revision: verify_revision(source, revision, trusted),
    )
    poll = PassRequest(frozenset({"poll"}))
    loop(poll)
    sample = metrics.registry.get_sample_value
    assert board.get().config_errors == () and passes == []
    assert sample("ssm_gitops_pass_errors_total", {"reason": "source"}) == 1
    assert sample("ssm_gitops_pass_errors_total", {"reason": "load"}) == 0
    assert "retried at the next poll" in board.get().git_error
    source.lost = False
    loop(poll)
    assert passes == [good] and sample("ssm_gitops_config_valid") == 1


def test_run_reads_the_signature_flags_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSM_GITOPS_VERIFY_SIGNATURES", "true")
    monkeypatch.setenv("SSM_GITOPS_ALLOWED_SIGNERS_FILE", "/keys/allowed_signers")
    monkeypatch.setenv("SSM_GITOPS_TRUSTED_GPG_KEYS_FILE", "/keys/trusted.asc")
    args = build_parser().parse_args(["run", "--repo", "r"])
    assert args.verify_signatures is True
    assert args.allowed_signers_file == "/keys/allowed_signers"
    assert args.trusted_gpg_keys_file == "/keys/trusted.asc"
    planned = build_parser().parse_args(["plan", "--repo", "r"])  # plan: flags only
    assert planned.verify_signatures is False and planned.allowed_signers_file is None


def test_a_cloned_remote_is_checked_the_same_way(
    keys: dict[str, SshKey | GpgKey], repo: Path, tmp_path: Path, trusted: TrustedKeys
) -> None:
    """An https/ssh/file URL is read from the bare clone in the cache: same signatures."""
    git_commit(repo, {"a.yaml": "x: 1\n"}, "signed", ssh(keys, "alice"))
    source = GitSource(repo.as_uri(), cache_dir=tmp_path / "cache")
    assert verify_revision(source, source.fetch(), trusted).identity == "alice@example.com"
    unsigned = git_commit(repo, {"a.yaml": "x: 2\n"}, "unsigned")
    with pytest.raises(SignatureError, match=f"commit {unsigned[:12]} .*: not signed"):
        verify_revision(source, source.fetch(), trusted)
