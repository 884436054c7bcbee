"""The fleet on the real local endpoint: packages created and rolled out with boto3, results
read back through the real SSM APIs, software really installed in the instance roots."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.local.fleet import Fleet, InstanceSpec, start_fleet
from controller.local.fleet.schedule import ManualClock, SystemClock
from controller.local.fleet.state import load_state

from .conftest import make_zip, needs_bwrap

pytestmark = needs_bwrap

PACKAGE = "acme-agent"
BUCKET = "fleet-packages"
SPECS = (
    InstanceSpec("amazon", "2023", "x86_64", {"env": "prod", "ring": "0"}),
    InstanceSpec("ubuntu", "22.04", "x86_64", {"env": "prod", "ring": "1"}),
    InstanceSpec("redhat", "9.4", "x86_64", {"env": "prod", "ring": "2"}),
    InstanceSpec("amazon", "2", "arm64", {"env": "staging", "ring": "0"}),
)
PROD = {"Key": "tag:env", "Values": ["prod"]}


def scripts(version: str, *, fail_install: bool = False) -> dict[str, str]:
    log = f'echo "$BWS_ACTION_NAME {version}" >> /opt/acme/log'
    return {
        "install.sh": f'mkdir -p /opt/acme; {log}; echo "installing {version} on '
        f'$BWS_PLATFORM_NAME"; touch /root/escape 2>/dev/null; '
        + (
            "echo 'cannot install here' >&2; exit 1"
            if fail_install
            else f"echo {version} > /opt/acme/version"
        ),
        "uninstall.sh": f"{log}; rm -f /opt/acme/version",
        "update.sh": f"{log}; echo {version} > /opt/acme/version",
        "validate.sh": f"{log}; grep -qx {version} /opt/acme/version",
    }


def package_files(version: str, failing_platform: str = "") -> tuple[str, dict[str, bytes]]:
    """The manifest and zips of one version: one zip per Linux platform."""
    zips: dict[str, bytes] = {}
    packages: dict[str, Any] = {}
    for platform, key in (("amazon", "_any"), ("ubuntu", "22.*"), ("redhat", "9.*")):
        name = f"{PACKAGE}-{version}-{platform}.zip"
        zips[name] = make_zip(scripts(version, fail_install=platform == failing_platform))
        packages[platform] = {key: {"_any": {"file": name}}}
    manifest = {
        "schemaVersion": "2.0",
        "version": version,
        "packages": packages,
        "files": {
            n: {"checksums": {"sha256": hashlib.sha256(d).hexdigest()}} for n, d in zips.items()
        },
    }
    return json.dumps(manifest), zips


def wait_active(ssm: Any, version: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = ssm.describe_document(Name=PACKAGE, DocumentVersion=version)["Document"]["Status"]
        if status == "Active":
            return
        time.sleep(0.02)
    raise AssertionError(f"document version {version} is still {status}")


def publish(
    ssm: Any, s3: Any, version: str, *, first: bool = False, failing_platform: str = ""
) -> str:
    """Upload a version's zips and create (or add) it; returns its document version."""
    manifest, zips = package_files(version, failing_platform)
    if first:
        s3.create_bucket(Bucket=BUCKET)
    for name, data in zips.items():
        s3.put_object(Bucket=BUCKET, Key=f"{version}/{name}", Body=data)
    attachments = [{"Key": "SourceUrl", "Values": [f"s3://{BUCKET}/{version}"]}]
    if first:
        described = ssm.create_document(
            Name=PACKAGE,
            Content=manifest,
            DocumentType="Package",
            VersionName=version,
            Attachments=attachments,
        )["DocumentDescription"]
    else:
        described = ssm.update_document(
            Name=PACKAGE,
            Content=manifest,
            VersionName=version,
            Attachments=attachments,
            DocumentVersion="$LATEST",
        )["DocumentDescription"]
    wait_active(ssm, described["DocumentVersion"])
    return str(described["DocumentVersion"])


