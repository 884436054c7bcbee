"""`ssm-gitops run`: turn the parsed flags into `Options`, run the `Service` until SIGTERM.

Sits between controller/cli.py (the flags) and runtime.service (the controller). SIGTERM
and SIGINT stop it: no new pass starts, the pass in flight finishes (up to
SSM_GITOPS_SHUTDOWN_GRACE seconds, default 25, inside Kubernetes' default 30 s), exit 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from controller.errors import UserError
from controller.runtime import logs
from controller.runtime.server import parse_listen
from controller.runtime.service import Options, Service
from controller.runtime.webhook import read_secret
from controller.source import GitCredentials
from controller.source.signatures import TrustedKeys


def options_from(args: argparse.Namespace) -> Options:
    host, port = parse_listen(args.listen)
    secret = None
    if args.webhook_secret_file:
        try:
            secret = read_secret(args.webhook_secret_file)
        except OSError as error:
            raise UserError(
                f"{args.webhook_secret_file}: cannot read the webhook secret: {error.strerror}"
            ) from error
        if not secret:
            raise UserError(f"{args.webhook_secret_file}: the webhook secret file is empty")
    if args.interval <= 0 or args.resync_interval <= 0:
        raise UserError("--interval and --resync-interval must be more than 0")
    queue = args.events_queue or None
    if queue is not None and not queue.startswith(("https://", "http://")):
        raise UserError(
            f"--events-queue {queue}: not a queue URL "
            "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, see docs/drift-events.md)"
        )
    # Read and checked now: a missing or unreadable key file stops the start with one line.
    trusted_keys = TrustedKeys.from_flags(
        args.verify_signatures, args.allowed_signers_file, args.trusted_gpg_keys_file
    )
    return Options(
        repo=args.repo,
        ref=args.ref,
        path=args.path,
        owner=args.name,
        host=host,
        port=port,
        poll_interval=args.interval,
        resync_interval=args.resync_interval,
        webhook_secret=secret,
        credentials=GitCredentials.from_files(
            args.git_token_file, args.ssh_key_file, args.known_hosts_file
        ),
        cache_dir=Path(args.cache_dir).expanduser(),
        dry_run=args.dry_run,
        trusted_keys=trusted_keys,
        events_queue=queue,
    )


def shutdown_grace() -> float:
    try:
        return float(os.environ.get("SSM_GITOPS_SHUTDOWN_GRACE", "25"))
    except ValueError as error:
        raise UserError("SSM_GITOPS_SHUTDOWN_GRACE: give a number of seconds") from error


def run_until_signalled(service: Service, grace: float) -> int:
    """Start `service`, block until SIGTERM/SIGINT, stop it; 0 after a clean stop."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.start()
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.stop(grace)
    return 0


def run_command(args: argparse.Namespace) -> int:
    logs.configure()
    options = options_from(args)
    grace = shutdown_grace()
    return run_until_signalled(Service(options), grace)
