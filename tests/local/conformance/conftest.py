"""The conformance suite's two axes: WHERE (the local endpoint, or real AWS) and WITH WHAT
(boto3, or the AWS CLI in a subprocess).

Real AWS runs only with SSM_GITOPS_REAL_AWS=1 and credentials in the environment (tests
marked `aws`); optional SSM_GITOPS_REAL_BUCKET (an S3 bucket for package files) and
SSM_GITOPS_REAL_INSTANCE_IDS (comma-separated managed instances for send-command) enable
the tests that need them. Every resource gets a unique name and is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from controller.local import LocalAWS, hooks

REAL = os.environ.get("SSM_GITOPS_REAL_AWS") == "1"


def find_aws_cli() -> str:
    """The AWS CLI to run: $SSM_GITOPS_AWS_CLI, else the `aws` installed beside this Python
    (the venv's, from the `test` extra), else the one on PATH. Regression (issue 10): it was an
    absolute venv path of one machine, so the CLI half of the suite failed on any other."""
    override = os.environ.get("SSM_GITOPS_AWS_CLI")
    if override:
        return override
    beside = Path(sys.executable).with_name("aws")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("aws") or "aws"


AWS_CLI = find_aws_cli()
_ERROR = re.compile(
    r"An error occurred \((?P<code>[^)]+)\) when calling the \w+ operation: ?(?P<message>.*)", re.S
)


class ApiError(Exception):
    """An AWS error, whichever tool met it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Target:
    """Where the suite runs: the local endpoint or real AWS."""

    mode: str
    region: str
    local: LocalAWS | None
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def client(self, service: str) -> Any:
        if self.local is not None:
            return self.local.client(service, region=self.region)
        return boto3.client(service, region_name=self.region)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = self.region
        env["AWS_PAGER"] = ""
        if self.local is not None:
            env.update(
                AWS_ENDPOINT_URL=self.local.endpoint_url,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
            )
            env.pop("AWS_SESSION_TOKEN", None)
            env.pop("AWS_PROFILE", None)
        else:
            env.pop("AWS_ENDPOINT_URL", None)
        return env

    def unique(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    def bucket(self) -> str:
        if self.local is None:
            bucket = os.environ.get("SSM_GITOPS_REAL_BUCKET")
            if not bucket:
                pytest.skip("set SSM_GITOPS_REAL_BUCKET to run package tests against real AWS")
            return bucket
        name = "conformance-packages"
        self.client("s3").create_bucket(Bucket=name)
        return name

    def instances(self, *wanted: str) -> list[str]:
        """Managed instances to send commands to: registered ones locally, given ones on AWS."""
        if self.local is None:
            given = [i for i in os.environ.get("SSM_GITOPS_REAL_INSTANCE_IDS", "").split(",") if i]
            if not given:
                pytest.skip("set SSM_GITOPS_REAL_INSTANCE_IDS to run send-command on real AWS")
            return given
        account = self.client("sts").get_caller_identity()["Account"]
        for instance_id in wanted:
            self.local.ssm.register_instance(
                account, self.region, hooks.ManagedInstance(instance_id=instance_id)
            )
        return list(wanted)


def _kebab(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", operation).lower()


class Boto3Tool:
    name = "boto3"

    def __init__(self, target: Target) -> None:
        self.ssm = target.client("ssm")

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self.ssm, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        try:
            result: dict[str, Any] = method(**params)
        except botocore.exceptions.ClientError as error:
            raise ApiError(
                error.response["Error"]["Code"], error.response["Error"]["Message"]
            ) from None
        result.pop("ResponseMetadata", None)
        return result


class CliTool:
    """`aws ssm <operation> --cli-input-json ...`: the same request shape as boto3."""

    name = "cli"

    def __init__(self, target: Target) -> None:
        self.target = target

    def run(self, *argv: str) -> dict[str, Any]:
        completed = subprocess.run(
            [AWS_CLI, *argv, "--output", "json"],
            env=self.target.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if completed.returncode != 0:
            match = _ERROR.search(completed.stderr)
            if match is None:
                raise AssertionError(f"aws {' '.join(argv)} failed: {completed.stderr}")
            raise ApiError(match.group("code"), match.group("message").strip())
        output = completed.stdout.strip()
        result: dict[str, Any] = json.loads(output) if output else {}
        return result

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.run("ssm", _kebab(operation), "--cli-input-json", json.dumps(params))


@pytest.fixture(params=["local", pytest.param("real", marks=pytest.mark.aws)])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "real":
        if not REAL:
            pytest.skip("real AWS: set SSM_GITOPS_REAL_AWS=1 and AWS credentials")
        yield Target("real", os.environ.get("AWS_REGION", "us-east-1"), None)
        return
    yield Target("local", "us-east-1", request.getfixturevalue("local_aws"))


@pytest.fixture(params=["boto3", "cli"])
def tool(request: pytest.FixtureRequest, target: Target) -> Boto3Tool | CliTool:
    return Boto3Tool(target) if request.param == "boto3" else CliTool(target)


@pytest.fixture
def cli(target: Target) -> CliTool:
    return CliTool(target)
