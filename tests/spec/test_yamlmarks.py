"""YAML with positions: values, marks, and the problems PyYAML would let pass."""

from __future__ import annotations

import pytest

from controller.spec.yamlmarks import MarkedDict, MarkedList, parse_documents


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
        ("a: [1, 2\n", "2:1: invalid YAML: did not find expected ',' or ']'"),
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
