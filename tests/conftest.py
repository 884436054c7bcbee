"""Shared fixtures. Tests mirror the package layout: tests/repository, tests/packaging, tests/aws,
tests/reconcile, tests/runtime, tests/local, and tests/e2e for real processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from controller.local import LocalAWS


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach real AWS by accident: fake credentials, a fixed region.

    Tests marked `aws` (the conformance suite against real AWS) keep the environment.
    """
    if os.environ.get("SSM_GITOPS_REAL_AWS") == "1":
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


# -- the embedded local AWS endpoint (controller/local, docs/local.md) -------------------
# One server per pytest session, i.e. per xdist worker; every test starts from empty state.


@pytest.fixture(scope="session")
def _local_aws_server() -> Iterator[LocalAWS]:
    from controller.local import LocalAWS

    with LocalAWS(check_responses=True) as aws:
        yield aws


@pytest.fixture
def local_aws(_local_aws_server: LocalAWS) -> LocalAWS:
    """The running local endpoint, reset (SSM, S3, STS, EC2, IAM, counters, faults) through
    `POST /_local/reset`. Use `local_aws.client("ssm")` for a boto3 client against it and
    `local_aws.ssm` for the fleet's extension point."""
    _local_aws_server.reset()
    return _local_aws_server


@pytest.fixture
def aws_env(local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> LocalAWS:
    """`local_aws`, with AWS_ENDPOINT_URL pointing at it for code that builds its own
    clients (the controller, the AWS CLI in a subprocess)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint_url)
    return local_aws


@pytest.fixture
def aws_client(local_aws: LocalAWS) -> Callable[..., Any]:
    """Factory: `aws_client("s3", region="eu-west-1")` -> a boto3 client on the endpoint."""
    return local_aws.client
