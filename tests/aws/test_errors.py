"""The error family: AWS error codes and HTTP statuses -> throttled, denied, not_found,
conflict, invalid, server_error; and the TooManyUpdates retry botocore does not do
(controller.aws.api, the one request path)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from controller.aws import api
from controller.aws.api import call
from controller.aws.errors import Conflict, Throttled, classify


@pytest.mark.parametrize(
    ("code", "status", "family"),
    [
        ("ThrottlingException", 400, "throttled"),
        ("TooManyUpdates", 400, "throttled"),
        ("AccessDeniedException", 400, "denied"),
        ("ExpiredTokenException", 400, "denied"),
        ("InvalidDocument", 400, "not_found"),
        ("AssociationDoesNotExist", 400, "not_found"),
        ("NoSuchBucket", 404, "not_found"),
        ("DocumentAlreadyExists", 400, "conflict"),
        ("DuplicateDocumentVersionName", 400, "conflict"),
        ("InvalidAssociationVersion", 400, "conflict"),
        ("ValidationException", 400, "invalid"),
        ("InvalidDocumentContent", 400, "invalid"),
        ("InternalServerError", 500, "server_error"),
        ("SomethingNew", 503, "server_error"),
        ("SomethingNew", 403, "denied"),
        ("SomethingNew", 429, "throttled"),
    ],
)
def test_codes_map_to_families(code: str, status: int, family: str) -> None:
    assert classify(code, status).family == family


def _client_error(code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "Op",
    )


def test_too_many_updates_is_retried_for_idempotent_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api, "_TOO_MANY_UPDATES_DELAYS", (0, 0))
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _client_error("TooManyUpdates")
        return "done"

    assert call("ModifyDocumentPermission", flaky) == "done"
    assert len(attempts) == 3


def test_non_idempotent_calls_are_not_retried() -> None:
    attempts: list[int] = []

    def create() -> None:
        attempts.append(1)
        raise _client_error("TooManyUpdates")

    with pytest.raises(Throttled):
        call("CreateAssociation", create, idempotent=False)
    assert len(attempts) == 1


def test_errors_chain_the_original() -> None:
    def exists() -> None:
        raise _client_error("DocumentAlreadyExists")

    with pytest.raises(Conflict) as caught:
        call("CreateDocument", exists)
    assert isinstance(caught.value.__cause__, ClientError)
    assert str(caught.value) == "CreateDocument: DocumentAlreadyExists: m"
