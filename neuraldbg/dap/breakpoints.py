"""Source breakpoints of a debug session: where they may be set, when they
stop (condition, hit count) and log points.

A breakpoint is verified on a line that a function of the program file can
run (any function: a callback, a nested function or a method is reached
through values as well as names, so the file's call graph cannot tell what
the traced call reaches; the trace can). A line inside a multi-line
statement stays where it is when the interpreter reports line events there
(CPython 3.11 does for a call's argument lines), else binds to the
statement's first line. Frames exist only for functions of the program file.
"""

from __future__ import annotations

import ast
import dis
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from neuraldbg.dap.safe_eval import EvalError, compile_expression, evaluate, interpolate
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Frame


# -- which lines can stop ----------------------------------------------------
@dataclass(frozen=True)
class LineTable:
    """Lines where a frame of the traced call can be, per function."""

    lines: dict[int, str]  # 1-based line -> qualname of the function it runs in
    ranges: dict[str, tuple[int, int]]  # qualname -> (first line, end line) of the file's functions
    entry: str
    def_lines: frozenset[int] = frozenset()  # where call events are (a def line; not a generator resuming)
    binds: dict[int, int] = field(default_factory=dict)  # a continuation line without line events -> its statement
    # generator function -> lines where it really returns (its other return events are yields)
    generator_returns: dict[str, frozenset[int]] = field(default_factory=dict)

    def resolve(self, line: int) -> tuple[int | None, str | None]:
        """(line to use, problem): a line inside a function but without code
        moves to the next line with code in that function."""
        if line in self.lines:
            return line, None
        if line in self.binds:
            return self.binds[line], None
        owner = _innermost(self.ranges, line)
        if owner is not None:
            end = self.ranges[owner][1]
            later = sorted(l for l in self.lines if line < l <= end)
            if later:
                return later[0], None
            return None, f"no code on line {line} of {owner}"
        return None, f"line {line} is not inside a function (neuraldbg runs a call of {self.entry})"


def _innermost(ranges: Mapping[str, tuple[int, int]], line: int) -> str | None:
    best: tuple[int, str] | None = None
    for name, (first, last) in ranges.items():
        if first <= line <= last and (best is None or first >= best[0]):
            best = (first, name)
    return None if best is None else best[1]


