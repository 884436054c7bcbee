"""A placement by OU while that OU cannot be read (issue 15 review): never a partial view.

Contract, "Ownership and safety": a location that could not be read completely gets no
deletion, "and no change that depends on what was not read". Which accounts an association
placed by `organizationalUnit` goes to depends on reading that OU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.reconcile.result import PassOutcome
from controller.repository import load_repository
from tests.reconcile.test_locations import Organization
from tests.reconcile.test_locations_record import HOME, _reconciler

REPO = """apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts, prefix: p/}}
  regions: [us-east-1]
  accounts:
    - {{id: "{home}"}}
    - {{id: "{member}", roleArn: "arn:aws:iam::{member}:role/ssm-gitops"}}
    - {{organizationalUnit: {dev}, roleName: ssm-gitops}}
  prune: {{enabled: true, maxDeletes: 10}}
---
apiVersion: ssm-gitops/v1
kind: Package
metadata: {{name: agent}}
spec:
  versions: [{{name: "1.0", files: [{{platform: amazon, arch: x86_64, source: src}}]}}]
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: agent-dev}}
spec:
  package: agent
  targets: [{{key: "tag:env", values: [dev]}}]
  placement: {{accounts: [{{organizationalUnit: {dev}}}]}}
"""


def _associations_in(aws: Any, account: str) -> list[str]:
    credentials = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/ssm-gitops", RoleSessionName="test"
    )["Credentials"]
    ssm = aws.client(
        "ssm",
        region="us-east-1",
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )
    return [a["AssociationName"] for a in ssm.list_associations()["Associations"]]


def test_an_association_placed_by_an_unreadable_ou_is_not_pruned(
    aws_env: Any, tmp_path: Path
) -> None:
    """Bug: an account listed in Settings by id AND under the OU a placement names; when that
    OU could not be read, the placement resolved to no account at all, the account (read
    completely: it is listed by id) showed our association as no longer desired, and the
    pass pruned it: a deletion on a partial view (the OU's membership was not read)."""
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    org = Organization(aws_env)
    member = org.account("member", org.dev)
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    for script in ("install.sh", "uninstall.sh"):
        (root / "src" / script).write_text("#!/bin/sh\n")
    (root / "all.yaml").write_text(REPO.format(home=HOME, member=member, dev=org.dev))
    first = _reconciler(tmp_path, "a").run_pass(load_repository(root), "c1")
    assert first.outcome is PassOutcome.SUCCESS, first.failures
    assert _associations_in(aws_env, member) == ["agent-dev"]

    # The OU cannot be read now (here: deleted; in AWS a throttled or denied listing).
    org.move(member, org.dev, org.root)
    org.client.delete_organizational_unit(OrganizationalUnitId=org.dev)
    second = _reconciler(tmp_path, "b").run_pass(load_repository(root), "c2")
    assert any(f.message.startswith(f"organizationalUnit {org.dev}") for f in second.failures)
    deleted = [a for a in second.actions if a.action == "delete" and a.result.value == "success"]
    assert deleted == [], deleted
    unshared = [a for a in second.actions if a.action == "unshare" and a.result.value == "success"]
    assert unshared == [], unshared
    assert _associations_in(aws_env, member) == ["agent-dev"]
    shared = aws_env.client("ssm").describe_document_permission(
        Name="agent", PermissionType="Share"
    )
    assert member in shared["AccountIds"]  # still usable where it still is
