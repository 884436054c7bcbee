"""scripts/setup, which scripts/demo and scripts/test (the README's two commands) run first.

Where it sits: outside the pipeline; the scripts make the virtualenv everything else runs
in. These tests run a copy of the script against a stand-in virtualenv whose `python`
only records how it was called, so they take a second and touch no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with scripts/setup, pyproject.toml and a stand-in .venv; a PATH on which
    `dpkg-query` says every Debian package is installed (so nothing goes to apt)."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup", checkout / "scripts" / "setup")
    shutil.copy2(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    calls = tmp_path / "pip-calls"
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (venv_bin / "python").chmod(0o755)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    (tools / "dpkg-query").chmod(0o755)
    return checkout, tools


def _setup(checkout: Path, tools: Path, *argv: str) -> None:
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    subprocess.run([str(checkout / "scripts" / "setup"), *argv], env=env, check=True, timeout=60)


def _installs(tmp_path: Path) -> list[str]:
    calls = tmp_path / "pip-calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line for line in lines if "install -q -e" in line]


def test_setup_skips_pip_when_the_venv_is_up_to_date(tmp_path: Path) -> None:
    """Regression (issue 10): scripts/demo reinstalled everything with pip on every start."""
    checkout, tools = _checkout(tmp_path)
    _setup(checkout, tools)
    assert _installs(tmp_path) == ["-m pip install -q -e .[local]"]
    _setup(checkout, tools)
    assert len(_installs(tmp_path)) == 1  # nothing changed: no pip
    _setup(checkout, tools, "--test")  # more extras: pip, keeping what was there
    assert _installs(tmp_path)[1:] == ["-m pip install -q -e .[local,test]"]
    _setup(checkout, tools)  # fewer extras than installed: nothing to do
    _setup(checkout, tools, "--test")
    assert len(_installs(tmp_path)) == 2
    with (checkout / "pyproject.toml").open("a") as file:
        file.write("\n# a changed dependency\n")
    _setup(checkout, tools, "--test")  # pyproject.toml changed: pip again
    assert len(_installs(tmp_path)) == 3


def test_setup_for_the_tests_installs_prometheus(tmp_path: Path) -> None:
    """Issue 16: promtool and the Prometheus server come from Debian's `prometheus`, which
    `scripts/setup --test` (what scripts/test and CI run) installs like the other tools; the
    demo's setup does not. Root, dpkg and apt-get are stand-ins that record the request."""
    checkout, tools = _checkout(tmp_path)
    requested = tmp_path / "apt-calls"
    (tools / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")  # nothing installed yet
    (tools / "id").write_text("#!/bin/sh\necho 0\n")
    (tools / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {requested}\n')
    for name in ("id", "apt-get"):
        (tools / name).chmod(0o755)

    def installed() -> list[str]:
        lines = requested.read_text().splitlines() if requested.exists() else []
        return [word for line in lines if line.startswith("install") for word in line.split()]

    _setup(checkout, tools)
    assert "prometheus" not in installed()
    _setup(checkout, tools, "--test")
    assert "prometheus" in installed()


def test_setup_reinstalls_a_package_removed_with_its_configuration_kept(tmp_path: Path) -> None:
    """Bug (a newcomer's fresh run): `apt-get remove prometheus` keeps its configuration, and
    `dpkg -s` still succeeds for such a package (status "deinstall ok config-files"), so
    setup never installed it again and every Prometheus test failed. Only "install ok
    installed" counts as installed."""
    checkout, tools = _checkout(tmp_path)
    requested = tmp_path / "apt-calls"
    (tools / "dpkg-query").write_text(
        '#!/bin/sh\nfor last; do :; done\n'
        'if [ "$last" = prometheus ]; then printf "deinstall ok config-files"; '
        'else printf "install ok installed"; fi\n'
    )
    (tools / "dpkg").write_text("#!/bin/sh\nexit 0\n")  # what the old check asked
    (tools / "id").write_text("#!/bin/sh\necho 0\n")
    (tools / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {requested}\n')
    for name in ("dpkg", "id", "apt-get"):
        (tools / name).chmod(0o755)
    _setup(checkout, tools, "--test")
    lines = requested.read_text().splitlines() if requested.exists() else []
    installs = [line.split() for line in lines if line.startswith("install")]
    assert installs and installs[0][-1:] == ["prometheus"], lines


def test_the_demo_copy_can_be_committed_to_without_a_git_identity(tmp_path: Path) -> None:
    """Bug (a newcomer's fresh run): on a machine with no git identity, the README's first
    step, `git commit -am ...` in the demo's copy, failed with "Author identity unknown".
    The copy now carries an identity of its own when the user has none."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    script = (
        "import sys; from pathlib import Path; from controller.demo import prepare_repository; "
        "print(prepare_repository(Path(sys.argv[1]), Path(sys.argv[2])).edit_dir)"
    )
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "a.yaml").write_text("# nothing yet\n")
    made = subprocess.run(
        [sys.executable, "-c", script, str(sample), str(tmp_path / "scratch")],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    copy = Path(made)
    (copy / "a.yaml").write_text("# an edit\n")
    committed = subprocess.run(
        ["git", "commit", "-qam", "an edit"], cwd=copy, env=env, capture_output=True, text=True
    )
    assert committed.returncode == 0, committed.stderr
