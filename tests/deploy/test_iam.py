"""deploy/iam/: the policies allow exactly the AWS operations a real `apply` makes, as recorded
by the embedded endpoint, and nothing else (issue 6); and they enforce ownership by
themselves: evaluated with tests/deploy/policy_eval.py, every recorded call is allowed, while
the same calls on an untagged or another owner's document or association, a create without
the owner tag, and a change of the owner tag are denied (issue 11).

The scenario applies sample-repo/ (creates every package, version, share, tag and
association), then a second commit that changes and deletes: a new version, the default
moved, a share and a tag removed, a pruned version, a removed package and association, a
changed association; a progressive rollout of datadog-agent through its canary ring (issue
13: the tag, the pin, StartAssociationsOnce, the ring's executions and targets, the alarm);
then a third that moves the associations into a second account reached through its role
(Settings.accounts), where a second rollout pins and starts the ring. The operations are
never listed by hand: they are read from the local endpoint's `GET /_local/calls` after the
`ssm-gitops apply` processes ran, and each request itself (account, parameters, the tags its
resources had just before it) from a recorder around the endpoint's WSGI application.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pytest

from controller.local import LocalAWS
from controller.local.accounts import caller
from controller.local.server import _s3_operation
from tests.deploy.iam import (
    OWNER_TAG,
    Call,
    Needed,
    allowed_actions,
    fill,
    iam_actions,
    load,
    named_resources,
    needed_for,
    placeholders,
    resources_of,
)
from tests.deploy.policy_eval import Decision, Request, Resource, evaluate
from tests.local.eventbus import wire_queue
from tests.runtime.processes import free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parents[2]
SIGNATURE = pygit2.Signature("ssm-gitops test", "test@ssm-gitops.invalid")
HOME_ACCOUNT = "123456789012"  # the local endpoint's account for the key "testing"
OTHER_ACCOUNT = "111122223333"
OTHER_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ssm-gitops"
OWNER = "team-a"  # the controller's --name in this scenario
CONTROLLER_ROLE = f"arn:aws:iam::{HOME_ACCOUNT}:role/ssm-gitops-controller"


class Recorder:
    """Wraps the local endpoint's WSGI app: notes every request while `recording` (account,
    region, operation, parameters, the tags of the SSM resources it names as they were just
    before it, and the answer), then hands the request on unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[Call] = []
        self.recording = False
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    @property
    def ssm_calls(self) -> set[tuple[str, str]]:
        """SSM calls, and EC2's (overlap detection reads instance tags where associations
        live): what each account's policy must allow."""
        return {
            (c.account, c.operation)
            for c in self.calls
            if c.operation.startswith(("ssm:", "ec2:"))
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not self.recording or str(environ.get("PATH_INFO", "")).startswith("/_local/"):
            result: Iterable[bytes] = self.app(environ, start_response)
            return result
        who = caller(environ)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path, query = str(environ.get("PATH_INFO", "")), str(environ.get("QUERY_STRING", ""))
        form = "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", ""))
        body = b""
        if target or form:  # never read an S3 upload
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        if target.startswith("AmazonSSM."):
            operation = "ssm:" + target.split(".", 1)[1]
            params: dict[str, Any] = json.loads(body or b"{}")
            probe = Call(who.account, who.region, operation, params)
            tags, document = self._state_before(probe)
            if document:
                params["_document"] = document
            status: list[str] = []

            def capture(code: str, headers: Any, exc_info: Any = None) -> Any:
                status.append(code)
                return start_response(code, headers, exc_info)

            answer = b"".join(self.app(environ, capture))
            response = json.loads(answer or b"{}") if status[0].startswith("200") else {}
            self._add(Call(who.account, who.region, operation, params, tags, response))
            return [answer]
        if target:  # another JSON service (SQS: the drift-events queue)
            operation = f"{who.service}:{target.split('.', 1)[1]}"
            self._add(Call(who.account, who.region, operation, json.loads(body or b"{}")))
        elif form:
            fields = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            operation = f"{who.service or 'sts'}:{fields.get('Action', '?')}"
            self._add(Call(who.account, who.region, operation, fields))
        else:
            operation = "s3:" + _s3_operation(method, path, query)
            self._add(Call(who.account, who.region, operation, {}, {}, {}, method, path, query))
        result = self.app(environ, start_response)
        return result

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _state_before(self, call: Call) -> tuple[dict[str, dict[str, str]], str | None]:
        """The tags of every document and association the call names, and the document of a
        named association, as the endpoint holds them now (before the call runs)."""
        store = self.app.ssm.store
        tags: dict[str, dict[str, str]] = {}
        document = None
        with store.lock:
            for arn in named_resources(call):
                _, _, _, region, account, rest = arn.split(":", 5)
                if not account:
                    continue  # Amazon's documents carry no tags of ours
                state = store.state(account, region)
                kind, _, name = rest.partition("/")
                if kind == "document" and name in state.documents:
                    tags[arn] = dict(state.documents[name].tags)
                if kind == "association" and name in state.associations:
                    record = state.associations[name]
                    tags[arn] = dict(record.tags)
                    document = str(record.fields.get("Name", "")) or None
        return tags, document


