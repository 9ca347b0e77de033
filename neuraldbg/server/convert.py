"""Session values to protocol values and back: ranges in the client's
position encoding, line ends, markup for clients without markdown."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from lsprotocol import types

from neuraldbg.source.document import Document
from neuraldbg.source.model import Span
from neuraldbg.source.positions import column_to_index, index_to_column


def uri_to_path(uri: str) -> str:
    if uri.startswith("file://"):
        return unquote(urlparse(uri).path)
    return uri


def to_range(doc: Document, span: Span, encoding: str) -> types.Range:
    lines = doc.lines

    def pos(line: int, col: int) -> types.Position:
        if line >= len(lines):
            line = max(0, len(lines) - 1)
        text = lines[line] if lines else ""
        return types.Position(line=line, character=index_to_column(text, col, encoding))  # type: ignore[arg-type]

    return types.Range(start=pos(span.start_line, span.start_col), end=pos(span.end_line, span.end_col))


def line_end(doc: Document, line: int, encoding: str) -> types.Position:
    """The end of a 1-based line's text, trailing blanks excluded."""
    text = doc.lines[line - 1]
    return types.Position(line=line - 1, character=index_to_column(text, len(text.rstrip()), encoding))  # type: ignore[arg-type]


def code_point(doc: Document, position: types.Position, encoding: str) -> tuple[int, int] | None:
    """(0-based line, code-point column) of a position; None for a line out of range."""
    line0 = position.line
    if not 0 <= line0 < len(doc.lines):
        return None
    return line0, column_to_index(doc.lines[line0], position.character, encoding)  # type: ignore[arg-type]


def markup(text: str, markdown: bool) -> types.MarkupContent:
    if markdown:
        return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
    plain = text.replace("```python\n", "").replace("\n```", "").replace("**", "").replace("`", "")
    return types.MarkupContent(kind=types.MarkupKind.PlainText, value=plain)
