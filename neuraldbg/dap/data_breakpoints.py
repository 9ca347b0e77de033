"""Data breakpoints over a trace: stop where a local variable changes.

Every frame's locals are known (a real run records them; a model writes
them), so a change is found by comparing a frame's locals with those of the
previous frame of the same call: no write watch is needed. A data
breakpoint names a local of a function (``dataId`` ``local:<qualname>:<name>``)
and watches it in every call of that function; the stop is on the frame
that first shows the new value (the line after the one that changed it, as
a watchpoint stops after the write). Going backwards the same frames stop.

No protocol here: :mod:`neuraldbg.dap.features` turns requests into calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from neuraldbg.dap.breakpoints import Breakpoint, LineTable, condition_holds, make_breakpoint, reached
from neuraldbg.trace.frames import Frame

PREFIX = "local:"


class DataBreakpointError(ValueError):
    """A data breakpoint request that cannot be served (one line)."""


@dataclass(frozen=True)
class Watch:
    """What a ``dataId`` names: local ``name`` of every call of ``function``."""

    function: str
    name: str

    @property
    def data_id(self) -> str:
        return f"{PREFIX}{self.function}:{self.name}"

    @staticmethod
    def parse(data_id: object) -> "Watch":
        if not isinstance(data_id, str) or not data_id.startswith(PREFIX):
            raise DataBreakpointError(f"unknown dataId {data_id!r}: ask dataBreakpointInfo for one")
        function, sep, name = data_id[len(PREFIX):].rpartition(":")
        if not sep or not function or not name.isidentifier():
            raise DataBreakpointError(f"unknown dataId {data_id!r}: ask dataBreakpointInfo for one")
        return Watch(function, name)


@dataclass(frozen=True)
class Change:
    """A watched local differs from the previous frame of its call."""

    step: int
    name: str
    before: str | None  # None: it was not bound yet
    after: str | None  # None: it was deleted

    def describe(self) -> str:
        if self.before is None:
            return f"{self.name} = {_short(self.after or '')}"
        if self.after is None:
            return f"{self.name} was deleted (it was {_short(self.before)})"
        return f"{self.name} changed: {_short(self.before)} -> {_short(self.after)}"


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def own_locals(frame: Frame) -> dict[str, str] | None:
    """The locals a frame itself carries (a predicted return frame carries
    none: it shows no change)."""
    if frame.locals or frame.event in ("call", "line"):
        return frame.locals
    return None


def previous_in_call(frames: Sequence[Frame], i: int) -> int | None:
    """The previous frame of the call that frame ``i`` is in, skipping its
    callees' frames; None when ``i`` starts the call."""
    frame = frames[i]
    if frame.event == "call":
        return None
    depth = frame.depth
    for j in range(i - 1, -1, -1):
        prev = frames[j]
        if prev.depth > depth:
            continue
        if prev.depth < depth or prev.function != frame.function:
            return None
        if own_locals(prev) is not None:
            return j
        if prev.event == "call":
            return None
    return None


def change_at(frames: Sequence[Frame], i: int, name: str) -> Change | None:
    """The change of local ``name`` that frame ``i`` shows, if any."""
    now = own_locals(frames[i])
    if now is None:
        return None
    j = previous_in_call(frames, i)
    if j is None:
        return None
    before = frames[j].locals.get(name)
    after = now.get(name)
    if before == after:
        return None
    return Change(i, name, before, after)


@dataclass
class DataBreakpoint:
    watch: Watch
    rule: Breakpoint  # its id, condition and hit count (the line is the stop's, for messages)

    @property
    def id(self) -> int:
        return self.rule.id

    def to_dap(self) -> dict:
        out: dict = {"id": self.rule.id, "verified": self.rule.message is None,
                     "description": f"{self.watch.name} in {self.watch.function}"}
        if self.rule.message:
            out["message"] = self.rule.message
        return out


@dataclass(frozen=True)
class DataHit:
    breakpoint: DataBreakpoint
    change: Change
    error: str | None = None  # its condition failed to evaluate (it stops and says so)


class DataBreakpoints:
    """The session's data breakpoints (the last setDataBreakpoints wins)."""

    def __init__(self, ids: Iterator[int]) -> None:
        self._ids = ids
        self.active: list[DataBreakpoint] = []

    def set(self, specs: list[dict], functions: set[str], path: str) -> list[dict]:
        """Replace all data breakpoints; ``functions``: the qualnames of the
        program file (a dataId of another function is an error)."""
        old = {(bp.watch, str(bp.rule.spec.get("condition")), str(bp.rule.spec.get("hitCondition"))): bp
               for bp in self.active}
        new: list[DataBreakpoint] = []
        for spec in specs:
            watch = Watch.parse(spec.get("dataId"))
            if watch.function not in functions:
                raise DataBreakpointError(f"unknown dataId {watch.data_id!r}: no function {watch.function} in the program")
            access = spec.get("accessType", "write")
            if access not in ("write", "readWrite"):
                raise DataBreakpointError(f"data breakpoints stop on writes only, not on {access!r} access")
            key = (watch, str(spec.get("condition")), str(spec.get("hitCondition")))
            prev = old.get(key)
            if prev is not None:
                new.append(prev)  # an unchanged breakpoint keeps its id and hit count
                continue
            rule_spec = {k: spec[k] for k in ("condition", "hitCondition") if k in spec}
            rule = make_breakpoint(next(self._ids), path, {**rule_spec, "line": 1}, _ANY_LINE)
            rule.spec = dict(spec)
            new.append(DataBreakpoint(watch, rule))
        self.active = new
        return [bp.to_dap() for bp in new]

    def hits(self, frames: Sequence[Frame], i: int, forward: bool) -> list[DataHit]:
        """The data breakpoints that stop at frame ``i``. Forwards, hit counts
        advance (as steps, so that going back and on again counts the same);
        backwards only the condition decides."""
        frame = frames[i]
        out: list[DataHit] = []
        for bp in self.active:
            if bp.rule.message is not None or bp.watch.function != frame.function:
                continue
            change = change_at(frames, i, bp.watch.name)
            if change is None:
                continue
            names = own_locals(frame) or {}
            bp.rule.line = frame.line  # for a condition's error message
            if not forward:
                if condition_holds(bp.rule, names):
                    out.append(DataHit(bp, change))
                continue
            hit = reached(bp.rule, i, names)
            if hit is not None and hit.stop:
                out.append(DataHit(bp, change, hit.error))
        return out


# Data breakpoints take their condition and hit count from a line
# breakpoint's rules; any line is fine for them.
_ANY_LINE = LineTable({1: ""}, {"": (1, 1)}, "")