def associate(
    ssm: Any, *, version: str = "", targets: list[dict[str, Any]] | None = None, **extra: Any
) -> str:
    parameters = {"action": ["Install"], "name": [PACKAGE], "version": [version]}
    parameters.update(extra.pop("parameters", {}))
    response = ssm.create_association(
        Name="AWS-ConfigureAWSPackage", Parameters=parameters, Targets=targets or [PROD], **extra
    )
    return str(response["AssociationDescription"]["AssociationId"])


@pytest.fixture
def fleet(local_aws: Any, tmp_path: Path) -> Iterator[Fleet]:
    running = start_fleet(
        local_aws, SPECS, tmp_path / "fleet", clock=ManualClock(), tick_seconds=None
    )
    yield running
    running.stop()


def by_platform(fleet: Fleet) -> dict[tuple[str, str], str]:
    return {(i.spec.platform, i.spec.version): i.instance_id for i in fleet.instances}


def file_in(fleet: Fleet, instance_id: str, path: str) -> str:
    root = next(i.root for i in fleet.instances if i.instance_id == instance_id)
    target = root / path
    return target.read_text() if target.exists() else ""


def statuses(ssm: Any, association_id: str) -> Mapping[str, str]:
    executions = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    latest = max(executions, key=lambda e: e["CreatedTime"])
    targets = ssm.describe_association_execution_targets(
        AssociationId=association_id, ExecutionId=latest["ExecutionId"]
    )["AssociationExecutionTargets"]
    return {t["ResourceId"]: t["Status"] for t in targets}


def test_instances_are_ec2_and_managed_instances(fleet: Fleet, local_aws: Any) -> None:
    ec2 = local_aws.client("ec2")
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:env", "Values": ["prod"]}])[
        "Reservations"
    ]
    prod = {i["InstanceId"] for r in reservations for i in r["Instances"]}
    ids = by_platform(fleet)
    assert prod == {ids[("amazon", "2023")], ids[("ubuntu", "22.04")], ids[("redhat", "9.4")]}
    info = local_aws.client("ssm").describe_instance_information()["InstanceInformationList"]
    listed = {item["InstanceId"]: item for item in info}
    ubuntu = listed[ids[("ubuntu", "22.04")]]
    assert (
        ubuntu["PlatformType"],
        ubuntu["PlatformName"],
        ubuntu["PlatformVersion"],
        ubuntu["PingStatus"],
    ) == ("Linux", "Ubuntu", "22.04", "Online")


def test_a_package_converges_on_the_targeted_instances(
    fleet: Fleet, local_aws: Any, tmp_path: Path
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    association_id = associate(ssm)
    assert fleet.wait_idle(60)

    ids = by_platform(fleet)
    staging = ids[("amazon", "2")]
    for instance_id, packages in fleet.installed().items():
        if instance_id == staging:
            assert packages == {}
            continue
        assert packages == {PACKAGE: "1.0"}
        assert file_in(fleet, instance_id, "opt/acme/version") == "1.0\n"
        state = load_state(fleet.work_dir / instance_id, PACKAGE)
        assert state is not None and state.last_installed_version == "1.0"
    # nothing outside the fleet's work dir: not the host's /opt, not /root
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet"]
    assert not Path("/opt/acme").exists() and not Path("/root/escape").exists()

    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview["Status"] == "Success"
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 3}
    assert set(statuses(ssm, association_id).values()) == {"Success"}
    per_instance = ssm.describe_instance_associations_status(InstanceId=ids[("ubuntu", "22.04")])[
        "InstanceAssociationStatusInfos"
    ]
    assert [s["Status"] for s in per_instance] == ["Success"]

    # Running it again only validates: nothing is reinstalled.
    ssm.start_associations_once(AssociationIds=[association_id])
    assert fleet.wait_idle(60)
    log = file_in(fleet, ids[("redhat", "9.4")], "opt/acme/log").splitlines()
    assert log == ["install 1.0", "validate 1.0", "validate 1.0"]


