"""Fan-out across locations (issue 15): every location at once, a bounded number of calls in
flight in each, and a throttled location that waits its turn without failing the pass or
holding up the others."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from controller.aws.session import Sessions
from controller.local import LocalAWS
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import ActionRecord, PassOutcome
from controller.repository import load_repository

ACCOUNTS = ("123456789012", "111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ASSOCIATIONS = 4


def _repository(root: Path) -> Path:
    accounts = "\n".join(
        f'    - {{id: "{a}", roleArn: "arn:aws:iam::{a}:role/ssm-gitops"}}' for a in ACCOUNTS
    )
    files = {
        "settings.yaml": f"""
apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts, prefix: p/}}
  regions: [{", ".join(REGIONS)}]
  accounts:
{accounts}
""",
        "tool.yaml": """
apiVersion: ssm-gitops/v1
kind: Package
metadata: {name: toolbox}
spec:
  defaultVersion: "1.0"
  versions:
    - name: "1.0"
      files: [{platform: amazon, arch: x86_64, source: src}]
"""
        + "".join(
            f"""---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: toolbox-{n}}}
spec:
  package: toolbox
  targets: [{{key: "tag:team", values: [t{n}]}}]
  schedule: rate(1 day)
"""
            for n in range(ASSOCIATIONS)
        ),
        "src/install.sh": "#!/bin/sh\necho install\n",
        "src/uninstall.sh": "#!/bin/sh\necho uninstall\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _admin(aws: LocalAWS, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        aws.endpoint_url + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_locations_converge_concurrently_with_bounded_calls_in_flight_each(
    aws_env: LocalAWS, tmp_path: Path
) -> None:
    """Issue 15: locations were read one after another and applied through one pool of 8
    with no bound per location; now every location proceeds at once and none has more
    than `calls_per_location` calls in flight (counted at the endpoint)."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    repository = load_repository(_repository(tmp_path / "repo"))
    # Slow creates and lists, so that calls overlap and the peaks mean something.
    _admin(aws_env, "/_local/faults", {"latency": {"ssm:CreateAssociation": 0.15}})
    reconciler = Reconciler(
        "ssm-gitops",
        work_dir=tmp_path / "work",
        sessions=Sessions(calls_per_location=2),
        locations_in_parallel=len(ACCOUNTS) * len(REGIONS),
    )
    _admin(aws_env, "/_local/in-flight/reset", {})

    result = reconciler.run_pass(repository, "c1")

    assert result.outcome is PassOutcome.SUCCESS, result.errors
    created = [a for a in result.actions if a.action == "create" and a.kind == "association"]
    assert len(created) == len(ACCOUNTS) * len(REGIONS) * ASSOCIATIONS
    peaks = _admin(aws_env, "/_local/in-flight")["peak"]
    locations = {f"{a}/{r}": peaks.get(f"{a}/{r}", 0) for a in ACCOUNTS for r in REGIONS}
    assert max(locations.values()) <= 2, locations
    assert max(locations.values()) == 2, locations  # the bound is used, not just respected
    assert peaks["*"] > 2 * 2, peaks  # several locations at once


def test_a_throttled_location_waits_without_failing_or_slowing_the_others(
    aws_env: LocalAWS, tmp_path: Path
) -> None:
    throttled = f"{ACCOUNTS[1]}/{REGIONS[1]}"
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    repository = load_repository(_repository(tmp_path / "repo"))
    _admin(
        aws_env,
        "/_local/faults",
        {"rates": {f"ssm:CreateAssociation@{throttled}": {"rate": 1.0, "burst": 1}}},
    )
    reconciler = Reconciler(
        "ssm-gitops",
        work_dir=tmp_path / "work",
        sessions=Sessions(calls_per_location=2),
        locations_in_parallel=len(ACCOUNTS) * len(REGIONS),
    )
    finished: dict[str, float] = {}

    def on_action(record: ActionRecord) -> None:
        finished[f"{record.account}/{record.region}"] = time.monotonic()

    started = time.monotonic()
    result = reconciler.run_pass(repository, "c1", on_action=on_action)

    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert result.api_calls.get(("CreateAssociation", "throttled"), 0) > 0
    # Four creates through a 1/s bucket of one: the throttled location needs >= 3 s ...
    assert finished[throttled] - started >= 3.0
    # ... and every other location is done well before it.
    others = [t for location, t in finished.items() if location != throttled]
    assert max(others) < finished[throttled] - 1.0


def test_assumed_accounts_share_one_session_and_keep_their_own_identity(
    aws_env: LocalAWS,
) -> None:
    """Found by benchmarks/organization_scale.py: a boto3 session per assumed account held
    its own copy of the service models (the controller reached ~1 GB RSS at 50 accounts).
    Clients now share one session and carry the role's credentials themselves."""
    sessions = Sessions()
    clients = [
        sessions.for_account(account, "eu-west-1", f"arn:aws:iam::{account}:role/ssm-gitops")
        for account in ACCOUNTS[1:]
    ]
    assert len({id(c.session) for c in clients}) == 1
    for account, location in zip(ACCOUNTS[1:], clients, strict=True):
        identity = location.client("sts").get_caller_identity()
        assert identity["Account"] == account
