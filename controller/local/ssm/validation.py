"""Request validation from botocore's own SSM service model, as AWS's front door does it.

Where it sits: the service calls `validate(operation, params)` before any handler runs.
Rules come from the model (required members, types, lengths, ranges, patterns, enums),
so they track the API instead of a hand-written copy. Patterns are Java regular
expressions matched against the whole value (`String.matches`), so they are compiled with
the `regex` package and applied with `fullmatch`.

The message shape is AWS's: "1 validation error detected: Value 'x' at 'name' failed to
satisfy constraint: Member must satisfy regular expression pattern: ..."
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from controller.local.ssm.errors import SsmError, validation


@functools.cache
def service_model() -> ServiceModel:
    """botocore's SSM model, loaded once per process."""
    return botocore.session.get_session().get_service_model("ssm")


def operation_model(name: str) -> OperationModel:
    """The model of one SSM operation; unknown names are AWS's `UnknownOperationException`."""
    model = service_model()
    if name not in model.operation_names:
        raise SsmError("UnknownOperationException", f"Operation {name} is not supported.")
    return model.operation_model(name)


@functools.cache
def _pattern(text: str) -> Any:
    return regex.compile(text)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return "[" + ", ".join(str(v) for v in value) + "]" if isinstance(value, list) else "{...}"
    return str(value)


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    """Append every constraint `value` breaks to `problems`, walking nested shapes."""

    def fail(constraint: str) -> None:
        problems.append(
            f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: {constraint}"
        )

    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            fail("Member must be a structure")
            return
        assert isinstance(shape, StructureShape)
        for name in shape.required_members:
            if value.get(name) is None:
                member_path = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
                problems.append(
                    f"Value null at '{member_path}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                member_path = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
                _check(member, value[name], member_path, problems)
        return
    if kind == "list":
        if not isinstance(value, list):
            fail("Member must be a list")
            return
        assert isinstance(shape, ListShape)
        _check_length(meta, len(value), fail)
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{path}.{index}.member", problems)
        return
    if kind == "map":
        if not isinstance(value, dict):
            fail("Member must be a map")
            return
        assert isinstance(shape, MapShape)
        _check_length(meta, len(value), fail)
        for key, item in value.items():
            _check(shape.key, key, f"{path}.key", problems)
            _check(shape.value, item, f"{path}.{key}", problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            fail("Member must be a string")
            return
        _check_length(meta, len(value), fail)
        enum = meta.get("enum")
        if enum and value not in enum:
            fail(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            fail(f"Member must satisfy regular expression pattern: {pattern}")
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("Member must be a number")
            return
        if "min" in meta and value < meta["min"]:
            fail(f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            fail(f"Member must have value less than or equal to {meta['max']}")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            fail("Member must be a boolean")
        return
    if kind == "timestamp" and not isinstance(value, int | float | str | datetime):
        fail("Member must be a timestamp")


def _check_length(meta: dict[str, Any], length: int, fail: Any) -> None:
    if "min" in meta and length < meta["min"]:
        fail(f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and length > meta["max"]:
        fail(f"Member must have length less than or equal to {meta['max']}")


def validate(operation: str, params: Any) -> None:
    """Raise `ValidationException` naming every broken constraint, as AWS words it."""
    model = operation_model(operation)
    if model.input_shape is None:
        return
    if not isinstance(params, dict):
        raise SsmError(
            "SerializationException", "Start of structure or map found where not expected."
        )
    problems: list[str] = []
    _check(model.input_shape, params, "", problems)
    if not problems:
        return
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    raise validation(f"{count} validation {noun} detected: " + "; ".join(problems))


def response_problems(operation: str, result: Any) -> list[str]:
    """Where a response of ours breaks the model's output shape (a self-check run by the
    test fixtures, so an answer botocore would parse wrongly fails a test, not a user)."""
    model = operation_model(operation)
    problems: list[str] = []
    if model.output_shape is not None:
        _check(model.output_shape, result, "", problems)
        # AWS's answers go beyond some input-side constraints: DescribeDocument reports
        # parameter types outside the enum (StringMap, Integer, ...), and
        # DescribeDocumentPermission pages more AccountIds than AccountIdList's max of 20.
        problems = [p for p in problems if "enum value set" not in p and "length less" not in p]
        if isinstance(result, dict):
            unknown = set(result) - set(model.output_shape.members)
            problems += [f"member '{name}' is not in the model" for name in sorted(unknown)]
    return problems
