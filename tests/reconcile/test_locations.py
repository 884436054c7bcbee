"""controller/reconcile/locations.py and desired.py: Settings accounts by OU resolved through
AWS Organizations (embedded endpoint), each association placed exactly where its placement
says, packages published where needed and shared with exactly their users (issue 15).

Bugs guarded: OUs in Settings were not expanded (no account under an OU got anything);
every association went to every account and region whatever it asked; every package was
published in every region and shared with every Settings account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.aws.organizations import OrganizationReader
from controller.aws.session import Sessions
from controller.model.state import DesiredVersion, Location
from controller.reconcile.desired import desired_state
from controller.reconcile.locations import resolve_locations, role_arn
from controller.repository import load_repository

HOME = "123456789012"
EXPLICIT = "111122223333"


class Organization:
    """An organization on the embedded endpoint: root / prod / prod-eu, plus accounts."""

    def __init__(self, aws: Any) -> None:
        self.client = aws.client("organizations")
        self.client.create_organization(FeatureSet="ALL")
        self.root = self.client.list_roots()["Roots"][0]["Id"]
        self.prod = self.unit(self.root, "prod")
        self.prod_eu = self.unit(self.prod, "prod-eu")
        self.dev = self.unit(self.root, "dev")

    def unit(self, parent: str, name: str) -> str:
        made = self.client.create_organizational_unit(ParentId=parent, Name=name)
        return str(made["OrganizationalUnit"]["Id"])

    def account(self, name: str, parent: str) -> str:
        status = self.client.create_account(Email=f"{name}@example.com", AccountName=name)
        account = str(status["CreateAccountStatus"]["AccountId"])
        self.move(account, self.root, parent)
        return account

    def move(self, account: str, source: str, destination: str) -> None:
        self.client.move_account(
            AccountId=account, SourceParentId=source, DestinationParentId=destination
        )


def _settings_repo(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text(text)
    return root


def test_ou_accounts_nested_active_only_mixed_with_explicit_entries(
    aws_env: Any, tmp_path: Path
) -> None:
    org = Organization(aws_env)
    a = org.account("a", org.prod)
    b = org.account("b", org.prod_eu)  # nested OU
    closed = org.account("closed", org.prod)
    org.client.close_account(AccountId=closed)  # SUSPENDED: not ACTIVE
    org.account("elsewhere", org.dev)
    repository = load_repository(
        _settings_repo(
            tmp_path / "repo",
            f"""apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts}}
  regions: [us-east-1]
  accounts:
    - {{id: "{EXPLICIT}", roleArn: "arn:aws:iam::{EXPLICIT}:role/explicit"}}
    - {{id: "{a}", roleArn: "arn:aws:iam::{a}:role/explicit"}}
    - {{organizationalUnit: {org.prod}, roleName: ssm-gitops}}
""",
        )
    )
    sessions = Sessions()
    reader_made: list[OrganizationReader] = []

    def reader() -> OrganizationReader:
        reader_made.append(OrganizationReader(sessions.home("us-east-1")))
        return reader_made[-1]

    where = resolve_locations(repository.settings, HOME, "us-east-1", reader)
    assert where.complete
    assert dict(where.accounts) == {
        EXPLICIT: f"arn:aws:iam::{EXPLICIT}:role/explicit",
        a: f"arn:aws:iam::{a}:role/explicit",  # the explicit entry's role wins
        b: role_arn(b, "ssm-gitops"),
    }
    assert where.units[org.prod_eu] == frozenset({b})
    assert len(reader_made) == 1
    calls = sessions.counter.take()
    # Each OU listed once per pass (prod, prod-eu): cached within the pass.
    assert calls[("ListAccountsForParent", "success")] == 2
    assert calls[("ListOrganizationalUnitsForParent", "success")] == 2


def test_home_account_under_an_ou_uses_our_own_credentials(aws_env: Any, tmp_path: Path) -> None:
    org = Organization(aws_env)
    org.move(HOME, org.root, org.prod)  # the management account, moved for the test
    repository = load_repository(
        _settings_repo(
            tmp_path / "repo",
            f"""apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts}}
  accounts: [{{organizationalUnit: {org.prod}, roleName: ssm-gitops}}]
""",
        )
    )
    sessions = Sessions()
    where = resolve_locations(
        repository.settings, HOME, "us-east-1", lambda: OrganizationReader(sessions.home("x"))
    )
    assert where.accounts == ((HOME, None),)


def test_an_unreadable_ou_is_reported_and_marks_the_view_incomplete(
    aws_env: Any, tmp_path: Path
) -> None:
    Organization(aws_env)
    repository = load_repository(
        _settings_repo(
            tmp_path / "repo",
            """apiVersion: ssm-gitops/v1
kind: Settings
metadata: {name: settings}
spec:
  artifacts: {bucket: artifacts}
  accounts: [{organizationalUnit: ou-zzzz-missing1, roleName: ssm-gitops}]
