"""Lines and position encodings: LSP (line, character) <-> str offsets.

LSP counts ``character`` in the negotiated position encoding (UTF-16 code
units by default) and splits lines at ``\\r\\n``, ``\\r`` and ``\\n``;
Python ``str`` indices count code points. Everything here clamps instead of
raising: an editor that sends a stale position gets the nearest valid one.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Literal

PositionEncoding = Literal["utf-16", "utf-8", "utf-32"]

# The LSP line terminators (not str.splitlines, which also breaks at \x0c,
# \x1c, \u2028 and more, unlike both LSP and Python's tokenizer).
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offsets (str indices) at which each line of ``text`` starts."""
    return [0] + [m.end() for m in LINE_BREAK.finditer(text)]


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without terminators (a final empty line when the
    text ends with a terminator, as editors show it)."""
    return LINE_BREAK.split(text)


def update_line_starts(starts: list[int], new_text: str, start: int, old_end: int, new_end: int) -> list[int]:
    """Line starts of ``new_text``, given ``starts`` of the text before the
    edit that replaced ``[start, old_end)`` by what is now ``[start, new_end)``.

    Only a window around the edit is rescanned: one line before it (a ``\\r``
    there may pair with an inserted ``\\n``) through one line after it.
    """
    first = bisect_right(starts, start) - 1
    last = bisect_right(starts, old_end) - 1
    lo_line = max(0, first - 1)
    lo = starts[lo_line]
    hi_line = last + 2
    delta = new_end - old_end
    if hi_line < len(starts):
        hi_new = starts[hi_line] + delta
        tail = [s + delta for s in starts[hi_line:]]
    else:
        hi_new = len(new_text)
        tail = []
    middle = [m.end() for m in LINE_BREAK.finditer(new_text, lo, hi_new)]
    if tail and middle and middle[-1] == tail[0]:
        middle.pop()
    return starts[: lo_line + 1] + middle + tail


def _unit_width(ch: str, encoding: PositionEncoding) -> int:
    cp = ord(ch)
    if encoding == "utf-16":
        return 2 if cp > 0xFFFF else 1
    if encoding == "utf-8":
        if cp < 0x80:
            return 1
        if cp < 0x800:
            return 2
        if cp < 0x10000:
            return 3  # lone surrogates included (surrogatepass)
        return 4
    return 1


def column_to_index(line: str, column: int, encoding: PositionEncoding = "utf-16") -> int:
    """The str index in ``line`` for an LSP ``column``, clamped to the line.

    A column that falls inside a character (half of a surrogate pair, the
    middle of a UTF-8 sequence) maps to the start of that character.
    """
    if column <= 0:
        return 0
    if encoding == "utf-32" or line.isascii():
        return min(column, len(line))
    units = 0
    for i, ch in enumerate(line):
        units += _unit_width(ch, encoding)
        if units > column:
            return i
        if units == column:
            return i + 1
    return len(line)


def index_to_column(line: str, index: int, encoding: PositionEncoding = "utf-16") -> int:
    """The LSP column of str index ``index`` in ``line`` (clamped)."""
    index = max(0, min(index, len(line)))
    if encoding == "utf-32" or line.isascii():
        return index
    return sum(_unit_width(ch, encoding) for ch in line[:index])


def line_content_end(text: str, starts: list[int], line: int) -> int:
    """The str offset just before the terminator of ``line``."""
    if line + 1 < len(starts):
        end = starts[line + 1]
        if text.startswith("\r\n", end - 2):
            return end - 2
        return end - 1
    return len(text)


def offset_at(text: str, starts: list[int], line: int, column: int, encoding: PositionEncoding = "utf-16") -> int:
    """The str offset of an LSP position in ``text``; a line past the end
    clamps to the end of the text, a negative one to the start."""
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    begin = starts[line]
    end = line_content_end(text, starts, line)
    return begin + column_to_index(text[begin:end], column, encoding)


def position_at(text: str, starts: list[int], offset: int, encoding: PositionEncoding = "utf-16") -> tuple[int, int]:
    """The LSP (line, column) of a str offset (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    line = bisect_right(starts, offset) - 1
    begin = starts[line]
    end = line_content_end(text, starts, line)
    return line, index_to_column(text[begin:end], min(offset, end) - begin, encoding)
