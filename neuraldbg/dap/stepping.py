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

Exception events are passed (the exception filters decide); a frame that an
exception leaves is, for a step in (or a step over past its own frame), a
stop in the caller on the calling line, as pydevd shows that return event.

Where neuraldbg differs on purpose: a step in or over also stops on the
frame's own return event (pdb's ``--Return--``, with the ``(return)``
value), except when the frame exits by an exception. Such a return stop is a
stop in the callee; a step out from it goes to the caller at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, Sequence

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

    @staticmethod
    def start(kind: Kind, frame: Frame, returned: bool) -> "Walk":
        """From a stop on ``frame`` (``returned``: in the caller, after it)."""
        if returned:
            return Walk(kind, frame.depth - 1, True)
        return Walk(kind, frame.depth, frame.event != "return")

    def needs_callee(self, call: Frame) -> bool:
        """Does this step look inside the call just made? If not, a model
        backend may predict its return directly (unless a breakpoint may be
        inside: the debugger decides that)."""
        return self.kind == "in" or not self.alive or call.depth <= self.depth

    def see(self, frames: Sequence[Frame], i: int) -> Verdict:
        f = frames[i]
        if self.kind == "in" or not self.alive:
            return _step_in(frames, i)
        if f.depth > self.depth:
            return Verdict.GO  # inside a callee
        if f.depth < self.depth:
            # The frame ended without a return event (a predicted trace may skip it).
            self.alive = False
            return _step_in(frames, i) if self.kind == "over" else Verdict.STOP
        if self.kind == "out":
            return Verdict.RETURNED if f.event == "return" else Verdict.GO
        # step over, in the same frame
        if f.event == "line":
            return Verdict.STOP
        if f.event == "return":
            self.alive = False
            return Verdict.GO if exits_by_exception(frames, i) else Verdict.STOP
        if f.event == "call":
            self.alive = False  # a new call at this depth: the frame already ended
            return Verdict.GO
        return Verdict.GO  # an exception event: the filters decide


def _step_in(frames: Sequence[Frame], i: int) -> Verdict:
    f = frames[i]
    if f.event == "line":
        return Verdict.STOP
    if f.event == "return":
        # A frame an exception leaves: pydevd stops on that return event and
        # shows the caller on its calling line (where the exception arrives).
        return Verdict.RETURNED if exits_by_exception(frames, i) else Verdict.STOP
    return Verdict.GO  # a call (the step lands on the callee's first line), an exception event