def test_failing_install_rolls_back_and_max_errors_stops_the_rollout(
    fleet: Fleet, local_aws: Any
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    associate(ssm, version="1.0", targets=[{"Key": "InstanceIds", "Values": ["*"]}])
    assert fleet.wait_idle(60)
    publish(ssm, s3, "2.0", failing_platform="ubuntu")
    association_id = associate(
        ssm,
        version="2.0",
        targets=[{"Key": "InstanceIds", "Values": ["*"]}],
        MaxConcurrency="1",
        MaxErrors="0",
    )
    assert fleet.wait_idle(60)

    # instances run in the fleet's order: amazon 2023, ubuntu (fails), redhat, amazon 2
    order = [i.instance_id for i in fleet.instances]
    failing = by_platform(fleet)[("ubuntu", "22.04")]
    k = order.index(failing)
    assert k == 1
    got = statuses(ssm, association_id)
    assert [got[i] for i in order] == ["Success", "Failed", "Skipped", "Skipped"]
    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview["Status"] == "Failed"
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 1, "Failed": 1, "Skipped": 2}
    installed = fleet.installed()
    for instance_id in order[:k]:
        assert installed[instance_id] == {PACKAGE: "2.0"}
    for instance_id in order[k:]:  # rolled back, or never reached
        assert installed[instance_id] == {PACKAGE: "1.0"}
    assert file_in(fleet, failing, "opt/acme/log").splitlines()[-5:] == [
        "uninstall 1.0",
        "install 2.0",
        "uninstall 2.0",
        "install 1.0",
        "validate 1.0",
    ]

    executions = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    targets = ssm.describe_association_execution_targets(
        AssociationId=association_id, ExecutionId=executions[0]["ExecutionId"]
    )["AssociationExecutionTargets"]
    failed = next(t for t in targets if t["ResourceId"] == failing)
    assert failed["Status"] == "Failed"
    info = ssm.describe_instance_associations_status(InstanceId=failing)[
        "InstanceAssociationStatusInfos"
    ]
    output = json.dumps(info, default=str)
    assert "successfully rolled back to acme-agent 1.0" in output
    assert "cannot install here" in output
    for skipped in order[k + 1 :]:  # why the rest never started, counted
        info = ssm.describe_instance_associations_status(InstanceId=skipped)[
            "InstanceAssociationStatusInfos"
        ]
        summary = next(i for i in info if i["AssociationId"] == association_id)
        assert summary["Status"] == "Skipped"
        assert "MaxErrors (0) was exceeded with 1 errors" in summary["ExecutionSummary"]


