"""YAML parsing that keeps positions, so every later check can say `path:line:col`.

Stage 1, first step: text -> plain Python values (dicts, lists, scalars) whose mappings and
sequences remember where each key and item was written. libyaml does the parsing (fast
enough for a 1,000-package repository) and hands over one event at a time; the values are
built from the events by a flat loop, so hostile text is refused before it can do harm:
- nesting deeper than `MAX_DEPTH` (libyaml's own composer recurses in C: 100k nested `[`
  overflow the stack and kill the process; a few thousand overflow Python's recursion);
- more than `MAX_NODES` values in one file, an alias counting as a copy of what it names
  (a "billion laughs" alias bomb is refused after 100,000, in milliseconds).
Each is one problem at the position where the limit was crossed, like a syntax error.

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
    fatal: bool = False  # the file was not read past this point


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


# The bounds above (see the module docstring). A repository document needs about 8 levels
# (spec.versions[].files[].source); the 1,000-package benchmark has about 70 values per
# package and its association, so one file can hold some 1,400 of them. Validating a file
# of 100,000 wrong values peaks at about 150 MB (pydantic's error list), 1.2 s.
MAX_DEPTH = 64
MAX_NODES = 100_000


def _resolve(value: str) -> str:
    """The tag of a plain scalar, exactly as PyYAML's implicit resolvers decide it."""
    for tag, regexp in _IMPLICIT.get(value[:1], ()):
        if regexp.match(value):
            return str(tag)
    return _STR


class _Parser(_BaseLoader):  # type: ignore[misc]
    """libyaml's parser; only its event interface is used (not its recursive composer)."""


