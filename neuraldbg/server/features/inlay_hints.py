"""textDocument/inlayHint: at the end of each executed line, the values it produced."""

from __future__ import annotations

from lsprotocol import types

from neuraldbg.server.convert import line_end
from neuraldbg.server.inlay import inlay_items
from neuraldbg.server.state import ServerState
from neuraldbg.session.session import PRIORITY_VISIBLE, TraceEntry
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.values import origin as origin_text


async def inlay_hints(state: ServerState, params: types.InlayHintParams) -> list[types.InlayHint]:
    uri = params.text_document.uri
    doc = await state.documents.current(uri)
    if doc is None:
        return []
    n = len(doc.lines)
    first, last = max(1, params.range.start.line + 1), min(n, params.range.end.line + 1)
    out: list[types.InlayHint] = []
    for fn in doc.index.functions:
        if fn.end_line < first or fn.first_line > last:
            continue
        shown = state.selection.shown(uri, fn.qualname, priority=PRIORITY_VISIBLE)
        trace = _frames_of(shown.entry)
        if trace is None:
            continue
        tip = _tooltip(trace, shown.origin)
        for item in inlay_items(trace, fn, doc.index, first, last):
            if item.line <= n:
                out.append(types.InlayHint(position=line_end(doc, item.line, state.encoding), label=item.label,
                                           padding_left=True, tooltip=tip))
    return out


def _frames_of(entry: TraceEntry | None) -> Trace | None:
    return entry.trace if entry is not None and entry.trace.frames else None


def _tooltip(trace: Trace, origin: str) -> str:
    how = f" ({origin})" if origin and origin != "explicit" else ""
    return f"{origin_text(trace)} · input {trace.call or '(imagined)'}{how}"
