"""The repository works on any machine: no tracked file names one developer's absolute
paths, and pytest collects every test file that git tracks.

Where it sits: a check over the whole checkout (like tests/test_quality.py), not over one
stage of the pipeline.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Absolute paths that exist on one developer's machine only. The lookbehind keeps URLs,
# relative paths (`.venv/bin/python`) and longer paths (`/srv/work/`) out.
_START = r"(?<![\w.~/:-])"
_MACHINE_PATH = re.compile(
    _START
    + r"(?:"
    + r"/work/"  # the shared build machine's checkouts and venvs
    + r"|/root/"  # root's home
    + r"|/home/[\w.-]+/"  # a user's home on Linux
    + r"|/Users/[\w.-]+/"  # a user's home on macOS
    + r"|/private/var/folders/"  # macOS per-user temp folders
    + r"|/(?!opt/)[\w./-]*\bvenv/bin/"  # a virtualenv outside the image's /opt
    + r")"
)

# (file, or folder ending in "/"; the path's text) that names such a path on purpose.
_ALLOWED = {
    # The fleet's sandbox escape tests check that a script could NOT write into the host's
    # /root (a path on every Linux host, not a developer's).
    ("tests/local/fleet/", "/root/"),
    # An invented OSError text: the path is data, no file is ever opened there.
    ("tests/reconcile/test_desired.py", "/work/build"),
}
# Pinned third-party data (hashes), and this file (its patterns and examples).
_SKIPPED = ("requirements.lock", "requirements-demo.lock", "tests/test_repository_hygiene.py")


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in out.split("\0") if name]


def machine_paths(name: str, text: str) -> list[str]:
    """`file:line: text` for every developer-machine path in `text` not allow-listed."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _MACHINE_PATH.finditer(line):
            rest = line[match.start() :]
            if any(
                (name == file or (file.endswith("/") and name.startswith(file)))
                and rest.startswith(ok)
                for file, ok in _ALLOWED
            ):
                continue
            found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_tracked_file_names_an_absolute_path_of_a_developer_machine() -> None:
    """Regression (issue 10): tests/local/conformance/conftest.py ran the AWS CLI from an
    absolute venv path that exists on one machine only (docs/local.md and the benchmarks'
    docstrings named it too), so 7 tests failed on every fresh clone."""
    found: list[str] = []
    for name in _tracked_files():
        path = ROOT / name
        if name.endswith(_SKIPPED) or not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary fixtures (zips, images)
        found.extend(machine_paths(name, text))
    assert not found, "absolute paths of one machine:\n" + "\n".join(found)


def test_the_path_check_tells_machine_paths_from_legitimate_ones() -> None:
    flagged = [
        "/" + "work/venv/bin/aws",  # split so that this file names no such path itself
        "cd /root/ssm-gitops",
        "/home/alice/src/x",
        "/Users/bob/x",
        "/srv/ci/.venv/bin/python",
    ]
    fine = [
        ".venv/bin/ssm-gitops",
        "/opt/ssm-gitops/venv/bin/pip",
        "https://example.com/work/x",
        "/home/cloudsdk:/bin/bash",
        "/etc/ssl/certs/ca-certificates.crt",
        "/tmp/x",
        "/srv/work/x",
    ]
    assert [line for line in flagged if not machine_paths("x", line)] == []
    assert [line for line in fine if machine_paths("x", line)] == []


def _collected_test_files() -> set[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "tests",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {line.split("::", 1)[0] for line in result.stdout.splitlines() if "::" in line}


def test_pytest_collects_every_tracked_test_file() -> None:
    """Regression (issue 10): pytest never collected tests/packaging/ (26 tests), because
    `build` is in pytest's default `norecursedirs`, and nothing noticed."""
    tracked = {
        name
        for name in _tracked_files()
        if name.startswith("tests/") and re.fullmatch(r"test_\w+\.py", Path(name).name)
    }
    missing = sorted(tracked - _collected_test_files())
    assert not missing, "test files pytest does not collect: " + ", ".join(missing)


def test_readme_starts_with_the_two_commands_and_ci_runs_the_tests() -> None:
    """The README's first lines are what a new user runs, and CI runs exactly the second."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = [line.split("#", 1)[0].strip() for line in lines[2:4]]
    assert lines[0].startswith("# ") and lines[1] == "" and lines[4] == ""
    assert commands == ["scripts/demo", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "scripts/test" in [line.strip() for line in ci]
