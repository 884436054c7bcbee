"""`ssm-gitops validate PATH` and `ssm-gitops schema`.

`validate` prints every problem as `path:line:col: message` on standard error and exits
1, or prints one summary line (`sample-repo: 3 packages, 6 versions, 4 associations:
valid`) and exits 0. `schema` prints the JSON Schema (or writes it with `--out`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.repository.errors import SpecErrors
from controller.repository.loader import load_repository
from controller.repository.schema import schema_text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def validate_command(args: argparse.Namespace) -> int:
    try:
        repo = load_repository(Path(args.path))
    except SpecErrors as invalid:
        for error in invalid.errors:
            print(error, file=sys.stderr)
        return 1
    versions = sum(len(package.versions) for package in repo.packages)
    print(
        f"{args.path.rstrip('/') or '/'}: {_count(len(repo.packages), 'package')}, "
        f"{_count(versions, 'version')}, {_count(len(repo.associations), 'association')}: valid"
    )
    return 0


def schema_command(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
