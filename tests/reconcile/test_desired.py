"""desired_state(repository): the repository expanded into what each location should hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.model.state import DesiredVersion, Observed
from controller.reconcile.desired import desired_state
from controller.reconcile.plan import plan
from controller.reconcile.result import ResourceState
from controller.repository import load_repository

SAMPLE = Path(__file__).resolve().parents[2] / "sample-repo"


def test_a_package_whose_build_fails_stays_desired_with_its_error() -> None:
    """Regression: it was dropped, so its error was lost and prune could delete it."""
    repository = load_repository(SAMPLE)

    def build(repo: Any, package: Any, version: Any) -> DesiredVersion:
        if package.name == "ops-toolkit":
            raise OSError("No space left on device:\n  /work/build")
        return DesiredVersion(version.name, f"manifest {version.name}", f"sha-{version.name}")

    desired = desired_state(
        repository,
        owner="ssm-gitops",
        home_account="123456789012",
        default_region="us-east-1",
        build=build,
    )
    assert "ops-toolkit" in {p.name for p in desired.packages}
    assert desired.errors == (
        ("ops-toolkit", "build failed: No space left on device: /work/build"),
    )
    result = plan(desired, Observed())
    states = {(r.kind, r.name): r.state for r in result.resources}
    assert states[("package", "ops-toolkit")] is ResourceState.FAILED
    assert not [a for a in result.actions if a.name == "ops-toolkit"]
