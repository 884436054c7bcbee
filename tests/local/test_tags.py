"""Tags on documents and associations."""

from __future__ import annotations

import botocore.exceptions
import pytest

from controller.local import LocalAWS
from tests.local.helpers import command_content, error_code


def test_document_and_association_tags(local_aws: LocalAWS) -> None:
    ssm = local_aws.client("ssm")
    ssm.create_document(
        Name="Tagged", Content=command_content(), Tags=[{"Key": "ssm-gitops:owner", "Value": "a"}]
    )
    ssm.add_tags_to_resource(
        ResourceType="Document", ResourceId="Tagged", Tags=[{"Key": "env", "Value": "dev"}]
    )
    listed = ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Tagged")["TagList"]
    assert listed == [{"Key": "env", "Value": "dev"}, {"Key": "ssm-gitops:owner", "Value": "a"}]
    ssm.remove_tags_from_resource(ResourceType="Document", ResourceId="Tagged", TagKeys=["env"])
    listed = ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Tagged")["TagList"]
    assert listed == [{"Key": "ssm-gitops:owner", "Value": "a"}]

    association = ssm.create_association(
        Name="AWS-RunShellScript",
        Parameters={"commands": ["true"]},
        Targets=[{"Key": "tag:role", "Values": ["web"]}],
        Tags=[{"Key": "ssm-gitops:owner", "Value": "a"}],
    )["AssociationDescription"]
    listed = ssm.list_tags_for_resource(
        ResourceType="Association", ResourceId=association["AssociationId"]
    )["TagList"]
    assert listed == [{"Key": "ssm-gitops:owner", "Value": "a"}]


def test_tags_on_a_missing_resource_and_too_many(local_aws: LocalAWS) -> None:
    ssm = local_aws.client("ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Nope")
    assert error_code(raised) == "InvalidDocument"
    ssm.create_document(Name="Crowded", Content=command_content())
    for start in range(0, 50, 25):
        ssm.add_tags_to_resource(
            ResourceType="Document",
            ResourceId="Crowded",
            Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(start, start + 25)],
        )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.add_tags_to_resource(
            ResourceType="Document", ResourceId="Crowded", Tags=[{"Key": "one-more", "Value": "v"}]
        )
    assert error_code(raised) == "TooManyTagsError"
