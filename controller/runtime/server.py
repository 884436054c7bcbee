"""The controller's HTTP endpoints (contract: HTTP), on the standard library's threading server.

Sits at the outer edge of the runtime: reads the `StatusBoard` and the `Metrics` registry,
and turns an authenticated `POST /hooks/git` into `trigger("webhook")`. It never runs a
pass itself, so a slow pass never makes a probe or a scrape time out.

    GET  /           the status page (HTML)
    GET  /status     the same as JSON
    GET  /metrics    Prometheus text format
    GET  /healthz    200 while the pass runner is alive
    GET  /readyz     200 after the first completed pass, 503 before
    POST /hooks/git  push webhook: 202 and a pass at once, 401 on a bad signature
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.errors import UserError
from controller.runtime import page
from controller.runtime.logs import logger
from controller.runtime.metrics import CONTENT_TYPE, Metrics
from controller.runtime.status import StatusBoard, to_json
from controller.runtime.webhook import MAX_BODY_BYTES, Verdict, verify


class App:
    """What the handlers need: the state to show and the way to ask for a pass."""

    def __init__(
        self,
        board: StatusBoard,
        metrics: Metrics,
        trigger: Callable[[str], None],
        *,
        webhook_secret: bytes | None = None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.board = board
        self.metrics = metrics
        self.trigger = trigger
        self.webhook_secret = webhook_secret
        self.alive = alive


class _Handler(BaseHTTPRequestHandler):
    app: App  # set on the per-server subclass
    server_version = "ssm-gitops"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the standard library's naming)
        route = self.path.split("?", 1)[0]
        status = self.app.board.get()
        if route == "/":
            self._send(200, page.render(status).encode(), "text/html; charset=utf-8")
        elif route == "/status":
            self._json(200, to_json(status))
        elif route == "/metrics":
            self._send(200, self.app.metrics.render(), CONTENT_TYPE)
        elif route == "/healthz":
            ok = self.app.alive()
            self._send(200 if ok else 503, b"ok\n" if ok else b"pass runner stopped\n")
        elif route == "/readyz":
            ready = status.ready
            self._send(200 if ready else 503, b"ready\n" if ready else b"no pass completed yet\n")
        elif route == "/hooks/git":
            self._send(405, b"use POST\n", headers={"Allow": "POST"})
        else:
            self._send(404, b"not found: try /, /status, /metrics, /healthz, /readyz\n")

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != "/hooks/git":
            self._send(404, b"not found: POST /hooks/git is the only POST route\n")
            return
        if not self.app.webhook_secret:
            self._drain()
            self.app.metrics.record_webhook(Verdict.DISABLED)
            self._send(403, b"webhooks are disabled: start with --webhook-secret-file\n")
            return
        length = self._content_length()
        if length is None or length > MAX_BODY_BYTES:
            self.app.metrics.record_webhook(Verdict.TOO_LARGE)
            # The body is not read: close the connection instead of reusing it.
            self.close_connection = True
            self._send(413, b"body too large or without Content-Length\n", close=True)
            return
        body = self.rfile.read(length)
        verdict = verify(self.app.webhook_secret, self.headers, body)
        self.app.metrics.record_webhook(verdict)
        if verdict is not Verdict.ACCEPTED:
            logger().warning(
                "webhook refused: bad or missing signature",
                extra={"event": "webhook", "result": verdict.value, "peer": self.client_address[0]},
            )
            self._send(401, b"bad or missing X-Hub-Signature-256 / X-Gitlab-Token\n")
            return
        logger().info(
            "webhook accepted: pass requested",
            extra={
                "event": "webhook",
                "result": verdict.value,
                "delivery": self.headers.get("X-GitHub-Delivery", ""),
            },
        )
        self.app.trigger("webhook")
        self._json(202, {"accepted": True})

    def _content_length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        return length if length >= 0 else None

    def _drain(self) -> None:
        length = self._content_length()
        if length is not None and length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _json(self, code: int, document: Any) -> None:
        self._send(code, json.dumps(document, indent=2).encode(), "application/json")

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Probes and scrapes every few seconds would drown the action log.
        pass


class HttpServer:
    """A `ThreadingHTTPServer` on its own thread; `port` is the bound one (0 picks a free one)."""

    def __init__(self, app: App, host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"app": app})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`, or `[::1]:PORT`) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UserError(f"--listen {text!r}: use HOST:PORT, for example 0.0.0.0:8080")
    return (host.strip("[]") or "0.0.0.0"), int(port)