@dataclass(frozen=True)
class Recorded:
    operations: dict[str, int]  # GET /_local/calls: every request, every account
    ssm_by_account: dict[str, set[str]]
    touched: dict[str, set[str]]  # IAM action -> ARNs of the resources it acted on
    placeholders: dict[str, str]  # the policy's placeholders -> this scenario's values
    calls: tuple[Call, ...]  # every request of the four applies, in order


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


def _heal_drift_through_events(
    work: Path, aws: LocalAWS, recorder: Recorder, cache: Path, queue: str
) -> None:
    """The fifth step: `run --events-queue` heals a default version moved by hand, so the
    queue's calls (ReceiveMessage, DeleteMessageBatch) and the heal are recorded too."""
    port = free_port()
    log = (work.parent / "run.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "run",
            "--repo",
            str(work),
            "--name",
            OWNER,
            "--listen",
            f"127.0.0.1:{port}",
            "--interval",
            "1h",
            "--resync-interval",
            "1h",
            "--events-queue",
            queue,
        ],
        cwd=ROOT,
        env=_environment(aws.endpoint_url, cache),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: json.loads(http_get(url + "/status")[1])["passes"] >= 1, 120, "a pass")
        recorder.recording = False  # someone else's change: not the controller's call
        aws.client("ssm").update_document_default_version(
            Name="datadog-agent", DocumentVersion="1"
        )
        recorder.recording = True

        def healed() -> bool:
            # The applies' own events wait on the queue too (it was wired first): they may
            # be handled in the same batch as the drift, and count with it.
            text = http_get(url + "/metrics")[1]
            found = re.search(r'ssm_gitops_drift_events_total\{result="healed"\} (\S+)', text)
            return found is not None and float(found.group(1)) >= 1

        try:
            wait_until(healed, 90, "the default version healed through the events queue")
        except AssertionError as error:
            output = (work.parent / "run.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"{error}\n{output}") from None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()


def _environment(endpoint: str, cache: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cache),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _apply(repo: Path, endpoint: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "apply",
            "--repo",
            str(repo),
            "--name",
            OWNER,
            "--json",
        ],
        cwd=ROOT,
        env=_environment(endpoint, cache),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _recorded(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(endpoint + "/_local/calls", timeout=10) as response:
        calls: dict[str, int] = json.load(response)["calls"]
    return calls


def _pin_an_association(work: Path, version: str) -> None:
    """An extra association pinning datadog-agent to `version` on the canary ring, unlike the
    default the others follow: overlap detection then resolves targets (DescribeInstances,
    DescribeInstanceInformation) in the pass after it exists."""
    (work / "associations" / "datadog-agent-pinned.yaml").write_text(
        "apiVersion: ssm-gitops/v1\nkind: Association\nmetadata:\n"
        "  name: datadog-agent-pinned\nspec:\n  package: datadog-agent\n"
        f'  version: "{version}"\n  targets:\n    - key: InstanceIds\n      values: ["*"]\n'
        "  schedule: rate(1 day)\n"
    )


def _create_alarm(aws: LocalAWS) -> None:
    """The alarm the rollout's gate reads (made before the recording starts)."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="datadog-agent-errors",
        MetricName="Errors",
        Namespace="Datadog",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="datadog-agent-errors", StateValue="OK", StateReason="ok")


def _ring_by_ring(aws: LocalAWS, work: Path, cache: Path, account: str, version: str) -> None:
    """Four applies of a one-ring rollout: start the ring; gate (executions, targets,
    alarms) and bake; succeed; move the default and unpin. No fleet runs here: the ring's
    execution and its target's result are written into the endpoint's store, as the fleet
    would."""
    started = _apply(work, aws.endpoint_url, cache)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    assert f"ring 1/1: pin datadog-agent-canary to {version}" in started.stdout, started.stdout
    store = aws.ssm.store
    with store.lock:  # read in the store itself: no request of the test is recorded
        canary = next(
            record.association_id
            for record in store.state(account, "us-east-1").associations.values()
            if record.fields.get("AssociationName") == "datadog-agent-canary"
        )
    execution = aws.ssm.start_association_execution(account, "us-east-1", canary)
    aws.ssm.record_association_result(
        account, "us-east-1", canary, execution, "i-0123456789abcdef0", "Success"
    )
    for step in ("passed its gate", "all 1 rings passed", "set_default"):
        moved = _apply(work, aws.endpoint_url, cache)
        assert moved.returncode == 0, moved.stdout[-3000:] + moved.stderr[-3000:]
        assert step in moved.stdout, (step, moved.stdout[-3000:])
    with store.lock:
        document = store.state(HOME_ACCOUNT, "us-east-1").documents["datadog-agent"]
        default = document.versions[document.default_version].version_name
    assert default == version  # the default moved, last


def _without_rollout(path: Path) -> None:
    """sample-repo's datadog-agent rolls out ring by ring; here the second commit moves its
    default at once (UpdateDocumentDefaultVersion), and `_roll_out` gives it a one-ring
    rollout of its own, gated on an alarm."""
    text = path.read_text()
    start = text.index("  rollout:\n")
    end = text.index("  versions:\n")
    assert "onFailure" in text[start:end], "sample-repo's rollout block changed?"
    path.write_text(text[:start] + text[end:])


def _roll_out(aws: LocalAWS, work: Path, repo: pygit2.Repository, cache: Path) -> None:
    """A progressive rollout (issue 13) in our own account: datadog-agent goes back to 6.9.0
    through one ring, the cron-only canary (so StartAssociationsOnce is sent), gated on an
    alarm."""
    package = work / "packages" / "datadog-agent.yaml"
    _edit(package, 'defaultVersion: "6.10.0"', 'defaultVersion: "6.9.0"')
    _edit(
        package,
        "  pruneVersions: false\n",
        "  pruneVersions: false\n  rollout:\n    rings:\n"
        "      - {associations: [datadog-agent-canary]}\n    alarms: [datadog-agent-errors]\n",
    )
    _commit(repo, "roll datadog-agent 6.9.0 out through the canary ring")
    _ring_by_ring(aws, work, cache, HOME_ACCOUNT, "6.9.0")


def _roll_out_there(aws: LocalAWS, work: Path, repo: pygit2.Repository, cache: Path) -> None:
    """The same rollout with the ring's association in the member account (its role)."""
    _edit(
        work / "packages" / "datadog-agent.yaml",
        'defaultVersion: "6.9.0"',
        'defaultVersion: "6.10.0"',
    )
    _commit(repo, "roll datadog-agent 6.10.0 out, the ring in the member account")
    _ring_by_ring(aws, work, cache, OTHER_ACCOUNT, "6.10.0")


def _move_associations_to_another_account(work: Path) -> None:
    # Unlike the default there (6.10.0 by then), so the member account is resolved too.
    _pin_an_association(work, "6.9.0")
    _edit(
        work / "settings.yaml",
        "  regions: [us-east-1]\n",
        "  regions: [us-east-1]\n  accounts:\n"
        f'    - {{id: "{OTHER_ACCOUNT}", roleArn: "{OTHER_ROLE}"}}\n',
    )


def _add_an_organizational_unit(work: Path, unit: str) -> None:
    """Settings also names an OU (issue 15): the pass reads it through Organizations."""
    _edit(
        work / "settings.yaml",
        f'    - {{id: "{OTHER_ACCOUNT}", roleArn: "{OTHER_ROLE}"}}\n',
        f'    - {{id: "{OTHER_ACCOUNT}", roleArn: "{OTHER_ROLE}"}}\n'
        f"    - {{organizationalUnit: {unit}, roleName: ssm-gitops}}\n",
    )


def _change_associations_there(work: Path) -> None:
    _edit(work / "associations" / "datadog-agent.yaml", 'maxErrors: "10%"', 'maxErrors: "5%"')
    (work / "associations" / "metrics-exporter.yaml").unlink()


@pytest.fixture(scope="module")
def local_endpoint() -> Iterator[tuple[LocalAWS, Recorder]]:
    """An endpoint of this module's own, so the counts hold this scenario's calls only."""
    aws = LocalAWS()
    recorder = Recorder(aws.app)
    aws.app = recorder  # type: ignore[assignment]
    with aws:
        yield aws, recorder


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, local_endpoint: tuple[LocalAWS, Recorder]
) -> Recorded:
    aws, recorder = local_endpoint
    work = tmp_path_factory.mktemp("iam") / "repo"
    shutil.copytree(ROOT / "sample-repo", work)
    _without_rollout(work / "packages" / "datadog-agent.yaml")
    _pin_an_association(work, "6.10.0")  # unlike the default 6.9.0
    bucket = re.search(r"bucket:\s*(\S+)", (work / "settings.yaml").read_text())
    assert bucket, "sample-repo/settings.yaml names no artifact bucket"
    aws.client("s3").create_bucket(Bucket=bucket.group(1))
    organizations = aws.client("organizations")  # made before the calls are counted
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    made = organizations.create_organizational_unit(ParentId=root, Name="workloads")
    unit = str(made["OrganizationalUnit"]["Id"])
    # The operator's part, not recorded: the drift-events queue and rule of deploy/events/.
    queue = wire_queue(aws.client("sqs"), aws.client("events"))
    queue_arn = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    _create_alarm(aws)
    urllib.request.urlopen(
        urllib.request.Request(aws.endpoint_url + "/_local/calls/reset", method="POST"),
        timeout=10,
    ).close()
    recorder.recording = True

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
    # What the home account holds now: once the associations move to the other account,
    # the ones left at home are pruned (the location record, issue 15).
    touched = _touched(aws, bucket.group(1))

    _roll_out(aws, work, repo, cache)

    _move_associations_to_another_account(work)
    _commit(repo, "associations go to another account")
    third = _apply(work, aws.endpoint_url, cache)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]

    _change_associations_there(work)
    _commit(repo, "change and delete associations in the other account")
    fourth = _apply(work, aws.endpoint_url, cache)
    assert fourth.returncode == 0, fourth.stdout[-3000:] + fourth.stderr[-3000:]

    _roll_out_there(aws, work, repo, cache)
    _add_an_organizational_unit(work, unit)
    _commit(repo, "accounts of an organizational unit too")
    fifth = _apply(work, aws.endpoint_url, cache)
    assert fifth.returncode == 0, fifth.stdout[-3000:] + fifth.stderr[-3000:]
    _heal_drift_through_events(work, aws, recorder, cache, queue)
    recorder.recording = False

    by_account: dict[str, set[str]] = {}
    for account, operation in recorder.ssm_calls:
        by_account.setdefault(account, set()).add(operation)
    prefix = re.search(r"prefix:\s*(\S+)", (work / "settings.yaml").read_text())
    assert prefix
    return Recorded(
        _recorded(aws.endpoint_url),
        by_account,
        {**touched, "sqs:ReceiveMessage": {queue_arn}},
        {
            "ACCOUNT_ID": HOME_ACCOUNT,
            "ARTIFACT_BUCKET": bucket.group(1),
            "ARTIFACT_PREFIX": prefix.group(1),
            "OWNER_NAME": OWNER,
            "MEMBER_ACCOUNT_ID": OTHER_ACCOUNT,
            "CONTROLLER_ACCOUNT_ID": HOME_ACCOUNT,
            "EVENTS_QUEUE_ARN": queue_arn,
        },
        tuple(recorder.calls),
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
        "ec2:DescribeInstances",
        "ssm:DescribeInstanceInformation",
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
        # a progressive rollout (issue 13)
        "ssm:StartAssociationsOnce",
        "ssm:DescribeAssociationExecutions",
        "ssm:DescribeAssociationExecutionTargets",
        "monitoring:DescribeAlarms",
    ):
        assert recorded.operations.get(operation, 0) > 0, operation
    assert (OTHER_ACCOUNT, "ec2:DescribeInstances") in {
        (account, op) for account, ops in recorded.ssm_by_account.items() for op in ops
    }
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


