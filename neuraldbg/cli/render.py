"""Render a Trace for people (table) and programs (json)."""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from neuraldbg.trace.frames import Trace

_COLOURS = {"call": "\x1b[36m", "return": "\x1b[32m", "exception": "\x1b[31m", "line": ""}
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


def use_colour(stream: TextIO) -> bool:
    # NO_COLOR is the ecosystem's convention for opting out.
    return stream.isatty() and "NO_COLOR" not in os.environ


def render_json(trace: Trace) -> str:
    return json.dumps(trace.to_json(), ensure_ascii=False)


def _changes(before: dict[str, str], now: dict[str, str]) -> str:
    parts = [f"{k}={v}" for k, v in now.items() if before.get(k) != v]
    parts += [f"del {k}" for k in before if k not in now]
    return ", ".join(parts)


def render_table(trace: Trace, *, colour: bool = False, width: int = 0) -> str:
    """One row per frame: step, event, line, source (indented by depth) and
    what changed in the locals (or the returned/raised value)."""
    width = width or 160
    origin = f"predicted by {trace.model or trace.backend}" if trace.predicted else "executed"
    head = f"{trace.call}  [{trace.backend}, {origin}]"
    rows: list[tuple[str, str, str, str, str]] = []
    last_by_depth: dict[int, dict[str, str]] = {}
    for i, frame in enumerate(trace.frames):
        now = trace.locals_at(i)
        if frame.event == "call":
            detail = ", ".join(f"{k}={v}" for k, v in now.items())
        elif frame.event in ("return", "exception"):
            detail = ("→ " if frame.event == "return" else "raises ") + str(frame.value)
        else:
            detail = _changes(last_by_depth.get(frame.depth, {}), now)
        last_by_depth[frame.depth] = now
        if frame.problem:
            detail = f"{detail}  ! {frame.problem}".strip()
        src = "  " * frame.depth + (frame.source.strip() or f"<{frame.function}>")
        rows.append((str(i), frame.event, str(frame.line or "?"), src, detail))
    w = [max([len(h)] + [len(r[c]) for r in rows]) for c, h in enumerate(("#", "event", "line", "source", ""))]
    w[3] = min(w[3], 60)
    out = [head]
    for r in rows:
        src = r[3] if len(r[3]) <= w[3] else r[3][: w[3] - 1] + "…"
        line = f"{r[0]:>{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {src:<{w[3]}}  {r[4]}"
        if len(line) > width:
            line = line[: width - 1] + "…"
        if colour:
            line = _COLOURS[r[1]] + line + _RESET if _COLOURS.get(r[1]) else line
        out.append(line)
    tail = f"status: {trace.status}"
    if trace.error:
        tail += f"; {trace.error}"
    elif trace.raised is not None:
        tail += f"; raised {trace.raised.value}"
    elif trace.return_value is not None:
        tail += f"; returned {trace.return_value}"
    out.append(_DIM + tail + _RESET if colour else tail)
    return "\n".join(out)


def terminal_width(stream: TextIO = sys.stdout) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 160
