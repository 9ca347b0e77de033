"""Which program state each debug-adapter frame id stands for.

The debug adapter publishes, at every stop, one entry per DAP stack frame:
the trace snapshot it showed and the step (frame index) of that scope. The
language server, running in the same process, answers
``textDocument/inlineValue`` for a frame id from the same entry, so the
editor's inline values and the debugger's variables come from one prediction.

One registry is shared by every adapter connection of a process (frame ids
are unique across them); it is an object passed around, not a global.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from neuraldbg.trace.frames import Trace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameRef:
    """One DAP stack frame of one stop."""

    frame_id: int
    session_id: str  # the adapter connection that published it
    trace: Trace  # snapshot of the simulation at the stop (never mutated afterwards)
    step: int  # index in ``trace.frames`` of the frame this scope is at
    path: str  # absolute path of the program file
    function: str  # qualified name of the scope's function
    line: int  # 1-based line shown for this scope
    top: bool  # True for the innermost (current) frame

    def locals(self) -> dict[str, str]:
        return self.trace.locals_at(self.step)


StopListener = Callable[[str, list[FrameRef]], None]


class DebugRegistry:
    """Thread-safe map of DAP frame ids to :class:`FrameRef`.

    Only the frames of each session's latest stop are kept: DAP frame ids
    are valid while the debuggee stays stopped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._frames: dict[int, FrameRef] = {}
        self._by_session: dict[str, list[int]] = {}
        self._latest: str | None = None  # session of the most recent stop
        self.listeners: list[StopListener] = []

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def publish(self, session_id: str, frames: list[FrameRef]) -> None:
        """Replace a session's frames by those of its new stop (ids from next_id)."""
        with self._lock:
            for old in self._by_session.pop(session_id, []):
                self._frames.pop(old, None)
            for ref in frames:
                self._frames[ref.frame_id] = ref
            self._by_session[session_id] = [ref.frame_id for ref in frames]
            self._latest = session_id
        self._notify(session_id, frames)

    def update(self, frame_id: int, trace: Trace) -> None:
        """Point an existing frame id at a new snapshot (after an edit at the stop)."""
        with self._lock:
            ref = self._frames.get(frame_id)
            if ref is None:
                return
            self._frames[frame_id] = FrameRef(ref.frame_id, ref.session_id, trace, ref.step, ref.path,
                                              ref.function, ref.line, ref.top)
            frames = [self._frames[i] for i in self._by_session.get(ref.session_id, []) if i in self._frames]
        self._notify(ref.session_id, frames)  # the edited values are shown inline too

    def _notify(self, session_id: str, frames: list[FrameRef]) -> None:
        for listener in list(self.listeners):
            try:
                listener(session_id, frames)
            except Exception:  # a broken listener must not break the debugger
                log.exception("debug registry listener failed")

    def clear(self, session_id: str) -> None:
        """The session is running again or has ended: its frame ids are void."""
        with self._lock:
            for old in self._by_session.pop(session_id, []):
                self._frames.pop(old, None)
            if self._latest == session_id:
                self._latest = None

    def get(self, frame_id: int) -> FrameRef | None:
        with self._lock:
            return self._frames.get(frame_id)

    def frames(self, session_id: str) -> list[FrameRef]:
        with self._lock:
            return [self._frames[i] for i in self._by_session.get(session_id, []) if i in self._frames]

    def current(self) -> FrameRef | None:
        """The top frame of the most recent stop of any session (for a client
        that does not pass a frame id)."""
        with self._lock:
            if self._latest is None:
                return None
            for i in self._by_session.get(self._latest, []):
                ref = self._frames.get(i)
                if ref is not None and ref.top:
                    return ref
            return None
