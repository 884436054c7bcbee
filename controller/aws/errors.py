"""The project's AWS error family: what the rest of the controller sees instead of botocore.

Every AWS call made by `controller.aws` goes through `controller.aws.api.request()`, which
turns botocore's `ClientError` (and connection failures) into one of these classes with
`translate()`, chained with `raise ... from` so the original stays in the traceback for
debugging. The reconciler decides from the class alone: `Throttled` is retried later,
`Denied` and `Invalid` fail that resource, `NotFound` and `Conflict` are often expected
answers (see the idempotency rules in `controller.reconcile.apply`).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from controller.errors import UserError


class AwsError(UserError):
    """An AWS call failed; `str()` is one line: operation, code and AWS's message."""

    family = "error"

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.aws_message = message
        super().__init__(f"{operation}: {code}: {message}".rstrip(": "))


class Throttled(AwsError):
    """Too many requests; botocore's `standard` retries already gave up once."""

    family = "throttled"


class Denied(AwsError):
    """The credentials may not do this: fix the IAM policy (deploy/iam/controller-policy.json)."""

    family = "denied"


class NotFound(AwsError):
    """The document, version, association or bucket does not exist."""

    family = "not_found"


class Conflict(AwsError):
    """The resource already exists, or changed under us (e.g. AssociationVersion)."""

    family = "conflict"


class Invalid(AwsError):
    """AWS rejected the request as malformed or not allowed in the resource's state."""

    family = "invalid"


class ServerError(AwsError):
    """AWS (or the network) failed after retries; try again on the next pass."""

    family = "server_error"


# Error codes from the SSM, S3 and STS API references ("Errors" section of each action).
_FAMILIES: dict[str, type[AwsError]] = {
    **dict.fromkeys(
        (
            "ThrottlingException",
            "Throttling",
            "TooManyUpdates",
            "RequestLimitExceeded",
            "TooManyRequestsException",
            "SlowDown",
            "RequestThrottled",
        ),
        Throttled,
    ),
    **dict.fromkeys(
        (
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
            "AllAccessDisabled",
        ),
        Denied,
    ),
    **dict.fromkeys(
        (
            "InvalidDocument",
            "AssociationDoesNotExist",
            "InvalidResourceId",
            "NoSuchBucket",
            "NoSuchKey",
            "NotFound",
            "404",
            "ResourceNotFoundException",
        ),
        NotFound,
    ),
    **dict.fromkeys(
        (
            "DocumentAlreadyExists",
            "DuplicateDocumentVersionName",
            "DuplicateDocumentContent",
            "AssociationAlreadyExists",
            "InvalidAssociationVersion",
            "AssociationVersionMismatch",
            "ResourceInUseException",
            "BucketAlreadyOwnedByYou",
        ),
        Conflict,
    ),
    **dict.fromkeys(
        ("InternalServerError", "InternalError", "ServiceUnavailable", "InternalFailure"),
        ServerError,
    ),
}


def classify(code: str, status: int | None = None) -> type[AwsError]:
    """The family of an AWS error code (HTTP status decides for codes not listed)."""
    family = _FAMILIES.get(code)
    if family is not None:
        return family
    if status is not None and status >= 500:
        return ServerError
    if status == 404:
        return NotFound
    if status in (401, 403):
        return Denied
    if status == 429:
        return Throttled
    return Invalid


def translate(operation: str, error: Exception) -> AwsError:
    """The project error for a botocore exception (not raised: the caller chains it)."""
    if isinstance(error, ClientError):
        info: dict[str, Any] = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(info.get("Message", "")).replace("\n", " ")
        return classify(code, status)(operation, code, message)
    return ServerError(operation, type(error).__name__, str(error).replace("\n", " "))
