"""The simulated fleet attached to the local endpoint: registration, triggers, results.

Where it sits: `start_fleet(aws, specs, work_dir)` (called by `ssm-gitops local --fleet`,
the demo and the tests) registers every instance in the local EC2 (so tag targets resolve
through DescribeInstances) and in our SSM (DescribeInstanceInformation), gives each its root
and agent, and listens to the SSM service (controller/local/hooks.py). Each event becomes a
job on one worker thread:

- association created or updated -> run it, unless ApplyOnlyAtCronInterval;
- UpdateDocumentDefaultVersion of a package -> re-run the AWS-ConfigureAWSPackage
  associations that install that package without a `version` (they follow the default),
  unless ApplyOnlyAtCronInterval (contract: "AWS facts"; CreateAssociation API page);
- StartAssociationsOnce -> run those associations now;
- a schedule (rate/cron/at) coming due, checked by `tick()` on the fleet's clock;
- SendCommand of AWS-ConfigureAWSPackage -> run it on its instances.

Results go back through the service's recording methods, so they are visible through the
real APIs (DescribeAssociation Overview, DescribeAssociationExecutions,
DescribeAssociationExecutionTargets, DescribeInstanceAssociationsStatus,
ListCommandInvocations, GetCommandInvocation).

The agents read packages through GetDocument and its attachment URLs (source.py) with
boto3 against the endpoint, like a real agent; the listener itself only enqueues, because
the service calls it before answering the request that caused the event.

Jobs are taken in order by one dispatcher thread, which resolves each job's targets and
hands the rollout to a bounded pool (`ROLLOUT_WORKERS`), so a script that runs for an hour
on one instance does not hold up another instance's command. Each instance still runs one
document at a time, in the order the jobs came (`_Turns`): a later update of an association
never overtakes the run of its earlier version on the same instance.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from controller.local import hooks
from controller.local.fleet.agent import (
    Agent,
    PackageRequest,
    PluginResult,
    PluginStatus,
    RequestError,
    request_from_parameters,
)
from controller.local.fleet.model import Instance, InstanceSpec
from controller.local.fleet.rollout import (
    RateControl,
    RateControlError,
    TargetOutcome,
    TargetStatus,
    run_rollout,
)
from controller.local.fleet.roots import prepare_root
from controller.local.fleet.sandbox import Sandbox
from controller.local.fleet.schedule import Clock, Schedule, ScheduleError, SystemClock
from controller.local.fleet.source import SsmPackageSource
from controller.local.fleet.state import installed_packages
from controller.local.fleet.targets import resolve_targets

log = logging.getLogger(__name__)

_Job = Callable[[], Callable[[], None] | None]

CONFIGURE_PACKAGE = "AWS-ConfigureAWSPackage"
# An AMI id for the simulated EC2 instances (moto does not check AMIs by default).
_IMAGE_ID = "ami-0fleet00000000000"
# Rollouts (association executions, commands) running at once; each runs up to
# rollout.MAX_WORKERS instances in parallel.
ROLLOUT_WORKERS = 4
_PLUGIN_TO_TARGET = {
    PluginStatus.SUCCESS: TargetStatus.SUCCESS,
    PluginStatus.FAILED: TargetStatus.FAILED,
    PluginStatus.TIMED_OUT: TargetStatus.TIMED_OUT,
}


def is_configure_package(document_name: str) -> bool:
    """The document by name or ARN (arn:aws:ssm:REGION::document/AWS-ConfigureAWSPackage)."""
    return document_name.rsplit("/", 1)[-1] == CONFIGURE_PACKAGE


class _Turns:
    """Each instance runs one document at a time, in the order the jobs were dispatched:
    a job takes a ticket on each of its instances, and runs on an instance once its ticket
    is the first there."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queues: dict[str, deque[int]] = {}
        self._serial = itertools.count()

    def take(self, instance_ids: Iterable[str]) -> int:
        ticket = next(self._serial)
        with self._changed:
            for instance_id in instance_ids:
                self._queues.setdefault(instance_id, deque()).append(ticket)
        return ticket

    def wait(self, instance_id: str, ticket: int, stop: threading.Event) -> bool:
        """Wait for `ticket`'s turn on the instance; False if the fleet stops first."""
        with self._changed:
            while not stop.is_set():
                if self._queues[instance_id][0] == ticket:
                    return True
                self._changed.wait(timeout=0.5)
        return False

    def release(self, instance_ids: Iterable[str], ticket: int) -> None:
        with self._changed:
            for instance_id in instance_ids:
                line = self._queues.get(instance_id)
                if line is not None and ticket in line:
                    line.remove(ticket)
            self._changed.notify_all()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


