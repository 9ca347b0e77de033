"""Syntax problems: found with tree-sitter, judged and worded by Python.

tree-sitter finds ERROR and MISSING nodes anywhere and cheaply, but its
grammar is more lenient than Python about indentation (``def f():`` with an
unindented body parses cleanly) and its error nodes carry no message. So a
group of statements that tree-sitter finds suspicious (an error node, or an
indentation anomaly) is compiled by Python's own parser, the interpreter
the tracer runs: its SyntaxError (message and position) is what the user
sees; if Python accepts the group there is no problem to report. The
tree-sitter wording is used where Python's says only "invalid syntax" or
Python cannot tell (text it refuses to compile, such as lone surrogates).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable

from tree_sitter import Node

from neuraldbg.source.doctests import PARSE_FAILURES
from neuraldbg.source.model import Span, SyntaxProblem

_BRACKETS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _BRACKETS.items()}
# Python's messages name lines of the compiled text, which is a group of the
# file, not the file: drop those references (the span says where).
_LINE_REFS = re.compile(r" on line \d+| \(detected at line \d+\)")
_TOKEN = re.compile(r"\w+|\S")

SpanOf = Callable[[tuple[int, int], tuple[int, int]], Span]
TextOf = Callable[[Node], str]


def _leaves(node: Node, limit: int = 5000) -> list[Node]:
    out: list[Node] = []
    stack = [node]
    while stack and len(out) < limit:
        cur = stack.pop()
        kids = cur.children
        if not kids:
            out.append(cur)
        else:
            stack.extend(reversed(kids))
    return out


def error_problem(node: Node, span_of: SpanOf, text_of: TextOf) -> SyntaxProblem:
    """A problem for a tree-sitter ERROR node, worded from its tokens."""
    leaves = [leaf for leaf in _leaves(node) if leaf.end_byte > leaf.start_byte]
    if not leaves:
        return SyntaxProblem(span_of(node.start_point, node.end_point), "invalid syntax")
    # An opener never closed inside the error is the usual culprit ("f(x"
    # at the end of a file); otherwise a token tree-sitter could not lex at
    # all (a nested ERROR leaf, e.g. "???"), else the first token.
    opened: list[Node] = []
    for leaf in leaves:
        kind = leaf.type
        if kind in _BRACKETS:
            opened.append(leaf)
        elif kind in _CLOSERS and opened and opened[-1].type == _CLOSERS[kind]:
            opened.pop()
    if opened:
        culprit = opened[-1]
        return SyntaxProblem(span_of(culprit.start_point, culprit.end_point), f"'{culprit.type}' was never closed")
    culprit = next((leaf for leaf in leaves if leaf.type == "ERROR"), leaves[0])
    token = text_of(culprit)
    if len(token) > 30:
        token = token[:27] + "..."
    return SyntaxProblem(span_of(culprit.start_point, culprit.end_point), f"unexpected token {token!r}")


def missing_problem(node: Node, span_of: SpanOf) -> SyntaxProblem:
    kind = node.type
    message = f"missing {kind.replace('_', ' ')}" if node.is_named else f"missing {kind!r}"
    return SyntaxProblem(span_of(node.start_point, node.end_point), message)


def python_error(source: str) -> SyntaxError | None:
    """Python's first SyntaxError for ``source`` (None if it parses).
    Raises ValueError-like PARSE_FAILURES when Python cannot tell."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<neuraldbg>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as exc:
            return exc
    return None


def judge(source: str, found: list[SyntaxProblem]) -> list[SyntaxProblem]:
    """The problems to report for a suspicious group whose text (group
    relative rows) is ``source``, given what tree-sitter ``found``."""
    try:
        exc = python_error(source)
    except PARSE_FAILURES:
        return found
    if exc is None:
        return []
    lines = source.split("\n")
    row = max(0, (exc.lineno or 1) - 1)
    line = lines[row] if row < len(lines) else ""
    col = min(max(0, (exc.offset or 1) - 1), len(line))
    end_row = (exc.end_lineno or exc.lineno or 1) - 1
    end_col = (exc.end_offset or 0) - 1
    if end_row < row or (end_row == row and end_col <= col):
        end_row, end_col = row, min(col + 1, max(len(line), col))
    span = Span(row, col, end_row, end_col)
    message = _LINE_REFS.sub("", exc.msg or "invalid syntax")
    if message == "invalid syntax":
        # Python's least helpful message: prefer tree-sitter's "missing ')'"
        # on the same line, else name the token Python stopped at.
        for problem in found:
            if problem.message.startswith("missing") and problem.span.start_line == row:
                return [problem]
        m = _TOKEN.match(line, col)
        message = f"invalid syntax: unexpected {m.group(0)!r}" if m else "invalid syntax: unexpected end of line"
    return [SyntaxProblem(span, message)]
