"""End to end against the embedded endpoint: an organization of OUs and accounts (issue 15).

apply places every association exactly where its placement says and shares each package
with exactly the accounts that use it; moving an account between OUs and out of every OU,
and narrowing a placement, removes exactly what no longer applies (the location record in
the artifacts bucket remembers where we own something); an account whose role cannot be
assumed is isolated: one failure line, `location_up` 0 there, every other location proceeds.

Bugs guarded: OUs were not read at all; placement did not exist; a location removed from
Settings was never observed again, so its associations leaked forever.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.aws.session import Sessions
from controller.local import LocalAWS
from controller.reconcile.engine import Reconciler
from controller.reconcile.result import PassOutcome, PassResult, Reason
from controller.repository import load_repository
from controller.runtime.metrics import Metrics
from controller.runtime.status import Status, to_json

HOME = "123456789012"
BUCKET = "artifacts"
REGIONS = ("us-east-1", "eu-west-1")

DENIED_BODY = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    b"<Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform "
    b"sts:AssumeRole</Message></Error><RequestId>denied</RequestId></ErrorResponse>"
)


class DenyRoles:
    """Wraps the endpoint's WSGI app: AssumeRole into an account listed in `denied` is
    answered AccessDenied, as STS does when the role's trust policy refuses us."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.denied: set[str] = set()
        self.failing_regions: set[str] = set()  # SSM ListAssociations refused there
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        scope = str(environ.get("HTTP_AUTHORIZATION", ""))
        if target == "AmazonSSM.ListAssociations" and any(
            f"/{region}/ssm/" in scope for region in self.failing_regions
        ):
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1")])
            return [
                json.dumps(
                    {"__type": "AccessDeniedException", "message": "region disabled"}
                ).encode()
            ]
        if form.get("Action") == "AssumeRole":
            with self._lock:
                refused = any(f"::{a}:" in form.get("RoleArn", "") for a in self.denied)
            if refused:
                start_response("403 Forbidden", [("Content-Type", "text/xml")])
                return [DENIED_BODY]
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@pytest.fixture
def org_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAWS, DenyRoles]]:
    aws = LocalAWS(check_responses=True)
    gate = DenyRoles(aws.app)
    aws.app = gate  # type: ignore[assignment]
    with aws:
        aws.reset()
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
        yield aws, gate
        aws.reset()


SETTINGS = """apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts, prefix: p/}}
  regions: [us-east-1, eu-west-1]
  accounts:
    - {{organizationalUnit: {prod}, roleName: ssm-gitops}}
    - {{organizationalUnit: {dev}, roleName: ssm-gitops}}
  prune: {{enabled: true, maxDeletes: 50}}
"""

PACKAGES = """apiVersion: ssm-gitops/v1
kind: Package
metadata: {name: agent}
spec:
  versions: [{name: "1.0", files: [{platform: amazon, arch: x86_64, source: src}]}]
---
apiVersion: ssm-gitops/v1
kind: Package
metadata: {name: tools}
spec:
  versions: [{name: "1.0", files: [{platform: amazon, arch: x86_64, source: src}]}]
"""

ASSOCIATIONS = """apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: agent-prod}}
spec:
  package: agent
  targets: [{{key: "tag:env", values: [prod]}}]
  placement:
    accounts: [{{organizationalUnit: {prod}}}]
    regions: {agent_regions}
---
apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: tools-dev}}
spec:
  package: tools
  targets: [{{key: "tag:env", values: [dev]}}]
  placement: {{accounts: [{{organizationalUnit: {dev}}}], regions: [eu-west-1]}}
"""


