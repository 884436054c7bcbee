"""Typed failures: each stage's failure carries its reason and its place, and reads as the
one line it always was (controller/reconcile/result.py `Failure`, `Reason`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from botocore.config import Config

from controller.aws import api as aws_api
from controller.model.state import DesiredVersion, Location
from controller.reconcile.apply import ArtifactBucket
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import Failure, PassOutcome, Reason
from tests.aws.conftest import set_faults
from tests.reconcile.conftest import HOME, package, target

HERE = Location("123456789012", "us-east-1")


@pytest.mark.parametrize(
    ("failure", "line"),
    [
        (
            Failure(Reason.LOAD, "unknown field", path="a.yaml", line=3, col=7),
            "a.yaml:3:7: unknown field",
        ),
        # As SpecError prints a problem with no position: no `:0:0`.
        (Failure(Reason.LOAD, "not a folder", path="pkgs"), "pkgs: not a folder"),
        (
            Failure(
                Reason.APPLY,
                "AccessDenied",
                kind="association",
                name="web",
                action="update",
                location=HERE,
            ),
            "association web update (123456789012/us-east-1): AccessDenied",
        ),
        (
            Failure(
                Reason.PLAN_REJECTED,
                "bump the version",
                kind="package",
                name="agent",
                location=HERE,
            ),
            "package agent (123456789012/us-east-1): bump the version",
        ),
        (
            Failure(Reason.OBSERVE, "could not read its packages completely", location=HERE),
            "123456789012/us-east-1: could not read its packages completely",
        ),
        (Failure(Reason.INTERNAL, "RuntimeError: a bug"), "RuntimeError: a bug"),
    ],
)
def test_a_failure_reads_as_one_line(failure: Failure, line: str) -> None:
    assert str(failure) == line


def test_the_json_form_has_every_part_as_a_field() -> None:
    located = Failure(Reason.LOAD, "unknown field", path="a.yaml", line=3, col=7).to_json()
    assert located == {
        "text": "a.yaml:3:7: unknown field",
        "reason": "load",
        "message": "unknown field",
        "file": "a.yaml",
        "line": 3,
        "col": 7,
        "kind": None,
        "name": None,
        "action": None,
        "account": None,
        "region": None,
    }
    failed = Failure(
        Reason.APPLY, "AccessDenied", kind="association", name="web", action="update", location=HERE
    ).to_json()
    assert {k: failed[k] for k in ("reason", "kind", "name", "action", "account", "region")} == {
        "reason": "apply",
        "kind": "association",
        "name": "web",
        "action": "update",
        "account": "123456789012",
        "region": "us-east-1",
    }
    assert failed["file"] is None and failed["message"] == "AccessDenied"


def test_the_reasons_are_the_fixed_set_the_docs_list() -> None:
    """The metric labels and the /status words: changing them breaks dashboards and alerts."""
    assert [r.value for r in Reason] == [
        "source",
        "signature",
        "load",
        "build",
        "artifacts",
        "observe",
        "plan_rejected",
        "apply",
        "location",
        "rollout",  # issue 13: a progressive rollout's gate failed
        "internal",
    ]


def _reasons(failures: tuple[Failure, ...]) -> list[tuple[str, str, str]]:
    return sorted((f.reason.value, f.kind, f.name) for f in failures)


def test_a_pass_gives_each_failure_the_reason_of_its_stage(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    """build (a package that did not build), plan_rejected (published content changed),
    apply (SSM refused the version), each on its resource; the rest proceeds."""
    reconciler.run_desired(target((package("agent", (make_version("agent", "1.0"),)),), ()))
    changed = make_version("agent", "1.0", payload="edited")
    unpublishable = replace(make_version("bee", "1"), files=())  # its zip is never uploaded
    wanted = target(
        (
            package("agent", (changed,)),
            package("bee", (unpublishable,)),
            package("cat", (), default="1"),
        ),
    )
    wanted = replace(
        wanted, desired=replace(wanted.desired, errors=(("cat", "build failed: disk full"),))
    )
    result = reconciler.run_desired(wanted)
    assert result.outcome is PassOutcome.FAILURE
    assert _reasons(result.failures) == [
        ("apply", "package", "bee"),
        ("build", "package", "cat"),
        ("plan_rejected", "package", "agent"),
    ]
    assert all(f.location == HOME for f in result.failures)
    (rejected,) = [f for f in result.failures if f.reason is Reason.PLAN_REJECTED]
    assert "bump the version" in rejected.message
    assert result.errors == tuple(str(f) for f in result.failures)


def test_a_missing_bucket_is_an_artifacts_failure(
    reconciler: Reconciler, make_version: Callable[..., DesiredVersion]
) -> None:
    wanted = replace(
        target((package("agent", (make_version("agent", "1.0"),)),)),
        artifacts=ArtifactBucket("no-such-bucket", "packages/"),
    )
    result = reconciler.run_desired(wanted)
    (failure,) = result.failures
    assert failure.reason is Reason.ARTIFACTS and "no-such-bucket" in failure.message
    assert result.actions == ()


def test_a_location_not_read_is_an_observe_failure(
    reconciler: Reconciler,
    make_version: Callable[..., DesiredVersion],
    aws_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ListAssociations throttled past the retries: that location was not read."""
    monkeypatch.setattr(
        aws_api,
        "RETRIES",
        Config(retries={"mode": "standard", "max_attempts": 2}, max_pool_connections=32),
    )
    set_faults(
        aws_env, {"throttle": {"rate": 0.001, "burst": 0, "operations": ["ListAssociations"]}}
    )
    try:
        result = reconciler.run_desired(
            target((package("agent", (make_version("agent", "1.0"),)),))
        )
    finally:
        set_faults(aws_env, {})
    observe = [f for f in result.failures if f.reason is Reason.OBSERVE]
    assert [f.location for f in observe] == [HOME], result.errors
    assert "could not read its associations completely" in observe[0].message
