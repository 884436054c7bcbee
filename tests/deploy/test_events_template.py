"""deploy/events/drift-events.yaml (issue 14): the CloudFormation template of the drift-events
path is valid, asks EventBridge for exactly the calls the controller maps, lets only its rule
send to the queue, and its pattern matches what the (local) CloudTrail emits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from controller.local import LocalAWS
from controller.reconcile.events import WATCHED_CALLS
from tests.local import eventbus
from tests.local.helpers import command_content

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "events" / "drift-events.yaml"


class _CloudFormation(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no types
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub) kept as {"!Tag": value}."""


def _short_form(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return {"!" + suffix: loader.construct_scalar(node)}
    return {"!" + suffix: loader.construct_sequence(node)}


_CloudFormation.add_multi_constructor("!", _short_form)


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormation)  # noqa: S506
    return loaded


def test_the_template_passes_cfn_lint() -> None:
    """cfn-lint (installed with moto[server]) checks the resources' properties against
    CloudFormation's own resource specifications."""
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert [str(m) for m in matches] == []


def test_the_rule_asks_for_exactly_the_calls_the_controller_maps() -> None:
    pattern = template()["Resources"]["Rule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ssm"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert set(pattern["detail"]["eventName"]) == WATCHED_CALLS


def test_only_the_rule_may_send_to_the_queue() -> None:
    resources = template()["Resources"]
    (statement,) = resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"!GetAtt": "Rule.Arn"}}}
    assert resources["Queue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] >= 3


def test_the_pattern_matches_the_emitted_events(local_aws: LocalAWS) -> None:
    """The rule's pattern, on the local EventBridge, delivers a real emitted event."""
    pattern = template()["Resources"]["Rule"]["Properties"]["EventPattern"]
    sqs, events = local_aws.client("sqs"), local_aws.client("events")
    url = str(sqs.create_queue(QueueName="from-template")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="from-template", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="from-template", Targets=[{"Id": "q", "Arn": arn}])
    ssm = local_aws.client("ssm")
    ssm.create_document(Name="agent", Content=command_content("t"), DocumentType="Command")
    ssm.describe_document(Name="agent")
    ssm.send_command(DocumentName="agent", Targets=[{"Key": "tag:env", "Values": ["none"]}])
    names = [e["detail"]["eventName"] for e in eventbus.drain(sqs, url)]
    assert names == ["CreateDocument"]  # reads and SendCommand are not asked for
