"""A real git smart-HTTP server for tests: `git http-backend` behind a WSGI adapter, with
optional HTTP basic auth (the way GitHub and GitLab take a token), on 127.0.0.1.

Pass a list as `requests` to record each request as `METHOD /path` (`POST
.../git-upload-pack` is a fetch; `GET .../info/refs?service=git-upload-pack` only lists refs)."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _app(root: Path, token: str | None, requests: list[str] | None):
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if requests is not None:
            requests.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}")
        if token is not None:
            expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
            if environ.get("HTTP_AUTHORIZATION") != expected:
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
                return [b"unauthorized"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "test",
            "PATH": "/usr/bin:/bin",
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=True
        )
        head, _, payload = out.stdout.partition(b"\r\n\r\n")
        status = "200 OK"
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        return [payload]

    return app


@contextmanager
def git_http_server(
    root: Path, token: str | None = None, requests: list[str] | None = None
) -> Iterator[str]:
    """Serve the repositories under `root`; yields the base URL (http://127.0.0.1:PORT)."""
    server: WSGIServer = make_server(
        "127.0.0.1", 0, _app(root, token, requests), handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
