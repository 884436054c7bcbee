"""The source id (`ssm-gitops:source` tag value) and whose a tagged resource is (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.ownership import OWNER_TAG, SOURCE_TAG, TAG_VALUE_MAX, Claim, claim, source_id


@pytest.mark.parametrize(
    "location",
    [
        "https://github.com/acme/infra",
        "https://github.com/acme/infra.git/",
        "https://x-access-token:s3cr3t@GitHub.com:443/acme/infra.git?private_token=abc#frag",
        "ssh://git@github.com/acme/infra.git",
        "ssh://git@github.com:22/acme/infra",
        "git@github.com:acme/infra.git",
    ],
)
def test_one_repository_spelt_any_way_is_one_source_without_credentials(location: str) -> None:
    assert source_id(location, "teams/web") == "github.com/acme/infra//teams/web"
    assert source_id(location) == "github.com/acme/infra"
    assert "s3cr3t" not in source_id(location) and "abc" not in source_id(location)


def test_a_non_default_port_and_another_path_are_other_sources() -> None:
    assert source_id("https://git.example:8443/acme/infra") == "git.example:8443/acme/infra"
    assert source_id("https://github.com/acme/infra", "a") != source_id(
        "https://github.com/acme/infra", "b"
    )


def test_a_local_repository_is_its_absolute_root(tmp_path: Path) -> None:
    (tmp_path / "repo" / "teams").mkdir(parents=True)
    root = (tmp_path / "repo").resolve().as_posix()
    assert source_id(str(tmp_path / "repo")) == root
    # `--repo repo/teams` (a folder inside it): the same repository, that folder as path.
    assert source_id(str(tmp_path / "repo" / "teams"), "teams", inner="teams") == f"{root}//teams"


def test_an_id_a_tag_value_cannot_hold_is_a_readable_prefix_and_a_hash() -> None:
    long = source_id("https://github.com/acme/" + "x" * 300)
    odd = source_id("https://github.com/acme/in~fra")
    for value in (long, odd):
        assert len(value) <= TAG_VALUE_MAX and "/sha256=" in value
        assert value.startswith("github.com/acme/")
    assert source_id("https://github.com/acme/in~fra") == odd  # stable
    assert source_id("https://github.com/acme/in^fra") != odd  # distinct


def test_claim() -> None:
    mine = {OWNER_TAG: "ssm-gitops", SOURCE_TAG: "a"}
    assert claim(mine, "ssm-gitops", "a") is Claim.OURS
    assert claim(mine, "ssm-gitops", "b") is Claim.OTHER_SOURCE
    assert claim({OWNER_TAG: "ssm-gitops"}, "ssm-gitops", "a") is Claim.UNCLAIMED
    assert claim(mine, "other", "a") is Claim.NOT_OURS
    assert claim({}, "ssm-gitops", "a") is Claim.NOT_OURS
