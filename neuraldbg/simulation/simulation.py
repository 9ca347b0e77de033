"""Step through a trace that is produced on demand.

The control loop matches the release's debugger (demos/cwmdbg.py): stepping
is done by asking an engine for the next frame, optionally FORCING its event
(step into = force a line after a call; step over = force a return right
after a call, so the callee's return value is predicted directly; step out =
keep stepping over until a return). It does better where the demo is weak:
frames already predicted are reused after a step back, an edit truncates the
future instead of being silently ignored, malformed frames are flagged, and
the model engine keeps each frame's token ids, so every request sends the
whole prompt (context plus the frames so far) unchanged and the backend's
KV / prefix cache makes that cheap: only the new tokens are computed. A run
can start from frames already known (a cached trace of the same input).

Engines: :class:`neuraldbg.simulation.model_engine.ModelEngine` (any TokenBackend through the
CWM codec) and :class:`neuraldbg.simulation.exec_engine.ExecEngine` (the ground-truth trace).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from neuraldbg.backends.base import CancelToken
from neuraldbg.trace.frames import Event, Frame, StopKind, Trace, TraceStatus

log = logging.getLogger(__name__)


class SimulationError(RuntimeError):
    """A one-line, user-facing failure of the simulation (e.g. not supported)."""


@dataclass(frozen=True)
class Step:
    """What an engine returns for one request."""

    frame: Frame | None  # None: the trace ended (the entry scope exited)
    error: str | None = None  # set when the engine could not continue (status becomes truncated/error)
    status: TraceStatus | None = None
    stop: StopKind | None = None  # why a truncated trace stopped, when known (Trace.stop)


class Engine(Protocol):
    backend: str  # "exec", "local", "remote", "replay"
    model: str | None
    predicted: bool
    supports_edit: bool

    def first(self, cancel: CancelToken | None) -> Step:
        """The entry call frame (inputs forced, or imagined by a model)."""
        ...

    def next(self, frames: list[Frame], forced: Event | None, cancel: CancelToken | None) -> Step:
        """The frame after ``frames``; ``forced`` fixes its event."""
        ...

    def truncate(self, n: int) -> None:
        """Go back to the first ``n`` frames, keeping what came after so that
        :meth:`redo` can bring it back (a later ``next`` or ``replace``
        discards it)."""
        ...

    def redo(self) -> None:
        """The frame after the current ones is the one kept by ``truncate``."""
        ...

    def replace(self, step: int, frame: Frame) -> None:
        """Teacher-force ``frame`` at ``step`` (edit); only if supports_edit."""
        ...

    def reseed(self, seed: int | None) -> None: ...


FrameListener = Callable[[int, Frame], None]


@dataclass
class Simulation:
    engine: Engine
    function: str
    call: str
    max_frames: int = 2000
    listeners: list[FrameListener] = field(default_factory=list)
    # Frames an earlier run of this input already made (a cached model trace):
    # start() shows them again, taught to the engine, and the engine is asked
    # only past them or where a step forces another event.
    known: list[Frame] = field(default_factory=list)
    known_complete: bool = False  # the known frames end with the entry scope's exit

    frames: list[Frame] = field(default_factory=list)
    done: bool = False
    status: TraceStatus = "streaming"
    error: str | None = None
    stop: StopKind | None = None
    _future: list[Frame] = field(default_factory=list)  # frames undone by step_back, reusable

    # -- basic motion ------------------------------------------------------
    @property
    def current(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    def start(self, cancel: CancelToken | None = None) -> Frame | None:
        self.frames.clear()
        self._future.clear()
        self.engine.truncate(0)
        self.done, self.status, self.error, self.stop = False, "streaming", None, None
        if self.known and self.engine.supports_edit:
            self._resume(self.known)
        else:
            self._accept(self.engine.first(cancel))
        return self.current

    def _resume(self, known: list[Frame]) -> None:
        """Start from ``known``: every frame teacher-forced into the engine,
        the first shown, the rest ahead as after a step back."""
        for step, frame in enumerate(known):
            self.engine.replace(step, frame)
        self.engine.truncate(1)
        self.frames.append(known[0])
        self._future = list(reversed(known[1:]))
        for listener in list(self.listeners):
            listener(0, known[0])

    def _accept(self, step: Step) -> bool:
        """Append the engine's frame; returns False when the trace ended."""
        if step.frame is None:
            self.done = True
            self.status = step.status or ("complete" if step.error is None else "error")
            self.error = step.error
            self.stop = step.stop if self.status == "truncated" else None
            return False
        self.frames.append(step.frame)
        for listener in list(self.listeners):
            listener(len(self.frames) - 1, step.frame)
        if len(self.frames) >= self.max_frames:
            self._out_of_frames()
            return False
        return True

    def _out_of_frames(self) -> None:
        """The frame budget ran out: "stopped early" (it may well halt), unless
        a real run ends right here and says why itself (a loop it saw repeat
        an exact state; looking costs nothing for a walk over a real run)."""
        if not self.engine.predicted:
            end = self.engine.next(self.frames, None, None)
            self.engine.truncate(len(self.frames))
            if end.frame is None and end.stop is not None and end.stop != "frame-budget":
                self._accept(Step(None, error=end.error, status=end.status, stop=end.stop))
                return
        self.done = True
        self.status, self.stop = "truncated", "frame-budget"
        self.error = f"stopped after {self.max_frames} frames, the frame budget, with the program still running"

    def _advance(self, forced: Event | None, cancel: CancelToken | None) -> bool:
        if self.done:
            return False
        if not self.frames:
            return self._accept(self.engine.first(cancel))
        if not self._future and self.known_complete and self.frames == self.known[: len(self.frames)] \
                and len(self.frames) == len(self.known):
            return self._accept(Step(None, status="complete"))
        if self._future:
            nxt = self._future[-1]
            if forced is None or nxt.event == forced:
                self._future.pop()
                self.engine.redo()
                self.frames.append(nxt)
                return True
            self._future.clear()
        return self._accept(self.engine.next(self.frames, forced, cancel))

    def advance(self, forced: Event | None = None, cancel: CancelToken | None = None) -> bool:
        """One new frame (``forced`` fixes its event: ``"return"`` right after
        a call skips the callee, ``"line"`` enters it); False when the trace
        ended. The debugger builds its motions from this."""
        return self._advance(forced, cancel)

    def step_in(self, cancel: CancelToken | None = None) -> Frame | None:
        cur = self.current
        # After a call frame, force a line so the model enters the callee.
        self._advance("line" if cur is not None and cur.event == "call" else None, cancel)
        return self.current

    def step_over(self, cancel: CancelToken | None = None) -> Frame | None:
        """Next frame in this scope: a call is stepped over by forcing its
        return (the model predicts the callee's result directly)."""
        if not self._advance(None, cancel):
            return self.current
        cur = self.current
        if cur is not None and cur.event == "call" and len(self.frames) > 1:
            if self._advance("return", cancel):
                self._advance(None, cancel)
        return self.current

    def step_out(self, cancel: CancelToken | None = None) -> Frame | None:
        """Run until the current scope returns, then one more step."""
        start_depth = self.current.depth if self.current else 0
        while not self.done:
            cur = self.current
            if cur is not None and cur.event == "call" and len(self.frames) > 1 and cur.depth > start_depth:
                ok = self._advance("return", cancel)
            else:
                ok = self._advance(None, cancel)
            if not ok:
                break
            cur = self.current
            if cur is not None and cur.event == "return" and cur.depth <= start_depth:
                self._advance(None, cancel)
                break
        return self.current

    def step_back(self) -> Frame | None:
        if len(self.frames) > 1:
            self._future.append(self.frames.pop())
            self.engine.truncate(len(self.frames))
            self.done, self.status, self.error, self.stop = False, "streaming", None, None
        return self.current

    def run(self, stop: Callable[[int, Frame], bool] | None = None, *, limit: int | None = None,
            cancel: CancelToken | None = None) -> Frame | None:
        """Continue (stepping into calls) until ``stop(step, frame)`` is true
        for a new frame, the trace ends, or ``limit`` new frames were made."""
        made = 0
        while not self.done and (limit is None or made < limit):
            if not self._advance(None, cancel):
                break
            made += 1
            if stop is not None and stop(len(self.frames) - 1, self.frames[-1]):
                break
        return self.current

    def run_to_line(self, line: int, *, limit: int | None = None, cancel: CancelToken | None = None) -> Frame | None:
        return self.run(lambda _i, f: f.line == line and f.event in ("line", "call"), limit=limit, cancel=cancel)

    def run_to_end(self, cancel: CancelToken | None = None) -> Trace:
        self.run(cancel=cancel)
        return self.trace()

    def reverse_continue(self, stop: Callable[[int, Frame], bool] | None = None) -> Frame | None:
        """Step back until ``stop`` holds for the current frame, or the start."""
        while len(self.frames) > 1:
            self.step_back()
            if stop is not None and stop(len(self.frames) - 1, self.frames[-1]):
                break
        return self.current

    # -- counterfactuals ---------------------------------------------------
    def edit(self, step: int, name: str, value_repr: str) -> Frame:
        """Set local ``name`` at ``step`` and drop every later frame; the
        next step re-simulates from the edited state (teacher forcing)."""
        if not self.engine.supports_edit:
            raise SimulationError(f"editing a variable is not supported on the {self.engine.backend} backend (it replays a real run)")
        if not 0 <= step < len(self.frames):
            raise SimulationError(f"no frame {step}")
        frame = self.frames[step]
        if frame.event not in ("call", "line"):
            raise SimulationError("variables can only be edited at a call or line frame")
        new_locals = dict(frame.locals)
        new_locals[name] = value_repr
        edited = Frame(frame.event, frame.line, frame.function, frame.depth, new_locals, frame.value, frame.source, None)
        del self.frames[step + 1:]
        self._future.clear()
        self.frames[step] = edited
        self.engine.truncate(step)
        self.engine.replace(step, edited)
        self.done, self.status, self.error, self.stop = False, "streaming", None, None
        for listener in list(self.listeners):
            listener(step, edited)
        return edited

    def reseed(self, seed: int | None) -> None:
        """A new sample from the next start: the known frames were the old one's."""
        self.known, self.known_complete = [], False
        self.engine.reseed(seed)

    def resample(self, seed: int | None, cancel: CancelToken | None = None) -> Frame | None:
        self.reseed(seed)
        return self.start(cancel)

    def trace(self) -> Trace:
        return Trace(
            function=self.function,
            call=self.call,
            backend=self.engine.backend,
            frames=list(self.frames),
            error=self.error,
            status=self.status if self.done else "streaming",
            model=self.engine.model,
            predicted=self.engine.predicted,
            stop=self.stop if self.done else None,
        )
