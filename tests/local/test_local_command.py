"""`ssm-gitops local` as a real process: prints the endpoint, serves it, exits 0 on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import boto3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_local_command_serves_until_sigterm() -> None:
    port = _free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "controller", "local", "--port", str(port), "--create-delay", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        _talk_then_stop(process, port)


def _talk_then_stop(process: subprocess.Popen[str], port: int) -> None:
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert url in first
        assert f"export AWS_ENDPOINT_URL={url}" in process.stdout.readline()
        ssm = boto3.client(
            "ssm",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        created = ssm.create_document(
            Name="FromCli", Content='{"schemaVersion": "2.2", "mainSteps": []}'
        )
        assert created["DocumentDescription"]["Name"] == "FromCli"
    finally:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert process.returncode == 0
    assert process.stdout is not None
    assert "stopped" in process.stdout.read()


def test_local_command_port_in_use_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        completed = subprocess.run(
            [sys.executable, "-m", "controller", "local", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode == 1
    assert re.fullmatch(
        r"ssm-gitops: cannot listen on 127\.0\.0\.1:\d+: .*pick another --port\n", completed.stderr
    )


def test_fault_flags_reach_the_admin_route() -> None:
    import json
    import urllib.request

    port = _free_port()
    argv = [sys.executable, "-m", "controller", "local", "--port", str(port)]
    argv += ["--latency", "ssm:ListDocuments=0.2", "--latency", "0.01", "--fault-rate", "0.5"]
    argv += ["--throttle-rate", "5", "--throttle-burst", "10", "--seed", "3"]
    argv += ["--rate", "ssm:CreateAssociation=0.5/2", "--rate", "ssm:*=7"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            process.stdout.readline()
            url = f"http://127.0.0.1:{port}/_local/faults"
            with urllib.request.urlopen(url, timeout=10) as response:
                faults = json.loads(response.read())
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    assert faults == {
        "latency": {"ssm:ListDocuments": 0.2, "*": 0.01},
        "throttle": {"rate": 5.0, "burst": 10.0, "operations": ["*"]},
        "rates": {
            "ssm:CreateAssociation": {"rate": 0.5, "burst": 2.0},
            "ssm:*": {"rate": 7.0, "burst": 7.0},
        },
        "error_rate": 0.5,
        "seed": 3,
    }
    assert process.returncode == 0
