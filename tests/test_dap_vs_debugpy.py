"""The differential test: debugpy 1.8 and neuraldbg's debug adapter (exec
backend), driven by the same DAP client (tests/dap_client/differential.py)
over the same programs (tests/dap_programs/) and the same command scripts.

At every stop the two must agree on the reason, the stack (function and line
of each frame from ``main`` up, so also the depth), the top frame's locals
(names and reprs) and, at an exception stop, the exception's type; at the end,
on the exit code. The normalisations that make the two comparable are
described in differential.py's docstring. Where they differ on purpose or by a
known bug, the difference is listed in KNOWN with its reason: the test checks
that it is exactly that difference (so a fix shows up as a failure that asks
for the entry to be removed) and compares nothing after it (the two sessions
are no longer in the same state). Everything else must match.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from dap_client.differential import Debugpy, Neuraldbg, Recording, Script, Stop

N, I, O, C = "next", "stepIn", "stepOut", "continue"

SCRIPTS: list[Script] = [
    # loops
    Script("loops-continue", "loops.py", (9, 16), (C, C, C, C, C, C)),
    Script("loops-next", "loops.py", (6,), (N,) * 14),
    Script("loops-condition", "loops.py", ((9, {"condition": "i > 0"}), (16, {"condition": "n % 4 == 0"})), (C, C, C, C)),
    Script("loops-hit-count", "loops.py", ((6, {"hitCondition": "3"}), (12, {"hitCondition": ">= 3"})), (C, C, C, C)),
    Script("loops-breakpoints-changed", "loops.py", (9,), (C, "break 13 15", C, C, "break", C)),
    # recursion
    Script("recursion-in-and-out", "recursion.py", (12,), (I, I, I, N, I, N, N, O, N, O, N, N)),
    Script("recursion-breakpoint", "recursion.py", (6,), (O, O, N, C)),
    Script("recursion-next-over-breakpoint", "recursion.py", (12, 8), (N, C, C, C)),
    # a method
    Script("method-steps", "method.py", (18,), (I, N, N, I, N, N, I, N, O, N, N, I, O, O, N)),
    Script("method-out-of-callee", "method.py", (14,), (O, N, C, O)),
    # a generator
    Script("generator-yield-breakpoint", "generator.py", (7,), (C, C, C, C)),
    Script("generator-next", "generator.py", (12,), (N,) * 10),
    Script("generator-step-in", "generator.py", (13,), (I,) * 12),
    Script("generator-hit-count", "generator.py", ((7, {"hitCondition": "2"}), (14, {"hitCondition": "%2"})), (C, C, C)),
    Script("generator-step-out", "generator.py", (8,), (O, N, I, I, O, C)),
    # callbacks
    Script("callbacks-key-breakpoint", "callbacks.py", (5,), (C, C, C)),
    Script("callbacks-step", "callbacks.py", (20,), (I, N, N, I, O, N, I, I, N, N, N)),
    Script("callbacks-next-over-breakpoint", "callbacks.py", (20, 15), (N, C, C, C)),
    Script("callbacks-function-breakpoints", "callbacks.py", (), (C, C, N, C, C, C), functions=("by_length", "inc")),
    Script("method-function-breakpoint", "method.py", (), (C, N, C), functions=("check",)),
    Script("callbacks-step-out", "callbacks.py", (6, 10), (O, C, O, N, I, O, C)),
    # exceptions, caught and uncaught
    Script("caught-steps", "caught.py", (16,), (I, I, N, N, N, N, N)),
    Script("caught-raised-filter", "caught.py", (), (C, C, C), filters=("raised",)),
    Script("caught-uncaught-filter", "caught.py", (19,), (C,), filters=("uncaught",)),
    Script("uncaught-filter", "uncaught.py", (), (C,), filters=("uncaught",)),
    Script("uncaught-steps", "uncaught.py", (11,), (I, N, N), filters=("uncaught",)),
    Script("uncaught-no-filter", "uncaught.py", (10,), (N, C)),
    Script("uncaught-both-filters", "uncaught.py", (), (C, C, C), filters=("raised", "uncaught")),
    # nested calls on one line
    Script("nested-in-over", "nested_calls.py", (15,), (I, N, N, I, N, N, I, I, N, N)),
    Script("nested-out", "nested_calls.py", (15,), (I, O, I, O, N, I, O, N)),
    Script("nested-next-over-breakpoint", "nested_calls.py", (15, 6), (N, C, C, C)),
    # comprehensions
    Script("comprehension-steps", "comprehensions.py", (10,), (I, I, N, N, O, N, I, N, N)),
    Script("comprehension-breakpoint", "comprehensions.py", (5, 11), (C, C, C, C)),
    # a multi-line call
    Script("multiline-continuation-breakpoint", "multiline.py", (13, 18), (C, C)),
    Script("multiline-steps", "multiline.py", (10,), (N, I, N, N, N, N)),
]
BY_NAME = {s.name: s for s in SCRIPTS}


@dataclass(frozen=True)
class Known:
    """A documented difference: at stop ``stop`` (0 = the first stop) debugpy
    and neuraldbg stop as these Stop.brief() texts say, for ``reason``."""

    stop: int
    debugpy: str
    neuraldbg: str
    reason: str
    # neuraldbg's setBreakpoints answers (line asked, verified, line bound), where they differ from debugpy's
    breakpoints: tuple[tuple[int, bool, int | None], ...] | None = None


KNOWN: dict[str, Known] = {
    "comprehension-steps": Known(
        2, "step at sq:5 depth 2 [x=1]", "step at main:10 depth 1 [(return) sq=0, n=3]",
        "Python 3.11 gives a comprehension a frame of its own: a step in from sq(0)'s return stops in the "
        "<listcomp> frame (passed: neuraldbg has no such frame, its tracer folds the comprehension into main), "
        "and the step in sent again goes into sq(1); neuraldbg stops on the return in the caller, main, on the "
        "calling line, where pydevd stops when the caller is a function's own frame (callbacks-step-out; "
        "Python 3.12 inlines comprehensions into that frame, PEP 709)"),
}


@pytest.fixture(scope="module")
def recordings(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[tuple[Recording, Recording]]]]:
    """Every selected script recorded on both adapters, four sessions at a
    time (each is mostly waiting on its adapter)."""
    wanted = [item.callspec.params["name"] for item in request.session.items
              if getattr(item, "callspec", None) is not None and "name" in item.callspec.params
              and item.module is request.module]
    pool = ThreadPoolExecutor(max_workers=4)
    futures = {name: pool.submit(_record, BY_NAME[name]) for name in dict.fromkeys(wanted)}
    yield futures
    pool.shutdown(wait=True)


def _record(script: Script) -> tuple[Recording, Recording]:
    return Debugpy(script).record(), Neuraldbg(script).record()


def _key(stop: Stop) -> tuple[object, ...]:
    return stop.reason, stop.frames, stop.locals, stop.exception, stop.exit_code


def _side_by_side(d: Recording, n: Recording, upto: int) -> str:
    rows = []
    for i in range(upto + 1):
        a = d.stops[i].brief() if i < len(d.stops) else "-"
        b = n.stops[i].brief() if i < len(n.stops) else "-"
        after = (d.stops[i] if i < len(d.stops) else n.stops[i]).after
        rows.append(f"  {i:2} {after:8} debugpy:   {a}\n  {'':11} neuraldbg: {b}")
    return "\n".join(rows)


def _check_function_breakpoints(d: Recording) -> None:
    """debugpy's function-breakpoint stop and the stop one 'next' later,
    compared in its place, are in the same call."""
    for stop in d.stops:
        if stop.reason == "function breakpoint":
            assert len(stop.passed) == 1 and stop.passed[-1].frames[1:] == stop.frames[1:], stop
            assert stop.passed[-1].frames[0].name == stop.frames[0].name, stop


def _check_passed(n: Recording) -> None:
    """neuraldbg's (return) stops passed on the way are the returns of the
    frames being left: the k-th is the frame k deep in the stack of the stop
    before the motion, at the line it was on."""
    for i, stop in enumerate(n.stops):
        if not stop.passed:
            continue
        before = n.stops[i - 1]
        for k, p in enumerate(stop.passed):
            assert p.returning
            assert p.frames == before.frames[k:], (
                f"stop {i} ({stop.after}) passed a (return) stop {p.brief()} that is not the return of frame {k} "
                f"of {before.brief()}")


@pytest.mark.parametrize("name", [s.name for s in SCRIPTS])
def test_stops_match_debugpy(recordings: dict[str, Future[tuple[Recording, Recording]]], name: str) -> None:
    d, n = recordings[name].result(timeout=300)
    known = KNOWN.get(name)
    assert not d.errors, f"debugpy: {d.errors}"
    assert not n.errors, f"neuraldbg: {n.errors}"
    expected = list(known.breakpoints) if known is not None and known.breakpoints is not None else d.breakpoints
    assert n.breakpoints == expected, (
        "setBreakpoints answers ((line asked, verified, line bound)):\n"
        f"  debugpy:   {d.breakpoints}\n  neuraldbg: {n.breakpoints}\n  expected:  {expected}")
    _check_passed(n)
    _check_function_breakpoints(d)
    first = next((i for i in range(max(len(d.stops), len(n.stops)))
                  if i >= len(d.stops) or i >= len(n.stops) or _key(d.stops[i]) != _key(n.stops[i])), None)
    if known is None:
        assert first is None, f"{name}: the stops differ at stop {first}:\n" + _side_by_side(d, n, first or 0)
        return
    assert first is not None, (f"{name}: documented difference at stop {known.stop} no longer occurs; "
                               "remove it from KNOWN in tests/test_dap_vs_debugpy.py")
    got = (d.stops[first].brief() if first < len(d.stops) else "-",
           n.stops[first].brief() if first < len(n.stops) else "-")
    assert (first, got) == (known.stop, (known.debugpy, known.neuraldbg)), (
        f"{name}: expected the documented difference at stop {known.stop} ({known.reason}); got:\n"
        + _side_by_side(d, n, first))


def test_adapters_agree_on_the_exception_filters() -> None:
    """neuraldbg names its exception filters as debugpy does ("Raised
    Exceptions", "Uncaught Exceptions"), with debugpy's defaults."""
    script = BY_NAME["uncaught-filter"]
    debugpy_caps = Debugpy(script).capabilities()
    neuraldbg_caps = Neuraldbg(script).capabilities()
    theirs = {f["filter"]: (f["label"], f.get("default", False)) for f in debugpy_caps["exceptionBreakpointFilters"]}
    ours = {f["filter"]: (f["label"], f.get("default", False)) for f in neuraldbg_caps["exceptionBreakpointFilters"]}
    for name in ("raised", "uncaught"):
        assert ours.get(name) == theirs[name], f"filter {name!r}: debugpy {theirs[name]}, neuraldbg {ours.get(name)}"
