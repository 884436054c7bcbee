"""Benchmark: an organisation from empty, and its no-op pass, under per-location throttling.

One run (issue 15), against the embedded endpoint started as its own process
(`ssm-gitops local --rate ...`), so the controller's peak memory is its own:
- converge from empty: A accounts x R regions, P packages (published in every region of
  the home account and shared with the other accounts) and S associations in every location,
  with CreateAssociation throttled per (account, region) at --create-rate/--create-burst and
  every other SSM call at AWS-like rates (`faults.AWS_RATES`). Reported against the
  throttle-imposed minimum: a location needs (S - burst) / rate seconds for its creates,
  whatever the controller does (aim: within 1.2x);
- the pass that follows (it reads once what the first one created), then a no-op pass, in
  calls against the list floor: per location
  ceil(S/50) ListAssociations pages, plus per home region ceil(P/50) ListDocuments pages and
  one DescribeDocumentPermission per package (aim: within 1.1x); and its seconds;
- the controller's peak RSS.

    .venv/bin/python benchmarks/organization_scale.py [--accounts 50] [--regions 3]
        [--packages 10] [--associations 20] [--create-rate 0.25] [--create-burst 2]
        [--calls-per-location 2] [--locations-in-parallel 150]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.aws.session import Sessions  # noqa: E402
from controller.reconcile.engine import Reconciler  # noqa: E402
from controller.reconcile.result import ActionRecord, PassOutcome  # noqa: E402
from controller.repository import load_repository  # noqa: E402

HOME = "123456789012"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1")


def _accounts(count: int) -> list[str]:
    return [HOME] + [f"{200000000000 + n:012d}" for n in range(1, count)]


def write_repository(root: Path, accounts: list[str], regions: int, packages: int, n: int) -> None:
    listed = "\n".join(
        f'    - {{id: "{a}", roleArn: "arn:aws:iam::{a}:role/ssm-gitops"}}' for a in accounts
    )
    files = {
        "settings.yaml": (
            "apiVersion: ssm-gitops/v1\nkind: Settings\nmetadata: {name: settings}\nspec:\n"
            "  artifacts: {bucket: artifacts, prefix: p/}\n"
            f"  regions: [{', '.join(REGIONS[:regions])}]\n  accounts:\n{listed}\n"
        )
    }
    for p in range(packages):
        files[f"pkg{p}.yaml"] = (
            f"apiVersion: ssm-gitops/v1\nkind: Package\nmetadata: {{name: pkg{p}}}\nspec:\n"
            '  defaultVersion: "1.0"\n  versions:\n    - name: "1.0"\n'
            f"      files: [{{platform: amazon, arch: x86_64, source: src/pkg{p}}}]\n"
        )
        files[f"src/pkg{p}/install.sh"] = f"#!/bin/sh\necho install {p}\n"
        files[f"src/pkg{p}/uninstall.sh"] = f"#!/bin/sh\necho uninstall {p}\n"
    for a in range(n):
        files[f"assoc{a}.yaml"] = (
            f"apiVersion: ssm-gitops/v1\nkind: Association\nmetadata: {{name: assoc{a}}}\n"
            f"spec:\n  package: pkg{a % packages}\n"
            f"  targets: [{{key: tag:team, values: [t{a}]}}]\n  schedule: rate(1 day)\n"
        )
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_local/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the local endpoint did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--packages", type=int, default=10)
    parser.add_argument("--associations", type=int, default=20)
    # A slow CreateAssociation bucket, so that the throttle, not the local endpoint's CPU
    # (about two calls per association), bounds the run on a small machine.
    parser.add_argument("--create-rate", type=float, default=0.25)
    parser.add_argument("--create-burst", type=float, default=2.0)
    parser.add_argument("--calls-per-location", type=int, default=2)
    parser.add_argument("--locations-in-parallel", type=int, default=150)
    args = parser.parse_args()

    accounts = _accounts(args.accounts)
    locations = len(accounts) * args.regions
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    rate = f"ssm:CreateAssociation={args.create_rate}/{args.create_burst}"
    endpoint = subprocess.Popen(
        [sys.executable, "-m", "controller", "local", "--port", str(port)]
        + ["--rate", "aws", "--rate", rate],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(url)
        os.environ.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
        )
        import boto3

        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(
            Bucket="artifacts"
        )
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch) / "repo"
            write_repository(root, accounts, args.regions, args.packages, args.associations)
            repository = load_repository(root)
            reconciler = Reconciler(
                "bench",
                source="github.com/acme/org",
                work_dir=Path(scratch) / "work",
                sessions=Sessions(name="bench", calls_per_location=args.calls_per_location),
                locations_in_parallel=args.locations_in_parallel,
            )
            started = time.monotonic()
            association_times: list[float] = []

            def seen(record: ActionRecord) -> None:
                if record.kind == "association":
                    association_times.append(time.monotonic() - started)

            first = reconciler.run_pass(repository, "c1", on_action=seen)
            converge = time.monotonic() - started
            started = time.monotonic()
            after = reconciler.run_pass(repository, "c1")
            after_seconds = time.monotonic() - started
            started = time.monotonic()
            noop = reconciler.run_pass(repository, "c1")
            noop_seconds = time.monotonic() - started
    finally:
        endpoint.send_signal(signal.SIGTERM)
        endpoint.wait(timeout=30)

    creates = args.associations
    minimum = max(0.0, creates - args.create_burst) / args.create_rate
    throttled = sum(n for (_op, result), n in first.api_calls.items() if result == "throttled")
    applied = sum(1 for a in first.actions if a.result.value == "success")
    failed = sum(1 for a in first.actions if a.result.value == "failure")
    floor = locations * math.ceil(args.associations / 50) + args.regions * (
        math.ceil(args.packages / 50) + args.packages
    )
    noop_calls = sum(noop.api_calls.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"organisation: {len(accounts)} accounts x {args.regions} regions = {locations} "
        f"locations, {args.packages} packages, {args.associations} associations each"
    )
    print(
        f"throttle: CreateAssociation {args.create_rate:g}/s burst {args.create_burst:g} per "
        f"location, other SSM calls AWS-like; {args.calls_per_location} calls in flight per "
        f"location, {args.locations_in_parallel} locations at once"
    )
    print(
        f"converge from empty: {converge:.1f}s ({first.outcome}, {applied} actions applied, "
        f"{failed} failed, {sum(first.api_calls.values())} AWS calls, {throttled} throttled)"
    )
    print(
        f"  throttle-imposed minimum: {minimum:.1f}s "
        f"({creates} creates per location, {args.create_burst:g} burst, "
        f"{args.create_rate:g}/s) -> {converge / minimum if minimum else float('inf'):.2f}x "
        "(aim 1.2x)"
    )
    if association_times:
        # Associations wait for their packages (published in every region, shared): the
        # time before the first one is observe + packages, which the minimum leaves out.
        before = min(association_times)
        phase = max(association_times) - before
        print(
            f"  before the first association: {before:.1f}s (observe, STS, packages); "
            f"association phase {phase:.1f}s -> {phase / minimum if minimum else 0:.2f}x"
        )
    print(
        f"first pass after converging: {sum(after.api_calls.values())} calls, "
        f"{after_seconds:.1f}s ({after.outcome}): the new associations' tags and specs, and "
        "the changed packages, are read once"
    )
    print(
        f"no-op pass: {noop_calls} calls against a list floor of {floor} -> "
        f"{noop_calls / floor:.2f}x (aim 1.1x), {noop_seconds:.1f}s ({noop.outcome})"
    )
    for (operation, result), count in sorted(noop.api_calls.items()):
        print(f"    {operation:28s} {result:10s} {count}")
    print(f"controller peak RSS: {peak_mb:.0f} MB")
    if first.outcome is PassOutcome.FAILURE:
        for error in first.errors[:5]:
            print(f"  error: {error}")


if __name__ == "__main__":
    main()
