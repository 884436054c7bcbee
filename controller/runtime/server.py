"""The controller's HTTP endpoints (contract: HTTP), served by waitress.

Sits at the outer edge of the runtime: reads the `StatusBoard` and the `Metrics` registry,
and turns an authenticated `POST /hooks/git` about the followed repository and ref into a
pass request. It never runs a pass itself, so a slow pass never makes a probe or a scrape
time out.

    GET  /           the status page (HTML)
    GET  /status     the same as JSON
    GET  /metrics    Prometheus text format
    GET  /healthz    200 while the pass runner is alive
    GET  /readyz     200 after the first completed pass, 503 before
    POST /hooks/git  push webhook: 202 and a pass, 200 when ignored, 401 on a bad signature

Why waitress and not the standard library's threading server: that server listened with a
backlog of 5 (200 concurrent requests waited up to 52 s) and gave every connection a thread
for as long as the client kept it open (1,000 idle connections = 1,005 threads). waitress
waits for requests on one event loop, hands complete requests to a fixed pool of threads,
closes idle connections, and stops accepting above a connection limit (`Limits`).
"""

from __future__ import annotations

import json
import resource
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

from controller.errors import UserError
from controller.runtime import page
from controller.runtime.logs import logger
from controller.runtime.metrics import CONTENT_TYPE, Metrics
from controller.runtime.status import StatusBoard, to_json
from controller.runtime.webhook import (
    MAX_BODY_BYTES,
    Followed,
    Push,
    RefusalLog,
    SeenPushes,
    Verdict,
    verify,
)

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Limits:
    """How much the HTTP server takes on at once (waitress `Adjustments`)."""

    threads: int = 4  # requests handled at once; every handler answers from memory
    connections: int = 1000  # open connections; above it, new ones wait in the backlog
    backlog: int = 1024  # connections the kernel queues before we accept them
    idle_seconds: float = 30.0  # an idle (or stalled) connection is closed after this
    cleanup_every: float = 5.0  # how often idle connections are looked for


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
        followed: Followed | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.board = board
        self.metrics = metrics
        self.trigger = trigger
        self.webhook_secret = webhook_secret
        self.alive = alive
        # None: every signed push counts (no repository known, e.g. in unit tests).
        self.followed = followed
        self.refusals = refusals or RefusalLog()
        self.seen = SeenPushes()


