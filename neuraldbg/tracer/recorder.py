"""sys.settrace events of the user's file turned into CWM-style frames.

Standard library only: the sandboxed child loads this file directly.

A recorded frame is a list ``[event, line, function, depth, locals, value]``
(JSON-ready; the parent adds the source text).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs the child's startup; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, FrameType, TracebackType
    from typing import Any, NoReturn

    TraceFunction = Callable[[FrameType, str, Any], Any]

# Python 3.12+ inlines these; skipping them keeps the frames the same on 3.11
# (their effect shows in the enclosing function's next frame).
_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})


class Halt(BaseException):
    """Raised from the trace function to unwind a program that hit a cap.

    A BaseException so that ``except Exception`` in the program does not
    catch it; the timers in the child handle a program that swallows it."""


class Recorder:
    """Records call/line/return/exception events of code compiled from
    ``filename``; depth counts recorded frames between a frame and the entry
    call (depth 0), skipping untraced frames (the standard library, other
    modules, comprehensions) in between."""

    def __init__(
        self,
        filename: str,
        max_frames: int,
        render: Callable[[object], str],
        def_lines: dict[int, int],
    ) -> None:
        self.frames: list[list[Any]] = []
        self.stop_reason: tuple[str, str] | None = None  # (status, error) once a cap stopped the run
        self._filename = filename
        self._max_frames = max_frames
        self._render = render
        self._def_lines = def_lines  # first decorator line -> def line
        # code -> (function, co_firstlineno, def line), None for untraced code
        self._codes: dict[CodeType, tuple[str, int, int] | None] = {}
        # Active recorded frames -> (depth, function). Keyed by the frame
        # object: it is alive while it runs, and after the run the frames left
        # here are the ones a dying trace function never saw return.
        self._active: dict[FrameType, tuple[int, str]] = {}

    # -- control -------------------------------------------------------
    def start(self) -> None:
        sys.settrace(self._on_call)

    def stop(self) -> bool:
        """Switch tracing off; False if it was already off (the trace
        function died or the program called sys.settrace)."""
        alive = sys.gettrace() == self._on_call
        sys.settrace(None)
        return alive

    def halt(self, status: str, error: str) -> NoReturn:
        """Stop recording and unwind the program (see :class:`Halt`)."""
        if self.stop_reason is None:
            self.stop_reason = (status, error)
        sys.settrace(None)
        raise Halt(error)

    @property
    def active(self) -> bool:
        return bool(self._active)

    # -- trace functions -----------------------------------------------
    def _on_call(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        if event != "call" or self.stop_reason is not None:
            return None
        try:
            info = self._code_info(frame.f_code)
            if info is None:
                return None
            function, first_line, def_line = info
            depth = self._depth_of(frame)
            line = frame.f_lineno
            if line == first_line:
                line = def_line  # a decorated function's call event points at its first decorator
            self._record("call", line, function, depth, frame.f_locals, None, False)
            self._active[frame] = (depth, function)
            return self._on_event
        except RecursionError:
            # At the recursion limit the tracer's own calls fail first: drop
            # this event; the program's RecursionError follows at once.
            return None
        except (Halt, KeyboardInterrupt):
            raise
        except Exception as exc:
            self.halt("error", f"tracer failed: {type(exc).__name__}: {exc}")

    def _on_event(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        if self.stop_reason is not None:
            return None
        try:
            entry = self._active.get(frame)
            if entry is None:
                return None
            depth, function = entry
            if event == "line":
                self._record("line", frame.f_lineno, function, depth, frame.f_locals, None, False)
            elif event == "return":
                del self._active[frame]
                self._record("return", frame.f_lineno, function, depth, frame.f_locals, arg, True)
            elif event == "exception":
                value = arg[1] if arg[1] is not None else arg[0]
                self._record("exception", frame.f_lineno, function, depth, frame.f_locals, value, True)
            return self._on_event
        except RecursionError:
            return self._on_event
        except (Halt, KeyboardInterrupt):
            raise
        except Exception as exc:
            self.halt("error", f"tracer failed: {type(exc).__name__}: {exc}")

    # -- after the run -------------------------------------------------
    def unwind_from(self, exc: BaseException) -> bool:
        """Record the exception/return frames a dead trace function missed.

        When the trace function itself hits the recursion limit, CPython
        switches tracing off and the program's exception propagates untraced.
        Every frame it left is in its traceback, with the line it was at and
        its locals, which is exactly what sys.settrace would have reported.
        Returns False when the traceback does not cover every frame still
        active (the exception was caught and another raised): then the rest
        of the run is unknown.
        """
        chain: list[tuple[FrameType, int]] = []
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            if tb.tb_frame in self._active:
                chain.append((tb.tb_frame, tb.tb_lineno))
            tb = tb.tb_next
        if len(chain) != len(self._active):
            return False
        for frame, line in reversed(chain):
            depth, function = self._active.pop(frame)
            local_vars = frame.f_locals
            self._record("exception", line, function, depth, local_vars, exc, True)
            self._record("return", line, function, depth, local_vars, None, True)
        return True

    # -- helpers -------------------------------------------------------
    def _code_info(self, code: CodeType) -> tuple[str, int, int] | None:
        try:
            return self._codes[code]
        except KeyError:
            pass
        info: tuple[str, int, int] | None = None
        if code.co_filename == self._filename and code.co_name not in _COMPREHENSIONS:
            # co_qualname is 3.11+; on 3.10 a method is named without its class
            function = getattr(code, "co_qualname", code.co_name).replace(".<locals>", "")
            first = code.co_firstlineno
            info = (function, first, self._def_lines.get(first, first))
        self._codes[code] = info
        return info

    def _depth_of(self, frame: FrameType) -> int:
        parent = frame.f_back
        while parent is not None:
            entry = self._active.get(parent)
            if entry is not None:
                return entry[0] + 1
            parent = parent.f_back
        return 0

    def _record(
        self,
        event: str,
        line: int | None,
        function: str,
        depth: int,
        local_vars: dict[str, Any],
        value: object,
        has_value: bool,
    ) -> None:
        if len(self.frames) >= self._max_frames:
            self.halt("truncated", f"stopped after {self._max_frames} frames (the program may not halt)")
        render = self._render
        shown: dict[str, str] = {}
        for name, item in local_vars.items():
            try:
                shown[str(name)] = render(item)
            except RecursionError:
                shown[str(name)] = "<repr failed: RecursionError>"
        text = None
        if has_value:
            try:
                text = render(value)
            except RecursionError:
                text = "<repr failed: RecursionError>"
        self.frames.append([event, line or 0, function, depth, shown, text])
