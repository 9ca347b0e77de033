"""Holes (``??``): the "Fill hole" code actions, inline completions and the
background fills started when a document opens. The fills themselves come
from :mod:`neuraldbg.server.fills`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from neuraldbg.holes.search import FillError, fill_title
from neuraldbg.source.document import Document
from neuraldbg.source.model import FunctionInfo, Hole, SourceIndex

if TYPE_CHECKING:
    from neuraldbg.server.controller import Controller


class HoleActions:
    def __init__(self, controller: "Controller") -> None:
        self.c = controller

    def _holes_in(self, index: SourceIndex, first: int, last: int) -> list[Hole]:
        return [h for h in index.holes if h.span.start_line <= last and h.span.end_line >= first]

    async def _fill_action(self, uri: str, doc: Document, fn: FunctionInfo, holes: tuple[Hole, ...],
                           diagnostics: list[types.Diagnostic], single: bool) -> types.CodeAction | None:
        try:
            result = await self.c.fills.fill(uri, fn, holes)
        except FillError as exc:
            reason = f"cannot fill: {exc}"
            if self.c.client.disabled_actions:
                title = "Fill hole" if single else f"Fill all holes in {fn.name}"
                return types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=diagnostics,
                                        disabled=types.CodeActionDisabled(reason=reason))
            self.c.log_to_client(reason, types.MessageType.Info)
            return None
        except Exception as exc:  # a backend failure must not fail the whole request
            self.c.log_to_client(f"filling holes failed: {exc}", types.MessageType.Warning)
            return None
        if self.c.doc(uri) is not doc:
            return None
        edits = [types.TextEdit(range=self.c.to_range(doc, h.span), new_text=t) for h, t in zip(holes, result.texts)]
        passed = result.check is None or result.check.passed
        return types.CodeAction(title=fill_title(result, single, fn), kind=types.CodeActionKind.QuickFix,
                                diagnostics=diagnostics, edit=types.WorkspaceEdit(changes={uri: edits}),
                                is_preferred=passed and result.check is not None)

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        await self.c.ready(uri)
        doc = self.c.doc(uri)
        if doc is None:
            return []
        if params.context.only and not any(str(k.value if hasattr(k, "value") else k).startswith("quickfix")
                                           for k in params.context.only):
            return []
        self.c.flush(uri)
        index = doc.index
        holes = self._holes_in(index, params.range.start.line, params.range.end.line)
        out: list[types.CodeAction] = []
        done_fns: set[str] = set()
        for hole in holes:
            fn = index.function(hole.function) if hole.function else None
            if fn is None:
                continue
            diags = [d for d in params.context.diagnostics if d.code == "hole" and d.range.start.line == hole.span.start_line]
            action = await self._fill_action(uri, doc, fn, (hole,), diags, True)
            if action is not None:
                out.append(action)
            siblings = tuple(h for h in index.holes if h.function == fn.qualname)
            if len(siblings) > 1 and fn.qualname not in done_fns:
                done_fns.add(fn.qualname)
                action = await self._fill_action(uri, doc, fn, siblings, diags, False)
                if action is not None:
                    out.append(action)
        return out

    async def inline_completion(self, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        uri = params.text_document.uri
        where = await self.c._at_position(uri, params.position)
        if where is None:
            return None
        doc, line0, col = where
        index = doc.index
        hole = next((h for h in index.holes if h.span.start_line == line0 and h.span.start_col <= col <= h.span.end_col), None)
        if hole is None or hole.function is None:
            return types.InlineCompletionList(items=[])
        fn = index.function(hole.function)
        if fn is None:
            return types.InlineCompletionList(items=[])
        try:
            result = await self.c.fills.fill(uri, fn, (hole,))
        except FillError as exc:
            self.c.log_to_client(f"cannot fill: {exc}", types.MessageType.Info)
            return types.InlineCompletionList(items=[])
        if self.c.doc(uri) is not doc:
            return None
        item = types.InlineCompletionItem(insert_text=result.texts[0], range=self.c.to_range(doc, hole.span),
                                          filter_text="??")
        return types.InlineCompletionList(items=[item])

    def prefetch_fills(self, uri: str) -> None:
        """Start filling single holes in the background (exec search)."""
        doc = self.c.doc(uri)
        s = self.c.settings
        if doc is None or not (s.backend in ("exec", "replay") and s.allow_execution):
            return
        for hole in doc.index.holes[:8]:
            fn = doc.index.function(hole.function) if hole.function else None
            if fn is not None:
                fut = self.c.fills.fill(uri, fn, (hole,))
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())
