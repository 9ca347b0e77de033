"""DAP variables from repr strings: lists, tuples, dicts and sets whose
repr is a literal expand into children; each child shows its own text as
the model (or the tracer) wrote it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from neuraldbg.dap.safe_eval import try_literal, NOT_LITERAL

MAX_CHILD_TEXT = 5_000_000


@dataclass(frozen=True)
class Child:
    name: str
    text: str  # repr text of the child value
    evaluate_name: str | None


def children(text: str, evaluate_name: str | None) -> list[Child] | None:
    """The children of a container repr, or None if it does not expand."""
    node = _container(text)
    if node is None:
        return None
    src = text.strip()
    out: list[Child] = []
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values):
            if k is None:
                return None
            key = _segment(src, k)
            out.append(Child(key, _segment(src, v), f"{evaluate_name}[{key}]" if evaluate_name else None))
        return out
    assert isinstance(node, (ast.List, ast.Tuple, ast.Set))
    for i, elt in enumerate(node.elts):
        index = evaluate_name is not None and not isinstance(node, ast.Set)
        out.append(Child(str(i), _segment(src, elt), f"{evaluate_name}[{i}]" if index else None))
    return out


def count_children(text: str) -> int:
    node = _container(text)
    if node is None:
        return 0
    return len(node.keys) if isinstance(node, ast.Dict) else len(node.elts)  # type: ignore[attr-defined]


def expandable(text: str) -> bool:
    return count_children(text) > 0


def type_name(text: str) -> str | None:
    value: Any = try_literal(text)
    return None if value is NOT_LITERAL else type(value).__name__


def _container(text: str) -> ast.expr | None:
    src = text.strip()
    if not src or src[0] not in "[({" or len(src) > MAX_CHILD_TEXT:
        return None
    try:
        node = ast.parse(src, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return None
    # Only literal containers: a repr like [Point(1, 2)] is shown as text.
    if try_literal(src) is NOT_LITERAL:
        return None
    return node


def _segment(src: str, node: ast.AST) -> str:
    seg = ast.get_source_segment(src, node)
    return seg if seg is not None else ast.unparse(node)
