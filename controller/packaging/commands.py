"""`ssm-gitops build PATH --out DIR`: every version's zips and manifest.json into DIR.

Writes `DIR/<package>/<version>/<zip>` and `.../manifest.json` and nothing else (no build
stamps: DIR is what a user syncs to S3), and prints one line per zip:
`package version file sha256`. Exit 0, or 1 with the problems on standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from controller.errors import UserError
from controller.packaging.builder import build_version
from controller.repository.errors import SpecErrors
from controller.repository.loader import load_repository


def build_command(args: argparse.Namespace) -> int:
    try:
        repo = load_repository(Path(args.path))
    except SpecErrors as invalid:
        for error in invalid.errors:
            print(error, file=sys.stderr)
        return 1
    out = _writable_out(Path(args.out))
    for package in repo.packages:
        for version in package.versions:
            directory = out / package.name / version.name
            built = build_version(repo, package, version, directory, stamps=False)
            (directory / "manifest.json").write_bytes(built.manifest + b"\n")
            for file in built.files:
                print(f"{package.name} {version.name} {file.name} {file.sha256}")
    return 0


def _writable_out(out: Path) -> Path:
    """Check --out once, before building anything: a bad folder is the flag's fault, not
    the YAML's, so the one-line error names --out."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder: give a folder to write into")
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=out)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise UserError(
            f"--out {out}: cannot write there ({error.strerror or error}): give a writable folder"
        ) from None
    return out
