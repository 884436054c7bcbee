"""The HTTP endpoints over real sockets: status, metrics, probes, and the webhook."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from controller.errors import UserError
from controller.runtime.metrics import Metrics
from controller.runtime.server import App, HttpServer, Limits, parse_listen
from controller.runtime.status import Commit, Status, StatusBoard
from controller.runtime.webhook import MAX_BODY_BYTES, Followed, github_signature
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


# -- webhooks about other repositories and refs (issue 11) ----------------------------------


def push(ref: str, repo: str = "https://github.com/acme/fleet.git", after: str = "b" * 40) -> bytes:
    return json.dumps(
        {"ref": ref, "after": after, "repository": {"clone_url": repo, "default_branch": "main"}}
    ).encode()


@pytest.fixture
def following() -> Iterator[Served]:
    s = Served(SECRET)
    s.app.followed = Followed("github.com/acme/fleet", None)
    s.server.start()
    yield s
    s.server.stop()


def signed(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": github_signature(SECRET, body), "X-GitHub-Event": "push"}


def test_a_push_to_another_repository_or_branch_triggers_nothing(following: Served) -> None:
    """Issue 11: a webhook from another repository or branch triggered a pass."""
    other_repo = push("refs/heads/main", repo="https://github.com/acme/other.git")
    assert following.post("/hooks/git", other_repo, signed(other_repo)) == 200
    other_branch = push("refs/heads/feature")
    assert following.post("/hooks/git", other_branch, signed(other_branch)) == 200
    assert following.triggers == []
    assert following.webhook_count("ignored") == 2
    ours = push("refs/heads/main")
    assert following.post("/hooks/git", ours, signed(ours)) == 202
    assert following.triggers == ["webhook"]


def test_replays_of_one_push_trigger_one_pass(following: Served) -> None:
    """Issue 11: 2,000 replays cost 1,183 git fetches."""
    body = push("refs/heads/main")
    codes = [following.post("/hooks/git", body, signed(body)) for _ in range(200)]
    assert codes == [202] + [200] * 199
    assert following.triggers == ["webhook"]
    newer = push("refs/heads/main", after="c" * 40)
    assert following.post("/hooks/git", newer, signed(newer)) == 202
    assert following.triggers == ["webhook", "webhook"]


def test_bad_signatures_are_logged_once_per_window(
    following: Served, caplog: pytest.LogCaptureFixture
) -> None:
    body = push("refs/heads/main")
    with caplog.at_level("WARNING"):
        for _ in range(300):
            assert following.post("/hooks/git", body, {"X-Gitlab-Token": "nope"}) == 401
    refused = [r for r in caplog.records if "webhook refused" in r.getMessage()]
    assert len(refused) == 1
    assert following.webhook_count("unauthorized") == 300


# -- connection limits (issue 10: backlog 5, a thread per idle connection) -----------------


def test_two_hundred_concurrent_requests_are_all_answered_quickly(served: Served) -> None:
    """Issue 10: with a listen backlog of 5, the worst of 200 concurrent requests took 52 s."""

    def one(_: int) -> float:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", served.server.port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:40]
        return time.monotonic() - started

    barrier_free = ThreadPoolExecutor(max_workers=200)
    with barrier_free as pool:
        latencies = list(pool.map(one, range(200)))
    assert max(latencies) < 5.0, sorted(latencies)[-5:]


def test_idle_connections_hold_no_threads_and_are_closed() -> None:
    """Issue 10: 1,000 idle connections held for 60 s made 1,005 threads."""
    s = Served(SECRET)
    s.server.stop()  # replaced by one with short timeouts
    s.server = HttpServer(
        s.app, "127.0.0.1", 0, Limits(idle_seconds=1.0, cleanup_every=0.25, connections=1100)
    )
    s.base = f"http://127.0.0.1:{s.server.port}"
    s.server.start()
    idle: list[socket.socket] = []
    try:
        threads_before = threading.active_count()
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", s.server.port), timeout=10))
        time.sleep(0.3)
        assert threading.active_count() <= threads_before + 8
        started = time.monotonic()
        assert s.get("/healthz")[0] == 200  # still served while they are held
        assert time.monotonic() - started < 2.0
        # After the idle timeout the server has closed them: a read sees end-of-file.
        time.sleep(2.0)
        closed = 0
        for sock in idle:
            sock.settimeout(2)
            try:
                closed += sock.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(idle)
    finally:
        for sock in idle:
            sock.close()
        s.server.stop()


def test_a_stalled_request_is_dropped_after_the_idle_timeout() -> None:
    """A client that sends half a request (slowloris) does not keep its connection."""
    s = Served(SECRET)
    s.server.stop()  # replaced by one with short timeouts
    s.server = HttpServer(s.app, "127.0.0.1", 0, Limits(idle_seconds=1.0, cleanup_every=0.25))
    s.server.start()
    try:
        with socket.create_connection(("127.0.0.1", s.server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            started = time.monotonic()
            assert sock.recv(100) == b""
            assert time.monotonic() - started < 5.0
    finally:
        s.server.stop()
