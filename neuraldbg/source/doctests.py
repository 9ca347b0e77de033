"""Doctest examples in a docstring that call a given function."""

from __future__ import annotations

import ast
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

# What ast.parse / literal_eval raise on hostile text, besides SyntaxError.
PARSE_FAILURES = (SyntaxError, ValueError, TypeError, MemoryError, RecursionError)


@dataclass(frozen=True)
class DoctestCall:
    call: str  # the call expression as written in the example
    line_index: int  # 0-based line of the ">>>" line within the string literal


def docstring_lines(literal: str) -> list[str]:
    """The lines of a docstring literal as doctest sees them.

    The evaluated value is used when it has as many lines as the literal (so
    line numbers still match the file); otherwise the raw literal text.
    """
    raw = literal.split("\n")
    body = literal.lstrip("rRuUbBfF")
    if "\\" not in literal and body[:3] in ('"""', "'''") and body.endswith(body[:3]) and len(body) >= 6:
        return body[3:-3].split("\n")  # nothing to unescape: skip compiling it
    try:
        value = ast.literal_eval(quiet_parse(literal, mode="eval"))
    except PARSE_FAILURES:
        return raw
    if isinstance(value, str):
        lines = value.split("\n")
        if len(lines) == len(raw):
            return lines
    return raw


def _examples(lines: list[str]) -> Iterator[tuple[int, str]]:
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if stripped.startswith(">>>"):
            start = i
            parts = [stripped[3:].removeprefix(" ")]
            i += 1
            while i < len(lines) and lines[i].lstrip().startswith("..."):
                parts.append(lines[i].lstrip()[3:].removeprefix(" "))
                i += 1
            yield start, "\n".join(parts)
        else:
            i += 1


def _preorder(node: ast.AST) -> Iterator[ast.AST]:
    stack = [node]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(list(ast.iter_child_nodes(cur))))


def quiet_parse(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse`` without SyntaxWarnings on stderr (user text is often
    sloppy: invalid escapes, ``1if x else 2``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode=mode)


def first_call_to(source: str, name: str) -> str | None:
    """The text of the first (outermost, leftmost) call to ``name`` in
    ``source``, called as ``name(...)`` or ``something.name(...)``."""
    try:
        tree = quiet_parse(source)
    except PARSE_FAILURES:
        return None
    try:
        for node in _preorder(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if (isinstance(func, ast.Name) and func.id == name) or (isinstance(func, ast.Attribute) and func.attr == name):
                return ast.get_source_segment(source, node)
    except RecursionError:
        return None
    return None


def doctest_calls(literal: str, name: str) -> list[DoctestCall]:
    """Examples in the docstring ``literal`` that call ``name``."""
    if ">>>" not in literal:
        return []
    out: list[DoctestCall] = []
    for index, source in _examples(docstring_lines(literal)):
        call = first_call_to(source, name)
        if call is not None:
            out.append(DoctestCall(call, index))
    return out
