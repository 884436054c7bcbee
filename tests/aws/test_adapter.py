"""The AWS adapter against the embedded local endpoint: error family, call counting,
sharing in chunks, associations with owner tags, artifact uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.aws import artifacts, associations, packages, sharing, tags
from controller.aws.api import call
from controller.aws.errors import Conflict, Invalid, NotFound, Throttled
from controller.aws.session import AwsClients, Sessions
from controller.model.fingerprint import SPEC_TAG, spec_tag_value
from controller.model.state import OWNER_TAG, AssociationFields
from tests.aws.conftest import set_faults


def test_not_found_is_chained_from_the_client_error(clients: AwsClients) -> None:
    with pytest.raises(NotFound) as caught:
        packages.describe(clients, "no-such-package")
    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.operation == "DescribeDocument"
    assert "\n" not in str(caught.value)


def test_invalid_request_is_invalid(clients: AwsClients) -> None:
    with pytest.raises(Invalid):
        packages.describe(clients, "x")  # names are 3 to 128 characters


def test_throttling_without_retries_is_throttled(local_aws: Any, clients: AwsClients) -> None:
    set_faults(local_aws, {"throttle": {"rate": 0.001, "burst": 1, "operations": ["*"]}})
    no_retries = clients.client("ssm", retries=False)  # as CreateAssociation uses
    with pytest.raises(Throttled):
        for _ in range(3):
            call("ListDocuments", no_retries.list_documents)


def test_standard_retries_ride_out_throttling_and_are_counted(
    local_aws: Any, sessions: Sessions, clients: AwsClients
) -> None:
    set_faults(local_aws, {"throttle": {"rate": 20, "burst": 2, "operations": ["*"]}})
    sessions.counter.take()
    for _ in range(8):
        list(packages.list_owned(clients, "ssm-gitops"))
    counts = sessions.counter.take()
    assert counts[("ListDocuments", "success")] == 8
    assert counts.get(("ListDocuments", "throttled"), 0) >= 1


def test_sharing_goes_in_chunks_of_twenty(clients: AwsClients, tmp_path: Path) -> None:
    _command_document(clients, "shared-doc")
    accounts = [f"{100000000000 + i}" for i in range(45)]
    sharing.share(clients, "shared-doc", accounts)
    shared = sharing.shared_with(clients, "shared-doc")
    assert [account for account, _ in shared] == sorted(accounts)
    assert {version for _, version in shared} == {"$ALL"}
    sharing.unshare(clients, "shared-doc", accounts[:30])
    assert [a for a, _ in sharing.shared_with(clients, "shared-doc")] == sorted(accounts[30:])


def test_association_created_with_owner_tag_and_full_update(clients: AwsClients) -> None:
    spec = AssociationFields(
        parameters=(("action", "Install"), ("name", "agent")),
        targets=(("tag:env", ("prod",)),),
        schedule="rate(1 day)",
        max_concurrency="10%",
        max_errors="1",
        compliance_severity="HIGH",
        output=("logs", "ssm/", "us-east-1"),
    )
    association_id = associations.create(clients, "agent-prod", spec, "ssm-gitops")
    assert tags.tags_of(clients, "Association", association_id) == {
        OWNER_TAG: "ssm-gitops",
        SPEC_TAG: spec_tag_value("1", spec),  # the fingerprint (controller.model.fingerprint)
    }
    assert (
        associations.spec_from_description(
            associations.describe(clients, association_id), "us-east-1"
        )
        == spec
    )
    (found,) = associations.find_by_name(clients, "agent-prod")
    changed = AssociationFields(
        parameters=spec.parameters,
        targets=(("tag:env", ("qa",)),),
        schedule="rate(2 days)",
        max_concurrency="10%",
        max_errors="1",
        compliance_severity="HIGH",
        output=("logs", "ssm/", "us-east-1"),
    )
    associations.update(clients, association_id, "agent-prod", changed, found.version)
    # a full request: the fields we did not change survive the update
    assert (
        associations.spec_from_description(
            associations.describe(clients, association_id), "us-east-1"
        )
        == changed
    )
    # ... and the fingerprint names the version the update wrote
    assert tags.tags_of(clients, "Association", association_id)[SPEC_TAG] == spec_tag_value(
        "2", changed
    )
    with pytest.raises(Conflict):  # planned against an old AssociationVersion
        associations.update(clients, association_id, "agent-prod", spec, found.version)
    associations.delete(clients, association_id)
    with pytest.raises(NotFound):
        associations.delete(clients, association_id)


def test_missing_bucket_is_one_clear_error(clients: AwsClients) -> None:
    with pytest.raises(artifacts.MissingBucket, match="bucket 'nope' does not exist"):
        artifacts.check_bucket(clients, "nope")


def _command_document(clients: AwsClients, name: str) -> None:
    import json

    clients.ssm.create_document(
        Name=name,
        DocumentType="Command",
        Content=json.dumps(
            {
                "schemaVersion": "2.2",
                "mainSteps": [
                    {
                        "action": "aws:runShellScript",
                        "name": "a",
                        "inputs": {"runCommand": ["echo"]},
                    }
                ],
            }
        ),
    )
