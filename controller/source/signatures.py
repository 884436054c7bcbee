"""Signed commits (opt-in, `--verify-signatures`): may the fetched revision be applied at all?

Sits between the two halves of the source stage: `GitSource.fetch()` chooses the revision
(the followed ref's head commit), `verify_revision` checks that commit's signature against
the keys the operator trusts, and only a commit that passes is materialised, loaded and
reconciled. A commit that is unsigned, badly signed or signed by a key nobody listed is
refused like a commit that does not load: `SignatureError`, one line naming the commit,
the reason and what to do. Only the head commit is checked (Flux's `verification.mode:
HEAD`): its signature covers its tree, and so every file the pass reads.

The cryptography is done by the tools git itself uses, never re-implemented here:
- SSH: OpenSSH's `ssh-keygen -Y find-principals` / `-Y verify -n git` against an
  allowed_signers file (ssh-keygen(1), "ALLOWED SIGNERS"), the check `git verify-commit`
  makes with `gpg.format=ssh`. Key validity (`valid-after`/`valid-before`) is checked at the
  current time, not the commit's (attacker-chosen) date.
- OpenPGP: `gpg --verify` in a throw-away GNUPGHOME that holds only the trusted keyring,
  with no agent, no dirmngr and no key retrieval (no network); the verdict is read from
  `--status-fd` (GnuPG's doc/DETAILS: GOODSIG, VALIDSIG, BADSIG, ERRSIG, EXPKEYSIG,
  REVKEYSIG), and the VALIDSIG primary-key fingerprint must be one of the keyring's.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from controller.errors import UserError
from controller.source.git import Revision

REASON = "signature"  # the word /status and pass_errors_total{reason} use for these refusals
_TIMEOUT = 30.0  # seconds one ssh-keygen or gpg run may take (they take milliseconds)
_SSH_ARMOR = b"-----BEGIN SSH SIGNATURE-----"
_PGP_ARMOR = b"-----BEGIN PGP SIGNATURE-----"
_SSH_PUBLIC_KEY = re.compile(r"(?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+\s+(AAAA[A-Za-z0-9+/]+=*)")
_SSH_FINGERPRINT = re.compile(r"\bkey (SHA256:[A-Za-z0-9+/=]+)")
# gpg options for every run: never start an agent or dirmngr, never fetch a key.
_GPG_QUIET = (
    "--batch",
    "--no-tty",
    "--no-autostart",
    "--disable-dirmngr",
    "--no-auto-key-retrieve",
)


class SignatureError(UserError):
    """The head commit may not be applied: unsigned, bad signature, or an untrusted key."""

    reason = REASON


class SignatureCheckFailed(UserError):
    """The check itself could not run (a tool crashed or timed out): try again later."""


@dataclass(frozen=True)
class Signer:
    """Who signed a commit that passed: `method` ssh or gpg, the principal or user id, the key."""

    method: str
    identity: str
    key: str

    def describe(self) -> str:
        return f"{self.method} signature of {self.identity} ({self.key})"


@dataclass(frozen=True)
class TrustedKeys:
    """The keys a head commit may be signed with, read once at startup (restart to change)."""

    allowed_signers: bytes | None = None  # OpenSSH allowed_signers content
    allowed_signers_file: str = ""
    gpg_keyring: bytes | None = None  # an OpenPGP public keyring (armored or binary)
    gpg_keyring_file: str = ""
    gpg_fingerprints: frozenset[str] = frozenset()  # primary-key fingerprints, upper-case hex

    @classmethod
    def from_flags(
        cls,
        verify: bool,
        allowed_signers_file: str | None = None,
        trusted_gpg_keys_file: str | None = None,
    ) -> TrustedKeys | None:
        """The keys from `--verify-signatures`, `--allowed-signers-file` and
        `--trusted-gpg-keys-file`; None when verification is off. Every mistake is one line."""
        if not verify:
            given = [
                flag
                for flag, value in (
                    ("--allowed-signers-file", allowed_signers_file),
                    ("--trusted-gpg-keys-file", trusted_gpg_keys_file),
                )
                if value
            ]
            if given:
                raise UserError(
                    f"{given[0]} is given but signatures are not checked: add "
                    "--verify-signatures (SSM_GITOPS_VERIFY_SIGNATURES=true), or drop the flag"
                )
            return None
        if not allowed_signers_file and not trusted_gpg_keys_file:
            raise UserError(
                "--verify-signatures needs the trusted keys: give --allowed-signers-file "
                "(SSH keys) and/or --trusted-gpg-keys-file (an OpenPGP public keyring)"
            )
        keys = cls()
        if allowed_signers_file:
            keys = _with_allowed_signers(keys, allowed_signers_file)
        if trusted_gpg_keys_file:
            keys = _with_gpg_keyring(keys, trusted_gpg_keys_file)
        return keys


class SignedCommits(Protocol):
    """Where a commit's signature comes from (`controller.source.GitSource.signature`)."""

    def signature(self, revision: Revision) -> tuple[bytes | None, bytes | None]: ...