class _LimitExceeded(Exception):
    """A bound was crossed: the file is not read further."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


_NO_KEY: Any = object()  # a mapping waits for its next key
_MERGE_KEY: Any = object()  # `<<`, resolved to the merge tag


class _Frame:
    """A collection being built, and for a mapping the key waiting for its value."""

    __slots__ = ("value", "is_map", "key", "key_pos", "skip", "refused", "anchor", "counted")

    def __init__(self, value: MarkedDict | MarkedList, anchor: str | None, counted: int) -> None:
        self.value = value
        self.is_map = type(value) is MarkedDict
        self.key: Any = _NO_KEY
        self.key_pos: Position = (0, 0)
        self.skip = False  # the pending key was refused: drop its value
        self.refused = False  # an unsupported tag: the collection is read, then dropped
        self.anchor = anchor
        self.counted = counted  # values counted in the file when this collection started


class _Builder:
    """libyaml events -> marked Python values, collecting problems.

    A flat loop with an explicit stack (no recursion, so no depth can crash it) and no
    intermediate node objects: this is the hot path of loading a large repository.
    Anchors are per document; an alias shares the value it names, and counts as a copy of
    it towards `MAX_NODES` (validation walks it once per use).
    """

    def __init__(self, parser: _Parser) -> None:
        self.get_event = parser.get_event
        self.problems: list[YamlProblem] = []
        self.counted = 0  # values so far in this file, aliases counted as copies
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, values it holds)
        self.open_anchors: set[str] = set()  # anchored collections not finished yet

    def _problem(self, position: Position, message: str) -> None:
        self.problems.append(YamlProblem(position[0], position[1], message))

    def _scalar(self, event: Any, position: Position) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _resolve(event.value) if event.implicit[0] else _STR
        if tag == _STR:
            return event.value
        if tag == _MERGE:
            return _MERGE_KEY
        scalar = _SCALARS.get(tag)
        if scalar is None:
            self._problem(position, f"unsupported YAML tag {tag}: remove it")
            return None
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return scalar(node)
        except (ValueError, KeyError, TypeError):  # e.g. `!!int ten`
            self._problem(position, f"{event.value!r} is not a valid {tag}: fix or quote it")
            return None

    def document(self) -> tuple[Any, Position]:
        """Build the document whose DocumentStartEvent was just read: its value and start."""
        self.anchors = {}
        self.open_anchors = set()
        get_event = self.get_event
        stack: list[_Frame] = []
        root: tuple[Any, Position] = (None, (1, 1))
        while True:
            event = get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                mark = event.start_mark
                position = (mark.line + 1, mark.column + 1)
                self.counted += 1
                value = event.value
                # Text needs no resolving: quoted, or plain with a first character no
                # implicit resolver (number, boolean, null, ...) starts with. The common case.
                if event.tag is not None or (event.implicit[0] and value[:1] in _IMPLICIT):
                    value = self._scalar(event, position)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                mark = event.start_mark
                self.counted += 1
                if len(stack) >= MAX_DEPTH:
                    raise _LimitExceeded(
                        mark,
                        f"YAML nested more than {MAX_DEPTH} levels deep: repository documents "
                        "need far fewer; flatten the value or remove the file",
                    )
                is_map = kind is yaml.MappingStartEvent
                position = (mark.line + 1, mark.column + 1)
                tag = event.tag
                if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
                    self._problem(position, f"unsupported YAML tag {tag}: remove it")
                    tag = None  # built anyway (its content is read), then dropped
                container = MarkedDict(position) if is_map else MarkedList(position)
                if event.anchor is not None:
                    self.open_anchors.add(event.anchor)
                frame = _Frame(container, event.anchor, self.counted)
                frame.refused = tag is None and event.tag not in (None, "!")
                stack.append(frame)
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                value = frame.value
                position = value.start
                if frame.anchor is not None:
                    self.open_anchors.discard(frame.anchor)
                    self.anchors[frame.anchor] = (value, self.counted - frame.counted + 1)
                if frame.refused:  # an unsupported tag: reported
                    value = None
            elif kind is yaml.AliasEvent:
                mark = event.start_mark
                position = (mark.line + 1, mark.column + 1)
                anchor = event.anchor
                if anchor in self.open_anchors:
                    self._problem(
                        position, "an alias refers to the value that contains it: remove it"
                    )
                    value = None
                elif anchor not in self.anchors:
                    self._problem(
                        position,
                        f"alias *{anchor} has no anchor &{anchor} before it: define it first",
                    )
                    value = None
                else:
                    value, weight = self.anchors[anchor]
                    self.counted += weight
            elif kind is yaml.DocumentEndEvent:
                return root
            else:  # pragma: no cover - libyaml sends nothing else inside a document
                continue
            if self.counted > MAX_NODES:
                raise _LimitExceeded(
                    event.start_mark,
                    f"more than {MAX_NODES} values in one file (an alias counts as a copy of "
                    "what it names): split the file or use fewer aliases",
                )
            if not stack:
                root = (None if value is _MERGE_KEY else value, position)
                continue
            frame = stack[-1]
            if frame.is_map:
                mapping = frame.value
                if frame.key is _NO_KEY and type(value) is str and value not in mapping:
                    frame.key, frame.key_pos, frame.skip = value, position, False  # common case
                elif frame.key is not _NO_KEY and not frame.skip and value is not _MERGE_KEY:
                    mapping[frame.key] = value  # common case
                    mapping.key_pos[frame.key] = frame.key_pos  # type: ignore[union-attr]
                    mapping.value_pos[frame.key] = position  # type: ignore[union-attr]
                    frame.key = _NO_KEY
                else:
                    self._add_to_mapping(frame, value, position, kind)
            else:
                items = frame.value
                assert isinstance(items, MarkedList)
                if value is _MERGE_KEY:
                    self._problem(position, "merge keys (<<) are not supported: write the keys out")
                    value = None
                items.append(value)
                items.item_pos.append(position)

    def _add_to_mapping(self, frame: _Frame, value: Any, position: Position, kind: Any) -> None:
        result = frame.value
        assert isinstance(result, MarkedDict)
        if frame.key is _NO_KEY:  # `value` is a key
            frame.key, frame.key_pos, frame.skip = value, position, False
            if value is _MERGE_KEY:
                self._problem(position, "merge keys (<<) are not supported: write the keys out")
                frame.skip = True
            elif isinstance(value, dict | list) or (
                value is None and kind is not yaml.ScalarEvent and kind is not yaml.AliasEvent
            ):
                self._problem(position, "a key must be text, not a list or mapping")
                frame.skip = True
            elif value in result:
                first = result.key_pos[value]
                self._problem(
                    position,
                    f"duplicate key {value!r} (first at line {first[0]}): remove one of them",
                )
                frame.skip = True
            return
        key, frame.key = frame.key, _NO_KEY
        if frame.skip:
            return
        if value is _MERGE_KEY:
            self._problem(position, "merge keys (<<) are not supported: write the keys out")
            value = None
        result[key] = value
        result.key_pos[key] = frame.key_pos
        result.value_pos[key] = position


# Syntax errors libyaml notices only on a later line than the mistake: a key without its
# `:`, a quote or bracket never closed. For these the construct's start (the "context"
# mark) is where the user must look; for the others, where libyaml stopped.
_POINT_AT_START = (
    "while scanning a simple key",
    "while scanning a quoted scalar",
    "while parsing a flow sequence",
    "while parsing a flow mapping",
)


def _syntax_problem(error: yaml.MarkedYAMLError) -> YamlProblem:
    problem, context = error.problem_mark, error.context_mark
    what = error.problem or "invalid YAML"
    if (
        problem is not None
        and context is not None
        and error.context in _POINT_AT_START
        and context.line < problem.line
    ):
        found = f"line {problem.line + 1}"
        message = f"invalid YAML: {what} ({error.context} that starts here, noticed at {found})"
        line, col = context.line + 1, context.column + 1
        return YamlProblem(line, col, message + ": fix the syntax", fatal=True)
    mark = problem or context
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    suffix = f" ({error.context})" if error.context else ""
    return YamlProblem(line, col, f"invalid YAML: {what}{suffix}: fix the syntax", fatal=True)


def parse_documents(text: str) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """Every document of one file, plus the problems met on the way.

    Broken YAML, or a file over the bounds above, stops the file at that point (libyaml
    cannot resume), reported as one problem at its position; the documents before it are
    still returned.
    """
    parser = _Parser(text)
    builder = _Builder(parser)
    documents: list[YamlDocument] = []
    try:
        parser.get_event()  # StreamStartEvent
        while type(parser.get_event()) is yaml.DocumentStartEvent:
            value, start = builder.document()
            documents.append(YamlDocument(value, start))
    except _LimitExceeded as error:
        mark = error.mark
        builder.problems.append(
            YamlProblem(mark.line + 1, mark.column + 1, error.message, fatal=True)
        )
    except yaml.MarkedYAMLError as error:
        builder.problems.append(_syntax_problem(error))
    except yaml.YAMLError as error:  # e.g. a control character the reader rejects
        message = f"invalid YAML: {error}: fix the file"
        builder.problems.append(YamlProblem(1, 1, message, fatal=True))
    finally:
        parser.dispose()
    return documents, builder.problems
