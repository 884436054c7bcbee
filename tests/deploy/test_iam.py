"""deploy/iam/: the controller's policy allows exactly the AWS operations a real `apply`
makes, as recorded by the embedded endpoint, and nothing else (issue 6).

The scenario applies sample-repo/ (creates every package, version, share, tag and
association), then a second commit that changes and deletes: a new version, the default
moved, a share and a tag removed, a pruned version, a removed package and association, a
changed association; then a third that moves the associations into a second account
reached through its role (Settings.accounts). The operations are never listed by hand: they
are read from the local endpoint's `GET /_local/calls` after the three `ssm-gitops apply`
processes ran, and the account each SSM call was made in from the endpoint's own
account resolution (`controller.local.accounts.caller`, the way moto resolves it).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pytest

from controller.local import LocalAWS
from controller.local.accounts import caller
from tests.deploy.iam import allowed_actions, iam_actions, load, resources_of

ROOT = Path(__file__).resolve().parents[2]
SIGNATURE = pygit2.Signature("ssm-gitops test", "test@ssm-gitops.invalid")
HOME_ACCOUNT = "123456789012"  # the local endpoint's account for the key "testing"
OTHER_ACCOUNT = "111122223333"
OTHER_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ssm-gitops"


class AccountRecorder:
    """Wraps the local endpoint's WSGI app: notes (account, ssm:Operation) of every SSM
    request, then hands the request on unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.ssm_calls: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith("AmazonSSM."):
            with self._lock:
                self.ssm_calls.add((caller(environ).account, "ssm:" + target.split(".", 1)[1]))
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@dataclass(frozen=True)
class Recorded:
    operations: dict[str, int]  # GET /_local/calls: every request, every account
    ssm_by_account: dict[str, set[str]]
    touched: dict[str, set[str]]  # IAM action -> ARNs of the resources it acted on
    placeholders: dict[str, str]  # the policy's placeholders -> this scenario's values


def _touched(aws: LocalAWS, bucket: str) -> dict[str, set[str]]:
    """The ARNs of what the applies left in the home account, by the action that wrote it."""
    region, account = "us-east-1", HOME_ACCOUNT
    s3, ssm = aws.client("s3"), aws.client("ssm")
    objects = {
        f"arn:aws:s3:::{bucket}/{item['Key']}"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    }
    documents = {
        f"arn:aws:ssm:{region}:{account}:document/{doc['Name']}"
        for page in ssm.get_paginator("list_documents").paginate(
            Filters=[{"Key": "Owner", "Values": ["Self"]}]
        )
        for doc in page["DocumentIdentifiers"]
    }
    associations = {
        f"arn:aws:ssm:{region}:{account}:association/{item['AssociationId']}"
        for page in ssm.get_paginator("list_associations").paginate()
        for item in page["Associations"]
    }
    assert objects and documents and associations
    return {
        "s3:PutObject": objects,
        "s3:GetObject": objects,
        "s3:ListBucket": {f"arn:aws:s3:::{bucket}"},
        "ssm:UpdateDocument": documents,
        "ssm:ModifyDocumentPermission": documents,
        "ssm:UpdateAssociation": associations,
        "sts:AssumeRole": {OTHER_ROLE},
    }


def _commit(repo: pygit2.Repository, message: str) -> None:
    index = repo.index
    index.add_all()
    index.write()
    tree = index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    repo.create_commit("HEAD", SIGNATURE, SIGNATURE, message, tree, parents)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name}: {old!r} not found (sample-repo changed?)"
    path.write_text(text.replace(old, new, 1))


