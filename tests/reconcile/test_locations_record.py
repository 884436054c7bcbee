"""The location record (controller/aws/records.py, controller/reconcile/leftover.py): what the
controller owns in a location that left Settings is found again and pruned, by a controller
that never saw it (a new pod), under the usual safety rules (issue 15).

Bug guarded: a region (or account) removed from Settings was never observed again, so every
package and association we owned there leaked forever.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controller.aws.records import Record, read_record, record_key, write_record
from controller.aws.session import Sessions
from controller.model.state import Location
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import PassOutcome
from controller.repository import load_repository

HOME = "123456789012"
OTHER = "111122223333"
A1, A2, A3 = "100000000001", "100000000002", "100000000003"  # accounts of the record tests
ROLE3 = f"arn:aws:iam::{A3}:role/r"

SETTINGS = """apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts, prefix: p/}}
  regions: {regions}
  accounts:
    - {{id: "{home}"}}
    - {{id: "{other}", roleArn: "arn:aws:iam::{other}:role/ssm-gitops"}}
  prune: {{enabled: {prune}, maxDeletes: {max_deletes}}}
"""

RESOURCES = """apiVersion: ssm-gitops/v1
kind: Package
metadata: {name: agent}
spec:
  versions: [{name: "1.0", files: [{platform: amazon, arch: x86_64, source: src}]}]
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {name: agent-all}
spec:
  package: agent
  targets: [{key: "tag:env", values: [prod]}]
