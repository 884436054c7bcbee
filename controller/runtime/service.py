"""The whole controller assembled: git source, loop, single flight, timers and HTTP server.

Sits on top of every other runtime module; `ssm-gitops run` (runtime.commands) and
`ssm-gitops demo` (controller.demo) each build one `Service` from `Options` and start it.
Starting asks for a first pass at once (a full resync, so a restarted controller heals
whatever happened while it was away); stopping lets the pass in flight finish.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from controller.errors import UserError
from controller.model.ownership import local_origin, source_id
from controller.runtime.logs import emit
from controller.runtime.loop import ControllerLoop, Reconciling
from controller.runtime.metrics import Metrics
from controller.runtime.schedule import SingleFlight, Spaced, Timers
from controller.runtime.server import App, HttpServer
from controller.runtime.status import Status, StatusBoard
from controller.runtime.webhook import Followed, repository_key
from controller.source import GitCredentials, GitSource, redact
from controller.source.signatures import TrustedKeys, verify_revision

if TYPE_CHECKING:  # loaded lazily (see `_load_repository`): the models only as types
    from controller.reconcile.engine import Reconciler as Engine
    from controller.repository import Repository
    from controller.runtime.events import EventQueue, OwnChanges

WEBHOOK_SPACING = 5.0  # seconds between webhook-triggered passes, at least


@dataclass(frozen=True)
class Options:
    """What `run` is told (its flags, see controller/cli.py)."""

    repo: str
    ref: str | None = None
    path: str = "."
    owner: str = "ssm-gitops"
    host: str = "127.0.0.1"
    port: int = 8080
    poll_interval: float = 60.0
    resync_interval: float = 600.0
    webhook_secret: bytes | None = None
    credentials: GitCredentials | None = None
    cache_dir: Path = Path.home() / ".cache" / "ssm-gitops"
    dry_run: bool = False
    trusted_keys: TrustedKeys | None = None  # --verify-signatures: the keys it trusts
    events_queue: str | None = None  # --events-queue: the drift-events SQS queue URL


def _load_repository(root: Path, display_prefix: str) -> Repository:
    from controller.repository import load_repository

    return load_repository(root, display_prefix=display_prefix)


class _Reconcilers:
    """One long-lived reconciler per mode, so each keeps its observe cache between passes."""

    def __init__(self, owner: str, work_dir: Path, source: str = "") -> None:
        self._owner = owner
        self._source = source
        self._work_dir = work_dir
        self._made: dict[bool, Reconciling] = {}

    def __call__(self, detect_only: bool) -> Reconciling:
        if detect_only not in self._made:
            from controller.reconcile.cache import LastingStore, store_path
            from controller.reconcile.engine import Reconciler as Engine

            self._work_dir.mkdir(parents=True, exist_ok=True)
            # The observe cache on disk, shared with `plan` and `apply` on this --cache-dir.
            store = LastingStore(store_path(self._work_dir.parent, self._owner, self._source))
            self._made[detect_only] = Engine(
                self._owner,
                source=self._source,
                dry_run=detect_only,
                work_dir=self._work_dir,
                store=store,
            )
        return self._made[detect_only]

    def healer(self, detect_only: bool) -> Engine:
        """The same reconciler, as drift events use it (`Reconciler.heal`)."""
        return cast("Engine", self(detect_only))

    def stop(self) -> None:
        for reconciler in self._made.values():
            reconciler.stop()


def _event_queue(
    options: Options, loop: ControllerLoop, metrics: Metrics, own: OwnChanges
) -> EventQueue:
    """The drift-events consumer of `--events-queue` (runtime/events.py)."""
    from controller.aws.api import CallCounter
    from controller.aws.session import session_name
    from controller.runtime.events import EventQueue, SqsQueue

    url = options.events_queue or ""
    counter = CallCounter()
    return EventQueue(
        SqsQueue(url, counter),
        loop,
        session_name=session_name(options.owner),
        registry=metrics.registry,
        own=own,
        counter=counter,
        on_calls=metrics.record_api_calls,
        describe=redact(url),
    )


class Service:
    """A running controller: `start()`, then `stop()`."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.source = GitSource(
            options.repo,
            options.ref,
            options.cache_dir / "git",
            options.credentials,
            cache_named=f"--cache-dir {options.cache_dir}",  # or SSM_GITOPS_CACHE_DIR
        )
        # `--repo` naming a folder inside a local repository means that folder.
        path = self.source.within(options.path)
        prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
        self.board = StatusBoard(
            Status(
                repo=redact(options.repo),
                ref=options.ref,
                path=options.path,
                owner=options.owner,
                dry_run=options.dry_run,
                started_at=time.time(),
            )
        )
        self.metrics = Metrics()
        # The owner's source: the `ssm-gitops:source` tag on what this controller manages.
        source = source_id(
            options.repo,
            path,
            inner=self.source.within(None),
            origin=local_origin(options.repo),
        )
        self.reconcilers = _Reconcilers(options.owner, options.cache_dir / "work", source)
        own = None
        if options.events_queue:
            from controller.runtime.events import OwnChanges

            own = OwnChanges()
        self.loop = ControllerLoop(
            self.source,
            lambda root: _load_repository(root, prefix),
            self.reconcilers,
            board=self.board,
            metrics=self.metrics,
            sub_path=path,
            dry_run=options.dry_run,
            # --verify-signatures: the head commit's signer, or `SignatureError`.
            verify=None
            if options.trusted_keys is None
            else functools.partial(verify_revision, self.source, keys=options.trusted_keys),
            healer_for=self.reconcilers.healer if own is not None else None,
            on_action=own.record if own is not None else None,
        )
        self.events: EventQueue | None = None
        if own is not None and options.events_queue:
            self.events = _event_queue(options, self.loop, self.metrics, own)
        self.flight = SingleFlight(self.loop)
        # A push triggers a pass at once. Replays of a push already handled are dropped by
        # the server (SeenPushes); what is left of a burst of distinct pushes costs at most
        # one more git fetch per WEBHOOK_SPACING seconds (or per poll interval if shorter).
        self.webhooks = Spaced(
            lambda: self.flight.request("webhook"), min(options.poll_interval, WEBHOOK_SPACING)
        )
        try:
            self.server = HttpServer(
                App(
                    self.board,
                    self.metrics,
                    self._webhook,
                    webhook_secret=options.webhook_secret,
                    alive=self.flight.alive,
                    followed=Followed(repository_key(options.repo), options.ref),
                ),
                options.host,
                options.port,
            )
        except OSError as error:
            raise UserError(
                f"--listen {options.host}:{options.port}: cannot listen: {error.strerror} "
                "(choose another port, or stop what uses it)"
            ) from error
        self.timers = Timers(
            self.flight,
            poll_interval=options.poll_interval,
            resync_interval=options.resync_interval,
            rollout_tick=self._rollout_tick,
        )

    def _rollout_tick(self) -> None:
        if self.loop.rollout_in_flight():
            self.flight.request("rollout")

    def _webhook(self, _reason: str) -> None:
        self.webhooks.request()

    @property
    def url(self) -> str:
        host = self.server.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.server.port}"

    def start(self) -> None:
        self.flight.start()
        self.server.start()
        self.flight.request("startup", full_resync=True)
        self.timers.start()
        if self.events is not None:
            self.events.start()
        o = self.options
        emit(
            logging.INFO,
            "started",
            f"watching {redact(o.repo)} every {o.poll_interval:g}s, serving {self.url}",
            repo=redact(o.repo),
            ref=o.ref,
            path=o.path,
            owner=o.owner,
            listen=f"{self.server.host}:{self.server.port}",
            poll_interval_seconds=o.poll_interval,
            resync_interval_seconds=o.resync_interval,
            dry_run=o.dry_run,
            webhook=bool(o.webhook_secret),
            verify_signatures=o.trusted_keys is not None,
            events_queue=redact(o.events_queue) if o.events_queue else None,
        )

    def stop(self, grace: float = 25.0) -> bool:
        """Stop taking work: the actions in flight finish (at most `grace` seconds), the
        rest of the pass is skipped, and the next start converges from there."""
        self.timers.stop()
        self.webhooks.stop()
        if self.events is not None:
            self.events.stop()
        self.reconcilers.stop()
        in_flight = self.board.get().pass_running
        if in_flight:
            emit(logging.INFO, "stopping", "waiting for the actions in flight to finish")
        finished = self.flight.stop(timeout=grace)
        self.server.stop()
        emit(
            logging.INFO if finished else logging.WARNING,
            "stopped",
            "stopped"
            if finished
            else f"stopped with a pass still running after {grace:g}s "
            "(the next start converges: every action is idempotent)",
            clean=finished,
        )
        return finished

    def wait_for_pass(self, timeout: float, *, after: int = 0) -> Status:
        """Block until more than `after` passes completed (or `timeout`); the status then."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.board.get()
            if status.passes > after or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)
