"""The location record is input from S3, not from git: anyone who may write the artifacts
bucket's prefix can put anything there (controller/aws/records.py). A record that is garbage,
huge or hostile must never cost a pass, nor make the controller act anywhere it would not
act on its own (issue 15, contract "Ownership and safety").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.aws.records import record_key
from controller.reconcile.result import PassOutcome
from controller.repository import load_repository
from tests.reconcile.test_locations_record import HOME, OTHER, _in_eu, _reconciler, _repo

KEY = record_key("p/", "ssm-gitops", "s1")
STRANGER = "999988887777"


def _put(aws: Any, body: bytes) -> None:
    aws.client("s3").put_object(Bucket="artifacts", Key=KEY, Body=body)


def test_a_recorded_role_of_another_account_is_never_used(aws_env: Any, tmp_path: Path) -> None:
    """Bug: a record entry names a location that left Settings with the role of ANOTHER
    account (one still in Settings). The controller assumed that role, read the other
    account's resources as the left location's and pruned them there: our desired
    association in OTHER was deleted by a write to the bucket."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    root = _repo(tmp_path / "repo", "[eu-west-1]")
    first = _reconciler(tmp_path, "a").run_pass(load_repository(root), "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    assert _in_eu(aws_env) == (["agent"], ["agent-all"])
    body = json.loads(aws_env.client("s3").get_object(Bucket="artifacts", Key=KEY)["Body"].read())
    body["locations"].append(
        {
            "account": STRANGER,
            "region": "eu-west-1",
            "role": f"arn:aws:iam::{OTHER}:role/ssm-gitops",
        }
    )
    _put(aws_env, json.dumps(body).encode())
    second = _reconciler(tmp_path, "b").run_pass(load_repository(root), "c1")
    assert not [a for a in second.actions if a.action == "delete"], second.actions
    assert _in_eu(aws_env) == (["agent"], ["agent-all"])
    assert any("location record" in f.message for f in second.failures), second.failures


@pytest.mark.parametrize(
    "body",
    [
        b"not json {",
        b"[1, 2]",
        b'{"locations": "everywhere"}',
        b'{"locations": [{"account": 1}]}',
        b'{"locations": [{"account": "../../x", "region": "eu-west-1", "role": ""}]}',
        b'{"locations": [{"account": "' + HOME.encode() + b'", "region": "x/y", "role": ""}]}',
        b" " * (9 * 1024 * 1024) + b"{}",
    ],
    ids=["not-json", "list", "not-a-list", "no-region", "bad-account", "bad-region", "huge"],
)
def test_a_garbage_record_costs_no_pass(aws_env: Any, tmp_path: Path, body: bytes) -> None:
    """Bug: a record that is not the controller's JSON made `json.loads` (or a key lookup)
    raise out of `desired_for`: every pass failed as a build error, nothing was applied.
    It is one `location` failure naming the object; the pass applies, cleans nothing left
    behind and leaves the record alone."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    _put(aws_env, body)
    root = _repo(tmp_path / "repo", "[eu-west-1]")
    result = _reconciler(tmp_path, "a").run_pass(load_repository(root), "c1")
    assert _in_eu(aws_env) == (["agent"], ["agent-all"]), result.failures
    assert [f.reason.value for f in result.failures] == ["location"], result.failures
    message = result.failures[0].message
    assert message.startswith(f"the location record s3://artifacts/{KEY} ") and "\n" not in message
    got = aws_env.client("s3").get_object(Bucket="artifacts", Key=KEY)["Body"].read()
    assert got == body  # not overwritten: an operator looks at it
