"""Fixtures of the spec tests: the sample repository and a writer of tiny repositories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE_REPO = PROJECT / "sample-repo"
SCRIPT = "#!/bin/sh\nset -eu\necho ok\n"

RepoWriter = Callable[[dict[str, str]], Path]


@pytest.fixture
def write_repo(tmp_path: Path) -> RepoWriter:
    """Write `{relative path: text}` under a fresh folder and return the folder."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "repo"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if name.endswith(".sh"):
                path.chmod(0o755)
        root.mkdir(exist_ok=True)
        return root

    return write


def package_yaml(name: str = "demo-agent", versions: tuple[str, ...] = ("1.0",)) -> str:
    """A valid Package document whose versions all use the folder `pkg/<version>`."""
    lines = [
        "apiVersion: ssm-gitops/v1",
        "kind: Package",
        f"metadata: {{name: {name}}}",
        "spec:",
        f'  defaultVersion: "{versions[0]}"',
        "  versions:",
    ]
    for version in versions:
        lines += [
            f'    - name: "{version}"',
            "      files:",
            f"        - {{platform: amazon, arch: x86_64, source: pkg/{version}}}",
        ]
    return "\n".join(lines) + "\n"


def package_files(versions: tuple[str, ...] = ("1.0",)) -> dict[str, str]:
    files = {}
    for version in versions:
        files[f"pkg/{version}/install.sh"] = SCRIPT
        files[f"pkg/{version}/uninstall.sh"] = SCRIPT
    return files
