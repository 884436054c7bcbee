"""Helpers for the plan/apply end-to-end tests: tmp git repositories (pygit2) and the CLI
run as a real subprocess against the embedded local endpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

WORKTREE = Path(__file__).resolve().parents[2]
SAMPLE = WORKTREE / "sample-repo"


class GitRepo:
    """A local git repository the tests edit and commit to, as a user would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.repo = pygit2.init_repository(str(path), initial_head="main")

    def write(self, relative: str, text: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, relative: str) -> None:
        target = self.path / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    def commit(self, message: str) -> str:
        index = self.repo.index
        index.add_all()
        gone = [e.path for e in index if not (self.path / e.path).exists()]
        if gone:  # an empty pathspec would match every file
            index.remove_all(gone)
        index.write()
        tree = index.write_tree()
        signature = pygit2.Signature("tester", "tester@example.com")
        parents = [] if self.repo.head_is_unborn else [self.repo.head.target]
        return str(self.repo.create_commit("HEAD", signature, signature, message, tree, parents))


def sample_repo(path: Path) -> GitRepo:
    shutil.copytree(SAMPLE, path)
    repo = GitRepo(path)
    repo.commit("sample")
    return repo


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    process = subprocess.run(
        [sys.executable, "-m", "controller", *args],
        cwd=WORKTREE,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(process.returncode, process.stdout, process.stderr)


def plan_actions(repo: GitRepo) -> list[tuple[str, str, str]]:
    """(kind, name, action) of every planned action, from `plan --json`."""
    run = cli("plan", "--repo", str(repo.path), "--json")
    assert run.code in (0, 2), run.err
    return [(a["kind"], a["name"], a["action"]) for a in run.json()["actions"]]


def small_package(
    name: str,
    versions: list[str],
    default: str,
    *,
    share: list[str] | None = None,
    prune_versions: bool = False,
) -> str:
    listed = "\n".join(
        f'    - name: "{v}"\n      files:\n'
        f"        - {{platform: amazon, arch: x86_64, source: {name}/{v}}}"
        for v in versions
    )
    return (
        f"apiVersion: ssm-gitops/v1\nkind: Package\nmetadata:\n  name: {name}\nspec:\n"
        f'  defaultVersion: "{default}"\n  shareWith: {json.dumps(share or [])}\n'
        f"  pruneVersions: {str(prune_versions).lower()}\n  versions:\n{listed}\n"
    )


def small_sources(repo: GitRepo, name: str, version: str, folder: str = "") -> None:
    base = f"{folder}/" if folder else ""
    repo.write(f"{base}{name}/{version}/install.sh", f"#!/bin/sh\necho install {name} {version}\n")
    repo.write(f"{base}{name}/{version}/uninstall.sh", f"#!/bin/sh\necho uninstall {name}\n")


def small_association(
    name: str, package: str, *, schedule: str = "rate(1 day)", targets: str = "[prod]"
) -> str:
    return (
        f"apiVersion: ssm-gitops/v1\nkind: Association\nmetadata:\n  name: {name}\nspec:\n"
        f"  package: {package}\n  targets:\n    - key: tag:env\n      values: {targets}\n"
        f"  schedule: {schedule}\n"
    )


SETTINGS = (
    "apiVersion: ssm-gitops/v1\nkind: Settings\nmetadata:\n  name: settings\nspec:\n"
    "  artifacts: {bucket: artifacts, prefix: packages/}\n  regions: [us-east-1]\n"
    "  prune: {enabled: true, maxDeletes: 10}\n"
)