def _change_everything(work: Path) -> None:
    """The second commit: every kind of update and deletion the controller makes."""
    packages = work / "packages"
    # datadog-agent: default moves to 6.10.0, one share and one tag go, a tag is added.
    _edit(packages / "datadog-agent.yaml", 'defaultVersion: "6.9.0"', 'defaultVersion: "6.10.0"')
    _edit(
        packages / "datadog-agent.yaml",
        'shareWith: ["111122223333", "444455556666"]',
        'shareWith: ["111122223333"]',
    )
    _edit(packages / "datadog-agent.yaml", 'cost-center: "4711"', "owner: sre")
    # metrics-exporter (pruneVersions: true): 1.6.1 is dropped, 1.8.0 is added.
    exporter = packages / "metrics-exporter.yaml"
    text = exporter.read_text()
    start = text.index('    - name: "1.6.1"')
    end = text.index('    - name: "1.7.0"')
    text = text[:start] + text[end:]
    text += (
        '    - name: "1.8.0"\n'
        "      files:\n"
        "        - platform: ubuntu\n"
        "          arch: x86_64\n"
        "          installer: metrics-exporter/1.8.0/metrics-exporter_1.8.0_all.deb\n"
    )
    exporter.write_text(text)
    new = packages / "metrics-exporter" / "1.8.0"
    new.mkdir(parents=True)
    shutil.copy(
        packages / "metrics-exporter" / "1.7.0" / "metrics-exporter_1.7.0_all.deb",
        new / "metrics-exporter_1.8.0_all.deb",
    )
    with (new / "metrics-exporter_1.8.0_all.deb").open("ab") as deb:
        deb.write(b"\n1.8.0")
    # ops-toolkit (shared) and the association that installs it leave the repository.
    (packages / "ops-toolkit.yaml").unlink()
    shutil.rmtree(packages / "ops-toolkit")
    (work / "associations" / "ops-toolkit.yaml").unlink()
    # An association changes.
    _edit(work / "associations" / "datadog-agent.yaml", 'maxErrors: "5%"', 'maxErrors: "10%"')


def _apply(repo: Path, endpoint: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "apply", "--repo", str(repo), "--json"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(cache),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _recorded(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(endpoint + "/_local/calls", timeout=10) as response:
        calls: dict[str, int] = json.load(response)["calls"]
    return calls


def _move_associations_to_another_account(work: Path) -> None:
    _edit(
        work / "settings.yaml",
        "  regions: [us-east-1]\n",
        "  regions: [us-east-1]\n  accounts:\n"
        f'    - {{id: "{OTHER_ACCOUNT}", roleArn: "{OTHER_ROLE}"}}\n',
    )


def _change_associations_there(work: Path) -> None:
    _edit(work / "associations" / "datadog-agent.yaml", 'maxErrors: "10%"', 'maxErrors: "5%"')
    (work / "associations" / "metrics-exporter.yaml").unlink()


@pytest.fixture(scope="module")
def local_endpoint() -> Iterator[tuple[LocalAWS, AccountRecorder]]:
    """An endpoint of this module's own, so the counts hold this scenario's calls only."""
    aws = LocalAWS()
    recorder = AccountRecorder(aws.app)
    aws.app = recorder  # type: ignore[assignment]
    with aws:
        yield aws, recorder


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, local_endpoint: tuple[LocalAWS, AccountRecorder]
) -> Recorded:
    aws, recorder = local_endpoint
    work = tmp_path_factory.mktemp("iam") / "repo"
    shutil.copytree(ROOT / "sample-repo", work)
    bucket = re.search(r"bucket:\s*(\S+)", (work / "settings.yaml").read_text())
    assert bucket, "sample-repo/settings.yaml names no artifact bucket"
    aws.client("s3").create_bucket(Bucket=bucket.group(1))
    urllib.request.urlopen(
        urllib.request.Request(aws.endpoint_url + "/_local/calls/reset", method="POST"),
        timeout=10,
    ).close()

    repo = pygit2.init_repository(str(work), initial_head="main")
    _commit(repo, "sample-repo")
    cache = work.parent / "home"
    cache.mkdir()
    first = _apply(work, aws.endpoint_url, cache)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    _change_everything(work)
    _commit(repo, "change and delete")
    second = _apply(work, aws.endpoint_url, cache)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    _move_associations_to_another_account(work)
    _commit(repo, "associations go to another account")
    third = _apply(work, aws.endpoint_url, cache)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]

    _change_associations_there(work)
    _commit(repo, "change and delete associations in the other account")
    fourth = _apply(work, aws.endpoint_url, cache)
    assert fourth.returncode == 0, fourth.stdout[-3000:] + fourth.stderr[-3000:]

    by_account: dict[str, set[str]] = {}
    for account, operation in recorder.ssm_calls:
        by_account.setdefault(account, set()).add(operation)
    prefix = re.search(r"prefix:\s*(\S+)", (work / "settings.yaml").read_text())
    assert prefix
    return Recorded(
        _recorded(aws.endpoint_url),
        by_account,
        _touched(aws, bucket.group(1)),
        {
            "ACCOUNT_ID": HOME_ACCOUNT,
            "ARTIFACT_BUCKET": bucket.group(1),
            "ARTIFACT_PREFIX": prefix.group(1),
        },
    )