def line_table(source: str, functions: list[FunctionInfo], entry: str) -> LineTable:
    """Statement lines of every function of the file (the entry's and any
    it may reach). A file that does not parse (a ``??`` hole) falls back to
    every line of every function."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _fallback(functions, entry)
    defs = _definitions(tree)
    if entry not in defs:
        return _fallback(functions, entry)
    events = event_lines(source)
    lines: dict[int, str] = {}
    binds: dict[int, int] = {}
    ranges: dict[str, tuple[int, int]] = {}
    for qualname, node in defs.items():
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        ranges[qualname] = (first, node.end_lineno or node.lineno)
    # Outer functions first, so that a nested function's lines end up its own.
    for qualname in sorted(defs, key=lambda q: ranges[q][0]):
        for stmt in _statements(defs[qualname]):
            lines[stmt.lineno] = qualname
            for extra in _continuation_lines(stmt):
                if extra in events:
                    lines[extra] = qualname  # the interpreter reports this line itself
                else:
                    binds[extra] = stmt.lineno
        # The call event is on the def line (a breakpoint on a decorator moves there).
        lines[defs[qualname].lineno] = qualname
    for line in lines:
        binds.pop(line, None)
    def_lines = frozenset(node.lineno for node in defs.values())
    return LineTable(lines, ranges, entry, def_lines, binds, generator_returns(source))


def _code_objects(source: str) -> list[types.CodeType]:
    """Every code object of the file as this interpreter compiles it."""
    try:
        code = compile(source, "<breakpoints>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out, todo = [], [code]
    while todo:
        co = todo.pop()
        out.append(co)
        todo.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return out


def event_lines(source: str) -> set[int]:
    """Lines where this interpreter's bytecode starts a line (where a line
    event can come)."""
    return {line for co in _code_objects(source) for _s, _e, line in co.co_lines() if line is not None}


_CO_GENERATOR = 0x20


def generator_returns(source: str) -> dict[str, frozenset[int]]:
    """Generator function (qualname as frames name it) -> the lines of its
    return instructions: a return event elsewhere is a yield (pydevd's test)."""
    out: dict[str, frozenset[int]] = {}
    for co in _code_objects(source):
        if not co.co_flags & _CO_GENERATOR:
            continue
        qualname = getattr(co, "co_qualname", co.co_name).replace(".<locals>", "")
        lines = {ins.positions.lineno if ins.positions else None for ins in dis.get_instructions(co)
                 if ins.opname in ("RETURN_VALUE", "RETURN_CONST")}
        out[qualname] = frozenset(line for line in lines if line is not None)
    return out


def _continuation_lines(stmt: ast.stmt) -> range:
    """Lines after the first of a statement that are still its own: all of a
    simple statement, a compound statement's header up to its body."""
    end = stmt.end_lineno or stmt.lineno
    body = getattr(stmt, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
        end = min(end, body[0].lineno - 1)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return range(0)  # a signature's lines run nothing of the body
    return range(stmt.lineno + 1, end + 1)


def _fallback(functions: list[FunctionInfo], entry: str) -> LineTable:
    lines: dict[int, str] = {}
    ranges: dict[str, tuple[int, int]] = {}
    for fn in sorted(functions, key=lambda f: f.first_line):
        ranges[fn.qualname] = (fn.first_line, fn.end_line)
        for line in range(fn.first_line, fn.end_line + 1):
            lines[line] = fn.qualname
    return LineTable(lines, ranges, entry, frozenset(fn.def_line for fn in functions))


FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _definitions(tree: ast.Module) -> dict[str, FunctionNode]:
    out: dict[str, FunctionNode] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = prefix + node.name
                out.setdefault(q, node)
                walk(node.body, q + ".")
            elif isinstance(node, ast.ClassDef):
                walk(node.body, prefix + node.name + ".")
            else:
                # defs inside if/try/with blocks at the same level
                for field_name in ("body", "orelse", "finalbody", "handlers"):
                    sub = getattr(node, field_name, None)
                    if isinstance(sub, list):
                        walk([s for s in sub if isinstance(s, ast.stmt)] if field_name != "handlers"
                             else [s for h in sub for s in h.body], prefix)

    walk(tree.body, "")
    return out


def _statements(fn: FunctionNode) -> list[ast.stmt]:
    """Statements of ``fn``'s own body (nested defs' bodies excluded,
    docstring excluded: it runs no line event)."""
    out: list[ast.stmt] = []
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]

    def walk(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            out.append(s)
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for field_name in ("body", "orelse", "finalbody"):
                sub = getattr(s, field_name, None)
                if isinstance(sub, list) and sub and isinstance(sub[0], ast.stmt):
                    walk(sub)
            for h in getattr(s, "handlers", []) or []:
                out.append(h)  # `except ...:` runs a line event
                walk(h.body)
            for case in getattr(s, "cases", []) or []:
                walk(case.body)

    walk(body)
    return out


# -- breakpoints ----------------------------------------------------------------
PENDING = "the program has not been launched yet"
_HIT = re.compile(r"^\s*(==|>=|<=|>|<|%)?\s*(\d+)\s*$")


@dataclass(frozen=True)
class HitCondition:
    op: str  # "==", ">=", "<=", ">", "<", "%"
    n: int

    def met(self, hits: int) -> bool:
        if self.op == "%":
            return self.n > 0 and hits % self.n == 0
        return {"==": hits == self.n, ">=": hits >= self.n, "<=": hits <= self.n, ">": hits > self.n,
                "<": hits < self.n}[self.op]


def parse_hit_condition(text: str) -> HitCondition:
    m = _HIT.match(text or "")
    if not m:
        raise EvalError(f"hit count {text!r} is not understood: use a number like 3, or >=2, >2, <5, ==4, %2")
    return HitCondition(m.group(1) or "==", int(m.group(2)))


@dataclass
class Breakpoint:
    id: int
    path: str
    requested_line: int
    line: int | None  # None when not verified
    message: str | None = None
    condition: ast.Expression | None = None
    condition_text: str | None = None
    hit: HitCondition | None = None
    log_message: str | None = None
    hits: list[int] = field(default_factory=list)  # steps where it was reached with a true condition
    spec: dict = field(default_factory=dict)  # the client's SourceBreakpoint, as sent
    on_def: bool = False  # on a def line: a call of the function reaches it (with its arguments)

    @property
    def verified(self) -> bool:
        return self.line is not None

    def to_dap(self) -> dict:
        out: dict = {"id": self.id, "verified": self.verified, "line": self.line or self.requested_line,
                     "source": {"name": self.path.rsplit("/", 1)[-1], "path": self.path}}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True)
class Hit:
    """The outcome of reaching a breakpoint line."""

    stop: bool
    breakpoint: Breakpoint
    log: str | None = None  # text of a log point to print
    error: str | None = None  # the condition could not be evaluated (we stop and say so)


def make_breakpoint(bp_id: int, path: str, spec: Mapping, table: LineTable | None) -> Breakpoint:
    """A breakpoint from a DAP SourceBreakpoint; ``table`` None means the
    program is not known yet (verified later)."""
    line = spec.get("line")
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        return Breakpoint(bp_id, path, 0, None, f"bad line {line!r}")
    bp = Breakpoint(bp_id, path, line, None)
    problems: list[str] = []
    cond = spec.get("condition")
    if isinstance(cond, str) and cond.strip():
        try:
            bp.condition = compile_expression(cond)
            bp.condition_text = cond
        except EvalError as exc:
            problems.append(f"condition: {exc}")
    hit = spec.get("hitCondition")
    if isinstance(hit, str) and hit.strip():
        try:
            bp.hit = parse_hit_condition(hit)
        except EvalError as exc:
            problems.append(str(exc))
    log = spec.get("logMessage")
    if isinstance(log, str) and log:
        bp.log_message = log
    if problems:
        bp.message = "; ".join(problems)
        return bp
    if table is None:
        bp.message = PENDING
        return bp
    bp.line, bp.message = table.resolve(line)
    bp.on_def = bp.line in table.def_lines
    return bp


def counts_at(bp: Breakpoint, frame: Frame) -> bool:
    """Does ``frame`` reach ``bp``? A line event on its line, or the call
    event of a function whose def line it is on. A generator resuming
    writes a call event on its ``yield`` line: that is not a new visit of
    the line (its line event came before the yield), so it is no hit."""
    if frame.line != bp.line:
        return False
    return frame.event == "line" or (frame.event == "call" and bp.on_def)


def reached(bp: Breakpoint, step: int, names: Mapping[str, str]) -> Hit | None:
    """Called when the frame at ``step`` is on ``bp``'s line. Hit counts
    are kept as the list of steps that hit, so that going back in time and
    re-simulating counts consistently."""
    while bp.hits and bp.hits[-1] >= step:
        bp.hits.pop()
    if bp.condition is not None:
        try:
            ok = bool(evaluate(bp.condition, names))
        except EvalError as exc:
            return Hit(True, bp, error=f"breakpoint condition {bp.condition_text!r} at line {bp.line}: {exc}")
        if not ok:
            return None
    bp.hits.append(step)
    if bp.hit is not None and not bp.hit.met(len(bp.hits)):
        return None
    if bp.log_message is not None:
        return Hit(False, bp, log=interpolate(bp.log_message, names))
    return Hit(True, bp)


def condition_holds(bp: Breakpoint, names: Mapping[str, str]) -> bool:
    """For reverse continue: the condition alone (hit counts run forward)."""
    if bp.log_message is not None:
        return False
    if bp.condition is None:
        return True
    try:
        return bool(evaluate(bp.condition, names))
    except EvalError:
        return True
