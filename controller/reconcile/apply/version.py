"""Apply the version steps of a package: publish a version, move the default, delete one.

Stage: apply; planned in `controller.reconcile.kinds.version`. Publishing is idempotent: a
version is published under its VersionName, and "already exists" is checked against the
live content hash and is then success (DuplicateDocumentVersionName).
"""

from __future__ import annotations

import contextlib
import functools

from controller.aws import artifacts as aws_artifacts
from controller.aws import packages as aws_packages
from controller.aws.errors import Conflict, NotFound
from controller.aws.session import AwsClients
from controller.model.state import DesiredPackage, DesiredVersion, Location
from controller.packaging.integrity import verify_artifact, verify_fresh_build, verify_manifest
from controller.reconcile.apply.context import ActionFailed, ApplyContext
from controller.reconcile.kinds import Action, AddVersion, DeleteVersion, SetDefault


def add_version(ctx: ApplyContext, clients: AwsClients, action: Action, step: AddVersion) -> str:
    url = upload(ctx, clients, step.package, step.version)
    return publish(ctx, clients, action.location, step.package, step.version, url)


def publish(
    ctx: ApplyContext,
    clients: AwsClients,
    location: Location,
    package: DesiredPackage,
    version: DesiredVersion,
    url: str,
) -> str:
    existing = aws_packages.find_version(clients, package.name, version.name)
    if existing is None:
        # Conflict = published by an earlier attempt whose answer we lost: checked below.
        with contextlib.suppress(Conflict):
            aws_packages.add_version(clients, package.name, version.name, version.content, url)
    published = aws_packages.wait_active(clients, package.name, version.name)
    if published.content_sha256 and published.content_sha256 != version.content_sha256:
        raise ActionFailed(
            f"version {version.name} of {package.name} is already published with "
            f"different content: bump the version name in {package.source}"
        )
    ctx.remember(location, package.name, version.name, published.number)
    return f"{version.name} (version {published.number})"


def upload(
    ctx: ApplyContext, clients: AwsClients, package: DesiredPackage, version: DesiredVersion
) -> str:
    """Put a version's zips and manifest in the artifacts bucket; returns the source URL."""
    if ctx.artifacts is None:
        raise ActionFailed(
            f"package {package.name} needs an artifacts bucket: add a Settings document "
            "with spec.artifacts.bucket"
        )
    # Only git's bytes reach the fleet. First, before anything goes up: a zip reused from
    # the build cache carries the sha256 of the cache's own stamp, so it is rebuilt from
    # the revision's tree and must give the same bytes (else the cache entry is deleted
    # and the version fails: nothing uploaded, nothing published). No AWS call; a zip this
    # process built, or proved for another location, is not rebuilt.
    verify_fresh_build([(file.path, file.sha256) for file in version.files], version.content)
    bucket = ctx.artifacts.bucket
    ctx.check_bucket_once(clients, bucket)
    folder = aws_artifacts.version_folder(ctx.artifacts.prefix, package.name, version.name)
    # Then S3's own SHA-256 of each object decides whether it is kept (never its
    # metadata), and a file about to go up is hashed again against that proven sha256 (it
    # may have changed on disk since; it is rebuilt once, else the version fails).
    for file in version.files:
        aws_artifacts.upload(
            clients,
            bucket,
            f"{folder}/{file.name}",
            file.path,
            file.sha256,
            before_put=functools.partial(verify_artifact, file.path, file.sha256),
        )
    if version.manifest_path is not None:
        aws_artifacts.upload(
            clients,
            bucket,
            f"{folder}/manifest.json",
            version.manifest_path,
            version.content_sha256,
            before_put=functools.partial(
                verify_manifest, version.manifest_path, version.content.encode("utf-8")
            ),
        )
    return aws_artifacts.source_url(bucket, folder)


def set_default(ctx: ApplyContext, clients: AwsClients, action: Action, step: SetDefault) -> str:
    number = ctx.published(action.location, action.name, step.version_name)
    if number is None:  # published by an earlier pass: look its number up
        found = aws_packages.find_version(clients, action.name, step.version_name)
        if found is None:
            raise ActionFailed(f"version {step.version_name} of {action.name} is not published")
        number = found.number
    aws_packages.set_default(clients, action.name, number)
    return f"{step.version_name} (version {number})"


def delete_version(
    ctx: ApplyContext, clients: AwsClients, action: Action, step: DeleteVersion
) -> str:
    # Versions are deleted one at a time by VersionName (DeleteDocument); gone = done.
    with contextlib.suppress(NotFound):
        aws_packages.delete_version(clients, action.name, step.version_name)
    return step.version_name
