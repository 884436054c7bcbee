"""`ssm-gitops demo`: the whole product on one laptop, no AWS account needed.

Where it sits: called by controller/cli.py. It starts the embedded local AWS
(`controller.local`) in this process, creates the artifact bucket that `sample-repo/`'s
Settings names, makes sure the controller has a git repository to watch, then runs the
real controller (`controller.runtime.service`) on it and tells the user where to look and
what to try. A small simulated fleet (`controller.local.fleet`, docs/fleet.md) attached
to the endpoint really installs the packages: the default fleet's tags match
`sample-repo/`'s association targets. `--once` exits after the first converged pass and
the rollouts it started, with a summary: which instance has which version of which
package, and each association's rollout as the controller read it.

The git repository: `sample-repo/` is always copied into a scratch folder (a fresh copy on
each start, under the user's cache folder: `demo_home()`) and committed there with pygit2;
the demo prints that path and the user edits and commits there. The product's own checkout
(its history and `sample-repo/`) is never written to (issue 10: following the demo's steps
committed into the checkout and broke the test suite).

Truthful by construction: before anything starts the demo checks that the fleet's sandbox
can run a script (`sandbox_problem`) and stops with one line if it cannot; `--once` exits
non-zero, without claiming success, when any association's targets failed. Ports 4566/8080 are
preferred; when one is busy the demo says which port it took and prints every command with it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import pygit2

from controller.errors import UserError
from controller.local.events import DriftQueue, create_drift_queue
from controller.local.fleet import Fleet, default_fleet
from controller.local.fleet.command import start_fleet_for_command
from controller.local.fleet.roots import prepare_root
from controller.local.fleet.sandbox import Sandbox
from controller.reconcile.events import WATCHED_CALLS
from controller.reconcile.result import ActionResult, PassOutcome, Rollout
from controller.runtime.service import Options, Service
from controller.runtime.status import Status

LOCAL_PORT = 4566  # the port AWS tooling conventionally gives a local endpoint
STATUS_PORT = 8080  # the controller's default
POLL_SECONDS = 5.0
RESYNC_SECONDS = 60.0
ONCE_TIMEOUT = 180.0
FLEET_SIZE = 8  # the default mix once round: prod, canary, web, db, workers, Windows
ROLLOUT_TIMEOUT = 60.0  # --once waits this long for the first pass's rollouts
_SIGNATURE = pygit2.Signature("ssm-gitops demo", "demo@ssm-gitops.invalid")


# Target statuses of an association overview that mean a target did not get the package
# (AssociationOverview.DetailedStatus / AssociationStatusAggregatedCount:
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationOverview.html).
_FAILED_STATUSES = frozenset({"Failed", "TimedOut", "Cancelled", "Undeliverable"})


@dataclass(frozen=True)
class Watched:
    """The git repository the demo's controller follows, and how the user changes it."""

    repo: str  # path of the git repository
    path: str  # sub-directory holding the YAML
    edit_dir: Path  # where the user edits files before committing
    copied: bool  # True: a scratch copy made for the demo


def find_sample_repo() -> Path:
    """`./sample-repo` if there is one, else the one beside this package (a checkout)."""
    here = Path(__file__).resolve().parents[1] / "sample-repo"
    for candidate in (Path.cwd() / "sample-repo", here):
        if candidate.is_dir():
            return candidate
    raise UserError("sample-repo/: not found; run the demo from the ssm-gitops checkout")


