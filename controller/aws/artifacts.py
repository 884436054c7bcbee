"""Upload a package version's zips and manifest to the Settings bucket, before publishing.

Stage: apply, just before CreateDocument/UpdateDocument. Distributor copies attachments from
S3 when the version is created ("Distributor moves the package contents to an internal
Systems Manager bucket", https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with.html),
so each version gets its own folder `<prefix><package>/<version>/` and the document names it
as `SourceUrl`. An object whose `sha256` metadata already matches is not sent again; large
files go up in parts (boto3's managed transfer), streamed from disk.
"""

from __future__ import annotations

from pathlib import Path

from boto3.s3.transfer import TransferConfig

from controller.aws.errors import NotFound, call, translate
from controller.aws.session import AwsClients
from controller.errors import UserError

# Files above 64 MiB go up in 16 MiB parts (a package file may be up to 1 GB).
TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=16 * 2**20)


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
        call("HeadBucket", clients.s3.head_bucket, Bucket=bucket)
    except NotFound as error:
        raise MissingBucket(
            f"artifacts bucket {bucket!r} does not exist in {clients.region}: create it or fix "
            "spec.artifacts.bucket in the Settings document"
        ) from error


def upload(clients: AwsClients, bucket: str, key: str, path: Path, sha256: str) -> bool:
    """Put one file unless the object already carries the same sha256. True if uploaded."""
    try:
        head = call("HeadObject", clients.s3.head_object, Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == sha256:
            return False
    except NotFound:
        pass
    try:
        clients.s3.upload_file(
            str(path),
            bucket,
            key,
            ExtraArgs={"Metadata": {"sha256": sha256}},
            Config=TRANSFER,
        )
    except Exception as error:  # boto3's transfer wraps ClientError in S3UploadFailedError
        cause = error.__cause__ or error.__context__ or error
        if not isinstance(cause, Exception):
            cause = error
        if "NoSuchBucket" in str(error) or "NoSuchBucket" in str(cause):
            raise MissingBucket(
                f"artifacts bucket {bucket!r} does not exist: create it or fix "
                "spec.artifacts.bucket in the Settings document"
            ) from error
        raise translate("PutObject", cause) from error
    return True
