"""Real processes for the end-to-end tests: `ssm-gitops local` and `ssm-gitops run`.

Each process writes its output to a file in the test's tmp dir (read it on failure) and is
killed at teardown; helpers scrape `/metrics` and read `/status` over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError):
            last = None
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Process:
    """`python -m controller ARGS` with its output in `log`."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._out.close()


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def wait_for_port(port: int, timeout: float, process: Process) -> None:
    def is_open() -> bool:
        if process.proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.output()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(is_open, timeout, f"port {port}")


class Controller:
    """A running `ssm-gitops run` and its HTTP surface."""

    def __init__(self, process: Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.port = port

    def status(self) -> dict[str, Any]:
        code, body = http_get(self.url + "/status")
        assert code == 200, body
        document: dict[str, Any] = json.loads(body)
        return document

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, text = http_get(self.url + "/metrics")
        assert code == 200, text
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get(("ssm_gitops_" + name, tuple(sorted(labels.items()))))

    def wait_for_applied(self, commit: str, timeout: float) -> dict[str, Any]:
        """Wait until a finished pass reconciled `commit`; the status then."""

        def applied() -> dict[str, Any] | None:
            if self.process.proc.poll() is not None:
                raise AssertionError(f"controller exited:\n{self.process.output()}")
            status = self.status()
            last = status["last_pass"]
            if last and last["revision"] == commit and not status["pass_running"]:
                return status
            return None

        result: dict[str, Any] = wait_until(applied, timeout, f"a pass of {commit[:12]}")
        return result
