"""Step-in targets: the calls a line makes that can be stepped into, in the
order Python runs them, and the walk that lands in the one chosen.

Only a function of the program file makes frames, so a target is a call of
one of its names (a function, a method, a class with an ``__init__``), or a
function of the file or a lambda passed as an argument (a ``key=`` callback:
the call that receives it calls it). In ``f(g(x), h(y))`` Python calls g,
then h, then f; a callee is told apart from a same-named one by the order
of the calls (pydevd labels them ``g (call 2)``).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from neuraldbg.source.calls import _callee_name  # f(...) -> f, obj.m(...) -> m
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Frame

LAMBDA = "<lambda>"


@dataclass(frozen=True)
class CallSite:
    label: str
    name: str  # the callee's own name as frames write it (the last part of its qualname)
    occurrence: int  # how many earlier targets on the line have the same name
    line: int
    column: int  # 0-based character offset, as ast gives it
    end_line: int
    end_column: int


def _header(stmt: ast.stmt) -> list[ast.AST]:
    """What a statement's own line event runs (a compound statement's
    header, not its body)."""
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.iter]
    if isinstance(stmt, (ast.While, ast.If)):
        return [stmt.test]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [item.context_expr for item in stmt.items]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return list(stmt.decorator_list)
    if isinstance(stmt, ast.Match):
        return [stmt.subject]
    if isinstance(stmt, (ast.Try, ast.TryStar)):
        return []
    return [stmt]


def statement_at(tree: ast.Module, line: int) -> ast.stmt | None:
    """The innermost statement whose text spans ``line``."""
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if best is None or node.lineno >= best.lineno and (node.end_lineno or 0) <= (best.end_lineno or 0):
                best = node
    return best


def _in_order(node: ast.AST) -> list[ast.AST]:
    """Nodes in the order they finish evaluating (children first, left to
    right: a call's function and arguments before the call itself); a
    lambda's body runs later, when it is called, so it is not walked."""
    out: list[ast.AST] = []

    def walk(n: ast.AST) -> None:
        if not isinstance(n, ast.Lambda):
            for child in ast.iter_child_nodes(n):
                walk(child)
        out.append(n)

    walk(node)
    return out


def call_sites(source: str, line: int, functions: Sequence[FunctionInfo]) -> list[CallSite]:
    """The calls on ``line``'s statement that can be stepped into."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    stmt = statement_at(tree, line)
    if stmt is None:
        return []
    names = {f.name for f in functions}
    classes = {f.qualname.rsplit(".", 2)[-2] for f in functions if f.name == "__init__" and "." in f.qualname}
    found: list[tuple[str, str, ast.AST]] = []  # (label, callee name, node)
    for root in _header(stmt):
        for node in _in_order(root):
            if not isinstance(node, ast.Call):
                continue
            name = _callee_name(node.func)
            text = ast.get_source_segment(source, node.func) or ast.unparse(node.func)
            if name in names:
                found.append((text, name, node))
            elif name in classes:
                found.append((f"{text} (__init__)", "__init__", node))
            # Functions handed to the call are called by it (sorted(key=...), map, a callback).
            for arg in list(node.args) + [kw.value for kw in node.keywords]:
                if isinstance(arg, ast.Lambda):
                    found.append((f"lambda (passed to {text})", LAMBDA, arg))
                elif isinstance(arg, ast.Name) and arg.id in names:
                    found.append((f"{arg.id} (passed to {text})", arg.id, arg))
    out: list[CallSite] = []
    seen: dict[str, int] = {}
    totals = {name: sum(1 for _, n, _ in found if n == name) for _, name, _ in found}
    for label, name, node in found:
        k = seen.get(name, 0)
        seen[name] = k + 1
        if totals[name] > 1:
            label = f"{label} (call {k + 1})"
        out.append(CallSite(label, name, k, node.lineno, node.col_offset,  # type: ignore[attr-defined]
                            node.end_lineno or node.lineno, node.end_col_offset or 0))  # type: ignore[attr-defined]
    return out


def short_name(function: str) -> str:
    return function.rsplit(".", 1)[-1]


@dataclass
class TargetWalk:
    """Follows the frames after a stop at ``depth`` until the chosen callee
    is entered or the line is done without entering it."""

    site: CallSite
    depth: int
    seen: int = 0

    def entered(self, frame: Frame) -> bool:
        """A call frame of the chosen callee (the site's occurrence-th call of that name)."""
        if frame.event != "call" or frame.depth != self.depth + 1 or short_name(frame.function) != self.site.name:
            return False
        self.seen += 1
        return self.seen > self.site.occurrence

    def done(self, frame: Frame) -> bool:
        """Back in the stopped frame (or out of it): the line ran without entering."""
        return frame.depth <= self.depth
