"""The ground truth as a simulation engine: steps walk a real run's trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from neuraldbg.backends.base import CancelToken
from neuraldbg.simulation.simulation import SimulationError, Step
from neuraldbg.trace.frames import Event, Frame, Trace


@dataclass
class ExecEngine:
    truth: Trace
    backend: str = "exec"
    model: str | None = None
    predicted: bool = False
    supports_edit: bool = False
    _positions: list[int] = field(default_factory=list)  # truth index of each frame made (shown or kept)
    _n: int = 0  # how many of them are shown

    def _end(self) -> Step:
        status = self.truth.status if self.truth.status != "streaming" else "complete"
        return Step(None, error=self.truth.error, status=status, stop=self.truth.stop)

    def first(self, cancel: CancelToken | None) -> Step:
        self._positions, self._n = [], 0
        if not self.truth.frames:
            return Step(None, error=self.truth.error or "the run produced no frames", status="error")
        self._positions.append(0)
        self._n = 1
        return Step(self.truth.frames[0])

    def next(self, frames: list[Frame], forced: Event | None, cancel: CancelToken | None) -> Step:
        truth = self.truth.frames
        self._n = len(frames)
        p = self._positions[self._n - 1]
        q = p + 1
        if forced == "return" and truth[p].event == "call":
            # Step over: jump to the return of the call just entered.
            depth = truth[p].depth
            q = next((j for j in range(p + 1, len(truth)) if truth[j].depth == depth and truth[j].event == "return"), len(truth))
        if q >= len(truth):
            return self._end()
        del self._positions[self._n:]
        self._positions.append(q)
        self._n += 1
        return Step(truth[q])

    def truncate(self, n: int) -> None:
        self._n = min(n, len(self._positions))

    def redo(self) -> None:
        self._n = min(self._n + 1, len(self._positions))

    def replace(self, step: int, frame: Frame) -> None:
        raise SimulationError("editing a variable is not supported on the exec backend (it replays a real run)")

    def reseed(self, seed: int | None) -> None:
        """A real run has no randomness to resample."""
