"""The `rollout` block of a Package (issue 13): each mistake is one line naming file:line."""

from __future__ import annotations

import pytest

from controller.repository import SpecErrors, load_repository, rollout_paused
from tests.repository.conftest import RepoWriter, package_files, package_yaml

ASSOCIATION = """\
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: {name}}}
spec:
  package: {package}
  targets: [{{key: "tag:env", values: [{name}]}}]
{extra}"""


def _repo(rollout: str, *, extra_assoc: str = "", other_package: bool = False) -> dict[str, str]:
    text = package_yaml(versions=("1.0", "1.1")).replace(
        "  versions:", "  rollout:\n" + rollout + "  versions:"
    )
    for name in ("canary", "prod"):
        text += ASSOCIATION.format(
            name=name, package="demo-agent", extra=extra_assoc if name == "prod" else ""
        )
    if other_package:
        text += "---\n" + package_yaml("other-agent", versions=("1.0",))
        text += ASSOCIATION.format(name="elsewhere", package="other-agent", extra="")
    return {"packages.yaml": text, **package_files(("1.0", "1.1"))}


def _errors(write_repo: RepoWriter, files: dict[str, str]) -> list[str]:
    with pytest.raises(SpecErrors) as raised:
        load_repository(write_repo(files))
    return [str(error) for error in raised.value.errors]


def test_a_valid_rollout_loads(write_repo: RepoWriter) -> None:
    rollout = (
        "    rings:\n      - {associations: [canary], bake: 15m}\n"
        "      - {associations: [prod]}\n"
        '    maxFailed: "10%"\n    alarms: [demo-errors]\n    onFailure: halt\n'
    )
    repo = load_repository(write_repo(_repo(rollout)))
    spec = repo.packages[0].rollout
    assert spec is not None
    assert [ring.associations for ring in spec.rings] == [("canary",), ("prod",)]
    assert spec.rings[0].bake == "15m" and spec.max_failed == "10%"
    assert spec.alarms == ("demo-errors",) and spec.on_failure == "halt"
    assert not rollout_paused(repo.packages[0])


@pytest.mark.parametrize(
    ("rollout", "extra", "other", "line", "expected"),
    [
        (
            "    rings:\n      - {associations: [nowhere]}\n",
            "",
            False,
            8,
            "not defined in this repository",
        ),
        (
            "    rings:\n      - {associations: [canary]}\n      - {associations: [canary]}\n",
            "",
            False,
            9,
            "already in ring 1",
        ),
        (
            "    rings:\n      - {associations: [prod]}\n",
            '  version: "1.0"\n',
            False,
            8,
            "pins version '1.0'",
        ),
        (
            "    rings:\n      - {associations: [elsewhere]}\n",
            "",
            True,
            8,
            "installs 'other-agent', not 'demo-agent'",
        ),
        ("    rings:\n      - {associations: [canary], bake: 15 minutes}\n", "", False, 8, "bake"),
        ("    rings:\n      - {associations: [canary], bake: 25h}\n", "", False, 8, "at most 24h"),
        (
            '    rings:\n      - {associations: [canary]}\n    maxFailed: "ten"\n',
            "",
            False,
            9,
            "maxFailed",
        ),
        (
            '    rings:\n      - {associations: [canary]}\n    maxFailed: "101%"\n',
            "",
            False,
            9,
            "maxFailed",
        ),
        (
            "    rings:\n      - {associations: [canary]}\n    onFailure: retry\n",
            "",
            False,
            9,
            "rollback",
        ),
        ('    rings:\n      - {associations: [canary]}\n    alarms: [""]\n', "", False, 9, "alarm"),
        ("    rings: []\n", "", False, 7, "rings"),
    ],
)
def test_rollout_mistakes_are_one_line_each(
    write_repo: RepoWriter, rollout: str, extra: str, other: bool, line: int, expected: str
) -> None:
    """Issue 13 validation: one clear line naming file:line for each rollout mistake."""
    errors = _errors(write_repo, _repo(rollout, extra_assoc=extra, other_package=other))
    assert len(errors) == 1, errors
    assert "\n" not in errors[0]
    assert f"packages.yaml:{line}:" in errors[0] and expected in errors[0], errors[0]


def test_the_pause_annotation(write_repo: RepoWriter) -> None:
    files = _repo("    rings:\n      - {associations: [canary]}\n")
    files["packages.yaml"] = files["packages.yaml"].replace(
        "metadata: {name: demo-agent}",
        'metadata: {name: demo-agent, annotations: {"ssm-gitops/rollout": paused}}',
        1,
    )
    assert rollout_paused(load_repository(write_repo(files)).packages[0])