class World:
    """The organization, the repository and the controller of one test."""

    def __init__(self, aws: LocalAWS, tmp_path: Path) -> None:
        self.aws = aws
        self.org = aws.client("organizations")
        self.org.create_organization(FeatureSet="ALL")
        self.root = self.org.list_roots()["Roots"][0]["Id"]
        self.prod = self._unit(self.root, "prod")
        self.prod_eu = self._unit(self.prod, "prod-eu")
        self.dev = self._unit(self.root, "dev")
        self.repo = tmp_path / "repo"
        (self.repo / "src").mkdir(parents=True)
        for script in ("install.sh", "uninstall.sh"):
            (self.repo / "src" / script).write_text("#!/bin/sh\necho ok\n")
        aws.client("s3").create_bucket(Bucket=BUCKET)
        self.reconciler = Reconciler(
            "ssm-gitops", source="org-test", work_dir=tmp_path / "work", sessions=Sessions()
        )

    def _unit(self, parent: str, name: str) -> str:
        made = self.org.create_organizational_unit(ParentId=parent, Name=name)
        return str(made["OrganizationalUnit"]["Id"])

    def account(self, name: str, parent: str) -> str:
        status = self.org.create_account(Email=f"{name}@example.com", AccountName=name)
        account = str(status["CreateAccountStatus"]["AccountId"])
        self.move(account, self.root, parent)
        return account

    def move(self, account: str, source: str, destination: str) -> None:
        self.org.move_account(
            AccountId=account, SourceParentId=source, DestinationParentId=destination
        )

    def write(self, agent_regions: str = "[us-east-1, eu-west-1]") -> None:
        (self.repo / "settings.yaml").write_text(SETTINGS.format(prod=self.prod, dev=self.dev))
        (self.repo / "packages.yaml").write_text(PACKAGES)
        (self.repo / "associations.yaml").write_text(
            ASSOCIATIONS.format(prod=self.prod, dev=self.dev, agent_regions=agent_regions)
        )

    def apply(self, revision: str) -> PassResult:
        return self.reconciler.run_pass(load_repository(self.repo), revision)

    def ssm(self, account: str, region: str) -> Any:
        if account == HOME:
            return self.aws.client("ssm", region=region)
        credentials = self.aws.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/ssm-gitops", RoleSessionName="test"
        )["Credentials"]
        return self.aws.client(
            "ssm",
            region=region,
            access_key=credentials["AccessKeyId"],
            secret_key=credentials["SecretAccessKey"],
            session_token=credentials["SessionToken"],
        )

    def placed(self, accounts: Iterable[str]) -> set[tuple[str, str, str]]:
        """(association name, account, region) of every association that exists."""
        found = set()
        for account in accounts:
            for region in REGIONS:
                for a in self.ssm(account, region).list_associations()["Associations"]:
                    found.add((a["Name"] and a.get("AssociationName", ""), account, region))
        return found

    def shared(self) -> dict[tuple[str, str], set[str]]:
        """(package, region) -> the accounts it is shared with, for every package we have."""
        result = {}
        for region in REGIONS:
            ssm = self.ssm(HOME, region)
            mine = [
                {"Key": "DocumentType", "Values": ["Package"]},
                {"Key": "Owner", "Values": ["Self"]},
            ]
            for document in ssm.list_documents(Filters=mine)["DocumentIdentifiers"]:
                name = document["Name"]
                result[(name, region)] = set(
                    ssm.describe_document_permission(Name=name, PermissionType="Share")[
                        "AccountIds"
                    ]
                )
        return result

    def record(self) -> set[tuple[str, str]]:
        s3 = self.aws.client("s3")
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="p/ssm-gitops/")["Contents"]
        (key,) = [item["Key"] for item in listed]
        body = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        return {(entry["account"], entry["region"]) for entry in body["locations"]}


