"""A small, valid repository in the contract's format, as files to commit in tests."""

from __future__ import annotations

BUCKET = "runtime-test-artifacts"


def settings(*, suspend: bool = False, prune: bool = True, max_deletes: int = 10) -> str:
    return f"""apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: {BUCKET}, prefix: packages/}}
  regions: [us-east-1]
  prune: {{enabled: {str(prune).lower()}, maxDeletes: {max_deletes}}}
  suspend: {str(suspend).lower()}
"""


def package(name: str, versions: list[str], default: str) -> str:
    blocks = "".join(
        f"""    - name: "{v}"
      files:
        - platform: amazon
          platformVersion: _any
          arch: x86_64
          source: {name}/{v}
"""
        for v in versions
    )
    return f"""apiVersion: ssm-gitops/v1
kind: Package
metadata:
  name: {name}
  tags: {{team: runtime-tests}}
spec:
  description: {name} for the runtime tests
  defaultVersion: "{default}"
  versions:
{blocks}"""


def package_sources(name: str, versions: list[str]) -> dict[str, str | None]:
    files: dict[str, str | None] = {}
    for v in versions:
        files[f"{name}/{v}/install.sh"] = f"#!/bin/sh\necho installing {name} {v}\n"
        files[f"{name}/{v}/uninstall.sh"] = f"#!/bin/sh\necho removing {name} {v}\n"
    return files


def association(name: str, package_name: str, schedule: str = "rate(1 day)") -> str:
    return f"""apiVersion: ssm-gitops/v1
kind: Association
metadata:
  name: {name}
spec:
  package: {package_name}
  action: Install
  targets: [{{key: "tag:env", values: [prod]}}]
  schedule: {schedule}
"""


def repository(
    versions: list[str] = ["1.0.0"],  # noqa: B006 - never mutated
    default: str | None = None,
    *,
    schedule: str = "rate(1 day)",
    suspend: bool = False,
    with_association: bool = True,
    max_deletes: int = 10,
) -> dict[str, str | None]:
    """Files of a repository with one package (`agent`) and one association (`agent-prod`)."""
    files: dict[str, str | None] = {
        "settings.yaml": settings(suspend=suspend, max_deletes=max_deletes),
        "packages/agent.yaml": package("agent", versions, default or versions[-1]),
        **{f"packages/{k}": v for k, v in package_sources("agent", versions).items()},
    }
    if with_association:
        files["associations/agent-prod.yaml"] = association("agent-prod", "agent", schedule)
    return files
