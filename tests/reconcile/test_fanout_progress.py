"""`ssm-gitops apply` on a long run (issue 15): progress on stderr (locations and actions
done / total, at most once per --progress-every), and a summary per location at the end."""

from __future__ import annotations

import io
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.reconcile.progress import Progress
from controller.reconcile.result import ActionRecord, ActionResult
from tests.e2e.plan_apply_helpers import (
    GitRepo,
    cli,
    small_association,
    small_package,
    small_sources,
)

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
OTHER = "111122223333"


@pytest.fixture
def repo(aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    # Slow creates: the apply lasts long enough for several progress lines.
    body = json.dumps({"latency": {"ssm:CreateAssociation": 0.3}}).encode()
    request = urllib.request.Request(
        aws_env.endpoint_url + "/_local/faults", data=body, method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()
    repo = GitRepo(tmp_path / "repo")
    repo.write(
        "settings.yaml",
        "apiVersion: ssm-gitops/v1\nkind: Settings\nmetadata:\n  name: settings\nspec:\n"
        "  artifacts: {bucket: artifacts, prefix: packages/}\n"
        f"  regions: [{', '.join(REGIONS)}]\n"
        f'  accounts:\n    - {{id: "123456789012"}}\n'
        f'    - {{id: "{OTHER}", roleArn: "arn:aws:iam::{OTHER}:role/ssm-gitops"}}\n',
    )
    repo.write("tool.yaml", small_package("tool", ["1.0"], "1.0"))
    small_sources(repo, "tool", "1.0")
    for n in range(3):
        repo.write(f"a{n}.yaml", small_association(f"tool-{n}", "tool", targets=f"[t{n}]"))
    repo.commit("six locations")
    return repo


def test_apply_shows_progress_and_a_summary_per_location(repo: GitRepo) -> None:
    """Issue 15: a long apply printed nothing between action lines about how far it was,
    and no per-location summary."""
    run = cli("apply", "--repo", str(repo.path), "--progress-every", "0.2")
    assert run.code == 0, run.out + run.err
    progress = [line for line in run.err.splitlines() if line.startswith("progress: ")]
    assert progress, run.err
    pattern = re.compile(r"progress: (\d+)/6 locations done, (\d+)/(\d+) actions, \d+s")
    parsed = [pattern.fullmatch(line) for line in progress]
    assert all(parsed), progress
    totals = {int(m.group(3)) for m in parsed if m}
    assert totals == {6 * 3 + 3 * 2}  # 18 associations; a package created and shared x 3
    assert "Per location (6):" in run.out
    assert f"  {OTHER}/eu-west-1: 3 added" in run.out
    assert run.out.rstrip().splitlines()[-1].startswith("Apply converged")


def test_apply_json_has_locations_and_stdout_stays_json(repo: GitRepo) -> None:
    run = cli("apply", "--repo", str(repo.path), "--json", "--progress-every", "0")
    assert run.code == 0, run.out + run.err
    locations = run.json()["locations"]
    assert len(locations) == 6
    assert {row["added"] for row in locations if row["account"] == OTHER} == {3}
    assert "progress:" not in run.err


def test_progress_writes_at_most_once_per_interval() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, 1.0, clock=lambda: now[0])
    for step in range(30):
        now[0] = step * 0.25
        progress.action(ActionRecord("association", "create", "a", "1", "r", ActionResult.SUCCESS))
    assert len(out.getvalue().splitlines()) == 7  # at 1.0, 2.0, ... 7.0 s of 7.25 s
