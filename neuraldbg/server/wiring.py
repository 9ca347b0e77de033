"""Connects the server's background events to the features: trace frames
(status, progress, diagnostics, inlay refresh), model-load progress,
documents opened / settled / flushed, and the debugger's stops (inline-value
refresh). The one place that knows which feature listens to what."""

from __future__ import annotations

from typing import Any

from neuraldbg.server.features import inline_values, publishing, status, text_sync
from neuraldbg.server.state import ServerState


def connect(server: Any) -> ServerState:
    """A new server state for ``server`` with every listener subscribed."""
    state = ServerState(server)
    state.session.listeners += [lambda entry: status.on_trace(state, entry),
                                publishing.on_finished_traces(state),
                                lambda _entry: state.refresh.inlays()]
    state.load_listeners.append(lambda progress: status.on_load(state, progress))
    state.documents.on_opened.append(lambda uri: text_sync.opened(state, uri))
    state.documents.on_settled.append(lambda uri: text_sync.settled(state, uri))
    state.documents.on_flushed.append(lambda uri, changed: publishing.forget_divergences(state, uri, changed))
    state.registry.listeners.append(inline_values.on_stop(state))
    return state
