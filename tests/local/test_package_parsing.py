"""Pure parts of package handling: S3 URL forms and manifest checks (tables, no server)."""

from __future__ import annotations

import json

import pytest

from controller.local.ssm.errors import SsmError
from controller.local.ssm.packages import S3Location, check_manifest, parse_s3_url

SHA = "a" * 64


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/folder/v1", S3Location("bucket", "folder/v1")),
        ("s3://bucket", S3Location("bucket", "")),
        ("https://bucket.s3.amazonaws.com/folder/a.zip", S3Location("bucket", "folder/a.zip")),
        ("https://bucket.s3.eu-west-1.amazonaws.com/a.zip", S3Location("bucket", "a.zip")),
        ("https://s3.amazonaws.com/bucket/folder", S3Location("bucket", "folder")),
        (
            "https://s3.us-east-2.amazonaws.com/bucket/f/a%20b.zip",
            S3Location("bucket", "f/a b.zip"),
        ),
        ("http://127.0.0.1:4566/bucket/folder", S3Location("bucket", "folder")),
        ("ftp://bucket/folder", None),
        ("s3:///folder", None),
        ("not a url", None),
    ],
)
def test_s3_url_forms(url: str, expected: S3Location | None) -> None:
    assert parse_s3_url(url) == expected


def _manifest(**overrides: object) -> str:
    body: dict[str, object] = {
        "schemaVersion": "2.0",
        "version": "1.0",
        "packages": {"amazon": {"_any": {"x86_64": {"file": "a.zip"}}}},
        "files": {"a.zip": {"checksums": {"sha256": SHA}}},
    }
    body.update(overrides)
    return json.dumps(body)


def test_a_valid_manifest_gives_its_files() -> None:
    assert check_manifest(_manifest()) == {"a.zip": SHA}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (_manifest(files={}), "at least one file"),
        (_manifest(files={"a.zip": {"checksums": {"md5": "x"}}}), "no sha256"),
        (
            _manifest(packages={"amazon": {"_any": {"x86_64": {"file": "b.zip"}}}}),
            "names file 'b.zip'",
        ),
        (json.dumps({"schemaVersion": "2.0", "version": "1", "files": {}}), "missing 'packages'"),
    ],
)
def test_bad_manifests_are_invalid_document_content(content: str, needle: str) -> None:
    with pytest.raises(SsmError) as raised:
        check_manifest(content)
    assert raised.value.code == "InvalidDocumentContent"
    assert needle in raised.value.message