class _Headers:
    """Case-insensitive request headers out of a WSGI environ (for `webhook.verify`)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: None = None) -> str | None:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = self._environ.get(key)
        return default if value is None else str(value)


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    503: "Service Unavailable",
}


class Application:
    """The WSGI application: one method per route."""

    def __init__(self, app: App) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = str(environ.get("PATH_INFO", "")) or "/"
        method = str(environ.get("REQUEST_METHOD", "GET"))
        if method == "POST":
            code, body, ctype, headers = self._post(route, environ)
        elif method in ("GET", "HEAD"):
            code, body, ctype, headers = self._get(route, str(environ.get("QUERY_STRING", "")))
        else:
            code, body, ctype, headers = 405, b"use GET or POST\n", _TEXT, {"Allow": "GET, POST"}
        response_headers = [
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *headers.items(),
        ]
        start_response(f"{code} {_REASONS.get(code, 'Error')}", response_headers)
        return [b""] if method == "HEAD" else [body]

    def _get(self, route: str, query: str = "") -> _Response:
        app = self.app
        status = app.board.get()
        if route == "/":  # `?location=<account>/<region>`: that location's own view
            return 200, page.render(status, query=query).encode(), "text/html; charset=utf-8", {}
        if route == "/status":
            return _json(200, to_json(status))
        if route == "/metrics":
            return 200, app.metrics.render(), CONTENT_TYPE, {}
        if route == "/healthz":
            ok = app.alive()
            return (200, b"ok\n", _TEXT, {}) if ok else (503, b"pass runner stopped\n", _TEXT, {})
        if route == "/readyz":
            if status.ready:
                return 200, b"ready\n", _TEXT, {}
            return 503, b"no pass completed yet\n", _TEXT, {}
        if route == "/hooks/git":
            return 405, b"use POST\n", _TEXT, {"Allow": "POST"}
        return 404, b"not found: try /, /status, /metrics, /healthz, /readyz\n", _TEXT, {}

    def _post(self, route: str, environ: dict[str, Any]) -> _Response:
        app = self.app
        if route != "/hooks/git":
            return 404, b"not found: POST /hooks/git is the only POST route\n", _TEXT, {}
        if not app.webhook_secret:
            app.metrics.record_webhook(Verdict.DISABLED)
            return 403, b"webhooks are disabled: start with --webhook-secret-file\n", _TEXT, {}
        # waitress has read the whole body (at most MAX_BODY_BYTES, see _Channel) already.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = _Headers(environ)
        verdict = verify(app.webhook_secret, headers, body)
        if verdict is not Verdict.ACCEPTED:
            app.metrics.record_webhook(verdict)
            refused = app.refusals.note()
            if refused is not None:
                logger().warning(
                    f"webhook refused: bad or missing signature ({refused} since the last "
                    "such line)",
                    extra={
                        "event": "webhook",
                        "result": verdict.value,
                        "peer": environ.get("REMOTE_ADDR", ""),
                        "refused": refused,
                    },
                )
            return 401, b"bad or missing X-Hub-Signature-256 / X-Gitlab-Token\n", _TEXT, {}
        delivery = headers.get("X-GitHub-Delivery") or ""
        why_not = self._why_ignored(headers, body)
        if why_not is not None:
            app.metrics.record_webhook(Verdict.IGNORED)
            logger().info(
                f"webhook ignored: {why_not}",
                extra={"event": "webhook", "result": "ignored", "delivery": delivery},
            )
            return _json(200, {"accepted": False, "ignored": why_not})
        app.metrics.record_webhook(verdict)
        logger().info(
            "webhook accepted: pass requested",
            extra={"event": "webhook", "result": verdict.value, "delivery": delivery},
        )
        app.trigger("webhook")
        return _json(202, {"accepted": True})

    def _why_ignored(self, headers: _Headers, body: bytes) -> str | None:
        followed = self.app.followed
        if followed is None:
            return None
        push = Push.parse(headers, body)
        if isinstance(push, str):
            return push
        why_not = followed.wants(push)
        if why_not is None and not self.app.seen.first_time(push):
            why_not = f"already handled: {push.ref} at {str(push.after)[:12]} (a replay)"
        return why_not


_Response = tuple[int, bytes, str, dict[str, str]]
_TEXT = "text/plain; charset=utf-8"


def _json(code: int, document: Any) -> _Response:
    return code, json.dumps(document, indent=2).encode(), "application/json", {}


class _TooLargeTask(ErrorTask):  # type: ignore[misc]
    """waitress answers an over-limit body itself, unread; count it as the app would."""

    def execute(self) -> None:
        if isinstance(self.request.error, RequestEntityTooLarge):
            app: App = self.channel.server.controller_app
            if self.request.path == "/hooks/git":
                app.metrics.record_webhook(Verdict.TOO_LARGE)
        super().execute()


class _Channel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _TooLargeTask


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    controller_app: App


class HttpServer:
    """The endpoints on their own thread; `port` is the bound one (0 picks a free one)."""

    def __init__(self, app: App, host: str, port: int, limits: Limits | None = None) -> None:
        limits = limits or Limits()
        _raise_open_files_limit(limits.connections + 64)
        self._server = _Server(
            Application(app),
            host=host,
            port=port,
            threads=limits.threads,
            connection_limit=limits.connections,
            backlog=limits.backlog,
            channel_timeout=limits.idle_seconds,
            cleanup_interval=limits.cleanup_every,
            # poll(), not select(): select() cannot watch descriptors above 1024.
            asyncore_use_poll=True,
            # A webhook body above the limit is refused before it is read (413).
            max_request_body_size=MAX_BODY_BYTES,
            ident="ssm-gitops",
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
        )
        self._server.controller_app = app
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every connection (on the event loop's own thread)."""
        server = self._server
        if self._thread.is_alive():
            try:
                server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            except OSError:
                # The wake-up pipe is gone (its descriptor closed under us): close from
                # here; the event loop ends once its map is empty.
                wasyncore.close_all(server._map, ignore_all=True)
            self._thread.join(timeout=10)
        else:
            wasyncore.close_all(server._map, ignore_all=True)
        server.task_dispatcher.shutdown(timeout=5)


def _raise_open_files_limit(wanted: int) -> None:
    """Let the process hold `wanted` sockets if the hard limit allows (soft is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`, or `[::1]:PORT`) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UserError(f"--listen {text!r}: use HOST:PORT, for example 0.0.0.0:8080")
    return (host.strip("[]") or "0.0.0.0"), int(port)
