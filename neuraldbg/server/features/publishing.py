"""textDocument/publishDiagnostics: the index's problems, the finished
traces' (escaping exceptions, runs that may not halt, where the model leaves
the real run) and the divergences found by "Verify with a real run"."""

from __future__ import annotations

import logging
from collections.abc import Callable

from lsprotocol import types

from neuraldbg.server import diagnostics as diag
from neuraldbg.server.convert import to_range
from neuraldbg.server.state import ServerState
from neuraldbg.server.throttle import Throttle
from neuraldbg.session.session import TraceEntry

log = logging.getLogger(__name__)

PUBLISH_EVERY_S = 0.2  # diagnostics of finished traces are sent at most this often

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


def problems(state: ServerState, uri: str) -> list[diag.Problem]:
    doc = state.documents.get(uri)
    if doc is None:
        return []
    out = diag.index_problems(doc.index)
    for fn in doc.index.functions:
        found = state.selection.finished(uri, fn.qualname)
        if found is not None:
            entry, call = found
            out += diag.trace_problems(entry.trace, fn, doc.lines)
            if entry.agreement is not None:
                out += diag.agreement_problems(entry.agreement, fn, doc.lines, call)
    out += list(state.divergences.get(uri, {}).values())
    return out


def publish(state: ServerState, uri: str) -> None:
    """Send the document's diagnostics now (not while edits wait for the typing pause)."""
    doc = state.documents.get(uri)
    if doc is None or uri in state.documents.dirty:
        return
    items = [types.Diagnostic(range=to_range(doc, p.span, state.encoding), message=p.message,
                              severity=_SEVERITY[p.severity], source=diag.SOURCE, code=p.code)
             for p in problems(state, uri)]
    _send(state, types.PublishDiagnosticsParams(uri=uri, diagnostics=items, version=None))


def clear(state: ServerState, uri: str) -> None:
    """The document closed: its diagnostics go."""
    state.divergences.pop(uri, None)
    _send(state, types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def forget_divergences(state: ServerState, uri: str, functions: set[str]) -> None:
    """These functions changed: what "Verify" found for them no longer holds."""
    for qualname in functions:
        state.divergences.get(uri, {}).pop(qualname, None)


def on_finished_traces(state: ServerState) -> Callable[[TraceEntry], None]:
    """A trace listener publishing the documents of finished traces (rate-limited)."""
    queued: set[str] = set()

    def send_queued() -> None:
        uris = set(queued)
        queued.clear()
        for uri in uris:
            publish(state, uri)

    throttle = Throttle(PUBLISH_EVERY_S, send_queued)

    def listener(entry: TraceEntry) -> None:
        if entry.done.is_set():
            queued.add(entry.key.uri)
            throttle()

    return listener


def _send(state: ServerState, params: types.PublishDiagnosticsParams) -> None:
    try:
        state.server.text_document_publish_diagnostics(params)
    except Exception:
        log.debug("diagnostics not sent", exc_info=True)
