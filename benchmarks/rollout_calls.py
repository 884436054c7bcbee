"""Benchmark: AWS calls of a progressive rollout of R rings over A associations (issue 13).

Reports (does not assert), against the embedded local endpoint, from the pass that publishes
a new version until nothing is left to do:
- with a `rollout` of R rings (A associations spread over them, bakes of 0 s): passes and
  AWS calls, by operation;
- the baseline in the same run: the same package and associations without `rollout`, where
  the default moves at once.

No fleet runs: whenever an association was updated (pinned or unpinned), the benchmark
writes one execution with one successful target into the endpoint's store, as the fleet
would, so the gates pass.

    python benchmarks/rollout_calls.py [--rings 3] [--associations 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reconcile_calls import HOME, make_version, spec  # noqa: E402
from controller.aws.session import Sessions  # noqa: E402
from controller.local import LocalAWS  # noqa: E402
from controller.model.rollout import Ring, RolloutPolicy  # noqa: E402
from controller.model.state import (  # noqa: E402
    OWNER_TAG,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    PruneRules,
)
from controller.reconcile.apply import ArtifactBucket  # noqa: E402
from controller.reconcile.engine import DesiredPass, Reconciler  # noqa: E402

MAX_PASSES = 100


def _runs_as_the_fleet_would(aws: LocalAWS, seen: dict[str, int]) -> None:
    """One execution, one successful target, for each association updated since last time."""
    store = aws.ssm.store
    with store.lock:
        records = list(store.state(HOME.account, HOME.region).associations.values())
    for record in records:
        if seen.get(record.association_id) == record.version:
            continue
        seen[record.association_id] = record.version
        execution = aws.ssm.start_association_execution(
            HOME.account, HOME.region, record.association_id
        )
        aws.ssm.record_association_result(
            HOME.account, HOME.region, record.association_id, execution, "i-0bench", "Success"
        )


def scenario(rings: int, associations: int, work: Path, *, progressive: bool) -> None:
    with LocalAWS(port=0, create_delay=0.0) as aws:
        for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            AWS_ENDPOINT_URL=aws.endpoint_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
        )
        aws.client("s3").create_bucket(Bucket="artifacts")
        names = [f"assoc-{i:03d}" for i in range(associations)]
        policy = RolloutPolicy(
            rings=tuple(Ring(tuple(names[r::rings]), bake_seconds=0) for r in range(rings))
        )
        v1 = make_version(work / "1.0", "agent", "1.0")
        v2 = make_version(work / "2.0", "agent", "2.0")
        package = DesiredPackage(
            "agent",
            HOME,
            "1.0",
            frozenset(),
            ((OWNER_TAG, "bench"),),
            False,
            (v1,),
            rollout=policy if progressive else None,
        )
        desired = Desired(
            (package,),
            tuple(DesiredAssociation(n, HOME, spec("agent"), "agent") for n in names),
            PruneRules(),
        )
        target = DesiredPass(
            desired, ("us-east-1",), (("123456789012", None),), ArtifactBucket("artifacts", "p/")
        )
        reconciler = Reconciler("bench", work_dir=work, sessions=Sessions())
        seen: dict[str, int] = {}
        reconciler.run_desired(target)
        _runs_as_the_fleet_would(aws, seen)
        reconciler.run_desired(target)  # quiet now
        moved = replace(package, default_version="2.0", versions=(v1, v2))
        target = replace(target, desired=replace(desired, packages=(moved,)))
        calls: Counter[tuple[str, str]] = Counter()
        passes = 0
        quiet = 0
        tick: dict[tuple[str, str], int] = {}
        while passes < MAX_PASSES and quiet < 2:
            result = reconciler.run_desired(target)
            passes += 1
            calls.update(result.api_calls)
            _runs_as_the_fleet_would(aws, seen)
            quiet = quiet + 1 if not result.actions else 0
            if progressive and not tick:
                _due, tick_calls = reconciler.rollout_due()  # a rollout tick between passes
                if tick_calls:
                    tick = dict(tick_calls)
        with aws.ssm.store.lock:
            document = aws.ssm.store.state(HOME.account, HOME.region).documents["agent"]
            default = document.versions[document.default_version].version_name
        what = f"rollout, R={rings} rings" if progressive else "default moved at once"
        print(f"\n{what}, A={associations} associations: default now {default}")
        print(f"  passes until quiet:  {passes} (the last two changed nothing)")
        print(f"  AWS calls:           {sum(calls.values())}")
        for (operation, outcome), count in sorted(calls.items()):
            print(f"      {operation:40s} {outcome:10s} {count}")
        if tick:
            ring = -(-associations // rings)
            print(f"  one rollout tick (a ring of {ring} associations): {sum(tick.values())} calls")
            for (operation, outcome), count in sorted(tick.items()):
                print(f"      {operation:40s} {outcome:10s} {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rings", type=int, default=3)
    parser.add_argument("--associations", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        scenario(args.rings, args.associations, Path(work) / "a", progressive=False)
        scenario(args.rings, args.associations, Path(work) / "b", progressive=True)


if __name__ == "__main__":
    main()