""",
        )
    )
    sessions = Sessions()
    where = resolve_locations(
        repository.settings,
        HOME,
        "us-east-1",
        lambda: OrganizationReader(sessions.home("us-east-1")),
    )
    assert not where.complete
    (failure,) = where.failures
    assert failure.startswith("organizationalUnit ou-zzzz-missing1 could not be read (")


PLACED = """apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts}}
  regions: [us-east-1, eu-west-1, ap-south-1]
  accounts:
    - {{id: "{home}"}}
    - {{id: "{x}", roleArn: "arn:aws:iam::{x}:role/r"}}
    - {{organizationalUnit: {prod}, roleName: ssm-gitops}}
---
apiVersion: ssm-gitops/v1
kind: Package
metadata: {{name: agent}}
spec:
  shareWith: ["999988887777"]
  versions: [{{name: "1.0", files: [{{platform: amazon, arch: x86_64, source: src}}]}}]
---
apiVersion: ssm-gitops/v1
kind: Package
metadata: {{name: unused}}
spec:
  versions: [{{name: "1.0", files: [{{platform: amazon, arch: x86_64, source: src}}]}}]
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: agent-prod}}
spec:
  package: agent
  targets: [{{key: "tag:env", values: [prod]}}]
  placement:
    accounts: [{{organizationalUnit: {prod_eu}}}, "{x}"]
    regions: [eu-west-1]
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: agent-home}}
spec:
  package: agent
  targets: [{{key: "tag:env", values: [prod]}}]
  placement: {{accounts: ["{home}"], regions: [us-east-1]}}
"""


def test_placement_package_regions_and_sharing(aws_env: Any, tmp_path: Path) -> None:
    org = Organization(aws_env)
    a = org.account("a", org.prod)
    b = org.account("b", org.prod_eu)
    x = "444455556666"
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    for script in ("install.sh", "uninstall.sh"):
        (root / "src" / script).write_text("#!/bin/sh\n")
    (root / "all.yaml").write_text(
        PLACED.format(home=HOME, x=x, prod=org.prod, prod_eu=org.prod_eu)
    )
    repository = load_repository(root)
    sessions = Sessions()
    where = resolve_locations(
        repository.settings,
        HOME,
        "us-east-1",
        lambda: OrganizationReader(sessions.home("us-east-1")),
    )
    assert {account for account, _ in where.accounts} == {HOME, x, a, b}
    desired = desired_state(
        repository,
        owner="ssm-gitops",
        home_account=HOME,
        default_region="us-east-1",
        build=lambda _r, _p, v: DesiredVersion(v.name, "{}", "0" * 64),
        where=where,
    )
    placed = {(d.name, d.location) for d in desired.associations}
    assert placed == {
        ("agent-prod", Location(b, "eu-west-1")),
        ("agent-prod", Location(x, "eu-west-1")),
        ("agent-home", Location(HOME, "us-east-1")),
    }
    packages = {(p.name, p.location.region): p.share_with for p in desired.packages}
    assert packages == {
        # needed in the regions of its associations; shared there with exactly their accounts
        ("agent", "eu-west-1"): frozenset({b, x, "999988887777"}),
        ("agent", "us-east-1"): frozenset({"999988887777"}),
        # used by no association: every Settings region, shared with nobody
        ("unused", "us-east-1"): frozenset(),
        ("unused", "eu-west-1"): frozenset(),
        ("unused", "ap-south-1"): frozenset(),
    }


def test_placement_outside_resolved_settings_is_reported(aws_env: Any, tmp_path: Path) -> None:
    org = Organization(aws_env)
    org.account("a", org.prod)
    elsewhere = org.unit(org.root, "elsewhere")
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    for script in ("install.sh", "uninstall.sh"):
        (root / "src" / script).write_text("#!/bin/sh\n")
    text = PLACED.format(home=HOME, x="444455556666", prod=org.prod, prod_eu=elsewhere)
    (root / "all.yaml").write_text(text)
    repository = load_repository(root)
    sessions = Sessions()
    where = resolve_locations(
        repository.settings,
        HOME,
        "us-east-1",
        lambda: OrganizationReader(sessions.home("us-east-1")),
    )
    prod = next(a for a in repository.associations if a.name == "agent-prod")
    placed, problems = where.place(prod)
    assert placed == (Location("444455556666", "eu-west-1"),)
    (problem,) = problems
    assert problem.endswith(
        f"placement organizationalUnit {elsewhere} is not a Settings organizationalUnit nor "
        "nested under one: add it to Settings or remove it from the placement"
    )
    assert "all.yaml:" in problem


@pytest.mark.parametrize("unit", ["ou-zzzz-missing1"])
def test_unit_pattern_accepts_moto_and_aws_ids(unit: str) -> None:
    from controller.repository.rules import ORGANIZATIONAL_UNIT

    assert ORGANIZATIONAL_UNIT.match(unit)
    assert ORGANIZATIONAL_UNIT.match("r-ab12")
