"""`ssm-gitops local`: serve the embedded endpoint until SIGTERM/SIGINT.

Where it sits: called by controller/cli.py with the parsed flags; starts `LocalAWS`
(server.py) on --host/--port, prints the endpoint and how to use it, then waits. With
--fleet/--fleet-file it first checks that package scripts can run sandboxed
(controller/local/fleet/command.py), and on
SIGTERM/SIGINT stops the fleet - killing the scripts still running - and removes its
instance roots.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import signal
import threading
from types import FrameType

from controller.errors import UserError

# How long stopping waits for the fleet's rollouts to record that they were stopped.
STOP_SECONDS = 5.0


def local_command(args: argparse.Namespace) -> int:
    from controller.local.server import LocalAWS

    latency = {}
    for item in getattr(args, "latency", None) or []:
        operation, _, seconds = item.partition("=")
        try:
            latency[operation if seconds else "*"] = float(seconds or operation)
        except ValueError:
            raise UserError(
                f"--latency {item!r}: use SECONDS or OPERATION=SECONDS, e.g. ssm:CreateDocument=0.2"
            ) from None
    from controller.local.faults import parse_rate_flag, parse_rates

    rates_json: dict[str, object] = {}
    try:
        for item in getattr(args, "rate", None) or []:
            rates_json.update(parse_rate_flag(item))
        rates = parse_rates(rates_json)
    except ValueError as error:
        text = str(error)
        raise UserError(text if text.startswith("--rate") else f"--rate: {text}") from None
    from controller.local.fleet.command import (
        fleet_sandbox,
        fleet_specs_from_flags,
        start_fleet_for_command,
    )

    fleet_specs = fleet_specs_from_flags(
        getattr(args, "fleet", 0), getattr(args, "fleet_file", None)
    )
    sandbox = fleet_sandbox(fleet_specs)  # no bubblewrap: one line, and nothing starts
    aws = LocalAWS(
        host=args.host,
        port=args.port,
        create_delay=getattr(args, "create_delay", 0.05),
        latency=latency,
        throttle_rate=getattr(args, "throttle_rate", 0.0),
        throttle_burst=getattr(args, "throttle_burst", 0.0),
        rates=rates,
        error_rate=getattr(args, "fault_rate", 0.0),
        seed=getattr(args, "seed", 0),
    )
    try:
        aws.start()
    except OSError as error:
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {error.strerror}; pick another --port"
        ) from None
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    url = aws.endpoint_url
    print(f"Local AWS endpoint (SSM, S3, STS, EC2, IAM) on {url}", flush=True)
    print(f"  export AWS_ENDPOINT_URL={url}", flush=True)
    print("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
    print("  export AWS_DEFAULT_REGION=us-east-1  # the AWS CLI v1 reads this, not AWS_REGION")
    print(f"  admin: {url}/_local/calls, POST {url}/_local/reset, {url}/_local/faults")
    print("Stop with Ctrl-C or SIGTERM.", flush=True)
    fleet = None
    try:
        fleet = start_fleet_for_command(aws, fleet_specs, sandbox=sandbox)
        # The endpoint's models (moto, botocore: ~270k objects) live as long as the
        # process. Frozen, no collection walks them again - including the last one at
        # exit, which otherwise took ~4 s of a 5 s stop (measured on 2 shared cores).
        gc.freeze()
        while not stop.wait(0.5):
            pass
    finally:
        if fleet is not None:
            # Kills the scripts still running (a script may sleep for its whole hour), so
            # SIGTERM stops us within a couple of seconds.
            fleet.stop(timeout=STOP_SECONDS)
            # The instance roots are scratch, made for this run: leave nothing behind in /tmp.
            shutil.rmtree(fleet.work_dir, ignore_errors=True)
        aws.stop()
    print("Local AWS endpoint stopped.", flush=True)
    return 0