def demo_home() -> Path:
    """Where the demo keeps its copy of `sample-repo/`: `$XDG_CACHE_HOME/ssm-gitops/demo`
    (`~/.cache/ssm-gitops/demo`), outside any checkout, so that the user's commits there
    never touch the product's history."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ssm-gitops" / "demo"


def prepare_repository(sample: Path, scratch: Path) -> Watched:
    """A fresh git repository at `scratch/sample-repo` holding a copy of `sample`, with one
    commit. A copy left by an earlier demo is replaced: each start shows the sample as
    shipped (the copy is the demo's, never the user's own folder)."""
    target = scratch / "sample-repo"
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    shutil.copytree(sample, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    repo = pygit2.init_repository(str(target), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    repo.create_commit("HEAD", _SIGNATURE, _SIGNATURE, "sample-repo as shipped", tree, [])
    if "user.name" not in repo.config or "user.email" not in repo.config:
        # A fresh machine has no git identity, and the README's first step is `git commit` in
        # this copy: give the copy one of its own instead of git's "Author identity unknown".
        repo.config["user.name"] = _SIGNATURE.name
        repo.config["user.email"] = _SIGNATURE.email
    return Watched(str(target), ".", target, copied=True)


def sandbox_problem(work_dir: Path) -> str | None:
    """Why the fleet's sandbox cannot run a package script on this machine, or None if it
    can: bubblewrap missing, or present but refused (no user namespaces, a container without
    the privileges it needs). Checked by running one trivial script the way the agent runs
    package scripts (`Sandbox.run`), so whatever flags the sandbox uses are what is tested."""
    sandbox = Sandbox(timeout=30)
    if not sandbox.available:
        return (
            "bubblewrap (bwrap) is not installed, so the fleet cannot run package scripts: "
            "install it (apt-get install bubblewrap; scripts/demo does this when run as root)"
        )
    spec = default_fleet(1)[0]
    root = prepare_root(work_dir, "i-sandbox-check", spec)
    folder = root / "var" / "sandbox-check"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "check.sh").write_text("exit 0\n", encoding="utf-8")
    try:
        run = sandbox.run(root, Path("/var/sandbox-check"), "check.sh", {})
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if run.ran and run.exit_code == 0:
        return None
    why = (run.stderr.strip().splitlines() or [run.reason or f"exit code {run.exit_code}"])[-1]
    return (
        f"bubblewrap ({sandbox.bwrap}) cannot start a sandbox here ({why}), so the fleet "
        "cannot run package scripts: run the demo where bubblewrap works (docs/fleet.md)"
    )


def fleet_failures(rollouts: tuple[Rollout, ...]) -> list[str]:
    """`datadog-agent-prod: 3 targets Failed`, for every association whose targets failed."""
    lines = []
    for rollout in sorted(rollouts, key=_by_name):
        failed = {s: n for s, n in rollout.counts.items() if s in _FAILED_STATUSES and n}
        if failed or rollout.status in _FAILED_STATUSES:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(failed.items()))
            lines.append(f"{rollout.association}: {counts or rollout.status}")
    return lines


def port_or_any(port: int) -> int:
    """`port` if nothing listens on it, else 0 (any free port)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


# -- what the user sees -------------------------------------------------------------------


class _HumanFormatter(logging.Formatter):
    """The controller's events as short lines for a person watching a terminal."""

    _MARK = {"success": "+", "failure": "!", "blocked": "~", "skipped": "-"}

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", "")
        fields: dict[str, Any] = getattr(record, "fields", {})
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        if event == "action":
            mark = self._MARK.get(str(fields.get("result")), "*")
            detail = f" {fields['detail']}" if fields.get("detail") else ""
            return (
                f"{clock}   {mark} {fields.get('action')} {fields.get('kind')} "
                f"{fields.get('name')}{detail} [{fields.get('result')}, "
                f"{fields.get('duration_seconds', 0):.2f}s]"
            )
        return f"{clock} {record.getMessage()}"


class _Interesting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return getattr(record, "event", "") in {"action", "pass", "load", "webhook"}


