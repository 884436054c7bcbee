"""YAML parsing that keeps positions, so every later check can say `path:line:col`.

Stage 1, first step: text -> plain Python values (dicts, lists, scalars) whose mappings and
sequences remember where each key and item was written. libyaml does the parsing (fast
enough for a 1,000-package repository); only object construction is Python.

Differences from `yaml.safe_load`, each to keep a user's typo from passing silently:
- a key written twice in one mapping is an error (PyYAML would keep the last one);
- timestamps stay text (`version: 2024-01-01` is a name, not a date);
- merge keys (`<<`) are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

try:  # libyaml is ~10x faster; the pure-Python parser gives the same nodes and marks.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML wheels ship libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

Position = tuple[int, int]
"""(line, column), both 1-based, as editors show them."""


def _position(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class MarkedDict(dict[Any, Any]):
    """A mapping that knows where it, each key and each value were written."""

    __slots__ = ("start", "key_pos", "value_pos")

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.key_pos: dict[Any, Position] = {}
        self.value_pos: dict[Any, Position] = {}


class MarkedList(list[Any]):
    """A sequence that knows where it and each item were written."""

    __slots__ = ("start", "item_pos")

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.item_pos: list[Position] = []


@dataclass(frozen=True)
class YamlProblem:
    """A problem found while reading the text (broken YAML, duplicate key)."""

    line: int
    col: int
    message: str


@dataclass(frozen=True)
class YamlDocument:
    """One `---` document of a file: its value and where it starts."""

    value: Any
    start: Position


class _MarkedLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Builds MarkedDict/MarkedList and records duplicate keys instead of overwriting."""

    problems: list[YamlProblem]

    def construct_marked_mapping(self, node: yaml.MappingNode) -> MarkedDict:
        result = MarkedDict(_position(node))
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                line, col = _position(key_node)
                self.problems.append(
                    YamlProblem(line, col, "merge keys (<<) are not supported: write the keys out")
                )
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                line, col = _position(key_node)
                self.problems.append(
                    YamlProblem(line, col, "a key must be text, not a list or mapping")
                )
                continue
            if key in result:
                line, col = _position(key_node)
                first = result.key_pos[key]
                self.problems.append(
                    YamlProblem(
                        line,
                        col,
                        f"duplicate key {key!r} (first at line {first[0]}): remove one of them",
                    )
                )
                continue
            result[key] = self.construct_object(value_node, deep=True)
            result.key_pos[key] = _position(key_node)
            result.value_pos[key] = _position(value_node)
        return result

    def construct_marked_sequence(self, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(_position(node))
        for item in node.value:
            result.append(self.construct_object(item, deep=True))
            result.item_pos.append(_position(item))
        return result

    def construct_timestamp_as_text(self, node: yaml.ScalarNode) -> str:
        return str(node.value)


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _MarkedLoader.construct_marked_mapping)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _MarkedLoader.construct_marked_sequence)
_MarkedLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _MarkedLoader.construct_timestamp_as_text
)


def parse_documents(text: str) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """Every document of one file, plus the problems met on the way.

    Broken YAML stops the file at the first syntax error (libyaml cannot resume), reported
    as one problem at its position; the documents before it are still returned.
    """
    loader = _MarkedLoader(text)
    loader.problems = []
    documents: list[YamlDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            documents.append(YamlDocument(loader.construct_document(node), _position(node)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        loader.problems.append(
            YamlProblem(line, col, f"invalid YAML: {what}{context}: fix the syntax")
        )
    except yaml.YAMLError as error:  # e.g. a control character the reader rejects
        loader.problems.append(YamlProblem(1, 1, f"invalid YAML: {error}: fix the file"))
    finally:
        loader.dispose()
    return documents, loader.problems
