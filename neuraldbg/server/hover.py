"""Hover text from a trace (pure: no LSP types)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuraldbg.simulation.agreement import Agreement
from neuraldbg.trace.values import ARROW, HOVER_CAP, call_outcome, capped, chain_text, exception_text, origin, short
from neuraldbg.source.index import IdentifierKind
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Trace

STILL_PREDICTING = "(still predicting…)"
_RETURN_LINE = re.compile(r"^\s*return\b")


@dataclass(frozen=True)
class HoverQuery:
    fn: FunctionInfo
    line: int  # 1-based
    word: str | None  # identifier under the cursor, if any
    line_text: str
    kind: IdentifierKind = "local"  # what the word is (see neuraldbg.source.index.identifier_kind)


def agreement_note(agreement: Agreement) -> str:
    """How far the model agrees with the real run, in a few words."""
    n = agreement.frames
    if agreement.first is None:
        text = f"model agrees with the real run on all {n} frame{'s' if n != 1 else ''}"
        return text + (" but expected it to go on" if agreement.ends is False else "")
    return (f"model agrees with the real run on {agreement.agreeing} of {n} frames; "
            f"first divergence at line {agreement.first.line}")


def code_text(code: str) -> tuple[str, str]:
    """(inline, block) markdown for ``code``: inline code when it fits on
    one line without backticks (block ""), else a python block (inline "")
    whose fence is longer than any backtick run in it."""
    if "\n" not in code and "`" not in code:
        return f"`{code}`", ""
    runs = re.findall(r"`+", code)
    fence = "`" * max(3, 1 + max((len(r) for r in runs), default=0))
    return "", f"{fence}python\n{code}\n{fence}"


def _input_text(call: str) -> tuple[str, str]:
    """``input `f(1)``` or, for a multi-line call, ``input`` and its block."""
    inline, block = code_text(call or "(imagined)")
    return ("input " + inline if inline else "input"), block


def footer(trace: Trace, *, input_origin: str = "", agreement: Agreement | None = None) -> str:
    how = f" ({input_origin})" if input_origin and input_origin not in ("explicit",) else ""
    what, block = _input_text(trace.call)
    text = f"{origin(trace)} · {what}{how}"
    if agreement is not None and agreement.frames:
        text += f" · {agreement_note(agreement)}"
    if trace.status == "streaming":
        text += f" {STILL_PREDICTING}"
    elif trace.status == "truncated":
        text += f" · stopped early: {trace.error or 'frame cap'}"
    elif trace.status == "error" and trace.error:
        text += f" · {trace.error}"
    return f"{text}\n\n{block}" if block else text


def _call_lines(trace: Trace, fn: FunctionInfo) -> list[str]:
    lines: list[str] = []
    for i, f in enumerate(trace.frames):
        if f.event != "call" or f.function != fn.qualname:
            continue
        args = ", ".join(f"{k}={short(v)}" for k, v in f.locals.items())
        kind, value = call_outcome(trace, i)
        if kind == "returns":
            tail = f"{ARROW}{short(value or 'None')}"
        elif kind == "raises":
            tail = f" raises {short(exception_text(value))}"
        else:
            tail = f"{ARROW}…"
        lines.append(f"{fn.name}({args}){tail}")
    return lines


def _code(lines: list[str]) -> str:
    return "```python\n" + "\n".join(lines) + "\n```"


def hover_markdown(trace: Trace, q: HoverQuery, *, input_origin: str = "",
                   agreement: Agreement | None = None) -> str | None:
    """Markdown for a hover, or None when the trace says nothing there;
    ``agreement``: the real run rated under the trace's model, when known."""
    fn = q.fn
    foot = footer(trace, input_origin=input_origin, agreement=agreement)
    if q.word is not None and not_a_variable(fn, q.line, q.kind):
        return None
    if fn.first_line <= q.line <= signature_end(fn):
        calls = _call_lines(trace, fn)
        if not calls:
            head = f"**{fn.name}** · not called in this run"
            return f"{head}\n\n{foot}"
        shown = calls[:HOVER_CAP]
        if len(calls) > HOVER_CAP:
            shown.append(f"# … {len(calls) - HOVER_CAP} more")
        head = f"**{fn.name}** · {len(calls)} call{'s' if len(calls) != 1 else ''}"
        return f"{head}\n\n{_code(shown)}\n\n{foot}"
    visits = trace.visits(q.line, fn.qualname)
    body: list[str] = []
    if q.word is not None:
        chain = chain_text(visits, q.word, HOVER_CAP)
        if chain is not None:
            body.append(f"{q.word}: {chain}")
    if _RETURN_LINE.match(q.line_text):
        returned = []
        for v in visits:
            nxt = trace.next_in_scope(v.step)
            if nxt is not None and trace.frames[nxt].event == "return":
                returned.append(trace.frames[nxt].value or "None")
        if returned:
            body.append(f"returns: {capped(returned, HOVER_CAP)}")
    if not body:
        if q.word is None or visits or not _is_local(trace, q):
            return None
        # a local on a line the run never reached: say so once
        return f"**{q.word}** · line {q.line} not executed\n\n{foot}"
    title = f"**{q.word}**" if q.word is not None and not body[0].startswith("returns") else "**return**"
    n = len(visits)
    head = f"{title} · line {q.line} · {n} visit{'s' if n != 1 else ''}"
    return f"{head}\n\n{_code(body)}\n\n{foot}"


def signature_end(fn: FunctionInfo) -> int:
    """The last line of ``fn``'s signature (the line before its first body
    statement when the signature spans lines; a one-line def: its line)."""
    return max(fn.def_line, fn.body_start_line - 1)


def not_a_variable(fn: FunctionInfo, line: int, kind: IdentifierKind) -> bool:
    """A word that gets no hover whatever the trace says: an attribute, a
    keyword argument's name or a type annotation in the body; a type in the
    signature (the rest of the signature shows the calls)."""
    if fn.first_line <= line <= signature_end(fn):
        return kind == "annotation"
    return kind in ("attribute", "keyword", "annotation")


def _is_local(trace: Trace, q: HoverQuery) -> bool:
    """Is the word a variable of the function: one it binds, or one the
    trace shows among its locals (a class, a builtin, a global is not)?"""
    if q.kind == "local":
        return True
    return any(q.word in f.locals for f in trace.frames if f.function == q.fn.qualname)


def pending_markdown(fn: FunctionInfo, call: str, what: str) -> str:
    """While no frame is known yet."""
    what_input, block = _input_text(call)
    tail = f"\n\n{block}" if block else ""
    return f"**{fn.name}** · {what}\n\n{what_input}{tail}"
