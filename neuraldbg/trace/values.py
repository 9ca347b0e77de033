"""How trace values read in hovers and inlay hints (pure functions).

The rules here are the contract described in lsp/README.md ("Value
display"); tests compute their expectations from the ground truth with
the same rules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from neuraldbg.trace.frames import Frame, LineVisit, Trace

ARROW = " → "
MAX_VALUE_CHARS = 80  # one repr in a hint or hover line
HOVER_CAP = 10  # values shown in a hover line before "… N more"
INLAY_CAP = 5  # values shown in an inlay hint before "… N more"


def short(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    value = value.replace("\n", "\\n")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def capped(values: Sequence[str], cap: int, sep: str = ARROW) -> str:
    """``a → b → c … 4 more``."""
    shown = [short(v) for v in values[:cap]]
    text = sep.join(shown)
    if len(values) > cap:
        text += f" … {len(values) - cap} more"
    return text


def value_chain(visits: Sequence[LineVisit], name: str) -> list[str]:
    """The values of ``name`` at each visit of a line: the value after the
    line where the line changed it (preceded by the value before it, unless
    that is where the chain already stands), else the value it had."""
    chain: list[str] = []
    for v in visits:
        before = v.before.get(name)
        after = v.after.get(name) if v.after is not None else None
        if after is not None and after != before:
            if before is not None and (not chain or chain[-1] != before):
                chain.append(before)
            chain.append(after)
        elif before is not None:
            chain.append(before)
        elif after is not None:
            chain.append(after)
    return chain


def produced(visits: Sequence[LineVisit]) -> dict[str, list[str]]:
    """Names a line changed, with the value after each visit that changed
    them (in order of first change)."""
    out: dict[str, list[str]] = {}
    for v in visits:
        if v.after is None:
            continue
        for name, value in v.after.items():
            if v.before.get(name) != value:
                out.setdefault(name, []).append(value)
    return out


def origin(trace: Trace) -> str:
    if not trace.predicted:
        return "executed (real run)"
    return f"predicted by {trace.model or trace.backend}"


def exception_text(value: str | None) -> str:
    """``ValueError('x')`` -> ``ValueError: x``."""
    if value is None:
        return "an exception"
    m = re.fullmatch(r"([A-Za-z_][\w.]*)\((.*)\)", value.strip(), re.DOTALL)
    if not m:
        return value
    name, args = m.group(1), m.group(2)
    if not args:
        return name
    try:
        arg = ast.literal_eval(args)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return f"{name}: {args}"
    return f"{name}: {arg}" if isinstance(arg, str) else f"{name}: {args}"


def call_outcome(trace: Trace, step: int) -> tuple[str, str | None]:
    """For the call frame at ``step``: ("returns", value), ("raises", value)
    or ("running", None) when the trace has not reached its end."""
    frames = trace.frames
    depth = frames[step].depth
    pending: Frame | None = None
    for i in range(step + 1, len(frames)):
        f = frames[i]
        if f.depth < depth:
            break
        if f.depth != depth:
            continue
        if f.event == "exception":
            pending = f
        elif f.event == "line":
            pending = None
        elif f.event == "return":
            return ("raises", pending.value) if pending is not None else ("returns", f.value)
        elif f.event == "call":
            break
    return "running", None


def escaped_exceptions(trace: Trace) -> list[int]:
    """Indices of exception frames whose exception left their scope (the
    next frame of that scope is its return)."""
    out: list[int] = []
    frames = trace.frames
    for i, f in enumerate(frames):
        if f.event != "exception":
            continue
        nxt = trace.next_in_scope(i)
        if nxt is not None and frames[nxt].event == "return":
            out.append(i)
    return out


def exception_origin(trace: Trace, raised_step: int) -> int:
    """The first frame of the propagation chain that ends at ``raised_step``."""
    frames = trace.frames
    value = frames[raised_step].value
    origin_step = raised_step
    for k in range(raised_step - 1, -1, -1):
        f = frames[k]
        if f.event == "return":
            continue
        if f.event == "exception" and f.value == value:
            origin_step = k
            continue
        break
    return origin_step
