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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

try:  # libyaml is ~10x faster; the pure-Python parser gives the same nodes and marks.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML wheels ship libyaml
    from yaml import SafeLoader as _BaseLoader

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


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SAFE = yaml.constructor.SafeConstructor()
# Plain scalars resolved to these tags become Python values as yaml.safe_load makes them;
# timestamps stay text (see the module docstring).
_SCALARS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    "tag:yaml.org,2002:null": _SAFE.construct_yaml_null,
    "tag:yaml.org,2002:bool": _SAFE.construct_yaml_bool,
    "tag:yaml.org,2002:int": _SAFE.construct_yaml_int,
    "tag:yaml.org,2002:float": _SAFE.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": lambda node: str(node.value),
}


_IMPLICIT = _BaseLoader.yaml_implicit_resolvers


class _Parser(_BaseLoader):  # type: ignore[misc]
    """libyaml's parser and composer, with PyYAML's tag resolution made lean.

    The composer calls `resolve` for every node and the path-resolver hooks for every
    child; we use no path resolvers, and resolve plain scalars exactly as PyYAML does
    (same implicit resolvers, looked up by first character), in fewer steps.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


class _Builder:
    """Nodes (composed by libyaml) -> marked Python values, collecting problems.

    A direct walk instead of PyYAML's generic constructor: this is the hot path of
    loading a large repository.
    """

    def __init__(self) -> None:
        self.problems: list[YamlProblem] = []
        self._building: set[int] = set()  # nodes being built: an alias cycle if met again

    def _problem(self, node: yaml.Node, message: str) -> None:
        line, col = _position(node)
        self.problems.append(YamlProblem(line, col, message))

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            scalar = _SCALARS.get(node.tag)
            if scalar is None:
                self._problem(node, f"unsupported YAML tag {node.tag}: remove it")
                return None
            try:
                return scalar(node)
            except (ValueError, KeyError, TypeError):  # e.g. `!!int ten`
                self._problem(node, f"{node.value!r} is not a valid {node.tag}: fix or quote it")
                return None
        if id(node) in self._building:
            self._problem(node, "an alias refers to the value that contains it: remove it")
            return None
        self._building.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
                return self._mapping(node)
            if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
                return self._sequence(node)
            self._problem(node, f"unsupported YAML tag {node.tag}: remove it")
            return None
        finally:
            self._building.discard(id(node))

    def _mapping(self, node: yaml.MappingNode) -> MarkedDict:
        result = MarkedDict(_position(node))
        key_pos, value_pos = result.key_pos, result.value_pos
        for key_node, value_node in node.value:
            key_mark = key_node.start_mark
            if key_node.tag == _STR and type(key_node) is yaml.ScalarNode:
                key: Any = key_node.value  # the common case, without a call
            elif key_node.tag == _MERGE:
                self._problem(key_node, "merge keys (<<) are not supported: write the keys out")
                continue
            elif not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, "a key must be text, not a list or mapping")
                continue
            else:
                key = self.build(key_node)
            if key in result:
                first = key_pos[key]
                self._problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first[0]}): remove one of them",
                )
                continue
            if value_node.tag == _STR and type(value_node) is yaml.ScalarNode:
                result[key] = value_node.value
            else:
                result[key] = self.build(value_node)
            key_pos[key] = (key_mark.line + 1, key_mark.column + 1)
            value_mark = value_node.start_mark
            value_pos[key] = (value_mark.line + 1, value_mark.column + 1)
        return result

    def _sequence(self, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(_position(node))
        for item in node.value:
            result.append(self.build(item))
            result.item_pos.append(_position(item))
        return result


def parse_documents(text: str) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """Every document of one file, plus the problems met on the way.

    Broken YAML stops the file at the first syntax error (libyaml cannot resume), reported
    as one problem at its position; the documents before it are still returned.
    """
    loader = _Parser(text)
    builder = _Builder()
    documents: list[YamlDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            documents.append(YamlDocument(builder.build(node), _position(node)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        builder.problems.append(
            YamlProblem(line, col, f"invalid YAML: {what}{context}: fix the syntax")
        )
    except yaml.YAMLError as error:  # e.g. a control character the reader rejects
        builder.problems.append(YamlProblem(1, 1, f"invalid YAML: {error}: fix the file"))
    finally:
        loader.dispose()
    return documents, builder.problems
