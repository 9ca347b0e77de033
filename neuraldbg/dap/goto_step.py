"""``neuraldbg/goToStep`` (custom DAP request): move a stopped session to one
step of its trace, backwards or forwards, and stop there (reason ``goto``).
What a click on a frame of the editors' trace views does in a debug session;
DAP's own ``goto`` moves to a line, not to one of the line's many visits.

Backwards undoes frames (as Step Back does); forwards advances the
simulation frame by frame (stepping into calls), never past the trace's last
frame: a step beyond it stops on that last frame instead of ending the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neuraldbg.dap.debugger import Debugger, Outcome
from neuraldbg.dap.features import FeatureError

GO_TO_STEP = "neuraldbg/goToStep"


class GoToStepError(FeatureError):
    """Bad arguments (one line to the client)."""


def go_to_step_motion(args: dict[str, Any]) -> Callable[[Debugger], Outcome]:
    """The motion of one ``neuraldbg/goToStep`` request (raises GoToStepError for bad arguments)."""
    step = args.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise GoToStepError(f"{GO_TO_STEP} needs a step: an integer >= 0 (got {step!r})")
    return lambda debugger: go_to_step(debugger, step)


def go_to_step(debugger: Debugger, step: int) -> Outcome:
    """Move ``debugger``'s simulation to frame ``step`` (or its last frame) and stop there."""
    sim = debugger.sim

    def move() -> None:
        debugger.returned = False
        while len(sim.frames) - 1 > step and len(sim.frames) > 1:
            sim.step_back()
        while len(sim.frames) - 1 < step:
            if not sim.advance(None, debugger.cancel):
                if sim.done and len(sim.frames) > 1:
                    # the trace ended before ``step``: stay on its last frame, the session goes on
                    sim.step_back()
                    sim.advance(None, debugger.cancel)
                break

    return debugger._motion(move, "goto")  # as features.py: locks, errors and the outcome of every motion
