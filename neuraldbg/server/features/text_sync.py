"""didOpen / didChange / didClose, and what follows an open or a typing
pause: diagnostics, the traces of the document, background hole fills,
refreshed hints and lenses."""

from __future__ import annotations

from lsprotocol import types

from neuraldbg.server.features import code_actions, publishing
from neuraldbg.server.state import ServerState


def did_open(state: ServerState, params: types.DidOpenTextDocumentParams) -> None:
    state.documents.open(params.text_document.uri, params.text_document.text)


def did_change(state: ServerState, params: types.DidChangeTextDocumentParams) -> None:
    state.documents.change(params, state.encoding)


def did_close(state: ServerState, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    state.documents.close(uri)
    state.selection.forget_document(uri)
    state.fills.forget(uri)
    publishing.clear(state, uri)


def opened(state: ServerState, uri: str) -> None:
    """A document is open and indexed (at once, or after a large one's indexing)."""
    state.fills.forget(uri)
    publishing.publish(state, uri)
    state.selection.retrace(uri)
    code_actions.prefetch_fills(state, uri)


def settled(state: ServerState, uri: str) -> None:
    """The user stopped typing (the edits are flushed): re-publish, re-trace."""
    publishing.publish(state, uri)
    state.selection.retrace(uri)
    code_actions.prefetch_fills(state, uri)
    state.refresh.inlays()
    state.refresh.lenses()
