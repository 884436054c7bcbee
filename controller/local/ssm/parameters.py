"""Checks association and command parameters against the document's declared parameters.

Where it sits: associations.py and commands.py call `check_parameters` before storing a
request. AWS refuses, with `InvalidParameters`, a parameter the document does not declare,
a missing required one (declared without a default), a value outside `allowedValues` or not
matching `allowedPattern`, and more than one value for a `String` parameter
(https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-syntax-data-elements-parameters.html).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import regex

from controller.local.ssm.errors import SsmError


@functools.cache
def _pattern(text: str) -> Any:
    return regex.compile(text)


def _invalid(message: str) -> SsmError:
    return SsmError("InvalidParameters", message)


def check_parameters(
    document_name: str, declared: dict[str, dict[str, Any]], given: dict[str, list[str]]
) -> None:
    """Raise InvalidParameters for the first way `given` breaks the document's parameters."""
    for name in given:
        if name not in declared:
            raise _invalid(
                f"Parameter '{name}' is not defined in document {document_name}; it accepts "
                f"{', '.join(sorted(declared)) or 'no parameters'}."
            )
    for name, spec in declared.items():
        kind = str(spec.get("type", "String"))
        values = given.get(name)
        if values is None:
            if "default" not in spec:
                raise _invalid(f"Parameter '{name}' is required by document {document_name}.")
            continue
        if kind in ("String", "Integer", "Boolean", "StringMap", "MapList") and len(values) > 1:
            raise _invalid(f"Parameter '{name}' is a {kind} and takes exactly one value.")
        if kind == "StringMap":
            for value in values:
                try:
                    parsed = json.loads(value) if value else {}
                except ValueError:
                    raise _invalid(f"Parameter '{name}' must be a JSON object.") from None
                if not isinstance(parsed, dict):
                    raise _invalid(f"Parameter '{name}' must be a JSON object.")
            continue
        allowed = spec.get("allowedValues")
        pattern = spec.get("allowedPattern")
        for value in values:
            if value.startswith("{{") and value.endswith("}}"):
                continue  # a Parameter Store reference, resolved at run time
            if allowed and value not in allowed:
                raise _invalid(
                    f"Parameter '{name}' value '{value}' is not one of the allowed values: "
                    f"{', '.join(allowed)}."
                )
            if pattern and not _pattern(pattern).search(value):
                raise _invalid(
                    f"Parameter '{name}' value '{value}' does not match the pattern {pattern}."
                )
