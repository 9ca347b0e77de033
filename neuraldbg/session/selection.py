"""Which trace a view shows for a function, and how long it waits for one.

Every editor view (hover, inlay hints, diagnostics, lens commands) asks
this module, never the cache directly: the function's own trace for its
input, else a trace of another function of the document that ran through
it; a failed trace is kept like a good one until an edit touches what it
ran (looking at it again does not re-run it; an explicit request does); a
cancelled one is not an outcome and runs again when asked; the functions
once looked at are re-traced after each edit. Written against
:class:`~neuraldbg.session.session.Session`'s public API; no protocol types.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from neuraldbg.config import Settings
from neuraldbg.session.session import PRIORITY_FOCUS, PRIORITY_VISIBLE, InputError, Session, TraceEntry

FOCUS_BUDGET_S = 1.5  # how long a view the user looks at (a hover) waits for a trace that is not there yet
AUTO_TRACE_LIMIT = 32  # functions traced on open per document (more are traced when looked at)


@dataclass(frozen=True)
class Shown:
    """What a view shows for a function: ``entry`` (None: nothing, ``reason`` says why when known)."""

    entry: TraceEntry | None
    origin: str  # the input's origin ("explicit", "doctest", "imagined", ...) or "via <function>"
    reason: str | None = None


@dataclass
class TraceSelection:
    session: Session
    watched: dict[str, set[str]] = field(default_factory=dict)  # uri -> functions looked at (re-traced on edits)

    # -- may it run -----------------------------------------------------------
    def can_trace(self) -> bool:
        return self.session.policy.refusal(self.session.settings) is None

    def cannot_run(self, uri: str) -> str | None:
        """Why this document cannot be traced now (None if it can)."""
        doc = self.session.documents.get(uri)
        if doc is None:
            return "document closed"
        refused = self.session.policy.refusal(self.session.settings, doc.index)
        return None if refused is None else str(refused)

    # -- which trace ------------------------------------------------------------
    def shown(self, uri: str, qualname: str, *, priority: int, start: bool = True) -> Shown:
        """The trace a view shows for ``qualname``, started when missing (``start``)."""
        try:
            call, origin = self.session.input_for(uri, qualname)
        except InputError as exc:
            via = self._containing(uri, qualname)
            if via is not None:
                return Shown(via, f"via {via.key.function}")
            return Shown(None, "", str(exc))
        why = self.cannot_run(uri)
        if why is not None:
            return Shown(None, origin, why)
        entry = self.session.cached(uri, qualname, call)  # None for a cancelled one: it runs again
        if entry is not None and priority == PRIORITY_FOCUS and _refused(entry):
            self.session.forget(entry.key)  # refused before it ran (no run to repeat): the policy may allow it now
            entry = None
        if entry is None and start:
            try:
                entry = self.session.request(uri, qualname, call=call, priority=priority)
            except (InputError, KeyError) as exc:
                return Shown(None, origin, str(exc))
        self.watch(uri, qualname)
        return Shown(entry, origin)

    async def focused(self, uri: str, qualname: str, budget: float = FOCUS_BUDGET_S) -> Shown:
        """:meth:`shown` for what the user looks at, waiting up to ``budget``
        for a trace of the document that may pass through the function, then
        up to ``budget`` for the trace itself (it may still be streaming)."""
        shown = self.shown(uri, qualname, priority=PRIORITY_FOCUS)
        if shown.entry is None and shown.reason is not None and self.cannot_run(uri) is None:
            await self._wait_for_document(uri, budget)
            shown = self.shown(uri, qualname, priority=PRIORITY_FOCUS)
        if shown.entry is not None:
            await _wait(shown.entry, budget)
        return shown

    def finished(self, uri: str, qualname: str) -> tuple[TraceEntry, str] | None:
        """(entry, call) of the function's own finished, current trace (what diagnostics show)."""
        try:
            call, _ = self.session.input_for(uri, qualname)
        except InputError:
            return None
        entry = self.session.entries.get(self.session.key_for(uri, qualname, call))
        if entry is None or not entry.done.is_set() or self.session.cached(uri, qualname, call) is not entry:
            return None
        return entry, call

    def fresh(self, uri: str, qualname: str, call: str | None, settings: Settings | None = None) -> TraceEntry:
        """The entry for an explicit request (a lens command, ``neuraldbg/trace``):
        a failed one is retried; raises InputError / KeyError for bad requests."""
        entry = self.session.cached(uri, qualname, call, settings=settings)
        if entry is not None and _failed(entry):
            self.session.forget(entry.key)
        entry = self.session.request(uri, qualname, call=call, priority=PRIORITY_FOCUS, settings=settings)
        self.watch(uri, qualname)
        return entry

    def _containing(self, uri: str, qualname: str) -> TraceEntry | None:
        """The trace of another function of the document that ran through
        ``qualname`` most often (finished ones first)."""
        best: TraceEntry | None = None
        best_rank: tuple[int, int] = (-1, -1)
        backend = self.session.key_for(uri, qualname, "").backend  # not the real runs a model trace is rated on
        for entry in list(self.session.entries.values()):
            if entry.key.uri != uri or entry.key.function == qualname or entry.key.backend != backend:
                continue
            n = sum(1 for f in entry.trace.frames if f.function == qualname)
            if n == 0:
                continue
            rank = (1 if entry.done.is_set() and entry.trace.status == "complete" else 0, n)
            if rank > best_rank:
                best, best_rank = entry, rank
        return best

    async def _wait_for_document(self, uri: str, budget: float) -> None:
        pending = [e for e in self.session.entries.values() if e.key.uri == uri and not e.done.is_set()]
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*(asyncio.shield(e.done.wait()) for e in pending)), budget)
            except asyncio.TimeoutError:
                pass

    # -- what is traced -------------------------------------------------------------
    def watch(self, uri: str, qualname: str) -> None:
        self.watched.setdefault(uri, set()).add(qualname)

    def forget_document(self, uri: str) -> None:
        self.watched.pop(uri, None)

    def request(self, uri: str, qualname: str, priority: int = PRIORITY_VISIBLE) -> TraceEntry | None:
        try:
            return self.session.request(uri, qualname, priority=priority)
        except (InputError, KeyError):
            return None

    def retrace(self, uri: str) -> None:
        """(Re)start the traces of this document's functions: those looked
        at before, and those with an input (up to AUTO_TRACE_LIMIT)."""
        doc = self.session.documents.get(uri)
        if doc is None or self.cannot_run(uri) is not None:
            return
        wanted = self.watched.setdefault(uri, set())
        auto = 0
        for fn in doc.index.functions:
            if fn.qualname in wanted:
                self.request(uri, fn.qualname)
                continue
            if auto >= AUTO_TRACE_LIMIT:
                continue
            try:
                _call, origin = self.session.input_for(uri, fn.qualname)
            except InputError:
                continue
            if origin == "imagined":
                continue
            auto += 1
            wanted.add(fn.qualname)
            self.request(uri, fn.qualname)


def _failed(entry: TraceEntry) -> bool:
    return entry.done.is_set() and entry.trace.status == "error"


def _refused(entry: TraceEntry) -> bool:
    return entry.done.is_set() and entry.refusal is not None


async def _wait(entry: TraceEntry, budget: float) -> None:
    if entry.done.is_set():
        return
    try:
        await asyncio.wait_for(asyncio.shield(entry.done.wait()), budget)
    except asyncio.TimeoutError:
        pass
