"""Holes (``??``): the "Fill hole" code actions, inline completions and the
background fills started when a document opens. The fills themselves come
from :mod:`neuraldbg.server.fills`."""

from __future__ import annotations

from lsprotocol import types

from neuraldbg.holes.search import FillError, fill_title
from neuraldbg.server.convert import to_range
from neuraldbg.server.state import ServerState
from neuraldbg.session.policy import runs_code
from neuraldbg.source.document import Document
from neuraldbg.source.model import FunctionInfo, Hole, SourceIndex

PREFETCHED_HOLES = 8  # holes of a document filled in the background on open


async def code_actions(state: ServerState, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    await state.documents.ready(uri)
    doc = state.documents.get(uri)
    if doc is None or not _wants_quickfix(params.context.only):
        return []
    state.documents.flush(uri)
    index = doc.index
    out: list[types.CodeAction] = []
    done_fns: set[str] = set()
    for hole in _holes_in(index, params.range.start.line, params.range.end.line):
        fn = index.function(hole.function) if hole.function else None
        if fn is None:
            continue
        diags = [d for d in params.context.diagnostics if d.code == "hole" and d.range.start.line == hole.span.start_line]
        action = await _fill_action(state, uri, doc, fn, (hole,), diags, True)
        if action is not None:
            out.append(action)
        siblings = tuple(h for h in index.holes if h.function == fn.qualname)
        if len(siblings) > 1 and fn.qualname not in done_fns:
            done_fns.add(fn.qualname)
            action = await _fill_action(state, uri, doc, fn, siblings, diags, False)
            if action is not None:
                out.append(action)
    return out


async def inline_completion(state: ServerState, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
    uri = params.text_document.uri
    where = await state.documents.at(uri, params.position, state.encoding)
    if where is None:
        return None
    doc, line0, col = where
    index = doc.index
    hole = next((h for h in index.holes if h.span.start_line == line0 and h.span.start_col <= col <= h.span.end_col), None)
    fn = index.function(hole.function) if hole is not None and hole.function is not None else None
    if hole is None or fn is None:
        return types.InlineCompletionList(items=[])
    try:
        result = await state.fills.fill(uri, fn, (hole,))
    except FillError as exc:
        state.log_to_client(f"cannot fill: {exc}", types.MessageType.Info)
        return types.InlineCompletionList(items=[])
    if state.documents.get(uri) is not doc:
        return None
    item = types.InlineCompletionItem(insert_text=result.texts[0], range=to_range(doc, hole.span, state.encoding),
                                      filter_text="??")
    return types.InlineCompletionList(items=[item])


def prefetch_fills(state: ServerState, uri: str) -> None:
    """Start filling single holes in the background (exec search)."""
    doc = state.documents.get(uri)
    s = state.settings
    if doc is None or not runs_code(s.backend) or state.session.policy.refusal(s) is not None:
        return
    for hole in doc.index.holes[:PREFETCHED_HOLES]:
        fn = doc.index.function(hole.function) if hole.function else None
        if fn is not None:
            fut = state.fills.fill(uri, fn, (hole,))
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())


def _wants_quickfix(only: list[types.CodeActionKind | str] | None) -> bool:
    return not only or any(str(k.value if hasattr(k, "value") else k).startswith("quickfix") for k in only)


def _holes_in(index: SourceIndex, first: int, last: int) -> list[Hole]:
    return [h for h in index.holes if h.span.start_line <= last and h.span.end_line >= first]


async def _fill_action(state: ServerState, uri: str, doc: Document, fn: FunctionInfo, holes: tuple[Hole, ...],
                       diagnostics: list[types.Diagnostic], single: bool) -> types.CodeAction | None:
    try:
        result = await state.fills.fill(uri, fn, holes)
    except FillError as exc:
        reason = f"cannot fill: {exc}"
        if state.client.disabled_actions:
            title = "Fill hole" if single else f"Fill all holes in {fn.name}"
            return types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=diagnostics,
                                    disabled=types.CodeActionDisabled(reason=reason))
        state.log_to_client(reason, types.MessageType.Info)
        return None
    except Exception as exc:  # a backend failure must not fail the whole request
        state.log_to_client(f"filling holes failed: {exc}", types.MessageType.Warning)
        return None
    if state.documents.get(uri) is not doc:
        return None
    edits = [types.TextEdit(range=to_range(doc, h.span, state.encoding), new_text=t) for h, t in zip(holes, result.texts)]
    passed = result.check is None or result.check.passed
    return types.CodeAction(title=fill_title(result, single, fn), kind=types.CodeActionKind.QuickFix,
                            diagnostics=diagnostics, edit=types.WorkspaceEdit(changes={uri: edits}),
                            is_preferred=passed and result.check is not None)
