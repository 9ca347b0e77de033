"""A workspace session: documents, the trace cache and the work queue.

Protocol front ends (LSP server, debug adapter, CLI, evaluation harness)
ask the session for traces or open a :class:`Run` through
:meth:`Session.open_run`, the one place that chooses the input, applies the
execution policy, builds the engine and the simulation and hands out the
model lock. One trace is kept per (document, function, input, backend,
sampling) and shared by every feature: a debug session on a function the
server already ran for real starts from that run.
A cached trace stays valid while the source it depended on is unchanged: the
function itself, every function of the document the trace entered, and the
module-level code; an edit elsewhere leaves it alone.

Work runs off the event loop (tracer subprocesses and model generation in
worker threads) in priority order, and streams frames back to the loop.

On a model backend where execution is allowed, a finished trace is followed
in the background by the real run of the same input and its rating under the
model (one teacher-forced prefill, :mod:`neuraldbg.simulation.agreement`), kept on the
model trace's entry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from neuraldbg.simulation.agreement import Agreement, measure_agreement
from neuraldbg.backends.base import BackendError, CancelToken, Cancelled, ProgressCallback, ScoringBackend
from neuraldbg.config import Settings
from neuraldbg.session.policy import ExecutionPolicy, RefusalKind, Refused, has_model, imagines_inputs, runs_code
from neuraldbg.session.runs import Run
from neuraldbg.simulation.factory import EngineFactory, EngineOptions
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.simulation.target import Target
from neuraldbg.source.document import Document
from neuraldbg.source.model import FunctionInfo, SourceIndex
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.tracer.runner import CANCELLED  # a trace stopped before its end: not a failure of the program

log = logging.getLogger(__name__)
T = TypeVar("T")

# Priorities: lower runs first.
PRIORITY_FOCUS = 0  # what the user is hovering / looking at
PRIORITY_VISIBLE = 1  # functions of the open document
PRIORITY_BACKGROUND = 2


@dataclass(frozen=True)
class TraceKey:
    uri: str
    function: str
    call: str
    backend: str
    sampling: tuple[float, int]


@dataclass
class TraceEntry:
    key: TraceKey
    deps: dict[str, str]  # qualname -> source hash the trace was computed against ("" = module code)
    trace: Trace
    done: asyncio.Event = field(default_factory=asyncio.Event)
    cancel: CancelToken = field(default_factory=CancelToken)
    priority: int = PRIORITY_BACKGROUND
    started: bool = False
    settings: Settings | None = None  # the settings it runs under (None: the session's)
    agreement: Agreement | None = None  # the real run rated under this trace's model, once known
    refusal: RefusalKind | None = None  # set when the execution policy refused the run

    @property
    def cancelled(self) -> bool:
        """Stopped before its end (edit, new input, shutdown): no outcome to keep, run it again when asked."""
        return self.cancel.cancelled or (self.done.is_set() and self.trace.error == CANCELLED)


class InputError(ValueError):
    """No usable input for a function (one line for the user)."""


TraceListener = Callable[[TraceEntry], None]
EditListener = Callable[[str], None]  # a document's text changed (its uri)
Job = Literal["trace", "agree"]  # run the entry's trace / rate the real run under its model


def module_hash(text: str, functions: list[FunctionInfo]) -> str:
    """Hash of the text outside top-level functions and classes' methods:
    imports, constants, class attributes... anything a trace may depend on."""
    lines = text.splitlines()
    skip: set[int] = set()
    for fn in functions:
        skip.update(range(fn.first_line - 1, fn.end_line))
    kept = "\n".join(line for i, line in enumerate(lines) if i not in skip)
    return hashlib.sha256(kept.encode("utf-8", "surrogatepass")).hexdigest()


class Session:
    def __init__(self, settings: Settings | None = None, *, engines: EngineFactory | None = None,
                 workers: int = 2, policy: ExecutionPolicy | None = None,
                 progress: ProgressCallback | None = None) -> None:
        self.settings = settings or Settings()
        self.engines = engines or EngineFactory(progress=progress)
        self.policy = policy or ExecutionPolicy.workspace()
        self.documents: dict[str, Document] = {}
        self.entries: dict[TraceKey, TraceEntry] = {}
        self.user_calls: dict[tuple[str, str], str] = {}  # (uri, qualname) -> call set by the user
        self.listeners: list[TraceListener] = []
        self.edit_listeners: list[EditListener] = []  # told the uri of each edit, as it comes (before any flush)
        self._queue: asyncio.PriorityQueue[tuple[int, int, TraceKey, Job]] | None = None
        self._seq = itertools.count()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neuraldbg-work")
        self.model_lock = threading.Lock()  # one generation at a time per process: one model worker
        self._workers: list[asyncio.Task[None]] = []
        self._waits: set[asyncio.Task[None]] = set()  # rating jobs waiting for their real run
        self._n_workers = workers
        self._mhash: dict[str, str] = {}
        self.seed_bumps: dict[tuple[str, str], int] = {}  # (uri, qualname) -> resamples asked for

    # -- documents ---------------------------------------------------------
    def open(self, uri: str, text: str) -> Document:
        return self.open_document(uri, Document(text, uri=uri))

    def open_document(self, uri: str, doc: Document) -> Document:
        """Adopt a Document built elsewhere (e.g. a large one indexed in a
        worker thread before the event loop touches it)."""
        self.documents[uri] = doc
        self._mhash[uri] = module_hash(doc.text, doc.index.functions)
        return doc

    def replace(self, uri: str, text: str) -> set[str]:
        doc = self.documents.get(uri)
        if doc is None:
            self.open(uri, text)
            return set()
        doc.replace_all(text)
        self._edited(uri)
        return self._after_edit(uri, doc)

    def edit(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str, encoding: str = "utf-16") -> None:
        doc = self.documents.get(uri)
        if doc is None:
            raise KeyError(uri)
        doc.apply_edit(start, end, text, encoding=encoding)  # type: ignore[arg-type]
        self._edited(uri)

    def _edited(self, uri: str) -> None:
        _tell(self.edit_listeners, uri, "edit")

    def edits_done(self, uri: str) -> set[str]:
        """Call after a batch of edits: cancels stale work; returns the
        functions whose source changed."""
        doc = self.documents.get(uri)
        return set() if doc is None else self._after_edit(uri, doc)

    def _after_edit(self, uri: str, doc: Document) -> set[str]:
        changed = doc.changed_functions()
        self._mhash[uri] = module_hash(doc.text, doc.index.functions)
        for entry in list(self.entries.values()):
            if entry.key.uri == uri and not self._valid(entry):
                self.forget(entry.key)
        return changed

    def forget(self, key: TraceKey) -> None:
        """Drop one cached trace (cancelling it if running: a tracer child is
        killed, a queued one never starts), e.g. to retry a trace that failed."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            entry.cancel.cancel()

    def _supersede(self, uri: str, qualname: str, keep: Callable[[TraceKey], bool]) -> None:
        """Cancel the unfinished traces of a function that no view asks for
        any more (its input or sample changed), but those ``keep`` names."""
        for key, entry in list(self.entries.items()):
            if key.uri == uri and key.function == qualname and not entry.done.is_set() and not keep(key):
                self.forget(key)

    def clear_traces(self) -> None:
        """Drop every cached trace (settings changed)."""
        for key in list(self.entries):
            self.forget(key)

    def close(self, uri: str) -> None:
        self.documents.pop(uri, None)
        for key in [k for k in self.entries if k.uri == uri]:
            self.entries.pop(key).cancel.cancel()

    def index(self, uri: str) -> SourceIndex | None:
        doc = self.documents.get(uri)
        return None if doc is None else doc.index

    # -- inputs ------------------------------------------------------------
    def set_entry(self, uri: str, qualname: str, call: str) -> str:
        from neuraldbg.source.calls import CallError, parse_call

        index = self.index(uri)
        fn = index.function(qualname) if index else None
        if fn is None:
            raise InputError(f"no function {qualname!r} in this document")
        if not call.strip():
            self.user_calls.pop((uri, qualname), None)
            self._supersede_input(uri, qualname)
            return ""
        try:
            call = parse_call(call, fn)
        except CallError as exc:
            raise InputError(str(exc)) from None
        self.user_calls[(uri, qualname)] = call
        self._supersede_input(uri, qualname)
        return call

    def _supersede_input(self, uri: str, qualname: str) -> None:
        """The function's input changed: its other inputs' unfinished traces go."""
        try:
            now, _ = self.input_for(uri, qualname)
        except InputError:
            now = None
        self._supersede(uri, qualname, lambda key: key.call == now)

    def input_for(self, uri: str, qualname: str, settings: Settings | None = None) -> tuple[str, str]:
        """(call, origin): the user's entry, then doctest / __main__ / pytest
        entries; on model backends an empty call means "imagine inputs"."""
        from neuraldbg.source.calls import default_call_for

        if (uri, qualname) in self.user_calls:
            return self.user_calls[(uri, qualname)], "explicit"
        index = self.index(uri)
        if index is not None:
            entry = default_call_for(index, qualname)
            if entry is not None and entry.call:
                return entry.call, entry.kind
        if imagines_inputs((settings or self.settings).backend):
            return "", "imagined"
        raise InputError(f"no input for {qualname}: add a doctest example, a call under if __name__ == '__main__', or set one")

    def setup_for(self, uri: str, qualname: str, call: str) -> str:
        """The set-up code that comes with ``call`` when it is the input
        :meth:`input_for` chose from the document (a doctest's earlier
        examples); "" for the user's own call and for other entries."""
        from neuraldbg.source.calls import default_call_for, entry_setup

        doc = self.documents.get(uri)
        if doc is None or (uri, qualname) in self.user_calls:
            return ""
        entry = default_call_for(doc.index, qualname)
        return entry_setup(doc.text, entry) if entry is not None and entry.call == call else ""

    # -- traces ------------------------------------------------------------
    def _deps_now(self, uri: str, names: set[str]) -> dict[str, str]:
        index = self.index(uri)
        deps = {"": self._mhash.get(uri, "")}
        if index is not None:
            for fn in index.functions:
                if fn.qualname in names:
                    deps[fn.qualname] = fn.source_hash
        return deps

    def _valid(self, entry: TraceEntry) -> bool:
        return self._deps_now(entry.key.uri, set(entry.deps) - {""}) == entry.deps

    def settings_for(self, uri: str, qualname: str, base: Settings | None = None) -> Settings:
        """The settings a trace of this function runs under: ``base`` (or the
        session's) with the function's resample count added to the seed."""
        s = base or self.settings
        bump = self.seed_bumps.get((uri, qualname), 0)
        return replace(s, seed=s.seed + bump) if bump else s

    def resample(self, uri: str, qualname: str) -> None:
        """Ask for a different sample of this function's trace (model
        backends: new imagined inputs and values)."""
        self.seed_bumps[(uri, qualname)] = self.seed_bumps.get((uri, qualname), 0) + 1
        # the old sample's unfinished traces go; a real run has no sample (the same run)
        self._supersede(uri, qualname, lambda key: key.backend == "exec")

    def key_for(self, uri: str, qualname: str, call: str, settings: Settings | None = None) -> TraceKey:
        s = self.settings_for(uri, qualname, settings)
        backend = s.backend if s.backend != "remote" else f"remote:{s.url or s.profile}"
        if s.backend == "local":
            backend = f"local:{s.profile}"
        # A real run has no sampling: every exec request of one input shares it.
        return TraceKey(uri, qualname, call, backend, (0.0, 0) if s.backend == "exec" else s.sampling_key)

    def cached(self, uri: str, qualname: str, call: str | None = None, *, settings: Settings | None = None) -> TraceEntry | None:
        if call is None:
            try:
                call, _ = self.input_for(uri, qualname, settings)
            except InputError:
                return None
        entry = self.entries.get(self.key_for(uri, qualname, call, settings))
        if entry is not None and (entry.cancelled or not self._valid(entry)):
            self.forget(entry.key)  # stale or stopped: a failed trace stays (until an edit it depends on)
            return None
        return entry

    def request(self, uri: str, qualname: str, *, call: str | None = None, priority: int = PRIORITY_VISIBLE,
                settings: Settings | None = None) -> TraceEntry:
        """The trace entry for a function, starting its computation if
        needed (raises InputError / KeyError for bad requests). ``settings``
        overrides the session's for this trace (e.g. the exec backend to
        verify a prediction)."""
        if uri not in self.documents:
            raise KeyError(uri)
        if call is None:
            call, _ = self.input_for(uri, qualname, settings)
        entry = self.cached(uri, qualname, call, settings=settings)
        if entry is not None:
            if not entry.started and priority < entry.priority:
                entry.priority = priority
                self._enqueue(entry)
            return entry
        key = self.key_for(uri, qualname, call, settings)
        effective = self.settings_for(uri, qualname, settings)
        trace = Trace(function=qualname, call=call, backend=effective.backend, status="streaming",
                      predicted=effective.backend != "exec")
        entry = TraceEntry(key=key, deps=self._deps_now(uri, {qualname}), trace=trace, priority=priority,
                           settings=effective)
        self.entries[key] = entry
        self._enqueue(entry)
        return entry

    async def trace(self, uri: str, qualname: str, *, call: str | None = None, priority: int = PRIORITY_FOCUS,
                    settings: Settings | None = None) -> Trace:
        entry = self.request(uri, qualname, call=call, priority=priority, settings=settings)
        await entry.done.wait()
        return entry.trace

    def _enqueue(self, entry: TraceEntry, job: Job = "trace") -> None:
        self._ensure_workers()
        assert self._queue is not None
        priority = entry.priority if job == "trace" else PRIORITY_BACKGROUND
        self._queue.put_nowait((priority, next(self._seq), entry.key, job))

    def _ensure_workers(self) -> None:
        if self._queue is None:
            self._queue = asyncio.PriorityQueue()
        if not self._workers:
            self._workers = [asyncio.get_running_loop().create_task(self._worker()) for _ in range(self._n_workers)]

    @property
    def queue_length(self) -> int:
        return sum(1 for e in self.entries.values() if not e.done.is_set())

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            _prio, _seq, key, job = await self._queue.get()
            entry = self.entries.get(key)
            if job == "agree":
                if entry is not None:
                    await self._rate(entry)
                continue
            if entry is None or entry.started or entry.done.is_set():
                continue
            entry.started = True
            self._notify(entry)  # listeners learn that it started (progress, status)
            try:
                await self._run(entry)
            except Exception as exc:  # the server never dies for one trace
                log.exception("trace of %s failed", key.function)
                entry.trace.error = f"internal error: {exc}"
                entry.trace.status = "error"
            finally:
                entry.done.set()
                self._notify(entry)
            self._follow_with_real_run(entry)

    async def _run(self, entry: TraceEntry) -> None:
        loop = asyncio.get_running_loop()
        if entry.key.uri not in self.documents:
            entry.trace.error, entry.trace.status = "document closed", "error"
            return
        try:
            target = self.target_for(entry.key.uri, entry.key.function, entry.key.call)
        except InputError as exc:
            entry.trace.error, entry.trace.status = str(exc), "error"
            return

        def on_frame(step: int, frame: Frame) -> None:
            loop.call_soon_threadsafe(self._on_frame, entry, step, frame)

        def work() -> Trace:
            run = self.open_run(target, entry.settings, cancel=entry.cancel)
            # Entries change on the loop only: views of the streaming trace learn who writes it there.
            loop.call_soon_threadsafe(self._on_engine, entry, run.simulation.engine.model, run.predicted)
            run.simulation.listeners.append(on_frame)
            trace = run.run_to_end(cancel=entry.cancel)
            entry.cancel.raise_if_cancelled()  # a killed tracer child's trace is not this input's outcome
            return trace

        try:
            trace = await loop.run_in_executor(self._pool, work)
        except Cancelled:
            entry.trace.status, entry.trace.error = "error", CANCELLED
            return
        except Refused as exc:
            entry.trace.status, entry.trace.error, entry.refusal = "error", str(exc), exc.kind
            return
        except Exception as exc:
            entry.trace.status, entry.trace.error = "error", _one_line(exc)
            return
        entry.trace = trace
        names = {f.function for f in trace.frames}
        entry.deps = {**self._deps_now(entry.key.uri, names), **{k: v for k, v in entry.deps.items()}}

    # -- runs ----------------------------------------------------------------
    def target_for(self, uri: str, qualname: str, call: str | None = None, settings: Settings | None = None) -> Target:
        """The open document's function with its input (``call`` None: the
        session's choice, see :meth:`input_for`); raises InputError."""
        doc = self.documents.get(uri)
        if doc is None:
            raise InputError(f"{uri} is not open")
        text, index = doc.text, doc.index
        fn = index.function(qualname)
        if fn is None:
            raise InputError(f"no function {qualname!r} in this document")
        origin = "explicit"
        if call is None:
            call, origin = self.input_for(uri, qualname, settings)
        return Target(_uri_to_path(uri), text, index, fn, call, "imagined" if not call else origin, uri=uri,
                      setup=self.setup_for(uri, qualname, call))

    def open_run(self, target: Target, settings: Settings | None = None, *, cancel: CancelToken | None = None,
                 truth: Trace | None = None, options: EngineOptions = EngineOptions()) -> Run:
        """Open a run of ``target``: the execution policy first (raises
        :class:`~neuraldbg.session.policy.Refused`), then the engine and the
        simulation. On exec and replay the real run is the one the session
        already made of this input when there is one, else ``truth`` when the
        caller has it, else it runs here (seconds: call off the event loop)."""
        s = self.settings_for(target.uri, target.function.qualname, settings) if target.uri else (settings or self.settings)
        self.policy.check(s, target.index)
        if not target.call:
            self.policy.check_imagine(s.backend)
        known = self._known_real_run(target, s) if runs_code(s.backend) else None
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        engine = self.engines.make(s, source=target.source, index=target.index, function=target.function,
                                   call=target.call, path=target.path, truth=known or truth, options=options,
                                   setup=target.setup, cancel=cancel)
        sim = Simulation(engine, function=target.function.qualname, call=target.call or "<imagined>",
                         max_frames=s.max_frames)
        predicted = None if runs_code(s.backend) else self._known_trace(target, s)
        if predicted is not None:
            sim.known, sim.known_complete = list(predicted.frames), predicted.status == "complete"
        real = getattr(engine, "truth", None) if runs_code(s.backend) else None
        return Run(target, s, sim, self.model_lock, real_run=real if isinstance(real, Trace) else (known or truth),
                   reused=known is not None)

    def _known_real_run(self, target: Target, settings: Settings) -> Trace | None:
        """The finished real run of this input in the cache, if its source is the target's."""
        trace = self._known_trace(target, replace(settings, backend="exec"))
        return trace if trace is not None and not trace.predicted else None

    def _known_trace(self, target: Target, settings: Settings) -> Trace | None:
        """The finished trace of this input under ``settings`` in the cache,
        if its source is the target's (else None: the run starts afresh)."""
        doc = self.documents.get(target.uri) if target.uri else None
        if doc is None or doc.text != target.source:
            return None
        entry = self.entries.get(self.key_for(target.uri, target.function.qualname, target.call, settings))
        if entry is None or not entry.done.is_set() or not self._valid(entry):
            return None
        trace = entry.trace
        return trace if trace.status in ("complete", "truncated") and trace.frames else None

    # -- the real run rated under the model ------------------------------
    def real_run_settings(self) -> Settings:
        """The settings of the real runs model traces are rated against (the
        ones "Verify with a real run" asks for, so both share one run)."""
        return replace(self.settings, backend="exec")

    def _wants_rating(self, entry: TraceEntry) -> bool:
        s = entry.settings or self.settings
        doc = self.documents.get(entry.key.uri)
        return (has_model(s.backend) and self.policy.refusal(replace(s, backend="exec")) is None and s.score_real_runs
                and bool(entry.key.call) and entry.trace.status in ("complete", "truncated")
                and doc is not None and not doc.index.holes and not doc.index.syntax_errors
                and self.entries.get(entry.key) is entry)

    def _follow_with_real_run(self, entry: TraceEntry) -> None:
        """After a model trace: queue the real run of its input (background),
        then the rating job once that run is done."""
        if not self._wants_rating(entry):
            return
        try:
            real = self.request(entry.key.uri, entry.key.function, call=entry.key.call,
                                priority=PRIORITY_BACKGROUND, settings=self.real_run_settings())
        except (InputError, KeyError):
            return
        if real.done.is_set():
            self._enqueue(entry, "agree")
            return

        async def after_real_run() -> None:
            await real.done.wait()
            self._enqueue(entry, "agree")

        task = asyncio.get_running_loop().create_task(after_real_run())
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)

    async def _rate(self, entry: TraceEntry) -> None:
        """Rate the real run of ``entry``'s input under its model, in a worker
        thread holding the model lock; cancelled with the entry."""
        real = self.cached(entry.key.uri, entry.key.function, entry.key.call, settings=self.real_run_settings())
        doc = self.documents.get(entry.key.uri)
        if (entry.agreement is not None or real is None or not real.done.is_set() or doc is None
                or self.entries.get(entry.key) is not entry or not self._valid(entry)):
            return
        truth, source, fn = real.trace, doc.text, doc.index.function(entry.key.function)
        if fn is None or truth.status == "error" or not truth.frames:
            return
        settings = entry.settings or self.settings

        def work() -> Agreement | None:
            backend, tok = self.engines.backend(settings)
            if not isinstance(backend, ScoringBackend):
                return None
            with self.model_lock:
                return measure_agreement(backend, tok, source=source, function=fn, trace=truth, cancel=entry.cancel)

        try:
            agreement = await asyncio.get_running_loop().run_in_executor(self._pool, work)
        except Cancelled:
            return
        except BackendError as exc:
            log.info("could not rate the real run of %s under the model: %s", entry.key.function, _one_line(exc))
            return
        except Exception:  # the server never dies for one rating
            log.exception("rating the real run of %s failed", entry.key.function)
            return
        if agreement is not None and self.entries.get(entry.key) is entry:
            entry.agreement = agreement
            self._notify(entry)

    def _on_engine(self, entry: TraceEntry, model: str | None, predicted: bool) -> None:
        if not entry.done.is_set():
            entry.trace.model, entry.trace.predicted = model, predicted

    def _on_frame(self, entry: TraceEntry, step: int, frame: Frame) -> None:
        frames = entry.trace.frames
        if step < len(frames):
            del frames[step:]
        frames.append(frame)
        self._notify(entry)

    def _notify(self, entry: TraceEntry) -> None:
        _tell(self.listeners, entry, "trace")

    def stop_now(self) -> None:
        """Cancel every trace and drop queued work without the event loop
        (gone when the connection ends): the worker threads end."""
        for entry in list(self.entries.values()):
            entry.cancel.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def shutdown(self) -> None:
        for entry in self.entries.values():
            entry.cancel.cancel()
        for task in [*self._workers, *self._waits]:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.engines.close()


def _tell(listeners: list[Callable[[T], None]], what: T, kind: str) -> None:
    for listener in list(listeners):
        try:
            listener(what)
        except Exception:  # a broken listener must not stop the work
            log.exception("%s listener failed", kind)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _uri_to_path(uri: str) -> str:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return uri
