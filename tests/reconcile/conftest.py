"""Fixtures for reconciler tests against the embedded local endpoint.

`versions` builds small but real package versions (a zip and a Distributor manifest) so the
reconciler can be exercised before and independently of `controller.packaging`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.aws.session import Sessions
from controller.model.state import (
    OWNER_TAG,
    ArtifactFile,
    AssociationFields,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    DesiredVersion,
    Location,
    PruneRules,
)
from controller.reconcile import cache
from controller.reconcile.apply import ArtifactBucket
from controller.reconcile.desired import desired_version
from controller.reconcile.engine import DesiredPass, Reconciler

ACCOUNT = "123456789012"
REGION = "us-east-1"
HOME = Location(ACCOUNT, REGION)
BUCKET = "artifacts"
PRUNE = PruneRules(enabled=True, max_deletes=10)


@pytest.fixture
def make_version(tmp_path: Path) -> Callable[..., DesiredVersion]:
    def make(package: str, version: str, payload: str = "") -> DesiredVersion:
        folder = tmp_path / "built" / package / version
        folder.mkdir(parents=True, exist_ok=True)
        zip_name = f"{package}-{version}-amazon-x86_64.zip"
        zip_path = folder / zip_name
        with zipfile.ZipFile(zip_path, "w") as archive:
            info = zipfile.ZipInfo("install.sh", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, f"echo {package} {version} {payload}\n")
        data = zip_path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        manifest = json.dumps(
            {
                "schemaVersion": "2.0",
                "version": version,
                "packages": {"amazon": {"_any": {"x86_64": {"file": zip_name}}}},
                "files": {zip_name: {"checksums": {"sha256": sha}}},
            },
            indent=2,
            sort_keys=True,
        ).encode()
        manifest_path = folder / "manifest.json"
        manifest_path.write_bytes(manifest)
        return desired_version(
            version, manifest, (ArtifactFile(zip_name, zip_path, sha, len(data)),), manifest_path
        )

    return make


def package(
    name: str,
    versions: tuple[DesiredVersion, ...],
    default: str | None = None,
    share: tuple[str, ...] = (),
    prune_versions: bool = False,
    owner: str = "ssm-gitops",
    location: Location = HOME,
) -> DesiredPackage:
    return DesiredPackage(
        name,
        location,
        default or versions[-1].name,
        frozenset(share),
        ((OWNER_TAG, owner),),
        prune_versions,
        versions,
        source=f"repo/{name}.yaml:1",
    )


def association(
    name: str,
    package_name: str,
    schedule: str = "rate(1 day)",
    targets: tuple[str, ...] = ("prod",),
    location: Location = HOME,
    **fields: Any,
) -> DesiredAssociation:
    spec = AssociationFields(
        parameters=tuple(sorted({"action": "Install", "name": package_name}.items())),
        targets=(("tag:env", tuple(sorted(targets))),),
        schedule=schedule,
        **fields,
    )
    return DesiredAssociation(name, location, spec, package_name, source=f"repo/{name}.yaml:1")


def target(
    packages: tuple[DesiredPackage, ...] = (),
    associations: tuple[DesiredAssociation, ...] = (),
    prune: PruneRules = PRUNE,
) -> DesiredPass:
    return DesiredPass(
        Desired(packages, associations, prune),
        (REGION,),
        ((ACCOUNT, None),),
        ArtifactBucket(BUCKET, "packages/"),
    )


@pytest.fixture
def reconciler(aws_env: Any, tmp_path: Path) -> Reconciler:
    """A Reconciler on the local endpoint, with the artifacts bucket created."""
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    return Reconciler("ssm-gitops", work_dir=tmp_path / "work", sessions=Sessions())


def fresh_reconciler(cache_dir: Path, *, dry_run: bool = False) -> Reconciler:
    """A Reconciler as a new process makes it: nothing in memory, the observe cache folder
    of `cache_dir` on disk (what `plan`, `apply` and `run` share)."""
    return Reconciler(
        "ssm-gitops",
        work_dir=cache_dir / "work",
        sessions=Sessions(),
        dry_run=dry_run,
        store=cache.LastingStore(cache.store_path(cache_dir, "ssm-gitops", "")),
    )


def packages_with_associations(
    make_version: Callable[..., DesiredVersion], count: int
) -> DesiredPass:
    """`count` packages of 2 versions each (default 1.0) and 2 associations per package."""
    packages = tuple(
        package(
            f"pkg-{i}",
            (make_version(f"pkg-{i}", "1.0"), make_version(f"pkg-{i}", "1.1")),
            default="1.0",
        )
        for i in range(count)
    )
    associations = tuple(
        association(f"assoc-{i}-{j}", f"pkg-{i}") for i in range(count) for j in range(2)
    )
    return target(packages, associations)
