"""Live association descriptions normalise to what the repository declares (no false drift)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.aws.associations import request_fields, spec_from_description
from controller.reconcile.desired import association_spec
from controller.repository import Association, Output, Target


def repo_association(**overrides: Any) -> Association:
    """A repository Association as the loader makes it (built without the YAML checks, so a
    case can hold what only a hand-built model would, such as a schedule with spaces)."""
    fields: dict[str, Any] = {
        "name": "agent-prod",
        "package": "agent",
        "version": None,
        "action": "Install",
        "additional_arguments": {},
        "targets": (Target(key="tag:env", values=("prod", "qa")),),
        "schedule": "rate(1 day)",
        "max_concurrency": None,
        "max_errors": None,
        "compliance_severity": None,
        "apply_only_at_cron_interval": False,
        "output": None,
        "annotations": {},
    }
    fields.update(overrides)
    return Association.model_construct(**fields)


BASE_LIVE: dict[str, Any] = {
    "AssociationId": "a-1",
    "AssociationVersion": "3",
    "Name": "AWS-ConfigureAWSPackage",
    "Parameters": {"action": ["Install"], "name": ["agent"]},
    "Targets": [{"Key": "tag:env", "Values": ["prod", "qa"]}],
    "ScheduleExpression": "rate(1 day)",
    "Date": "2026-01-01",
}

EQUIVALENT = [
    pytest.param({}, {}, id="identical"),
    pytest.param(
        {}, {"Targets": [{"Key": "tag:env", "Values": ["qa", "prod"]}]}, id="target value order"
    ),
    pytest.param({}, {"ComplianceSeverity": "UNSPECIFIED"}, id="AWS default severity"),
    pytest.param(
        {},
        {"ApplyOnlyAtCronInterval": False, "MaxConcurrency": ""},
        id="AWS defaults for rate control",
    ),
    pytest.param(
        {},
        {
            "Parameters": {
                "action": ["Install"],
                "name": ["agent"],
                "installationType": ["Uninstall and reinstall"],
                "version": [""],
                "additionalArguments": ["{}"],
            }
        },
        id="document parameter defaults",
    ),
    pytest.param(
        {"additional_arguments": {"SSM_B": "2", "SSM_A": "1"}},
        {
            "Parameters": {
                "action": ["Install"],
                "name": ["agent"],
                "additionalArguments": ['{ "SSM_A": "1",\n "SSM_B": "2" }'],
            }
        },
        id="additionalArguments whitespace and key order",
    ),
    pytest.param({"schedule": " rate(1 day) "}, {}, id="schedule whitespace"),
    pytest.param(
        {"output": Output(s3Bucket="logs", s3KeyPrefix="ssm/")},
        {
            "OutputLocation": {
                "S3Location": {
                    "OutputS3BucketName": "logs",
                    "OutputS3KeyPrefix": "ssm/",
                    "OutputS3Region": "us-east-1",
                }
            }
        },
        id="output region added by AWS",
    ),
]


@pytest.mark.parametrize(("repo", "live"), EQUIVALENT)
def test_live_equals_repository(repo: dict[str, Any], live: dict[str, Any]) -> None:
    assert spec_from_description(BASE_LIVE | live, "us-east-1") == association_spec(
        repo_association(**repo), "agent", "us-east-1"
    )


DIFFERENT = [
    pytest.param({"schedule": "rate(2 days)"}, id="schedule"),
    pytest.param({"targets": (Target(key="tag:env", values=("prod",)),)}, id="targets"),
    pytest.param({"version": "1.2"}, id="pinned version"),
    pytest.param({"max_concurrency": "10%"}, id="rate control"),
    pytest.param({"compliance_severity": "HIGH"}, id="severity"),
    pytest.param({"action": "Uninstall"}, id="action"),
    pytest.param(
        {"output": Output(s3Bucket="logs", s3KeyPrefix="", s3Region="eu-west-1")},
        id="output bucket region",
    ),
]


@pytest.mark.parametrize("repo", DIFFERENT)
def test_real_changes_are_seen(repo: dict[str, Any]) -> None:
    assert spec_from_description(BASE_LIVE, "us-east-1") != association_spec(
        repo_association(**repo), "agent", "us-east-1"
    )


def test_request_sends_every_field_and_round_trips() -> None:
    """UpdateAssociation nulls omitted fields: the request carries all of ours."""
    spec = association_spec(
        repo_association(
            max_concurrency="10%",
            max_errors="1",
            compliance_severity="HIGH",
            apply_only_at_cron_interval=True,
            version="1.2",
            output=Output(s3Bucket="logs", s3KeyPrefix="p/"),
            additional_arguments={"SSM_X": "y"},
        ),
        "agent",
        "us-east-1",
    )
    request = request_fields("agent-prod", spec)
    assert set(request) >= {
        "Name",
        "AssociationName",
        "Parameters",
        "Targets",
        "ScheduleExpression",
        "MaxConcurrency",
        "MaxErrors",
        "ComplianceSeverity",
        "ApplyOnlyAtCronInterval",
        "OutputLocation",
    }
    assert spec_from_description(request, "eu-west-1") == spec


def test_output_region_defaults_to_the_association_region() -> None:
    live = BASE_LIVE | {
        "OutputLocation": {"S3Location": {"OutputS3BucketName": "logs", "OutputS3KeyPrefix": ""}}
    }
    in_region = association_spec(
        repo_association(output=Output(s3Bucket="logs", s3KeyPrefix="")),
        "agent",
        "eu-west-1",
    )
    elsewhere = association_spec(
        repo_association(output=Output(s3Bucket="logs", s3KeyPrefix="", s3Region="us-east-1")),
        "agent",
        "eu-west-1",
    )
    assert spec_from_description(live, "eu-west-1") == in_region
    assert spec_from_description(live, "eu-west-1") != elsewhere
