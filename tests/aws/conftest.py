"""Helpers for adapter tests against the embedded local endpoint."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from controller.aws.session import AwsClients, Sessions


def set_faults(local_aws: Any, faults: dict[str, Any]) -> None:
    """Configure the endpoint's fault injection through its admin route."""
    request = urllib.request.Request(
        local_aws.endpoint_url + "/_local/faults",
        data=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture
def sessions(aws_env: Any) -> Sessions:
    return Sessions()


@pytest.fixture
def clients(sessions: Sessions) -> AwsClients:
    return sessions.home("us-east-1")
