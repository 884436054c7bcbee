"""The JSON Schema of the repository format, generated from the document models of `models.py`.

Editors use it for completion and checks (`# yaml-language-server: $schema=...` at the
top of a YAML file). A copy is committed at `schema/ssm-gitops-v1.json`; a test keeps it
equal to what this module generates. The schema checks each document's shape; rules
across documents (a defaultVersion naming a version, sources on disk) need `validate`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from controller.repository.models import AssociationDocument, PackageDocument, SettingsDocument

SCHEMA_ID = "https://github.com/ssm-gitops/ssm-gitops/schema/ssm-gitops-v1.json"

Document = Annotated[
    PackageDocument | AssociationDocument | SettingsDocument, Field(discriminator="kind")
]


def json_schema() -> dict[str, Any]:
    """The schema of one YAML document of an ssm-gitops repository."""
    schema = TypeAdapter(Document).json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ssm-gitops repository document (apiVersion ssm-gitops/v1)",
        "description": "A Package, Association or Settings document. "
        "See docs/repository-format.md.",
        **schema,
    }


def schema_text() -> str:
    """The schema as the exact text of the committed copy (ends with a newline)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
