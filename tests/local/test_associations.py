"""Associations: the semantics the controller relies on (API_UpdateAssociation nulls, versions,
summaries, parameter checks against the document)."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from tests.local.helpers import create_package, error_code

PACKAGE_PARAMS = {
    "action": ["Install"],
    "installationType": ["Uninstall and reinstall"],
    "name": ["Tool"],
}
TARGETS = [{"Key": "tag:role", "Values": ["web"]}]


@pytest.fixture
def ssm(local_aws: LocalAWS) -> Any:
    return local_aws.client("ssm")


def _create(ssm: Any, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Name": "AWS-ConfigureAWSPackage",
        "Parameters": PACKAGE_PARAMS,
        "Targets": TARGETS,
        "AssociationName": "install-tool",
        "ScheduleExpression": "rate(30 minutes)",
        "MaxConcurrency": "10%",
        "MaxErrors": "1",
        "ComplianceSeverity": "HIGH",
    }
    request.update(overrides)
    description: dict[str, Any] = ssm.create_association(**request)["AssociationDescription"]
    return description


def test_create_describe_and_the_real_shapes(ssm: Any) -> None:
    created = _create(ssm)
    assert created["AssociationVersion"] == "1"
    assert created["DocumentVersion"] == "$DEFAULT"
    assert created["Overview"]["Status"] == "Pending"
    described = ssm.describe_association(AssociationId=created["AssociationId"])[
        "AssociationDescription"
    ]
    assert described["Parameters"] == PACKAGE_PARAMS
    assert described["MaxConcurrency"] == "10%"
    summary = ssm.list_associations()["Associations"][0]
    # API_AssociationSummary: no parameters, no rate control.
    assert "Parameters" not in summary and "MaxConcurrency" not in summary
    assert summary["AssociationVersion"] == "1"
    assert summary["AssociationName"] == "install-tool"


def test_update_nulls_omitted_fields_and_bumps_version(ssm: Any) -> None:
    created = _create(ssm)
    updated = ssm.update_association(
        AssociationId=created["AssociationId"], Parameters=PACKAGE_PARAMS
    )["AssociationDescription"]
    assert updated["AssociationVersion"] == "2"
    for cleared in ("AssociationName", "ScheduleExpression", "MaxConcurrency", "MaxErrors"):
        assert cleared not in updated, cleared
    assert updated["Targets"] == TARGETS and updated["Name"] == "AWS-ConfigureAWSPackage"
    versions = ssm.list_association_versions(AssociationId=created["AssociationId"])
    numbers = [v["AssociationVersion"] for v in versions["AssociationVersions"]]
    assert numbers == ["2", "1"]
    old = ssm.describe_association(AssociationId=created["AssociationId"], AssociationVersion="1")
    assert old["AssociationDescription"]["AssociationName"] == "install-tool"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_association(
            AssociationId=created["AssociationId"],
            Parameters=PACKAGE_PARAMS,
            AssociationVersion="1",
        )
    assert error_code(raised) == "InvalidAssociationVersion"


def test_parameters_are_checked_against_the_document(ssm: Any) -> None:
    for bad in (
        {"action": ["Install"]},  # name is required
        {"action": ["Reinstall"], "name": ["Tool"]},  # not an allowed value
        {"action": ["Install"], "name": ["Tool"], "colour": ["blue"]},  # not declared
        {"action": ["Install"], "name": ["bad name!"]},  # allowedPattern
        {"action": ["Install", "Uninstall"], "name": ["Tool"]},  # String takes one value
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            _create(ssm, Parameters=bad)
        assert error_code(raised) == "InvalidParameters", bad


def test_document_and_schedule_must_be_valid(ssm: Any, local_aws: LocalAWS) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        _create(ssm, Name="NoSuchDocument")
    assert error_code(raised) == "InvalidDocument"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        _create(ssm, DocumentVersion="7")
    assert error_code(raised) == "InvalidDocumentVersion"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        _create(ssm, ScheduleExpression="rate(5 minutes)")
    assert error_code(raised) == "InvalidSchedule"
    create_package(ssm, local_aws.client("s3"), "Tool")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        _create(ssm, Name="Tool")  # a Package is installed through AWS-ConfigureAWSPackage
    assert error_code(raised) == "InvalidDocument"


def test_list_filters_and_paging(ssm: Any) -> None:
    ids = [_create(ssm, AssociationName=f"assoc{i}")["AssociationId"] for i in range(5)]
    _create(
        ssm, Name="AWS-RunShellScript", Parameters={"commands": ["true"]}, AssociationName="shell"
    )
    by_name = ssm.list_associations(
        AssociationFilterList=[{"key": "AssociationName", "value": "assoc3"}]
    )["Associations"]
    assert [a["AssociationId"] for a in by_name] == [ids[3]]
    by_document = ssm.list_associations(
        AssociationFilterList=[{"key": "Name", "value": "AWS-RunShellScript"}]
    )["Associations"]
    assert [a["AssociationName"] for a in by_document] == ["shell"]
    pages = ssm.get_paginator("list_associations").paginate(PaginationConfig={"PageSize": 2})
    assert sum(len(p["Associations"]) for p in pages) == 6


def test_delete_and_missing(ssm: Any) -> None:
    created = _create(ssm)
    ssm.delete_association(AssociationId=created["AssociationId"])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_association(AssociationId=created["AssociationId"])
    assert error_code(raised) == "AssociationDoesNotExist"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.start_associations_once(AssociationIds=[created["AssociationId"]])
    assert error_code(raised) == "AssociationDoesNotExist"


def test_executions_come_from_the_fleet(ssm: Any, local_aws: LocalAWS) -> None:
    created = _create(ssm)
    association_id = created["AssociationId"]
    assert (
        ssm.describe_association_executions(AssociationId=association_id)["AssociationExecutions"]
        == []
    )
    execution = local_aws.ssm.start_association_execution(
        "123456789012", "us-east-1", association_id
    )
    for instance, status in (("i-0000000000000000a", "Success"), ("i-0000000000000000b", "Failed")):
        local_aws.ssm.record_association_result(
            "123456789012", "us-east-1", association_id, execution, instance, status, output="done"
        )
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    assert described["Overview"]["Status"] == "Failed"
    assert described["Overview"]["AssociationStatusAggregatedCount"] == {"Success": 1, "Failed": 1}
    executions = ssm.describe_association_executions(AssociationId=association_id)[
        "AssociationExecutions"
    ]
    assert executions[0]["ExecutionId"] == execution
    assert executions[0]["Status"] == "Failed"
    assert executions[0]["ResourceCountByStatus"] == "{Failed=1, Success=1}"
    targets = ssm.describe_association_execution_targets(
        AssociationId=association_id, ExecutionId=execution
    )["AssociationExecutionTargets"]
    assert [(t["ResourceId"], t["Status"]) for t in targets] == [
        ("i-0000000000000000a", "Success"),
        ("i-0000000000000000b", "Failed"),
    ]
    status = ssm.describe_instance_associations_status(InstanceId="i-0000000000000000a")
    assert status["InstanceAssociationStatusInfos"][0]["Status"] == "Success"
