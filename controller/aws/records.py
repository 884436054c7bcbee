"""The location record: every (account, region) where a controller owns something, in S3.

Stage: the AWS edge of a pass, read at the start of a pass and written after apply by
`controller.reconcile.engine`. It lets a pass find what it left behind when Settings shrank
(an account left the OU, a region was removed, a placement narrowed): those locations are
observed once more and their owned resources pruned under the usual rules.

Why S3, in the artifacts bucket: it survives a new pod (the controller's disk does not), the
controller already may read and write objects under the artifacts prefix, an object has no
size limit that 150+ locations would reach (an SSM String parameter holds 4 KB in the
standard tier), and S3 conditional writes make it safe against concurrent writers:
`If-None-Match: *` creates it only if absent and `If-Match: <ETag>` replaces only the version
that was read, else 412 Precondition Failed and the writer reads it again and merges
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
One object per owner and source (`<prefix>ssm-gitops/locations/<owner>/<sha256 of source>.json`),
so two repositories' controllers never touch each other's record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from controller.aws.api import Clients, request
from controller.aws.errors import AwsError, NotFound
from controller.repository.rules import ROLE_ARN

Place = tuple[str, str, str]  # (account id, region, role ARN assumed there or "" for our own)

_ATTEMPTS = 5  # conditional writes lost to another writer before giving up for this pass
# The record is read from a bucket others may write: anything in it is checked before use.
# Each entry is well under 200 bytes; 4 MiB holds some 20,000 locations, far beyond what
# Settings can name, and bounds what a hostile object costs to read.
MAX_RECORD_BYTES = 4 * 1024 * 1024
_ACCOUNT = re.compile(r"^\d{12}$")  # an AWS account id: 12 digits
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")  # e.g. us-east-1, us-gov-west-1


class BadRecord(AwsError):
    """The record object is not one a controller wrote (garbage, too large, or an entry
    that could make the pass act where it would not): it is neither used nor written."""


@dataclass(frozen=True)
class Record:
    """The record as read: the locations and the ETag to replace it conditionally."""

    places: frozenset[Place]
    etag: str | None  # None: no record yet


def record_key(prefix: str, owner: str, source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]
    return f"{prefix}ssm-gitops/locations/{owner}/{digest}.json"


def read_record(clients: Clients, bucket: str, key: str) -> Record:
    """The record, or an empty one when it does not exist yet."""
    try:
        response = request(clients, "s3", "GetObject", Bucket=bucket, Key=key)
    except NotFound:
        return Record(frozenset(), None)
    size = int(response.get("ContentLength") or 0)
    data = response["Body"].read(MAX_RECORD_BYTES + 1)
    response["Body"].close()
    if size > MAX_RECORD_BYTES or len(data) > MAX_RECORD_BYTES:
        raise BadRecord("GetObject", "BadRecord", f"more than {MAX_RECORD_BYTES} bytes")
    return Record(_places(data), str(response["ETag"]))


def _places(data: bytes) -> frozenset[Place]:
    """The record's locations, each checked: a role must be in the entry's own account, as
    Settings requires of roleArn (repository/models.py): a role of another account would read
    that account's resources as the left location's, and prune them."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadRecord("GetObject", "BadRecord", "not JSON") from None
    entries = body.get("locations") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise BadRecord("GetObject", "BadRecord", "no list of locations")
    places: set[Place] = set()
    for number, entry in enumerate(entries):
        fields = (
            (entry.get("account"), entry.get("region"), entry.get("role", ""))
            if isinstance(entry, dict)
            else (None, None, None)
        )
        account, region, role = fields
        if not (
            isinstance(account, str)
            and _ACCOUNT.match(account)
            and isinstance(region, str)
            and _REGION.match(region)
            and isinstance(role, str)
            and (role == "" or _role_account(role) == account)
        ):
            raise BadRecord(
                "GetObject",
                "BadRecord",
                f"locations[{number}] is not an account id, a region and a role of that account",
            )
        places.add((account, region, role))
    return frozenset(places)


def _role_account(role: str) -> str | None:
    match = ROLE_ARN.match(role)
    return match.group(1) if match else None


def write_record(
    clients: Clients,
    bucket: str,
    key: str,
    record: Record,
    change: Callable[[frozenset[Place]], frozenset[Place]],
    *,
    owner: str,
    source: str,
) -> Record:
    """Replace the record with `change(places)`, conditionally on the version `record` read.

    When another writer got there first (412), read it again and apply `change` to what it
    wrote: `change` must be a merge (add what this pass needs, drop only what it cleaned).
    """
    current = record
    for _attempt in range(_ATTEMPTS):
        wanted = change(current.places)
        if current.etag is not None and wanted == current.places:
            return current
        body = json.dumps(
            {
                "owner": owner,
                "source": source,
                "locations": [
                    {"account": account, "region": region, "role": role}
                    for account, region, role in sorted(wanted)
                ],
            },
            indent=1,
        ).encode("utf-8")
        condition = {"IfMatch": current.etag} if current.etag else {"IfNoneMatch": "*"}
        try:
            response = request(
                clients,
                "s3",
                "PutObject",
                idempotent=False,
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                **condition,
            )
        except AwsError as error:
            if error.code not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            current = read_record(clients, bucket, key)
            continue
        return Record(wanted, str(response["ETag"]))
    raise AwsError("PutObject", "PreconditionFailed", f"s3://{bucket}/{key} kept changing")
