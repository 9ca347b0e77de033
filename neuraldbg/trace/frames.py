"""The trace data model: frames of one entry call, and views over them.

Everything neuraldbg shows (hover, inlay hints, the debugger, the CLI table,
evaluation) reads a :class:`Trace`; nothing else invents program state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Event = Literal["call", "line", "return", "exception"]
EVENTS: tuple[Event, ...] = ("call", "line", "return", "exception")


@dataclass(frozen=True, slots=True)  # slots: a real run may hold 100,000 of these
class Frame:
    """One step of an execution, in CWM's sense (observation + action).

    ``locals`` holds repr strings. For call/line frames they are the state
    BEFORE the line runs, fully resolved (no ``..``). CWM writes no locals on
    return/exception frames; a predicted trace leaves them empty there and
    :meth:`Trace.locals_at` falls back to the scope's last known state.
    Treat ``locals`` as read-only: an executed trace shares one dict between
    consecutive frames whose locals did not change.
    """

    event: Event
    line: int  # 1-based line in the file; 0 when the emitted line could not be mapped
    function: str  # qualified name, ``outer.inner`` / ``Class.method`` (no ``<locals>``)
    depth: int  # 0 for the entry function
    locals: dict[str, str] = field(default_factory=dict)
    value: str | None = None  # repr of the return value / exception
    source: str = ""  # the action: the source line text as emitted (no trailing newline)
    problem: str | None = None  # set when the frame was malformed or unmapped

    @property
    def flagged(self) -> bool:
        return self.problem is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event,
            "line": self.line,
            "function": self.function,
            "depth": self.depth,
            "locals": dict(self.locals),
            "value": self.value,
        }
        if self.problem is not None:
            out["problem"] = self.problem
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Frame":
        return Frame(
            event=data["event"],
            line=int(data["line"]),
            function=str(data["function"]),
            depth=int(data["depth"]),
            locals={str(k): str(v) for k, v in (data.get("locals") or {}).items()},
            value=data.get("value"),
            source=str(data.get("source", "")),
            problem=data.get("problem"),
        )


@dataclass(frozen=True)
class LineVisit:
    """One execution of a line: the state before it ran and after it ran."""

    step: int  # index of the frame whose action is this line
    before: dict[str, str]
    after: dict[str, str] | None  # None when the trace ends before the line finished


TraceStatus = Literal["complete", "streaming", "truncated", "error"]
# Why a truncated trace stopped, when that is known: the frame budget ran out
# on a run that was still going ("stopped early": nothing says it would not
# halt), the time limit was hit with the program still running, or the
# tracer saw the program come back to an earlier state exactly (a loop that
# never ends). None on a truncated trace: another cap (a model's token cap,
# tracing switched off), reported as before (it may not halt).
StopKind = Literal["frame-budget", "time-limit", "cycle"]
STOP_KINDS: tuple[StopKind, ...] = ("frame-budget", "time-limit", "cycle")


@dataclass
class Trace:
    """The frames of one entry call, predicted or executed.

    ``status``: ``complete`` when the entry scope exited; ``truncated`` when a
    frame or time cap stopped it (``stop`` says which; :attr:`may_not_halt`
    whether that suggests a non-halting program); ``streaming`` while a model
    is still producing frames; ``error`` when the run could not produce a
    trace at all (``error`` says why).
    """

    function: str
    call: str
    backend: str  # "exec", "local", "remote", "replay", ...
    frames: list[Frame] = field(default_factory=list)
    error: str | None = None
    status: TraceStatus = "complete"
    model: str | None = None  # model name for predicted traces
    predicted: bool = False
    stdout: str = ""  # what an executed program printed (capped); empty for predicted traces
    stop: StopKind | None = None  # why a truncated trace stopped, when known

    @property
    def may_not_halt(self) -> bool:
        """Truncated by something that suggests the program does not halt:
        every cap but the frame budget, which only says the run was long."""
        return self.status == "truncated" and self.stop != "frame-budget"

    @property
    def stopped_early(self) -> bool:
        """Truncated by the frame budget while still running (it may well halt)."""
        return self.status == "truncated" and self.stop == "frame-budget"

    # -- derived views -------------------------------------------------
    def locals_at(self, step: int) -> dict[str, str]:
        """Resolved locals at ``step`` (for return/exception frames without
        locals, the last known state of that scope)."""
        frame = self.frames[step]
        if frame.locals or frame.event in ("call", "line"):
            return dict(frame.locals)
        for i in range(step - 1, -1, -1):
            prev = self.frames[i]
            if prev.depth == frame.depth and prev.event in ("call", "line"):
                return dict(prev.locals)
            if prev.depth < frame.depth:
                break
        return {}

    def stack_at(self, step: int) -> list[int]:
        """Indices of the call frames active at ``step``, outermost first.

        A return/exception frame is still inside its scope, so its call frame
        is included. Depths are trusted over events so that a predicted trace
        with a missing return frame still gives a sensible stack.
        """
        stack: list[int] = []
        frames = self.frames
        for i in range(step + 1):
            frame = frames[i]
            prev = frames[i - 1] if i else None
            if prev is not None and prev.event == "return" and stack and frames[stack[-1]].depth == prev.depth:
                stack.pop()
            while stack and (
                frames[stack[-1]].depth > frame.depth
                or (frame.event == "call" and frames[stack[-1]].depth >= frame.depth)
            ):
                stack.pop()
            if frame.event == "call":
                stack.append(i)
        return stack

    def next_in_scope(self, step: int) -> int | None:
        """The next frame of the same scope instance after ``step`` (skipping
        any callee frames), or None if the scope ends first."""
        depth = self.frames[step].depth
        for i in range(step + 1, len(self.frames)):
            d = self.frames[i].depth
            if d == depth:
                return i
            if d < depth:
                return None
        return None

    def visits(self, line: int, function: str | None = None) -> list[LineVisit]:
        """Each execution of ``line``: locals before, and after (the state at
        the next frame of the same scope)."""
        out: list[LineVisit] = []
        for i, frame in enumerate(self.frames):
            if frame.line != line or frame.event not in ("line", "call"):
                continue
            if function is not None and frame.function != function:
                continue
            nxt = self.next_in_scope(i)
            after = self.locals_at(nxt) if nxt is not None else None
            out.append(LineVisit(step=i, before=self.locals_at(i), after=after))
        return out

    @property
    def return_value(self) -> str | None:
        """The entry function's return value (None if it raised or the trace
        did not finish)."""
        for frame in reversed(self.frames):
            if frame.depth == 0 and frame.event == "return":
                if self.raised is not None:
                    return None
                return frame.value
        return None

    @property
    def raised(self) -> Frame | None:
        """The exception frame that escaped the entry function, if any: an
        entry-scope exception frame followed by the entry's return frame with
        no entry-scope line in between (a caught exception continues with a
        line)."""
        pending: Frame | None = None
        for frame in self.frames:
            if frame.depth != 0:
                continue
            if frame.event == "exception":
                pending = frame
            elif frame.event == "line":
                pending = None
            elif frame.event == "return":
                return pending
        return None

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--format json`` object (locals resolved everywhere)."""
        frames = []
        for i, frame in enumerate(self.frames):
            data = frame.to_json()
            data["locals"] = self.locals_at(i)
            frames.append(data)
        out: dict[str, Any] = {
            "function": self.function,
            "call": self.call,
            "backend": self.backend,
            "frames": frames,
            "error": self.error,
            "status": self.status,
        }
        if self.model is not None:
            out["model"] = self.model
        if self.stdout:
            out["stdout"] = self.stdout
        if self.stop is not None:
            out["stop"] = self.stop
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Trace":
        return Trace(
            function=data["function"],
            call=data["call"],
            backend=data["backend"],
            frames=[Frame.from_json(f) for f in data.get("frames", [])],
            error=data.get("error"),
            status=data.get("status", "complete"),
            model=data.get("model"),
            stdout=str(data.get("stdout") or ""),
            stop=data["stop"] if data.get("stop") in STOP_KINDS else None,
        )