@dataclass
class _Scheduled:
    schedule: Schedule
    last_run: datetime | None
    next_run: datetime | None


@dataclass
class Fleet:
    """A running fleet. Stop it with `stop()` (or use it as a context manager)."""

    aws: Any  # controller.local.LocalAWS
    instances: tuple[Instance, ...]
    agents: Mapping[str, Agent]
    work_dir: Path
    account: str
    region: str
    clock: Clock
    sandbox: Sandbox = field(default_factory=Sandbox)
    # A job runs on the dispatcher and returns the rollout to run in the pool (or None).
    _jobs: queue.Queue[_Job | None] = field(default_factory=queue.Queue)
    _rollouts: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(ROLLOUT_WORKERS, "fleet-rollout-job")
    )
    _turns: _Turns = field(default_factory=_Turns)
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _pending: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _schedules: dict[str, _Scheduled] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)
    _schedule_lock: threading.Lock = field(default_factory=threading.Lock)
    _clients: dict[str, Any] = field(default_factory=dict)

    # -- lifecycle --------------------------------------------------------------------

    def _start(self, tick_seconds: float | None) -> None:
        worker = threading.Thread(target=self._work, name="fleet-dispatcher", daemon=True)
        worker.start()
        self._threads.append(worker)
        if tick_seconds:
            ticker = threading.Thread(
                target=self._tick_loop, args=(tick_seconds,), name="fleet-scheduler", daemon=True
            )
            ticker.start()
            self._threads.append(ticker)
        self.aws.ssm.set_listener(self)
        # New managed instances apply the associations that already target them, as a
        # real agent does when it first registers.
        for snapshot in self.aws.ssm.associations(self.account, self.region):
            self.association_changed(hooks.AssociationChanged("created", snapshot))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening, skip what has not started, kill the scripts still running and
        wait (at most `timeout` seconds) for the rollouts to record it."""
        self.aws.ssm.set_listener(None)
        self._stop.set()
        self.sandbox.stop()
        self._turns.wake()
        self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0))
        # Rollouts not started yet still run: they see the stop and report their targets
        # not started, which also ends the wait below.
        self._rollouts.shutdown(wait=False)
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, max(deadline - time.monotonic(), 0))

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until every queued rollout has finished; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def installed(self) -> dict[str, dict[str, str]]:
        """instance id -> {package: installed version}, from each instance's persisted state."""
        return {i.instance_id: installed_packages(i.root) for i in self.instances}

    def describe(self) -> list[str]:
        """One line per instance: id, platform, tags, installed packages (demo summaries)."""
        lines = []
        installed = self.installed()
        for instance in self.instances:
            spec = instance.spec
            tags = " ".join(f"{k}={v}" for k, v in sorted(spec.tags.items()) if k != "Name")
            packages = ", ".join(
                f"{n} {v}" for n, v in sorted(installed[instance.instance_id].items())
            )
            lines.append(
                f"{instance.instance_id} {spec.platform} {spec.version} {spec.arch}"
                f" [{tags}]: {packages or 'no packages'}"
            )
        return lines

    # -- the listener (hooks.FleetListener) ---------------------------------------------

    def association_changed(self, event: hooks.AssociationChanged) -> None:
        snapshot = event.association
        if not self._ours(snapshot.account, snapshot.region):
            return
        self._update_schedule(snapshot, deleted=event.kind == "deleted")
        if event.kind != "deleted" and not snapshot.apply_only_at_cron_interval:
            self._enqueue(partial(self._run_association, snapshot.association_id))

    def default_version_changed(self, event: hooks.DefaultVersionChanged) -> None:
        if not self._ours(event.account, event.region):
            return
        for snapshot in self.aws.ssm.associations(self.account, self.region):
            if _follows_default(snapshot, event.document_name):
                association_id = snapshot.association_id
                self._enqueue(partial(self._run_association, association_id))

    def associations_started_once(self, event: hooks.AssociationsStartedOnce) -> None:
        if not self._ours(event.account, event.region):
            return
        for association_id in event.association_ids:
            self._enqueue(partial(self._run_association, association_id))

    def command_sent(self, event: hooks.CommandSent) -> None:
        if not self._ours(event.account, event.region):
            return
        self._enqueue(partial(self._run_command, event))

    def _ours(self, account: str, region: str) -> bool:
        return (account, region) == (self.account, self.region)

    # -- jobs ---------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        with self._idle:
            self._pending += 1
        self._jobs.put(job)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _work(self) -> None:
        """The dispatcher: prepares jobs in order, runs their rollouts in the pool."""
        while (job := self._jobs.get()) is not None:
            rollout = None
            try:
                if not self._stop.is_set():
                    rollout = job()
                if rollout is not None:
                    self._rollouts.submit(self._run_rollout, rollout)
            except Exception:
                log.exception("fleet job failed")
                rollout = None
            if rollout is None:
                self._done()

    def _run_rollout(self, rollout: Callable[[], None]) -> None:
        try:
            rollout()
        except Exception:
            log.exception("fleet rollout failed")
        finally:
            self._done()

    # -- schedules ----------------------------------------------------------------------

    def _update_schedule(self, snapshot: hooks.AssociationSnapshot, *, deleted: bool) -> None:
        with self._schedule_lock:
            self._schedules.pop(snapshot.association_id, None)
            if deleted or not snapshot.schedule_expression:
                return
            try:
                schedule = Schedule.parse(snapshot.schedule_expression)
            except ScheduleError:
                log.warning(
                    "association %s: unsupported schedule %s",
                    snapshot.association_id,
                    snapshot.schedule_expression,
                )
                return
            now = self.clock.now()
            # The create/update run counts as the last run of a rate schedule (unless
            # ApplyOnlyAtCronInterval, which waits for the first interval).
            last = None if snapshot.apply_only_at_cron_interval else now
            self._schedules[snapshot.association_id] = _Scheduled(
                schedule, last, schedule.next_after(now, last)
            )

    def tick(self) -> list[str]:
        """Queue every association whose schedule is due on the fleet's clock; their ids."""
        now = self.clock.now()
        due: list[str] = []
        with self._schedule_lock:
            for association_id, scheduled in self._schedules.items():
                if scheduled.next_run is not None and scheduled.next_run <= now:
                    due.append(association_id)
                    scheduled.last_run = scheduled.next_run
                    scheduled.next_run = scheduled.schedule.next_after(now, scheduled.last_run)
        for association_id in due:
            self._enqueue(partial(self._run_association, association_id))
        return due

    def _tick_loop(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.tick()
            except Exception:
                log.exception("fleet scheduler failed")

    # -- running an association ---------------------------------------------------------

    def _ssm(self) -> Any:
        return self._client("ssm")

    def _client(self, service: str) -> Any:
        """One boto3 client per service (they are thread-safe), made on first use."""
        with self._schedule_lock:
            if service not in self._clients:
                self._clients[service] = self.aws.client(service, region=self.region)
            return self._clients[service]

    def _run_association(self, association_id: str) -> Callable[[], None] | None:
        ssm = self._ssm()
        try:
            description = ssm.describe_association(AssociationId=association_id)[
                "AssociationDescription"
            ]
        except Exception:  # deleted meanwhile
            log.info("association %s is gone; not run", association_id)
            return None
        execution_id = self.aws.ssm.start_association_execution(
            self.account, self.region, association_id
        )
        if description.get("InstanceId"):
            targets: list[dict[str, Any]] = [
                {"Key": "InstanceIds", "Values": [description["InstanceId"]]}
            ]
        else:
            targets = description.get("Targets") or []
        instance_ids = self._in_fleet_order(resolve_targets(targets, self._ec2_tags()))

        def record(instance_id: str, status: TargetStatus, outcome: TargetOutcome | None) -> None:
            self.aws.ssm.record_association_result(
                self.account,
                self.region,
                association_id,
                execution_id,
                instance_id,
                str(status),
                detailed_status=outcome.detail if outcome else None,
                output=outcome.output if outcome else "",
                error=outcome.stderr if outcome else "",
            )

        runner = self._runner(description["Name"], description.get("Parameters") or {})

        def run_one(instance_id: str) -> TargetOutcome:
            # An alarm of the association's AlarmConfiguration in ALARM stops the execution:
            # targets not started yet do not start (controller/local/ssm/alarms.py).
            stopped = self.aws.ssm.check_alarms(
                self.account, self.region, association_id, execution_id
            )
            if stopped:
                return TargetOutcome(
                    instance_id, TargetStatus.SKIPPED, str(TargetStatus.SKIPPED), stopped, stopped
                )
            return runner(instance_id)

        return self._rollout(
            instance_ids,
            run_one,
            description.get("MaxConcurrency"),
            description.get("MaxErrors"),
            record,
            TargetStatus.SKIPPED,
        )

    # -- running a command --------------------------------------------------------------

    def _run_command(self, event: hooks.CommandSent) -> Callable[[], None]:
        commands = self._ssm().list_commands(CommandId=event.command_id)["Commands"]
        command = commands[0] if commands else {}

        def record(instance_id: str, status: TargetStatus, outcome: TargetOutcome | None) -> None:
            self.aws.ssm.record_command_result(
                self.account,
                self.region,
                event.command_id,
                instance_id,
                str(status),
                output=_first_chars(outcome.stdout) if outcome else "",
                error=_first_chars(outcome.stderr) if outcome else "",
                response_code=(0 if status is TargetStatus.SUCCESS else 1) if outcome else 0,
            )

        instance_ids = self._in_fleet_order(event.instance_ids)
        run_one = self._runner(event.document_name, event.parameters)
        return self._rollout(
            instance_ids,
            run_one,
            command.get("MaxConcurrency"),
            command.get("MaxErrors"),
            record,
            TargetStatus.CANCELLED,
        )

    # -- shared -------------------------------------------------------------------------

    def _rollout(
        self,
        instance_ids: Sequence[str],
        run_one: Callable[[str], TargetOutcome],
        max_concurrency: str | None,
        max_errors: str | None,
        record: Callable[[str, TargetStatus, TargetOutcome | None], None],
        not_started: TargetStatus,
    ) -> Callable[[], None]:
        """The rollout, to run in the pool; its place on each instance is taken now."""
        ticket = self._turns.take(instance_ids)

        def in_turn(instance_id: str) -> TargetOutcome:
            if not self._turns.wait(instance_id, ticket, self._stop):
                reason = "not started: the fleet was stopped"
                return TargetOutcome(instance_id, not_started, str(not_started), reason, reason)
            try:
                return run_one(instance_id)
            finally:
                self._turns.release([instance_id], ticket)

        def record_safely(
            instance_id: str, status: TargetStatus, outcome: TargetOutcome | None
        ) -> None:
            try:
                record(instance_id, status, outcome)
            except Exception:  # e.g. the association was deleted meanwhile
                log.warning("could not record %s for %s", status, instance_id, exc_info=True)

        def rollout() -> None:
            try:
                rate = RateControl(max_concurrency, max_errors)
                run_rollout(
                    list(instance_ids),
                    in_turn,
                    rate,
                    on_change=record_safely,
                    not_started=not_started,
                    stop=self._stop,
                )
            except RateControlError as err:
                for instance_id in instance_ids:
                    failed = TargetOutcome(
                        instance_id, TargetStatus.FAILED, "Failed", str(err), "", str(err)
                    )
                    record_safely(instance_id, TargetStatus.FAILED, failed)
            finally:  # instances never started (MaxErrors, stop) give their turn back
                self._turns.release(instance_ids, ticket)

        return rollout

    def _runner(
        self, document_name: str, parameters: Mapping[str, Any]
    ) -> Callable[[str], TargetOutcome]:
        """The function running the document on one instance."""
        if not is_configure_package(document_name):
            message = (
                f"the simulated fleet only runs {CONFIGURE_PACKAGE}; {document_name} was not run"
            )
            return lambda iid: TargetOutcome(
                iid, TargetStatus.FAILED, "Failed", message, "", message
            )
        try:
            request: PackageRequest | None = request_from_parameters(parameters)
            problem = ""
        except RequestError as err:
            request, problem = None, str(err)

        def run(instance_id: str) -> TargetOutcome:
            if request is None:
                return TargetOutcome(
                    instance_id, TargetStatus.FAILED, "Failed", problem, "", problem
                )
            result: PluginResult = self.agents[instance_id].configure_package(request)
            status = _PLUGIN_TO_TARGET[result.status]
            # The summary first: DescribeInstanceAssociationsStatus shows only the start.
            output = result.summary
            if result.output != result.summary:
                output += f"\n\n{result.output}"
            return TargetOutcome(
                instance_id, status, str(status), output, result.stdout, result.stderr
            )

        return run

    def _in_fleet_order(self, instance_ids: Iterable[str]) -> list[str]:
        """The fleet's instances among `instance_ids`, in the order the fleet lists them.
        SSM does not say in which order it reaches targets; a fixed one makes rollouts
        (and where MaxErrors stops them) repeatable."""
        wanted = set(instance_ids)
        return [i.instance_id for i in self.instances if i.instance_id in wanted]

    def _ec2_tags(self) -> dict[str, dict[str, str]]:
        """Tags of the fleet's instances as EC2 DescribeInstances reports them now."""
        ec2 = self._client("ec2")
        tags: dict[str, dict[str, str]] = {}
        pages = ec2.get_paginator("describe_instances").paginate(
            InstanceIds=[i.instance_id for i in self.instances]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for item in reservation["Instances"]:
                    if item["InstanceId"] in self.agents:
                        tags[item["InstanceId"]] = {
                            t["Key"]: t["Value"] for t in item.get("Tags", [])
                        }
        return tags


# GetCommandInvocation returns the first 24,000 characters of each stream
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html).
COMMAND_OUTPUT_LIMIT = 24_000


def _first_chars(text: str) -> str:
    return text[:COMMAND_OUTPUT_LIMIT]


def _follows_default(snapshot: hooks.AssociationSnapshot, package: str) -> bool:
    """An AWS-ConfigureAWSPackage association installing `package` with no version."""
    if not is_configure_package(snapshot.name) or snapshot.apply_only_at_cron_interval:
        return False
    parameters = snapshot.parameters
    name = (parameters.get("name") or [""])[0]
    version = (parameters.get("version") or [""])[0]
    action = (parameters.get("action") or ["Install"])[0]
    return action == "Install" and not version and name.rsplit("/", 1)[-1] == package


def start_fleet(
    aws: Any,
    specs: Iterable[InstanceSpec],
    work_dir: Path,
    *,
    region: str = "us-east-1",
    sandbox: Sandbox | None = None,
    clock: Clock | None = None,
    tick_seconds: float | None = 1.0,
) -> Fleet:
    """Register `specs` as EC2 + managed instances on the running LocalAWS `aws`, give each
    a root under `work_dir` and an agent, and start listening. `tick_seconds=None` disables
    the background scheduler (call `Fleet.tick()` yourself, e.g. with a ManualClock)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    account = aws.client("sts", region=region).get_caller_identity()["Account"]
    ec2 = aws.client("ec2", region=region)
    sandbox = sandbox or Sandbox()
    source = SsmPackageSource(aws.client("ssm", region=region))
    instances: list[Instance] = []
    agents: dict[str, Agent] = {}
    for spec in specs:
        instance_id = _run_ec2_instance(ec2, spec)
        instance = Instance(instance_id, spec, prepare_root(work_dir, instance_id, spec))
        aws.ssm.register_instance(
            account,
            region,
            hooks.ManagedInstance(
                instance_id=instance_id,
                platform_type=spec.facts.platform_type,
                platform_name=spec.platform_name,
                platform_version=spec.version,
                ping_status="Online",
                computer_name=spec.tags.get("Name", instance_id),
                tags=dict(spec.tags),
            ),
        )
        instances.append(instance)
        agents[instance_id] = Agent(instance, source, sandbox, region=region, account_id=account)
    fleet = Fleet(
        aws=aws,
        instances=tuple(instances),
        agents=agents,
        work_dir=work_dir,
        account=account,
        region=region,
        clock=clock or SystemClock(),
        sandbox=sandbox,
    )
    fleet._start(tick_seconds)
    return fleet


def _run_ec2_instance(ec2: Any, spec: InstanceSpec) -> str:
    tags = [{"Key": k, "Value": v} for k, v in spec.tags.items()]
    request: dict[str, Any] = {
        "ImageId": _IMAGE_ID,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": "t4g.micro" if spec.arch == "arm64" else "t3.micro",
    }
    if tags:
        request["TagSpecifications"] = [{"ResourceType": "instance", "Tags": tags}]
    response = ec2.run_instances(**request)
    instance_id: str = response["Instances"][0]["InstanceId"]
    return instance_id
