"""The command line itself: version, help, and duration flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from controller import __version__
from controller.cli import build_parser, main, parse_duration


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


@pytest.mark.parametrize("variable", ["SSM_GITOPS_VERIFY_SIGNATURES", "SSM_GITOPS_DRY_RUN"])
@pytest.mark.parametrize("value", ["ture", "enabled", "2"])
def test_a_boolean_environment_flag_neither_true_nor_false_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    """Bug: `SSM_GITOPS_VERIFY_SIGNATURES=ture` (any value but 1/true/yes/on) silently meant
    "off": a typo turned signature checking off without a word. Now `run` refuses to start."""
    import controller.runtime.commands as commands

    started: list[object] = []
    monkeypatch.setattr(commands, "run_command", lambda args: started.append(args) or 0)
    monkeypatch.setenv("SSM_GITOPS_REPO", "/srv/repo")
    monkeypatch.setenv(variable, value)
    assert main(["run"]) == 1 and started == []
    assert capsys.readouterr().err == (
        f"ssm-gitops: {variable}={value!r} is neither true nor false: set it to true or false "
        "(or 1/0, yes/no, on/off), or unset it\n"
    )


@pytest.mark.parametrize(
    ("value", "meant"),
    [("1", True), ("On", True), ("YES", True), (" true ", True), ("", False), ("off", False)],
)
def test_a_boolean_environment_flag_takes_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, value: str, meant: bool
) -> None:
    import controller.runtime.commands as commands

    seen: list[bool] = []
    monkeypatch.setattr(commands, "run_command", lambda args: seen.append(args.dry_run) or 0)
    monkeypatch.setenv("SSM_GITOPS_REPO", "/srv/repo")
    monkeypatch.setenv("SSM_GITOPS_DRY_RUN", value)
    assert main(["run"]) == 0 and seen == [meant]


@pytest.mark.parametrize("command", ["plan", "apply", "run"])
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("", "the owner name is empty"),
        ("n" * 300, "the owner name is 300 characters long, over the 256 of a tag value"),
        ("a,b#", "the owner name 'a,b#' holds ','"),
    ],
    ids=["empty", "300-characters", "comma-and-hash"],
)
def test_an_owner_name_aws_refuses_as_a_tag_value_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    name: str,
    said: str,
) -> None:
    """Bug: `--name` was not checked: `--name ''`, a 300-character name or `--name 'a,b#'`
    went on to fail at the first tagged AWS call (or tagged nothing); now each is refused
    at startup, one line naming --name (API_Tag's value rules)."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--repo", "/srv/repo", "--name", name])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ssm-gitops: {command}: argument --name: {said}"), err
    assert err.count("\n") == 1
    if command == "run":  # the same check for SSM_GITOPS_NAME
        monkeypatch.setenv("SSM_GITOPS_NAME", name)
        with pytest.raises(SystemExit):
            main(["run", "--repo", "/srv/repo"])
        assert f"argument --name: {said}" in capsys.readouterr().err


def test_an_owner_name_within_the_tag_rules_is_taken_as_is() -> None:
    name = "Team A/ops:prod=blue+green@eu_1.x-" + "é" * 10
    assert build_parser().parse_args(["plan", "--repo", "r", "--name", name]).name == name
    assert build_parser().parse_args(["plan", "--repo", "r", "--name", "n" * 256]).name