def test_the_scenario_exercises_updates_and_deletions(recorded: Recorded) -> None:
    """Guards the scenario itself: if a change stopped reaching AWS, the comparisons below
    would silently cover less."""
    for operation in (
        "ssm:CreateDocument",
        "ssm:UpdateDocument",
        "ssm:UpdateDocumentDefaultVersion",
        "ssm:DeleteDocument",
        "ssm:ModifyDocumentPermission",
        "ssm:RemoveTagsFromResource",
        "ssm:CreateAssociation",
        "ssm:UpdateAssociation",
        "ssm:DeleteAssociation",
        "sts:AssumeRole",
    ):
        assert recorded.operations.get(operation, 0) > 0, operation
    assert set(recorded.ssm_by_account) == {HOME_ACCOUNT, OTHER_ACCOUNT}


def test_controller_policy_allows_exactly_the_recorded_operations(recorded: Recorded) -> None:
    needed = {action for op in recorded.operations for action in iam_actions(op)}
    allowed = allowed_actions(load("controller-policy.json"))
    assert sorted(needed - allowed) == [], "recorded but not allowed"
    assert sorted(allowed - needed) == [], "allowed but never used"


def test_account_role_policy_allows_exactly_what_the_controller_does_there(
    recorded: Recorded,
) -> None:
    needed = {a for op in recorded.ssm_by_account[OTHER_ACCOUNT] for a in iam_actions(op)}
    allowed = allowed_actions(load("account-role-policy.json"))
    assert sorted(needed - allowed) == [], "recorded in the other account but not allowed"
    assert sorted(allowed - needed) == [], "allowed but never used in the other account"


def _covers(patterns: set[str], arn: str, placeholders: dict[str, str]) -> bool:
    """IAM's Resource matching: `*` any characters (also `/`), `?` one character."""
    for pattern in patterns:
        for placeholder, value in placeholders.items():
            pattern = pattern.replace(placeholder, value)
        if fnmatch.fnmatchcase(arn, pattern):
            return True
    return False


def test_policy_resources_cover_what_the_controller_touched(recorded: Recorded) -> None:
    """With the placeholders filled in as docs/deploy.md says, each action's Resource covers
    every ARN the scenario wrote, and no other bucket, prefix or account."""
    policy = load("controller-policy.json")
    for action, arns in recorded.touched.items():
        patterns = resources_of(policy, action)
        uncovered = sorted(a for a in arns if not _covers(patterns, a, recorded.placeholders))
        assert uncovered == [], action
    outside = {
        "s3:PutObject": [
            "arn:aws:s3:::another-bucket/packages/x.zip",
            f"arn:aws:s3:::{recorded.placeholders['ARTIFACT_BUCKET']}/elsewhere/x.zip",
        ],
        "ssm:UpdateDocument": ["arn:aws:ssm:us-east-1:999999999999:document/x"],
        "sts:AssumeRole": ["arn:aws:iam::999999999999:role/admin"],
    }
    for action, others in outside.items():
        patterns = resources_of(policy, action)
        assert not [a for a in others if _covers(patterns, a, recorded.placeholders)], action


def test_s3_is_limited_to_the_artifact_bucket() -> None:
    policy = load("controller-policy.json")
    for action in allowed_actions(policy):
        if action.startswith("s3:"):
            for resource in resources_of(policy, action):
                assert resource.startswith("arn:aws:s3:::ARTIFACT_BUCKET"), (action, resource)


def test_assume_role_is_limited_to_the_account_roles() -> None:
    policy = load("controller-policy.json")
    assert resources_of(policy, "sts:AssumeRole") == {"arn:aws:iam::*:role/ssm-gitops"}
    trust = load("account-role-trust.json")
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"]["AWS"].endswith(":role/ssm-gitops-controller")


def test_policies_are_well_formed() -> None:
    for name in ("controller-policy.json", "account-role-policy.json", "account-role-trust.json"):
        policy = load(name)
        assert policy["Version"] == "2012-10-17"
        sids = [s["Sid"] for s in policy["Statement"]]
        assert len(sids) == len(set(sids)), name
        for statement in policy["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, f"{name}: wildcard action {action}"
