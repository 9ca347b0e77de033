"""Debugger motions over a :class:`Simulation`: what each DAP step does and
why it stopped. No protocol here: the adapter turns outcomes into events.

Steps follow the simulation (one model request per new frame): ``next``
steps over a call by forcing its return (the callee's result is predicted
directly), ``stepIn`` enters it, ``stepOut`` runs to the scope's return,
``continue`` steps into everything and checks breakpoints on every new
frame. Going back never calls the model: frames undone are kept by the
simulation and reused when stepping forward again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from neuraldbg.backends.base import CancelToken, Cancelled
from neuraldbg.dap.breakpoints import Breakpoint, condition_holds, reached
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.trace.frames import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stopped:
    reason: str  # "entry", "step", "breakpoint", "exception", "pause"
    description: str | None = None
    text: str | None = None
    breakpoint_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Ended:
    exit_code: int
    message: str | None = None  # why the trace stopped early, if it did


Outcome = Stopped | Ended
OutputSink = Callable[[str, str, int | None], None]  # (text, category, line)


@dataclass
class Debugger:
    sim: Simulation
    breakpoints: Callable[[], list[Breakpoint]]  # the verified breakpoints of the program file, now
    output: OutputSink
    break_on_exceptions: bool = False
    cancel: CancelToken = field(default_factory=CancelToken)
    pause_requested: threading.Event = field(default_factory=threading.Event)
    model_lock: threading.Lock | None = None  # one generation at a time when shared with a language server
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
        return self._outcome(reason)

    def _outcome(self, reason: str) -> Outcome:
        sim = self.sim
        if sim.done:
            if self._model_failed():
                message = sim.error or "the backend failed"
                self.output(f"neuraldbg: {message}\n", "stderr", None)
                return Stopped("pause", description=f"backend error: {message}", text=message)
            trace = sim.trace()
            failed = sim.status in ("error", "truncated")
            if failed and sim.error:
                self.output(f"neuraldbg: {sim.error}\n", "stderr", None)
            return Ended(1 if (trace.raised is not None or failed) else 0, sim.error if failed else None)
        if self._stop is not None:
            return self._stop
        frame = sim.current
        if frame is not None and frame.event == "exception" and self.break_on_exceptions:
            return Stopped("exception", description=f"predicted exception: {frame.value}", text=frame.value)
        return Stopped(reason)

    def _check(self, step: int, frame: Frame) -> bool:
        """Stop test for every new frame of a ``continue``."""
        if self.pause_requested.is_set():
            self._stop = Stopped("pause")
            return True
        if frame.event == "exception" and self.break_on_exceptions:
            self._stop = Stopped("exception", description=f"predicted exception: {frame.value}", text=frame.value)
            return True
        if frame.event not in ("line", "call"):
            return False
        hit_ids: list[int] = []
        errors: list[str] = []
        for bp in self.breakpoints():
            if bp.line != frame.line:
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

    # -- motions -----------------------------------------------------------------
    def begin(self, stop_on_entry: bool) -> Outcome:
        """After configurationDone: stop on the entry frame or run to the
        first breakpoint (one on the def line stops at once)."""
        if stop_on_entry or self.sim.current is None:
            return self._outcome("entry") if self.sim.done else Stopped("entry")
        if self._check(0, self.sim.current):
            return self._stop or Stopped("breakpoint")
        return self.cont()

    def cont(self) -> Outcome:
        return self._motion(lambda: self.sim.run(self._check, cancel=self.cancel), "pause")

    def next(self) -> Outcome:
        return self._motion(lambda: self.sim.step_over(cancel=self.cancel), "step")

    def step_in(self) -> Outcome:
        def move() -> None:
            sim = self.sim
            sim.step_in(cancel=self.cancel)
            cur = sim.current
            # Land on the callee's first line, not on its def line.
            if cur is not None and cur.event == "call" and len(sim.frames) > 1 and not sim.done:
                sim.step_in(cancel=self.cancel)

        return self._motion(move, "step")

    def step_out(self) -> Outcome:
        return self._motion(lambda: self.sim.step_out(cancel=self.cancel), "step")

    def step_back(self) -> Outcome:
        """The reverse of ``next``: back one frame, then on through any
        deeper frames (a call stepped over) and callee entry frames."""
        sim = self.sim
        if len(sim.frames) <= 1:
            return Stopped("entry", description="at the start of the trace")
        depth = sim.current.depth if sim.current else 0
        sim.step_back()
        while len(sim.frames) > 1:
            cur = sim.current
            assert cur is not None
            if cur.depth > depth or (cur.event == "call" and cur.depth > 0 and cur.depth >= depth):
                sim.step_back()
                continue
            break
        return Stopped("step") if len(sim.frames) > 1 else Stopped("entry", description="at the start of the trace")

    def reverse_continue(self) -> Outcome:
        """Back to the previous frame on a breakpoint whose condition holds
        (log points and hit counts do not stop going backwards), or the start."""
        hit: list[int] = []

        def stop(step: int, frame: Frame) -> bool:
            if frame.event not in ("line", "call"):
                return False
            ids = [bp.id for bp in self.breakpoints() if bp.line == frame.line and condition_holds(bp, frame.locals)]
            hit[:] = ids
            return bool(ids)

        self.sim.reverse_continue(stop)
        if hit:
            return Stopped("breakpoint", breakpoint_ids=list(hit))
        return Stopped("entry", description="at the start of the trace")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
