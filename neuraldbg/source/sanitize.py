"""Turn document bytes into bytes tree-sitter parses the way Python reads them.

Two length-preserving substitutions, so that byte offsets, rows and columns
in the parse buffer are those of the user's text:

* ``??`` holes. ``??`` is not Python, and tree-sitter answers it with ERROR
  nodes that swallow the surrounding statement, so a function with a hole
  would not index at all. We find ``??`` tokens lexically (skipping strings
  and comments with a small regex lexer, which, unlike ``tokenize``, never
  raises on broken code) and replace each by ``__``: the same width, a valid
  identifier, so it parses both as an expression (``best = __``,
  ``f(__)``) and as a statement on its own line. The index then reports these
  positions as holes, not as identifiers, and not as syntax errors.
* A lone ``\\r`` (old Mac line ends) becomes ``\\n``: Python and LSP both end
  a line there, tree-sitter does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOLE = b"??"
PLACEHOLDER = b"__"

_STRING_TRIPLE_DQ = r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\Z)'
_STRING_TRIPLE_SQ = r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:'''|\Z)"
# A one-line string ends at its quote or, unterminated, at the end of line.
_STRING_DQ = r'"[^"\\\r\n]*(?:\\(?:\r\n|.)[^"\\\r\n]*)*"?'
_STRING_SQ = r"'[^'\\\r\n]*(?:\\(?:\r\n|.)[^'\\\r\n]*)*'?"
_COMMENT = r"\#[^\r\n]*"
# Leftmost match wins, so a '#' inside a string or a quote inside a comment
# is consumed by the token that started first.
_LEXER = re.compile(
    "|".join([_COMMENT, _STRING_TRIPLE_DQ, _STRING_TRIPLE_SQ, _STRING_DQ, _STRING_SQ, r"(?P<hole>\?\?)"]).encode(),
    re.DOTALL,
)
_LONE_CR = re.compile(rb"\r(?!\n)")


def _is_word_byte(b: int) -> bool:
    # bytes >= 0x80 may belong to a unicode identifier: treat them as word bytes
    return b == 0x5F or b == 0x3F or 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b >= 0x80


def find_holes(data: bytes) -> tuple[int, ...]:
    """Byte offsets of the ``??`` holes in ``data``: outside strings and
    comments, and not glued to a name, a number or another ``?``."""
    if HOLE not in data:
        return ()
    out: list[int] = []
    n = len(data)
    for m in _LEXER.finditer(data):
        if m.lastgroup != "hole":
            continue
        i = m.start()
        if i > 0 and _is_word_byte(data[i - 1]):
            continue
        if i + 2 < n and _is_word_byte(data[i + 2]):
            continue
        out.append(i)
    return tuple(out)


@dataclass(frozen=True)
class Sanitized:
    """The user's bytes, the bytes we parse, and where they differ."""

    original: bytes
    parse: bytes
    holes: tuple[int, ...]  # byte offsets of "??" holes
    subs: tuple[tuple[int, bytes], ...]  # (offset, replacement) in offset order


def sanitize(data: bytes) -> Sanitized:
    holes = find_holes(data)
    subs: list[tuple[int, bytes]] = [(h, PLACEHOLDER) for h in holes]
    if b"\r" in data:
        subs.extend((m.start(), b"\n") for m in _LONE_CR.finditer(data))
        subs.sort()
    if not subs:
        return Sanitized(data, data, holes, ())
    buf = bytearray(data)
    for off, rep in subs:
        buf[off : off + len(rep)] = rep
    return Sanitized(data, bytes(buf), holes, tuple(subs))
