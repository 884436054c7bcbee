"""State Manager associations of AWS-ConfigureAWSPackage: list, describe, create, update, delete.

Stage: observe and apply. Also the two translations between AWS's shape and our normalised
`AssociationFields`: `spec_from_description` (live -> normalised, so that a fresh apply never
shows drift) and `request_fields` (normalised -> the full request). A plain field (text or
flag) is translated as its declaration in `controller.model.state.AssociationFields` says (its
AWS parameter and AWS's default), with no code of its own here.

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
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.aws.api import create_once, items, request
from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.aws.tags import set_tags
from controller.model.configure_package import DEFAULT_INSTALLATION_TYPE
from controller.model.fingerprint import FIRST_ASSOCIATION_VERSION, SPEC_TAG, spec_tag_value
from controller.model.state import (
    OWNER_TAG,
    SOURCE_TAG,
    AssociationFields,
    scalar_association_fields,
)

_log = logging.getLogger(__name__)

DOCUMENT = "AWS-ConfigureAWSPackage"
# AWS-ConfigureAWSPackage's parameter defaults (the document's own Parameters section, as
# DescribeDocument returns them in DefaultValue):
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentParameter.html
_PARAMETER_DEFAULTS = {"installationType": DEFAULT_INSTALLATION_TYPE, "additionalArguments": "{}"}


@dataclass(frozen=True)
class AssociationSummary:
    """One row of ListAssociations."""

    association_id: str
    name: str
    version: str
    overview: Mapping[str, Any] = field(default_factory=dict)


def _listed(clients: AwsClients, key: str, value: str) -> Iterator[AssociationSummary]:
    """ListAssociations filtered on one key, 50 a page
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationFilter.html)."""
    for item in items(
        clients,
        "ssm",
        "ListAssociations",
        "Associations",
        AssociationFilterList=[{"key": key, "value": value}],
        MaxResults=50,
    ):
        yield AssociationSummary(
            str(item["AssociationId"]),
            str(item.get("AssociationName", "")),
            str(item.get("AssociationVersion", "")),
            dict(item.get("Overview", {})),
        )


def list_all(clients: AwsClients) -> Iterator[AssociationSummary]:
    """Every AWS-ConfigureAWSPackage association, 50 a page (owners decided by tags later)."""
    return _listed(clients, "Name", DOCUMENT)


def find_by_name(clients: AwsClients, name: str) -> list[AssociationSummary]:
    """Associations with this AssociationName (any owner)."""
    return [found for found in _listed(clients, "AssociationName", name) if found.name == name]


def describe(clients: AwsClients, association_id: str) -> dict[str, Any]:
    response = request(clients, "ssm", "DescribeAssociation", AssociationId=association_id)
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


def normalise_targets(
    targets: Iterable[Mapping[str, Any]] | None,
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        sorted(
            (str(t["Key"]).strip(), tuple(sorted(str(v).strip() for v in t.get("Values", []))))
            for t in targets or ()
        )
    )


def spec_from_description(description: Mapping[str, Any], region: str) -> AssociationFields:
    """Live -> normalised, dropping what AWS adds (ids, dates, defaults, region)."""
    output = (description.get("OutputLocation") or {}).get("S3Location") or {}
    # Every other field is read as its declaration says (model.state.AssociationField).
    scalars: dict[str, Any] = {
        name: declared.normalise(description.get(declared.aws))
        for name, declared in scalar_association_fields()
    }
    return AssociationFields(
        parameters=normalise_parameters(description.get("Parameters") or {}),
        targets=normalise_targets(description.get("Targets")),
        output=(
            (
                str(output["OutputS3BucketName"]),
                str(output.get("OutputS3KeyPrefix", "")),
                str(output.get("OutputS3Region") or region),
            )
            if output.get("OutputS3BucketName")
            else None
        ),
        **scalars,
    )


def request_fields(name: str, spec: AssociationFields) -> dict[str, Any]:
    """Every field of a Create/UpdateAssociation request, so an update never nulls one."""
    parameters: dict[str, list[str]] = {key: [value] for key, value in spec.parameters}
    fields: dict[str, Any] = {
        "Name": DOCUMENT,
        "AssociationName": name,
        "Parameters": parameters,
        "Targets": [{"Key": key, "Values": list(values)} for key, values in spec.targets],
    }
    for attribute, declared in scalar_association_fields():
        value = getattr(spec, attribute)
        value = declared.aws_default if value is None else value
        if value is not None:  # a field with an AWS default is always sent
            fields[declared.aws] = value
    if spec.output:
        fields["OutputLocation"] = {
            "S3Location": {
                "OutputS3BucketName": spec.output[0],
                "OutputS3KeyPrefix": spec.output[1],
                "OutputS3Region": spec.output[2],
            }
        }
    return fields


def birth_tags(owner: str, source: str, spec: AssociationFields) -> dict[str, str]:
    """The tags `create` gives an association: owner, source, and the fingerprint
    (`controller.model.fingerprint`) of its first AssociationVersion, at no extra call."""
    tags = {OWNER_TAG: owner}
    if source:
        tags[SOURCE_TAG] = source
    tags[SPEC_TAG] = spec_tag_value(FIRST_ASSOCIATION_VERSION, spec)
    return tags


def create(
    clients: AwsClients,
    name: str,
    spec: AssociationFields,
    owner: str,
    source: str = "",
    *,
    existing: Callable[[], str | None] | None = None,
    written: Callable[[Mapping[str, Any]], None] | None = None,
) -> str:
    """CreateAssociation, tagged with the owner (and source) at birth; returns its id.

    `written` hears the AssociationDescription AWS answered with (its AssociationVersion and
    every field, API_CreateAssociation's response): what the next observe would read back.

    CreateAssociation is not idempotent (no client token,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateAssociation.html),
    so it is never retried blindly: one attempt without botocore's retries, and, when the
    caller says how to find one (`existing()`: the id of an association of ours by this
    name, or None), `api.create_once` looks before each retry after a throttle or 5xx.
    """
    tags = [{"Key": key, "Value": value} for key, value in birth_tags(owner, source, spec).items()]

    def attempt() -> str:
        response = request(
            clients,
            "ssm",
            "CreateAssociation",
            idempotent=False,
            **request_fields(name, spec),
            Tags=tags,
        )
        description = response["AssociationDescription"]
        if written is not None:
            written(description)
        return str(description["AssociationId"])

    return attempt() if existing is None else create_once(attempt, existing)


def update(
    clients: AwsClients,
    association_id: str,
    name: str,
    spec: AssociationFields,
    version: str,
    *,
    written: Callable[[Mapping[str, Any]], None] | None = None,
) -> str:
    """UpdateAssociation with every field, and the AssociationVersion we planned against
    (concurrency control: a change made since our observe fails instead of being lost;
    AssociationVersion in https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateAssociation.html).
    `written` hears the AssociationDescription of the answer (the new version's fields).
    Returns the AssociationVersion the update made ("" if the answer lacks it)."""
    fields = request_fields(name, spec)
    fields["AssociationId"] = association_id
    if version:
        fields["AssociationVersion"] = version
    response = request(clients, "ssm", "UpdateAssociation", **fields)
    description = response.get("AssociationDescription", {})
    if written is not None and description:
        written(description)
    made = str(description.get("AssociationVersion", ""))
    record_fingerprint(clients, association_id, made, spec)
    return made


def record_fingerprint(
    clients: AwsClients, association_id: str, association_version: str, spec: AssociationFields
) -> None:
    """Tag the association with the fingerprint of what `association_version` holds: one
    AddTagsToResource, which does not move AssociationVersion (only an update does,
    API_UpdateAssociation). A failure is logged, not raised: the change itself is made, and an
    older fingerprint names an older AssociationVersion, so it is only a miss (a description)."""
    if not association_version.isdigit():
        return
    try:
        set_tags(
            clients,
            "Association",
            association_id,
            ((SPEC_TAG, spec_tag_value(association_version, spec)),),
        )
    except AwsError as error:
        _log.warning("association %s: fingerprint not recorded: %s", association_id, error)


def delete(clients: AwsClients, association_id: str) -> None:
    request(clients, "ssm", "DeleteAssociation", AssociationId=association_id)
