"""Helpers for the codec tests: a function index from ``ast`` (so these
tests do not depend on the tree-sitter index) and hand-made frames."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable

from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_prompt import split_lines_keepends
from neuraldbg.trace.frames import Frame, Trace

Row = tuple  # (event, line, function, depth, locals | None, value | None)


def functions_of(source: str) -> list[FunctionInfo]:
    tree = ast.parse(source)
    lines = split_lines_keepends(source)
    out: list[FunctionInfo] = []

    def visit(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                a = child.args
                params = [p.arg for p in a.posonlyargs + a.args]
                if a.vararg:
                    params.append(a.vararg.arg)
                params += [p.arg for p in a.kwonlyargs]
                if a.kwarg:
                    params.append(a.kwarg.arg)
                end = child.end_lineno or child.lineno
                text = "".join(lines[first - 1 : end])
                qualname = prefix + child.name
                out.append(
                    FunctionInfo(
                        qualname=qualname,
                        name=child.name,
                        first_line=first,
                        def_line=child.lineno,
                        end_line=end,
                        params=tuple(params),
                        source_hash=hashlib.sha256(text.encode()).hexdigest(),
                        is_method=in_class,
                        is_async=isinstance(child, ast.AsyncFunctionDef),
                        body_start_line=child.body[0].lineno,
                    )
                )
                visit(child, qualname + ".", False)
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".", True)
            else:
                visit(child, prefix, in_class)

    visit(tree, "", False)
    return out


def frames(source: str, rows: Iterable[Row]) -> list[Frame]:
    """Frames with their ``source`` text taken from ``source`` (as a tracer would)."""
    lines = split_lines_keepends(source)
    out = []
    for event, line, function, depth, locals_, value in rows:
        out.append(
            Frame(
                event=event,
                line=line,
                function=function,
                depth=depth,
                locals=dict(locals_ or {}),
                value=value,
                source=lines[line - 1].rstrip("\r\n"),
            )
        )
    return out


# The worked example of cwm-trace-format.md: f([3, 4]).
SUM_SRC = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
XS = "[3, 4]"
SUM_ROWS = [
    ("call", 1, "f", 0, {"xs": XS}, None),
    ("line", 2, "f", 0, {"xs": XS}, None),
    ("line", 3, "f", 0, {"xs": XS, "total": "0"}, None),
    ("line", 4, "f", 0, {"xs": XS, "total": "0", "x": "3"}, None),
    ("line", 3, "f", 0, {"xs": XS, "total": "3", "x": "3"}, None),
    ("line", 4, "f", 0, {"xs": XS, "total": "3", "x": "4"}, None),
    ("line", 3, "f", 0, {"xs": XS, "total": "7", "x": "4"}, None),
    ("line", 5, "f", 0, {"xs": XS, "total": "7", "x": "4"}, None),
    ("return", 5, "f", 0, None, "7"),
]

# The worked example of cwm-trace-format.md, completed (its "..." filled in by the same rules).
SUM_TEXT = (
    "<|begin_of_text|><|trace_context_start|>def f(xs):  # << START_OF_TRACE\n"
    "    total = 0\n"
    "    for x in xs:\n"
    "        total += x\n"
    "    return total\n"
    '<|frame_sep|><|call_sep|>{"xs": "[3, 4]"}<|action_sep|>def f(xs):\n'
    '<|frame_sep|><|line_sep|>{"xs": ".."}<|action_sep|>    total = 0\n'
    '<|frame_sep|><|line_sep|>{"xs": "..", "total": "0"}<|action_sep|>    for x in xs:\n'
    '<|frame_sep|><|line_sep|>{"xs": "..", "total": "..", "x": "3"}<|action_sep|>        total += x\n'
    '<|frame_sep|><|line_sep|>{"xs": "..", "total": "3", "x": ".."}<|action_sep|>    for x in xs:\n'
    '<|frame_sep|><|line_sep|>{"xs": "..", "total": "..", "x": "4"}<|action_sep|>        total += x\n'
    '<|frame_sep|><|line_sep|>{"xs": "..", "total": "7", "x": ".."}<|action_sep|>    for x in xs:\n'
    '<|frame_sep|><|line_sep|>{"xs": "..", "total": "..", "x": ".."}<|action_sep|>    return total\n'
    '<|frame_sep|><|return_sep|><|action_sep|>    return total\n'
    '<|arg_sep|>"7"<|frame_sep|><|end_of_text|>'
)


def sum_trace() -> Trace:
    return Trace(function="f", call="f([3, 4])", backend="exec", frames=frames(SUM_SRC, SUM_ROWS))
