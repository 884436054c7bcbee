"""`plan` / `apply` with `--cache-dir`: real CLI processes on the embedded endpoint (issue 14)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.plan_apply_helpers import (
    SETTINGS,
    WORKTREE,
    GitRepo,
    cli,
    small_association,
    small_package,
    small_sources,
)

P = 2  # packages


@pytest.fixture
def repo(aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """A repository of P packages (2 versions each) and 2 associations each, applied."""
    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "env-cache"))
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    repo = GitRepo(tmp_path / "repo")
    repo.write("settings.yaml", SETTINGS)
    for i in range(P):
        for version in ("1.0", "1.1"):
            small_sources(repo, f"pkg-{i}", version)
        repo.write(f"pkg-{i}.yaml", small_package(f"pkg-{i}", ["1.0", "1.1"], "1.1"))
        for j in range(2):
            repo.write(f"assoc-{i}-{j}.yaml", small_association(f"assoc-{i}-{j}", f"pkg-{i}"))
    repo.commit("packages")
    return repo


def _calls(stderr: str) -> int:
    found = re.findall(r"^(\d+) AWS calls$", stderr, re.MULTILINE)
    assert len(found) == 1, stderr
    return int(found[0])


def test_plan_prints_its_aws_calls_and_reads_at_the_floor_after_apply(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Regression (issue 14): `plan` did not say how many AWS calls it made, and a fresh
    process read everything again (--cache-dir did not exist on plan and apply)."""
    cache = tmp_path / "cache"
    apply = cli("apply", "--repo", str(repo.path), "--cache-dir", str(cache))
    assert apply.code == 0, apply.out + apply.err
    assert (cache / "observe").is_dir()
    assert not (tmp_path / "env-cache").exists()  # --cache-dir wins over the environment
    # What apply changed is read again by the next pass (here a no-op apply), then cached.
    again = cli("apply", "--repo", str(repo.path), "--cache-dir", str(cache))
    assert again.code == 0, again.out + again.err

    plan = cli("plan", "--repo", str(repo.path), "--cache-dir", str(cache))
    assert plan.code == 0, plan.out + plan.err
    assert plan.out.rstrip().endswith("Plan: 0 to add, 0 to change, 0 to destroy, 0 blocked")
    # Who we are, one ListDocuments page, one ListAssociations page, one sharing read each,
    # and the location record (one S3 GetObject: plan shows the prunes apply would do).
    assert _calls(plan.err) == 1 + 1 + 1 + P + 1

    as_json = cli("plan", "--repo", str(repo.path), "--cache-dir", str(cache), "--json")
    assert as_json.code == 0, as_json.err
    document = as_json.json()
    assert document["aws_calls"] == sum(document["api_calls"].values()) == 3 + P + 1
    assert "AWS calls" not in as_json.out.splitlines()[-1]  # stdout stays JSON

    cold = cli("plan", "--repo", str(repo.path), "--cache-dir", str(tmp_path / "empty"))
    assert cold.code == 0, cold.err
    assert _calls(cold.err) > 3 + P + 1  # an empty cache folder reads more


def test_plan_shares_the_cache_folder_of_a_running_controller(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A running controller holds `<cache>/git` for itself; `plan` on the same folder uses a
    clone of its own and still shares what the controller read from AWS."""
    cache = tmp_path / "cache"
    for _ in range(2):  # changes, then a no-op pass that reads what changed
        apply = cli("apply", "--repo", str(repo.path), "--cache-dir", str(cache))
        assert apply.code == 0, apply.out + apply.err
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from controller.source.cache import claim;"
            f"claim(Path({str(cache / 'git')!r})); print('held', flush=True); time.sleep(60)",
        ],
        cwd=WORKTREE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        plan = cli("plan", "--repo", str(repo.path), "--cache-dir", str(cache))
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    assert plan.code == 0, plan.out + plan.err
    assert "in use by a running controller" in plan.err
    assert _calls(plan.err) == 3 + P + 1  # + the location record's GetObject
