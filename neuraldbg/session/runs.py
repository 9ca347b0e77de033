"""One run of a function: the target, the settings it runs under and the
simulation over its engine, with the model lock it must hold to generate.

Only :meth:`neuraldbg.session.session.Session.open_run` makes these; every
front end (language server, debug adapter, command line, evaluation harness)
steps or finishes a Run and never builds an engine itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from neuraldbg.backends.base import CancelToken
from neuraldbg.config import Settings
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.simulation.target import Target
from neuraldbg.trace.frames import Trace


@dataclass
class Run:
    target: Target
    settings: Settings
    simulation: Simulation
    model_lock: threading.Lock  # the process's one model: held while a predicted engine generates
    real_run: Trace | None = None  # the real run behind exec / replay frames
    reused: bool = False  # the real run came from the session's cache (no second run)

    @property
    def predicted(self) -> bool:
        return self.simulation.engine.predicted

    @contextmanager
    def generating(self) -> Iterator[None]:
        """Hold the model lock around engine calls when a model writes the frames."""
        if not self.predicted:
            yield
            return
        with self.model_lock:
            yield

    def run_to_end(self, cancel: CancelToken | None = None) -> Trace:
        with self.generating():
            trace = self.simulation.run_to_end(cancel=cancel)
        if self.real_run is not None and not trace.predicted:
            trace.stdout = self.real_run.stdout  # what the real run printed (as the CLI's json shows it)
        return trace
