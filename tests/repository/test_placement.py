"""Settings accounts by organizationalUnit and Association placement (issue 15): they load,
and whatever of a placement lies outside Settings is one error naming file:line.

Bugs guarded: Settings could not name an OU (`{organizationalUnit, roleName}` was an unknown
field) and an Association could not say where it goes (`placement` was unknown), so every
association went to every account and region.
"""

from __future__ import annotations

import pytest

from controller.repository import SpecErrors, load_repository
from tests.repository.conftest import RepoWriter, package_files, package_yaml

OU = "ou-ab12-prod0001"


def settings_yaml(accounts: str, regions: str = "[us-east-1, eu-west-1]") -> str:
    return f"""apiVersion: ssm-gitops/v1
kind: Settings
metadata: {{name: settings}}
spec:
  artifacts: {{bucket: artifacts}}
  regions: {regions}
  accounts:
{accounts}
"""


MIXED = f"""    - {{id: "111122223333", roleArn: "arn:aws:iam::111122223333:role/ssm-gitops"}}
    - {{organizationalUnit: {OU}, roleName: ssm-gitops}}
"""


def association_yaml(placement: str) -> str:
    return f"""apiVersion: ssm-gitops/v1
kind: Association
metadata: {{name: demo-prod}}
spec:
  package: demo-agent
  targets: [{{key: "tag:env", values: [prod]}}]
  placement:
{placement}
"""


def _load(write_repo: RepoWriter, settings: str, association: str) -> object:
    return load_repository(
        write_repo(
            {
                "settings.yaml": settings,
                "p.yaml": package_yaml(),
                "a.yaml": association,
                **package_files(),
            }
        )
    )


def test_accounts_by_ou_mix_with_explicit_entries_and_placement_loads(
    write_repo: RepoWriter,
) -> None:
    repository = _load(
        write_repo,
        settings_yaml(MIXED),
        association_yaml(
            f'    accounts: ["111122223333", {{organizationalUnit: {OU}}}]\n'
            "    regions: [eu-west-1]"
        ),
    )
    settings = repository.settings  # type: ignore[attr-defined]
    assert [(a.id, a.organizational_unit, a.role_name) for a in settings.accounts] == [
        ("111122223333", None, None),
        (None, OU, "ssm-gitops"),
    ]
    (association,) = repository.associations  # type: ignore[attr-defined]
    assert [(e.id, e.organizational_unit) for e in association.placement.accounts] == [
        ("111122223333", None),
        (None, OU),
    ]
    assert association.placement.regions == ("eu-west-1",)


@pytest.mark.parametrize(
    ("accounts", "placement", "expected"),
    [
        (
            MIXED,
            "    regions: [ap-south-1]",
            "a.yaml:8:15: placement region ap-south-1 is not in Settings regions "
            "(us-east-1, eu-west-1): add it there or remove it here",
        ),
        (
            '    - {id: "111122223333", roleArn: "arn:aws:iam::111122223333:role/x"}\n',
            '    accounts: ["444455556666"]',
            "a.yaml:8:16: placement account 444455556666 is not in Settings accounts "
            "(111122223333): add it to Settings spec.accounts or remove it here",
        ),
        (
            '    - {id: "111122223333", roleArn: "arn:aws:iam::111122223333:role/x"}\n',
            f"    accounts: [{{organizationalUnit: {OU}}}]",
            f"a.yaml:8:16: placement organizationalUnit {OU} lies outside Settings, which "
            "lists no organizationalUnit: add it to Settings spec.accounts or remove it here",
        ),
    ],
)
def test_placement_outside_settings_is_one_line_naming_file_and_line(
    write_repo: RepoWriter, accounts: str, placement: str, expected: str
) -> None:
    with pytest.raises(SpecErrors) as raised:
        _load(write_repo, settings_yaml(accounts), association_yaml(placement))
    assert [str(error).split("repo/")[-1] for error in raised.value.errors] == [expected]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (f"{{organizationalUnit: {OU}}}", "organizationalUnit needs roleName"),
        (
            f'{{organizationalUnit: {OU}, roleArn: "arn:aws:iam::111122223333:role/x"}}',
            "takes roleName",
        ),
        ("{organizationalUnit: prod, roleName: x}", "not a valid organizational unit id"),
        ('{id: "111122223333", roleName: x}', "takes roleArn, not roleName"),
        ("{roleName: x}", "give either id (with roleArn) or organizationalUnit"),
    ],
)
def test_bad_account_entries_say_what_to_write(
    write_repo: RepoWriter, entry: str, message: str
) -> None:
    with pytest.raises(SpecErrors) as raised:
        _load(
            write_repo,
            settings_yaml(f"    - {entry}\n"),
            association_yaml("    regions: [us-east-1]"),
        )
    (error,) = raised.value.errors
    assert message in str(error) and "settings.yaml:8:" in str(error)


def test_a_placement_account_id_must_be_quoted(write_repo: RepoWriter) -> None:
    with pytest.raises(SpecErrors) as raised:
        _load(write_repo, settings_yaml(MIXED), association_yaml("    accounts: [444455556666]"))
    (error,) = raised.value.errors
    assert "put the 12-digit id in quotes" in str(error)


def test_the_json_schema_knows_ou_entries_and_placement() -> None:
    import jsonschema
    import yaml

    from controller.repository.schema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    settings = yaml.safe_load(settings_yaml(MIXED))
    association = yaml.safe_load(
        association_yaml(
            f'    accounts: ["111122223333", {{organizationalUnit: {OU}}}]\n'
            "    regions: [eu-west-1]"
        )
    )
    assert validator.is_valid(settings), list(validator.iter_errors(settings))
    assert validator.is_valid(association), list(validator.iter_errors(association))
    association["spec"]["placement"]["accounts"] = [{"organizationalUnit": OU, "x": 1}]
    assert not validator.is_valid(association)


@pytest.mark.parametrize("line", ["    accounts: []", "    regions: []"])
def test_an_empty_placement_list_is_refused(write_repo: RepoWriter, line: str) -> None:
    """Bug: `accounts: []` (or `regions: []`) read as the list being omitted, so an
    association its author meant to place nowhere went to every account (region)."""
    with pytest.raises(SpecErrors) as raised:
        _load(write_repo, settings_yaml(MIXED), association_yaml(line))
    (error,) = raised.value.errors
    assert "a.yaml:" in str(error) and "empty" in str(error) and "\n" not in str(error)
