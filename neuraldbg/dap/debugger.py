"""Debugger motions over a :class:`Simulation`: what each DAP step does and
why it stopped. No protocol here: the adapter turns outcomes into events.

Steps follow pdb's and debugpy's rules over the trace (neuraldbg/dap/stepping.py),
one new frame at a time, and stop at any breakpoint, data breakpoint or
exception filter hit in the code they pass. On the exec backend every frame
is known, so a step over or out walks through the callee; on a model backend
a call that nothing may stop in is stepped over by forcing its return (the
model predicts the callee's result directly), else it is stepped into under
the hood. Going back never calls the model: frames undone are kept by the
simulation and reused when stepping forward again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from neuraldbg.backends.base import CancelToken, Cancelled
from neuraldbg.dap.breakpoints import Breakpoint, condition_holds, counts_at, reached
from neuraldbg.dap.exceptions import ExceptionStop, escaping_raise, exception_stop
from neuraldbg.dap.stepping import Kind, ReturnRecords, Verdict, Walk, at_yield, record_returns
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.trace.frames import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stopped:
    reason: str  # "entry", "step", "breakpoint", "exception", "pause", or a check's own ("data breakpoint"...)
    description: str | None = None
    text: str | None = None
    breakpoint_ids: list[int] = field(default_factory=list)
    exception: ExceptionStop | None = None  # what exceptionInfo answers at an exception stop


@dataclass(frozen=True)
class Ended:
    exit_code: int
    message: str | None = None  # why the trace stopped early, if it did
    traceback: str | None = None  # the uncaught exception, as Python prints it


Outcome = Stopped | Ended
OutputSink = Callable[[str, str, int | None], None]  # (text, category, line)


# Another reason to stop on a frame (data and function breakpoints):
# (frames, step, forward) -> the stop or None; frames after ``step`` are not looked at.
ExtraStops = Callable[[list[Frame], int, bool], "Stopped | None"]


@dataclass
class Debugger:
    sim: Simulation
    breakpoints: Callable[[], list[Breakpoint]]  # the verified breakpoints of the program file, now
    output: OutputSink
    break_on_exceptions: bool = False  # the "raised" filter
    break_on_uncaught: bool = True  # the "uncaught" filter
    cancel: CancelToken = field(default_factory=CancelToken)
    pause_requested: threading.Event = field(default_factory=threading.Event)
    model_lock: threading.Lock | None = None  # one generation at a time when shared with a language server
    extra_stops: ExtraStops | None = None
    # Whether extra_stops could stop now (else a model backend may step over a call by forcing its return).
    extra_active: Callable[[], bool] = lambda: True
    source: str = ""  # the program's text and path, for tracebacks
    path: str = ""
    # The stop is in the caller right after the current frame (a return):
    # where a step out lands, as debugpy shows it (the calling line, mid-way).
    returned: bool = False
    # What calls returned during steps, shown as debugpy's "(return) f" values (stepping.record_returns).
    returns: ReturnRecords = field(default_factory=dict)
    # Stopped on an uncaught exception: the call has in fact ended (debugpy shows it after the
    # program's end), so any step from there ends the session, passing no other stop.
    unhandled: bool = False
    # Generator functions -> the lines of their real returns (their other return events are yields).
    generator_returns: Mapping[str, frozenset[int]] = field(default_factory=dict)
    _stop: Stopped | None = None

    # -- helpers -----------------------------------------------------------------
    @property
    def step(self) -> int:
        return len(self.sim.frames) - 1

    @contextlib.contextmanager
    def generating(self) -> Iterator[None]:
        lock = self.model_lock if self.sim.engine.predicted else None
        if lock is not None:
            lock.acquire()
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def _model_failed(self) -> bool:
        """The trace stopped because the model backend failed or produced no
        usable frame (not because the program ended or hit the frame cap):
        the session stays at the last good frame and the next step retries."""
        sim = self.sim
        return (sim.done and sim.engine.predicted and sim.status in ("error", "truncated")
                and len(sim.frames) < sim.max_frames)

    def _retryable(self) -> None:
        if self._model_failed():
            self.sim.done, self.sim.status, self.sim.error = False, "streaming", None

    def _motion(self, move: Callable[[], object], reason: str) -> Outcome:
        self._retryable()
        self._stop = None
        start = self.step
        if self.unhandled:
            self.unhandled = False
            move = lambda: self.sim.run(cancel=self.cancel)  # noqa: E731
        try:
            with self.generating():
                move()
        except Cancelled:
            return Stopped("pause", description="cancelled")
        except Exception as exc:  # a backend failing mid-session must not end the adapter
            log.warning("simulation step failed", exc_info=True)
            message = _one_line(exc)
            self.output(f"neuraldbg: the {self.sim.engine.backend} backend failed: {message}\n", "stderr", None)
            return Stopped("pause", description=f"backend error: {message}", text=message)
        finally:
            self.pause_requested.clear()
        return self._outcome(reason, start)

    def _outcome(self, reason: str, start: int) -> Outcome:
        sim = self.sim
        if sim.done:
            if self._model_failed():
                message = sim.error or "the backend failed"
                self.output(f"neuraldbg: {message}\n", "stderr", None)
                return Stopped("pause", description=f"backend error: {message}", text=message)
            trace = sim.trace()
            site = escaping_raise(trace)
            if site is not None and self.break_on_uncaught and start != site:
                # Stop where it was raised, before the session ends (debugpy's
                # "Uncaught Exceptions"); the next motion from there ends it.
                exc = exception_stop(trace, site, "unhandled", source=self.source, path=self.path)
                while len(sim.frames) - 1 > site:
                    sim.step_back()
                self.returned = False
                self.unhandled = True
                return Stopped("exception", description=exc.description, text=exc.type_name, exception=exc)
            failed = sim.status in ("error", "truncated")
            if failed and sim.error:
                self.output(f"neuraldbg: {sim.error}\n", "stderr", None)
            text = None
            if site is not None:
                text = exception_stop(trace, site, "unhandled", source=self.source, path=self.path).traceback
            return Ended(1 if (trace.raised is not None or failed) else 0, sim.error if failed else None, text)
        if self._stop is not None:
            return self._stop
        return Stopped(reason)

    def _may_stop_inside(self) -> bool:
        """Could something stop inside a call we would step over? (Any
        breakpoint: a callee reaches functions through arguments, so the
        file's call graph cannot rule one out.)"""
        return bool(self.breakpoints()) or self.break_on_exceptions or (self.extra_stops is not None and self.extra_active())

    def _check(self, step: int, frame: Frame) -> bool:
        """Stop test for every new frame of a forward motion."""
        if self.pause_requested.is_set():
            self._stop = Stopped("pause")
            return True
        frames = self.sim.frames
        # "Raised Exceptions" stops on each exception event, where it is raised and in each
        # frame it then passes through, as pydevd does.
        if frame.event == "exception" and self.break_on_exceptions:
            exc = exception_stop(self.sim.trace(), step, "always", source=self.source, path=self.path)
            self._stop = Stopped("exception", description=exc.description, text=exc.type_name, exception=exc)
            return True
        if self.extra_stops is not None:
            stop = self.extra_stops(frames, step, True)
            if stop is not None:
                self._stop = stop
                return True
        hit_ids: list[int] = []
        errors: list[str] = []
        for bp in self.breakpoints():
            if not counts_at(bp, frame):
                continue
            hit = reached(bp, step, frame.locals)
            if hit is None:
                continue
            if hit.log is not None:
                self.output(hit.log + "\n", "console", frame.line)
            if hit.error is not None:
                errors.append(hit.error)
                self.output(f"neuraldbg: {hit.error}\n", "stderr", frame.line)
            if hit.stop:
                hit_ids.append(bp.id)
        if hit_ids:
            self._stop = Stopped("breakpoint", description="; ".join(errors) or None, breakpoint_ids=hit_ids)
            return True
        return False

    def _walk(self, kind: Kind) -> None:
        """Make frames until the step ends (stepping.Walk) or something stops it."""
        sim = self.sim
        cur = sim.current
        if cur is None:
            return
        walk = Walk.start(kind, cur, self.returned, self.generator_returns)
        start, returned = len(sim.frames) - 1, self.returned
        try:
            if cur.event == "return" and not self.returned and cur.depth > 0 and (
                    kind == "out" or (kind == "in" and not at_yield(cur, self.generator_returns))):
                # A return stop is in the callee: out goes to the caller at once, and so does in,
                # where pydevd stops on the return event (not on a generator's yield).
                self.returned = True
                return
            self.returned = False
            self._walk_from(walk)
        finally:
            record_returns(sim.frames, kind, start, returned, self.returns, self.generator_returns)

    def _walk_from(self, walk: Walk) -> None:
        sim = self.sim
        predicted = sim.engine.predicted
        while True:
            cur = sim.current
            assert cur is not None
            forced = None
            if predicted and cur.event == "call":
                # The model predicts a callee's result directly unless the step, or a stop, needs its frames.
                inside = walk.needs_callee(cur) or len(sim.frames) == 1 or self._may_stop_inside()
                forced = "line" if inside else "return"
            if not sim.advance(forced, self.cancel):
                return
            step = len(sim.frames) - 1
            frame = sim.frames[step]
            if self._check(step, frame):
                return
            verdict = walk.see(sim.frames, step)
            if verdict is Verdict.STOP:
                return
            if verdict is Verdict.RETURNED and frame.depth > 0:
                self.returned = True
                return
            # RETURNED from the entry call: no caller to stop in, run to the end.

    # -- motions -----------------------------------------------------------------
    def begin(self, stop_on_entry: bool) -> Outcome:
        """After configurationDone: stop on the entry frame or run to the
        first breakpoint (one on the def line stops at once)."""
        self.returned = False
        self.unhandled = False
        self.returns.clear()
        if stop_on_entry or self.sim.current is None:
            return self._outcome("entry", -1) if self.sim.done else Stopped("entry")
        if self._check(0, self.sim.current):
            return self._stop or Stopped("breakpoint")
        return self.cont()

    def cont(self) -> Outcome:
        def move() -> None:
            self.returned = False
            self.sim.run(self._check, cancel=self.cancel)

        return self._motion(move, "pause")

    def next(self) -> Outcome:
        return self._motion(lambda: self._walk("over"), "step")

    def step_in(self) -> Outcome:
        return self._motion(lambda: self._walk("in"), "step")

    def step_out(self) -> Outcome:
        return self._motion(lambda: self._walk("out"), "step")

    def step_back(self) -> Outcome:
        """The reverse of ``next``: back one frame, then on through any
        deeper frames (a call stepped over) and callee entry frames."""
        sim = self.sim
        self.unhandled = False
        if len(sim.frames) <= 1:
            return Stopped("entry", description="at the start of the trace")
        depth = sim.current.depth if sim.current else 0
        if self.returned:
            depth -= 1  # the stop was in the caller
        self.returned = False
        sim.step_back()
        while len(sim.frames) > 1:
            cur = sim.current
            assert cur is not None
            if cur.depth > depth or (cur.event == "call" and cur.depth > 0 and cur.depth >= depth):
                if self.extra_stops is not None:
                    # A data or function breakpoint inside the call stepped back over stops there, as going forwards.
                    inside = self.extra_stops(sim.frames, len(sim.frames) - 1, False)
                    if inside is not None:
                        return inside
                sim.step_back()
                continue
            break
        return Stopped("step") if len(sim.frames) > 1 else Stopped("entry", description="at the start of the trace")

    def reverse_continue(self) -> Outcome:
        """Back to the previous frame on a breakpoint whose condition holds
        (log points and hit counts do not stop going backwards), or the start."""
        hit: list[int] = []
        found: list[Stopped] = []
        self.returned = False
        self.unhandled = False

        def stop(step: int, frame: Frame) -> bool:
            if self.extra_stops is not None:
                got = self.extra_stops(self.sim.frames, step, False)
                if got is not None:
                    found.append(got)
                    return True
            ids = [bp.id for bp in self.breakpoints() if counts_at(bp, frame) and condition_holds(bp, frame.locals)]
            hit[:] = ids
            return bool(ids)

        self.sim.reverse_continue(stop)
        if found:
            return found[-1]
        if hit:
            return Stopped("breakpoint", breakpoint_ids=list(hit))
        return Stopped("entry", description="at the start of the trace")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
