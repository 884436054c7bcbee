"""The HTTP endpoints over real sockets: status, metrics, probes, and the webhook."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from controller.errors import UserError
from controller.runtime.metrics import Metrics
from controller.runtime.server import App, HttpServer, parse_listen
from controller.runtime.status import Commit, Status, StatusBoard
from controller.runtime.webhook import MAX_BODY_BYTES, github_signature
from tests.runtime.conftest import make_pass

SECRET = b"hook-secret"


class Served:
    def __init__(self, secret: bytes | None) -> None:
        self.board = StatusBoard(Status(repo="/srv/repo"))
        self.metrics = Metrics()
        self.triggers: list[str] = []
        self.app = App(self.board, self.metrics, self.triggers.append, webhook_secret=secret)
        self.server = HttpServer(self.app, "127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{self.server.port}"

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self.base + path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def webhook_count(self, result: str) -> float:
        line = f'ssm_gitops_webhook_requests_total{{result="{result}"}} '
        text = self.get("/metrics")[2]
        return float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served(SECRET)
    s.server.start()
    yield s
    s.server.stop()


def test_readyz_turns_ready_after_the_first_pass(served: Served) -> None:
    assert served.get("/healthz")[0] == 200
    assert served.get("/readyz")[0] == 503
    served.board.update(last_pass=make_pass())
    assert served.get("/readyz")[0] == 200


def test_status_json_and_metrics(served: Served) -> None:
    served.board.update(
        applied=Commit("a" * 40, "Bump datadog to 6.9.0\n\nbody", "Ann", 1.0), last_pass=make_pass()
    )
    served.metrics.record_pass(make_pass())
    code, ctype, body = served.get("/status")
    assert (code, ctype) == (200, "application/json")
    document = json.loads(body)
    assert document["revision"]["message"].startswith("Bump datadog")
    assert document["last_pass"]["result"] == "success"
    code, ctype, text = served.get("/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert 'ssm_gitops_reconcile_total{result="success"} 1.0' in text


def test_status_page_is_html(served: Served) -> None:
    code, ctype, body = served.get("/")
    assert code == 200 and ctype.startswith("text/html")
    assert "no pass completed yet" in body


def test_unknown_routes_are_404(served: Served) -> None:
    assert served.get("/nope")[0] == 404
    assert served.post("/status", b"", {}) == 404
    assert served.get("/hooks/git")[0] == 405


def test_signed_github_webhook_triggers_a_pass(served: Served) -> None:
    body = b'{"ref":"refs/heads/main"}'
    code = served.post("/hooks/git", body, {"X-Hub-Signature-256": github_signature(SECRET, body)})
    assert code == 202
    assert served.triggers == ["webhook"]
    assert served.webhook_count("accepted") == 1


def test_gitlab_token_webhook_triggers_a_pass(served: Served) -> None:
    assert served.post("/hooks/git", b"{}", {"X-Gitlab-Token": SECRET.decode()}) == 202
    assert served.triggers == ["webhook"]


def test_bad_signature_is_401_counted_and_triggers_nothing(served: Served) -> None:
    body = b'{"ref":"refs/heads/main"}'
    bad = github_signature(b"wrong", body)
    assert served.post("/hooks/git", body, {"X-Hub-Signature-256": bad}) == 401
    assert served.post("/hooks/git", body, {"X-Gitlab-Token": "wrong"}) == 401
    assert served.post("/hooks/git", body, {}) == 401
    assert served.triggers == []
    assert served.webhook_count("unauthorized") == 3


def test_oversized_body_is_refused_unread(served: Served) -> None:
    # Announce a huge body but send none: the server must answer without waiting for it.
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(MAX_BODY_BYTES + 1).encode()
            + b"\r\n\r\n"
        )
        reply = sock.recv(200)
    assert reply.startswith(b"HTTP/1.1 413")
    assert served.triggers == []
    assert served.webhook_count("too_large") == 1


def test_without_a_secret_webhooks_are_refused() -> None:
    s = Served(None)
    s.server.start()
    try:
        assert s.post("/hooks/git", b"{}", {"X-Gitlab-Token": ""}) == 403
        assert s.triggers == []
    finally:
        s.server.stop()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        (":9000", ("0.0.0.0", 9000)),
        ("[::1]:8080", ("::1", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],
)
def test_parse_listen(text: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(text) == parsed


@pytest.mark.parametrize("text", ["8080x", "host", "host:", "host:99999"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--listen"):
        parse_listen(text)