def _covers(patterns: set[str], arn: str, values: dict[str, str]) -> bool:
    """IAM's Resource matching: `*` any characters (also `/`), `?` one character."""
    for pattern in patterns:
        filled = fill({"p": pattern}, values)["p"]
        if fnmatch.fnmatchcase(arn, filled):
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
        "sqs:ReceiveMessage": ["arn:aws:sqs:us-east-1:123456789012:another-queue"],
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
    """Bug guarded: sts:AssumeRole was allowed on arn:aws:iam::*:role/ssm-gitops, that role
    name in every account in the world; and one trust condition let every controller use the
    session name "ssm-gitops"."""
    policy = load("controller-policy.json")
    for action in ("sts:AssumeRole", "sts:SetSourceIdentity"):
        assert resources_of(policy, action) == {"arn:aws:iam::MEMBER_ACCOUNT_ID:role/ssm-gitops"}
    organization = load("assume-roles-in-organization.json")
    (statement,) = organization["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "ORGANIZATION_ID"}}
    trust = load("account-role-trust.json")
    for statement in trust["Statement"]:
        assert statement["Principal"]["AWS"].endswith(":role/ssm-gitops-controller")
    assert {s["Action"] for s in trust["Statement"]} == {"sts:AssumeRole", "sts:SetSourceIdentity"}


def test_policies_are_well_formed() -> None:
    for name in (
        "controller-policy.json",
        "account-role-policy.json",
        "account-role-trust.json",
        "assume-roles-in-organization.json",
    ):
        policy = load(name)
        assert policy["Version"] == "2012-10-17"
        sids = [s["Sid"] for s in policy["Statement"]]
        assert len(sids) == len(set(sids)), name
        for statement in policy["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, f"{name}: wildcard action {action}"


# -- the policies enforce ownership by themselves (issue 11) ---------------------------------

OTHER_OWNER = "team-b"
ORGANIZATION = "o-a1b2c3d4e5"


def _policies(recorded: Recorded) -> dict[str, dict[str, Any]]:
    """The shipped policies with their placeholders filled in as docs/deploy.md says: the
    account-role policy for the member account, the trust policy naming the controller."""
    values = recorded.placeholders
    member = dict(values, ACCOUNT_ID=OTHER_ACCOUNT)
    filled = {
        "controller-policy.json": fill(load("controller-policy.json"), values),
        "account-role-policy.json": fill(load("account-role-policy.json"), member),
        "account-role-trust.json": fill(load("account-role-trust.json"), values),
        "assume-roles-in-organization.json": fill(
            load("assume-roles-in-organization.json"), dict(values, ORGANIZATION_ID=ORGANIZATION)
        ),
    }
    for name, policy in filled.items():
        assert placeholders(policy) == set(), f"{name}: placeholders left {placeholders(policy)}"
    return filled


def _authorisations(recorded: Recorded) -> list[tuple[str, Needed]]:
    """Every authorisation the recorded calls needed, with the policy that must grant it: SSM
    in the home account and S3 by the controller's policy, SSM (and EC2's DescribeInstances)
    in the member account by the account role's, AssumeRole by the controller's policy and
    the role's trust policy."""
    found: list[tuple[str, Needed]] = []
    for call in recorded.calls:
        for needed in needed_for(call):
            if call.operation.startswith(("ssm:", "ec2:")) and call.account == OTHER_ACCOUNT:
                found.append(("account-role-policy.json", needed))
                continue
            assert call.account == HOME_ACCOUNT, call
            found.append(("controller-policy.json", needed))
            if needed.role == "assume":
                trusted = Request(
                    needed.request.action,
                    needed.request.resources,
                    needed.request.context,
                    principal=CONTROLLER_ROLE,
                    label=needed.request.label,
                )
                found.append(("account-role-trust.json", Needed(trusted, "assume")))
    return found


def _owned(request: Request, kind: str) -> bool:
    return any(f":{kind}/" in r.arn and r.tags.get(OWNER_TAG) == OWNER for r in request.resources)


def test_every_call_of_a_real_pass_is_allowed_by_the_policies_themselves(
    recorded: Recorded,
) -> None:
    """Each request of the four applies (create, change, delete, share, tag, untag, the
    member account, AssumeRole), with the tags its resources really had, is allowed by the
    shipped policies with exactly their conditions."""
    policies = _policies(recorded)
    authorisations = _authorisations(recorded)
    refused = [
        f"{name}: {needed.request.label}: {result.explain()}"
        for name, needed in authorisations
        if not (result := evaluate(policies[name], needed.request)).allowed
    ]
    assert refused == []
    roles = {needed.role for _, needed in authorisations}
    assert roles == {"read", "create", "tag-on-create", "change", "assume", "artifact", "events"}
    changed = {n.request.action for _, n in authorisations if n.role == "change"}
    assert {
        "ssm:DeleteDocument",
        "ssm:UpdateDocument",
        "ssm:UpdateDocumentDefaultVersion",
        "ssm:ModifyDocumentPermission",
        "ssm:AddTagsToResource",
        "ssm:RemoveTagsFromResource",
        "ssm:UpdateAssociation",
        "ssm:DeleteAssociation",
    } <= changed


def test_deleting_an_untagged_document_is_denied_by_the_policy_itself(
    recorded: Recorded,
) -> None:
    """Bug guarded: the controller's policy allowed ssm:DeleteDocument on every document of
    the account; ownership was enforced only in our code. Each DeleteDocument the pass made,
    replayed on the same document without the owner tag (or with another owner's), is
    denied by the policy."""
    policy = _policies(recorded)["controller-policy.json"]
    deletes = [
        n.request
        for name, n in _authorisations(recorded)
        if n.request.action == "ssm:DeleteDocument" and name == "controller-policy.json"
    ]
    assert deletes
    for request in deletes:
        assert evaluate(policy, request).allowed, request.label
        for tags in ({}, {"team": "sre"}, {OWNER_TAG: OTHER_OWNER}, {OWNER_TAG: OWNER.upper()}):
            result = evaluate(policy, request.with_resource_tags(tags, kind="document"))
            assert result.decision is Decision.IMPLICIT_DENY, (tags, result.explain())


@pytest.mark.parametrize("kind", ["document", "association"])
def test_no_change_to_what_is_not_ours(recorded: Recorded, kind: str) -> None:
    """Bug guarded: delete, update, share (even publicly), retag and untag were allowed on
    ANY document and association. Every changing call of the pass, replayed on an untagged
    resource or one of another owner, is denied, in the home and in the member account."""
    policies = _policies(recorded)
    replayed = 0
    for name, needed in _authorisations(recorded):
        request = needed.request
        if needed.role != "change" or not _owned(request, kind):
            continue
        for tags in ({}, {"team": "sre"}, {OWNER_TAG: OTHER_OWNER}):
            other = request.with_resource_tags(tags, kind=kind)
            result = evaluate(policies[name], other)
            assert not result.allowed, f"{name}: {request.label} on {tags}: {result.explain()}"
            replayed += 1
    assert replayed > 0


def test_creating_without_our_owner_tag_is_denied(recorded: Recorded) -> None:
    """Bug guarded: CreateDocument and CreateAssociation needed no owner tag. Every create of
    the pass (and the tagging it implies), without the owner tag or with another owner's, is
    denied."""
    policies = _policies(recorded)
    creates = [
        (name, n) for name, n in _authorisations(recorded) if n.role in ("create", "tag-on-create")
    ]
    assert {n.request.action for _, n in creates} == {
        "ssm:CreateDocument",
        "ssm:CreateAssociation",
        "ssm:AddTagsToResource",
    }
    for name, needed in creates:
        tags = {
            k.split("/", 1)[1]: v[0]
            for k, v in needed.request.context.items()
            if k.startswith("aws:RequestTag/")
        }
        assert tags.get(OWNER_TAG) == OWNER
        without = {k: v for k, v in tags.items() if k != OWNER_TAG}
        for wrong in (without, dict(without, **{OWNER_TAG: OTHER_OWNER}), {}):
            result = evaluate(policies[name], needed.request.with_request_tags(wrong))
            assert not result.allowed, f"{name}: {needed.request.label} with {wrong}"


def test_the_owner_tag_cannot_be_changed_or_removed(recorded: Recorded) -> None:
    """On our own documents and associations: AddTagsToResource may not set another owner,
    RemoveTagsFromResource may not remove the owner tag (alone or with others); other tags
    can be added and removed."""
    policies = _policies(recorded)
    targets: dict[str, tuple[str, Resource]] = {}
    for name, needed in _authorisations(recorded):
        for resource in needed.request.resources:
            if resource.tags.get(OWNER_TAG) == OWNER:
                kind = "document" if ":document/" in resource.arn else "association"
                targets.setdefault(f"{name} {kind}", (name, resource))
    assert {key.split()[1] for key in targets} == {"document", "association"}
    for name, resource in targets.values():
        policy = policies[name]

        def tag(tags: dict[str, str], res: Resource = resource) -> Request:
            context: dict[str, tuple[str, ...]] = {
                f"aws:RequestTag/{k}": (v,) for k, v in tags.items()
            }
            context["aws:TagKeys"] = tuple(tags)
            return Request("ssm:AddTagsToResource", (res,), context)

        def untag(keys: list[str], res: Resource = resource) -> Request:
            return Request("ssm:RemoveTagsFromResource", (res,), {"aws:TagKeys": tuple(keys)})

        assert evaluate(policy, tag({"team": "sre"})).allowed, name
        assert not evaluate(policy, tag({OWNER_TAG: OTHER_OWNER})).allowed, name
        assert not evaluate(policy, tag({"team": "sre", OWNER_TAG: OTHER_OWNER})).allowed
        if allowed_actions(policy) >= {"ssm:RemoveTagsFromResource"}:
            assert evaluate(policy, untag(["team"])).allowed, name
            assert not evaluate(policy, untag([OWNER_TAG])).allowed, name
            assert not evaluate(policy, untag(["team", OWNER_TAG])).allowed, name


def test_limit_an_untagged_resource_can_be_given_our_owner_tag(recorded: Recorded) -> None:
    """A known limit, written down so that it is seen: tagging on create is authorised as
    ssm:AddTagsToResource on a resource that has no tags yet, and IAM cannot tell that from
    tagging an existing untagged document (SSM offers no condition key for it). So the
    policy lets the controller put ITS owner tag on an untagged resource (never on another
    owner's): the controller never does (it never sends the owner tag except on create);
    docs/deploy.md says so. If this test starts failing, the limit is gone: delete it."""
    policy = _policies(recorded)["controller-policy.json"]
    untagged = Resource("arn:aws:ssm:us-east-1:123456789012:document/not-ours")
    claim = Request(
        "ssm:AddTagsToResource",
        (untagged,),
        {f"aws:RequestTag/{OWNER_TAG}": (OWNER,), "aws:TagKeys": (OWNER_TAG,)},
    )
    assert evaluate(policy, claim).allowed
    foreign = Resource(untagged.arn, {OWNER_TAG: OTHER_OWNER})
    assert not evaluate(policy, Request(claim.action, (foreign,), claim.context)).allowed


def test_associations_only_run_the_aws_package_document(recorded: Recorded) -> None:
    """CreateAssociation has no condition key on the package its parameters name; what bounds
    it is the document it runs (only AWS-ConfigureAWSPackage) and the owner tag it must
    carry. An association of any other document is denied."""
    policies = _policies(recorded)
    for name, needed in _authorisations(recorded):
        if needed.request.action != "ssm:CreateAssociation":
            continue
        resources = tuple(
            Resource(r.arn.replace("AWS-ConfigureAWSPackage", "AWS-RunShellScript"), r.tags)
            for r in needed.request.resources
        )
        other = Request(needed.request.action, resources, needed.request.context)
        assert evaluate(policies[name], needed.request).allowed
        assert not evaluate(policies[name], other).allowed


def test_assume_role_only_into_the_member_accounts(recorded: Recorded) -> None:
    """Bug guarded: sts:AssumeRole on that role name in every account in the world. The list
    form admits the member accounts only; the organisation form the accounts of one
    organisation only (aws:ResourceOrgID, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceorgid)."""
    policies = _policies(recorded)
    listed, in_org = (
        policies["controller-policy.json"],
        policies["assume-roles-in-organization.json"],
    )
    assumes = [
        n.request
        for name, n in _authorisations(recorded)
        if name == "controller-policy.json" and n.role == "assume"
    ]
    assert {r.action for r in assumes} == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    stranger = "arn:aws:iam::999999999999:role/ssm-gitops"
    for request in assumes:
        assert evaluate(listed, request).allowed
        assert not evaluate(listed, Request(request.action, (Resource(stranger),))).allowed
        (role,) = request.resources
        for org, allowed in ((ORGANIZATION, True), ("o-zzzzzzzzzz", False), (None, False)):
            keys = {"aws:ResourceOrgID": org} if org else {}
            result = evaluate(in_org, Request(request.action, (Resource(role.arn, keys=keys),)))
            assert result.allowed is allowed, (org, result.explain())


def test_trust_policy_admits_only_this_controller_under_its_own_name(
    recorded: Recorded,
) -> None:
    """Bug guarded: every controller assumed the role as session "ssm-gitops". The trust
    policy admits the controller's role only with session name and SourceIdentity
    `ssm-gitops-<owner>`, and allows sts:SetSourceIdentity."""
    trust = _policies(recorded)["account-role-trust.json"]
    assumes = [
        n.request for name, n in _authorisations(recorded) if name == "account-role-trust.json"
    ]
    assert {r.action for r in assumes} == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    for request in assumes:
        assert request.context["sts:RoleSessionName"] == (f"ssm-gitops-{OWNER}",)
        assert evaluate(trust, request).allowed, request.label
        others = [
            Request(
                request.action,
                request.resources,
                request.context,
                principal="arn:aws:iam::999999999999:role/ssm-gitops-controller",
            ),
            Request(
                request.action,
                request.resources,
                dict(request.context, **{"sts:SourceIdentity": ("ssm-gitops-team-b",)}),
                principal=CONTROLLER_ROLE,
            ),
        ]
        if request.action == "sts:AssumeRole":
            others += [
                Request(
                    request.action,
                    request.resources,
                    dict(request.context, **{"sts:RoleSessionName": ("ssm-gitops",)}),
                    principal=CONTROLLER_ROLE,
                ),
                Request(
                    request.action,
                    request.resources,
                    {"sts:RoleSessionName": request.context["sts:RoleSessionName"]},
                    principal=CONTROLLER_ROLE,
                ),
            ]
        for other in others:
            assert not evaluate(trust, other).allowed, other


def test_every_placeholder_is_explained_in_the_docs() -> None:
    """A placeholder the deploy page does not name would reach AWS as a literal string."""
    page = (ROOT / "docs" / "deploy.md").read_text()
    for name in (
        "controller-policy.json",
        "account-role-policy.json",
        "account-role-trust.json",
        "assume-roles-in-organization.json",
    ):
        for placeholder in placeholders(load(name)):
            assert f"`{placeholder}`" in page, f"{name}: {placeholder}"
