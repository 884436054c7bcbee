"""The embedded S3 verifies a PutObject's SHA-256 checksum against the bytes, as S3 does.

Where it sits: server.py calls `refuse_bad_checksum` on every `s3:PutObject` before moto
sees the request. moto 5.2.5 stores a client-sent `x-amz-checksum-sha256` as given, without
hashing the body (and stores none when the `x-amz-sdk-checksum-algorithm` header is
absent). Real S3 computes the checksum of what it received, refuses a mismatch with
`BadDigest` (HTTP 400) and stores the checksum with the object
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
Without this, a lying checksum could be planted locally that real S3 never accepts.
"""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

_BAD_DIGEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>'
    b"<Message>The SHA256 you specified did not match the calculated checksum.</Message>"
    b"</Error>"
)


def refuse_bad_checksum(environ: dict[str, Any]) -> bytes | None:
    """The BadDigest error body when the request's SHA-256 checksum does not match its
    body; None (and the request made ready for moto to store the checksum) otherwise."""
    claimed = str(environ.get("HTTP_X_AMZ_CHECKSUM_SHA256") or "")
    if not claimed or "aws-chunked" in str(environ.get("HTTP_CONTENT_ENCODING", "")):
        return None  # no checksum, or a trailer checksum that moto itself reads from the body
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    if base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") != claimed:
        return _BAD_DIGEST
    # moto stores a client-sent checksum only when the algorithm header names it too.
    environ.setdefault("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "SHA256")
    return None
