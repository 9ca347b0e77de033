"""Diagnostics from the source index and from traces (pure: no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from neuraldbg.simulation.agreement import Agreement, FirstDivergence
from neuraldbg.trace.values import escaped_exceptions, exception_origin, exception_text, short
from neuraldbg.source.model import FunctionInfo, SourceIndex, Span
from neuraldbg.trace.frames import Trace

Severity = Literal["error", "warning", "information", "hint"]
SOURCE = "neuraldbg"


@dataclass(frozen=True)
class Problem:
    span: Span  # code points, 0-based lines
    message: str
    severity: Severity
    code: str  # "syntax", "hole", "exception", "may-not-halt", "stopped-early", "divergence", "model-disagrees"


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
    """An exception escaping the traced function, a run that may not halt
    (the time limit, an exact loop), or one the frame budget stopped early."""
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
    if trace.stopped_early:  # a long run, not a sign of a loop: said quietly
        why = trace.error or "the frame budget ran out"
        out.append(Problem(line_span(lines, fn.def_line), f"stopped early: {why} ({how})", "information",
                           "stopped-early"))
    elif trace.may_not_halt:
        why = trace.error or "the frame cap was hit"
        out.append(Problem(line_span(lines, fn.def_line), f"may not halt: {why} ({how})", "warning", "may-not-halt"))
    return out


def probability_text(p: float) -> str:
    return "<0.01%" if p < 1e-4 else f"{100 * p:.3g}%"


def _disagreement_text(first: FirstDivergence) -> str:
    """What the model expected where it first leaves the real run."""
    real, expected = short(first.real), short(first.expected)
    if first.part == "locals" and first.name is not None:
        wanted = f"to stay `{expected}`" if first.unchanged else f"to be `{expected}`"
        return f"the model expected `{first.name}` {wanted}, the real run has `{real}`"
    if first.part == "locals":
        return f"the model expected other locals here (`{expected}`), the real run has `{real}`"
    if first.part == "line":
        return f"the model expected another line next (`{expected}`), the real run went to `{real}`"
    if first.part == "value":
        did = "raised" if first.event == "exception" else "returned"
        return f"the model expected the {first.event} value `{expected}`, the real run {did} `{real}`"
    return f"the model expected {expected} here, the real run has a {real} event"


def agreement_problems(agreement: Agreement, fn: FunctionInfo, lines: list[str], call: str) -> list[Problem]:
    """The line where the model first leaves the real run (one teacher-forced
    rating of the real run), with the model's probability of the real text."""
    first = agreement.first
    if first is None:
        return []
    line = first.line if 0 < first.line <= len(lines) else fn.def_line
    what = {"locals": "value" if first.name is not None else "locals"}.get(first.part, first.part)
    message = (f"{_disagreement_text(first)} (model probability of the real {what}: "
               f"{probability_text(first.probability)}; for {call})")
    return [Problem(line_span(lines, line), message, "information", "model-disagrees")]
