"""setVariable on a backend that walks a real run (exec, replay): the run
cannot be resumed from an edited state, but an edit of the call's own
inputs (at the entry call frame) is a new call, run for real and walked (or
replayed through the model path) from its start. This module writes that
call, or says in one line why it cannot."""

from __future__ import annotations

import ast

from neuraldbg.dap.safe_eval import NOT_LITERAL, try_literal
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Frame


class RerunError(ValueError):
    """The edit cannot be re-simulated here (one line for the client)."""


def rerun_call(source: str, function: FunctionInfo, frame: Frame, name: str, new_repr: str) -> str:
    """The call of ``function`` with the arguments of its call ``frame``,
    ``name`` set to ``new_repr``: keyword arguments, each a literal."""
    if frame.event != "call" or frame.function != function.qualname:
        raise RerunError("a real run cannot be resumed from an edited state: set a variable at the call's "
                         "first frame (its arguments) to run the call again with it, or use a model backend")
    if "." in function.qualname or function.is_async:
        raise RerunError(f"{function.qualname} cannot be called again from the module with new arguments")
    node = _definition(source, function.def_line)
    if node is None or node.args.vararg or node.args.kwarg or node.args.posonlyargs:
        raise RerunError(f"the arguments of {function.qualname} cannot all be passed by name (*args, **kwargs or /)")
    values = dict(frame.locals)
    values[name] = new_repr
    parts = []
    for arg in node.args.args + node.args.kwonlyargs:
        text = values.get(arg.arg)
        if text is None:
            raise RerunError(f"the call frame has no value for {arg.arg!r}")
        if try_literal(text) is NOT_LITERAL:
            raise RerunError(f"{arg.arg} = {text} is not a literal: the call cannot be written again")
        parts.append(f"{arg.arg}={text}")
    return f"{function.qualname}({', '.join(parts)})"


def _definition(source: str, def_line: int) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.lineno == def_line:
            return node
    return None
