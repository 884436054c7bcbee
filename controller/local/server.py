"""One local AWS endpoint: our SSM for `AmazonSSM.*`, moto for everything else.

Where it sits: `LocalAWS` is what `ssm-gitops local`, `ssm-gitops demo`, the test fixtures
and the benchmarks start. Its WSGI application routes each request:
  /_local/...                     -> admin.py (counters, reset, faults)
  X-Amz-Target: AmazonSSM.<Op>    -> controller.local.ssm (our SSM service); a mutating
                                     call that succeeded also puts its CloudTrail-shaped
                                     event on moto's EventBridge (events.py)
  anything else                   -> moto's server application (S3, STS, EC2, IAM, ...)
counting every call by operation and applying injected faults (faults.py) on the way.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from controller.local.accounts import Caller, access_key_of, caller
from controller.local.admin import CallCounter, InFlight, handle_admin
from controller.local.events import emit_ssm_call, speed_up_sqs
from controller.local.faults import Faults, FaultSettings, Rate
from controller.local.s3checksums import refuse_bad_checksum
from controller.local.ssm.errors import SsmError
from controller.local.ssm.service import Options, SsmService

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
_JSON = "application/x-amz-json-1.1"


def _s3_operation(method: str, path: str, query: str) -> str:
    """A readable S3 operation name for the call counter (S3 has no Action parameter)."""
    parts = [p for p in path.split("/") if p]
    on_object = len(parts) > 1
    if "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload"}.get(
            method, "AbortMultipartUpload" if method == "DELETE" else "ListParts"
        )
    if "delete" in query and method == "POST":
        return "DeleteObjects"
    names = {
        ("GET", True): "GetObject",
        ("GET", False): "ListObjects" if parts else "ListBuckets",
        ("PUT", True): "PutObject",
        ("PUT", False): "CreateBucket",
        ("HEAD", True): "HeadObject",
        ("HEAD", False): "HeadBucket",
        ("DELETE", True): "DeleteObject",
        ("DELETE", False): "DeleteBucket",
    }
    return names.get((method, on_object), method)


class IncompleteBody(Exception):
    """The client announced more body than it sent (before the read timeout)."""


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so moto can read it again.

    A body shorter than its Content-Length ends in a read timeout (`read_timeout` of
    LocalAWS) or an early end of stream: `IncompleteBody`, answered 400, never a hang.
    """
    import io

    if "ssm_gitops.body" in environ:
        return bytes(environ["ssm_gitops.body"])
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as error:
        raise IncompleteBody("Content-Length is not a number") from error
    try:
        body = environ["wsgi.input"].read(length) if length > 0 else b""
    except OSError as error:  # socket.timeout is an OSError
        raise IncompleteBody(f"the body ended before its {length} bytes") from error
    if len(body) < length:
        raise IncompleteBody(f"the body ended after {len(body)} of {length} bytes")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["ssm_gitops.body"] = body
    return body


