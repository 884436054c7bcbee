"""Benchmark: AWS calls of each kind of pass (issue 14), and plan CPU time.

Reports (does not assert), against the embedded local endpoint, counted by its own call
counter, in ONE run at P=200/A=1000 and P=500/A=2000 (P packages of 2 versions each, A
associations), next to the contract's budgets (contract: Budgets):
- the floor: ceil(P/50) + ceil(A/50) list pages + one sharing read per package;
- a Terraform-style refresh: 4 calls per package + 2 per association;
- `plan` in a fresh process sharing the cache folder of a running controller (<= 1.5x floor);
- `plan` in a fresh process with an empty cache folder, a CI runner (<= half Terraform);
- the controller's full resync (<= 1.2x (pages + 2P)) and its no-op pass (the floor);
- what apply pays to record fingerprints (controller.model.fingerprint) for what it changes:
  an update of some associations, a new default for some packages;
then the CPU time of the pure plan() for 1,000 packages and 1,000 associations, and of
loading and planning a 1,000-package repository.

    .venv/bin/python benchmarks/reconcile_calls.py [--size 200/1000 --size 500/2000]
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.aws.session import Sessions  # noqa: E402
from controller.local import LocalAWS  # noqa: E402
from controller.model.fingerprint import (  # noqa: E402
    SPEC_TAG,
    VERSIONS_TAG,
    spec_tag_value,
    versions_tag_value,
)
from controller.model.state import (  # noqa: E402
    OWNER_TAG,
    SOURCE_TAG,
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
from controller.reconcile.cache import LastingStore, store_path  # noqa: E402
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


def populate(aws: LocalAWS, wanted: DesiredPass, owner: str, source: str) -> None:
    """Make live SSM equal to `wanted` directly (faster than applying it): each package with
    its versions (zips in S3 first: the endpoint checks attachments), each association, all
    tagged with our owner and source, and with the fingerprints apply writes."""
    from concurrent.futures import ThreadPoolExecutor

    from controller.aws.associations import request_fields

    ssm, s3 = aws.client("ssm"), aws.client("s3")
    tags = [{"Key": OWNER_TAG, "Value": owner}, {"Key": SOURCE_TAG, "Value": source}]

    def one_package(package: DesiredPackage) -> None:
        for n, version in enumerate(package.versions):
            prefix = f"p/{package.name}/{version.name}/"
            for artifact in version.files:
                s3.put_object(
                    Bucket="artifacts", Key=prefix + artifact.name, Body=artifact.path.read_bytes()
                )
            common = {
                "Name": package.name,
                "Content": version.content,
                "DocumentFormat": "JSON",
                "VersionName": version.name,
                "Attachments": [{"Key": "SourceUrl", "Values": [f"s3://artifacts/{prefix}"]}],
            }
            if n == 0:
                ssm.create_document(**common, DocumentType="Package", Tags=tags)
            else:
                ssm.update_document(**common, DocumentVersion="$LATEST")
        # As apply leaves it: the default (the first version, number 1) and every version.
        rows = [(v.name, str(n + 1), v.content_sha256) for n, v in enumerate(package.versions)]
        value = versions_tag_value("1", rows)
        if value:
            ssm.add_tags_to_resource(
                ResourceType="Document",
                ResourceId=package.name,
                Tags=[{"Key": VERSIONS_TAG, "Value": value}],
            )

    def one_association(association: DesiredAssociation) -> None:
        fingerprint = {"Key": SPEC_TAG, "Value": spec_tag_value("1", association.spec)}
        ssm.create_association(
            **request_fields(association.name, association.spec), Tags=[*tags, fingerprint]
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one_package, wanted.desired.packages))
        list(pool.map(one_association, wanted.desired.associations))


def desired_pass(packages: int, associations: int, work: Path) -> DesiredPass:
    """P packages of 2 versions (the first the default) and A associations spread over them."""
    return DesiredPass(
        Desired(
            tuple(
                DesiredPackage(
                    f"pkg-{i:04d}",
                    HOME,
                    "1.0",
                    frozenset(),
                    ((OWNER_TAG, "bench"),),
                    False,
                    tuple(
                        make_version(work / f"pkg-{i:04d}" / v, f"pkg-{i:04d}", v)
                        for v in ("1.0", "1.1")
                    ),
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


def calls_benchmark(sizes: list[tuple[int, int]], work: Path) -> None:
    """Every pass of issue 14's table at each size, counted by the endpoint's call counter."""
    rows: list[tuple[str, ...]] = []
    for packages, associations in sizes:
        rows += one_size(packages, associations, work / f"p{packages}-a{associations}")
    print("AWS calls per pass (embedded endpoint's counter; a fresh process adds one STS call)")
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def one_size(packages: int, associations: int, here: Path) -> list[tuple[str, ...]]:
    owner, source = "bench", "github.com/acme/bench"
    with LocalAWS(port=0, create_delay=0.0) as aws:
        # The embedded endpoint takes any credentials; a profile or CA bundle of the
        # machine running the benchmark must not get in the way.
        for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            AWS_ENDPOINT_URL=aws.endpoint_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
        )
        aws.client("s3").create_bucket(Bucket="artifacts")
        wanted = desired_pass(packages, associations, here / "built")
        started = time.monotonic()
        populate(aws, wanted, owner, source)
        print(
            f"P={packages} A={associations}: live state made in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
        )

        def reconciler(cache_dir: Path, *, dry_run: bool = False) -> Reconciler:
            return Reconciler(
                owner,
                source=source,
                work_dir=here / "work",
                sessions=Sessions(),
                dry_run=dry_run,
                store=LastingStore(store_path(cache_dir, owner, source)),
            )

        def counted(run: Callable[[], object]) -> tuple[int, float]:
            before = sum(aws.calls().values())
            began = time.monotonic()
            result = run()
            changes = getattr(result, "plan", None) or getattr(result, "actions", ())
            if getattr(changes, "actions", changes):
                print(f"WARNING: changes planned: {result}"[:300], file=sys.stderr)
            return sum(aws.calls().values()) - before, time.monotonic() - began

        # A CI runner: `plan` in a fresh process with an empty cache folder.
        cold = reconciler(here / "ci-cache", dry_run=True)
        cold_calls, cold_s = counted(lambda: cold.plan_desired(wanted))
        # The running controller: its first pass, a quiet pass, a full resync.
        controller = reconciler(here / "cache")
        # It starts with a full resync (runtime/service.py: "startup"): with an empty cache
        # folder it describes every association (a fingerprint serves `plan` only).
        first_calls, first_s = counted(lambda: controller.run_desired(wanted, full_resync=True))
        noop_calls, noop_s = counted(lambda: controller.run_desired(wanted))
        full_calls, full_s = counted(lambda: controller.run_desired(wanted, full_resync=True))
        # `plan` in a fresh process sharing the controller's cache folder.
        warm = reconciler(here / "cache", dry_run=True)
        warm_calls, warm_s = counted(lambda: warm.plan_desired(wanted))
        # What recording fingerprints costs apply: 20 associations updated, 10 packages with
        # a new default, applied by the running controller (a quiet pass).
        changed = changed_pass(wanted, 20, 10)
        before = aws.calls()
        controller.run_desired(changed)
        spent = {k: v - before.get(k, 0) for k, v in aws.calls().items() if v != before.get(k, 0)}
        # The controller's next quiet pass: what apply wrote is cached as written, not described.
        after_calls, after_s = counted(lambda: controller.run_desired(changed))
        # After that apply, a CI runner again: the fingerprints it wrote are read.
        cold_again = reconciler(here / "ci-cache-2", dry_run=True)
        again_calls, again_s = counted(lambda: cold_again.plan_desired(changed))

    pages = math.ceil(packages / 50) + math.ceil(associations / 50)
    floor = pages + packages
    terraform = 4 * packages + 2 * associations
    size = f"P={packages}/A={associations}"
    apply_calls = sum(spent.values())
    return [
        (size, "floor: list pages + one sharing read per package", f"{floor}", "", ""),
        (size, "Terraform-style refresh (4P + 2A)", f"{terraform}", "", ""),
        (
            size,
            "plan, warm cache folder (fresh process)",
            f"{warm_calls}",
            f"<= {1.5 * floor:.0f} (1.5x floor)",
            f"{warm_s:.1f}s",
        ),
        (
            size,
            "plan, empty cache folder (CI runner)",
            f"{cold_calls}",
            f"<= {terraform / 2:.0f} (half Terraform)",
            f"{cold_s:.1f}s",
        ),
        (
            size,
            "full resync (running controller)",
            f"{full_calls}",
            f"<= {1.2 * (pages + 2 * packages):.0f} (1.2x (pages + 2P))",
            f"{full_s:.1f}s",
        ),
        (
            size,
            "first full resync of a process, empty cache folder",
            f"{first_calls}",
            f"pages + 4P + 2A = {pages + 4 * packages + 2 * associations} (not budgeted)",
            f"{first_s:.1f}s",
        ),
        (
            size,
            "no-op pass (running controller)",
            f"{noop_calls}",
            f"= {floor} (floor)",
            f"{noop_s:.1f}s",
        ),
        (
            size,
            "apply: 20 associations updated, 10 packages' default moved",
            f"{apply_calls}",
            f"AddTagsToResource {spent.get('ssm:AddTagsToResource', 0)}, RemoveTagsFromResource"
            f" {spent.get('ssm:RemoveTagsFromResource', 0)}, ListDocumentVersions"
            f" {spent.get('ssm:ListDocumentVersions', 0)} (half: set_default's own lookup)",
            "",
        ),
        (
            size,
            "no-op pass right after that apply (running controller)",
            f"{after_calls}",
            f"= {floor} (floor)",
            f"{after_s:.1f}s",
        ),
        (
            size,
            "plan, empty cache folder, after that apply",
            f"{again_calls}",
            f"<= {terraform / 2:.0f} (half Terraform)",
            f"{again_s:.1f}s",
        ),
    ]


def changed_pass(wanted: DesiredPass, associations: int, packages: int) -> DesiredPass:
    """`wanted` with the first `associations` associations on another schedule and the first
    `packages` packages' default moved to their second version."""
    desired = wanted.desired
    return DesiredPass(
        Desired(
            tuple(
                DesiredPackage(
                    p.name,
                    p.location,
                    "1.1" if n < packages else p.default_version,
                    p.share_with,
                    p.tags,
                    p.prune_versions,
                    p.versions,
                )
                for n, p in enumerate(desired.packages)
            ),
            tuple(
                DesiredAssociation(
                    a.name,
                    a.location,
                    AssociationFields(a.spec.parameters, a.spec.targets, schedule="rate(2 days)")
                    if n < associations
                    else a.spec,
                    a.package,
                )
                for n, a in enumerate(desired.associations)
            ),
            desired.prune,
        ),
        wanted.regions,
        wanted.accounts,
        wanted.artifacts,
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
    parser.add_argument(
        "--size",
        action="append",
        metavar="P/A",
        help="packages/associations; repeatable (default: 200/1000 and 500/2000)",
    )
    args = parser.parse_args()
    sizes = [
        tuple(int(n) for n in size.split("/")) for size in args.size or ["200/1000", "500/2000"]
    ]
    with tempfile.TemporaryDirectory() as work:
        calls_benchmark([(p, a) for p, a in sizes], Path(work))
        plan_cpu_benchmark()
        load_and_plan_benchmark(1000, Path(work))


if __name__ == "__main__":
    main()
