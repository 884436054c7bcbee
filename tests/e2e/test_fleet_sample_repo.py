"""`sample-repo/` applied by the real controller to a simulated fleet (issue 7, "Done when").

The controller (`controller.runtime.service.Service`, as `ssm-gitops run` builds it) follows
a git repository holding a copy of `sample-repo/`, against the embedded local AWS, with the
default fleet (`default_fleet(8)`, the demo's) attached. Checked: every targeted instance has
the right version installed, in its root's files and in the agent's persisted state; nothing
was written on the host; `ssm_gitops_association_targets` scraped from the running controller
matches the fleet; a commit moving datadog-agent's defaultVersion re-installs on the
instances of the rollout's two rings (sample-repo's `rollout` block: the canary ring, then
prod; the default moves last), and on no other.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pygit2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.demo import prepare_repository
from controller.local import LocalAWS
from controller.local.fleet import Fleet, InstanceSpec, default_fleet, start_fleet
from controller.local.fleet.schedule import ManualClock
from controller.local.fleet.state import InstallState, load_state
from controller.runtime.service import Options, Service
from tests.runtime.processes import ROOT, http_get

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed"),
    pytest.mark.timeout(120),
]

BUCKET = "ssm-gitops-demo-artifacts"  # sample-repo/settings.yaml
# What the packages' scripts write when they run (sample-repo/packages/*): on the host these
# must never appear; each instance gets them under its own root.
HOST_PATHS = (
    "/opt/datadog-agent",
    "/opt/ops-toolkit",
    "/opt/metrics-exporter",
    "/var/lib/datadog-agent",
    "/var/log/datadog",
    "/var/lib/amazon/ssm/packages",
)
T = TypeVar("T")


def expected_installs(
    spec: InstanceSpec, datadog_default: str, rolled_out: bool = False
) -> dict[str, str]:
    """What sample-repo/associations/*.yaml asks for on an instance with these tags
    (`rolled_out`: after a rollout, which ran the canary ring too)."""
    tags = spec.tags
    wanted: dict[str, str] = {}
    # datadog-agent-prod follows the default version on prod outside the canary ring (the
    # rings are disjoint: an instance in both would flip between their versions).
    if tags.get("env") == "prod" and tags.get("ring") in ("1", "2"):
        wanted["datadog-agent"] = datadog_default
    if tags.get("role") == "web" and tags.get("env") in ("staging", "prod"):
        wanted["metrics-exporter"] = "1.7.0"  # metrics-exporter-web: the default, 1.7.0
    if tags.get("managed-by") == "platform-team":
        wanted["ops-toolkit"] = "1.1.0"  # ops-toolkit-everywhere: the default, 1.1.0
    # datadog-agent-canary (ring=canary) runs only at its cron: nothing at creation; a
    # rollout starts it (ring 1).
    if rolled_out and tags.get("ring") == "canary":
        wanted["datadog-agent"] = datadog_default
    return wanted


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def association_targets(service: Service) -> dict[str, dict[str, float]]:
    """ssm_gitops_association_targets scraped from the running controller's /metrics."""
    code, text = http_get(service.url + "/metrics")
    assert code == 200
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "ssm_gitops_association_targets":
            for sample in family.samples:
                labels = sample.labels
                found.setdefault(labels["association"], {})[labels["status"]] = sample.value
    return found


def expected_targets(fleet: Fleet, rolled_out: bool = False) -> dict[str, dict[str, float]]:
    """Per association, how many of the fleet's instances it targets: all Success (every
    association also reports its other statuses at zero; the canary has not run)."""
    names = {
        "datadog-agent": "datadog-agent-prod",
        "metrics-exporter": "metrics-exporter-web",
        "ops-toolkit": "ops-toolkit-everywhere",
    }
    statuses = ("Success", "Failed", "Pending", "InProgress")
    counts = {
        name: dict.fromkeys(statuses, 0.0) for name in (*names.values(), "datadog-agent-canary")
    }
    for instance in fleet.instances:
        for package in expected_installs(instance.spec, "6.9.0"):
            counts[names[package]]["Success"] += 1
        if rolled_out and instance.spec.tags.get("ring") == "canary":
            counts["datadog-agent-canary"]["Success"] += 1
    return counts


def check_installed(fleet: Fleet, datadog_default: str, rolled_out: bool = False) -> None:
    """The persisted state and the files in every instance's root, package by package."""
    for instance in fleet.instances:
        root = instance.root
        wanted = expected_installs(instance.spec, datadog_default, rolled_out)
        where = f"{instance.instance_id} ({instance.spec.platform} {instance.spec.arch})"
        for package in ("datadog-agent", "metrics-exporter", "ops-toolkit"):
            state = load_state(root, package)
            if package not in wanted:
                assert state is None, f"{where}: {package} should not be there: {state}"
                continue
            version = wanted[package]
            assert state is not None, f"{where}: no installstate.json for {package}"
            assert (state.state, state.version) == (InstallState.INSTALLED, version), where
        if "datadog-agent" in wanted:
            version_file = root / "opt" / "datadog-agent" / "version"
            assert version_file.read_text().strip() == datadog_default, where
            assert (root / "opt" / "datadog-agent" / "bin" / "datadog-agent").is_file()
        else:
            assert not (root / "opt" / "datadog-agent").exists(), where
        if "ops-toolkit" in wanted:
            current = root / "opt" / "ops-toolkit" / "current"
            assert os.readlink(current) == "/opt/ops-toolkit/1.1.0", where
            assert (root / "opt" / "ops-toolkit" / "1.1.0" / "bin").is_dir(), where
        if "metrics-exporter" in wanted:
            status = (root / "var" / "lib" / "dpkg" / "status").read_text()
            assert "Package: metrics-exporter" in status and "Version: 1.7.0" in status
            assert "Status: install ok installed" in status, where
            assert (root / "opt" / "metrics-exporter" / "bin" / "metrics-exporter").is_file()


@pytest.fixture
def controller(
    aws_env: LocalAWS, tmp_path: Path
) -> Iterator[tuple[Service, Fleet, Path, pygit2.Repository]]:
    """A committed copy of sample-repo/, the default fleet, and the controller following it."""
    for path in HOST_PATHS:
        assert not Path(path).exists(), f"{path} exists on this host before the test"
    shutil.copytree(ROOT / "sample-repo", tmp_path / "src" / "sample-repo")
    watched = prepare_repository(tmp_path / "src" / "sample-repo", tmp_path / "git")
    aws_env.client("s3").create_bucket(Bucket=BUCKET)
    fleet = start_fleet(
        aws_env, default_fleet(8), tmp_path / "fleet", clock=ManualClock(), tick_seconds=None
    )
    service = Service(
        Options(
            repo=watched.repo,
            path=watched.path,
            port=0,
            poll_interval=0.5,
            resync_interval=3600,  # only polls: rollouts must be followed without a resync
            cache_dir=tmp_path / "cache",
        )
    )
    service.start()
    try:
        yield service, fleet, watched.edit_dir, pygit2.Repository(watched.repo)
    finally:
        service.stop(grace=30)
        fleet.stop()


def commit_all(repo: pygit2.Repository, message: str) -> str:
    signature = pygit2.Signature("test", "test@example.invalid")
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    parent = repo.head.target
    return str(repo.create_commit("HEAD", signature, signature, message, tree, [parent]))


def test_sample_repo_converges_on_the_fleet_and_a_new_default_reinstalls(
    controller: tuple[Service, Fleet, Path, Any],
) -> None:
    service, fleet, edit_dir, repo = controller
    first = service.wait_for_pass(60)
    assert first.last_pass is not None and first.last_pass.outcome.value == "success", (
        first.last_pass and first.last_pass.errors
    )
    assert fleet.wait_idle(60), "the first pass's rollouts did not finish"

    check_installed(fleet, "6.9.0")
    assert fleet.installed()[fleet.instances[5].instance_id] == {}  # Windows: not targeted

    # The running controller follows the rollouts it started (polls, no resync).
    expected = expected_targets(fleet)
    assert {name: counts["Success"] for name, counts in expected.items()} == {
        "datadog-agent-prod": 2,  # prod outside the canary ring
        "metrics-exporter-web": 1,
        "ops-toolkit-everywhere": 7,
        "datadog-agent-canary": 0,
    }
    wait_for(lambda: association_targets(service) == expected, 20, "association_targets")
    rollouts = {r.association: r for r in service.board.get().last_pass.rollouts}  # type: ignore[union-attr]
    assert rollouts["datadog-agent-canary"].status == "Pending"  # waits for its cron
    assert rollouts["ops-toolkit-everywhere"].status == "Success"
    code, page = http_get(service.url + "/")
    assert code == 200 and "Success 7" in page and "Success 2" in page
    assert "no target has run yet" in page  # the canary

    # A commit moving datadog-agent's default: its rollout pins and starts the canary ring,
    # then prod (a bake of 1 s here, not the demo's 30 s); nothing else changes.
    before = fleet.installed()
    yaml_file = edit_dir / "packages" / "datadog-agent.yaml"
    text = yaml_file.read_text()
    assert 'defaultVersion: "6.9.0"' in text and "bake: 30s" in text
    text = text.replace('defaultVersion: "6.9.0"', 'defaultVersion: "6.10.0"')
    yaml_file.write_text(text.replace("bake: 30s", "bake: 1s"))
    commit_all(repo, "Roll datadog-agent 6.10.0 out ring by ring")

    def prod_on_new_default() -> bool:
        installed = fleet.installed()
        return all(
            installed[i.instance_id].get("datadog-agent") == "6.10.0"
            for i in fleet.instances
            if i.spec.tags["env"] == "prod"
        )

    wait_for(prod_on_new_default, 60, "datadog-agent 6.10.0 on the prod instances and the canary")
    assert fleet.wait_idle(30)
    check_installed(fleet, "6.10.0", rolled_out=True)
    after = fleet.installed()
    for instance in fleet.instances:  # everything but datadog-agent on prod is untouched
        changed = {
            k
            for k in after[instance.instance_id]
            if after[instance.instance_id][k] != before[instance.instance_id].get(k)
        }
        tags = instance.spec.tags
        in_a_ring = tags["env"] == "prod" or tags["ring"] == "canary"
        assert changed <= ({"datadog-agent"} if in_a_ring else set())
    expected = expected_targets(fleet, rolled_out=True)
    wait_for(lambda: association_targets(service) == expected, 20, "association_targets")

    for path in HOST_PATHS:  # the scripts only ever wrote inside the instance roots
        assert not Path(path).exists(), f"{path} was written on the host"