"""


def _repo(
    root: Path,
    regions: str,
    *,
    prune: bool = True,
    max_deletes: int = 10,
    resources: bool = True,
) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    for script in ("install.sh", "uninstall.sh"):
        (root / "src" / script).write_text("#!/bin/sh\n")
    (root / "settings.yaml").write_text(
        SETTINGS.format(
            regions=regions,
            home=HOME,
            other=OTHER,
            prune=str(prune).lower(),
            max_deletes=max_deletes,
        )
    )
    if resources:
        (root / "resources.yaml").write_text(RESOURCES)
    else:
        (root / "resources.yaml").unlink(missing_ok=True)
    return root


def _reconciler(tmp_path: Path, name: str) -> Reconciler:
    return Reconciler("ssm-gitops", source="s1", work_dir=tmp_path / name, sessions=Sessions())


def _in_eu(aws: Any) -> tuple[list[str], list[str]]:
    """Our package names and the associations of the OTHER account, in eu-west-1."""
    ssm = aws.client("ssm", region="eu-west-1")
    documents = [
        d["Name"]
        for d in ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])[
            "DocumentIdentifiers"
        ]
    ]
    credentials = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER}:role/ssm-gitops", RoleSessionName="test"
    )["Credentials"]
    other = aws.client(
        "ssm",
        region="eu-west-1",
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )
    associations = [a["AssociationName"] for a in other.list_associations()["Associations"]]
    return documents, associations


def _recorded(aws: Any) -> set[tuple[str, str]]:
    key = record_key("p/", "ssm-gitops", "s1")
    body = json.loads(aws.client("s3").get_object(Bucket="artifacts", Key=key)["Body"].read())
    return {(entry["account"], entry["region"]) for entry in body["locations"]}


def test_a_region_removed_from_settings_is_pruned_by_a_new_controller(
    aws_env: Any, tmp_path: Path
) -> None:
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    root = _repo(tmp_path / "repo", "[us-east-1, eu-west-1]")
    first = _reconciler(tmp_path, "pod1").run_pass(load_repository(root), "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    assert _in_eu(aws_env) == (["agent"], ["agent-all"])
    assert _recorded(aws_env) == {(a, r) for a in (HOME, OTHER) for r in ("us-east-1", "eu-west-1")}

    _repo(root, "[us-east-1]")
    second = _reconciler(tmp_path, "pod2").run_pass(load_repository(root), "c2")  # a new pod
    assert second.outcome is PassOutcome.SUCCESS, second.errors
    assert _in_eu(aws_env) == ([], [])
    assert _recorded(aws_env) == {(HOME, "us-east-1"), (OTHER, "us-east-1")}


def test_left_behind_locations_obey_prune_disabled_and_max_deletes(
    aws_env: Any, tmp_path: Path
) -> None:
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    root = _repo(tmp_path / "repo", "[us-east-1, eu-west-1]")
    assert _reconciler(tmp_path, "a").run_pass(load_repository(root), "c1").outcome is (
        PassOutcome.SUCCESS
    )
    _repo(root, "[us-east-1]", prune=False)
    held = _reconciler(tmp_path, "b").run_pass(load_repository(root), "c2")
    assert len(held.blocked) == 3 and all("prune is disabled" in b for b in held.blocked)
    assert _in_eu(aws_env) == (["agent"], ["agent-all"])
    assert (OTHER, "eu-west-1") in _recorded(aws_env)  # kept until it is cleaned

    # maxDeletes=1: one deletion a pass (two associations, then the package); a location
    # leaves the record only once nothing of ours is left there.
    _repo(root, "[us-east-1]", max_deletes=1)
    blocked = []
    for number in range(3):
        result = _reconciler(tmp_path, f"p{number}").run_pass(load_repository(root), "c3")
        blocked.append(len(result.blocked))
        if number < 2:
            assert (HOME, "eu-west-1") in _recorded(aws_env)
    assert blocked == [2, 1, 0]
    assert _in_eu(aws_env) == ([], [])
    assert _recorded(aws_env) == {(HOME, "us-east-1"), (OTHER, "us-east-1")}


def test_nothing_is_pruned_when_the_desired_set_is_empty(aws_env: Any, tmp_path: Path) -> None:
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    root = _repo(tmp_path / "repo", "[us-east-1, eu-west-1]")
    assert _reconciler(tmp_path, "a").run_pass(load_repository(root), "c1").outcome is (
        PassOutcome.SUCCESS
    )
    _repo(root, "[us-east-1]", resources=False)
    empty = _reconciler(tmp_path, "b").run_pass(load_repository(root), "c2")
    assert not any(a.result.value == "success" for a in empty.actions)
    assert _in_eu(aws_env) == (["agent"], ["agent-all"])
    assert (OTHER, "eu-west-1") in _recorded(aws_env)


def test_a_concurrent_writer_is_merged_not_overwritten(aws_env: Any) -> None:
    """Two writers read the same version; the second one's conditional write fails (412),
    it reads again and applies its change to what the first wrote."""
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket="artifacts")
    clients = Sessions().home("us-east-1")
    key = record_key("p/", "ssm-gitops", "s1")
    empty = read_record(clients, "artifacts", key)
    assert empty == Record(frozenset(), None)
    first = write_record(
        clients,
        "artifacts",
        key,
        empty,
        lambda places: places | {(A1, "us-east-1", "")},
        owner="ssm-gitops",
        source="s1",
    )
    assert first.etag
    stale = Record(frozenset({(A1, "us-east-1", "")}), first.etag)
    write_record(
        clients,
        "artifacts",
        key,
        stale,
        lambda places: places | {(A2, "us-east-1", "")},
        owner="ssm-gitops",
        source="s1",
    )
    # The second writer still holds `first`'s ETag, now stale.
    third = write_record(
        clients,
        "artifacts",
        key,
        first,
        lambda places: (places - {(A1, "us-east-1", "")}) | {(A3, "eu-west-1", ROLE3)},
        owner="ssm-gitops",
        source="s1",
    )
    assert third.places == {(A2, "us-east-1", ""), (A3, "eu-west-1", ROLE3)}
    assert read_record(clients, "artifacts", key).places == third.places


def test_an_unreadable_ou_holds_its_recorded_accounts(aws_env: Any, tmp_path: Path) -> None:
    """An OU that cannot be read (here: deleted, so ListAccountsForParent fails) must not
    read as "its accounts left": their recorded locations are neither pruned nor unshared.

    Bug guarded: without the hold, the accounts of an OU that failed to list vanished from
    the resolved Settings, so the record brought them back as left behind and pruned them."""
    from tests.reconcile.test_locations import Organization

    aws_env.client("s3").create_bucket(Bucket="artifacts")
    org = Organization(aws_env)
    member = org.account("member", org.dev)
    root = tmp_path / "repo"
    _repo(root, "[us-east-1]")
    (root / "settings.yaml").write_text(
        (root / "settings.yaml")
        .read_text()
        .replace(
            f'    - {{id: "{OTHER}", roleArn: "arn:aws:iam::{OTHER}:role/ssm-gitops"}}\n',
            f"    - {{organizationalUnit: {org.dev}, roleName: ssm-gitops}}\n",
        )
    )
    first = _reconciler(tmp_path, "a").run_pass(load_repository(root), "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    assert (member, "us-east-1") in _recorded(aws_env)

    org.move(member, org.dev, org.root)
    org.client.delete_organizational_unit(OrganizationalUnitId=org.dev)
    held = _reconciler(tmp_path, "b").run_pass(load_repository(root), "c2")
    assert held.outcome is PassOutcome.FAILURE
    assert [f.reason.value for f in held.failures] == ["location", "observe"]
    assert held.failures[0].message.startswith(f"organizationalUnit {org.dev} could not be read")
    assert held.failures[1].location == Location(member, "us-east-1")
    assert not any(a.action in ("delete", "unshare") for a in held.actions), held.actions
    shared = aws_env.client("ssm").describe_document_permission(
        Name="agent", PermissionType="Share"
    )
    assert shared["AccountIds"] == [member]
    assert (member, "us-east-1") in _recorded(aws_env)
    statuses = {(s.account, s.region): s for s in held.locations}
    assert statuses[(member, "us-east-1")].up is False


def test_the_record_is_read_once_per_process_and_at_each_full_resync(
    aws_env: Any, tmp_path: Path
) -> None:
    """A no-op pass of the `run` loop stays at the list floor: the record this process read
    or wrote is reused; a full resync reads it again (another writer's changes)."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    root = _repo(tmp_path / "repo", "[us-east-1]")
    reconciler = _reconciler(tmp_path, "run")
    first = reconciler.run_pass(load_repository(root), "c1")
    assert first.api_calls.get(("GetObject", "success"), 0) == 0  # none yet: 404
    assert _recorded(aws_env) == {(HOME, "us-east-1"), (OTHER, "us-east-1")}
    again = reconciler.run_pass(load_repository(root), "c1")
    assert again.outcome is PassOutcome.NO_CHANGE
    assert not any(operation in ("GetObject", "PutObject") for operation, _ in again.api_calls)
    resync = reconciler.run_pass(load_repository(root), "c1", full_resync=True)
    assert resync.api_calls[("GetObject", "success")] == 1


def test_a_heal_reuses_the_record_like_a_no_op_pass(aws_env: Any, tmp_path: Path) -> None:
    """Bug (merge of drift events and the location record): `heal` expanded the desired state
    with the record re-read from S3, so every drift event cost a GetObject the `run` loop's
    passes between full resyncs no longer make."""
    from controller.model.kinds import Kind
    from controller.reconcile.events import NamedResource

    aws_env.client("s3").create_bucket(Bucket="artifacts")
    root = _repo(tmp_path / "repo", "[us-east-1]")
    reconciler = _reconciler(tmp_path, "run")
    first = reconciler.run_pass(load_repository(root), "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.errors
    agent = NamedResource(Kind.PACKAGE, Location(HOME, "us-east-1"), name="agent")
    healed = reconciler.heal(load_repository(root), "c1", [agent])
    assert not healed.result.failures, healed.result.errors
    assert not any(operation == "GetObject" for operation, _ in healed.result.api_calls)
