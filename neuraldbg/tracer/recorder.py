"""sys.settrace events of the user's file turned into CWM-style frames.

Standard library only: the sandboxed child loads this file directly.

A recorded frame is a list ``[event, line, function, depth, changed, value]``
(JSON-ready; the parent adds the source text), with a seventh item, the
names no longer bound, when a ``del`` removed some. ``changed`` is every
local on a call frame and, on the other frames, only the locals whose repr
differs from the previous frame at the same depth (the same scope: the
frames active at one time have distinct depths, and a call starts afresh).
A long loop over a few changing names so sends, and keeps, a few strings a
frame rather than the whole scope.

Stop reasons (``Recorder.stop_reason``): ``stopped`` when the frame budget
ran out on a run still going (it may well halt), ``looping`` when it ran out
while the program was in a loop that came back to an earlier state exactly
(see :meth:`Recorder._repeats`): such a loop never ends.
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

# Values whose repr is all there is to them (immutable, no user code in
# their operators): an exact state of a scope holding only these is its
# line, position and reprs. Tuples are checked item by item.
_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_PLAIN = _ATOMS | {tuple}
# Instructions (3.11 to 3.14 names) that read and write only the frame's
# locals, constants and value stack, through operators of the types above:
# no call, no global, attribute, closure cell, iterator or container write.
# Lines made of these, run again from the same state, run the same way.
# A return leaves the scope (a return event, so never inside a loop's turn);
# it is here because the implicit ``return None`` shares the loop's line.
_PURE_OPS = frozenset("""
    RETURN_VALUE RETURN_CONST
    NOP RESUME CACHE EXTENDED_ARG NOT_TAKEN LOAD_CONST LOAD_SMALL_INT LOAD_FAST LOAD_FAST_CHECK
    LOAD_FAST_LOAD_FAST LOAD_FAST_BORROW LOAD_FAST_BORROW_LOAD_FAST_BORROW STORE_FAST
    STORE_FAST_LOAD_FAST STORE_FAST_STORE_FAST DELETE_FAST POP_TOP COPY SWAP
    JUMP JUMP_NO_INTERRUPT JUMP_FORWARD JUMP_BACKWARD JUMP_BACKWARD_NO_INTERRUPT
    POP_JUMP_IF_TRUE POP_JUMP_IF_FALSE POP_JUMP_IF_NONE POP_JUMP_IF_NOT_NONE
    POP_JUMP_FORWARD_IF_TRUE POP_JUMP_FORWARD_IF_FALSE POP_JUMP_FORWARD_IF_NONE POP_JUMP_FORWARD_IF_NOT_NONE
    POP_JUMP_BACKWARD_IF_TRUE POP_JUMP_BACKWARD_IF_FALSE POP_JUMP_BACKWARD_IF_NONE POP_JUMP_BACKWARD_IF_NOT_NONE
    JUMP_IF_TRUE_OR_POP JUMP_IF_FALSE_OR_POP TO_BOOL UNARY_NOT UNARY_NEGATIVE UNARY_INVERT
    COMPARE_OP IS_OP CONTAINS_OP BINARY_OP BINARY_SUBSCR
