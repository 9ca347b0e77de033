"""Inlay hints from a trace (pure: no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from neuraldbg.trace.values import INLAY_CAP, capped, escaped_exceptions, produced, short
from neuraldbg.source.model import FunctionInfo, SourceIndex
from neuraldbg.trace.frames import Trace


@dataclass(frozen=True)
class InlayItem:
    line: int  # 1-based; the hint goes at the end of this line
    label: str
    kind: Literal["value", "breakpoint", "exception"]


def inlay_items(trace: Trace, fn: FunctionInfo, index: SourceIndex, first: int, last: int) -> list[InlayItem]:
    """Hints for the lines ``first..last`` (1-based, inclusive) of ``fn``."""
    out: list[InlayItem] = []
    lo = max(first, fn.def_line + 1)
    hi = min(last, fn.end_line)
    frames_by_line: dict[int, bool] = {}
    for f in trace.frames:
        if f.function == fn.qualname and f.event == "line" and lo <= f.line <= hi:
            frames_by_line[f.line] = True
    breakpoints = {b.line for b in index.breakpoints if lo <= b.line <= hi}
    for line in sorted(frames_by_line):
        visits = trace.visits(line, fn.qualname)
        if line in breakpoints:
            first_visit = visits[0]
            state = ", ".join(f"{k}={short(v, 40)}" for k, v in first_visit.before.items()) or "no locals"
            times = f" (1st of {len(visits)})" if len(visits) > 1 else ""
            out.append(InlayItem(line, f"⏸ {state}{times}", "breakpoint"))
            continue
        changes = produced(visits)
        if changes:
            label = ", ".join(f"{name} = {capped(values, INLAY_CAP)}" for name, values in changes.items())
            out.append(InlayItem(line, label, "value"))
    for i in escaped_exceptions(trace):
        f = trace.frames[i]
        if f.function == fn.qualname and lo <= f.line <= hi:
            out.append(InlayItem(f.line, f"raises {short(f.value or 'an exception')}", "exception"))
    return _dedupe(out)


def _dedupe(items: list[InlayItem]) -> list[InlayItem]:
    seen: set[tuple[int, str]] = set()
    out: list[InlayItem] = []
    for item in sorted(items, key=lambda it: (it.line, it.kind != "value")):
        key = (item.line, item.label)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
