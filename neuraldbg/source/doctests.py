"""Doctest examples in a docstring that call a given function."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from tree_sitter import Parser

from neuraldbg.source.treesitter import new_parser


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


def quiet_parse(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse`` without SyntaxWarnings on stderr (user text is often
    sloppy: invalid escapes, ``1if x else 2``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode=mode)


def first_call_to(source: str, name: str, parser: Parser | None = None) -> str | None:
    """The text of the first (outermost, leftmost) call to ``name`` in
    ``source``, called as ``name(...)`` or ``something.name(...)``; None if
    there is none or ``source`` is not valid Python. (tree-sitter rather than
    ``ast``: an index may hold hundreds of examples, and it is ~5x faster.)"""
    if name not in source:
        return None
    data = source.encode("utf-8", "surrogatepass")
    root = (parser or new_parser()).parse(data).root_node
    if root.has_error:
        return None
    target = name.encode("utf-8", "surrogatepass")
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "call":
            func = node.child_by_field_name("function")
            if func is not None and func.type == "attribute":
                func = func.child_by_field_name("attribute")
            if func is not None and func.type == "identifier" and func.text == target:
                return data[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")
        stack.extend(reversed(node.named_children))
    return None


def doctest_calls(literal: str, name: str, parser: Parser | None = None) -> list[DoctestCall]:
    """Examples in the docstring ``literal`` that call ``name``."""
    if ">>>" not in literal:
        return []
    out: list[DoctestCall] = []
    for index, source in _examples(docstring_lines(literal)):
        call = first_call_to(source, name, parser)
        if call is not None:
            out.append(DoctestCall(call, index))
    return out
