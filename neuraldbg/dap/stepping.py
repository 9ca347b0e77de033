"""Where a step ends, over any trace: the stepping rules of pdb (bdb's
``set_step`` / ``set_next`` / ``set_return``) and debugpy (pydevd's
``CMD_STEP_INTO`` / ``CMD_STEP_OVER`` / ``CMD_STEP_RETURN``), decided one
new frame at a time so that a model backend makes only the frames a step
needs. No protocol and no simulation here: :class:`Walk` says, for each new
frame, whether the step goes on or ends.

- step in: the next line event anywhere (a call frame is passed: the step
  lands on the callee's first line, as debugpy does);
- step over: the next line event in the same frame; once that frame has
  returned, the next line event anywhere (pydevd turns a step over that
  leaves its frame into a step in; bdb clears its stop frame);
- step out: the return of the current frame, shown in the caller on the
  calling line (debugpy's stop; :attr:`Verdict.RETURNED`).

A step in (or a step over past its own frame) that meets a return event
stops in the caller on the calling line, as pydevd shows a return event (a
frame that an exception leaves included). Exception events are passed: the
exception filters decide.

Where neuraldbg differs on purpose: a step in or over also stops on the
return event of the frame it started in (pdb's ``--Return--``, with the
``(return)`` value), unless an exception leaves that frame. Such a return
stop is a stop in the callee; the next step goes on as debugpy's step would
have: a step out, or a step in (pydevd stops on the return event, in the
caller), goes to the caller at once, except at a generator's yield, where a
step in goes on to the next line (pydevd does not stop on a yield).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, Mapping, Sequence

from neuraldbg.trace.frames import Frame

Kind = Literal["in", "over", "out"]


class Verdict(Enum):
    GO = "go"  # not yet: make the next frame
    STOP = "stop"  # stop on this frame
    RETURNED = "returned"  # stop in the caller, right after this return frame


def exits_by_exception(frames: Sequence[Frame], i: int) -> bool:
    """Frame ``i`` is a return that ends its scope because an exception
    propagates out of it (CPython writes an exception event, then return None)."""
    f = frames[i]
    if f.event != "return" or i == 0:
        return False
    prev = frames[i - 1]
    return prev.event == "exception" and prev.depth == f.depth


def just_raised(frames: Sequence[Frame], i: int) -> bool:
    """Frame ``i`` is an exception event where the exception is raised, not
    one where it arrives from a callee that it left (pydevd's ``just_raised``:
    a "Raised Exceptions" stop is made once, where it was raised)."""
    f = frames[i]
    if f.event != "exception":
        return False
    return not (i > 0 and frames[i - 1].event == "return" and frames[i - 1].depth == f.depth + 1
                and exits_by_exception(frames, i - 1))


def raise_site(frames: Sequence[Frame], i: int) -> int:
    """The frame where the exception seen at frame ``i`` (an exception
    event, or the return of a scope it left) was raised: back along its
    propagation (exception, return, exception in the caller...)."""
    j = i
    while j > 0:
        f = frames[j]
        if f.event == "return" and exits_by_exception(frames, j):
            j -= 1
            continue
        if f.event == "exception" and not just_raised(frames, j):
            j -= 1
            continue
        break
    return j


def at_yield(frame: Frame, generator_returns: Mapping[str, frozenset[int]] | None) -> bool:
    """``frame`` is a generator's return event at a yield, not its real return
    (``generator_returns``: each generator function's real return lines)."""
    real = (generator_returns or {}).get(frame.function)
    return frame.event == "return" and real is not None and frame.line not in real


def returned_scope_depth(frame: Frame, returned: bool) -> int:
    """The depth of the frame a stop is in (a stop after a return is in the caller)."""
    return frame.depth - 1 if returned else frame.depth


@dataclass
class Walk:
    """One step in progress. ``depth``: the depth of the frame the step
    started in; ``alive``: that frame has not returned yet."""

    kind: Kind
    depth: int
    alive: bool
    # A step out of a generator runs through its yields to its real return
    # (bdb ignores a generator's return events unless stepping; pydevd does the same):
    # the lines of its real returns, and whether it is suspended at a yield now.
    function: str = ""
    real_returns: frozenset[int] | None = None
    suspended: bool = False

    @staticmethod
    def start(kind: Kind, frame: Frame, returned: bool,
              generator_returns: Mapping[str, frozenset[int]] | None = None) -> "Walk":
        """From a stop on ``frame`` (``returned``: in the caller, after it).
        ``generator_returns``: each generator function's real return lines."""
        if returned:
            return Walk(kind, frame.depth - 1, True)
        real = (generator_returns or {}).get(frame.function) if kind == "out" else None
        return Walk(kind, frame.depth, frame.event != "return", frame.function, real)

    def _yields(self, f: Frame) -> bool:
        return self.real_returns is not None and f.function == self.function and f.line not in self.real_returns

    def needs_callee(self, call: Frame) -> bool:
        """Does this step look inside the call just made? If not, a model
        backend may predict its return directly (unless a breakpoint may be
        inside: the debugger decides that)."""
        return self.kind == "in" or not self.alive or call.depth <= self.depth

    def see(self, frames: Sequence[Frame], i: int) -> Verdict:
        f = frames[i]
        if not self.alive:
            return _step_in(frames, i, own=False)
        if self.suspended:  # the consumer runs until it resumes the generator
            if f.depth == self.depth and f.event == "call" and f.function == self.function:
                self.suspended = False
            return Verdict.GO
        if f.depth > self.depth:  # inside a callee
            return _step_in(frames, i, own=False) if self.kind == "in" else Verdict.GO
        if f.depth < self.depth:
            # The frame ended without a return event (a predicted trace may skip it).
            self.alive = False
            return Verdict.STOP if self.kind == "out" else _step_in(frames, i, own=False)
        if f.event == "return":
            if self.kind == "out" and self._yields(f) and not exits_by_exception(frames, i):
                self.suspended = True
                return Verdict.GO
            self.alive = False
            if self.kind == "out":
                return Verdict.RETURNED
            if self.kind == "over" and exits_by_exception(frames, i):
                return Verdict.GO  # pydevd: no stop on its own frame's return; on as a step in
            return _step_in(frames, i, own=True)
        if f.event == "line":
            return Verdict.GO if self.kind == "out" else Verdict.STOP
        if f.event == "call":
            self.alive = False  # a new call at this depth: the frame already ended
        return Verdict.GO  # an exception event: the filters decide


def _step_in(frames: Sequence[Frame], i: int, *, own: bool) -> Verdict:
    """A step in (or a step over past its own frame): the next line event
    anywhere; a return event is a stop in the caller on the calling line,
    as pydevd shows it, except the step's own frame's return, where
    neuraldbg stops in the frame with its value (pdb's ``--Return--``)."""
    f = frames[i]
    if f.event == "line":
        return Verdict.STOP
    if f.event == "return":
        return Verdict.STOP if own and not exits_by_exception(frames, i) else Verdict.RETURNED
    return Verdict.GO  # a call (the step lands on the callee's first line), an exception event

# (depth of the returning frame, its function, the value), per frame index of the return
ReturnRecords = dict[int, tuple[int, str, str]]


def record_returns(frames: Sequence[Frame], kind: Kind, start: int, returned: bool, records: ReturnRecords,
                   generator_returns: Mapping[str, frozenset[int]] | None = None) -> None:
    """Note the return values pydevd keeps for the step that began at frame
    ``start`` (``showReturnValue``): a step in keeps every return; a step
    over, the returns of its frame's callees and its own, then every return
    once it left its frame; a step out, its frame's own return.
    ``generator_returns``: the lines where each generator function really
    returns (its other return events are yields, which pydevd does not count)."""

    def take(i: int) -> None:
        f = frames[i]
        if f.value is not None and not at_yield(f, generator_returns):
            records[i] = (f.depth, f.function, f.value)

    if not frames:
        return
    walk = Walk.start(kind, frames[start], returned)
    if frames[start].event == "return" and not returned:
        take(start)  # the return stop the step leaves from
    for i in range(start + 1, len(frames)):
        f = frames[i]
        if f.event == "return":
            if kind == "in" or not walk.alive:
                take(i)
            elif (kind == "over" and f.depth in (walk.depth, walk.depth + 1)) or (kind == "out" and f.depth == walk.depth):
                take(i)
        walk.see(frames, i)


def return_values(frames: Sequence[Frame], records: ReturnRecords, top: int) -> list[tuple[str, str]]:
    """debugpy's "(return) name" values of the frame shown at ``top``: the
    returns into it noted so far (the last value of each name), kept while
    it runs, as pydevd keeps them in the frame."""
    if not frames or not records:
        return []
    depth = frames[top].depth
    now = len(frames) - 1
    call = next((i for i in range(top, -1, -1) if frames[i].event == "call" and frames[i].depth == depth), 0)
    out: dict[str, str] = {}
    for i in sorted(records):
        d, function, value = records[i]
        if call < i <= now and d == depth + 1:
            out[function] = value
    return list(out.items())
