"""Package (Distributor) versions: the manifest and its attachments, read from the local S3.

Where it sits: documents.py calls `check_manifest` synchronously (a malformed manifest is
`InvalidDocumentContent` at once) and `collect_attachments` to decide how the version ends.
As in AWS, creation is asynchronous: the version shows `Creating` first, then `Active`, or
`Failed` with a `StatusInformation` naming the file and the reason
(https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-create.html).
`AttachmentsSource` keys: `SourceUrl` is an S3 folder holding every file the manifest names;
`S3FileUrl` is one object, with `Name` the attachment name
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AttachmentsSource.html).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from controller.local.ssm.errors import SsmError
from controller.local.ssm.store import Attachment

# Distributor quota: 20 attached files per package version.
MAX_ATTACHMENTS = 20


def _invalid_content(message: str) -> SsmError:
    return SsmError("InvalidDocumentContent", message)


def check_manifest(content: str) -> dict[str, str]:
    """The manifest's files and their sha256, or InvalidDocumentContent.

    Manifest format: https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-create.html#packages-manifest
    """
    try:
        manifest = json.loads(content)
    except ValueError as error:
        raise _invalid_content(f"The package manifest is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise _invalid_content("The package manifest must be a JSON object.")
    for key in ("schemaVersion", "version", "packages", "files"):
        if key not in manifest:
            raise _invalid_content(f"The package manifest is missing '{key}'.")
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise _invalid_content("The package manifest must name at least one file in 'files'.")
    hashes: dict[str, str] = {}
    for name, entry in files.items():
        sha = (entry or {}).get("checksums", {}).get("sha256") if isinstance(entry, dict) else None
        if not isinstance(sha, str) or len(sha) != 64:
            raise _invalid_content(f"File '{name}' in the manifest has no sha256 checksum.")
        hashes[name] = sha.lower()
    for platform, versions in _items(manifest["packages"]):
        for version, arches in _items(versions):
            for arch, target in _items(arches):
                file_name = target.get("file") if isinstance(target, dict) else None
                if file_name not in hashes:
                    raise _invalid_content(
                        f"Package {platform}/{version}/{arch} names file '{file_name}', "
                        "which is not listed in 'files'."
                    )
    return hashes


def _items(value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise _invalid_content("The 'packages' section of the manifest is malformed.")
    return list(value.items())


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def parse_s3_url(url: str) -> S3Location | None:
    """s3://b/k, https://b.s3[.region].amazonaws.com/k, https://s3[.region].amazonaws.com/b/k,
    or a path-style URL on any host (the local endpoint itself)."""
    parsed = urllib.parse.urlparse(url)
    path = urllib.parse.unquote(parsed.path).lstrip("/")
    if parsed.scheme == "s3":
        return S3Location(parsed.netloc, path) if parsed.netloc else None
    if parsed.scheme not in ("http", "https"):
        return None
    host = parsed.hostname or ""
    if ".s3." in f".{host}" and not host.startswith("s3.") and host.endswith("amazonaws.com"):
        return S3Location(host.split(".s3", 1)[0], path)
    bucket, _, key = path.partition("/")
    return S3Location(bucket, key) if bucket else None


def _read_object(bucket: str, key: str) -> bytes | None:
    """An object of the local S3 (moto, in this process), in whichever account owns it."""
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None
    partition, account = owner
    found = s3_backends[account][partition].buckets.get(bucket)
    if found is None or key not in found.keys:
        return None
    item = found.keys[key]
    value = getattr(item, "value", None)
    return value if isinstance(value, bytes) else None


@dataclass(frozen=True)
class Outcome:
    attachments: tuple[Attachment, ...]
    failure: str | None  # StatusInformation when the version ends Failed


def collect_attachments(files: dict[str, str], sources: list[dict[str, Any]]) -> Outcome:
    """Find each manifest file in the sources, hash it, and say how the version ends."""
    locations: dict[str, S3Location] = {}
    folders: list[S3Location] = []
    for source in sources:
        key = source.get("Key")
        values = source.get("Values") or []
        if key not in ("SourceUrl", "S3FileUrl"):
            raise SsmError(
                "InvalidDocumentContent",
                f"Attachments source key '{key}' is not supported by the local endpoint; "
                "use SourceUrl or S3FileUrl.",
            )
        for value in values:
            location = parse_s3_url(value)
            if location is None:
                raise SsmError("InvalidDocumentContent", f"'{value}' is not an S3 URL.")
            if key == "SourceUrl":
                folders.append(location)
            else:
                name = source.get("Name") or location.key.rsplit("/", 1)[-1]
                locations[name] = location
    if len(files) > MAX_ATTACHMENTS:
        return Outcome(
            (),
            f"A package version can have at most {MAX_ATTACHMENTS} attachments; "
            f"the manifest names {len(files)}.",
        )
    attachments: list[Attachment] = []
    for name in sorted(files):
        candidates = (
            [locations[name]]
            if name in locations
            else [
                S3Location(f.bucket, f"{f.key.rstrip('/')}/{name}" if f.key else name)
                for f in folders
            ]
        )
        data = None
        where = candidates[0] if candidates else None
        for candidate in candidates:
            data = _read_object(candidate.bucket, candidate.key)
            if data is not None:
                where = candidate
                break
        if where is None or data is None:
            place = f" at s3://{where.bucket}/{where.key}" if where else ""
            return Outcome((), f"Attachment '{name}' named in the manifest was not found{place}.")
        digest = hashlib.sha256(data).hexdigest()
        if digest != files[name]:
            return Outcome(
                (),
                f"Attachment '{name}' does not match the manifest: sha256 {digest}, "
                f"the manifest says {files[name]}.",
            )
        attachments.append(Attachment(name, len(data), digest, where.bucket, where.key))
    return Outcome(tuple(attachments), None)
