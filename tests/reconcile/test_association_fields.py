"""Each association field is declared once (`AssociationFields`'s metadata, issue 12): the
desired conversion, the AWS request and description, and the plan's field names all follow
that declaration. Every declared field round-trips through the embedded endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from controller.aws import associations as aws_associations
from controller.aws.session import AwsClients, Sessions
from controller.model.state import (
    AssociationFields,
    DesiredAssociation,
    Location,
    ObservedAssociation,
    association_fields,
)
from controller.reconcile.desired import association_spec
from controller.reconcile.kinds.association import plan_association
from controller.repository import Association, Output, Target
from controller.repository.models import AssociationSpec as RepositoryAssociationSpec

HOME = Location("123456789012", "us-east-1")

# A value other than the default for each declared field, as the repository holds it.
SAMPLES: dict[str, dict[str, Any]] = {
    "parameters": {"version": "1.2"},
    "targets": {"targets": (Target(key="tag:env", values=("qa", "prod")),)},
    "schedule": {"schedule": "rate(2 days)"},
    "max_concurrency": {"max_concurrency": "10%"},
    "max_errors": {"max_errors": "1"},
    "compliance_severity": {"compliance_severity": "HIGH"},
    "apply_only_at_cron_interval": {
        "apply_only_at_cron_interval": True,
        "schedule": "cron(0 2 ? * SUN *)",
    },
    "output": {"output": Output(s3Bucket="logs", s3KeyPrefix="ssm/")},
}


def repo_association(**fields: Any) -> Association:
    values: dict[str, Any] = {
        "name": "agent-prod",
        "package": "agent",
        "targets": (Target(key="tag:env", values=("prod",)),),
    }
    return Association.model_construct(**(values | fields))


def desired(**fields: Any) -> DesiredAssociation:
    spec = association_spec(repo_association(**fields), "agent", HOME.region)
    return DesiredAssociation("agent-prod", HOME, spec, "agent")


@pytest.fixture
def clients(aws_env: Any) -> AwsClients:
    return Sessions().home(HOME.region)


def test_every_declared_field_has_a_sample() -> None:
    assert set(SAMPLES) == {name for name, _ in association_fields()}


def test_every_scalar_field_is_the_repository_attribute_of_its_yaml_key() -> None:
    """The desired side reads a scalar field by its name: the repository model must hold
    it, under the YAML key the declaration names (what the plan shows)."""
    model = RepositoryAssociationSpec.model_fields
    for name, declared in association_fields():
        if declared.scalar:
            assert name in model, name
            assert (model[name].alias or name) == declared.yaml, name


@pytest.mark.parametrize("name", list(SAMPLES))
def test_a_declared_field_round_trips_through_aws_and_the_plan(
    clients: AwsClients, name: str
) -> None:
    """Bug guarded: one association field was written by hand in four places (the desired
    conversion, the diff's field table, the AWS request and the live normalisation), so a
    new field touched about seven files and could be missed in one of them (issue 12)."""
    shown = dict(association_fields())[name].yaml
    wanted = desired(**SAMPLES[name])
    assert wanted.spec != desired().spec, "the sample must differ from the default"
    (create,) = plan_association(wanted, None)
    assert any(change.field.startswith(shown) for change in create.changes), create.changes

    association_id = aws_associations.create(clients, wanted.name, desired().spec, "ssm-gitops")
    (summary,) = aws_associations.find_by_name(clients, wanted.name)
    live = _observed(clients, association_id, summary.version)
    (update,) = plan_association(wanted, live)
    assert any(change.field.startswith(shown) for change in update.changes), update.changes

    aws_associations.update(clients, association_id, wanted.name, wanted.spec, live.version)
    (summary,) = aws_associations.find_by_name(clients, wanted.name)
    live = _observed(clients, association_id, summary.version)
    assert live.spec == wanted.spec
    assert plan_association(wanted, live) == []  # no drift after a fresh apply
    aws_associations.delete(clients, association_id)


def _observed(clients: AwsClients, association_id: str, version: str) -> ObservedAssociation:
    description = aws_associations.describe(clients, association_id)
    spec: AssociationFields = aws_associations.spec_from_description(description, HOME.region)
    return ObservedAssociation(association_id, "agent-prod", HOME, version, spec)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_create_and_update_answers_hold_what_a_description_reads(
    clients: AwsClients, name: str
) -> None:
    """The observe cache is filled from CreateAssociation's and UpdateAssociation's answers
    (the pass after an apply reads nothing back): for every declared field, the answer must
    normalise to what DescribeAssociation of that AssociationVersion reads, or a field would
    hide behind the cache."""
    wanted = desired(**SAMPLES[name])
    answers: list[dict[str, Any]] = []
    association_id = aws_associations.create(
        clients, wanted.name, wanted.spec, "ssm-gitops", written=lambda d: answers.append(dict(d))
    )
    aws_associations.update(
        clients,
        association_id,
        wanted.name,
        desired().spec,
        "",
        written=lambda d: answers.append(dict(d)),
    )
    (created, updated) = answers
    assert aws_associations.spec_from_description(created, HOME.region) == wanted.spec
    described = aws_associations.describe(clients, association_id)
    assert str(updated["AssociationVersion"]) == str(described["AssociationVersion"])
    assert aws_associations.spec_from_description(
        updated, HOME.region
    ) == aws_associations.spec_from_description(described, HOME.region)
    aws_associations.delete(clients, association_id)
