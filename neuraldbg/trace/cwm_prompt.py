"""Trace-mode prompts: the source context with the entry marked.

    BOS <|trace_context_start|> SOURCE <|frame_sep|>

SOURCE is what the release's debugger (facebookresearch/cwm,
``demos/cwmdbg.py``) sends for a file whose entry ``def`` line carries the
START marker: the file as ``open()`` reads it in text mode (universal
newlines, so every line ends with ``\n``), encoded as read. The release adds
and removes no marker itself; we add it on the entry's line and remove real
marker comments elsewhere, so the model sees one entry.

Pure functions; callers cache the result (the prompt is the shared prefix of
every request about one function and input).
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

from neuraldbg.trace.cwm_tokens import BOS, FRAME_SEP, START_MARKER, START_MARKER_TEXT, TRACE_CONTEXT_START
from neuraldbg.trace.tokenizer import TokenizerLike

# Python's own line ends (str.splitlines also splits on \f, \x1c, U+2028, ... which Python does not).
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_NON_LF_END = re.compile(r"\r\n?")


def split_lines_keepends(source: str) -> list[str]:
    """Lines as Python numbers them (\\n, \\r\\n or \\r), each with its line end."""
    return _LINE_RE.findall(source)


def _split_end(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body) :]


def has_marker(line: str) -> bool:
    return line.rstrip().endswith(START_MARKER_TEXT)


def strip_marker(line: str) -> str:
    """``line`` without a trailing START marker (a suffix, not a character set)
    and without the whitespace before it; line ends are kept."""
    body, end = _split_end(line)
    stripped = body.rstrip()
    if stripped.endswith(START_MARKER_TEXT):
        return stripped[: -len(START_MARKER_TEXT)].rstrip() + end
    return line


def normalize_line_ends(source: str) -> str:
    """CRLF and lone CR as LF, as text-mode ``open()`` reads them: one line
    end per line, so line N stays line N."""
    return _NON_LF_END.sub("\n", source)


@dataclass(frozen=True)
class _MarkerComments:
    """Where Python's tokenizer found the START marker as a real comment."""

    lines: frozenset[int]  # 1-based lines whose comment ends with the marker
    known_before: int  # lines before this one were tokenized; tokenize stopped at an error there


def _marker_comments(source: str) -> _MarkerComments:
    found: set[int] = set()
    last_row = 0
    # LF text: tokenize's readline would not end a line at a lone CR, Python does
    readline = io.StringIO(normalize_line_ends(source)).readline
    try:
        for tok in tokenize.generate_tokens(readline):
            last_row = tok.end[0]
            if tok.type == tokenize.COMMENT and tok.string.rstrip().endswith(START_MARKER_TEXT):
                found.add(tok.start[0])
    except tokenize.TokenError as exc:  # EOF inside a string or brackets
        return _MarkerComments(frozenset(found), min(exc.args[1][0], last_row + 1))
    except SyntaxError as exc:  # IndentationError (and 3.12's tokenizer errors)
        return _MarkerComments(frozenset(found), min(exc.lineno or 1, last_row + 1))
    return _MarkerComments(frozenset(found), last_row + 1)


def _scan(source: str, n_lines: int) -> _MarkerComments:
    if START_MARKER_TEXT in source:
        return _marker_comments(source)
    return _MarkerComments(frozenset(), n_lines + 1)  # nothing to find: skip the tokenizer


def _is_marked(comments: _MarkerComments, number: int, line: str) -> bool:
    # past a tokenize error nothing is known: the text's suffix decides
    return number in comments.lines if number < comments.known_before else has_marker(line)


def marked_lines(source: str) -> list[int]:
    """1-based lines that carry the START marker as a comment; string content
    that looks like it does not count."""
    lines = split_lines_keepends(source)
    comments = _scan(source, len(lines))
    return [n for n, line in enumerate(lines, start=1) if _is_marked(comments, n, line)]


def mark_entry(source: str, def_line: int) -> str:
    """``source`` with the START marker on the 1-based ``def_line`` (the line
    of the entry's ``def`` keyword) and on no other line.

    A line that already carries the marker is left as it is; a trailing comment
    stays and the marker follows it. Marker comments on other lines are removed
    so the model sees exactly one entry; text that only looks like one (string
    content) is left byte for byte, and so is every line after a point where
    Python's tokenizer gives up (a broken file: nothing is known there; the
    entry line counts as marked there if its text ends with the marker).
    Line ends are kept (:func:`trace_context` makes them LF).
    """
    lines = split_lines_keepends(source)
    if not 1 <= def_line <= len(lines):
        raise ValueError(f"def_line {def_line} is outside the source (1..{len(lines)})")
    comments = _scan(source, len(lines))
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        if number == def_line:
            if not _is_marked(comments, number, line):
                body, end = _split_end(line)
                line = body.rstrip() + START_MARKER + end
        elif number in comments.lines:
            line = strip_marker(line)
        out.append(line)
    return "".join(out)


def trace_context(source_with_marker: str) -> str:
    """The SOURCE part of the prompt: the text as the release reads its file
    (text mode: LF line ends, line numbers unchanged), no newline added."""
    return normalize_line_ends(source_with_marker)


def trace_prompt_ids(tok: TokenizerLike, source_with_marker: str) -> list[int]:
    """``[BOS, trace_context_start] + encode(trace_context(source)) + [frame_sep]``."""
    return [BOS, TRACE_CONTEXT_START, *tok.encode(trace_context(source_with_marker)), FRAME_SEP]
