"""State Manager associations of AWS-ConfigureAWSPackage: list, describe, create, update, delete.

Stage: observe and apply. Also the two translations between AWS's shape and our normalised
`AssociationSpec`: `spec_from_description` (live -> normalised, so that a fresh apply never
shows drift) and `request_fields` (normalised -> the full request).

AWS facts (https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
- UpdateAssociation nulls every optional field it is not given: `request_fields` always
  returns all of them (API_UpdateAssociation.html).
- ListAssociations summaries lack parameters and rate control, but carry AssociationVersion,
  which changes on every update: our cache key (API_Association.html).
- Association names are not unique, and CreateAssociation is not idempotent: we look up
  name + owner tag before creating, and never let botocore retry a create
  (API_CreateAssociation.html: no client token; AssociationName is optional and free).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.aws.errors import call
from controller.aws.session import AwsClients
from controller.model.configure_package import DEFAULT_INSTALLATION_TYPE
from controller.model.state import OWNER_TAG, SOURCE_TAG, AssociationSpec

DOCUMENT = "AWS-ConfigureAWSPackage"
# AWS-ConfigureAWSPackage's parameter defaults (the document's own Parameters section, as
# DescribeDocument returns them in DefaultValue):
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentParameter.html
_PARAMETER_DEFAULTS = {"installationType": DEFAULT_INSTALLATION_TYPE, "additionalArguments": "{}"}
# AWS reports ComplianceSeverity UNSPECIFIED when none was given
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationDescription.html).
_SEVERITY_DEFAULT = "UNSPECIFIED"


@dataclass(frozen=True)
class AssociationSummary:
    """One row of ListAssociations."""

    association_id: str
    name: str
    version: str
    overview: Mapping[str, Any] = field(default_factory=dict)


def list_all(clients: AwsClients) -> Iterator[AssociationSummary]:
    """Every AWS-ConfigureAWSPackage association, 50 a page (owners decided by tags later)."""
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "AssociationFilterList": [{"key": "Name", "value": DOCUMENT}],
            "MaxResults": 50,
        }
        if token:
            request["NextToken"] = token
        page = call("ListAssociations", clients.ssm.list_associations, **request)
        for item in page.get("Associations", []):
            yield AssociationSummary(
                str(item["AssociationId"]),
                str(item.get("AssociationName", "")),
                str(item.get("AssociationVersion", "")),
                dict(item.get("Overview", {})),
            )
        token = page.get("NextToken")
        if not token:
            return


def find_by_name(clients: AwsClients, name: str) -> list[AssociationSummary]:
    """Associations with this AssociationName (any owner)."""
    found: list[AssociationSummary] = []
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "AssociationFilterList": [{"key": "AssociationName", "value": name}],
            "MaxResults": 50,
        }
        if token:
            request["NextToken"] = token
        page = call("ListAssociations", clients.ssm.list_associations, **request)
        for item in page.get("Associations", []):
            if item.get("AssociationName") == name:
                found.append(
                    AssociationSummary(
                        str(item["AssociationId"]),
                        name,
                        str(item.get("AssociationVersion", "")),
                        dict(item.get("Overview", {})),
                    )
                )
        token = page.get("NextToken")
        if not token:
            return found


def describe(clients: AwsClients, association_id: str) -> dict[str, Any]:
    response = call(
        "DescribeAssociation", clients.ssm.describe_association, AssociationId=association_id
    )
    return dict(response["AssociationDescription"])


def _canonical_arguments(text: str) -> str:
    """additionalArguments is a JSON object in a string: compare it parsed, not as text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip()
    if not value:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def normalise_parameters(parameters: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Single values, defaults dropped, additionalArguments canonical, sorted."""
    out: dict[str, str] = {}
    for key, values in parameters.items():
        if isinstance(values, list | tuple):
            value = ",".join(str(v) for v in values)
        else:
            value = str(values)
        value = value.strip()
        if key == "additionalArguments":
            value = _canonical_arguments(value)
        if value and value != _PARAMETER_DEFAULTS.get(key):
            out[key] = value
    return tuple(sorted(out.items()))


def normalise_targets(targets: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        sorted(
            (str(t["Key"]).strip(), tuple(sorted(str(v).strip() for v in t.get("Values", []))))
            for t in targets or ()
        )
    )


def spec_from_description(description: Mapping[str, Any], region: str) -> AssociationSpec:
    """Live -> normalised, dropping what AWS adds (ids, dates, defaults, region)."""
    output = (description.get("OutputLocation") or {}).get("S3Location") or {}
    severity = description.get("ComplianceSeverity")
    return AssociationSpec(
        parameters=normalise_parameters(description.get("Parameters") or {}),
        targets=normalise_targets(description.get("Targets")),
        schedule=(description.get("ScheduleExpression") or "").strip() or None,
        max_concurrency=description.get("MaxConcurrency") or None,
        max_errors=description.get("MaxErrors") or None,
        compliance_severity=None if severity in (None, "", _SEVERITY_DEFAULT) else severity,
        apply_only_at_cron_interval=bool(description.get("ApplyOnlyAtCronInterval", False)),
        output=(
            (
                str(output["OutputS3BucketName"]),
                str(output.get("OutputS3KeyPrefix", "")),
                str(output.get("OutputS3Region") or region),
            )
            if output.get("OutputS3BucketName")
            else None
        ),
    )


def request_fields(name: str, spec: AssociationSpec) -> dict[str, Any]:
    """Every field of a Create/UpdateAssociation request, so an update never nulls one."""
    parameters: dict[str, list[str]] = {key: [value] for key, value in spec.parameters}
    request: dict[str, Any] = {
        "Name": DOCUMENT,
        "AssociationName": name,
        "Parameters": parameters,
        "Targets": [{"Key": key, "Values": list(values)} for key, values in spec.targets],
        "ApplyOnlyAtCronInterval": spec.apply_only_at_cron_interval,
        "ComplianceSeverity": spec.compliance_severity or _SEVERITY_DEFAULT,
    }
    if spec.schedule:
        request["ScheduleExpression"] = spec.schedule
    if spec.max_concurrency:
        request["MaxConcurrency"] = spec.max_concurrency
    if spec.max_errors:
        request["MaxErrors"] = spec.max_errors
    if spec.output:
        request["OutputLocation"] = {
            "S3Location": {
                "OutputS3BucketName": spec.output[0],
                "OutputS3KeyPrefix": spec.output[1],
                "OutputS3Region": spec.output[2],
            }
        }
    return request


def create(
    clients: AwsClients, name: str, spec: AssociationSpec, owner: str, source: str = ""
) -> str:
    """CreateAssociation, tagged with the owner (and source) at birth, never retried by
    botocore (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateAssociation.html)."""
    tags = [{"Key": OWNER_TAG, "Value": owner}]
    if source:
        tags.append({"Key": SOURCE_TAG, "Value": source})
    response = call(
        "CreateAssociation",
        clients.client("ssm", retries=False).create_association,
        idempotent=False,
        **request_fields(name, spec),
        Tags=tags,
    )
    return str(response["AssociationDescription"]["AssociationId"])


def update(
    clients: AwsClients, association_id: str, name: str, spec: AssociationSpec, version: str
) -> None:
    """UpdateAssociation with every field, and the AssociationVersion we planned against
    (concurrency control: a change made since our observe fails instead of being lost;
    AssociationVersion in https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateAssociation.html)."""
    request = request_fields(name, spec)
    request["AssociationId"] = association_id
    if version:
        request["AssociationVersion"] = version
    call("UpdateAssociation", clients.ssm.update_association, **request)


def delete(clients: AwsClients, association_id: str) -> None:
    call("DeleteAssociation", clients.ssm.delete_association, AssociationId=association_id)