def verify_revision(source: SignedCommits, revision: Revision, keys: TrustedKeys) -> Signer:
    """The signer of `revision` if a trusted key signed it; else `SignatureError`."""
    signature, payload = source.signature(revision)
    return verify_commit(revision.commit, signature, payload, keys)


def verify_commit(
    commit: str, signature: bytes | None, payload: bytes | None, keys: TrustedKeys
) -> Signer:
    """Check one commit's signature (`pygit2.Commit.gpg_signature`: signature, signed bytes)."""
    if not signature or payload is None:
        raise _refused(commit, "not signed", "sign it with a trusted key (git commit -S)")
    armor = signature.lstrip()
    if armor.startswith(_SSH_ARMOR):
        if keys.allowed_signers is None:
            raise _refused(
                commit,
                "signed with an SSH key, but no SSH key is trusted",
                "give --allowed-signers-file, or sign with a key of --trusted-gpg-keys-file",
            )
        return _verify_ssh(commit, signature, payload, keys.allowed_signers)
    if armor.startswith(_PGP_ARMOR):
        if keys.gpg_keyring is None:
            raise _refused(
                commit,
                "signed with a GPG key, but no GPG key is trusted",
                "give --trusted-gpg-keys-file, or sign with a key of --allowed-signers-file",
            )
        return _verify_gpg(commit, signature, payload, keys, keys.gpg_keyring)
    raise _refused(
        commit,
        "signed in a format that is not checked here (X.509?)",
        "sign with an SSH key (gpg.format=ssh) or an OpenPGP key",
    )


# -- reading the trusted keys (startup) ---------------------------------------------------


def _read(path: str, flag: str, what: str) -> bytes:
    try:
        content = Path(path).expanduser().read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot read {what} ({flag}): {error.strerror}") from error
    if not content.strip():
        raise UserError(f"{path}: {what} is empty ({flag}): list at least one trusted key")
    return content


def _with_allowed_signers(keys: TrustedKeys, path: str) -> TrustedKeys:
    content = _read(path, "--allowed-signers-file", "the allowed signers file")
    listed = 0
    for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        # ssh-keygen(1) ALLOWED SIGNERS: "principals [options] keytype base64-key [comment]";
        # a malformed line would otherwise only show up later as "no principal matched".
        if len(line.split()) < 3 or not _SSH_PUBLIC_KEY.search(line):
            raise UserError(
                f"{path}:{number}: not an allowed_signers line: write "
                '"principal ssh-ed25519 AAAA..." (see ssh-keygen(1), ALLOWED SIGNERS)'
            )
        listed += 1
    if not listed:
        raise UserError(
            f"{path}: the allowed signers file lists no key (--allowed-signers-file): "
            "add a line like 'alice@example.com ssh-ed25519 AAAA...'"
        )
    _tool("ssh-keygen", "--allowed-signers-file", "openssh-client")
    return dataclasses.replace(keys, allowed_signers=content, allowed_signers_file=path)