def test_default_version_change_reinstalls_where_associations_follow_it(
    fleet: Fleet, local_aws: Any
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    associate(ssm)  # prod, follows the default
    pinned = associate(ssm, version="1.0", targets=[{"Key": "tag:env", "Values": ["staging"]}])
    at_cron_only = associate(
        ssm,
        targets=[{"Key": "tag:env", "Values": ["staging"]}],
        ScheduleExpression="cron(0 3 ? * SUN *)",
        ApplyOnlyAtCronInterval=True,
    )
    assert fleet.wait_idle(60)
    new = publish(ssm, s3, "2.0")
    assert fleet.wait_idle(60)
    assert set(map(str, (v.get(PACKAGE) for v in fleet.installed().values()))) == {"1.0"}

    ssm.update_document_default_version(Name=PACKAGE, DocumentVersion=new)
    assert fleet.wait_idle(60)
    staging = by_platform(fleet)[("amazon", "2")]
    for instance_id, packages in fleet.installed().items():
        assert packages == {PACKAGE: "1.0" if instance_id == staging else "2.0"}
    assert (
        len(ssm.describe_association_executions(AssociationId=pinned)["AssociationExecutions"]) == 1
    )
    executions = ssm.describe_association_executions(AssociationId=at_cron_only)
    assert executions["AssociationExecutions"] == []


def test_in_place_update_runs_update_and_no_uninstall(fleet: Fleet, local_aws: Any) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    parameters = {"installationType": ["In-place update"]}
    association_id = associate(ssm, version="1.0", parameters=parameters)
    assert fleet.wait_idle(60)
    publish(ssm, s3, "2.0")
    ssm.update_association(
        AssociationId=association_id,
        Name="AWS-ConfigureAWSPackage",
        Targets=[PROD],
        Parameters={
            "action": ["Install"],
            "name": [PACKAGE],
            "version": ["2.0"],
            "installationType": ["In-place update"],
        },
    )
    assert fleet.wait_idle(60)
    amazon = by_platform(fleet)[("amazon", "2023")]
    assert file_in(fleet, amazon, "opt/acme/log").splitlines() == [
        "install 1.0",
        "validate 1.0",
        "update 2.0",
        "validate 2.0",
    ]
    assert fleet.installed()[amazon] == {PACKAGE: "2.0"}


def test_schedules_run_on_the_fleet_clock_and_apply_only_at_cron_interval_waits(
    fleet: Fleet, local_aws: Any
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    association_id = associate(
        ssm, ScheduleExpression="rate(30 minutes)", ApplyOnlyAtCronInterval=True
    )
    assert fleet.wait_idle(60)
    assert (
        ssm.describe_association_executions(AssociationId=association_id)["AssociationExecutions"]
        == []
    )
    assert fleet.tick() == []
    assert isinstance(fleet.clock, ManualClock)
    fleet.clock.advance(timedelta(minutes=31))
    assert fleet.tick() == [association_id]
    assert fleet.wait_idle(60)
    assert set(statuses(ssm, association_id).values()) == {"Success"}


def test_send_command_installs_and_reports_output(fleet: Fleet, local_aws: Any) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    ubuntu = by_platform(fleet)[("ubuntu", "22.04")]
    command = ssm.send_command(
        DocumentName="AWS-ConfigureAWSPackage",
        InstanceIds=[ubuntu],
        Parameters={"action": ["Install"], "name": [PACKAGE]},
    )["Command"]
    assert fleet.wait_idle(60)
    invocation = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=ubuntu)
    assert invocation["Status"] == "Success"
    assert "installing 1.0 on ubuntu" in invocation["StandardOutputContent"]
    assert "Successfully installed acme-agent 1.0" in invocation["StandardOutputContent"]
    listed = ssm.list_command_invocations(CommandId=command["CommandId"])["CommandInvocations"]
    assert [i["Status"] for i in listed] == ["Success"]
    assert fleet.installed()[ubuntu] == {PACKAGE: "1.0"}


def test_associations_made_before_the_fleet_starts_are_applied(
    local_aws: Any, tmp_path: Path
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    associate(ssm)
    with start_fleet(local_aws, SPECS[:2], tmp_path / "fleet", tick_seconds=None) as fleet:
        assert fleet.wait_idle(60)
        assert list(fleet.installed().values()) == [{PACKAGE: "1.0"}] * 2


def test_uninstall_by_command_and_windows_says_it_cannot_run_scripts(
    local_aws: Any, tmp_path: Path
) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    specs = (SPECS[0], InstanceSpec("windows", "10.0.20348", "x86_64", {"env": "prod"}))
    with start_fleet(local_aws, specs, tmp_path / "fleet", tick_seconds=None) as fleet:
        linux, windows = (i.instance_id for i in fleet.instances)
        associate(ssm)
        assert fleet.wait_idle(60)
        assert fleet.installed() == {linux: {PACKAGE: "1.0"}, windows: {}}
        # the manifest has no Windows entry: the agent's own error
        summary = ssm.describe_instance_associations_status(InstanceId=windows)[
            "InstanceAssociationStatusInfos"
        ][0]
        assert summary["Status"] == "Failed"
        assert (
            "no manifest found for platform: windows, version 10.0.20348"
            in summary["ExecutionSummary"]
        )

        command = ssm.send_command(
            DocumentName="AWS-ConfigureAWSPackage",
            Targets=[PROD],
            Parameters={"action": ["Uninstall"], "name": [PACKAGE]},
        )["Command"]
        assert fleet.wait_idle(60)
        invocations = {
            i["InstanceId"]: i
            for i in ssm.list_command_invocations(CommandId=command["CommandId"], Details=True)[
                "CommandInvocations"
            ]
        }
        assert invocations[linux]["Status"] == "Success"
        assert invocations[windows]["Status"] == "Success"  # "is not installed"
        assert fleet.installed()[linux] == {}
        assert file_in(fleet, linux, "opt/acme/log").splitlines()[-1] == "uninstall 1.0"


def test_windows_unpacks_but_cannot_run_powershell(local_aws: Any, tmp_path: Path) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    zips = {"win.zip": make_zip({"install.ps1": "Write-Output hi"})}
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="w/win.zip", Body=zips["win.zip"])
    manifest = {
        "schemaVersion": "2.0",
        "version": "1.0",
        "packages": {"windows": {"_any": {"_any": {"file": "win.zip"}}}},
        "files": {
            "win.zip": {"checksums": {"sha256": hashlib.sha256(zips["win.zip"]).hexdigest()}}
        },
    }
    ssm.create_document(
        Name=PACKAGE,
        Content=json.dumps(manifest),
        DocumentType="Package",
        VersionName="1.0",
        Attachments=[{"Key": "SourceUrl", "Values": [f"s3://{BUCKET}/w"]}],
    )
    wait_active(ssm, "1")
    specs = (InstanceSpec("windows", "10.0.20348", "x86_64", {"env": "prod"}),)
    with start_fleet(local_aws, specs, tmp_path / "fleet", tick_seconds=None) as fleet:
        (windows,) = (i.instance_id for i in fleet.instances)
        command = ssm.send_command(
            DocumentName="AWS-ConfigureAWSPackage",
            InstanceIds=[windows],
            Parameters={"action": ["Install"], "name": [PACKAGE]},
        )["Command"]
        assert fleet.wait_idle(60)
        invocation = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=windows)
        assert invocation["Status"] == "Failed"
        assert "cannot run PowerShell scripts" in invocation["StandardErrorContent"]
        unpacked = fleet.work_dir / windows / "var/lib/amazon/ssm/packages" / PACKAGE / "1.0"
        assert (unpacked / "install.ps1").is_file()


