"""The command line itself: version, help, and duration flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from controller import __version__
from controller.cli import build_parser, parse_duration


def test_version_is_printed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "controller", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"ssm-gitops {__version__}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("30s", 30.0), ("1m", 60.0), ("10m", 600.0), ("1h30m", 5400.0), ("0.5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1x", "-1m", "1m1h"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(Exception, match="invalid duration"):
        parse_duration(text)


def test_run_flags_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSM_GITOPS_REPO", "/srv/repo")
    monkeypatch.setenv("SSM_GITOPS_INTERVAL", "30s")
    monkeypatch.setenv("SSM_GITOPS_DRY_RUN", "true")
    args = build_parser().parse_args(["run"])
    assert (args.repo, args.interval, args.dry_run) == ("/srv/repo", 30.0, True)


def test_a_closed_pipe_is_not_a_traceback() -> None:
    """Regression: `ssm-gitops plan --json | head` printed a BrokenPipeError traceback."""
    # `true` exits without reading, so every write of ours meets a closed pipe.
    result = subprocess.run(
        f"'{sys.executable}' -m controller schema | true; echo \"${{PIPESTATUS[0]}}\"",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.stdout.strip() == "141"


@pytest.mark.parametrize("command", ["local", "demo"])
def test_local_and_demo_without_the_emulator_say_how_to_install_it(command: str) -> None:
    """Regression (issue 10): moto was a runtime dependency so that `local` and `demo` could
    run, and the controller's image carried the emulator (654 MB). Now it is the `local`
    extra; without it these two commands say in one line how to install it."""
    code = (
        "import sys; sys.modules['moto'] = None  # as if the `local` extra were not installed\n"
        "from controller.cli import main\n"
        f"raise SystemExit(main([{command!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"ssm-gitops: `ssm-gitops {command}` needs the embedded")
    assert "pip install 'ssm-gitops[local]'" in result.stderr


def test_every_error_line_has_the_one_prefix() -> None:
    """Regression (issue 10): error prefixes differed: `ssm-gitops: ...` from most
    commands, `error: ...` from plan/apply, argparse's usage plus `PROG: error: ...`."""
    usage = subprocess.run(
        [sys.executable, "-m", "controller", "plan"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2
    assert usage.stderr == (
        "ssm-gitops: plan: the following arguments are required: --repo "
        "(see `ssm-gitops plan --help`)\n"
    )
    unknown = subprocess.run(
        [sys.executable, "-m", "controller", "nope"], capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert unknown.stderr.startswith("ssm-gitops: argument COMMAND: invalid choice: 'nope'")