def _configure_output() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_HumanFormatter())
    handler.addFilter(_Interesting())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("apscheduler", "botocore", "werkzeug", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _aws_cli() -> str:
    """The AWS CLI to suggest: the one on PATH, else the one `scripts/demo` installed."""
    beside = Path(sys.executable).with_name("aws")
    return "aws" if shutil.which("aws") or not beside.exists() else str(beside)


def _banner(
    service: Service,
    endpoint: str,
    watched: Watched,
    bucket: str,
    fleet: Fleet | None,
    drift: DriftQueue,
) -> str:
    edit = watched.edit_dir
    aws = _aws_cli()
    first = fleet.instances[0].instance_id if fleet is not None and fleet.instances else "i-..."
    where = (
        f"{len(fleet.instances)} simulated instances, roots under {fleet.work_dir}"
        if fleet is not None
        else "none"
    )
    return f"""
ssm-gitops demo: the controller is reconciling {edit} against a local AWS
(a fresh copy of sample-repo/, committed there; your checkout is never changed).

  Status page   {service.url}/
  Status JSON   {service.url}/status
  Metrics       {service.url}/metrics
  Local AWS     {endpoint}  (SSM, S3, STS, EC2; artifacts in s3://{bucket})
  Fleet         {where}
                (the fleet's installed packages are printed whenever a rollout finishes)

Look at live SSM with the AWS CLI (the local AWS listens on {endpoint}):
  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
         AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  {aws} ssm list-documents --filters Key=Owner,Values=Self
  {aws} ssm list-associations
  {aws} ssm describe-instance-associations-status --instance-id {first}

Try next (the controller polls git every {POLL_SECONDS:g}s):
  1. cd {edit}
  2. edit packages/datadog-agent.yaml: set defaultVersion to "6.10.0"
  3. git commit -am "Roll datadog-agent 6.10.0 out ring by ring"
  4. watch the status page's Rollouts card: the canary ring gets 6.10.0 and bakes 30s, then
  the prod ring; the default moves last (about a minute). A bad release halted at the
  canary and rolled back: README, "Roll out a version ring by ring"
  (packages/datadog-agent/6.11.0 is that bad release).
  Make drift by hand (as the IAM user "you") and watch its drift event heal it in seconds:
  AWS_ENDPOINT_URL={endpoint} AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \\
  AWS_ACCESS_KEY_ID={drift.access_key} AWS_SECRET_ACCESS_KEY={drift.secret_key} \\
  {aws} ssm update-document-default-version --name ops-toolkit --document-version 1
  (version 1 is ops-toolkit 1.0.0, which has no Ubuntu build: had the default stayed there,
  the Ubuntu instance's run of ops-toolkit-everywhere would fail, as on a real fleet; the
  controller reads the event from its queue {drift.url};
  without events, the resync every {RESYNC_SECONDS:g}s heals it)
  Break a file on purpose (a typo in a field name), commit, and see the status page
  point at the file and line while the last good revision stays applied.

Stop with Ctrl-C.
"""


def summary(
    status: Status,
    fleet: Fleet | None = None,
    rollouts: tuple[Rollout, ...] = (),
    fleet_failed: bool = False,
) -> str:
    """What the first converged pass did, for `--once`; then the fleet and its rollouts.

    With `fleet_failed` (the sandbox cannot run, or targets failed) it never says success
    or in_sync: SSM holds the packages, but the fleet did not install them, and each
    association shows its rollout as the controller read it."""
    last = status.last_pass
    assert last is not None
    lines = []
    applied = status.applied
    if applied is not None:
        lines.append(f"Revision {applied.short}: {applied.subject}")
    detect = " (detect only)" if status.mode != "apply" else ""
    if fleet_failed:
        lines.append(
            f"Pass applied to SSM in {last.duration_seconds:.1f}s{detect}, "
            "but the fleet did not install the packages"
        )
    else:
        lines.append(f"Pass {last.outcome.value} in {last.duration_seconds:.1f}s{detect}")
    by_association = {r.association: r for r in rollouts}

    def state(kind: str, name: str, value: str) -> str:
        if not fleet_failed:
            return value
        if kind == "package":
            return "in SSM"
        rollout = by_association.get(name)
        return "rollout not read" if rollout is None else rollout_line(rollout).split(": ", 1)[1]

    for kind, title in (("package", "Packages"), ("association", "Associations")):
        rows = [r for r in last.resources if r.kind == kind]
        names = ", ".join(sorted(f"{r.name} ({state(kind, r.name, r.state.value)})" for r in rows))
        lines.append(f"{title} ({len(rows)}): {names or 'none'}")
    done = [a for a in last.actions if a.result is ActionResult.SUCCESS]
    lines.append(f"Applied {len(done)} actions:")
    lines.extend(
        f"  + {a.action} {a.kind} {a.name}" + (f" {a.message}" if a.message else "") for a in done
    )
    for line in last.blocked:
        lines.append(f"  ~ blocked: {line}")
    for error in status.errors:
        lines.append(f"  ! {error}")
    if fleet is not None:
        lines.append("")
        lines.extend(fleet_summary(fleet))
        lines.append(f"Rollouts ({len(rollouts)}):")
        lines.extend(f"  {rollout_line(r)}" for r in sorted(rollouts, key=_by_name))
    return "\n".join(lines)


def fleet_summary(fleet: Fleet) -> list[str]:
    """Which instance has which version of which package (each instance's persisted state)."""
    return [
        f"Fleet ({len(fleet.instances)} instances):",
        *(f"  {line}" for line in fleet.describe()),
    ]


def rollout_line(rollout: Rollout) -> str:
    """`datadog-agent-prod: Success (Success 3)`, from the association overview."""
    counts = ", ".join(f"{status} {n}" for status, n in sorted(rollout.counts.items()))
    return f"{rollout.association}: {rollout.status} ({counts or 'no target has run yet'})"


def _by_name(rollout: Rollout) -> str:
    return rollout.association


# -- running it ---------------------------------------------------------------------------


@contextmanager
def _demo_aws_environment(endpoint: str) -> Iterator[None]:
    """Point this process's AWS SDK at the local endpoint, never at a real account."""
    saved = {k: os.environ.get(k) for k in _AWS_VARIABLES}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


def _artifact_bucket(sample: Path) -> str:
    from controller.repository import SpecErrors, load_repository

    try:
        repository = load_repository(sample)
    except SpecErrors as error:
        first = str(error.errors[0]) if error.errors else str(error)
        raise UserError(
            f"{first} ({len(error.errors)} problem(s) in {sample}: fix them, or `git stash` "
            "uncommitted edits, then start the demo again)"
        ) from error
    settings = repository.settings
    if settings is None or settings.artifacts is None:
        raise UserError(f"{sample}: the demo needs a Settings document naming artifacts.bucket")
    return str(settings.artifacts.bucket)


def _start_fleet(aws: Any, work_dir: Path, size: int = FLEET_SIZE) -> Fleet | None:
    """A small simulated fleet on the endpoint, before the controller creates anything, so
    that every association the first pass creates rolls out to it at once. The default mix
    (docs/fleet.md) carries the tags `sample-repo/` targets: prod and canary Amazon Linux,
    an Ubuntu web tier, platform-team Linux everywhere, and a Windows server no one targets.
    """
    return start_fleet_for_command(aws, default_fleet(size), work_dir)


def _wait_for_convergence(service: Service, timeout: float) -> Status:
    """The status after the first pass that did not fail (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        status = service.board.get()
        if status.passes > seen:
            seen = status.passes
            last = status.last_pass
            if last is not None and last.outcome is not PassOutcome.FAILURE:
                return status
        if status.config_errors and status.applied is None:
            return status  # nothing will ever load until the files are fixed
        time.sleep(0.1)
    return service.board.get()


def demo_command(args: argparse.Namespace) -> int:
    if args.fleet < 0:
        raise UserError(f"--fleet {args.fleet}: the number of instances must be 0 or more")
    _configure_output()
    sample = find_sample_repo()
    bucket = _artifact_bucket(sample)
    home = demo_home()
    watched = prepare_repository(sample, home)
    print(f"ssm-gitops demo: a fresh copy of {sample} is committed in {watched.repo}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ssm-gitops-demo-") as scratch_dir:
        scratch = Path(scratch_dir)
        problem = sandbox_problem(scratch / "sandbox-check") if args.fleet > 0 else None
        if problem:
            # Nothing is started: a demo whose fleet installs nothing would only mislead.
            raise UserError(f"{problem}; or run the demo without a fleet: --fleet 0")
        aws = _start_local_aws(args.port)
        try:
            _say_if_moved("the local AWS", args.port, aws.endpoint_url)
            with _demo_aws_environment(aws.endpoint_url):
                aws.client("s3").create_bucket(Bucket=bucket)
                drift = create_drift_queue(aws, WATCHED_CALLS)  # run --events-queue
                fleet = _start_fleet(aws, scratch / "fleet", args.fleet)
                try:
                    service = _make_service(
                        watched, scratch / "cache", args.status_port, events_queue=drift.url
                    )
                    _say_if_moved("the status page", args.status_port, service.url)
                    # moto and botocore leave ~270k objects that the interpreter's final
                    # collection would walk for seconds after SIGTERM: not ours to free.
                    gc.freeze()
                    if args.once:
                        return _run_once(service, fleet)
                    return _run_until_stopped(
                        service, aws.endpoint_url, watched, bucket, fleet, drift
                    )
                finally:
                    if fleet is not None:
                        fleet.stop()
        finally:
            aws.stop()


def _say_if_moved(what: str, wanted: int, url: str) -> None:
    """One line when a preferred port was busy: the commands printed later use the real one."""
    if not url.rstrip("/").endswith(f":{wanted}"):
        print(
            f"ssm-gitops demo: port {wanted} is busy: {what} listens on {url} instead "
            "(the commands below use it)",
            flush=True,
        )


def _start_local_aws(port: int = LOCAL_PORT) -> Any:
    """The local endpoint on `port` (by default the conventional one), or any free one if
    that is taken."""
    from controller.local import LocalAWS

    try:
        return LocalAWS(port=port_or_any(port)).start()
    except OSError:  # taken between the check and the bind
        return LocalAWS(port=0).start()


def _make_service(
    watched: Watched, cache_dir: Path, port: int = STATUS_PORT, *, events_queue: str | None = None
) -> Service:
    """The controller on the status port (or any free one), polling fast for a demo, with
    drift events on (docs/drift-events.md)."""
    options = Options(
        repo=watched.repo,
        path=watched.path,
        host="127.0.0.1",
        port=port_or_any(port),
        poll_interval=POLL_SECONDS,
        resync_interval=RESYNC_SECONDS,
        cache_dir=cache_dir,
        events_queue=events_queue,
    )
    try:
        return Service(options)
    except UserError:  # the port was taken between the check and the bind
        return Service(replace(options, port=0))


def _run_once(service: Service, fleet: Fleet | None) -> int:
    service.start()
    rollouts: tuple[Rollout, ...] = ()
    try:
        status = _wait_for_convergence(service, ONCE_TIMEOUT)
        if fleet is not None and status.last_pass is not None:
            rollouts = _wait_for_rollouts(service, fleet)
    finally:
        service.stop(grace=30)
    print()
    if status.last_pass is None:
        for error in status.errors or ("no pass finished in time",):
            print(f"ssm-gitops: {error}", file=sys.stderr)
        return 1
    failures = fleet_failures(rollouts)
    print(summary(status, fleet, rollouts, fleet_failed=bool(failures)))
    print("\nRun `scripts/demo` without --once to keep the controller running, then edit,")
    print("commit and watch it reconcile (status page, metrics, and the AWS CLI).")
    if failures:
        print(
            "ssm-gitops: the demo's fleet did not install the packages: " + "; ".join(failures),
            file=sys.stderr,
        )
        return 1
    return 0 if status.last_pass.outcome is not PassOutcome.FAILURE else 1


def _wait_for_rollouts(service: Service, fleet: Fleet) -> tuple[Rollout, ...]:
    """Let the rollouts the first pass started finish (at most ROLLOUT_TIMEOUT), then one more
    pass: the association overviews as the controller reads them (`association_targets`)."""
    if not fleet.wait_idle(ROLLOUT_TIMEOUT):
        print(f"ssm-gitops demo: the fleet was still busy after {ROLLOUT_TIMEOUT:g}s", flush=True)
    passes = service.board.get().passes
    service.flight.request("rollouts finished", full_resync=True)
    last = service.wait_for_pass(ONCE_TIMEOUT, after=passes).last_pass
    return () if last is None else last.rollouts


def _run_until_stopped(
    service: Service,
    endpoint: str,
    watched: Watched,
    bucket: str,
    fleet: Fleet | None,
    drift: DriftQueue,
) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    service.start()
    # The banner's commands name what the first pass creates (the drift command moves a
    # package's default): print them once it finished, not before the document exists.
    print("ssm-gitops demo: waiting for the first pass ...", flush=True)
    first = service.wait_for_pass(ONCE_TIMEOUT)
    if first.last_pass is None:
        print(f"ssm-gitops demo: no pass finished within {ONCE_TIMEOUT:g}s", flush=True)
    print(_banner(service, endpoint, watched, bucket, fleet, drift), flush=True)
    shown: dict[str, dict[str, str]] | None = None
    rollouts: tuple[Rollout, ...] = ()
    try:
        while not stop.wait(0.5):
            if fleet is not None:
                shown = _print_fleet_when_changed(fleet, shown)
                rollouts = _print_rollouts_when_settled(service, fleet, rollouts)
    finally:
        busy = service.board.get().pass_running
        print(
            "\nstopping: letting the actions in flight finish" if busy else "\nstopping",
            flush=True,
        )
        service.stop(grace=30)
        print("stopped: the local AWS and its fleet are gone with this process", flush=True)
    return 0


def _print_fleet_when_changed(
    fleet: Fleet, shown: dict[str, dict[str, str]] | None
) -> dict[str, dict[str, str]] | None:
    """Once the fleet is idle, print what it has installed if that changed since last time."""
    if not fleet.wait_idle(0):
        return shown
    installed = fleet.installed()
    if installed == shown or (shown is None and not any(installed.values())):
        return shown
    print("\n".join(fleet_summary(fleet)), flush=True)
    return installed


def _print_rollouts_when_settled(
    service: Service, fleet: Fleet, shown: tuple[Rollout, ...]
) -> tuple[Rollout, ...]:
    """Each association's rollout as the controller last read it, once no target is running."""
    last = service.board.get().last_pass
    if last is None or not fleet.wait_idle(0):
        return shown
    rollouts = tuple(sorted(last.rollouts, key=_by_name))
    running = any(
        n and status in ("Pending", "InProgress")
        for r in rollouts
        for status, n in r.counts.items()
    )
    if rollouts == shown or running or not any(r.counts for r in rollouts):
        return shown
    print(f"Rollouts ({len(rollouts)}):", flush=True)
    for rollout in rollouts:
        print(f"  {rollout_line(rollout)}", flush=True)
    return rollouts
