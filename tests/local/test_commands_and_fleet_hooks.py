"""Run Command with AWS-ConfigureAWSPackage, and the fleet's extension point (hooks.py)."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from controller.local import LocalAWS, hooks
from tests.local.helpers import create_package, error_code, manifest, upload, wait_status

ACCOUNT, REGION = "123456789012", "us-east-1"
PARAMS = {"action": ["Install"], "installationType": ["Uninstall and reinstall"], "name": ["Tool"]}


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    def association_changed(self, event: hooks.AssociationChanged) -> None:
        self.events.append(event)

    def default_version_changed(self, event: hooks.DefaultVersionChanged) -> None:
        self.events.append(event)

    def associations_started_once(self, event: hooks.AssociationsStartedOnce) -> None:
        self.events.append(event)

    def command_sent(self, event: hooks.CommandSent) -> None:
        self.events.append(event)


@pytest.fixture
def recorder(local_aws: LocalAWS) -> Any:
    recorder = Recorder()
    local_aws.ssm.set_listener(recorder)
    yield recorder
    local_aws.ssm.set_listener(None)


def _register(local_aws: LocalAWS, instance_id: str, **tags: str) -> None:
    local_aws.ssm.register_instance(
        ACCOUNT, REGION, hooks.ManagedInstance(instance_id=instance_id, tags=dict(tags))
    )


def test_send_command_install_one_time_and_results(local_aws: LocalAWS, recorder: Recorder) -> None:
    ssm = local_aws.client("ssm")
    _register(local_aws, "i-00000000000000001", role="web")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.send_command(
            DocumentName="AWS-ConfigureAWSPackage",
            InstanceIds=["i-0ffffffffffffffff"],
            Parameters=PARAMS,
        )
    assert error_code(raised) == "InvalidInstanceId"
    command = ssm.send_command(
        DocumentName="AWS-ConfigureAWSPackage",
        Targets=[{"Key": "tag:role", "Values": ["web"]}],
        Parameters=PARAMS,
    )["Command"]
    assert command["Status"] == "Pending" and command["TargetCount"] == 1
    sent = [e for e in recorder.events if isinstance(e, hooks.CommandSent)]
    assert sent[0].instance_ids == ("i-00000000000000001",) and sent[0].parameters == PARAMS
    command_id = command["CommandId"]
    pending = ssm.get_command_invocation(CommandId=command_id, InstanceId="i-00000000000000001")
    assert pending["Status"] == "Pending"
    local_aws.ssm.record_command_result(
        ACCOUNT,
        REGION,
        command_id,
        "i-00000000000000001",
        "Success",
        output="Successfully installed Tool 1.0.0",
    )
    done = ssm.get_command_invocation(CommandId=command_id, InstanceId="i-00000000000000001")
    assert done["Status"] == "Success" and "Successfully installed" in done["StandardOutputContent"]
    listed = ssm.list_commands(CommandId=command_id)["Commands"][0]
    assert listed["Status"] == "Success" and listed["CompletedCount"] == 1
    invocations = ssm.list_command_invocations(CommandId=command_id, Details=True)
    assert invocations["CommandInvocations"][0]["CommandPlugins"][0]["Output"].startswith("Success")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.get_command_invocation(CommandId=command_id, InstanceId="i-00000000000000002")
    assert error_code(raised) == "InvocationDoesNotExist"


def test_send_command_checks_parameters(local_aws: LocalAWS) -> None:
    _register(local_aws, "i-00000000000000001")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        local_aws.client("ssm").send_command(
            DocumentName="AWS-ConfigureAWSPackage",
            InstanceIds=["i-00000000000000001"],
            Parameters={"action": ["Install"]},
        )
    assert error_code(raised) == "InvalidParameters"


def test_listener_hears_association_and_default_version_changes(
    local_aws: LocalAWS, recorder: Recorder
) -> None:
    ssm = local_aws.client("ssm")
    create_package(ssm, local_aws.client("s3"), "Tool", "1.0.0")
    files = {"tool-2.zip": b"two"}
    upload(local_aws.client("s3"), "packages-bucket", "Tool/2.0.0", files)
    ssm.update_document(
        Name="Tool",
        Content=manifest("2.0.0", files),
        VersionName="2.0.0",
        DocumentVersion="$LATEST",
        Attachments=[{"Key": "SourceUrl", "Values": ["s3://packages-bucket/Tool/2.0.0"]}],
    )
    wait_status(ssm, "Tool", "2")
    created = ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        Parameters=PARAMS,
        Targets=[{"Key": "InstanceIds", "Values": ["i-00000000000000001"]}],
    )["AssociationDescription"]
    ssm.update_association(
        AssociationId=created["AssociationId"], Parameters=PARAMS, Targets=created["Targets"]
    )
    ssm.start_associations_once(AssociationIds=[created["AssociationId"]])
    ssm.update_document_default_version(Name="Tool", DocumentVersion="2")
    ssm.delete_association(AssociationId=created["AssociationId"])
    kinds = [
        e.kind if isinstance(e, hooks.AssociationChanged) else type(e).__name__
        for e in recorder.events
    ]
    assert kinds == [
        "created",
        "updated",
        "AssociationsStartedOnce",
        "DefaultVersionChanged",
        "deleted",
    ]
    first = recorder.events[0]
    assert isinstance(first, hooks.AssociationChanged)
    assert first.association.parameters == PARAMS
    assert first.association.targets == (hooks.Target("InstanceIds", ("i-00000000000000001",)),)
    default = recorder.events[3]
    assert isinstance(default, hooks.DefaultVersionChanged)
    assert (default.document_name, default.default_version, default.default_version_name) == (
        "Tool",
        "2",
        "2.0.0",
    )
    resolved = local_aws.ssm.resolve_package(ACCOUNT, REGION, "Tool")
    assert resolved.version_name == "2.0.0" and [f.name for f in resolved.files] == ["tool-2.zip"]
    assert local_aws.ssm.resolve_package(ACCOUNT, REGION, "Tool", "1.0.0").document_version == "1"


def test_describe_instance_information_lists_registered_instances(local_aws: LocalAWS) -> None:
    _register(local_aws, "i-00000000000000001", role="web")
    _register(local_aws, "i-00000000000000002", role="db")
    ssm = local_aws.client("ssm")
    listed = ssm.describe_instance_information()["InstanceInformationList"]
    assert [i["InstanceId"] for i in listed] == ["i-00000000000000001", "i-00000000000000002"]
    assert listed[0]["PingStatus"] == "Online"
    web = ssm.describe_instance_information(Filters=[{"Key": "tag:role", "Values": ["web"]}])
    assert [i["InstanceId"] for i in web["InstanceInformationList"]] == ["i-00000000000000001"]


def test_a_failing_listener_does_not_break_the_request(local_aws: LocalAWS) -> None:
    class Broken(Recorder):
        def association_changed(self, event: hooks.AssociationChanged) -> None:
            raise RuntimeError("fleet bug")

    local_aws.ssm.set_listener(Broken())
    try:
        created = local_aws.client("ssm").create_association(
            Name="AWS-RunShellScript",
            Parameters={"commands": ["true"]},
            Targets=[{"Key": "InstanceIds", "Values": ["i-00000000000000001"]}],
        )
        assert created["AssociationDescription"]["AssociationVersion"] == "1"
    finally:
        local_aws.ssm.set_listener(None)
