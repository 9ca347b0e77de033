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


def _chain(visits: Sequence[LineVisit], name: str) -> tuple[list[str], bool]:
    """The chain of ``name`` over ``visits`` (see :func:`value_chain`) and
    whether it is one unchanged value read on two visits or more."""
    chain: list[str] = []
    changed = False
    for v in visits:
        before = v.before.get(name)
        after = v.after.get(name) if v.after is not None else None
        if after is not None and after != before:
            changed = True
            if before is not None and (not chain or chain[-1] != before):
                chain.append(before)
            chain.append(after)
        elif before is not None:
            chain.append(before)
    if changed:
        # a visit that left the name as the chain already ends (a loop's exit
        # test after its last item) adds nothing to the history
        return [x for i, x in enumerate(chain) if i == 0 or x != chain[i - 1]], False
    if len(chain) > 1 and all(x == chain[0] for x in chain):
        return chain[:1], True  # read, never changed, one value: shown once
    return chain, False


def value_chain(visits: Sequence[LineVisit], name: str) -> list[str]:
    """The values of ``name`` at the visits of a line. Where the line changed
    it on some visit: its history there (each changing visit adds the value
    before, unless the chain already ends with it, then the value after; a
    visit that did not change it adds its value unless the chain already
    ends with it). Where the line never changed it: the value it had at each
    visit, or that value once when it was the same at every visit."""
    return _chain(visits, name)[0]


def chain_text(visits: Sequence[LineVisit], name: str, cap: int = HOVER_CAP) -> str | None:
    """``0 → 1 → 2`` (capped), ``5 (unchanged)`` for a name the line read
    with the same value on two visits or more, None when it had no value."""
    chain, unchanged = _chain(visits, name)
    if not chain:
        return None
    return f"{short(chain[0])} (unchanged)" if unchanged else capped(chain, cap)


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
