"""Exceptions in a trace as a Python debugger shows them: the type and
message of an exception repr, whether it escapes the traced call
("uncaught"), and its traceback text (what Python prints to stderr).

debugpy's filters and defaults: "raised" (Raised Exceptions, off) stops
where any exception is raised, caught or not; "uncaught" (Uncaught
Exceptions, on) stops where an exception that ends the program was raised,
before the program ends."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Sequence

from neuraldbg.dap.stepping import raise_site
from neuraldbg.trace.frames import Frame, Trace

RAISED = "raised"
UNCAUGHT = "uncaught"
FILTERS = [
    {"filter": RAISED, "label": "Raised Exceptions", "default": False,
     "description": "Stop where an exception is raised, caught or not (on a model backend: where one is predicted)"},
    {"filter": UNCAUGHT, "label": "Uncaught Exceptions", "default": True,
     "description": "Stop where an exception that ends the traced call was raised, before the session ends"},
]


@dataclass(frozen=True)
class ExceptionStop:
    """What ``exceptionInfo`` answers for the current exception stop."""

    type_name: str
    message: str
    break_mode: str  # "always" (raised) or "unhandled" (uncaught), as debugpy says
    step: int  # the frame where it was raised
    predicted: bool
    traceback: str

    @property
    def description(self) -> str:
        return f"predicted: {self.message}" if self.predicted else self.message


def split_repr(value: str | None) -> tuple[str, str]:
    """(type, message) of an exception repr such as ``ValueError('bad')``:
    the message is what ``str(exc)`` gives when the arguments are literals."""
    text = (value or "").strip()
    if not text:
        return "Exception", ""
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        node = None
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return name, text[len(name):].strip()[1:-1]
        if not args:
            return name, ""
        return name, str(args[0]) if len(args) == 1 else str(tuple(args))
    name = text.split("(", 1)[0].strip() or "Exception"
    return name, text


def escaping_raise(trace: Trace) -> int | None:
    """The frame where the exception that ended the traced call was raised,
    if one did (None for a call that returned or a trace not finished)."""
    raised = trace.raised
    if raised is None:
        return None
    return raise_site(trace.frames, len(trace.frames) - 1)


def exception_stop(trace: Trace, step: int, break_mode: str, *, source: str, path: str) -> ExceptionStop:
    type_name, message = split_repr(trace.frames[step].value)
    text = traceback_text(trace.frames, step, source_lines=source.splitlines(), path=path)
    return ExceptionStop(type_name, message, break_mode, step, trace.predicted, text)


def traceback_text(frames: Sequence[Frame], step: int, *, source_lines: list[str] | None, path: str | None) -> str:
    """Python's traceback of the exception raised at ``step``, from the
    frames of the calls active there (most recent call last)."""
    chain: list[Frame] = []
    depth = frames[step].depth
    chain.append(frames[step])
    for i in range(step - 1, -1, -1):
        f = frames[i]
        if f.depth < depth and f.event in ("line", "call"):
            chain.append(f)
            depth = f.depth
        if depth == 0:
            break
    lines = ["Traceback (most recent call last):\n"]
    for f in reversed(chain):
        where = f'  File "{path}", line {f.line}, in {f.function}\n' if path else f"  line {f.line}, in {f.function}\n"
        lines.append(where)
        text = (source_lines[f.line - 1].strip() if source_lines and 0 < f.line <= len(source_lines) else f.source.strip())
        if text:
            lines.append(f"    {text}\n")
    type_name, message = split_repr(frames[step].value)
    lines.append(f"{type_name}: {message}\n" if message else f"{type_name}\n")
    return "".join(lines)
