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

By default it runs twice on fresh endpoints and prints the two side by side: "baseline", the
controller with the follow-up's improvements switched off (nothing apply wrote remembered by
the observer, the pacer's former constants), and "now". `--no-baseline` runs "now" only
(half the time, about two minutes).

    .venv/bin/python benchmarks/organization_scale.py [--accounts 50] [--regions 3]
        [--packages 10] [--associations 20] [--create-rate 0.25] [--create-burst 2]
        [--calls-per-location 2] [--locations-in-parallel 150] [--no-baseline]
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.aws import pacing  # noqa: E402
from controller.aws.session import Sessions  # noqa: E402
from controller.reconcile.engine import Reconciler  # noqa: E402
from controller.reconcile.observe.association import AssociationObserver  # noqa: E402
from controller.reconcile.result import ActionRecord  # noqa: E402
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


@dataclass
class Figures:
    """What one converge-and-check run measured."""

    converge: float = 0.0
    outcome: str = ""
    applied: int = 0
    failed: int = 0
    calls: int = 0
    throttled: int = 0
    create_calls: int = 0
    lookups: int = 0  # ListAssociations by name before a create (look before retrying)
    first_action: float = 0.0  # observe + plan: until apply's first action
    packages_done: float = 0.0  # the last package action
    first_association: float = 0.0
    last_association: float = 0.0
    after_calls: int = 0
    after_seconds: float = 0.0
    after_outcome: str = ""
    noop_calls: int = 0
    noop_seconds: float = 0.0
    noop_outcome: str = ""
    noop_detail: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


@contextlib.contextmanager
def _baseline(on: bool) -> Iterator[None]:
    """`on`: the controller as it was before this change (benchmark comparison only):
    nothing apply wrote is remembered by the observer, and the pacer has its former
    constants."""
    if not on:
        yield
        return
    saved = (
        AssociationObserver.remember,
        {name: getattr(pacing, name) for name in _PACER_BEFORE},
    )
    AssociationObserver.remember = lambda *_args, **_kwargs: None  # type: ignore[method-assign]
    for name, value in _PACER_BEFORE.items():
        setattr(pacing, name, value)
    try:
        yield
    finally:
        AssociationObserver.remember = saved[0]  # type: ignore[method-assign]
        for name, value in saved[1].items():
            setattr(pacing, name, value)


# The pacer's constants before this change (controller.aws.pacing).
_PACER_BEFORE = {"FIRST_GAP": 0.2, "GROW": 1.5, "RAMP": 1.5, "SHRINK": 0.9}