def _with_gpg_keyring(keys: TrustedKeys, path: str) -> TrustedKeys:
    content = _read(path, "--trusted-gpg-keys-file", "the trusted GPG keyring")
    _tool("gpg", "--trusted-gpg-keys-file", "gnupg")
    with _gpg_home() as home:
        keyring = Path(home) / "trusted.asc"
        keyring.write_bytes(content)
        # --show-keys lists a keyring file without importing it (gpg 2.2.8+, gpg(1)).
        listed = _run(
            ["gpg", "--homedir", home, *_GPG_QUIET, "--with-colons", "--show-keys", str(keyring)],
            None,
        )
    colons = listed.stdout.decode("utf-8", "replace")
    if any(line.startswith("sec:") for line in colons.splitlines()):
        raise UserError(
            f"{path}: holds a secret key (--trusted-gpg-keys-file): give public keys only "
            "(`gpg --armor --export KEYID > FILE`), and keep the secret key out of the cluster"
        )
    fingerprints = frozenset(_primary_fingerprints(colons))
    if listed.returncode != 0 or not fingerprints:
        raise UserError(
            f"{path}: no OpenPGP public key in it (--trusted-gpg-keys-file): "
            "export the keys with `gpg --armor --export KEYID > FILE`"
        )
    return dataclasses.replace(
        keys, gpg_keyring=content, gpg_keyring_file=path, gpg_fingerprints=fingerprints
    )


def _primary_fingerprints(colons: str) -> list[str]:
    """The `fpr` record right after each `pub` record (gpg's doc/DETAILS, --with-colons)."""
    found: list[str] = []
    after_pub = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            after_pub = True
        elif fields[0] == "fpr" and after_pub and len(fields) > 9:
            found.append(fields[9].upper())
            after_pub = False
        elif fields[0] in ("sub", "ssb", "sec"):
            after_pub = False
    return found


def _tool(name: str, flag: str, package: str) -> None:
    if shutil.which(name) is None:
        raise UserError(
            f"{flag}: `{name}` is not installed, and it checks the signatures "
            f"(install the {package} package)"
        )


# -- SSH -------------------------------------------------------------------------------


def _verify_ssh(commit: str, signature: bytes, payload: bytes, allowed_signers: bytes) -> Signer:
    with tempfile.TemporaryDirectory(prefix="ssm-gitops-ssh-") as scratch:
        allowed = Path(scratch) / "allowed_signers"
        allowed.write_bytes(allowed_signers)
        sig = Path(scratch) / "commit.sig"
        sig.write_bytes(signature)
        found = _run(
            ["ssh-keygen", "-Y", "find-principals", "-f", str(allowed), "-s", str(sig)], None
        )
        if found.returncode != 0:
            _ssh_verdict(found, _NO_PRINCIPAL)  # no "No principal matched.": no verdict
        principals: list[str] = []
        for line in found.stdout.decode("utf-8", "replace").splitlines():
            # A line is the principals field of the matching entry (comma-separated).
            for candidate in (line.strip(), *line.split(",")):
                if candidate.strip() and candidate.strip() not in principals:
                    principals.append(candidate.strip())
        if found.returncode != 0 or not principals:
            # No listed key made this signature: was it a good signature by another key
            # (report its fingerprint), or not a signature of this commit at all?
            alone = _run(
                ["ssh-keygen", "-Y", "check-novalidate", "-n", "git", "-s", str(sig)], payload
            )
            if _ssh_verdict(alone, _COULD_NOT_VERIFY):
                key = _ssh_fingerprint(alone.stdout) or "an unknown key"
                if key in _listed_fingerprints(allowed_signers):
                    raise _refused(
                        commit,
                        f"signed by a listed SSH key that is not valid now ({key}: "
                        "valid-after/valid-before in --allowed-signers-file)",
                        "sign it with a key that is valid now",
                    )
                raise _refused(
                    commit,
                    f"signed by an SSH key that --allowed-signers-file does not list ({key})",
                    "add that key to the file if you trust it, or sign with a listed key",
                )
            raise _refused(
                commit,
                "bad SSH signature (the commit does not match its signature)",
                "do not trust this commit; re-sign it with a listed key",
            )
        for principal in principals:
            checked = _run(
                [
                    "ssh-keygen",
                    "-Y",
                    "verify",
                    "-n",
                    "git",
                    "-f",
                    str(allowed),
                    "-I",
                    principal,
                    "-s",
                    str(sig),
                ],
                payload,
            )
            if _ssh_verdict(checked, _COULD_NOT_VERIFY):
                key = _ssh_fingerprint(checked.stdout) or "?"
                return Signer("ssh", principal, key)
    raise _refused(
        commit,
        "bad SSH signature for a listed key (the commit does not match its signature, "
        "or the key is not valid now or not for git)",
        "do not trust this commit; check the key's options in --allowed-signers-file",
    )


