"""Shared fixtures. Tests mirror the package layout: tests/spec, tests/build, tests/aws,
tests/reconcile, tests/runtime, tests/local, and tests/e2e for real processes."""

from __future__ import annotations

import os

import pytest


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
