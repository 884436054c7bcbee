"""NextToken/MaxResults paging shared by every List/Describe operation.

Where it sits: handlers build the full, ordered result list and call `page`. The token is
opaque to callers (as in AWS) and a token the endpoint did not issue is `InvalidNextToken`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from controller.local.ssm.errors import invalid_next_token

T = TypeVar("T")


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"local:{offset}".encode()).decode()


def _decode(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_next_token() from None
    prefix, _, number = text.partition(":")
    if prefix != "local" or not number.isdigit():
        raise invalid_next_token()
    return int(number)


def page(
    items: Sequence[T], max_results: int | None, next_token: str | None, default: int
) -> tuple[list[T], str | None]:
    """One page of `items` and the token of the next page (None on the last page)."""
    start = _decode(next_token) if next_token else 0
    size = max_results or default
    chunk = list(items[start : start + size])
    end = start + size
    return chunk, (_encode(end) if end < len(items) else None)
