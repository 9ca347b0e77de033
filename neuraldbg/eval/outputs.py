"""CruxEval-O's pass criterion on repr strings.

CruxEval's own harness executes ``assert f(input) == output``. Here both
sides are reprs (the dataset's expected output, and the return value a
trace predicts), so each is evaluated as a Python literal and the values
compared with ``==`` exactly as that assert would; when either side is not a
literal (an object repr, a truncated value, model noise) the stripped
strings are compared instead. Nothing is ever executed.
"""

from __future__ import annotations

import ast
from typing import Any

_NOT_A_LITERAL = object()
MAX_LITERAL_CHARS = 100_000  # longer text is compared as a string (literal_eval of huge input is slow)


def parse_literal(text: str) -> Any:
    """The value of ``text`` as a Python literal, or ``_NOT_A_LITERAL``."""
    if not isinstance(text, str) or len(text) > MAX_LITERAL_CHARS:
        return _NOT_A_LITERAL
    try:
        return ast.literal_eval(text.strip())
    # literal_eval raises several types on bad input, and deep nesting can
    # exhaust the parser's recursion or memory.
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_A_LITERAL


def outputs_match(predicted: str | None, expected: str) -> bool:
    """True when ``predicted`` passes as ``expected`` (see the module doc)."""
    if predicted is None:
        return False
    got, want = parse_literal(predicted), parse_literal(expected)
    if got is _NOT_A_LITERAL or want is _NOT_A_LITERAL:
        return predicted.strip() == expected.strip()
    try:
        return bool(got == want)
    except RecursionError:  # self-similar nesting too deep to compare
        return predicted.strip() == expected.strip()
