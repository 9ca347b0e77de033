"""What an inverse-execution search looks for, and how a run is judged.

A :class:`Goal` is one of: reach a line, return a value, raise an exception
(by class name; a subclass counts when the run knows the class's bases), or
reach a line with a condition true on its locals. A run, real (a batch
outcome of the sandboxed child, or a full trace) or predicted (the model's
trace), is seen as an :class:`Observation`, so one judge serves both.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from typing import Any, Literal

from neuraldbg.inverse.condition import Undecidable, constant, evaluate, from_repr, parse_expression
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.values import exception_text
from neuraldbg.tracer.batch import CallOutcome

GoalKind = Literal["reach", "returns", "raises", "when"]
GOAL_KINDS: tuple[GoalKind, ...] = ("reach", "returns", "raises", "when")


class GoalError(ValueError):
    """A goal that cannot be searched for (one line for the user)."""


@dataclass(frozen=True)
class Observation:
    """What one run of a candidate did, as far as a goal can tell."""

    status: str  # "returned", "raised", "timeout", "error", "not run"
    lines: frozenset[int] = frozenset()
    value: str | None = None  # the return value's repr
    exception: tuple[str, ...] = ()  # class names, most derived first (bases included when known)
    error: str | None = None
    goal_locals: tuple[dict[str, str], ...] = ()
    watched: tuple[tuple[int, dict[str, str]], ...] = ()  # (line, locals) at the search's branch headers

    @staticmethod
    def of_outcome(o: CallOutcome) -> "Observation":
        return Observation(o.status, o.lines, o.value, o.exception, o.error, o.goal_locals, o.watched)

    @staticmethod
    def of_trace(trace: Trace, goal_line: int) -> "Observation":
        """A full trace (real or predicted) seen the same way; an exception's
        bases are not in a trace, so only its own class name is known."""
        lines = frozenset(f.line for f in trace.frames if f.event == "line")
        visits = tuple(dict(f.locals) for f in trace.frames if f.event == "line" and f.line == goal_line)
        raised = trace.raised
        if raised is not None:
            name = exception_text(raised.value).split(":", 1)[0].strip()
            return Observation("raised", lines, None, (name,), exception_text(raised.value), visits)
        if trace.status != "complete" or trace.error is not None:
            return Observation("error", lines, None, (), trace.error or trace.status, visits)
        return Observation("returned", lines, trace.return_value or "None", (), None, visits)


@dataclass(frozen=True)
class Goal:
    kind: GoalKind
    line: int = 0  # reach / when: the statement's first line (1-based)
    expr: str = ""  # returns: the value's expression; raises: the class name; when: the condition
    want: Any = field(default=None, compare=False, hash=False)  # returns: the value

    def describe(self) -> str:
        if self.kind == "reach":
            return f"reach line {self.line}"
        if self.kind == "returns":
            return f"return {self.expr}"
        if self.kind == "raises":
            return f"raise {self.expr}"
        return f"reach line {self.line} with {self.expr}"

    def met(self, obs: Observation) -> bool:
        if self.kind == "reach":
            return self.line in obs.lines
        if self.kind == "raises":
            return obs.status == "raised" and self.expr in obs.exception
        if self.kind == "returns":
            return obs.status == "returned" and obs.value is not None and _same_value(obs.value, self.want)
        if self.line not in obs.lines:
            return False
        tree = parse_expression(self.expr)
        for visit in obs.goal_locals:
            try:
                if evaluate(tree, visit):
                    return True
            except Undecidable:
                continue
        return False


def _same_value(text: str, want: Any) -> bool:
    """The repr's value equals ``want`` (True is not 1 here: a goal says which it means)."""
    try:
        got = from_repr(text)
    except Undecidable:
        return text == repr(want)
    return bool(got == want) and isinstance(got, bool) == isinstance(want, bool)


def make_goal(fn: FunctionInfo, source: str, kind: str, *, line: int = 0, expr: str = "") -> Goal:
    """The goal for ``fn``, or GoalError (one line) for bad input: a function
    without parameters, a line outside it or without code, an expression
    that does not parse or a value that is not a constant."""
    if kind not in GOAL_KINDS:
        raise GoalError(f"unknown goal {kind!r} (one of: {', '.join(GOAL_KINDS)})")
    params = [p for p in fn.params if not (fn.is_method and p in ("self", "cls") and p == fn.params[0])]
    if not params:
        raise GoalError(f"{fn.qualname} takes no parameters: there is no input to find")
    if kind in ("reach", "when"):
        line = statement_line(source, fn, line)
    if kind == "when" or kind == "returns":
        try:
            parse_expression(expr)
        except SyntaxError as exc:
            raise GoalError(f"the expression {expr!r} does not parse: {exc.msg}") from None
    if kind == "returns":
        try:
            return Goal("returns", expr=expr.strip(), want=constant(expr))
        except Undecidable as exc:
            raise GoalError(f"--returns needs a constant value, not {expr!r} ({exc})") from None
    if kind == "raises":
        name = expr.strip().rsplit(".", 1)[-1]
        if not name.isidentifier():
            raise GoalError(f"{expr!r} is not an exception class name")
        return Goal("raises", expr=name)
    return Goal(kind, line=line, expr=expr.strip())  # type: ignore[arg-type]


def statement_line(source: str, fn: FunctionInfo, line: int) -> int:
    """The first line of the statement of ``fn``'s body that holds ``line``
    (a line event reports that one), or GoalError."""
    if not fn.def_line < line <= fn.end_line:
        raise GoalError(f"line {line} is outside {fn.qualname} (lines {fn.def_line + 1}-{fn.end_line})")
    tree = function_tree(source, fn)
    best: ast.stmt | None = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.lineno == line:
                if best is None or node.lineno >= best.lineno:
                    best = node
    if best is None or isinstance(best, (ast.FunctionDef, ast.AsyncFunctionDef)) and best.lineno == fn.def_line:
        raise GoalError(f"line {line} of {fn.qualname} has no code to reach")
    if isinstance(best, (ast.If, ast.While, ast.For, ast.With, ast.Try)) and line > best.lineno:
        header_end = best.body[0].lineno if best.body else best.lineno
        if line >= header_end:  # between the branches: an else/except line has no code of its own
            raise GoalError(f"line {line} of {fn.qualname} has no code to reach")
        return best.lineno
    return best.lineno


def function_tree(source: str, fn: FunctionInfo) -> ast.Module | None:
    """The function's own text parsed, with the file's line numbers."""
    lines = source.splitlines()
    text = textwrap.dedent("\n".join(lines[fn.first_line - 1 : fn.end_line]))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    ast.increment_lineno(tree, fn.first_line - 1)
    return tree
