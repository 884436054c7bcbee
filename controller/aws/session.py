"""Sessions per account and region, and the botocore clients they make.

Stage: the AWS edge of a pass. `Sessions` hands out one `AwsClients` per (account, region):
the controller's own credentials for its own account, STS AssumeRole for the accounts named
in Settings. Every client is made by `_client()`, configured with the retry mode of
`controller.aws.api` (where every retry is decided) and hooked to the `api.CallCounter`
shared by every client of one `Sessions`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import BotoCoreError

from controller.aws import api
from controller.aws.api import BotoClient, CallCounter, request
from controller.aws.pacing import Pacer
from controller.errors import UserError

# RoleSessionName and SourceIdentity: 2 to 64 characters of [\w+=,.@-], \w being ASCII
# letters, digits and underscore
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
_SESSION_CHARS = re.compile(r"[^A-Za-z0-9_+=,.@-]")
_SESSION_MAX = 64
_SESSION_PREFIX = "ssm-gitops-"


def session_name(owner: str) -> str:
    """The RoleSessionName and SourceIdentity of the controller named `owner`:
    `ssm-gitops-<owner>`, so CloudTrail (and the role's trust policy) tells controllers apart.

    An owner name with characters STS refuses, or too long, is sanitised (each such
    character becomes `-`, the name is cut) and gets 8 hex digits of its sha256, so that two
    owners never share a session name ("team a" and "team-a" stay apart).
    """
    wanted = _SESSION_PREFIX + owner
    if not _SESSION_CHARS.search(wanted) and len(wanted) <= _SESSION_MAX:
        return wanted
    digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
    cleaned = _SESSION_CHARS.sub("-", wanted)[: _SESSION_MAX - len(digest) - 1]
    return f"{cleaned}-{digest}"


class AwsConfigError(UserError):
    """The AWS configuration itself is wrong (profile, endpoint, region): one line."""


def _session() -> boto3.Session:
    try:
        return boto3.Session()
    except BotoCoreError as error:  # e.g. ProfileNotFound
        raise AwsConfigError(
            f"AWS configuration: {error} (check AWS_PROFILE and ~/.aws/config)"
        ) from error


# Client creation from one shared boto3 session is not thread-safe (boto3's "Session objects
# are not thread safe"); it happens once per location and service, so one lock is enough.
_CREATING = threading.Lock()


def _client(
    session: boto3.Session,
    service: str,
    region: str,
    counter: CallCounter,
    *,
    retries: bool,
    credentials: tuple[str, str, str] | None = None,
) -> BotoClient:
    """A botocore client whose every attempt `counter` counts, with botocore's retries or
    without (`api.config`); a bad endpoint or region is one line naming the setting.

    `credentials` (key id, secret, token) of an assumed role are given to the client, not
    to a new session: every client then shares the one session's loaded service models
    (a boto3 session per account held its own copy: ~20 MB each, 1 GB at 50 accounts)."""
    keys = (
        {}
        if credentials is None
        else dict(
            aws_access_key_id=credentials[0],
            aws_secret_access_key=credentials[1],
            aws_session_token=credentials[2],
        )
    )
    try:
        with _CREATING:
            client = session.client(
                service, region_name=region, config=api.config(idempotent=retries), **keys
            )
    except (BotoCoreError, ValueError) as error:  # ValueError: "Invalid endpoint: ..."
        raise AwsConfigError(
            f"AWS configuration: cannot make a {service} client in {region}: {error} "
            "(check AWS_ENDPOINT_URL and AWS_REGION)"
        ) from error
    client.meta.events.register("response-received", counter.on_response)
    return client


# Calls in flight per (account, region) unless Sessions is told otherwise: AWS throttles
# per account and Region, so a few concurrent calls keep a location's buckets busy without
# turning every extra call into a ThrottlingException.
CALLS_PER_LOCATION = 8


@dataclass
class AwsClients:
    """The clients for one (account, region); created once and reused across passes.

    `slots` bounds the calls in flight in this location (`api.request` holds one per call)
    and `pacer` spaces its throttled operations (`controller.aws.pacing`); every
    `AwsClients` of one location from one `Sessions` shares both."""

    account: str
    region: str
    session: boto3.Session
    counter: CallCounter
    _clients: dict[str, BotoClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(CALLS_PER_LOCATION)
    )
    pacer: Pacer = field(default_factory=Pacer)  # shared per location, like `slots`
    credentials: tuple[str, str, str] | None = None  # an assumed role's, else the session's

    def slot(self) -> threading.BoundedSemaphore:
        """One of this location's slots, as a context manager (`with clients.slot():`)."""
        return self.slots

    def client(self, service: str, *, retries: bool = True) -> BotoClient:
        """The client of `service`, made once; `retries=False` for non-idempotent calls
        (`api.request(..., idempotent=False)` asks for it)."""
        key = f"{service}:{retries}"
        with self._lock:
            if key not in self._clients:
                self._clients[key] = _client(
                    self.session,
                    service,
                    self.region,
                    self.counter,
                    retries=retries,
                    credentials=self.credentials,
                )
            return self._clients[key]

    @property
    def ssm(self) -> BotoClient:
        return self.client("ssm")

    @property
    def s3(self) -> BotoClient:
        return self.client("s3")


@dataclass(frozen=True)
class _Assumed:
    clients: dict[str, AwsClients]
    expires_at: float


class Sessions:
    """Hands out `AwsClients` per (account, region); one instance lives across passes.

    `name` is the controller's owner name: the session name and SourceIdentity of every
    AssumeRole are `session_name(name)`.
    """

    def __init__(
        self,
        counter: CallCounter | None = None,
        *,
        name: str = "ssm-gitops",
        calls_per_location: int = CALLS_PER_LOCATION,
    ) -> None:
        self.counter = counter or CallCounter()
        self.calls_per_location = max(1, calls_per_location)
        # (account, region) -> the semaphore every AwsClients there shares, so refreshed
        # credentials (new AwsClients) never double a location's calls in flight.
        self._slots: dict[tuple[str, str], threading.BoundedSemaphore] = {}
        self._pacers: dict[tuple[str, str], Pacer] = {}
        self.session_name = session_name(name)
        self._base = _session()
        self._home: dict[str, AwsClients] = {}
        self._assumed: dict[str, _Assumed] = {}
        self._home_account: str | None = None
        self._lock = threading.Lock()

    def default_region(self) -> str:
        return self._base.region_name or "us-east-1"

    def home(self, region: str) -> AwsClients:
        """Clients with the controller's own credentials."""
        with self._lock:
            if region not in self._home:
                account = self.home_account_unlocked()
                self._home[region] = AwsClients(
                    account,
                    region,
                    self._base,
                    self.counter,
                    slots=self._slot(account, region),
                    pacer=self._pacer(account, region),
                )
            return self._home[region]

    def _slot(self, account: str, region: str) -> threading.BoundedSemaphore:
        """The location's semaphore (call with `self._lock` held)."""
        key = (account, region)
        if key not in self._slots:
            self._slots[key] = threading.BoundedSemaphore(self.calls_per_location)
        return self._slots[key]

    def _pacer(self, account: str, region: str) -> Pacer:
        """The location's pacer (call with `self._lock` held)."""
        return self._pacers.setdefault((account, region), Pacer())

    def home_account(self) -> str:
        with self._lock:
            return self.home_account_unlocked()

    def home_account_unlocked(self) -> str:
        if self._home_account is None:
            identity = request(self._own(self.default_region()), "sts", "GetCallerIdentity")
            self._home_account = str(identity["Account"])
        return self._home_account

    def _own(self, region: str) -> AwsClients:
        """Clients with the controller's own credentials, for the STS calls that find out
        the home account or assume a role (so outside `home()` and its lock)."""
        return AwsClients(self._home_account or "", region, self._base, self.counter)

    def for_account(self, account: str, region: str, role_arn: str | None) -> AwsClients:
        """Clients in `account`: our own credentials, or STS AssumeRole into `role_arn`."""
        if role_arn is None or account == self.home_account():
            return self.home(region)
        with self._lock:
            assumed = self._assumed.get(role_arn)
            # Refresh five minutes before the temporary credentials expire (AssumeRole
            # default duration: one hour, https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
            if assumed is None or assumed.expires_at - 300 < time.time():
                # SourceIdentity stays on the session and on every role chained from it,
                # and CloudTrail records it with each call; the account role's trust policy
                # must allow sts:SetSourceIdentity (deploy/iam/account-role-trust.json;
                # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_monitor.html).
                response = request(
                    self._own(region),
                    "sts",
                    "AssumeRole",
                    RoleArn=role_arn,
                    RoleSessionName=self.session_name,
                    SourceIdentity=self.session_name,
                )
                credentials = response["Credentials"]
                assumed = _Assumed({}, credentials["Expiration"].timestamp())
                assumed.clients["_session"] = AwsClients(
                    account,
                    region,
                    self._base,
                    self.counter,
                    credentials=(
                        credentials["AccessKeyId"],
                        credentials["SecretAccessKey"],
                        credentials["SessionToken"],
                    ),
                    slots=self._slot(account, region),
                    pacer=self._pacer(account, region),
                )
                self._assumed[role_arn] = assumed
            if region not in assumed.clients:
                base = assumed.clients["_session"]
                assumed.clients[region] = AwsClients(
                    account,
                    region,
                    base.session,
                    self.counter,
                    credentials=base.credentials,
                    slots=self._slot(account, region),
                    pacer=self._pacer(account, region),
                )
            return assumed.clients[region]
