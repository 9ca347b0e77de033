"""Hole fills for the server: pick a filler for the settings, run it off the
event loop, and share/cache results per document text. An edit of a
document cancels its pending fills (the search stops between candidates and
the candidate run in progress is killed): the one fill thread is free for
the text the user has now."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from neuraldbg.backends.base import CancelToken, Cancelled
from neuraldbg.config import Settings
from neuraldbg.holes.search import (
    ChatFiller,
    Filler,
    FillError,
    FillRequest,
    FillResult,
    RunChecker,
    Runner,
    SearchFiller,
    TraceFiller,
    first_fill,
    tracer_runner,
)
from neuraldbg.simulation.sampling import chat_sampling
from neuraldbg.session.session import Session
from neuraldbg.session.policy import runs_code
from neuraldbg.source.model import FunctionInfo, Hole
from neuraldbg.trace.frames import Trace

log = logging.getLogger(__name__)

NEEDS_EXECUTION = (
    "filling holes on the {backend} backend searches candidates by running your code: enable the setting "
    "neuraldbg.allowExecution (trusted workspaces only) or use a model backend"
)


FILL_CANCELLED = "the document changed while filling"


def make_runner(settings: Settings, cancel: CancelToken | None = None) -> Runner:
    return tracer_runner(settings.timeout_seconds, settings.max_frames, cancel)


@dataclass(frozen=True)
class FillPlan:
    settings: Settings
    may_run: bool  # the execution policy allows real runs (search by running, checks)
    trace: Trace | None  # a copy of the function's predicted trace with frames, if any


@dataclass
class FillService:
    session: Session
    path_of: Callable[[str], str]  # uri -> file path
    chat_tokens: int = 256  # generation budget of a chat-mode fill (no reasoning: an editor waits for it)
    _pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuraldbg-fill"))
    _futures: dict[tuple, asyncio.Future[FillResult]] = field(default_factory=dict)
    _cancels: dict[tuple, CancelToken] = field(default_factory=dict)  # the token of each fill in _futures

    def __post_init__(self) -> None:
        self.session.edit_listeners.append(self.forget)  # a fill of an older text is of no use

    def _key(self, uri: str, text: str, holes: tuple[Hole, ...]) -> tuple:
        s = self.session.settings
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        spots = tuple((h.span.start_line, h.span.start_col) for h in holes)
        return (uri, digest, spots, s.backend, s.profile, s.url, s.allow_execution, s.temperature, s.seed)

    def plan(self, uri: str, fn: FunctionInfo) -> FillPlan:
        """What a fill of ``fn`` works from, read on the event loop: the fill
        thread never touches the session's cache or a streaming trace."""
        s = self.session.settings
        may_run = self.session.policy.refusal(self.session.real_run_settings()) is None
        entry = self.session.cached(uri, fn.qualname)
        trace = entry.trace if entry is not None and entry.trace.predicted and entry.trace.frames else None
        return FillPlan(s, may_run, None if trace is None else replace(trace, frames=list(trace.frames)))

    def fillers(self, uri: str, fn: FunctionInfo) -> list[Filler]:
        """The fillers to try, best first (raises FillError if none applies)."""
        return self._fillers(self.plan(uri, fn))

    def _fillers(self, plan: FillPlan, cancel: CancelToken | None = None) -> list[Filler]:
        s = plan.settings
        runner = make_runner(s, cancel)
        checker = RunChecker(runner) if plan.may_run else None
        if runs_code(s.backend):
            if not plan.may_run:
                raise FillError(NEEDS_EXECUTION.format(backend=s.backend))
            return [SearchFiller(runner)]
        out: list[Filler] = []
        if plan.trace is not None:
            out.append(TraceFiller(plan.trace, checker=checker))
        backend, tok = self.session.engines.backend(s)  # may load the model: in the fill thread
        out.append(ChatFiller(backend, tok, sampling=chat_sampling(s, max_tokens=self.chat_tokens),
                              checker=checker, reasoning=False, lock=self.session.model_lock))
        return out

    def _work(self, plan: FillPlan, request: FillRequest, cancel: CancelToken) -> FillResult:
        try:
            cancel.raise_if_cancelled()  # cancelled while it waited for the fill thread
            return first_fill(self._fillers(plan, cancel), request, cancel)
        except Cancelled:
            raise FillError(FILL_CANCELLED) from None

    def fill(self, uri: str, fn: FunctionInfo, holes: tuple[Hole, ...]) -> asyncio.Future[FillResult]:
        """A future fill of ``holes`` (shared by every caller asking for the
        same holes of the same text). Raises KeyError for an unknown uri."""
        doc = self.session.documents[uri]
        key = self._key(uri, doc.text, holes)
        fut = self._futures.get(key)
        if fut is not None and not (fut.done() and fut.cancelled()):
            return fut
        request = FillRequest(source=doc.text, index=doc.index, function=fn, holes=holes, path=self.path_of(uri))
        cancel = CancelToken()
        loop = asyncio.get_running_loop()
        plan = self.plan(uri, fn)
        fut = asyncio.ensure_future(loop.run_in_executor(self._pool, self._work, plan, request, cancel))
        self._futures[key], self._cancels[key] = fut, cancel
        self._trim(uri, key)
        return fut

    def _trim(self, uri: str, keep: tuple) -> None:
        # fills of older texts of this document are of no use any more
        for key in [k for k in self._futures if k[0] == uri and k[1] != keep[1]]:
            self._drop(key)

    def forget(self, uri: str) -> None:
        """Drop (and cancel) the fills of ``uri``: it was edited or closed."""
        for key in [k for k in self._futures if k[0] == uri]:
            self._drop(key)

    def _drop(self, key: tuple) -> None:
        self._futures.pop(key)
        self._cancels.pop(key).cancel()  # no-op for a finished fill

    def shutdown(self) -> None:
        for cancel in self._cancels.values():
            cancel.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
