"""SSM errors as AWS sends them: a JSON body with `__type` and `message`, and an HTTP status.

Where it sits: every handler of the local SSM service raises `SsmError`; the service turns
it into the AWS JSON 1.1 error shape that botocore parses into `ClientError`
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html).
"""

from __future__ import annotations

import json


class SsmError(Exception):
    """An error AWS would return: its code (`__type`), message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message}).encode()


def invalid_document(message: str = "The specified document does not exist.") -> SsmError:
    return SsmError("InvalidDocument", message)


def invalid_document_version(
    message: str = "The document version is not valid or does not exist.",
) -> SsmError:
    return SsmError("InvalidDocumentVersion", message)


def invalid_document_operation(message: str) -> SsmError:
    return SsmError("InvalidDocumentOperation", message)


def invalid_next_token() -> SsmError:
    return SsmError("InvalidNextToken", "The specified token isn't valid.")


def association_does_not_exist() -> SsmError:
    return SsmError("AssociationDoesNotExist", "The specified association does not exist.")


def validation(message: str) -> SsmError:
    return SsmError("ValidationException", message)


def internal(message: str = "An internal error occurred.") -> SsmError:
    return SsmError("InternalServerError", message, status=500)
