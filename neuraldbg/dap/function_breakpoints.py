"""Function breakpoints over a trace: stop on a function's first line each
time it is called, with the condition and hit count of a line breakpoint.

The trace says where every call starts (a call frame, then the callee's
first line), also for a function called from C code (a ``key=`` callback of
``sorted``), so no call site has to be found. A resumed generator's call
frame is not a call of the function (it is on the ``yield`` line, not the
``def`` line, as pydevd also checks): it does not stop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from neuraldbg.dap.breakpoints import Breakpoint, LineTable, condition_holds, make_breakpoint, reached
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Frame

PENDING = "the program has not been launched yet"


def matches(spec_name: str, qualname: str) -> bool:
    """``by_len`` names ``by_len`` and ``outer.by_len``; ``Stack.push``
    names that method (and one of a nested class of that name)."""
    return qualname == spec_name or qualname.endswith("." + spec_name)


def first_statement_line(source: str, fn: FunctionInfo) -> int:
    """The line the function's first line event is on (its docstring runs none)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return fn.body_start_line or fn.def_line
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno == fn.def_line:
            body = node.body
            if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            return body[0].lineno
    return fn.body_start_line or fn.def_line


@dataclass
class FunctionBreakpoint:
    name: str
    targets: tuple[FunctionInfo, ...]  # the program's functions it names (empty: unverified)
    rule: Breakpoint  # its id, condition and hit count; line: where it stops first

    def to_dap(self, source_path: str | None) -> dict:
        out: dict = {"id": self.rule.id, "verified": self.rule.verified}
        if self.rule.verified:
            out["line"] = self.rule.line
            if source_path:
                out["source"] = {"name": source_path.rsplit("/", 1)[-1], "path": source_path}
        if self.rule.message:
            out["message"] = self.rule.message
        return out


def call_started(frames: Sequence[Frame], i: int) -> Frame | None:
    """The call frame when frame ``i`` is the first line of a fresh call."""
    frame = frames[i]
    if frame.event != "line" or i == 0:
        return None
    call = frames[i - 1]
    if call.event != "call" or call.depth != frame.depth or call.function != frame.function:
        return None
    return call


class FunctionBreakpoints:
    """The session's function breakpoints (the last setFunctionBreakpoints wins)."""

    def __init__(self, ids: Iterator[int]) -> None:
        self._ids = ids
        self.active: list[FunctionBreakpoint] = []

    def set(self, specs: list[dict], functions: list[FunctionInfo] | None, source: str, path: str) -> list[dict]:
        """Replace all function breakpoints; ``functions`` None: the program
        is not known yet (they stay unverified)."""
        old = {(bp.name, str(bp.rule.spec.get("condition")), str(bp.rule.spec.get("hitCondition"))): bp
               for bp in self.active}
        new: list[FunctionBreakpoint] = []
        for spec in specs:
            name = spec.get("name")
            name = name.strip() if isinstance(name, str) else ""
            key = (name, str(spec.get("condition")), str(spec.get("hitCondition")))
            targets = tuple(f for f in functions or [] if name and matches(name, f.qualname))
            prev = old.get(key)
            if prev is not None and prev.targets == targets:
                new.append(prev)  # unchanged: keeps its id and hit count
                continue
            new.append(self._make(name, spec, targets, functions is not None, source, path))
        self.active = new
        return [bp.to_dap(path if functions is not None else None) for bp in new]

    def _make(self, name: str, spec: dict, targets: tuple[FunctionInfo, ...], known: bool, source: str,
              path: str) -> FunctionBreakpoint:
        rule_spec = {k: spec[k] for k in ("condition", "hitCondition") if k in spec}
        line = first_statement_line(source, targets[0]) if targets else 1
        table = LineTable({line: name}, {name: (line, line)}, name)
        rule = make_breakpoint(next(self._ids), path, {**rule_spec, "line": line}, table)
        rule.spec = dict(spec)
        if rule.message is None and not targets:
            rule.line = None
            base = path.rsplit("/", 1)[-1]
            if not name:
                rule.message = "a function breakpoint needs the function's name"
            else:
                rule.message = f"no function {name!r} in {base}" if known else PENDING
        return FunctionBreakpoint(name, targets, rule)

    def hits(self, frames: Sequence[Frame], i: int, forward: bool) -> tuple[list[int], list[str]]:
        """(ids, condition errors) of the function breakpoints stopping at
        frame ``i``. Forwards, hit counts advance; backwards only the
        condition decides."""
        call = call_started(frames, i)
        if call is None:
            return [], []
        frame = frames[i]
        ids: list[int] = []
        errors: list[str] = []
        for bp in self.active:
            if not bp.rule.verified:
                continue
            fn = next((f for f in bp.targets if f.qualname == frame.function), None)
            # A resumed generator's call event is on its yield line, not on its def.
            if fn is None or call.line not in (fn.def_line, fn.first_line, 0):
                continue
            names = frame.locals
            if not forward:
                if condition_holds(bp.rule, names):
                    ids.append(bp.rule.id)
                continue
            hit = reached(bp.rule, i, names)
            if hit is not None and hit.stop:
                ids.append(bp.rule.id)
                if hit.error:
                    errors.append(hit.error)
        return ids, errors
