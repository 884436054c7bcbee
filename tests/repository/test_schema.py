"""The published JSON Schema: generated, committed, referenced by every sample file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from controller.repository.schema import json_schema, schema_text
from tests.repository.conftest import PROJECT, SAMPLE_REPO

COMMITTED = PROJECT / "schema" / "ssm-gitops-v1.json"


def sample_documents() -> list[Path]:
    return sorted(
        path
        for path in SAMPLE_REPO.rglob("*.yaml")
        if not any(part.startswith(".") for part in path.parts)
        and "datadog-agent/" not in path.as_posix()  # payload config, not a document
    )


def test_the_committed_copy_is_up_to_date() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "schema/ssm-gitops-v1.json is stale: run `python -m controller schema --out "
        "schema/ssm-gitops-v1.json`"
    )


def test_the_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_every_sample_document_passes_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    documents = 0
    for path in sample_documents():
        for document in yaml.safe_load_all(path.read_text()):
            validator.validate(document)
            documents += 1
    assert documents >= 8


def test_the_schema_rejects_unknown_fields() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = {
        "apiVersion": "ssm-gitops/v1",
        "kind": "Settings",
        "metadata": {"name": "settings"},
        "spec": {"artifacts": {"bucket": "my-bucket"}, "colour": "red"},
    }
    assert not validator.is_valid(document)


def test_every_sample_file_points_editors_at_the_schema() -> None:
    for path in sample_documents():
        first_line = path.read_text().splitlines()[0]
        relative = os.path.relpath(COMMITTED, path.parent)
        assert first_line == f"# yaml-language-server: $schema={relative}", path


def test_schema_command_prints_the_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller", "schema"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == json_schema()
