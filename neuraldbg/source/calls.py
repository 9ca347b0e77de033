"""Call strings: validating explicit ones, and picking a default entry."""

from __future__ import annotations

import ast

from neuraldbg.source.doctests import PARSE_FAILURES, docstring_at, doctest_setup, quiet_parse
from neuraldbg.source.model import EntryPoint, FunctionInfo, SourceIndex


class CallError(ValueError):
    """A call string that cannot be used to call the function (one line)."""


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def parse_call(call: str, function: FunctionInfo | str) -> str:
    """Validate ``call`` as one call of ``function`` and return it normalised
    (``ast.unparse``: canonical spacing and quotes, on one line).

    ``function`` is a FunctionInfo or a qualified name; the callee must end
    with the function's name (``f(1)``, ``mod.f(1)``, ``Stack().push(3)``).
    Raises CallError with a one-line message otherwise.
    """
    name = function.name if isinstance(function, FunctionInfo) else function.rsplit(".", 1)[-1]
    text = call.strip()
    if not text:
        raise CallError("call string is empty")
    try:
        tree = quiet_parse(text, mode="eval")
    except SyntaxError as exc:
        raise CallError(f"call string does not parse: {exc.msg} in {_one_line(text)!r}") from None
    except PARSE_FAILURES as exc:
        raise CallError(f"call string does not parse: {_one_line(str(exc))}") from None
    body = tree.body if isinstance(tree, ast.Expression) else None
    if not isinstance(body, ast.Call):
        raise CallError(f"call string is not a call: {_one_line(text)!r}")
    callee = _callee_name(body.func)
    if callee != name:
        shown = callee if callee is not None else _one_line(ast.unparse(body.func))
        raise CallError(f"call string calls {shown}, not {name}")
    try:
        return ast.unparse(body)
    except RecursionError:
        raise CallError("call string is nested too deeply") from None


_PRIORITY = {"marker": 0, "doctest": 1, "main": 2, "pytest": 3}


def default_call_for(index: SourceIndex, qualname: str) -> EntryPoint | None:
    """The entry to run ``qualname`` with when the user gave no call: a
    ``START_OF_TRACE`` marker that names a call, else the first doctest, else
    the first call under ``if __name__ == "__main__":``, else the first
    pytest test calling it; a bare marker (call "", meaning "let the model
    imagine the inputs") comes last."""
    best: EntryPoint | None = None
    best_rank = len(_PRIORITY) + 1
    for entry in index.entries:
        if entry.function != qualname:
            continue
        rank = _PRIORITY.get(entry.kind, len(_PRIORITY))
        if entry.kind == "marker" and not entry.call:
            rank = len(_PRIORITY)
        if rank < best_rank:
            best, best_rank = entry, rank
    return best


def entry_setup(source: str, entry: EntryPoint | None) -> str:
    """The code to run, untraced, before ``entry``'s call in the module of
    ``source``: for a doctest, the earlier examples of its docstring (see
    :func:`~neuraldbg.source.doctests.doctest_setup`; their lines keep the
    file's line numbers); nothing for other entries."""
    if entry is None or entry.kind != "doctest":
        return ""
    found = docstring_at(source, entry.line)
    if found is None:
        return ""
    literal, row = found
    return doctest_setup(literal, entry.line - 1 - row, row)
