"""Which account and region a request belongs to, derived exactly the way moto does it.

Where it sits: the router asks `caller(environ)` for every request, so our SSM and moto's
S3/STS/EC2/IAM always agree on the account: `MOTO_ACCOUNT_ID` if set, else the
`x-moto-account-id` header, else the access key id looked up in moto's IAM (keys returned
by STS AssumeRole map to the assumed role's account), else 123456789012. The region is the
one in the SigV4 credential scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

# moto.core.responses.BaseResponse.access_key_regex
_ACCESS_KEY = re.compile(r"AWS.*(?P<access_key>(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]))[:/]")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Caller:
    account: str
    region: str
    service: str


def _account_for_key(access_key: str) -> str:
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


def caller(environ: dict[str, Any]) -> Caller:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    scope = _SCOPE.search(auth)
    region = scope.group(3) if scope else "us-east-1"
    service = scope.group(4) if scope else ""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return Caller(os.environ["MOTO_ACCOUNT_ID"], region, service)
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return Caller(str(header), region, service)
    match = _ACCESS_KEY.search(auth)
    account = _account_for_key(match.group(1)) if match else _account_for_key("")
    return Caller(account, region, service)


def access_key_of(environ: dict[str, Any]) -> str:
    """The access key id that signed the request ("" when unsigned)."""
    match = _ACCESS_KEY.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else ""
