"""What the language server does, one method per LSP request or
notification; app.py only registers these with pygls. Hole actions live in
hole_actions.py, custom requests and lens commands in requests.py.

The controller owns a :class:`~neuraldbg.session.session.Session` (documents, trace
cache, work queue) and turns its traces into LSP results. Every request
handler is a coroutine that never blocks the event loop on trace work:
traces run in the session's workers, fills in their own thread, and a hover
waits for a missing trace only a short budget.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder, get_capability

from neuraldbg.config import Settings
from neuraldbg.session.registry import DebugRegistry
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.server import diagnostics as diag
from neuraldbg.server.fills import FillService
from neuraldbg.server.hover import HoverQuery, hover_markdown, pending_markdown
from neuraldbg.server.inlay import inlay_items
from neuraldbg.server.lenses import lenses_for
from neuraldbg.server.notify import STATUS_METHOD, ProgressBars, StatusReporter, cached_tokens_note
from neuraldbg.server.throttle import Debouncer, Throttle
from neuraldbg.server.hole_actions import HoleActions
from neuraldbg.server.requests import NOT_ALLOWED, CustomRequests
from neuraldbg.session.session import PRIORITY_FOCUS, PRIORITY_VISIBLE, InputError, Session, TraceEntry
from neuraldbg.source.document import Document
from neuraldbg.source.model import FunctionInfo, SourceIndex, Span
from neuraldbg.source.positions import column_to_index, index_to_column
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import isolation

log = logging.getLogger(__name__)

HOVER_BUDGET_S = 1.5  # how long a hover waits for a trace that is not there yet
INLAY_REFRESH_S = 0.3  # at most one workspace/inlayHint/refresh per this interval
LARGE_DOCUMENT = 256 * 1024  # characters: such a document is first indexed in a worker thread
AUTO_TRACE_LIMIT = 32  # functions traced on open per document (more are traced when looked at)

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


def uri_to_path(uri: str) -> str:
    if uri.startswith("file://"):
        return unquote(urlparse(uri).path)
    return uri


@dataclass
class ClientInfo:
    encoding: str = "utf-16"
    inlay_refresh: bool = False
    code_lens_refresh: bool = False
    inline_value_refresh: bool = False
    progress: bool = False
    configuration: bool = False
    markdown: bool = True
    disabled_actions: bool = False

    @staticmethod
    def from_capabilities(caps: types.ClientCapabilities) -> "ClientInfo":
        enc = ServerCapabilitiesBuilder.choose_position_encoding(caps)
        formats = get_capability(caps, "text_document.hover.content_format", None) or [types.MarkupKind.Markdown]
        return ClientInfo(
            encoding=str(getattr(enc, "value", enc)),
            inlay_refresh=bool(get_capability(caps, "workspace.inlay_hint.refresh_support", False)),
            code_lens_refresh=bool(get_capability(caps, "workspace.code_lens.refresh_support", False)),
            inline_value_refresh=bool(get_capability(caps, "workspace.inline_value.refresh_support", False)),
            progress=bool(get_capability(caps, "window.work_done_progress", False)),
            configuration=bool(get_capability(caps, "workspace.configuration", False)),
            markdown=types.MarkupKind.Markdown in formats,
            disabled_actions=bool(get_capability(caps, "text_document.code_action.disabled_support", False)),
        )


class Controller:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.registry = DebugRegistry()
        self.session = Session(Settings(), engines=EngineFactory(progress=self._load_progress_threadsafe))
        self.session.listeners.append(self._on_trace)
        self.client = ClientInfo()
        self.init_options: Any = None
        self.dirty: set[str] = set()
        self.watched: dict[str, set[str]] = {}
        self.divergences: dict[str, dict[str, diag.Problem]] = {}
        self.fills = FillService(self.session, uri_to_path)
        self.holes = HoleActions(self)
        self.requests = CustomRequests(self)
        self.debounce = Debouncer(self._after_pause)
        self.status = StatusReporter(send=self._send_status, queue=lambda: self.session.queue_length,
                                     backend=lambda: self.session.settings.backend, model=self._model_name,
                                     note=lambda: cached_tokens_note(self.session.engines.loaded(self.session.settings)),
                                     sandbox=self._sandbox_status)
        self._weak_sandbox_told = False
        self.bars = ProgressBars(server, supported=lambda: self.client.progress)
        self._inlay_refresh: Throttle | None = None
        self._lens_refresh: Throttle | None = None
        self._diag_uris: set[str] = set()
        self._diag_throttle: Throttle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._adapter_port: int | None = None
        self._adapter_stop: Any = None
        self._shut = False
        # large documents being indexed off the loop, and the edits that arrived meanwhile
        self.opening: dict[str, asyncio.Future[Document]] = {}
        self.pending_changes: dict[str, list[types.DidChangeTextDocumentParams]] = {}

    # -- plumbing -----------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def encoding(self) -> str:
        return self.client.encoding

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed: %s", task.exception(), exc_info=task.exception())

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, "%s", message)
        try:
            self.server.window_log_message(types.LogMessageParams(type=kind, message=f"neuraldbg: {message}"))
        except Exception:
            log.debug("log message not sent", exc_info=True)

    def _send_status(self, payload: dict[str, Any]) -> None:
        self.server.protocol.notify(STATUS_METHOD, payload)

    def _model_name(self) -> str | None:
        s = self.settings
        if s.backend == "local":
            return s.profile or None
        if s.backend == "remote":
            return s.url or None
        if s.backend == "replay":
            return "replay"
        return None

    def can_trace(self) -> bool:
        s = self.settings
        return s.backend in ("local", "remote") or s.allow_execution

    def cannot_run(self, index: SourceIndex) -> str | None:
        """Why this document cannot be traced now (None if it can)."""
        if not self.can_trace():
            return NOT_ALLOWED
        if self.settings.backend in ("exec", "replay"):
            if index.holes:
                line = index.holes[0].span.start_line + 1
                return (f"the file has a ?? hole (line {line}): the {self.settings.backend} backend runs the file for "
                        "real and cannot run it (fill it first, or use a model backend)")
            if index.syntax_errors:
                line = index.syntax_errors[0].span.start_line + 1
                return f"fix the syntax error at line {line} first (the {self.settings.backend} backend runs the file)"
        return None

    def doc(self, uri: str) -> Document | None:
        return self.session.documents.get(uri)

    def flush(self, uri: str) -> set[str]:
        """Bring the session up to date with the edits received so far."""
        if uri not in self.dirty:
            return set()
        self.dirty.discard(uri)
        changed = self.session.edits_done(uri)
        for q in changed:
            self.divergences.get(uri, {}).pop(q, None)
        return changed

    def to_range(self, doc: Document, span: Span) -> types.Range:
        lines = doc.lines

        def pos(line: int, col: int) -> types.Position:
            if line >= len(lines):
                line = max(0, len(lines) - 1)
            text = lines[line] if lines else ""
            return types.Position(line=line, character=index_to_column(text, col, self.encoding))  # type: ignore[arg-type]

        return types.Range(start=pos(span.start_line, span.start_col), end=pos(span.end_line, span.end_col))

    def _line_end(self, doc: Document, line: int) -> types.Position:
        text = doc.lines[line - 1]
        return types.Position(line=line - 1, character=index_to_column(text, len(text.rstrip()), self.encoding))  # type: ignore[arg-type]

    # -- lifecycle ----------------------------------------------------------
    def initialize(self, params: types.InitializeParams) -> None:
        self.client = ClientInfo.from_capabilities(params.capabilities)
        self.init_options = params.initialization_options
        settings, problems = Settings().merged(params.initialization_options)
        self.session.settings = settings
        for p in problems:
            self.log_to_client(p)

    async def initialized(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.settings.backend in ("local", "remote"):
            self.status.loading = f"loading {self._model_name() or self.settings.backend}"
        self.status.send_now()
        if self.client.configuration:
            await self.reload_configuration()
        self.spawn(self._preload())
        self.spawn(self._probe_sandbox())

    # -- the tracer's sandbox -------------------------------------------------
    async def _probe_sandbox(self) -> None:
        """Probe the isolation level off the loop (it starts test children)."""
        await asyncio.to_thread(isolation.current)
        self.status.changed()
        self._tell_weak_sandbox()

    def _sandbox_status(self) -> dict[str, Any] | None:
        level = isolation.known()
        return level.as_json() if level is not None and self.settings.allow_execution else None

    def _tell_weak_sandbox(self) -> None:
        """Once per server: this workspace's code runs with audit hooks only."""
        level = isolation.known()
        if self._weak_sandbox_told or level is None or not level.weak or not self.settings.allow_execution:
            return
        self._weak_sandbox_told = True
        message = (f"neuraldbg: workspace code runs with weak isolation (audit hooks only: {level.weaknesses()}). "
                   "Install bubblewrap (apt-get install bubblewrap) for a real sandbox.")
        log.warning("%s", message)
        try:
            self.server.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))
        except Exception:
            log.debug("message not sent", exc_info=True)

    async def reload_configuration(self, pushed: Any = None) -> None:
        """Settings = defaults <- initializationOptions <- workspace/configuration
        (or the pushed didChangeConfiguration settings for clients without it)."""
        base, _ = Settings().merged(self.init_options)
        data: Any = None
        if self.client.configuration:
            try:
                fut = asyncio.ensure_future(self.server.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section="neuraldbg")])))
                result = await asyncio.wait_for(asyncio.shield(fut), 5.0)
                data = result[0] if result else None
            except Exception as exc:  # a client that does not answer keeps the old settings
                self.log_to_client(f"could not read the neuraldbg settings: {exc or type(exc).__name__}", types.MessageType.Info)
                data = None
        elif pushed is not None:
            data = pushed
        new, problems = base.merged(data)
        for p in problems:
            self.log_to_client(p)
        self.apply_settings(new)

    def apply_settings(self, new: Settings) -> None:
        if new == self.session.settings:
            return
        old = self.session.settings
        self.session.settings = new
        self.session.clear_traces()
        self.status.error = None
        self.status.changed()
        self._tell_weak_sandbox()
        log.info("settings: %s", new)
        if (old.backend, old.profile, old.url) != (new.backend, new.profile, new.url) and self._loop is not None:
            self.spawn(self._preload())
        for uri in list(self.session.documents):
            self.retrace(uri)
            self.publish(uri)
        self.refresh_inlays()
        self.refresh_lenses()

    async def _preload(self) -> None:
        """Load the model of a model backend up front (status 'loading')."""
        s = self.settings
        if s.backend not in ("local", "remote"):
            return
        self.status.loading = f"loading {self._model_name() or s.backend}"
        self.status.send_now()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.session.engines.backend, s)
        except Exception as exc:
            if self.settings is s:
                self.status.error = f"{s.backend} backend: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                self.log_to_client(self.status.error, types.MessageType.Error)
        finally:
            if self.settings is s:
                self.status.loading = None
                self.status.load_fraction = None
                self.bars.end("load", "model loaded")
                self.status.send_now()

    def _load_progress_threadsafe(self, progress: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._load_progress, progress)

    def _load_progress(self, progress: Any) -> None:
        self.status.loading = progress.message
        self.status.load_fraction = progress.fraction
        if progress.fraction is not None and progress.fraction >= 1.0:
            self.status.send_now()  # "loaded" must not be coalesced into the "ready" that follows
        else:
            self.status.changed()
        self.bars.start("load", "neuraldbg: loading model", progress.message)
        pct = int(progress.fraction * 100) if progress.fraction is not None else None
        self.bars.report("load", progress.message, pct)

    async def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        self.debounce.cancel_all()
        self.fills.shutdown()
        for task in list(self._tasks):
            task.cancel()
        await self.session.shutdown()
        stop = self._stop_adapter_fn()
        if stop is not None:
            try:
                stop()
            except Exception:
                log.debug("adapter stop failed", exc_info=True)

    # -- documents ------------------------------------------------------------
    def did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        text = params.text_document.text
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
        for change in changes:
            self.did_change(change)

    async def ready(self, uri: str) -> None:
        """Wait until a large document being opened is indexed."""
        fut = self.opening.get(uri)
        if fut is not None:
            await asyncio.shield(fut)

    async def _ready_any(self, uri: Any) -> None:
        if isinstance(uri, str):
            await self.ready(uri)

    def _opened(self, uri: str) -> None:
        self.dirty.discard(uri)
        self.fills.forget(uri)
        self.watched.setdefault(uri, set())
        self.publish(uri)
        self.retrace(uri)
        self.holes.prefetch_fills(uri)

    def did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri in self.opening:
            self.pending_changes[uri].append(params)
            return
        if uri not in self.session.documents:
            log.warning("change for a document that is not open: %s", uri)
            return
        for change in params.content_changes:
            rng = getattr(change, "range", None)
            if rng is None:
                self.session.replace(uri, change.text)
                continue
            self.session.edit(uri, (rng.start.line, rng.start.character), (rng.end.line, rng.end.character),
                              change.text, encoding=self.encoding)
        self.dirty.add(uri)
        self.debounce(uri, self.settings.debounce_ms / 1000.0)

    def did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        self.opening.pop(uri, None)
        self.pending_changes.pop(uri, None)
        self.debounce.cancel(uri)
        self.dirty.discard(uri)
        self.session.close(uri)
        self.watched.pop(uri, None)
        self.divergences.pop(uri, None)
        self.fills.forget(uri)
        try:
            self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        except Exception:
            log.debug("diagnostics not cleared", exc_info=True)

    def _after_pause(self, uri: str) -> None:
        """The user stopped typing: re-index, re-publish, re-trace."""
        if uri not in self.session.documents:
            return
        self.flush(uri)
        self.publish(uri)
        self.retrace(uri)
        self.holes.prefetch_fills(uri)
        self.refresh_inlays()
        self.refresh_lenses()

    def retrace(self, uri: str) -> None:
        """(Re)start the traces of this document's functions: those looked
        at before, and those with an input (up to AUTO_TRACE_LIMIT)."""
        doc = self.doc(uri)
        if doc is None or self.cannot_run(doc.index) is not None:
            return
        index = doc.index
        wanted = self.watched.setdefault(uri, set())
        auto = 0
        for fn in index.functions:
            if fn.qualname in wanted:
                self._request(uri, fn.qualname, PRIORITY_VISIBLE)
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
            self._request(uri, fn.qualname, PRIORITY_VISIBLE)

    def _request(self, uri: str, qualname: str, priority: int) -> TraceEntry | None:
        try:
            return self.session.request(uri, qualname, priority=priority)
        except (InputError, KeyError):
            return None

    # -- trace selection ------------------------------------------------------------
    def trace_for(self, uri: str, fn: FunctionInfo, *, priority: int, start: bool = True) -> tuple[TraceEntry | None, str, str | None]:
        """(entry, input origin, reason when there is none) for a function:
        its own trace, else a trace of another function of the document that
        ran through it."""
        try:
            call, origin = self.session.input_for(uri, fn.qualname)
        except InputError as exc:
            entry = self._containing(uri, fn.qualname)
            if entry is not None:
                return entry, f"via {entry.key.function}", None
            return None, "", str(exc)
        doc = self.doc(uri)
        why = self.cannot_run(doc.index) if doc is not None else "document closed"
        if why is not None:
            return None, origin, why
        entry = self.session.cached(uri, fn.qualname, call)
        if entry is not None and priority == PRIORITY_FOCUS and entry.done.is_set() and entry.trace.status == "error":
            self.session.forget(entry.key)  # a failed trace is retried when the user asks again
            entry = None
        if entry is None and start:
            try:
                entry = self.session.request(uri, fn.qualname, call=call, priority=priority)
            except (InputError, KeyError) as exc:
                return None, origin, str(exc)
        self.watched.setdefault(uri, set()).add(fn.qualname)
        return entry, origin, None

    def _containing(self, uri: str, qualname: str) -> TraceEntry | None:
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

    async def _wait(self, entry: TraceEntry, budget: float) -> None:
        if entry.done.is_set():
            return
        try:
            await asyncio.wait_for(asyncio.shield(entry.done.wait()), budget)
        except asyncio.TimeoutError:
            pass

    async def _wait_for_document(self, uri: str, budget: float) -> None:
        pending = [e for e in self.session.entries.values() if e.key.uri == uri and not e.done.is_set()]
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*(asyncio.shield(e.done.wait()) for e in pending)), budget)
            except asyncio.TimeoutError:
                pass

    # -- trace events -------------------------------------------------------------
    def _on_trace(self, entry: TraceEntry) -> None:
        key = entry.key
        done = entry.done.is_set()
        self.status.busy_with = key.function
        if done:
            self.bars.end(key, f"{key.function}: {len(entry.trace.frames)} frames ({entry.trace.status})")
            if entry.trace.status == "error" and entry.trace.error not in ("cancelled", "document closed"):
                if not (entry.trace.error or "").startswith("running code is not allowed"):
                    self.status.error = f"{key.function}: {entry.trace.error}"
                    self.status.send_now()  # never lost behind the rate limit
            elif entry.trace.status in ("complete", "truncated"):
                self.status.error = None
            self._queue_publish(key.uri)
        else:
            n = len(entry.trace.frames)
            self.bars.start(key, "neuraldbg", f"tracing {key.function}")
            self.bars.report(key, f"tracing {key.function}: {n} frame{'s' if n != 1 else ''}")
        self.status.changed()
        self.refresh_inlays()

    def refresh_inlays(self) -> None:
        if not self.client.inlay_refresh:
            return
        if self._inlay_refresh is None:
            self._inlay_refresh = Throttle(INLAY_REFRESH_S, self._send_inlay_refresh, min_delay=0.05)
        self._inlay_refresh()

    def _send_inlay_refresh(self) -> None:
        try:
            self.server.workspace_inlay_hint_refresh(None)
        except Exception:
            log.debug("inlay refresh not sent", exc_info=True)

    def refresh_lenses(self) -> None:
        if not self.client.code_lens_refresh:
            return
        if self._lens_refresh is None:
            self._lens_refresh = Throttle(1.0, self._send_lens_refresh)
        self._lens_refresh()

    def _send_lens_refresh(self) -> None:
        try:
            self.server.workspace_code_lens_refresh(None)
        except Exception:
            log.debug("code lens refresh not sent", exc_info=True)

    # -- diagnostics ----------------------------------------------------------------
    def _queue_publish(self, uri: str) -> None:
        self._diag_uris.add(uri)
        if self._diag_throttle is None:
            self._diag_throttle = Throttle(0.2, self._publish_queued)
        self._diag_throttle()

    def _publish_queued(self) -> None:
        uris, self._diag_uris = self._diag_uris, set()
        for uri in uris:
            self.publish(uri)

    def problems(self, uri: str) -> list[diag.Problem]:
        doc = self.doc(uri)
        if doc is None:
            return []
        index = doc.index
        out = diag.index_problems(index)
        lines = doc.lines
        for fn in index.functions:
            try:
                call, _ = self.session.input_for(uri, fn.qualname)
            except InputError:
                continue
            entry = self.session.entries.get(self.session.key_for(uri, fn.qualname, call))
            if entry is not None and entry.done.is_set() and self.session.cached(uri, fn.qualname, call) is entry:
                out += diag.trace_problems(entry.trace, fn, lines)
                if entry.agreement is not None:
                    out += diag.agreement_problems(entry.agreement, fn, lines, call)
        out += list(self.divergences.get(uri, {}).values())
        return out

    def publish(self, uri: str) -> None:
        doc = self.doc(uri)
        if doc is None or uri in self.dirty:
            return
        items = [
            types.Diagnostic(range=self.to_range(doc, p.span), message=p.message, severity=_SEVERITY[p.severity],
                             source=diag.SOURCE, code=p.code)
            for p in self.problems(uri)
        ]
        try:
            self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=items,
                                                                                          version=None))
        except Exception:
            log.debug("diagnostics not sent", exc_info=True)

    # -- hover --------------------------------------------------------------------
    def _markup(self, text: str) -> types.MarkupContent:
        if self.client.markdown:
            return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
        plain = text.replace("```python\n", "").replace("\n```", "").replace("**", "").replace("`", "")
        return types.MarkupContent(kind=types.MarkupKind.PlainText, value=plain)

    def _word_at(self, index: SourceIndex, line: int, col: int) -> tuple[str, int, int] | None:
        for name, start, end in index.identifiers.get(line, []):
            if start <= col <= end:
                return name, start, end
        return None

    async def _at_position(self, uri: str, position: types.Position) -> tuple[Document, int, int] | None:
        """The up-to-date document and (line, code-point column) of a request's
        position; None for an unknown document or a line out of range."""
        await self.ready(uri)
        doc = self.doc(uri)
        if doc is None:
            return None
        self.flush(uri)
        line0 = position.line
        if not 0 <= line0 < len(doc.lines):
            return None
        return doc, line0, column_to_index(doc.lines[line0], position.character, self.encoding)  # type: ignore[arg-type]

    async def hover(self, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        where = await self._at_position(uri, params.position)
        if where is None:
            return None
        doc, line0, col = where
        text = doc.lines[line0]
        index = doc.index
        line = line0 + 1
        fn = index.function_at(line)
        if fn is None:
            return None
        word = self._word_at(index, line, col)
        on_def = fn.first_line <= line <= fn.def_line
        if word is None and not on_def and not text.lstrip().startswith("return"):
            return None
        rng = None
        if word is not None:
            rng = self.to_range(doc, Span(line0, word[1], line0, word[2]))
        entry, origin, reason = self.trace_for(uri, fn, priority=PRIORITY_FOCUS)
        if entry is None and reason is not None and self.cannot_run(index) is None:
            # maybe another function's trace (still running) will pass through this one
            await self._wait_for_document(uri, HOVER_BUDGET_S)
            entry, origin, reason = self.trace_for(uri, fn, priority=PRIORITY_FOCUS)
        if entry is None:
            if reason is None:
                return None
            return types.Hover(contents=self._markup(f"**{fn.name}** · {reason}"), range=rng)
        await self._wait(entry, HOVER_BUDGET_S)
        trace = entry.trace
        if not trace.frames:
            if not entry.done.is_set():
                md = pending_markdown(fn, entry.key.call, "tracing… (no frame yet; hover again in a moment)")
            else:
                md = pending_markdown(fn, entry.key.call, f"no trace: {trace.error or trace.status}")
            return types.Hover(contents=self._markup(md), range=rng)
        q = HoverQuery(fn=fn, line=line, word=word[0] if word else None, line_text=text)
        md = hover_markdown(trace, q, input_origin=origin, agreement=entry.agreement)
        if md is None:
            return None
        return types.Hover(contents=self._markup(md), range=rng)

    # -- inlay hints ----------------------------------------------------------------
    async def inlay_hints(self, params: types.InlayHintParams) -> list[types.InlayHint]:
        uri = params.text_document.uri
        await self.ready(uri)
        doc = self.doc(uri)
        if doc is None:
            return []
        self.flush(uri)
        index = doc.index
        n = len(doc.lines)
        first = max(1, params.range.start.line + 1)
        last = min(n, params.range.end.line + 1)
        out: list[types.InlayHint] = []
        for fn in index.functions:
            if fn.end_line < first or fn.first_line > last:
                continue
            entry, origin, _reason = self.trace_for(uri, fn, priority=PRIORITY_VISIBLE)
            if entry is None or not entry.trace.frames:
                continue
            trace = entry.trace
            tip = _tooltip(trace, origin)
            for item in inlay_items(trace, fn, index, first, last):
                if item.line > n:
                    continue
                out.append(types.InlayHint(position=self._line_end(doc, item.line), label=item.label, padding_left=True,
                                           tooltip=tip))
        return out

    # -- inline values (debugging) -------------------------------------------------------
    async def inline_values(self, params: types.InlineValueParams) -> list[types.InlineValue]:
        uri = params.text_document.uri
        await self.ready(uri)
        doc = self.doc(uri)
        ref = self.registry.get(params.context.frame_id) or self.registry.current()
        if doc is None or ref is None:
            return []
        if ref.path and os.path.realpath(ref.path) != os.path.realpath(uri_to_path(uri)):
            return []
        self.flush(uri)
        values = ref.locals()
        line0 = params.context.stopped_location.start.line
        index = doc.index
        lo, hi = params.range.start.line, params.range.end.line
        out: list[types.InlineValue] = []
        for l0 in range(max(lo, 0), min(hi, len(doc.lines) - 1) + 1):
            if l0 != line0:
                continue
            seen: set[str] = set()
            for name, start, end in index.identifiers.get(l0 + 1, []):
                if name in values and name not in seen:
                    seen.add(name)
                    out.append(types.InlineValueText(range=self.to_range(doc, Span(l0, start, l0, end)),
                                                     text=f"{name} = {values[name]}"))
        return out

    # -- code lenses -------------------------------------------------------------------
    async def code_lenses(self, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        await self.ready(uri)
        doc = self.doc(uri)
        if doc is None:
            return []
        self.flush(uri)
        out: list[types.CodeLens] = []
        s = self.settings
        for fn in doc.index.functions:
            try:
                call: str | None
                call, origin = self.session.input_for(uri, fn.qualname)
            except InputError:
                call, origin = None, ""
            for lens in lenses_for(fn, uri, call, origin, backend=s.backend, allow_execution=s.allow_execution):
                span = Span(lens.line - 1, 0, lens.line - 1, 0)
                out.append(types.CodeLens(range=self.to_range(doc, span),
                                          command=types.Command(title=lens.title, command=lens.command,
                                                                arguments=lens.arguments)))
        return out

    def _stop_adapter_fn(self) -> Any:
        return self._adapter_stop


def _tooltip(trace: Trace, origin: str) -> str:
    from neuraldbg.trace.values import origin as origin_text

    how = f" ({origin})" if origin and origin != "explicit" else ""
    return f"{origin_text(trace)} · input {trace.call or '(imagined)'}{how}"
