"""Upload a package version's zips and manifest to the Settings bucket, before publishing.

Stage: apply, just before CreateDocument/UpdateDocument. Distributor copies attachments from
S3 when the version is created ("Distributor moves the package contents to an internal
Systems Manager bucket", https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with.html),
so each version gets its own folder `<prefix><package>/<version>/` and the document names it
as `SourceUrl`.

What S3 holds is checked by its content, never by metadata: anyone who can write the bucket
prefix can set any metadata. Every object goes up with a SHA-256 checksum that S3 verifies
against the bytes it received and stores with the object; an existing object is kept only
when S3 reports that stored SHA-256 (`HeadObject` with `ChecksumMode=ENABLED`) and it equals
the manifest's sha256. An object without one, or with another, is replaced
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).

Why one PutObject and not a multipart upload: for a multipart upload S3 keeps a SHA-256 only
as a COMPOSITE checksum (a hash of the parts' hashes, shown as `<base64>-<parts>`); the
FULL_OBJECT checksum type exists for the CRC algorithms only (same page, "Using full object
checksums for multipart upload"). A composite value depends on the part size and cannot be
compared with the manifest's sha256. A single PutObject takes up to 5 GB
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html) and a Distributor file
is at most 1 GB, so every artifact goes up in one request, streamed from disk, and S3's
checksum is the sha256 of the whole file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from pathlib import Path

from controller.aws.api import request
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.errors import UserError

# PutObject's own limit; build refuses zips over Distributor's 1 GB long before this.
MAX_SINGLE_PUT = 5 * 10**9


class MissingBucket(UserError):
    """The Settings bucket does not exist or is not reachable."""


def version_folder(prefix: str, package: str, version: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{package}/{version}" if prefix else f"{package}/{version}"


def source_url(bucket: str, folder: str) -> str:
    """The AttachmentsSource value for a folder (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AttachmentsSource.html)."""
    return f"s3://{bucket}/{folder}"


def check_bucket(clients: AwsClients, bucket: str) -> None:
    """One clear error when the artifacts bucket is missing, before anything is uploaded."""
    try:
        request(clients, "s3", "HeadBucket", Bucket=bucket)
    except NotFound as error:
        raise MissingBucket(
            f"artifacts bucket {bucket!r} does not exist in {clients.region}: create it or fix "
            "spec.artifacts.bucket in the Settings document"
        ) from error


def checksum_sha256(sha256: str) -> str:
    """The `ChecksumSHA256` form of a hex sha256: base64 of the raw 32 bytes."""
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


def stored_sha256(clients: AwsClients, bucket: str, key: str) -> str | None:
    """The hex sha256 that S3 computed of the object's bytes, or None when there is no
    object or no full-object SHA-256 for it (uploaded without one, or in parts).

    `ChecksumMode=ENABLED` makes HeadObject return the stored checksum
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).
    """
    try:
        head = request(clients, "s3", "HeadObject", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except NotFound:
        return None
    value = str(head.get("ChecksumSHA256") or "")
    # A composite checksum (multipart) reads "<base64>-<parts>" and has ChecksumType
    # COMPOSITE: it is not the sha256 of the object's bytes.
    if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def put(clients: AwsClients, bucket: str, key: str, path: Path, sha256: str) -> None:
    """One PutObject of `path`, streamed, carrying `sha256` as its SHA-256 checksum: S3
    rejects the request (BadDigest) unless the bytes it received hash to exactly that."""
    size = path.stat().st_size
    if size > MAX_SINGLE_PUT:  # unreachable through build (1 GB limit); say so plainly
        raise UserError(f"{path.name}: {size} bytes is over PutObject's 5 GB limit")
    try:
        with path.open("rb") as body:
            request(
                clients,
                "s3",
                "PutObject",
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum_sha256(sha256),
                # For people browsing the bucket only: never trusted, anyone can set it.
                Metadata={"sha256": sha256},
            )
    except NotFound as error:
        if error.code != "NoSuchBucket":
            raise
        raise MissingBucket(
            f"artifacts bucket {bucket!r} does not exist: create it or fix "
            "spec.artifacts.bucket in the Settings document"
        ) from error
    except OSError as error:  # the built file vanished or cannot be read
        raise UserError(
            f"{path}: cannot read it for upload ({error.strerror or error}): the build cache "
            "changed under the controller; the next pass builds it again"
        ) from error


def upload(
    clients: AwsClients,
    bucket: str,
    key: str,
    path: Path,
    sha256: str,
    *,
    before_put: Callable[[], object] | None = None,
) -> bool:
    """Make the object at `key` hold exactly the bytes whose sha256 is `sha256`.

    Kept when S3's own SHA-256 of the object already equals `sha256` (one HeadObject);
    otherwise `before_put()` runs (the caller checks its file there) and the file is put,
    replacing whatever was there. True if uploaded.
    """
    if stored_sha256(clients, bucket, key) == sha256.lower():
        return False
    if before_put is not None:
        before_put()
    put(clients, bucket, key, path, sha256.lower())
    return True