@functools.cache
def throttle_error(service: str) -> str:
    """The error code `service` answers a throttled request with, from botocore's model:
    SSM and EventBridge `ThrottlingException`, Organizations `TooManyRequestsException`, SQS
    `RequestThrottled` (their `ThrottlingException` / `TooManyRequestsException` /
    `RequestThrottled` error shapes in botocore's service-2.json)."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # noqa: BLE001 - an unknown service name: the common code
        return "ThrottlingException"
    names = [shape.name for shape in model.error_shapes]
    for preferred in ("ThrottlingException", "TooManyRequestsException", "RequestThrottled"):
        if preferred in names:
            return preferred
    return "ThrottlingException"


@functools.cache
def _target_prefixes() -> dict[str, str]:
    """SigV4 signing name -> the `X-Amz-Target` prefix of the JSON services we serve.

    Read from botocore's models (metadata.signingName / targetPrefix), so a request signed
    for SSM whose target names another service is refused as AWS refuses it, instead of
    being answered by whatever handler matches the operation name.
    """
    import botocore.session

    session = botocore.session.get_session()
    prefixes = {}
    for name in ("ssm", "events", "sqs", "organizations", "cloudwatch"):
        metadata = session.get_service_model(name).metadata
        prefixes[metadata.get("signingName", name)] = metadata["targetPrefix"]
    return prefixes


def _json_error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


class Endpoint:
    """The WSGI application behind LocalAWS."""

    def __init__(self, options: Options, faults: FaultSettings) -> None:
        self.ssm = SsmService(options)
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.calls = CallCounter()
        self.in_flight = InFlight()
        self._initial_faults = faults
        self.faults = Faults(faults)
        speed_up_sqs()  # the drift-events queue holds thousands of messages in a flood

    def reset(self) -> None:
        """Forget everything: SSM and moto state, call counts, fault settings."""
        from moto.moto_api._internal.models import moto_api_backend

        self.ssm.reset()
        moto_api_backend.reset()
        self.calls.reset()
        self.in_flight.reset()
        self.faults.configure(self._initial_faults)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._route(environ, start_response)
        except IncompleteBody as incomplete:
            # AWS closes such a request with RequestTimeout (400) after its read timeout.
            body = _json_error("RequestTimeout", f"Incomplete request body: {incomplete}.")
            return self._reply(start_response, 400, body, _JSON, close=True)
        except RecursionError:
            # A body nested deeper than any parser allows: malformed, not a server fault.
            body = _json_error("SerializationException", "The request body is nested too deeply.")
            return self._reply(start_response, 400, body, _JSON)
        except Exception:
            # Never werkzeug's HTML page: an AWS JSON error, whatever broke.
            log.exception("local endpoint failed on %s", environ.get("PATH_INFO"))
            error = SsmError("InternalServerError", "The local endpoint failed.", 500)
            return self._reply(start_response, 500, error.body(), _JSON)

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET"))
        _read_body(environ)  # whole, up front: a short body is one clear 400 for every route
        if path.startswith("/_local/"):
            status, document = handle_admin(
                method,
                path,
                _read_body(environ),
                self.calls,
                self.faults,
                self.reset,
                self.in_flight,
            )
            return self._reply(
                start_response, status, json.dumps(document).encode(), "application/json"
            )
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        who = caller(environ)
        with self.in_flight.request(who.account, who.region):
            return self._serve(environ, start_response, target, who, method, path)

    def _serve(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        target: str,
        who: Caller,
        method: str,
        path: str,
    ) -> Iterable[bytes]:
        if target.startswith("AmazonSSM."):
            return self._ssm(environ, start_response, target.split(".", 1)[1], who)
        refusal = self._unknown_operation(environ, target, who.service)
        if refusal is not None:
            self.calls.add(f"{who.service or 'unknown'}:UnknownOperation")
            body = _json_error("UnknownOperationException", refusal)
            return self._reply(start_response, 400, body, _JSON)
        operation = self._moto_operation(environ, target, who.service, method, path)
        self.calls.add(operation)
        # Per-location rates apply to the JSON services, whose throttling error we shape
        # from botocore's model; S3 and the query services are not rated.
        decision = self.faults.decide(
            operation, ssm=False, account=who.account, region=who.region, rated=bool(target)
        )
        if decision.delay:
            time.sleep(decision.delay)
        if decision.throttled:
            body = _json_error(throttle_error(who.service or "ssm"), "Rate exceeded")
            return self._reply(start_response, 400, body, _JSON)
        if operation == "s3:PutObject":
            refused = refuse_bad_checksum(environ)
            if refused is not None:
                return self._reply(start_response, 400, refused, "application/xml")
        return self._moto(environ, start_response, target, operation)

    def _moto(
        self, environ: dict[str, Any], start_response: StartResponse, target: str, operation: str
    ) -> Iterable[bytes]:
        """Call moto; a crash (Flask's HTML 500 page) becomes an AWS-shaped error."""
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return lambda data: None  # moto's Flask app never uses write()

        try:
            body = b"".join(self.moto(environ, capture))
        except Exception:
            captured[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/html")]]
            body = b""
        status, headers = captured
        content_type = dict((k.lower(), v) for k, v in headers).get("content-type", "")
        head = environ.get("REQUEST_METHOD") == "HEAD"  # HeadObject's 404 has no body at all
        if (status[:1] == "5" or (status[:1] == "4" and not head)) and "html" in content_type:
            # Flask's HTML error pages (an unknown route: an empty 404; a crash: a 500)
            # become the AWS error shape of the request's protocol.
            server_fault = status.startswith("5")
            code = "InternalFailure" if server_fault else "InvalidAction"
            message = (
                f"The local endpoint failed on {operation}."
                if server_fault
                else f"No operation here answers {environ.get('REQUEST_METHOD')} "
                f"{environ.get('PATH_INFO')}."
            )
            http_status = 500 if server_fault else 400
            if target:
                return self._reply(start_response, http_status, _json_error(code, message), _JSON)
            kind = "Receiver" if server_fault else "Sender"
            xml = (
                f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
                f"<Message>{html.escape(message)}</Message></Error></ErrorResponse>"
            ).encode()
            return self._reply(start_response, http_status, xml, "text/xml")
        start_response(status, headers)
        return [body]

    def _ssm(
        self, environ: dict[str, Any], start_response: StartResponse, name: str, who: Caller
    ) -> Iterable[bytes]:
        operation = f"ssm:{name}"
        self.calls.add(operation)
        body = _read_body(environ)
        decision = self.faults.decide(operation, ssm=True, account=who.account, region=who.region)
        if decision.delay:
            time.sleep(decision.delay)
        if decision.throttled:
            error = SsmError("ThrottlingException", "Rate exceeded")
            return self._reply(start_response, 400, error.body(), _JSON)
        if decision.fail:
            error = SsmError("InternalServerError", "Injected failure (local endpoint).", 500)
            return self._reply(start_response, 500, error.body(), _JSON)
        endpoint = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        status, payload = self.ssm.handle(name, body, who.account, who.region, endpoint)
        if status == 200:  # CloudTrail records successful calls; EventBridge sees them
            emit_ssm_call(
                name,
                body,
                payload,
                account=who.account,
                region=who.region,
                access_key=access_key_of(environ),
            )
        return self._reply(start_response, status, payload, _JSON)

    @staticmethod
    def _unknown_operation(environ: dict[str, Any], target: str, service: str) -> str | None:
        """Why a JSON-protocol request names no operation we (or AWS) know, or None.

        JSON services are called with `X-Amz-Target: <prefix>.<Operation>`; AWS answers a
        missing or foreign target with UnknownOperationException (400)
        (https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html).
        """
        json_body = "x-amz-json" in str(environ.get("CONTENT_TYPE", ""))
        expected = _target_prefixes().get(service)
        if target:
            prefix = target.split(".", 1)[0]
            known = set(_target_prefixes().values())
            if (expected and prefix != expected) or (not expected and prefix not in known):
                return f"Unknown operation {target}: no service here has the prefix {prefix}."
            return None
        if json_body:
            return "Missing X-Amz-Target: a JSON request must name its operation."
        return None

    def _moto_operation(
        self, environ: dict[str, Any], target: str, service: str, method: str, path: str
    ) -> str:
        query = str(environ.get("QUERY_STRING", ""))
        if target:
            return f"{service or target.split('.')[0].lower()}:{target.split('.', 1)[-1]}"
        action = urllib.parse.parse_qs(query).get("Action")
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if not action and method == "POST" and "x-www-form-urlencoded" in content_type:
            action = urllib.parse.parse_qs(_read_body(environ).decode("utf-8", "replace")).get(
                "Action"
            )
        if action:
            return f"{service or 'unknown'}:{action[0]}"
        return f"s3:{_s3_operation(method, path, query)}"

    @staticmethod
    def _reply(
        start_response: StartResponse,
        status: int,
        body: bytes,
        content_type: str,
        *,
        close: bool = False,
    ) -> Iterable[bytes]:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if close:  # the rest of the request is unread: the connection cannot be reused
            headers.append(("Connection", "close"))
        start_response(f"{status} {reason.get(status, 'Error')}", headers)
        return [body]


class _QuietHandler(MotoRequestHandler):
    """moto's request handler (keeps S3 metadata headers intact), without access logs.

    `timeout` bounds every read from the client: a body shorter than its Content-Length,
    or a connection left idle, ends after that many seconds instead of holding a thread.
    """

    timeout = 15.0

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalAWS:
    """The embedded endpoint, in-process on a free port (port=0) or a given one.

    with LocalAWS() as aws:
        boto3.client("ssm", endpoint_url=aws.endpoint_url, region_name="us-east-1")

    Options: create_delay (seconds a new document version stays Creating), latency
    ({operation: seconds}), throttle_rate/throttle_burst (one global token bucket per
    second), throttle_operations, rates ({operation pattern: faults.Rate}: a bucket per
    account, region and operation; faults.AWS_RATES is the AWS-like preset), error_rate
    (fraction of SSM calls answered 500), seed,
    check_responses (answer InternalServerError when a response breaks botocore's output
    shape: a self-check the test fixtures turn on), read_timeout (seconds a client may take
    to send its request, or stay idle between requests).
    moto's state is process-wide: two LocalAWS in one process share S3/STS/EC2/IAM.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        create_delay: float = 0.05,
        latency: dict[str, float] | None = None,
        throttle_rate: float = 0.0,
        throttle_burst: float = 0.0,
        throttle_operations: list[str] | None = None,
        rates: dict[str, Rate] | None = None,
        error_rate: float = 0.0,
        seed: int = 0,
        check_responses: bool = False,
        read_timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.read_timeout = read_timeout
        faults = FaultSettings(
            latency=dict(latency or {}),
            throttle_rate=throttle_rate,
            throttle_burst=throttle_burst,
            throttle_operations=list(throttle_operations or ["*"]),
            error_rate=error_rate,
            seed=seed,
            rates=dict(rates or {}),
        )
        self.app = Endpoint(
            Options(create_delay=create_delay, check_responses=check_responses), faults
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[tuple[str, str, str, str, str | None], Any] = {}
        self._clients_lock = threading.RLock()

    @property
    def ssm(self) -> SsmService:
        """Our SSM service: the fleet's extension point (controller/local/hooks.py)."""
        return self.app.ssm

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAWS is not started")
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in host_text:
            host_text = f"[{host_text}]"  # an IPv6 address in a URL
        return f"http://{host_text}:{port}"

    def start(self) -> LocalAWS:
        # Bind here so a busy port is an OSError for the caller (werkzeug would print and
        # exit the process), then hand the listening socket to werkzeug.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(128)
            self._server = make_server(
                self.host,
                self.port,
                self.app,
                threaded=True,
                request_handler=type("Handler", (_QuietHandler,), {"timeout": self.read_timeout}),
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # werkzeug holds its own duplicate of the socket
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-aws", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def reset(self) -> None:
        """Forget all state, through the admin route (as an out-of-process caller would)."""
        request = urllib.request.Request(self.endpoint_url + "/_local/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def client(
        self,
        service: str,
        region: str = "us-east-1",
        access_key: str = "testing",
        secret_key: str = "testing",
        session_token: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A boto3 client against this endpoint (the default key maps to 123456789012).
        Clients without extra options are cached (boto3 clients are thread-safe)."""
        if kwargs:
            return self._new_client(service, region, access_key, secret_key, session_token, kwargs)
        key = (service, region, access_key, secret_key, session_token)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(*key, {})
            return self._clients[key]

    def _new_client(
        self,
        service: str,
        region: str,
        access_key: str,
        secret_key: str,
        session_token: str | None,
        options: dict[str, Any],
    ) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            **options,
        )

    def calls(self) -> dict[str, int]:
        return self.app.calls.snapshot()

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
