"""Compare a predicted trace with a real run (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from neuraldbg.trace.values import short
from neuraldbg.trace.frames import Trace


@dataclass(frozen=True)
class Divergence:
    step: int
    line: int  # 1-based line of the executed frame (or the predicted one past its end)
    message: str


def _describe(trace: Trace, step: int) -> str:
    f = trace.frames[step]
    if f.event in ("return", "exception"):
        return f"{f.event} {short(f.value or 'None')} at line {f.line}"
    if f.event == "call":
        return f"a call of {f.function} (line {f.line})"
    return f"line {f.line}"


def first_divergence(predicted: Trace, executed: Trace) -> Divergence | None:
    """The first step where the predicted trace leaves the real one."""
    p, e = predicted.frames, executed.frames
    for i in range(min(len(p), len(e))):
        pf, ef = p[i], e[i]
        head = f"first divergence at step {i}, line {ef.line}"
        if (pf.event, pf.line, pf.function) != (ef.event, ef.line, ef.function):
            return Divergence(i, ef.line, f"{head}: predicted {_describe(predicted, i)}, executed {_describe(executed, i)}")
        if pf.event in ("return", "exception") and pf.value != ef.value:
            return Divergence(i, ef.line, f"{head}: predicted {pf.event} {short(pf.value or 'None')}, executed {short(ef.value or 'None')}")
        pl, el = predicted.locals_at(i), executed.locals_at(i)
        if pl != el:
            for name in [*el, *(k for k in pl if k not in el)]:
                if pl.get(name) != el.get(name):
                    pv = short(pl[name]) if name in pl else "(unbound)"
                    ev = short(el[name]) if name in el else "(unbound)"
                    return Divergence(i, ef.line, f"{head}: predicted {name}={pv}, executed {name}={ev}")
    if len(p) != len(e):
        i = min(len(p), len(e))
        if i < len(e):
            line = e[i].line
            msg = f"first divergence at step {i}, line {line}: the prediction ended, the real run went on ({_describe(executed, i)})"
        else:
            line = p[i].line
            msg = f"first divergence at step {i}, line {line}: predicted {_describe(predicted, i)}, the real run had ended"
        return Divergence(i, line, msg)
    return None
