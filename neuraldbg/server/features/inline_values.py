"""textDocument/inlineValue while the debug adapter is stopped: the values
of the stop's frame, from the same snapshot the debugger's variables show;
and workspace/inlineValue/refresh when the adapter publishes a new stop."""

from __future__ import annotations

import os
from collections.abc import Callable

from lsprotocol import types

from neuraldbg.server.convert import to_range, uri_to_path
from neuraldbg.server.state import ServerState
from neuraldbg.session.registry import FrameRef
from neuraldbg.source.index import identifier_kind
from neuraldbg.source.model import Span

NOT_VARIABLES = ("attribute", "keyword", "annotation")


async def inline_values(state: ServerState, params: types.InlineValueParams) -> list[types.InlineValue]:
    uri = params.text_document.uri
    await state.documents.ready(uri)
    doc = state.documents.get(uri)
    ref = state.registry.get(params.context.frame_id) or state.registry.current()
    if doc is None or ref is None:
        return []
    if ref.path and os.path.realpath(ref.path) != os.path.realpath(uri_to_path(uri)):
        return []
    state.documents.flush(uri)
    line0 = params.context.stopped_location.start.line
    if not (max(params.range.start.line, 0) <= line0 <= min(params.range.end.line, len(doc.lines) - 1)):
        return []
    values = ref.locals()
    out: list[types.InlineValue] = []
    seen: set[str] = set()
    fn = doc.index.function_at(line0 + 1)
    for name, start, end in doc.index.identifiers.get(line0 + 1, []):
        # `obj.count`, `f(count=1)`, `count: int`: the same name, not the variable
        if fn is not None and identifier_kind(doc.lines, fn, line0 + 1, start, end) in NOT_VARIABLES:
            continue
        if name in values and name not in seen:
            seen.add(name)
            out.append(types.InlineValueText(range=to_range(doc, Span(line0, start, line0, end), state.encoding),
                                             text=f"{name} = {values[name]}"))
    return out


def on_stop(state: ServerState) -> Callable[[str, list[FrameRef]], None]:
    """A debug-registry listener (called on the adapter's thread): ask the
    client to fetch the inline values of the new stop."""

    def listener(_session_id: str, _frames: list[FrameRef]) -> None:
        state.refresh.inline_values_threadsafe(state.loop)

    return listener
