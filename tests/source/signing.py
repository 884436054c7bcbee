"""Real signing keys and signed commits for the signature tests (no fakes of the crypto).

SSH keys come from `ssh-keygen -t ed25519`, OpenPGP keys from `gpg --quick-gen-key` in a
throw-away GNUPGHOME, and commits are made and signed by the git CLI itself
(`gpg.format=ssh` / `user.signingkey`), exactly as a user's would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = ("git", "ssh-keygen", "gpg", "gpgconf")


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (packages git, openssh-client, gnupg)")


@dataclass(frozen=True)
class SshKey:
    private: Path
    public: str  # "ssh-ed25519 AAAA... comment"


@dataclass(frozen=True)
class GpgKey:
    home: Path  # the GNUPGHOME holding its secret key
    email: str
    fingerprint: str

    def export(self) -> bytes:
        """The armored public key: what --trusted-gpg-keys-file holds."""
        return subprocess.run(
            ["gpg", "--batch", "--armor", "--export", self.fingerprint],
            env={**os.environ, "GNUPGHOME": str(self.home)},
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout


def make_ssh_key(directory: Path, name: str) -> SshKey:
    private = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(private)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return SshKey(private, (directory / f"{name}.pub").read_text().strip())


def gpg_home() -> Path:
    """A short-pathed GNUPGHOME (gpg-agent's socket path must stay under 108 bytes)."""
    home = Path(tempfile.mkdtemp(prefix="gpg-"))
    home.chmod(0o700)
    return home


def make_gpg_key(home: Path, name: str, email: str) -> GpgKey:
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"{name} <{email}>"]
        + ["ed25519", "sign", "never"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    listed = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", email],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout.decode()
    fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line[:4] == "fpr:")
    return GpgKey(home, email, fingerprint)


def stop_gpg(home: Path) -> None:
    """Stop the gpg-agent that key generation and signing started, then remove the home."""
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30
    )
    shutil.rmtree(home, ignore_errors=True)


def _git_env(home: Path, gnupg: Path | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # no user config
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    if gnupg is not None:
        env["GNUPGHOME"] = str(gnupg)
    return env


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "-q", "-b", "main", str(path)],
        env=_git_env(path.parent, None),
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def git_commit(
    repo: Path,
    files: dict[str, str | None],
    message: str,
    signer: SshKey | GpgKey | None = None,
) -> str:
    """Write (None: delete) `files`, commit everything with the git CLI, signed by `signer`."""
    for name, content in files.items():
        target = repo / name
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    config: list[str] = []
    gnupg = None
    if isinstance(signer, SshKey):
        config = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signer.private}"]
    elif isinstance(signer, GpgKey):
        config = ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={signer.fingerprint}"]
        gnupg = signer.home
    env = _git_env(repo.parent, gnupg)
    run = {"cwd": repo, "env": env, "check": True, "capture_output": True, "timeout": 60}
    subprocess.run(["git", "add", "-A"], **run)  # type: ignore[call-overload]
    sign = ["-S"] if signer is not None else ["--no-gpg-sign"]
    subprocess.run(
        ["git", *config, "commit", "-q", "--allow-empty", *sign, "-m", message],
        **run,  # type: ignore[call-overload]
    )
    head = subprocess.run(["git", "rev-parse", "HEAD"], **run)  # type: ignore[call-overload]
    return str(head.stdout.decode().strip())
