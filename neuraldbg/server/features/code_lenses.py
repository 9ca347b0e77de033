"""textDocument/codeLens: simulate, resample, verify and set-the-input lenses above each function."""

from __future__ import annotations

from lsprotocol import types

from neuraldbg.server.convert import to_range
from neuraldbg.server.lenses import lenses_for
from neuraldbg.server.state import ServerState
from neuraldbg.session.session import InputError
from neuraldbg.source.model import Span


async def code_lenses(state: ServerState, params: types.CodeLensParams) -> list[types.CodeLens]:
    uri = params.text_document.uri
    doc = await state.documents.current(uri)
    if doc is None:
        return []
    s = state.settings
    out: list[types.CodeLens] = []
    for fn in doc.index.functions:
        call: str | None
        try:
            call, origin = state.session.input_for(uri, fn.qualname)
        except InputError:
            call, origin = None, ""
        for lens in lenses_for(fn, uri, call, origin, backend=s.backend, allow_execution=s.allow_execution):
            span = Span(lens.line - 1, 0, lens.line - 1, 0)
            out.append(types.CodeLens(range=to_range(doc, span, state.encoding),
                                      command=types.Command(title=lens.title, command=lens.command,
                                                            arguments=lens.arguments)))
    return out
