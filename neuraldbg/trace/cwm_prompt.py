"""Trace-mode prompts: the source context with the entry marked.

    BOS <|trace_context_start|> SOURCE <|frame_sep|>

Pure functions; callers cache the result (the prompt is the shared prefix of
every request about one function and input).
"""

from __future__ import annotations

import re

from neuraldbg.trace.cwm_tokens import BOS, FRAME_SEP, START_MARKER, START_MARKER_TEXT, TRACE_CONTEXT_START
from neuraldbg.trace.tokenizer import TokenizerLike

# Python's own line ends (str.splitlines also splits on \f, \x1c, U+2028, ... which Python does not).
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


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


def mark_entry(source: str, def_line: int) -> str:
    """``source`` with the START marker on the 1-based ``def_line`` (the line
    of the entry's ``def`` keyword) and on no other line.

    A line that already carries the marker is left as it is; a trailing comment
    stays and the marker follows it. Markers on other lines are removed so the
    model sees exactly one entry.
    """
    lines = split_lines_keepends(source)
    if not 1 <= def_line <= len(lines):
        raise ValueError(f"def_line {def_line} is outside the source (1..{len(lines)})")
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        if number == def_line:
            if not has_marker(line):
                body, end = _split_end(line)
                line = body.rstrip() + START_MARKER + end
        elif has_marker(line):
            line = strip_marker(line)
        out.append(line)
    return "".join(out)


def trace_context(source_with_marker: str) -> str:
    """The SOURCE part of the prompt: the text as given, ending with a newline
    (the frame separator follows a complete last line, as in the format)."""
    if source_with_marker and not source_with_marker.endswith(("\n", "\r")):
        return source_with_marker + "\n"
    return source_with_marker


def trace_prompt_ids(tok: TokenizerLike, source_with_marker: str) -> list[int]:
    """``[BOS, trace_context_start] + encode(source) + [frame_sep]``."""
    return [BOS, TRACE_CONTEXT_START, *tok.encode(trace_context(source_with_marker)), FRAME_SEP]
