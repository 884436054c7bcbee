"""sample-repo stays realistic and small: real shell scripts, a small footprint."""

from __future__ import annotations

import subprocess

from tests.repository.conftest import SAMPLE_REPO


def test_every_shell_script_parses() -> None:
    scripts = [
        path
        for path in SAMPLE_REPO.rglob("*")
        if path.is_file() and path.read_bytes().startswith(b"#!/bin/sh")
    ]
    assert len(scripts) >= 15
    for script in scripts:
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert script.stat().st_mode & 0o100, f"{script} should be executable"


def test_the_sample_repository_is_small() -> None:
    total = sum(path.stat().st_size for path in SAMPLE_REPO.rglob("*") if path.is_file())
    assert total < 1_000_000