def test_organization_placement_moves_narrowing_and_an_isolated_account(
    org_aws: tuple[LocalAWS, DenyRoles], tmp_path: Path
) -> None:
    aws, gate = org_aws
    world = World(aws, tmp_path)
    a = world.account("a", world.prod)
    b = world.account("b", world.prod_eu)  # nested under prod
    c = world.account("c", world.dev)
    denied = world.account("denied", world.prod)
    gate.denied.add(denied)
    everyone = (HOME, a, b, c)
    world.write()

    # 1. apply: exactly where the placements say; the denied account is isolated.
    first = world.apply("r1")
    assert first.outcome is PassOutcome.FAILURE
    denied_failures = [f for f in first.failures if f.location and f.location.account == denied]
    assert len(denied_failures) == len(REGIONS)  # one line per location there
    assert all("AccessDenied" in f.message for f in denied_failures)
    assert [f for f in first.failures if f not in denied_failures] == []
    up = {(s.account, s.region): s.up for s in first.locations}
    assert up[(denied, "us-east-1")] is False and up[(denied, "eu-west-1")] is False
    assert all(up[(x, r)] for x in (a, b, c) for r in REGIONS)
    metrics = Metrics()
    metrics.record_pass(first)
    text = metrics.render().decode()
    assert f'ssm_gitops_location_up{{account="{denied}",region="eu-west-1"}} 0.0' in text
    assert f'ssm_gitops_location_up{{account="{a}",region="eu-west-1"}} 1.0' in text
    assert 'ssm_gitops_locations{state="unreadable"} 2.0' in text
    page = to_json(Status(repo="repo", last_pass=first))["locations"]
    assert {(x["account"], x["region"]) for x in page["unreadable"]} == {
        (denied, r) for r in REGIONS
    }
    assert all("AssumeRole: AccessDenied" in x["message"] for x in page["unreadable"])
    assert world.placed(everyone) == {("agent-prod", x, r) for x in (a, b) for r in REGIONS} | {
        ("tools-dev", c, "eu-west-1")
    }
    assert world.shared() == {
        ("agent", "us-east-1"): {a, b, denied},
        ("agent", "eu-west-1"): {a, b, denied},
        ("tools", "eu-west-1"): {c},
    }
    assert {(a, r) for r in REGIONS} <= world.record()

    # 2. b moves from prod-eu to dev: agent-prod leaves b, tools-dev arrives there.
    world.move(b, world.prod_eu, world.dev)
    second = world.apply("r1")
    assert [f for f in second.failures if f.location and f.location.account != denied] == []
    assert world.placed(everyone) == {("agent-prod", a, r) for r in REGIONS} | {
        ("tools-dev", c, "eu-west-1"),
        ("tools-dev", b, "eu-west-1"),
    }
    assert world.shared()[("agent", "eu-west-1")] == {a, denied}
    assert world.shared()[("tools", "eu-west-1")] == {b, c}

    # 3. a leaves every Settings OU: the record brings it back once, and it is cleaned.
    world.move(a, world.prod, world.root)
    third = world.apply("r1")
    assert [f for f in third.failures if f.location and f.location.account != denied] == []
    assert world.placed(everyone) == {("tools-dev", c, "eu-west-1"), ("tools-dev", b, "eu-west-1")}
    assert all(account != a for account, _ in world.record())
    assert world.shared()[("agent", "eu-west-1")] == {denied}

    # 4. The placement narrows to us-east-1: agent leaves eu-west-1 (the association in the
    # denied account and the package there stay: that location could not be read).
    world.write(agent_regions="[us-east-1]")
    fourth = world.apply("r2")
    assert [f for f in fourth.failures if f.location and f.location.account != denied] == []
    assert world.shared()[("agent", "eu-west-1")] == {denied}
    assert sorted(line.split(": blocked: ")[0] for line in fourth.blocked) == [
        "- package agent delete (123456789012/eu-west-1)",
        f"- package agent unshare {denied} (123456789012/eu-west-1)",
    ]
    assert all("no deletion on a partial view" in line for line in fourth.blocked)

    # 5. The denied account's role works again: everything converges, nothing more to do.
    gate.denied.clear()
    fifth = world.apply("r2")
    assert fifth.failures == (), fifth.errors
    assert world.placed((*everyone, denied)) == {
        ("agent-prod", denied, "us-east-1"),
        ("tools-dev", c, "eu-west-1"),
        ("tools-dev", b, "eu-west-1"),
    }
    assert world.shared() == {("agent", "us-east-1"): {denied}, ("tools", "eu-west-1"): {b, c}}
    assert (denied, "eu-west-1") not in world.record()
    assert world.apply("r2").outcome is PassOutcome.NO_CHANGE
    assert Reason.LOCATION.value == "location"


def test_a_failing_region_is_isolated(org_aws: tuple[LocalAWS, DenyRoles], tmp_path: Path) -> None:
    """Every location of a region whose SSM refuses to list is down (`location_up` 0, one
    failure each); the other region converges."""
    aws, gate = org_aws
    world = World(aws, tmp_path)
    a = world.account("a", world.prod)
    world.write()
    gate.failing_regions.add("eu-west-1")
    result = world.apply("r1")
    up = {(s.account, s.region): s.up for s in result.locations}
    assert up == {
        (a, "us-east-1"): True,
        (a, "eu-west-1"): False,
        # our packages there were read (only ListAssociations fails)
        (HOME, "us-east-1"): True,
        (HOME, "eu-west-1"): True,
    }
    assert [str(f.location) for f in result.failures] == [f"{a}/eu-west-1"]
    assert "region disabled" in result.failures[0].message
    gate.failing_regions.clear()
    assert world.placed([a]) == {("agent-prod", a, "us-east-1")}
