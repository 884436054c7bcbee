"""Benchmark: AWS calls of a pass that finds nothing to do, and plan CPU time.

Reports (does not assert), against the embedded local endpoint:
- calls of a no-op pass with P packages and A associations, next to the contract's floor
  ceil(P/50) + ceil(A/50) + P (list pages plus one sharing read per package) and next to
  Terraform's refresh (about 4 calls per document, 1-2 per association);
- calls of a full resync pass (everything re-read);
- CPU time of the pure plan() for 1,000 packages (3 versions each) and 1,000 associations.

    .venv/bin/python benchmarks/reconcile_calls.py [--packages 100] [--associations 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.aws.session import Sessions  # noqa: E402
from controller.local import LocalAWS  # noqa: E402
from controller.model.state import (  # noqa: E402
    OWNER_TAG,
    ArtifactFile,
    AssociationFields,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    DesiredVersion,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedVersion,
    PruneRules,
)
from controller.reconcile.apply import ArtifactBucket  # noqa: E402
from controller.reconcile.desired import desired_version  # noqa: E402
from controller.reconcile.engine import DesiredPass, Reconciler  # noqa: E402
from controller.reconcile.plan import plan  # noqa: E402

HOME = Location("123456789012", "us-east-1")


def make_version(folder: Path, package: str, version: str) -> DesiredVersion:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{package}-{version}-amazon-x86_64.zip"
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("install.sh", f"echo {package} {version}\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": "2.0",
            "version": version,
            "packages": {"amazon": {"_any": {"x86_64": {"file": name}}}},
            "files": {name: {"checksums": {"sha256": sha}}},
        }
    ).encode()
    (folder / "manifest.json").write_bytes(manifest)
    return desired_version(
        version,
        manifest,
        (ArtifactFile(name, path, sha, path.stat().st_size),),
        folder / "manifest.json",
    )


def spec(package: str) -> AssociationFields:
    return AssociationFields(
        parameters=(("action", "Install"), ("name", package)),
        targets=(("tag:env", ("prod",)),),
        schedule="rate(1 day)",
    )


def calls_benchmark(packages: int, associations: int, work: Path) -> None:
    with LocalAWS(port=0, create_delay=0.0) as aws:
        # The embedded endpoint takes any credentials; a profile or CA bundle of the machine
        # running the benchmark must not get in the way (it measured 0 calls otherwise).
        for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            AWS_ENDPOINT_URL=aws.endpoint_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
        )
        aws.client("s3").create_bucket(Bucket="artifacts")
        wanted = DesiredPass(
            Desired(
                tuple(
                    DesiredPackage(
                        f"pkg-{i:04d}",
                        HOME,
                        "1.0",
                        frozenset(),
                        ((OWNER_TAG, "bench"),),
                        False,
                        (make_version(work / f"pkg-{i:04d}", f"pkg-{i:04d}", "1.0"),),
                    )
                    for i in range(packages)
                ),
                tuple(
                    DesiredAssociation(
                        f"assoc-{i:04d}",
                        HOME,
                        spec(f"pkg-{i % packages:04d}"),
                        f"pkg-{i % packages:04d}",
                    )
                    for i in range(associations)
                ),
                PruneRules(),
            ),
            ("us-east-1",),
            (("123456789012", None),),
            ArtifactBucket("artifacts", "p/"),
        )
        reconciler = Reconciler(
            "bench", source="github.com/acme/bench", work_dir=work, sessions=Sessions()
        )
        started = time.monotonic()
        first = reconciler.run_desired(wanted)
        print(
            f"first pass: {len(first.actions)} actions, {sum(first.api_calls.values())} calls, "
            f"{time.monotonic() - started:.1f}s, outcome {first.outcome}"
        )
        reconciler.run_desired(wanted)  # re-reads what the first pass changed
        noop = reconciler.run_desired(wanted)
        full = reconciler.run_desired(wanted, full_resync=True)
        floor = math.ceil(packages / 50) + math.ceil(associations / 50) + packages
        terraform_low, terraform_high = 4 * packages + associations, 4 * packages + 2 * associations
        print(f"\nno-op pass, P={packages} packages, A={associations} associations")
        print(f"  ssm-gitops (cached):   {sum(noop.api_calls.values()):6d} calls  ({noop.outcome})")
        for (operation, result), count in sorted(noop.api_calls.items()):
            print(f"      {operation:32s} {result:10s} {count}")
        print(
            f"  contract floor:        {floor:6d} calls  "
            "(ceil(P/50) + ceil(A/50) + one sharing read per package)"
        )
        print(f"  full resync pass:      {sum(full.api_calls.values()):6d} calls")
        print(
            f"  Terraform refresh:     {terraform_low:6d}-{terraform_high} calls "
            "(~4 per document, 1-2 per association)"
        )


def plan_cpu_benchmark(packages: int = 1000, associations: int = 1000) -> None:
    versions = tuple(DesiredVersion(f"1.{v}", "{}", f"sha{v}") for v in range(3))
    desired = Desired(
        tuple(
            DesiredPackage(
                f"pkg-{i:04d}",
                HOME,
                "1.2",
                frozenset({"111122223333"}),
                ((OWNER_TAG, "bench"),),
                False,
                versions,
            )
            for i in range(packages)
        ),
        tuple(
            DesiredAssociation(f"assoc-{i:04d}", HOME, spec(f"pkg-{i:04d}"), f"pkg-{i:04d}")
            for i in range(associations)
        ),
        PruneRules(enabled=True),
    )
    observed = Observed(
        tuple(
            ObservedPackage(
                f"pkg-{i:04d}",
                HOME,
                "3",
                tuple(ObservedVersion(f"1.{v}", str(v + 1), f"sha{v}") for v in range(3)),
                (("111122223333", "$ALL"),),
                ((OWNER_TAG, "bench"),),
            )
            for i in range(packages)
        ),
        tuple(
            ObservedAssociation(
                f"id-{i}",
                f"assoc-{i:04d}",
                HOME,
                "1",
                spec(f"pkg-{i:04d}" if i % 10 else "changed"),
            )
            for i in range(associations)
        ),
    )
    started = time.process_time()
    result = plan(desired, observed)
    seconds = time.process_time() - started
    print(
        f"\nplan() for {packages} packages x 3 versions and {associations} associations "
        f"({len(result.actions)} changes): {seconds * 1000:.0f} ms CPU"
    )


def load_and_plan_benchmark(packages: int, work: Path) -> None:
    """Load + validate a repository of `packages` packages (and as many associations),
    expand it into the desired state, and plan it against an empty account. Version builds
    (hashing and zipping, measured by the build benchmark) are replaced by a fixed result."""
    from controller.reconcile.desired import desired_state
    from controller.repository import load_repository

    root = work / "big-repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "install.sh").write_text("echo install\n")
    (root / "src" / "uninstall.sh").write_text("echo uninstall\n")
    documents = []
    for i in range(packages):
        documents.append(
            f"apiVersion: ssm-gitops/v1\nkind: Package\nmetadata: {{name: pkg-{i:04d}}}\n"
            f'spec:\n  defaultVersion: "1.0"\n  versions:\n'
            f'    - name: "1.0"\n      files: [{{platform: amazon, arch: x86_64, source: src}}]\n'
            f"---\napiVersion: ssm-gitops/v1\nkind: Association\n"
            f"metadata: {{name: assoc-{i:04d}}}\nspec:\n  package: pkg-{i:04d}\n"
            f'  targets: [{{key: "tag:env", values: [prod]}}]\n  schedule: rate(1 day)\n'
        )
    (root / "all.yaml").write_text("---\n".join(documents))
    built = DesiredVersion("1.0", "{}", "0" * 64)
    started = time.process_time()
    repository = load_repository(root)
    loaded = time.process_time()
    desired = desired_state(
        repository,
        owner="bench",
        home_account=HOME.account,
        default_region=HOME.region,
        build=lambda *_: built,
    )
    result = plan(desired, Observed())
    finished = time.process_time()
    print(
        f"load + validate {packages} packages and {packages} associations: "
        f"{(loaded - started) * 1000:.0f} ms CPU; expand + plan ({len(result.actions)} "
        f"actions): {(finished - loaded) * 1000:.0f} ms CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=100)
    parser.add_argument("--associations", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        calls_benchmark(args.packages, args.associations, Path(work))
        plan_cpu_benchmark()
        load_and_plan_benchmark(1000, Path(work))


if __name__ == "__main__":
    main()