def run_once(args: argparse.Namespace, accounts: list[str], *, baseline: bool) -> Figures:
    """Converge from empty, then the pass after, then a no-op pass, on a fresh endpoint."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    rate = f"ssm:CreateAssociation={args.create_rate}/{args.create_burst}"
    endpoint = subprocess.Popen(
        [sys.executable, "-m", "controller", "local", "--port", str(port)]
        + ["--rate", "aws", "--rate", rate],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures = Figures()
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
        with tempfile.TemporaryDirectory() as scratch, _baseline(baseline):
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
            times: dict[str, list[float]] = {"package": [], "association": []}

            def seen(record: ActionRecord) -> None:
                times.setdefault(str(record.kind), []).append(time.monotonic() - started)

            first = reconciler.run_pass(repository, "c1", on_action=seen)
            figures.converge = time.monotonic() - started
            started = time.monotonic()
            after = reconciler.run_pass(repository, "c1")
            figures.after_seconds = time.monotonic() - started
            started = time.monotonic()
            noop = reconciler.run_pass(repository, "c1")
            figures.noop_seconds = time.monotonic() - started
    finally:
        endpoint.send_signal(signal.SIGTERM)
        endpoint.wait(timeout=30)
    figures.outcome = str(first.outcome)
    figures.calls = sum(first.api_calls.values())
    figures.throttled = sum(
        n for (_o, result), n in first.api_calls.items() if result == "throttled"
    )
    figures.create_calls = sum(
        n for (o, _r), n in first.api_calls.items() if o == "CreateAssociation"
    )
    figures.lookups = first.api_calls.get(("ListAssociations", "success"), 0)
    figures.applied = sum(1 for a in first.actions if a.result.value == "success")
    figures.failed = sum(1 for a in first.actions if a.result.value == "failure")
    every = times["package"] + times["association"]
    figures.first_action = min(every, default=0.0)
    figures.packages_done = max(times["package"], default=0.0)
    figures.first_association = min(times["association"], default=0.0)
    figures.last_association = max(times["association"], default=0.0)
    figures.after_calls = sum(after.api_calls.values())
    figures.after_outcome = str(after.outcome)
    figures.noop_calls = sum(noop.api_calls.values())
    figures.noop_outcome = str(noop.outcome)
    figures.noop_detail = dict(noop.api_calls)
    figures.errors = tuple(str(e) for e in first.errors[:5])
    return figures


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
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the run with this change's improvements switched off (half the time)",
    )
    parser.add_argument(
        "--baseline-last",
        action="store_true",
        help="run the baseline second (on a shared machine the second run was often slower)",
    )
    args = parser.parse_args()

    accounts = _accounts(args.accounts)
    locations = len(accounts) * args.regions
    runs: dict[str, Figures] = {}
    if args.baseline_last:
        runs["now"] = run_once(args, accounts, baseline=False)
    if not args.no_baseline:
        runs["baseline"] = run_once(args, accounts, baseline=True)
    if not args.baseline_last:
        runs["now"] = run_once(args, accounts, baseline=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    creates = args.associations
    minimum = max(0.0, creates - args.create_burst) / args.create_rate
    floor = locations * math.ceil(args.associations / 50) + args.regions * (
        math.ceil(args.packages / 50) + args.packages
    )
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
        f"throttle-imposed minimum: {minimum:.1f}s ({creates} creates per location, "
        f"{args.create_burst:g} burst, {args.create_rate:g}/s); list floor {floor} calls"
    )
    names = list(runs)
    print(f"{'':44s}" + "".join(f"{name:>16s}" for name in names))

    def row(label: str, value: Callable[[Figures], str]) -> None:
        print(f"{label:44s}" + "".join(f"{value(runs[name]):>16s}" for name in names))

    def ratio(seconds: float) -> str:
        return f"{seconds / minimum:.2f}x" if minimum else "-"

    row("converge from empty (s)", lambda f: f"{f.converge:.1f}")
    row("  against the minimum (aim 1.2x)", lambda f: ratio(f.converge))
    row("  outcome", lambda f: f"{f.outcome} {f.applied}/{f.failed}f")
    row("  AWS calls", lambda f: str(f.calls))
    row("  of which throttled", lambda f: str(f.throttled))
    row("  CreateAssociation attempts", lambda f: str(f.create_calls))
    row("  ListAssociations (lists + look-ups)", lambda f: str(f.lookups))
    row("  observe + plan: first action at (s)", lambda f: f"{f.first_action:.1f}")
    row("  last package action at (s)", lambda f: f"{f.packages_done:.1f}")
    row("  first association at (s)", lambda f: f"{f.first_association:.1f}")
    row(
        "  association phase (s, vs minimum)",
        lambda f: (
            f"{f.last_association - f.first_association:.1f} "
            + ratio(f.last_association - f.first_association)
        ),
    )
    row("first pass after converging: calls", lambda f: str(f.after_calls))
    row("  seconds", lambda f: f"{f.after_seconds:.1f}")
    row("  against the list floor", lambda f: f"{f.after_calls / floor:.2f}x")
    row(
        "no-op pass: calls (aim 1.1x floor)",
        lambda f: f"{f.noop_calls} {f.noop_calls / floor:.2f}x",
    )
    row("  seconds", lambda f: f"{f.noop_seconds:.1f}")
    for (operation, result), count in sorted(runs["now"].noop_detail.items()):
        print(f"    {operation:28s} {result:10s} {count}")
    print(f"controller peak RSS (the larger of the runs): {peak_mb:.0f} MB")
    for name, figures in runs.items():
        for error in figures.errors:
            print(f"  {name} error: {error}")


if __name__ == "__main__":
    main()
