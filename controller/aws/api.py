"""The one request path of the AWS adapter: every call, every retry, every page.

Stage: the AWS edge of a pass. The resource modules (packages, associations, sharing, tags,
artifacts) and the sessions call AWS only through `request()`, list only through `pages()`
/ `items()`, and nothing else in the controller holds a botocore client. Modelled on kopf's
`_cogs/clients/api.py` `request()`: one function makes the call, owns the retries and maps
the failure once into the project's error family (`controller.aws.errors`).

Every retry of the controller's AWS calls is decided here:
1. botocore's `standard` retry mode (`RETRIES`): exponential backoff with jitter on
   throttling, 5xx and connection errors, up to 6 attempts
   (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
2. SSM's `TooManyUpdates`, which botocore does not retry: a few more attempts with backoff,
   for idempotent calls only (`_TOO_MANY_UPDATES_DELAYS`).
3. A non-idempotent call (CreateAssociation: no client token,
   https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateAssociation.html)
   is never retried blindly: `request(..., idempotent=False)` makes one attempt on a client
   without retries (`NO_RETRIES`), and `create_once()` looks for what a lost attempt may have
   made before it tries again.

Calls are counted by `CallCounter`, which every client carries (`controller.aws.session`
hooks it to botocore's `response-received` event): once per HTTP attempt, botocore's own
retries included, because AWS bills and throttles attempts, not logical calls.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeAlias, TypeVar

from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from controller.aws.errors import AwsError, ServerError, Throttled, classify, translate
from controller.aws.pacing import Pacer

T = TypeVar("T")

# A botocore client. Its operation methods are generated from the service model at run
# time, which is why `request()` finds them by name rather than by attribute.
BotoClient: TypeAlias = BaseClient
# One AWS response, as botocore parses it.
Response = dict[str, Any]

# (1) botocore "standard" retry mode for every idempotent call.
RETRIES = Config(retries={"mode": "standard", "max_attempts": 6}, max_pool_connections=32)
# (3) Non-idempotent calls (CreateAssociation) are never retried by botocore: a retry after a
# lost response would create a duplicate. `create_once()` checks what exists, then retries.
NO_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=32)

# (2) botocore's standard retry mode does not know SSM's TooManyUpdates ("There are
# concurrent updates for a resource that supports one update at a time", listed under
# Errors of AddTagsToResource, CreateDocument, DeleteDocument, UpdateAssociation,
# DeleteAssociation, e.g. https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteDocument.html),
# so idempotent calls retry it here, a few times with backoff.
_TOO_MANY_UPDATES_DELAYS = (0.25, 0.5, 1.0, 2.0)

# (3) create_once(): attempts, and the pause before the n-th look-and-retry (0.5 s, 1 s, 2 s).
_CREATE_ATTEMPTS = 4
_CREATE_BACKOFF = 0.5
# ... after throttles: more attempts, a short pause (the pacer spaces them).
_THROTTLED_ATTEMPTS = 30
_THROTTLED_PAUSE = 0.2


def config(*, idempotent: bool) -> Config:
    """The botocore client configuration for idempotent or non-idempotent calls."""
    return RETRIES if idempotent else NO_RETRIES


class Clients(Protocol):
    """What `request()` needs of `controller.aws.session.AwsClients`: a client per service,
    with or without botocore's retries, and the location's limit of calls in flight."""

    def client(self, service: str, *, retries: bool = True) -> BotoClient: ...

    def slot(self) -> AbstractContextManager[Any]: ...

    @property
    def pacer(self) -> Pacer: ...


class CallCounter:
    """Counts AWS calls by (operation, result); thread-safe; `take()` starts a new pass."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, operation: str, result: str) -> None:
        with self._lock:
            self._counts[(operation, result)] += 1

    def take(self) -> dict[tuple[str, str], int]:
        """The counts since the last `take()`, and reset."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def peek(self) -> Mapping[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def on_response(self, *, context: Any = None, **kwargs: Any) -> None:
        """botocore `response-received` handler: one count per HTTP attempt."""
        model = kwargs.get("operation_model") or (context or {}).get("operation_model")
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1] or getattr(model, "name", "?")
        response = kwargs.get("response_dict") or {}
        parsed = kwargs.get("parsed_response") or {}
        if kwargs.get("exception") is not None:
            result = "server_error"
        else:
            status = int(response.get("status_code", 200))
            code = str(parsed.get("Error", {}).get("Code", "")) if status >= 300 else ""
            result = "success" if status < 300 else classify(code, status).family
        self.record(name, result)


def call(
    operation: str, function: Callable[..., T], /, *, idempotent: bool = True, **kwargs: Any
) -> T:
    """Call one botocore client method, raising the project's error family on failure.

    `request()` finds the client and the method and calls this; tests drive it with plain
    functions. The single place where a `ClientError` (or a connection failure) becomes an
    `AwsError`, chained with `raise ... from`, and where TooManyUpdates is retried
    (idempotent calls only).
    """
    delays = iter(_TOO_MANY_UPDATES_DELAYS if idempotent else ())
    while True:
        try:
            return function(**kwargs)
        except (ClientError, BotoCoreError) as error:
            translated = translate(operation, error)
            delay = next(delays, None) if translated.code == "TooManyUpdates" else None
            if delay is None:
                raise translated from error
            time.sleep(delay)


def request(
    clients: Clients,
    service: str,
    operation: str,
    /,
    *,
    idempotent: bool = True,
    **params: Any,
) -> Response:
    """One AWS operation (`"ssm", "DescribeDocument", Name=...`), by its API name.

    `idempotent=False` is the one switch for a call that must not be repeated: no botocore
    retries and no TooManyUpdates retry.

    A throttled operation is paced in its location (`controller.aws.pacing`) before the
    call takes a slot. The call holds one of its location's slots (`clients.slot()`, at most
    `Sessions.calls_per_location` calls in flight per account and region) for its whole
    duration, botocore's backoff after a throttle included: AWS throttles per account and
    region, so a throttled location slows itself down and leaves every other one alone.
    """
    client = clients.client(service, retries=idempotent)
    method: Callable[..., Response] = getattr(client, xform_name(operation))
    clients.pacer.wait(operation)  # a throttled operation's turn, before taking a slot
    with clients.slot():
        try:
            response = call(operation, method, idempotent=idempotent, **params)
        except Throttled:
            clients.pacer.outcome(operation, throttled=True)
            raise
        except AwsError:
            clients.pacer.outcome(operation, throttled=False)
            raise
    clients.pacer.outcome(operation, throttled=False)
    return response


def pages(clients: Clients, service: str, operation: str, /, **params: Any) -> Iterator[Response]:
    """Every page of a listing, following `NextToken` until AWS returns none.

    Our own loop rather than botocore's paginators: DescribeDocumentPermission has no
    paginator (botocore's ssm paginators-1.json), its pages carry two lists (AccountIds and
    AccountSharingInfoList), and every page goes through `request()` like any other call.
    The requests, and so the call counts, are the same as a paginator's: one per page.
    """
    while True:
        page = request(clients, service, operation, **params)
        yield page
        token = page.get("NextToken")
        if not token:
            return
        params["NextToken"] = token  # our own copy of the keywords: the next page's request


def items(
    clients: Clients, service: str, operation: str, key: str, /, **params: Any
) -> Iterator[dict[str, Any]]:
    """The entries under `key` of every page (`"DocumentIdentifiers"` of ListDocuments, ...)."""
    for page in pages(clients, service, operation, **params):
        yield from page.get(key, [])


def create_once(create: Callable[[], T], existing: Callable[[], T | None]) -> T:
    """A non-idempotent create that is never retried blindly.

    Before every attempt, `existing()` looks for the resource (made by an earlier attempt
    whose response was lost, or an earlier pass) and its answer wins. Only a throttle or a
    server error, after which the create may or may not have happened, leads to another
    look and another attempt, with backoff; every other error is final.

    Server errors get `_CREATE_ATTEMPTS` attempts with exponential backoff. Throttles get
    more (`_THROTTLED_ATTEMPTS`) after a short pause, the backoff being the location's pacer
    (`controller.aws.pacing`, through `request`): at organisation scale a location's
    CreateAssociation bucket is the normal bottleneck, and giving up after a few seconds
    would fail a pass that only had to wait its turn.
    """
    errors = throttles = 0
    while True:
        found = existing()
        if found is not None:
            return found
        try:
            return create()
        except Throttled:
            throttles += 1
            if throttles >= _THROTTLED_ATTEMPTS:
                raise
            # A short pause: the location's pacer (controller.aws.pacing) spaces the next
            # CreateAssociation by what it learnt of the bucket, so a growing backoff here
            # would only leave the bucket idle.
            time.sleep(_THROTTLED_PAUSE * random.uniform(0.5, 1.0))
        except ServerError:
            errors += 1
            if errors >= _CREATE_ATTEMPTS:
                raise
            time.sleep(_CREATE_BACKOFF * 2 ** (errors - 1))  # the create may have happened
