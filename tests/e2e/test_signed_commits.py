"""`--verify-signatures` end to end: the real controller process, real keys, real SSM.

Keys are made here (`ssh-keygen -t ed25519`, `gpg --quick-gen-key`) and commits are signed
by the git CLI. A commit signed by a trusted key applies; an unsigned commit and one signed
by an unknown key change nothing and are reported (/status, metrics, the log); plan and a
controller with a missing key file stop with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_controller import client, live_default, live_versions
from tests.runtime import samples
from tests.runtime.gitrepo import GitRepo
from tests.runtime.processes import (
    ROOT,
    Controller,
    Process,
    free_port,
    http_get,
    http_post,
    wait_for_port,
    wait_until,
)
from tests.source.signing import (
    GpgKey,
    SshKey,
    git_commit,
    gpg_home,
    make_gpg_key,
    make_ssh_key,
    require_tools,
    stop_gpg,
)

POLL = 1.0  # --interval of the controller here (seconds)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    process = Process(["local", "--port", str(port)], tmp_path_factory.mktemp("local") / "log")
    try:
        wait_for_port(port, 30, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    reset = http_post(endpoint + "/_local/reset", b"{}", {"Content-Type": "application/json"})
    assert reset == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    client("s3", endpoint).create_bucket(Bucket=samples.BUCKET)
    return endpoint


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshKey, SshKey, GpgKey]]:
    """alice (SSH) and carol (GPG) are trusted; mallory (SSH) is nobody we know."""
    require_tools()
    directory = tmp_path_factory.mktemp("keys")
    home = gpg_home()
    try:
        yield (
            make_ssh_key(directory, "alice"),
            make_ssh_key(directory, "mallory"),
            make_gpg_key(home, "Carol", "carol@example.com"),
        )
    finally:
        stop_gpg(home)


def trust(tmp_path: Path, alice: SshKey, carol: GpgKey) -> list[str]:
    """The flags that trust alice's SSH key and carol's GPG key."""
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example.com {alice.public}\n")
    keyring = tmp_path / "trusted.asc"
    keyring.write_bytes(carol.export())
    return [
        "--verify-signatures",
        "--allowed-signers-file",
        str(allowed),
        "--trusted-gpg-keys-file",
        str(keyring),
    ]


def start(tmp_path: Path, repo: Path, flags: list[str]) -> Controller:
    port = free_port()
    process = Process(
        [
            "run",
            "--repo",
            str(repo),
            "--listen",
            f"127.0.0.1:{port}",
            "--interval",
            f"{POLL:g}s",
            "--resync-interval",
            "10m",
            "--cache-dir",
            str(tmp_path / "cache"),
            *flags,
        ],
        tmp_path / "run.log",
    )
    wait_for_port(port, 30, process)
    return Controller(process, port)


def files(versions: list[str]) -> dict[str, str | None]:
    return samples.repository(versions, with_association=False)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_only_commits_signed_by_a_trusted_key_are_applied(
    aws: str, tmp_path: Path, keys: tuple[SshKey, SshKey, GpgKey]
) -> None:
    """Bug guarded (issue 11): any commit at the head was applied, signed or not."""
    alice, mallory, carol = keys
    repo = GitRepo(tmp_path / "repo").path
    first = git_commit(repo, files(["1.0.0"]), "agent 1.0.0, signed by alice", alice)
    c = start(tmp_path, repo, trust(tmp_path, alice, carol))
    try:
        status = c.wait_for_applied(first, 30)
        assert status["last_pass"]["result"] == "success", c.process.output()
        assert live_versions(aws) == ["1.0.0"]

        # An unsigned commit, then one signed by an unknown key: nothing of either applies.
        for signer, version, said in (
            (None, "1.1.0", "not signed"),
            (mallory, "1.2.0", "signed by an SSH key that --allowed-signers-file does not list"),
        ):
            versions = ["1.0.0", version]
            refused = git_commit(repo, files(versions), f"agent {version}", signer)

            def reported(commit: str = refused) -> dict[str, Any] | None:
                s = c.status()
                shown = s["fetched"] and s["fetched"]["commit"] == commit
                return s if shown and any(commit[:12] in e["text"] for e in s["errors"]) else None

            status = wait_until(reported, POLL + 15, f"the refusal of {refused[:12]}")
            assert status["config_valid"] is False
            assert status["revision"]["commit"] == first  # the last good revision stays
            [error] = status["errors"]
            assert error["reason"] == "signature", error
            assert error["text"].startswith(f"commit {refused[:12]} refused by "), error
            assert said in error["text"], error
            assert c.metric("config_valid") == 0
            time.sleep(POLL + 0.5)  # another poll: still nothing of the refused commit
            assert live_versions(aws) == ["1.0.0"] and live_default(aws) == "1.0.0"
            assert c.status()["last_pass"]["revision"] == first
            logged = [
                json.loads(line)
                for line in c.process.output().splitlines()
                if line.startswith("{") and refused in line
            ]
            assert any(
                e["event"] == "load" and e["reason"] == "signature" and said in e["message"]
                for e in logged
            ), logged
        assert c.metric("pass_errors_total", reason="signature") == 2
        assert "refused by --verify-signatures" in http_get(c.url + "/")[1]  # the error box

        # A commit signed by a trusted GPG key applies again, and clears the errors.
        signed = git_commit(repo, files(["1.0.0", "2.0.0"]), "agent 2.0.0, by carol", carol)
        status = c.wait_for_applied(signed, 30)
        assert status["config_valid"] is True and status["errors"] == []
        assert live_versions(aws) == ["1.0.0", "2.0.0"] and live_default(aws) == "2.0.0"
        loaded = [
            json.loads(line)
            for line in c.process.output().splitlines()
            if line.startswith("{") and '"result": "valid"' in line
        ]
        assert loaded[-1]["signature"].startswith("gpg signature of Carol"), loaded[-1]
        assert c.process.proc.poll() is None  # it kept running throughout
    finally:
        c.process.stop()


def test_plan_refuses_an_untrusted_head_with_one_line(
    aws: str, tmp_path: Path, keys: tuple[SshKey, SshKey, GpgKey]
) -> None:
    alice, mallory, carol = keys
    repo = GitRepo(tmp_path / "repo").path
    flags = trust(tmp_path, alice, carol)
    git_commit(repo, files(["1.0.0"]), "agent 1.0.0", alice)
    good = run_cli("plan", "--repo", str(repo), *flags)
    assert good.returncode == 2, good.stderr  # changes to make: the signature passed
    assert "good ssh signature of alice@example.com" in good.stderr

    head = git_commit(repo, files(["1.0.0"]), "the same, signed by mallory", mallory)
    for command in ("plan", "apply"):
        refused = run_cli(command, "--repo", str(repo), *flags)
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith(f"ssm-gitops: commit {head[:12]} refused by ")
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert live_versions(aws) == []


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--verify-signatures", "--allowed-signers-file", "missing"], "missing: cannot read"),
        (["--verify-signatures"], "--verify-signatures needs the trusted keys"),
    ],
)
def test_a_missing_key_file_stops_the_start_with_one_line(
    tmp_path: Path, flags: list[str], said: str
) -> None:
    repo = GitRepo(tmp_path / "repo").path
    git_commit(repo, files(["1.0.0"]), "unsigned")
    port = free_port()
    started = run_cli("run", "--repo", str(repo), "--listen", f"127.0.0.1:{port}", *flags)
    assert started.returncode == 1
    assert started.stderr.startswith("ssm-gitops: ") and said in started.stderr
    assert started.stderr.count("\n") == 1, started.stderr
