"""`ssm-gitops run` flags -> Options, and the one-line errors a user can cause."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import build_parser
from controller.errors import UserError
from controller.runtime.commands import options_from
from tests.runtime.processes import ROOT, free_port


def parse(*argv: str) -> object:
    return build_parser().parse_args(["run", "--repo", "/srv/repo", *argv])


def test_flags_become_options(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    o = options_from(
        parse(
            "--listen",
            "127.0.0.1:9000",
            "--interval",
            "30s",
            "--resync-interval",
            "5m",
            "--webhook-secret-file",
            str(secret),
            "--dry-run",
            "--path",
            "ssm",
            "--name",
            "prod",
            "--cache-dir",
            str(tmp_path),
        )  # type: ignore[arg-type]
    )
    assert (o.host, o.port, o.poll_interval, o.resync_interval) == ("127.0.0.1", 9000, 30, 300)
    assert (o.webhook_secret, o.dry_run, o.path, o.owner) == (b"s3cret", True, "ssm", "prod")
    assert o.cache_dir == tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "nowhere"], "--listen 'nowhere': use HOST:PORT"),
        (["--webhook-secret-file", "/nonexistent/secret"], "/nonexistent/secret: cannot read"),
        (["--interval", "0"], "--interval and --resync-interval must be more than 0"),
    ],
)
def test_user_mistakes_are_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        options_from(parse(*argv))  # type: ignore[arg-type]


def test_empty_webhook_secret_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "secret"
    empty.write_text("\n")
    with pytest.raises(UserError, match="the webhook secret file is empty"):
        options_from(parse("--webhook-secret-file", str(empty)))  # type: ignore[arg-type]


def test_a_busy_port_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import socket

    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                "run",
                "--repo",
                str(tmp_path),
                "--listen",
                f"127.0.0.1:{port}",
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ssm-gitops: --listen 127.0.0.1:{port}: cannot listen"), done.stderr
    assert "Traceback" not in done.stderr