# What ssh-keygen(1) says when its answer is "no" (ssh-keygen.c, sshsig.c): anything else
# from a run that did not succeed (killed, out of memory, a broken install) is no verdict.
_NO_PRINCIPAL = "No principal matched"
_COULD_NOT_VERIFY = "Could not verify signature"


def _ssh_verdict(result: subprocess.CompletedProcess[bytes], refusal: str) -> bool:
    """True for "Good ... signature", False for ssh-keygen's own "no" (`refusal`); a run
    killed, or failing without either line, raises `SignatureCheckFailed`: it says nothing
    about the commit, which is checked again at the next poll."""
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    if result.returncode == 0 and (refusal == _NO_PRINCIPAL or out.startswith("Good")):
        return True
    if result.returncode > 0 and (refusal in err or refusal in out):
        return False
    raise _no_verdict("ssh-keygen", result)


def _no_verdict(tool: str, result: subprocess.CompletedProcess[bytes]) -> SignatureCheckFailed:
    how = (
        f"killed by signal {-result.returncode}"
        if result.returncode < 0
        else f"exit status {result.returncode} without a verdict: {_first_line(result.stderr)}"
    )
    return SignatureCheckFailed(f"cannot check commit signatures: `{tool}` failed ({how})")


def _listed_fingerprints(allowed_signers: bytes) -> set[str]:
    """SHA256 fingerprints of the keys in an allowed_signers file (as ssh-keygen -l shows:
    unpadded base64 of the SHA-256 of the key blob)."""
    found = set()
    for match in _SSH_PUBLIC_KEY.finditer(allowed_signers.decode("utf-8", "replace")):
        try:
            blob = base64.b64decode(match.group(1), validate=True)
        except ValueError:
            continue
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        found.add(f"SHA256:{digest}")
    return found


def _ssh_fingerprint(output: bytes) -> str | None:
    match = _SSH_FINGERPRINT.search(output.decode("utf-8", "replace"))
    return match.group(1) if match else None


# -- OpenPGP ------------------------------------------------------------------------------


