"""Diagnostics from the source index and from traces (pure: no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from neuraldbg.server.values import escaped_exceptions, exception_origin, exception_text
from neuraldbg.source.model import FunctionInfo, SourceIndex, Span
from neuraldbg.trace.frames import Trace

Severity = Literal["error", "warning", "information", "hint"]
SOURCE = "neuraldbg"


@dataclass(frozen=True)
class Problem:
    span: Span  # code points, 0-based lines
    message: str
    severity: Severity
    code: str  # "syntax", "hole", "exception", "may-not-halt", "divergence"


def line_span(lines: list[str], line: int) -> Span:
    """The non-blank part of a 1-based line."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    start = len(text) - len(text.lstrip())
    return Span(line - 1, start, line - 1, len(text.rstrip()))


def index_problems(index: SourceIndex) -> list[Problem]:
    out = [Problem(e.span, f"syntax error: {e.message}", "error", "syntax") for e in index.syntax_errors]
    out += [Problem(h.span, "hole: ?? must be filled", "information", "hole") for h in index.holes]
    return out


def trace_problems(trace: Trace, fn: FunctionInfo, lines: list[str]) -> list[Problem]:
    """An exception escaping the traced function, or a run that may not halt."""
    out: list[Problem] = []
    severity: Severity = "warning" if trace.predicted else "error"
    how = f"predicted for {trace.call}" if trace.predicted else f"for {trace.call}"
    raised = trace.raised
    if raised is not None:
        steps = [i for i in escaped_exceptions(trace) if trace.frames[i].depth == 0]
        origin_step = exception_origin(trace, steps[-1]) if steps else None
        frame = trace.frames[origin_step] if origin_step is not None else raised
        # point at the line in this document where it started, else where it left the function
        line = frame.line if frame.line > 0 else raised.line
        if line <= 0 or line > len(lines):
            line = fn.def_line
        out.append(Problem(line_span(lines, line), f"{exception_text(raised.value)} ({how})", severity, "exception"))
    if trace.status == "truncated":
        why = trace.error or "the frame cap was hit"
        out.append(Problem(line_span(lines, fn.def_line), f"may not halt: {why} ({how})", "warning", "may-not-halt"))
    return out
