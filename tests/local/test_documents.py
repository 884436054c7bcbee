"""Documents and versions: each test fails on the lenient behaviour moto 5.2.5 shows."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
import yaml

from controller.local import LocalAWS
from tests.local.helpers import command_content, error_code, wait_status


@pytest.fixture
def ssm(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return local_aws.client("ssm")


def _versions(ssm, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = ssm.get_paginator("list_document_versions").paginate(Name=name)
    return [v["DocumentVersion"] for p in pages for v in p["DocumentVersions"]]


def test_creation_is_asynchronous_creating_then_active(ssm) -> None:  # type: ignore[no-untyped-def]
    created = ssm.create_document(Name="AsyncDoc", Content=command_content())
    assert created["DocumentDescription"]["Status"] == "Creating"
    assert wait_status(ssm, "AsyncDoc", "1")["Status"] == "Active"


def test_version_numbers_are_numeric_and_never_reused(ssm) -> None:  # type: ignore[no-untyped-def]
    # moto sorts versions as strings: after version 11, a delete made the next update
    # overwrite version 10. Here numbers keep growing and nothing is overwritten.
    ssm.create_document(Name="ManyVersions", Content=command_content("0"))
    for i in range(1, 12):
        ssm.update_document(
            Name="ManyVersions", Content=command_content(str(i)), DocumentVersion="$LATEST"
        )
    assert ssm.describe_document(Name="ManyVersions")["Document"]["LatestVersion"] == "12"
    ssm.delete_document(Name="ManyVersions", DocumentVersion="12")
    updated = ssm.update_document(
        Name="ManyVersions", Content=command_content("new"), DocumentVersion="$LATEST"
    )
    assert updated["DocumentDescription"]["DocumentVersion"] == "13"
    ten = ssm.get_document(Name="ManyVersions", DocumentVersion="10")
    assert json.loads(ten["Content"])["description"] == "test document 9"
    assert "12" not in _versions(ssm, "ManyVersions")
    assert sorted(_versions(ssm, "ManyVersions"), key=int) == [str(n) for n in range(1, 12)] + [
        "13"
    ]


def test_update_only_on_latest(ssm) -> None:  # type: ignore[no-untyped-def]
    ssm.create_document(Name="LatestOnly", Content=command_content("a"))
    ssm.update_document(Name="LatestOnly", Content=command_content("b"), DocumentVersion="$LATEST")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document(Name="LatestOnly", Content=command_content("c"), DocumentVersion="1")
    assert error_code(raised) == "InvalidDocumentVersion"
    ssm.update_document(Name="LatestOnly", Content=command_content("c"), DocumentVersion="2")


def test_duplicate_content_is_refused(ssm) -> None:  # type: ignore[no-untyped-def]
    ssm.create_document(Name="DupContent", Content=command_content("same"))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document(
            Name="DupContent", Content=command_content("same"), DocumentVersion="$LATEST"
        )
    assert error_code(raised) == "DuplicateDocumentContent"


def test_version_name_unique_and_pattern_checked(ssm) -> None:  # type: ignore[no-untyped-def]
    ssm.create_document(Name="Named", Content=command_content("a"), VersionName="1.0")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document(
            Name="Named", Content=command_content("b"), VersionName="1.0", DocumentVersion="$LATEST"
        )
    assert error_code(raised) == "DuplicateDocumentVersionName"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document(
            Name="Named", Content=command_content("b"), VersionName="1 0", DocumentVersion="$LATEST"
        )
    assert error_code(raised) == "ValidationException"
    message = raised.value.response["Error"]["Message"]
    assert message.startswith("1 validation error detected: Value '1 0' at 'versionName'")


def test_latest_and_default_resolve_everywhere(ssm) -> None:  # type: ignore[no-untyped-def]
    # moto fails on $DEFAULT.
    ssm.create_document(Name="Pointers", Content=command_content("a"), VersionName="v1")
    ssm.update_document(
        Name="Pointers", Content=command_content("b"), VersionName="v2", DocumentVersion="$LATEST"
    )
    assert ssm.get_document(Name="Pointers", DocumentVersion="$DEFAULT")["VersionName"] == "v1"
    assert ssm.get_document(Name="Pointers", DocumentVersion="$LATEST")["VersionName"] == "v2"
    described = ssm.describe_document(Name="Pointers", DocumentVersion="$LATEST")["Document"]
    assert described["DocumentVersion"] == "2"
    assert ssm.get_document(Name="Pointers", VersionName="v2")["DocumentVersion"] == "2"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.get_document(Name="Pointers", VersionName="v3")
    assert error_code(raised) == "InvalidDocumentVersion"


def test_default_version_moves_and_cannot_be_deleted(ssm) -> None:  # type: ignore[no-untyped-def]
    ssm.create_document(Name="Defaults", Content=command_content("a"), VersionName="one")
    ssm.update_document(
        Name="Defaults", Content=command_content("b"), VersionName="two", DocumentVersion="$LATEST"
    )
    wait_status(ssm, "Defaults", "2")
    described = ssm.update_document_default_version(Name="Defaults", DocumentVersion="2")
    assert described["Description"] == {
        "Name": "Defaults",
        "DefaultVersion": "2",
        "DefaultVersionName": "two",
    }
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.delete_document(Name="Defaults", VersionName="two")
    assert error_code(raised) == "InvalidDocumentOperation"
    ssm.delete_document(Name="Defaults", VersionName="one")
    assert _versions(ssm, "Defaults") == ["2"]
    ssm.delete_document(Name="Defaults")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_document(Name="Defaults")
    assert error_code(raised) == "InvalidDocument"


def test_document_version_pages(ssm) -> None:  # type: ignore[no-untyped-def]
    ssm.create_document(Name="Paged", Content=command_content("0"))
    for i in range(1, 5):
        ssm.update_document(
            Name="Paged", Content=command_content(str(i)), DocumentVersion="$LATEST"
        )
    first = ssm.list_document_versions(Name="Paged", MaxResults=2)
    assert len(first["DocumentVersions"]) == 2 and "NextToken" in first
    assert _versions(ssm, "Paged") == ["5", "4", "3", "2", "1"]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.list_document_versions(Name="Paged", NextToken="not-a-token")
    assert error_code(raised) == "InvalidNextToken"


def test_yaml_documents_and_format_conversion(ssm) -> None:  # type: ignore[no-untyped-def]
    content = yaml.safe_dump(json.loads(command_content("yaml")))
    ssm.create_document(Name="YamlDoc", Content=content, DocumentFormat="YAML")
    as_json = ssm.get_document(Name="YamlDoc", DocumentFormat="JSON")
    assert json.loads(as_json["Content"])["description"] == "test document yaml"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_document(Name="BadDoc", Content="{not json")
    assert error_code(raised) == "InvalidDocumentContent"


def test_create_twice_and_reserved_names(ssm) -> None:  # type: ignore[no-untyped-def]
    ssm.create_document(Name="Twice", Content=command_content())
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_document(Name="Twice", Content=command_content("x"))
    assert error_code(raised) == "DocumentAlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError):
        ssm.create_document(Name="AWS-Mine", Content=command_content())


def test_list_documents_filters_and_paging(ssm) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        ssm.create_document(
            Name=f"Listed-{i}",
            Content=command_content(str(i)),
            Tags=[{"Key": "team", "Value": "blue" if i % 2 else "red"}],
        )

    def names(**kwargs: object) -> list[str]:
        pages = ssm.get_paginator("list_documents").paginate(**kwargs)
        return [d["Name"] for p in pages for d in p["DocumentIdentifiers"]]

    # moto ignores tag: filters.
    assert names(Filters=[{"Key": "tag:team", "Values": ["blue"]}]) == ["Listed-1", "Listed-3"]
    assert names(Filters=[{"Key": "Owner", "Values": ["Self"]}]) == [
        f"Listed-{i}" for i in range(5)
    ]
    amazon = names(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])
    assert amazon == ["AWS-ConfigureAWSPackage", "AWS-RunShellScript"]
    assert names(Filters=[{"Key": "DocumentType", "Values": ["Package"]}]) == []
    assert names(Filters=[{"Key": "Name", "Values": ["Listed-3"]}]) == ["Listed-3"]
    first = ssm.list_documents(MaxResults=2, Filters=[{"Key": "Owner", "Values": ["Self"]}])
    assert len(first["DocumentIdentifiers"]) == 2 and first["NextToken"]


def test_aws_configure_aws_package_has_its_real_parameters(ssm) -> None:  # type: ignore[no-untyped-def]
    document = ssm.describe_document(Name="AWS-ConfigureAWSPackage")["Document"]
    assert document["Owner"] == "Amazon"
    assert {p["Name"] for p in document["Parameters"]} == {
        "action",
        "installationType",
        "name",
        "version",
        "additionalArguments",
    }
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.update_document(
            Name="AWS-ConfigureAWSPackage", Content=command_content(), DocumentVersion="$LATEST"
        )
    assert error_code(raised) in ("InvalidDocumentOperation", "InvalidDocument")


def test_only_one_owner_per_list_request(ssm) -> None:  # type: ignore[no-untyped-def]
    # API_DocumentKeyValuesFilter: "only one Owner can be specified in a request".
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self", "Amazon"]}])
    assert error_code(raised) == "ValidationException"


def test_deleting_a_document_deletes_its_associations(ssm) -> None:  # type: ignore[no-untyped-def]
    # API_DeleteDocument: "Deletes the ... document and all managed node associations to it."
    ssm.create_document(Name="WithAssociation", Content=command_content())
    created = ssm.create_association(
        Name="WithAssociation", Targets=[{"Key": "InstanceIds", "Values": ["i-00000000000000001"]}]
    )["AssociationDescription"]
    ssm.delete_document(Name="WithAssociation")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_association(AssociationId=created["AssociationId"])
    assert error_code(raised) == "AssociationDoesNotExist"
