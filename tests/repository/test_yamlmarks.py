"""YAML with positions: values, marks, and the problems PyYAML would let pass."""

from __future__ import annotations

import pytest

from controller.repository.yamlmarks import (
    MAX_DEPTH,
    MAX_NODES,
    MarkedDict,
    MarkedList,
    parse_documents,
)


def test_values_and_positions_are_kept() -> None:
    documents, problems = parse_documents("a: 1\nb:\n  - x\n  - {c: true}\n---\nd: 2024-01-01\n")
    assert problems == []
    first, second = (document.value for document in documents)
    assert first == {"a": 1, "b": ["x", {"c": True}]}
    assert isinstance(first, MarkedDict) and isinstance(first["b"], MarkedList)
    assert first.key_pos == {"a": (1, 1), "b": (2, 1)}
    assert first.value_pos["a"] == (1, 4)
    assert first["b"].item_pos == [(3, 5), (4, 5)]
    assert second == {"d": "2024-01-01"}  # a date stays text
    assert documents[1].start == (6, 1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\na: 2\n", "2:1: duplicate key 'a' (first at line 1): remove one of them"),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", "3:3: merge keys (<<) are not supported"),
        ("a: !!int ten\n", "1:4: 'ten' is not a valid tag:yaml.org,2002:int"),
        ("a: !Ref other\n", "1:4: unsupported YAML tag !Ref"),
        ("? [a, b]\n: 1\n", "1:3: a key must be text, not a list or mapping"),
        ("a: [1, 2\n", "1:4: invalid YAML: did not find expected ',' or ']'"),
        ("a: 'open\nb: c\n", "1:4: invalid YAML: found unexpected end of stream"),
        ("a: 1\nb\nc: 2\n", "2:1: invalid YAML: could not find expected ':'"),
        ("a: *nope\n", "1:4: alias *nope has no anchor &nope before it"),
        ("a: &x [*x]\n", "1:8: an alias refers to the value that contains it"),
        ("a: b: c\n", "1:5: invalid YAML: mapping values are not allowed in this context"),
    ],
)
def test_problems_have_positions(text: str, problem: str) -> None:
    _, problems = parse_documents(text)
    assert [f"{p.line}:{p.col}: {p.message}" for p in problems][0].startswith(problem)


def test_documents_before_a_syntax_error_are_kept() -> None:
    documents, problems = parse_documents("a: 1\n---\nb: [\n")
    assert [document.value for document in documents] == [{"a": 1}]
    assert len(problems) == 1


def test_a_syntax_error_noticed_a_line_later_points_at_the_broken_line() -> None:
    """Bug (issue 10): an unclosed `[` was reported one line past the broken line."""
    _, problems = parse_documents("a:\n  b: [x86_64\n  c: d\n")
    assert [(p.line, p.col) for p in problems] == [(2, 6)]
    assert "noticed at line 3" in problems[0].message


def test_aliases_share_values_and_keep_their_own_position() -> None:
    documents, problems = parse_documents("a: &t [x, y]\nb: *t\n")
    assert problems == []
    value = documents[0].value
    assert value["b"] == ["x", "y"] and value.value_pos["b"] == (2, 4)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("depth", [65, 5_000, 20_000, 100_000])
def test_deep_nesting_is_one_problem_not_a_crash(depth: int) -> None:
    """Bug (issue 10): 5k-20k nested `[` raised RecursionError, 100k crashed libyaml's
    composer (C stack overflow); nesting is now refused at MAX_DEPTH."""
    documents, problems = parse_documents("a: " + "[" * depth + "]" * depth + "\n")
    assert documents == []
    assert [(p.line, p.col) for p in problems] == [(1, 3 + MAX_DEPTH)]  # the mapping is level 1
    assert "nested more than 64 levels deep" in problems[0].message


def test_nesting_up_to_the_limit_is_read() -> None:
    depth = MAX_DEPTH - 1  # the document's mapping is the first level
    documents, problems = parse_documents("a: " + "[" * depth + "]" * depth + "\n")
    assert problems == [] and len(documents) == 1


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_quickly() -> None:
    """Bug (issue 10): "billion laughs" (9 levels of 9 aliases) ate 3.9 GB, then crashed."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, 10):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    documents, problems = parse_documents("\n".join(lines) + "\n")
    assert documents == []
    assert len(problems) == 1
    assert f"more than {MAX_NODES} values in one file" in problems[0].message
    assert problems[0].line == 7  # where the count went over: 9**6 copies


def test_many_values_without_aliases_are_bounded_too() -> None:
    text = "a: [" + ", ".join(["x"] * (MAX_NODES + 1)) + "]\n"
    documents, problems = parse_documents(text)
    assert documents == [] and "more than" in problems[0].message