""".split())
_CLIPPED = "…<+"  # reprs.Renderer's mark on a cut repr: the rest of the value is unknown


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
        # depth -> (objects, reprs) of the last frame recorded there: the base
        # of the next frame's changes; an atom that is the same object keeps
        # its repr without a new repr() call.
        self._scopes: dict[int, tuple[dict[str, object], dict[str, str]]] = {}
        # Active frame -> hash of a plain state (position, reprs) -> the index
        # of the frame that had it; found again, a loop may have closed.
        self._states: dict[FrameType, dict[int, int]] = {}
        self._pure: dict[tuple[CodeType, frozenset[int]], bool] = {}
        self._cycle: tuple[FrameType, int] | None = None  # (frame, line) of a loop that never ends

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
            self._record(frame, "call", line, function, depth, frame.f_locals, None, False)
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
                self._record(frame, "line", frame.f_lineno, function, depth, frame.f_locals, None, False)
            elif event == "return":
                del self._active[frame]
                self._states.pop(frame, None)
                self._record(frame, "return", frame.f_lineno, function, depth, frame.f_locals, arg, True)
            elif event == "exception":
                value = arg[1] if arg[1] is not None else arg[0]
                self._record(frame, "exception", frame.f_lineno, function, depth, frame.f_locals, value, True)
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
            self._states.pop(frame, None)
            local_vars = frame.f_locals
            self._record(frame, "exception", line, function, depth, local_vars, exc, True)
            self._record(frame, "return", line, function, depth, local_vars, None, True)
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
        frame: FrameType,
        event: str,
        line: int | None,
        function: str,
        depth: int,
        local_vars: dict[str, Any],
        value: object,
        has_value: bool,
    ) -> None:
        cycle = self._cycle
        if cycle is not None and (event != "line" or frame is not cycle[0]):
            cycle = self._cycle = None  # out of the loop after all (an exception from a signal handler)
        if len(self.frames) >= self._max_frames:
            count = self._max_frames
            if cycle is not None:
                self.halt("looping", f"stopped after {count} frames: line {cycle[1]} came back to an "
                                     "earlier state exactly, so the loop never ends (the program does not halt)")
            self.halt("stopped", f"stopped after {count} frames, the frame budget, with the program still running")
        render = self._render
        base_objects, base = self._scopes.get(depth, ({}, {})) if event != "call" else ({}, {})
        objects: dict[str, object] = {}
        shown: dict[str, str] = {}
        changed: dict[str, str] = {}
        for name, item in local_vars.items():
            name = str(name)
            before = base.get(name)
            if before is not None and base_objects.get(name) is item and type(item) in _ATOMS:
                text = before  # the same immutable object: the same repr
            else:
                try:
                    text = render(item)
                except RecursionError:
                    text = "<repr failed: RecursionError>"
                if text != before:
                    changed[name] = text
                elif before is not None:
                    text = before  # one string object for an unchanged repr
            shown[name] = text
            if type(item) in _ATOMS:
                objects[name] = item  # immutable: holding it changes nothing in the program
        self._scopes[depth] = (objects, shown)
        result = None
        if has_value:
            try:
                result = render(value)
            except RecursionError:
                result = "<repr failed: RecursionError>"
        entry: list[Any] = [event, line or 0, function, depth, changed, result]
        gone = [name for name in base if name not in shown]
        if gone:
            entry.append(gone)
        if event == "line" and cycle is None:
            self._watch(frame, line or 0, depth, shown, local_vars)
        self.frames.append(entry)

    # -- exact cycles --------------------------------------------------
    def _watch(self, frame: FrameType, line: int, depth: int, shown: dict[str, str], local_vars: dict[str, Any]) -> None:
        """Remember a plain state of ``frame``; seen before, check whether
        the loop between the two is one that can never end."""
        if not _PLAIN.issuperset(map(type, local_vars.values())):
            return  # an object's repr may not show its state: never a proof
        key = hash((frame.f_lasti, tuple(shown.items())))
        states = self._states.get(frame)
        if states is None:
            states = self._states[frame] = {}
        here = len(self.frames)
        first = states.get(key)
        states[key] = here  # a loop that fails the check is checked again over its latest turn only
        if first is not None and self._repeats(frame, first, here, depth, shown, local_vars):
            self._cycle = (frame, line)

    def _repeats(self, frame: FrameType, first: int, here: int, depth: int, shown: dict[str, str],
                 local_vars: dict[str, Any]) -> bool:
        """Frame ``here`` has the state frame ``first`` had: the same position,
        the same reprs of plain values (nothing cut short). If every frame in
        between is a line of this scope (no call into Python) and those lines
        are pure (:data:`_PURE_OPS`), the program is back where it was with
        nothing else to tell the two apart, and will go round forever."""
        if any(_CLIPPED in text for text in shown.values()):
            return False
        if not all(type(v) in _ATOMS or all(type(x) in _ATOMS for x in v) for v in local_vars.values()):
            return False  # a tuple of objects
        lines = {self.frames[i][1] for i in range(first, here)}
        if any(self.frames[i][0] != "line" or self.frames[i][3] != depth for i in range(first, here)):
            return False
        return self._pure_lines(frame.f_code, frozenset(lines))

    def _pure_lines(self, code: CodeType, lines: frozenset[int]) -> bool:
        known = self._pure.get((code, lines))
        if known is None:
            import dis  # only once a state comes back: most runs never pay for it

            known, line = True, None
            for ins in dis.get_instructions(code):
                positions = getattr(ins, "positions", None)  # 3.11+; 3.10 marks a line's first instruction
                line = positions.lineno if positions is not None else (ins.starts_line or line)
                if line in lines and ins.opname not in _PURE_OPS:
                    known = False
                    break
            self._pure[(code, lines)] = known
        return known
