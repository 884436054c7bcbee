"""Rollouts run side by side: a script that sleeps on one instance holds up no other
instance, and is killed at its timeout (issue 10: "A script that sleeps forever blocks the
fleet's single worker")."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from controller.local.fleet import InstanceSpec, start_fleet
from controller.local.fleet.fleet import _Turns
from controller.local.fleet.sandbox import Sandbox
from controller.local.fleet.schedule import ManualClock

from .conftest import needs_bwrap, processes_running, publish_package, unique_sleep

SLEEP = unique_sleep()  # this module's own: see unique_sleep

pytestmark = needs_bwrap

BUCKET = "concurrency-packages"
SPECS = (
    InstanceSpec("amazon", "2023", "x86_64", {}),
    InstanceSpec("ubuntu", "22.04", "x86_64", {}),
)
TIMEOUT = 6.0


def send(ssm: Any, name: str, instance_id: str) -> str:
    command = ssm.send_command(
        DocumentName="AWS-ConfigureAWSPackage",
        InstanceIds=[instance_id],
        Parameters={"action": ["Install"], "name": [name]},
    )["Command"]
    return str(command["CommandId"])


def status(ssm: Any, command_id: str, instance_id: str) -> str:
    return str(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)["Status"])


def wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_sleeping_script_holds_up_no_other_instance_and_times_out(
    local_aws: Any, tmp_path: Path
) -> None:
    """Bug: one worker ran rollouts one after another, so a sleeping install left every
    other instance's command Pending until it ended."""
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    publish_package(
        ssm, s3, BUCKET, "sleepy", {"install.sh": f"touch /opt/sleeping; sleep {SLEEP}\n"}
    )
    publish_package(ssm, s3, BUCKET, "quick", {"install.sh": "echo quick > /opt/quick\n"})
    fleet = start_fleet(
        local_aws,
        SPECS,
        tmp_path / "fleet",
        sandbox=Sandbox(timeout=TIMEOUT),
        clock=ManualClock(),
        tick_seconds=None,
    )
    try:
        sleeper, other = (i.instance_id for i in fleet.instances)
        started = time.monotonic()
        slow = send(ssm, "sleepy", sleeper)
        assert wait_for(lambda: (fleet.instances[0].root / "opt/sleeping").exists(), TIMEOUT)
        fast = send(ssm, "quick", other)
        assert wait_for(lambda: status(ssm, fast, other) == "Success", TIMEOUT - 1), status(
            ssm, fast, other
        )
        assert status(ssm, slow, sleeper) == "InProgress"
        assert fleet.wait_idle(30)
        elapsed = time.monotonic() - started
        assert status(ssm, slow, sleeper) == "TimedOut"
        invocation = ssm.get_command_invocation(CommandId=slow, InstanceId=sleeper)
        assert f"install timed out after {TIMEOUT:g} seconds" in invocation["StandardErrorContent"]
        assert TIMEOUT <= elapsed < TIMEOUT + 10
        assert fleet.installed() == {sleeper: {}, other: {"quick": "1.0"}}
    finally:
        fleet.stop()
    assert processes_running(b"sleep\x00" + SLEEP.encode() + b"\x00") == []


def test_an_instance_runs_one_document_at_a_time_in_trigger_order() -> None:
    """Side by side rollouts must not reorder runs on one instance: an association updated
    right after its creation installs the new version last, as with the single worker."""
    turns = _Turns()
    stop = threading.Event()
    first = turns.take(["i-a"])
    second = turns.take(["i-a", "i-b"])
    assert turns.wait("i-b", second, stop)  # another instance does not wait
    order: list[str] = []
    waiter = threading.Thread(
        target=lambda: order.append("second" if turns.wait("i-a", second, stop) else "stopped")
    )
    waiter.start()
    time.sleep(0.3)
    assert order == []  # still the first's turn on i-a
    order.append("first done")
    turns.release(["i-a"], first)
    waiter.join(timeout=5)
    assert order == ["first done", "second"]
    third = turns.take(["i-a"])
    stop.set()
    assert not turns.wait("i-a", third, stop)  # a stopping fleet waits for nothing
