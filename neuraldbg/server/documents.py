"""The open documents as the server keeps them in the Session: edits are
applied at once and the index brought up to date lazily (``flush``) or
after a typing pause; a large document is indexed in a worker thread and
adopted on the loop, with the edits that arrived meanwhile replayed.

A document that may have missed a change (its didChange could not be read)
is stale: its edits cannot be placed and its positions are not trusted, so
position requests get nothing and incremental edits are dropped until the
editor sends the whole text (a full-text change, or opening it again)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from neuraldbg.server.convert import code_point
from neuraldbg.server.throttle import Debouncer
from neuraldbg.session.session import Session
from neuraldbg.source.document import Document

log = logging.getLogger(__name__)

LARGE_DOCUMENT = 256 * 1024  # characters: such a document is first indexed in a worker thread

DocumentHook = Callable[[str], None]
FlushHook = Callable[[str, set[str]], None]  # (uri, functions whose source changed)


class Documents:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dirty: set[str] = set()  # edited since the last flush
        self.stale: set[str] = set()  # may have missed a change: waiting for the full text
        # large documents being indexed off the loop, and the edits that arrived meanwhile
        self.opening: dict[str, asyncio.Future[Document]] = {}
        self.pending_changes: dict[str, list[tuple[types.DidChangeTextDocumentParams, str]]] = {}
        self.debounce = Debouncer(self._settled)
        self.on_opened: list[DocumentHook] = []  # a document is open and indexed
        self.on_settled: list[DocumentHook] = []  # the user stopped typing (after the flush)
        self.on_flushed: list[FlushHook] = []

    def get(self, uri: str) -> Document | None:
        return self.session.documents.get(uri)

    async def ready(self, uri: Any) -> None:
        """Wait until a large document being opened is indexed."""
        fut = self.opening.get(uri) if isinstance(uri, str) else None
        if fut is not None:
            await asyncio.shield(fut)

    async def current(self, uri: str) -> Document | None:
        """The document with every edit received so far indexed (None: not open)."""
        await self.ready(uri)
        doc = self.get(uri)
        if doc is not None:
            self.flush(uri)
        return doc

    async def at(self, uri: str, position: types.Position, encoding: str) -> tuple[Document, int, int] | None:
        """The current document and (0-based line, code-point column) of a
        request's position; None for an unknown document or a line out of range."""
        doc = await self.current(uri)
        if uri in self.stale:
            return None  # the text may not be the editor's: a position in it may point elsewhere
        where = code_point(doc, position, encoding) if doc is not None else None
        return None if doc is None or where is None else (doc, *where)

    def flush(self, uri: str) -> set[str]:
        """Bring the session up to date with the edits received so far."""
        if uri not in self.dirty:
            return set()
        self.dirty.discard(uri)
        changed = self.session.edits_done(uri)
        for hook in self.on_flushed:
            hook(uri, changed)
        return changed

    # -- text synchronisation ---------------------------------------------------
    def lost_change(self, uri: str | None) -> list[str]:
        """A change to ``uri`` (None: to any open document) could not be
        read: mark the open ones it may concern stale; returns them."""
        known = [*self.session.documents, *self.opening]
        marked = [u for u in dict.fromkeys(known) if uri is None or u == uri]
        self.stale.update(marked)
        return marked

    def open(self, uri: str, text: str) -> None:
        self.stale.discard(uri)
        self.opening.pop(uri, None)
        self.pending_changes.pop(uri, None)
        if len(text) > LARGE_DOCUMENT:
            # indexing a large file takes seconds: do it in a worker thread,
            # nothing else touches that Document until it is adopted
            def build() -> Document:
                doc = Document(text, uri=uri)
                _ = doc.index
                return doc

            fut = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(None, build))
            self.opening[uri] = fut
            self.pending_changes[uri] = []
            fut.add_done_callback(lambda f, uri=uri: self._adopt(uri, f))
            return
        self.session.open(uri, text)
        self._opened(uri)

    def _adopt(self, uri: str, fut: asyncio.Future[Document]) -> None:
        if self.opening.get(uri) is not fut:
            return  # closed or re-opened meanwhile
        del self.opening[uri]
        changes = self.pending_changes.pop(uri, [])
        if fut.cancelled() or fut.exception() is not None:
            log.error("indexing %s failed: %s", uri, None if fut.cancelled() else fut.exception())
            return
        self.session.open_document(uri, fut.result())
        self._opened(uri)
        for params, encoding in changes:
            self.change(params, encoding)

    def _opened(self, uri: str) -> None:
        self.dirty.discard(uri)
        for hook in self.on_opened:
            hook(uri)

    def change(self, params: types.DidChangeTextDocumentParams, encoding: str) -> None:
        uri = params.text_document.uri
        if uri in self.opening:
            self.pending_changes[uri].append((params, encoding))
            return
        if uri not in self.session.documents:
            log.warning("change for a document that is not open: %s", uri)
            return
        for change in params.content_changes:
            rng = getattr(change, "range", None)
            if rng is None:
                self.session.replace(uri, change.text)
                if uri in self.stale:
                    self.stale.discard(uri)
                    log.info("%s: the full text arrived, in sync again", uri)
                continue
            if uri in self.stale:
                log.debug("%s: an edit to a stale document dropped (waiting for the full text)", uri)
                continue
            self.session.edit(uri, (rng.start.line, rng.start.character), (rng.end.line, rng.end.character),
                              change.text, encoding=encoding)
        self.dirty.add(uri)
        self.debounce(uri, self.session.settings.debounce_ms / 1000.0)

    def close(self, uri: str) -> None:
        self.opening.pop(uri, None)
        self.pending_changes.pop(uri, None)
        self.debounce.cancel(uri)
        self.dirty.discard(uri)
        self.stale.discard(uri)
        self.session.close(uri)

    def _settled(self, uri: str) -> None:
        if uri not in self.session.documents:
            return
        self.flush(uri)
        for hook in self.on_settled:
            hook(uri)
