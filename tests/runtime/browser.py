"""Headless Chromium for the status page tests: the rendered DOM and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The flags that work on a machine without network and as root (see the machine notes):
# no sandbox, no GPU, and none of Chromium's own background connections.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (scripts/setup --test installs it)")
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )


def dump_dom(url: str) -> str:
    """The page's DOM after Chromium rendered it."""
    return _run(["--dump-dom", url]).stdout


def screenshot(url: str, out: Path, size: tuple[int, int] = (1280, 1100)) -> Path:
    _run([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", url])
    assert out.exists() and out.stat().st_size > 1000, "chromium wrote no screenshot"
    return out
