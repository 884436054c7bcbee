"""Benchmark: the cost of a pass after a commit that changes nothing the packages use.

Reports (does not assert), against the embedded local endpoint: a copy of sample-repo is
committed to a scratch git repository (optionally with a large payload file added to one
package's source folder); the first pass creates everything, then a commit edits
README.md only, and the next pass is timed stage by stage: materialise the new tree,
load it, build the desired versions, and the whole pass (which should find nothing to do).

    .venv/bin/python benchmarks/pass_after_commit.py [--payload-mb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.local import LocalAWS  # noqa: E402
from controller.reconcile.engine import Reconciler  # noqa: E402
from controller.reconcile.result import PassOutcome  # noqa: E402
from controller.repository import load_repository  # noqa: E402
from controller.source.git import GitSource  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "sample-repo"
SIGNATURE = pygit2.Signature("bench", "bench@example.com")


def commit_all(repo: pygit2.Repository, message: str) -> None:
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    repo.create_commit("HEAD", SIGNATURE, SIGNATURE, message, tree, parents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-mb", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pass-"))
    try:
        checkout = scratch / "repo"
        shutil.copytree(SAMPLE, checkout)
        if options.payload_mb:
            # Into the first package source folder found (a folder holding install.sh).
            folder = next(p.parent for p in sorted(checkout.rglob("install.sh")))
            (folder / "payload.bin").write_bytes(os.urandom(options.payload_mb * 2**20))
        repo = pygit2.init_repository(str(checkout))
        commit_all(repo, "sample")
        with LocalAWS() as aws:
            os.environ["AWS_ENDPOINT_URL"] = aws.endpoint_url
            for key, value in {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }.items():
                os.environ.setdefault(key, value)
            aws.client("s3").create_bucket(Bucket="ssm-gitops-demo-artifacts")
            source = GitSource(str(checkout), cache_dir=scratch / "cache")
            reconciler = Reconciler("ssm-gitops", work_dir=scratch / "work")

            def one_pass() -> dict[str, float]:
                started = time.perf_counter()
                revision = source.fetch()
                root = source.materialise(revision)
                materialised = time.perf_counter()
                repository = load_repository(root)
                loaded = time.perf_counter()
                reconciler.desired_for(repository, revision.commit)
                built = time.perf_counter()
                result = reconciler.run_pass(repository, revision.commit)
                done = time.perf_counter()
                assert not result.errors, result.errors
                return {
                    "outcome": 0.0 if result.outcome is PassOutcome.NO_CHANGE else 1.0,
                    "materialise": materialised - started,
                    "load": loaded - materialised,
                    "build (desired_for)": built - loaded,
                    "pass (run_pass)": done - built,
                }

            one_pass()  # creates everything
            runs: list[dict[str, float]] = []
            for round_ in range(options.rounds):
                readme = checkout / "README.md"
                readme.write_text(readme.read_text() + f"\nround {round_}\n")
                commit_all(repo, f"docs: round {round_}")
                runs.append(one_pass())
            print(
                f"sample-repo + {options.payload_mb} MiB payload, pass after a README-only "
                f"commit, median of {options.rounds}:"
            )
            for stage in runs[0]:
                if stage != "outcome":
                    median = statistics.median(run[stage] for run in runs)
                    print(f"  {stage:22s} {median * 1000:8.1f} ms")
            changed = sum(run["outcome"] for run in runs)
            print(f"  passes with changes: {changed:.0f} (expected 0)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
