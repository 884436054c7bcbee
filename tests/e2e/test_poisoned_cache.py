"""The reviewer's repro of issue 11, with real CLI processes: `plan` fills the build cache,
a zip in it is replaced together with its stamp, and `apply` in a new process must publish
nothing of it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.plan_apply_helpers import SETTINGS, GitRepo, cli, small_package, small_sources


@pytest.fixture
def env(aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SSM_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    return aws_env


def test_apply_in_a_new_process_never_publishes_a_zip_planted_with_its_stamp(
    env: Any, tmp_path: Path
) -> None:
    """Bug (review of issue 11): `apply` took the zip's sha256 from the stamp beside it and
    checked the zip against that same value: it uploaded and published `echo PWNED`."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("settings.yaml", SETTINGS)
    small_sources(repo, "toolbox", "1.0")
    repo.write("toolbox.yaml", small_package("toolbox", ["1.0"], "1.0"))
    repo.commit("start")
    assert cli("plan", "--repo", str(repo.path)).code == 2
    (cached,) = (tmp_path / "cache").rglob("build/toolbox/1.0/*.zip")
    with zipfile.ZipFile(cached, "w") as archive:
        archive.writestr("install.sh", "#!/bin/sh\necho PWNED\n")
    data = cached.read_bytes()
    stamp = cached.parent / f".{cached.name}.build.json"
    record = json.loads(stamp.read_text())
    record.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    stamp.write_text(json.dumps(record))

    refused = cli("apply", "--repo", str(repo.path))

    assert refused.code != 0, refused.out
    assert "cached artifact differs from a fresh build from git" in refused.out + refused.err
    s3, ssm = env.client("s3"), env.client("ssm")
    uploaded = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts").get("Contents", [])]
    # Only the location record (issue 15), written before apply creates anything: no zip.
    assert [key for key in uploaded if "/ssm-gitops/locations/" not in key] == []
    assert (
        ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"]
        == []
    )

    applied = cli("apply", "--repo", str(repo.path))  # the next pass builds it from git

    assert applied.code == 0, applied.out + applied.err
    for item in s3.list_objects_v2(Bucket="artifacts")["Contents"]:
        body = s3.get_object(Bucket="artifacts", Key=item["Key"])["Body"].read()
        assert b"PWNED" not in body
        if item["Key"].endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                assert archive.read("install.sh") == b"#!/bin/sh\necho install toolbox 1.0\n"
    content = json.loads(ssm.get_document(Name="toolbox", VersionName="1.0")["Content"])
    (checksum,) = [f["checksums"]["sha256"] for f in content["files"].values()]
    assert checksum != hashlib.sha256(data).hexdigest()
