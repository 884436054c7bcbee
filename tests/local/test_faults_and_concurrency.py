"""Injected latency, throttling and 5xx (deterministic by seed), and concurrent clients."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from controller.local import LocalAWS
from controller.local.faults import Faults, FaultSettings
from tests.local.helpers import command_content

NO_RETRIES = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})


def _set_faults(aws: LocalAWS, settings: dict[str, Any]) -> None:
    request = urllib.request.Request(
        aws.endpoint_url + "/_local/faults", data=json.dumps(settings).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["error_rate"] == settings.get("error_rate", 0.0)


def test_token_bucket_throttles_with_throttling_exception(local_aws: LocalAWS) -> None:
    _set_faults(local_aws, {"throttle": {"rate": 0.1, "burst": 3, "operations": ["ListDocuments"]}})
    ssm = local_aws.client("ssm", config=NO_RETRIES)
    outcomes = []
    for _ in range(6):
        try:
            ssm.list_documents()
            outcomes.append("ok")
        except botocore.exceptions.ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    # A 3-token bucket refilled every 10 s: three calls pass, the next ones are throttled.
    assert outcomes[:3] == ["ok", "ok", "ok"]
    assert outcomes[3:] == ["ThrottlingException"] * 3
    ssm.describe_document(Name="AWS-RunShellScript")  # other operations are not throttled


def test_error_rate_is_deterministic_by_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        faults = Faults(FaultSettings(error_rate=0.5, seed=seed))
        return [faults.decide("ssm:ListDocuments", ssm=True).fail for _ in range(40)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)
    assert 5 < sum(pattern(7)) < 35


def test_injected_errors_reach_clients_as_internal_server_error(local_aws: LocalAWS) -> None:
    _set_faults(local_aws, {"error_rate": 1.0, "seed": 1})
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        local_aws.client("ssm", config=NO_RETRIES).list_documents()
    assert raised.value.response["Error"]["Code"] == "InternalServerError"
    local_aws.client("s3").list_buckets()  # faults apply to SSM only


def test_latency_per_operation(local_aws: LocalAWS) -> None:
    _set_faults(local_aws, {"latency": {"ssm:DescribeDocument": 1.0}})
    ssm = local_aws.client("ssm")
    start = time.monotonic()
    ssm.describe_document(Name="AWS-RunShellScript")
    slow = time.monotonic() - start
    start = time.monotonic()
    ssm.list_documents()
    fast = time.monotonic() - start
    assert slow >= 1.0 and fast < 1.0


def test_reset_restores_the_start_options(local_aws: LocalAWS) -> None:
    _set_faults(local_aws, {"error_rate": 1.0})
    local_aws.reset()
    local_aws.client("ssm", config=NO_RETRIES).list_documents()


def test_concurrent_updates_keep_every_version(local_aws: LocalAWS) -> None:
    ssm = local_aws.client("ssm")
    ssm.create_document(Name="Busy", Content=command_content("start"))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        client = local_aws.client("ssm")
        try:
            for i in range(5):
                client.update_document(
                    Name="Busy", Content=command_content(f"{n}-{i}"), DocumentVersion="$LATEST"
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    pages = ssm.get_paginator("list_document_versions").paginate(Name="Busy")
    numbers = sorted(int(v["DocumentVersion"]) for p in pages for v in p["DocumentVersions"])
    assert numbers == list(range(1, 22))
