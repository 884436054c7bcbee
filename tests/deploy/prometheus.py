"""Debian's `prometheus` package for the tests: `promtool` (alert rule checks and unit tests)
and the server (the dashboard and alerts against a real Prometheus, tests/e2e).

`scripts/setup --test` installs the package as root with apt, as it installs the other
tools the suite needs; without it a test fails (it could have been installed) unless this
machine truly cannot install Debian packages, where it is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil

import pytest

PACKAGE = "prometheus"


def tool(name: str) -> str:
    """The path of `promtool` or `prometheus`; fails or skips (see the module) without it."""
    path = shutil.which(name)
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{name} not found: run scripts/setup --test (installs Debian's {PACKAGE})")
    pytest.skip(f"{name} not found; installing Debian's {PACKAGE} needs root with apt")
