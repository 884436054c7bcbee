"""Per-location throttling of the embedded endpoint: a token bucket per (account, region,
operation), rates per operation, each service's own throttling error (issue 15)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from controller.local import LocalAWS
from controller.local.faults import AWS_RATES, Faults, FaultSettings, Rate, parse_rate_flag

NO_RETRIES = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
OTHER = "111122223333"


def _post_faults(aws: LocalAWS, settings: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        aws.endpoint_url + "/_local/faults", data=json.dumps(settings).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _outcomes(call: Any, n: int) -> list[str]:
    found = []
    for _ in range(n):
        try:
            call()
            found.append("ok")
        except botocore.exceptions.ClientError as error:
            found.append(error.response["Error"]["Code"])
    return found


def _other_account_ssm(aws: LocalAWS, region: str) -> Any:
    role = f"arn:aws:iam::{OTHER}:role/ssm-gitops"
    credentials = aws.client("sts").assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return aws.client(
        "ssm",
        region=region,
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
        config=NO_RETRIES,
    )


def test_each_account_and_region_has_its_own_bucket(local_aws: LocalAWS) -> None:
    """Issue 15: the endpoint throttled with one global bucket; AWS throttles per account and
    region, so one busy location must not throttle another."""
    _post_faults(local_aws, {"rates": {"ssm:ListDocuments": {"rate": 0.01, "burst": 2}}})
    home = local_aws.client("ssm", config=NO_RETRIES)
    assert _outcomes(home.list_documents, 4) == ["ok", "ok"] + ["ThrottlingException"] * 2
    # Same account, another region; another account, same region: full buckets.
    west = local_aws.client("ssm", region="eu-west-1", config=NO_RETRIES)
    assert _outcomes(west.list_documents, 3) == ["ok", "ok", "ThrottlingException"]
    other = _other_account_ssm(local_aws, "us-east-1")
    assert _outcomes(other.list_documents, 3) == ["ok", "ok", "ThrottlingException"]
    # Another operation in the throttled location has its own bucket (and here no rate).
    assert _outcomes(lambda: home.describe_document(Name="AWS-RunShellScript"), 5) == ["ok"] * 5


def test_rates_per_operation_most_specific_pattern_wins(local_aws: LocalAWS) -> None:
    _post_faults(
        local_aws,
        {
            "rates": {
                "ssm:*": {"rate": 0.01, "burst": 1},
                "ssm:List*": {"rate": 0.01, "burst": 3},
            }
        },
    )
    ssm = local_aws.client("ssm", config=NO_RETRIES)
    assert _outcomes(ssm.list_documents, 4) == ["ok"] * 3 + ["ThrottlingException"]
    assert _outcomes(lambda: ssm.describe_document(Name="AWS-RunShellScript"), 2) == [
        "ok",
        "ThrottlingException",
    ]


def test_bucket_refills_at_its_rate() -> None:
    faults = Faults(FaultSettings(rates={"ssm:ListDocuments": Rate(50.0, 1.0)}))

    def throttled() -> bool:
        return faults.decide("ssm:ListDocuments", True, "1", "us-east-1").throttled

    assert [throttled(), throttled()] == [False, True]
    import time

    time.sleep(0.05)  # 2.5 tokens' worth, capped at the burst of 1
    assert [throttled(), throttled()] == [False, True]


def test_organizations_answers_with_its_own_throttling_error(local_aws: LocalAWS) -> None:
    """The refusal is the service's error from botocore's model: Organizations has no
    ThrottlingException, it has TooManyRequestsException."""
    _post_faults(local_aws, {"rates": {"organizations:*": {"rate": 0.01, "burst": 1}}})
    organizations = local_aws.client("organizations", config=NO_RETRIES)
    outcomes = _outcomes(organizations.describe_organization, 2)
    assert outcomes[1] == "TooManyRequestsException"
    assert outcomes[0] != "TooManyRequestsException"  # AWSOrganizationsNotInUse is fine


def test_global_bucket_and_per_location_rates_together(local_aws: LocalAWS) -> None:
    """The global fault settings keep working beside the per-location rates."""
    settings = _post_faults(
        local_aws,
        {
            "throttle": {"rate": 0.01, "burst": 2, "operations": ["ssm:DescribeDocument"]},
            "rates": {"ssm:ListDocuments": {"rate": 0.01, "burst": 1}},
        },
    )
    assert settings["rates"] == {"ssm:ListDocuments": {"rate": 0.01, "burst": 1.0}}
    ssm = local_aws.client("ssm", config=NO_RETRIES)
    assert _outcomes(ssm.list_documents, 2) == ["ok", "ThrottlingException"]
    describe = lambda: ssm.describe_document(Name="AWS-RunShellScript")  # noqa: E731
    assert _outcomes(describe, 3) == ["ok", "ok", "ThrottlingException"]


def test_aws_preset_and_overrides() -> None:
    settings = FaultSettings.from_json(
        {"rates": {"aws": True, "ssm:CreateAssociation": {"rate": 1, "burst": 2}}}
    )
    assert settings.rates["ssm:CreateAssociation"] == Rate(1.0, 2.0)
    assert settings.rates["ssm:*"] == AWS_RATES["ssm:*"]
    assert FaultSettings.from_json({"rates": "aws"}).rates == AWS_RATES
    assert parse_rate_flag("ssm:CreateAssociation=0.5/3") == {
        "ssm:CreateAssociation": {"rate": 0.5, "burst": 3.0}
    }


@pytest.mark.parametrize(
    ("rates", "names"),
    [
        ({"ssm:X": {"rate": 0}}, "rates.ssm:X.rate"),
        ({"ssm:X": 3}, "rates.ssm:X"),
        ("fast", "rates must be"),
    ],
)
def test_bad_rates_are_one_clear_400(local_aws: LocalAWS, rates: Any, names: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        _post_faults(local_aws, {"rates": rates})
    assert raised.value.code == 400
    assert names in json.loads(raised.value.read())["error"]


def test_in_flight_peaks_per_location(local_aws: LocalAWS) -> None:
    local_aws.client("ssm").list_documents()
    with urllib.request.urlopen(local_aws.endpoint_url + "/_local/in-flight", timeout=10) as r:
        peaks = json.loads(r.read())["peak"]
    assert peaks["123456789012/us-east-1"] == 1


def test_a_rate_can_name_one_location(local_aws: LocalAWS) -> None:
    _post_faults(
        local_aws,
        {"rates": {"ssm:ListDocuments@123456789012/eu-west-1": {"rate": 0.01, "burst": 1}}},
    )
    west = local_aws.client("ssm", region="eu-west-1", config=NO_RETRIES)
    assert _outcomes(west.list_documents, 2) == ["ok", "ThrottlingException"]
    east = local_aws.client("ssm", config=NO_RETRIES)
    assert _outcomes(east.list_documents, 3) == ["ok"] * 3


@pytest.mark.parametrize("flag", ["ssm:CreateAssociation=fast", "=3", "ssm:X=1/b"])
def test_bad_rate_flags_are_one_line_naming_the_flag(flag: str) -> None:
    with pytest.raises(ValueError, match="^--rate"):
        parse_rate_flag(flag)
