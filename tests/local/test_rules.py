"""Pure rules as tables: schedules, document parameters, paging tokens."""

from __future__ import annotations

import pytest

from controller.local.ssm.associations import check_schedule
from controller.local.ssm.aws_documents import AWS_DOCUMENTS
from controller.local.ssm.errors import SsmError
from controller.local.ssm.paging import page
from controller.local.ssm.parameters import check_parameters


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ("rate(30 minutes)", True),
        ("rate(1 hour)", True),
        ("rate(2 days)", True),
        ("cron(0 2 ? * SUN *)", True),
        ("at(2026-12-01T10:00:00)", False),  # one-time schedules are for maintenance windows
        ("rate(29 minutes)", False),  # State Manager's minimum is 30 minutes
        ("rate(1 hours)", False),  # singular unit for 1
        ("rate(2 hour)", False),
        ("rate(0 days)", False),
        ("every day", False),
    ],
)
def test_schedules(expression: str, valid: bool) -> None:
    if valid:
        check_schedule(expression)
    else:
        with pytest.raises(SsmError) as raised:
            check_schedule(expression)
        assert raised.value.code == "InvalidSchedule"


PACKAGE = AWS_DOCUMENTS["AWS-ConfigureAWSPackage"].versions[1].parameters


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        ({"action": ["Install"], "name": ["Tool"]}, True),
        (
            {"action": ["Uninstall"], "name": ["arn:aws:ssm:us-east-1:123456789012:document/Tool"]},
            True,
        ),
        ({"action": ["Install"], "name": ["Tool"], "additionalArguments": ['{"-a": "b"}']}, True),
        ({"action": ["Install"], "name": ["Tool"], "additionalArguments": ["[1]"]}, False),
        ({"action": ["Install"], "name": ["Tool"], "version": ["1.2.3"]}, True),
        ({"action": ["install"], "name": ["Tool"]}, False),  # allowedValues are exact
        ({"name": ["Tool"]}, False),
        ({"action": ["Install"], "name": ["{{ssm:package-name}}"]}, True),
    ],
)
def test_configure_aws_package_parameters(given: dict[str, list[str]], ok: bool) -> None:
    if ok:
        check_parameters("AWS-ConfigureAWSPackage", PACKAGE, given)
    else:
        with pytest.raises(SsmError) as raised:
            check_parameters("AWS-ConfigureAWSPackage", PACKAGE, given)
        assert raised.value.code == "InvalidParameters"


def test_paging_walks_every_item_once() -> None:
    items = list(range(7))
    seen: list[int] = []
    token: str | None = None
    while True:
        chunk, token = page(items, 3, token, 50)
        seen += chunk
        if token is None:
            break
    assert seen == items
    with pytest.raises(SsmError):
        page(items, 3, "forged", 50)
