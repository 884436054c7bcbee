"""controller/aws/session.py: every controller assumes account roles under a session name and
a SourceIdentity of its own, so CloudTrail tells two controllers apart (issue 11).

Bug guarded: every controller called AssumeRole with RoleSessionName "ssm-gitops" and no
SourceIdentity, whatever its owner name.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from controller.aws.session import Sessions, session_name
from controller.local import LocalAWS

OTHER_ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ssm-gitops"


class StsRecorder:
    """Wraps the local endpoint's WSGI app: keeps the form parameters of every STS
    AssumeRole request, then hands the request on unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.assume_role: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        if form.get("Action") == "AssumeRole":
            with self._lock:
                self.assume_role.append(form)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@pytest.fixture
def sts_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAWS, StsRecorder]]:
    aws = LocalAWS()
    recorder = StsRecorder(aws.app)
    aws.app = recorder  # type: ignore[assignment]
    with aws:
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
        yield aws, recorder


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("ssm-gitops", "ssm-gitops-ssm-gitops"),
        ("team-a", "ssm-gitops-team-a"),
        ("platform.prod@eu_west+1=a,b", "ssm-gitops-platform.prod@eu_west+1=a,b"),
    ],
)
def test_session_name_is_ssm_gitops_and_the_owner(owner: str, expected: str) -> None:
    assert session_name(owner) == expected


@pytest.mark.parametrize(
    "owner",
    ["team a", "team/a", "team:a", "x" * 80, "équipe", "a" * 53 + "/"],
)
def test_session_name_fits_the_sts_pattern_and_stays_distinct(owner: str) -> None:
    """Characters outside [\\w+=,.@-] are replaced and a long name is shortened; a digest of
    the owner name keeps two such owners apart
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html: RoleSessionName
    and SourceIdentity match [\\w+=,.@-]*, 2 to 64 characters)."""
    import re

    name = session_name(owner)
    assert re.fullmatch(r"[A-Za-z0-9_+=,.@-]{2,64}", name), name
    assert name.startswith("ssm-gitops-")
    # The same characters after sanitising, yet another owner: another name.
    twin = owner.replace(" ", "-").replace("/", "-").replace(":", "-")
    if twin != owner:
        assert session_name(twin) != name
    assert session_name(owner + "2") != name


def test_assume_role_names_the_controller(sts_endpoint: tuple[LocalAWS, StsRecorder]) -> None:
    """AssumeRole carries RoleSessionName and SourceIdentity `ssm-gitops-<owner>`, and the
    temporary credentials act as that session (the assumed-role ARN ends with it)."""
    aws, recorder = sts_endpoint
    sessions = Sessions(name="team-a")
    clients = sessions.for_account(OTHER_ACCOUNT, "us-east-1", ROLE)
    (request,) = recorder.assume_role
    assert request["RoleArn"] == ROLE
    assert request["RoleSessionName"] == "ssm-gitops-team-a"
    assert request["SourceIdentity"] == "ssm-gitops-team-a"
    identity = clients.client("sts").get_caller_identity()
    assert identity["Account"] == OTHER_ACCOUNT
    assert identity["Arn"].endswith(":assumed-role/ssm-gitops/ssm-gitops-team-a"), identity


def test_two_controllers_use_two_session_names(
    sts_endpoint: tuple[LocalAWS, StsRecorder],
) -> None:
    aws, recorder = sts_endpoint
    for owner in ("team-a", "team-b"):
        Sessions(name=owner).for_account(OTHER_ACCOUNT, "us-east-1", ROLE)
    names = [r["RoleSessionName"] for r in recorder.assume_role]
    assert names == ["ssm-gitops-team-a", "ssm-gitops-team-b"]