@contextlib.contextmanager
def _gpg_home() -> Iterator[str]:
    """A throw-away GNUPGHOME (mode 0700, as gpg requires), removed afterwards."""
    path = tempfile.mkdtemp(prefix="ssm-gitops-gpg-")
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _verify_gpg(
    commit: str, signature: bytes, payload: bytes, keys: TrustedKeys, keyring_bytes: bytes
) -> Signer:
    with _gpg_home() as home:
        keyring = Path(home) / "trusted.asc"
        keyring.write_bytes(keyring_bytes)
        sig = Path(home) / "commit.sig"
        sig.write_bytes(signature)
        imported = _run(["gpg", "--homedir", home, *_GPG_QUIET, "--import", str(keyring)], None)
        if imported.returncode != 0:
            raise SignatureCheckFailed(
                f"commit {commit[:12]}: cannot check its GPG signature: gpg could not import "
                f"{keys.gpg_keyring_file} ({_first_line(imported.stderr)})"
            )
        verified = _run(
            [
                "gpg",
                "--homedir",
                home,
                *_GPG_QUIET,
                "--trust-model",
                "always",  # trust is decided below: the fingerprint must be listed
                "--status-fd",
                "1",
                "--verify",
                str(sig),
                "-",
            ],
            payload,
        )
    status: dict[str, list[list[str]]] = {}
    for line in verified.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *args = line.removeprefix("[GNUPG:] ").split(" ")
            status.setdefault(keyword, []).append(args)
    said = verified.stderr.decode("utf-8", "replace")
    judged = _GPG_VERDICTS.intersection(status) or any(r in said for r in _GPG_REFUSALS)
    if verified.returncode < 0 or not judged:
        # Killed mid-way, or failed before saying anything about the signature (out of
        # memory, a broken install): no verdict on the commit, checked again next poll.
        raise _no_verdict("gpg", verified)
    if "BADSIG" in status:
        raise _refused(
            commit,
            "bad GPG signature (the commit does not match its signature)",
            "do not trust this commit; re-sign it with a listed key",
        )
    for keyword, reason in (
        ("EXPKEYSIG", "signed by a GPG key that has expired"),
        ("REVKEYSIG", "signed by a GPG key that was revoked"),
        ("EXPSIG", "its GPG signature has expired"),
    ):
        if keyword in status:
            key = status[keyword][0][0] if status[keyword][0] else "?"
            raise _refused(commit, f"{reason} ({key})", "sign it with a valid listed key")
    if "ERRSIG" in status or "NO_PUBKEY" in status:
        key = (status.get("ERRSIG") or status.get("NO_PUBKEY") or [["?"]])[0][0]
        raise _refused(
            commit,
            f"signed by a GPG key that --trusted-gpg-keys-file does not list ({key})",
            "add that public key to the file if you trust it, or sign with a listed key",
        )
    valid = status.get("VALIDSIG", [])
    good = status.get("GOODSIG", [])
    if verified.returncode != 0 or not valid or not good:
        raise _refused(
            commit,
            "its GPG signature could not be verified",
            "re-sign it with a key of --trusted-gpg-keys-file",
        )
    # VALIDSIG <fpr> <date> <timestamp> <expire> <version> <reserved> <pk-algo> <hash-algo>
    # <sig-class> [<primary-key-fpr>]: the primary key is what the keyring lists.
    for args in valid:
        primary = (args[9] if len(args) > 9 else args[0]).upper()
        if primary not in keys.gpg_fingerprints:
            raise _refused(
                commit,
                f"signed by a GPG key that --trusted-gpg-keys-file does not list ({primary})",
                "add that public key to the file if you trust it, or sign with a listed key",
            )
    identity = " ".join(good[0][1:]) if good[0] else "?"
    primary = valid[0][9] if len(valid[0]) > 9 else valid[0][0]
    return Signer("gpg", identity, primary.upper())


# The status lines that say something about the signature (gpg's doc/DETAILS; NODATA and
# BADARMOR: what was given is no signature), and what gpg says on stderr when the
# "signature" is another kind of OpenPGP message (no status line then).
_GPG_VERDICTS = frozenset(
    {
        "GOODSIG",
        "VALIDSIG",
        "BADSIG",
        "ERRSIG",
        "EXPSIG",
        "EXPKEYSIG",
        "REVKEYSIG",
        "NO_PUBKEY",
        "NODATA",
        "BADARMOR",
    }
)
_GPG_REFUSALS = ("not a detached signature", "no signature found")


# -- helpers -------------------------------------------------------------------------------


def _run(command: list[str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            command,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SignatureCheckFailed(
            f"cannot check commit signatures: `{command[0]}` failed ({error})"
        ) from error


def _first_line(text: bytes) -> str:
    lines = text.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "no message"


def _refused(commit: str, reason: str, todo: str) -> SignatureError:
    return SignatureError(
        f"commit {commit[:12]} refused by --verify-signatures: {reason} ({todo}); "
        "nothing from it is applied"
    )
