"""Settings with several accounts and regions: packages in our account in every region,
shared to the other accounts, associations everywhere referencing them by ARN there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.aws.session import Sessions
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import PassOutcome
from controller.repository import load_repository

OTHER = "111122223333"
ROLE = f"arn:aws:iam::{OTHER}:role/ssm-gitops"

REPOSITORY = {
    "settings.yaml": f"""
apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts, prefix: p/}}
  regions: [us-east-1, eu-west-1]
  accounts:
    - {{id: "123456789012"}}
    - {{id: "{OTHER}", roleArn: "{ROLE}"}}
""",
    "tool.yaml": """
apiVersion: ssm-gitops/v1
kind: Package
metadata: {name: toolbox}
spec:
  defaultVersion: "1.0"
  versions:
    - name: "1.0"
      files: [{platform: amazon, arch: x86_64, source: src}]
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {name: toolbox-all}
spec:
  package: toolbox
  targets: [{key: "tag:env", values: [prod]}]
  schedule: rate(1 day)
""",
    "src/install.sh": "#!/bin/sh\necho install\n",
    "src/uninstall.sh": "#!/bin/sh\necho uninstall\n",
}


def test_packages_shared_and_associations_by_arn_across_accounts_and_regions(
    aws_env: Any, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    for name, text in REPOSITORY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    aws_env.client("s3").create_bucket(Bucket="artifacts")
    repository = load_repository(root)
    reconciler = Reconciler("ssm-gitops", work_dir=tmp_path / "work", sessions=Sessions())

    result = reconciler.run_pass(repository, "c1")
    assert result.outcome is PassOutcome.SUCCESS, result.errors
    again = reconciler.run_pass(repository, "c1", full_resync=True)
    assert again.outcome is PassOutcome.NO_CHANGE, again.actions
    assert ("AssumeRole", "success") in result.api_calls

    other = aws_env.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="test")
    credentials = other["Credentials"]
    for region in ("us-east-1", "eu-west-1"):
        home_ssm = aws_env.client("ssm", region=region)
        assert home_ssm.describe_document_permission(Name="toolbox", PermissionType="Share")[
            "AccountIds"
        ] == [OTHER]
        (mine,) = home_ssm.list_associations()["Associations"]
        assert home_ssm.describe_association(AssociationId=mine["AssociationId"])[
            "AssociationDescription"
        ]["Parameters"]["name"] == ["toolbox"]
        other_ssm = aws_env.client(
            "ssm",
            region=region,
            access_key=credentials["AccessKeyId"],
            secret_key=credentials["SecretAccessKey"],
            session_token=credentials["SessionToken"],
        )
        (theirs,) = other_ssm.list_associations()["Associations"]
        described = other_ssm.describe_association(AssociationId=theirs["AssociationId"])
        assert described["AssociationDescription"]["Parameters"]["name"] == [
            f"arn:aws:ssm:{region}:123456789012:document/toolbox"
        ]
