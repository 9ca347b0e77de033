"""textDocument/hover: the values a name took on this line, a function's
calls on its def line, what a return line returned."""

from __future__ import annotations

from lsprotocol import types

from neuraldbg.server.convert import markup, to_range
from neuraldbg.server.hover import HoverQuery, hover_markdown, not_a_variable, pending_markdown, signature_end
from neuraldbg.server.state import ServerState
from neuraldbg.source.index import identifier_kind
from neuraldbg.source.model import SourceIndex, Span


async def hover(state: ServerState, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    where = await state.documents.at(uri, params.position, state.encoding)
    if where is None:
        return None
    doc, line0, col = where
    text, line = doc.lines[line0], line0 + 1
    fn = doc.index.function_at(line)
    if fn is None:
        return None
    word = _word_at(doc.index, line, col)
    if word is None and not fn.first_line <= line <= signature_end(fn) and not text.lstrip().startswith("return"):
        return None
    kind = identifier_kind(doc.lines, fn, line, word[1], word[2]) if word is not None else "local"
    if word is not None and not_a_variable(fn, line, kind):
        return None  # before waiting for any trace
    rng = to_range(doc, Span(line0, word[1], line0, word[2]), state.encoding) if word is not None else None
    shown = await state.selection.focused(uri, fn.qualname)
    entry = shown.entry
    if entry is None:
        return None if shown.reason is None else _hover(state, f"**{fn.name}** · {shown.reason}", rng)
    trace = entry.trace
    if not trace.frames:
        what = ("tracing… (no frame yet; hover again in a moment)" if not entry.done.is_set()
                else f"no trace: {trace.error or trace.status}")
        return _hover(state, pending_markdown(fn, entry.key.call, what), rng)
    query = HoverQuery(fn=fn, line=line, word=word[0] if word else None, line_text=text, kind=kind)
    md = hover_markdown(trace, query, input_origin=shown.origin, agreement=entry.agreement)
    return None if md is None else _hover(state, md, rng)


def _hover(state: ServerState, md: str, rng: types.Range | None) -> types.Hover:
    return types.Hover(contents=markup(md, state.client.markdown), range=rng)


def _word_at(index: SourceIndex, line: int, col: int) -> tuple[str, int, int] | None:
    for name, start, end in index.identifiers.get(line, []):
        if start <= col <= end:
            return name, start, end
    return None
