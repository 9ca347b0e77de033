"""Doctest examples in a docstring that call a given function."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from tree_sitter import Parser

from neuraldbg.source.sanitize import sanitize
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


@dataclass(frozen=True)
class Example:
    """One ``>>>`` example (with its ``...`` lines) of a docstring."""

    line_index: int  # 0-based line of the ">>>" line
    source: str  # the code, prompts removed, one line per docstring line
    runs: bool  # doctest runs it and expects no exception (not +SKIP, no Traceback expected)


def _examples(lines: list[str]) -> Iterator[Example]:
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
            want = lines[i].strip() if i < len(lines) else ""
            source = "\n".join(parts)
            skipped = "doctest:" in source and "+SKIP" in source
            yield Example(start, source, not skipped and not want.startswith("Traceback ("))
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
    for example in _examples(docstring_lines(literal)):
        call = first_call_to(example.source, name, parser)
        if call is not None:
            out.append(DoctestCall(call, example.line_index))
    return out


def doctest_setup(literal: str, line_index: int, first_row: int = 0) -> str:
    """The code doctest runs before the example at ``line_index`` of the
    docstring ``literal``: its earlier examples, in order, except those it
    skips or expects to raise. Each keeps its line: the example on line
    ``i`` of the literal starts on line ``first_row + i + 1`` of the code and
    the lines in between are blank, so that an error's line number is the
    file's when the literal starts on 0-based row ``first_row``. "" when
    nothing comes before."""
    code: list[str] = []
    for example in _examples(docstring_lines(literal)):
        if example.line_index >= line_index:
            break
        if example.runs:
            code += [""] * (first_row + example.line_index - len(code))
            code += example.source.split("\n")
    return "\n".join(code) + "\n" if code else ""


def docstring_at(text: str, line: int) -> tuple[str, int] | None:
    """The string literal of ``text`` holding the ``>>>`` prompt on 1-based
    ``line`` (rows as the index counts them), and the literal's 0-based first
    row; None if that line has no prompt inside a string."""
    source = sanitize(text.encode("utf-8", "surrogatepass"))
    data = source.parse
    start = 0
    for _ in range(line - 1):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return None
    end = data.find(b"\n", start)
    col = data.find(b">>>", start, len(data) if end < 0 else end)
    if col < 0:
        return None
    point = (line - 1, col - start)
    node = new_parser().parse(data).root_node.descendant_for_point_range(point, point)
    while node is not None and node.type != "string":
        node = node.parent
    if node is None:
        return None
    # node boundaries fall between characters of text: this decodes
    return source.original[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass"), node.start_point[0]