def test_the_background_scheduler_follows_a_sped_up_clock(local_aws: Any, tmp_path: Path) -> None:
    ssm, s3 = local_aws.client("ssm"), local_aws.client("s3")
    publish(ssm, s3, "1.0", first=True)
    clock = SystemClock(speed=3600)  # an hour per second: rate(30 minutes) every half second
    with start_fleet(
        local_aws, SPECS[:1], tmp_path / "fleet", clock=clock, tick_seconds=0.1
    ) as fleet:
        association_id = associate(
            ssm, ScheduleExpression="rate(30 minutes)", ApplyOnlyAtCronInterval=True
        )
        deadline = time.monotonic() + 20
        runs: list[Any] = []
        while time.monotonic() < deadline and len(runs) < 2:
            time.sleep(0.1)
            runs = ssm.describe_association_executions(AssociationId=association_id)[
                "AssociationExecutions"
            ]
        assert len(runs) >= 2
        assert fleet.wait_idle(60)
        assert list(fleet.installed().values()) == [{PACKAGE: "1.0"}]


def test_a_package_shared_from_another_account_installs_by_its_arn(
    fleet: Fleet, local_aws: Any
) -> None:
    publisher = "444455556666"
    creds = local_aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{publisher}:role/publisher", RoleSessionName="publisher"
    )["Credentials"]
    keys = {
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "session_token": creds["SessionToken"],
    }
    their_ssm, their_s3 = local_aws.client("ssm", **keys), local_aws.client("s3", **keys)
    publish(their_ssm, their_s3, "1.0", first=True)
    their_ssm.modify_document_permission(
        Name=PACKAGE, PermissionType="Share", AccountIdsToAdd=["123456789012"]
    )
    arn = f"arn:aws:ssm:us-east-1:{publisher}:document/{PACKAGE}"
    ssm = local_aws.client("ssm")
    ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        Parameters={"action": ["Install"], "name": [arn]},
        Targets=[PROD],
    )
    # a bare name does not find a package shared from another account
    bare = ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        Parameters={"action": ["Install"], "name": [PACKAGE]},
        Targets=[{"Key": "tag:env", "Values": ["staging"]}],
    )["AssociationDescription"]["AssociationId"]
    assert fleet.wait_idle(60)
    amazon = by_platform(fleet)[("amazon", "2023")]
    assert fleet.installed()[amazon] == {PACKAGE: "1.0"}, ssm.describe_instance_associations_status(
        InstanceId=amazon
    )
    assert fleet.installed()[by_platform(fleet)[("amazon", "2")]] == {}
    assert set(statuses(ssm, bare).values()) == {"Failed"}
