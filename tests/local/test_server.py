"""The endpoint itself: routing to our SSM and to moto, admin routes, errors never HTML."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from controller.local import LocalAWS


def _admin(aws: LocalAWS, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(aws.endpoint_url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_ssm_and_s3_share_one_endpoint_and_calls_are_counted(local_aws: LocalAWS) -> None:
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="bucket-one")
    s3.put_object(Bucket="bucket-one", Key="a.txt", Body=b"hello")
    ssm = local_aws.client("ssm")
    ssm.list_documents()
    calls = _admin(local_aws, "GET", "/_local/calls")["calls"]
    assert calls["s3:CreateBucket"] == 1
    assert calls["s3:PutObject"] == 1
    assert calls["ssm:ListDocuments"] == 1
    _admin(local_aws, "POST", "/_local/calls/reset")
    assert _admin(local_aws, "GET", "/_local/calls") == {"calls": {}, "total": 0}


def test_reset_forgets_ssm_and_moto_state(local_aws: LocalAWS) -> None:
    local_aws.client("s3").create_bucket(Bucket="bucket-two")
    local_aws.client("ssm").create_document(
        Name="Doc1", Content='{"schemaVersion": "2.2", "mainSteps": []}'
    )
    _admin(local_aws, "POST", "/_local/reset")
    assert local_aws.client("s3").list_buckets()["Buckets"] == []
    names = [d["Name"] for d in local_aws.client("ssm").list_documents()["DocumentIdentifiers"]]
    assert "Doc1" not in names


def test_unknown_operation_is_an_aws_error_not_html(local_aws: LocalAWS) -> None:
    request = urllib.request.Request(
        local_aws.endpoint_url + "/",
        data=b"{}",
        headers={
            "X-Amz-Target": "AmazonSSM.NoSuchThing",
            "Content-Type": "application/x-amz-json-1.1",
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(raised.value.read())
    assert body["__type"] == "UnknownOperationException"


def test_sts_assume_role_lands_in_the_other_account(local_aws: LocalAWS) -> None:
    sts = local_aws.client("sts")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    creds = sts.assume_role(
        RoleArn="arn:aws:iam::111122223333:role/ssm-gitops", RoleSessionName="test"
    )["Credentials"]
    other = local_aws.client(
        "ssm",
        access_key=creds["AccessKeyId"],
        secret_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
    )
    created = other.create_document(
        Name="OtherDoc", Content='{"schemaVersion": "2.2", "mainSteps": []}'
    )
    assert created["DocumentDescription"]["Owner"] == "111122223333"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        local_aws.client("ssm").describe_document(Name="OtherDoc")
    assert raised.value.response["Error"]["Code"] == "InvalidDocument"


def test_regions_are_separate(local_aws: LocalAWS) -> None:
    local_aws.client("ssm", region="eu-west-1").create_document(
        Name="EuDoc", Content='{"schemaVersion": "2.2", "mainSteps": []}'
    )
    with pytest.raises(botocore.exceptions.ClientError):
        local_aws.client("ssm", region="us-east-1").describe_document(Name="EuDoc")


def test_local_aws_stops_cleanly_on_exit() -> None:
    with LocalAWS() as aws:
        url = aws.endpoint_url
        assert _admin(aws, "GET", "/_local/health") == {"ok": True}
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/_local/health", timeout=2)


def test_a_moto_crash_is_an_aws_shaped_error_not_html(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sts.models import STSBackend

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("moto bug")

    monkeypatch.setattr(STSBackend, "get_caller_identity", crash)
    sts = local_aws.client("sts", config=botocore.config.Config(retries={"max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sts.get_caller_identity()
    assert raised.value.response["Error"]["Code"] == "InternalFailure"


def test_a_router_crash_is_json_not_html(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    import controller.local.server as server

    def crash(environ: Any) -> Any:
        raise RuntimeError("router bug")

    monkeypatch.setattr(server, "caller", crash)
    request = urllib.request.Request(
        local_aws.endpoint_url + "/",
        data=b"{}",
        headers={"X-Amz-Target": "AmazonSSM.ListDocuments"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 500
    assert json.loads(raised.value.read())["__type"] == "InternalServerError"


def test_account_header_selects_the_account_like_moto(local_aws: LocalAWS) -> None:
    ssm = local_aws.client("ssm", config=botocore.config.Config())

    def add_header(request: Any, **kwargs: Any) -> None:
        request.headers["x-moto-account-id"] = "444455556666"

    ssm.meta.events.register("before-sign.ssm.*", add_header)
    created = ssm.create_document(
        Name="HeaderDoc", Content='{"schemaVersion": "2.2", "mainSteps": []}'
    )
    assert created["DocumentDescription"]["Owner"] == "444455556666"


# -- malformed requests get AWS's 400 shape, never a 500, an HTML page or a hang (issue 10) --

_SIGNED_FOR_IAM = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
_SIGNED_FOR_SSM = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/ssm/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _raw(aws: LocalAWS, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    host, port = aws.endpoint_url.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("body", "target", "code"),
    [
        # 100k nested arrays: RecursionError in the JSON parser was a 500.
        (b"[" * 100_000, "AmazonSSM.ListDocuments", "SerializationException"),
        (b"{" * 50_000, "AmazonSSM.ListDocuments", "SerializationException"),
        # A target prefix no service here has (moto answered it as SSM's ListDocuments).
        (b"{}", "Foo.ListDocuments", "UnknownOperationException"),
        (b"{}", "AmazonSQS.ListQueues", "UnknownOperationException"),  # signed for ssm
        # No target at all on a JSON request (moto answered an empty HTML 404).
        (b"{}", "", "UnknownOperationException"),
    ],
)
def test_malformed_json_requests_are_400_in_aws_shape(
    local_aws: LocalAWS, body: bytes, target: str, code: str
) -> None:
    headers = {"Content-Type": "application/x-amz-json-1.1", "Authorization": _SIGNED_FOR_SSM}
    if target:
        headers["X-Amz-Target"] = target
    status, content_type, document = _raw(local_aws, body, headers)
    assert (status, document["__type"]) == (400, code), document
    assert content_type == "application/x-amz-json-1.1"
    assert document["message"]


def test_an_unknown_route_is_an_xml_error_not_empty_html(local_aws: LocalAWS) -> None:
    """moto answered a route it has no handler for with an empty HTML 404."""
    host, port = local_aws.endpoint_url.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.request("GET", "/no/such/route", headers={"Authorization": _SIGNED_FOR_IAM})
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 400
    assert response.getheader("Content-Type") == "text/xml"
    assert "<Code>InvalidAction</Code>" in text


def test_a_short_body_is_answered_after_the_read_timeout_not_hung() -> None:
    """Issue 10: Content-Length larger than the body sent hung the request forever."""
    with LocalAWS(read_timeout=1.0) as aws:
        host, port = aws.endpoint_url.split("//", 1)[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSSM.ListDocuments\r\n"
                b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{}"
            )
            started = time.monotonic()
            reply = b""
            while chunk := sock.recv(4096):  # the server closes the connection after it
                reply += chunk
            took = time.monotonic() - started
        assert reply.startswith(b"HTTP/1.1 400"), reply[:60]
        assert b"RequestTimeout" in reply
        assert took < 5.0


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"error_rate": 7}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"error_rate": "lots"}, "error_rate"),
        ({"throttle": {"rate": -1}}, "throttle.rate"),
        ({"latency": {"*": 3600}}, "latency.*"),
        ({"errorrate": 0.5}, "unknown field"),
        ([1, 2], "JSON object"),
    ],
)
def test_fault_settings_out_of_range_are_refused(
    local_aws: LocalAWS, settings: Any, named: str
) -> None:
    """Issue 10: `/_local/faults` accepted `error_rate: 7`."""
    request = urllib.request.Request(
        local_aws.endpoint_url + "/_local/faults", json.dumps(settings).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert named in json.loads(refused.value.read())["error"]
    assert _admin(local_aws, "GET", "/_local/faults")["error_rate"] == 0.0
