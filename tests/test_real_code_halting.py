"""No false "may not halt" on real code: a halting run is not cut short by a
fixed frame cap (the budget follows the time limit), a run the budget does
stop is "stopped early" (an Information, not the Warning), and "may not
halt" comes only from the run itself: the time limit, or a loop the tracer
saw come back to an exact earlier state. Long traces are held compactly."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from neuraldbg.config import Settings
from neuraldbg.server.diagnostics import trace_problems
from neuraldbg.simulation.exec_engine import ExecEngine
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import Limits, run_trace

# TheAlgorithms/Python's recursive edit distance: 84,549 frames for its
# doctest (the old 2,000-frame cap called it "may not halt").
EDIT_DISTANCE_RECURSIVE = (Path(__file__).resolve().parents[1] / "examples" / "edit_distance.py").read_text()

EDIT_DISTANCE_DP = '''\
def edit_distance(a: str, b: str) -> int:
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        dp[i][0] = i
    for j in range(len(b) + 1):
        dp[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            dp[i][j] = min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + cost)
    return dp[len(a)][len(b)]
'''

# 2 frames a turn: 15,000 turns are 30,006 frames; ``note`` never changes.
LONG_LOOP = '''\
def long_loop(n):
    note = "x" * 250
    i = 0
    while i < n:
        i += 1
    return i
'''


def default_run(source: str, call: str, function: str, settings: Settings = Settings()) -> Trace:
    """The real run with the default settings, shown through the simulation
    as the language server and the debugger show it."""
    limits = Limits(wall_seconds=settings.timeout_seconds, max_frames=settings.max_frames)
    truth = run_trace(source, call, function=function, limits=limits)
    sim = Simulation(ExecEngine(truth), function=function, call=call, max_frames=settings.max_frames)
    return sim.run_to_end()


def halting_problems(source: str, trace: Trace, function: str) -> list[tuple[str, str]]:
    fn = index_text(source).function(function)
    assert fn is not None
    return [(p.code, p.severity) for p in trace_problems(trace, fn, source.splitlines())
            if p.code in ("may-not-halt", "stopped-early")]


def test_the_default_frame_budget_follows_the_time_limit() -> None:
    assert Settings().max_frames >= 20_000
    assert Settings(timeout_seconds=30).max_frames == 3 * Settings().max_frames
    assert Settings(max_frames=400).max_frames == 400
    assert Limits().max_frames == Settings().max_frames and Limits().cpu_seconds == Limits().wall_seconds


def test_a_30000_frame_halting_loop_completes_within_the_default_limits() -> None:
    trace = default_run(LONG_LOOP, "long_loop(15000)", "long_loop")
    assert (trace.status, trace.error, len(trace.frames)) == ("complete", None, 30_006)
    assert trace.return_value == "15000"
    assert halting_problems(LONG_LOOP, trace, "long_loop") == []


def test_edit_distance_completes() -> None:
    for source in (EDIT_DISTANCE_RECURSIVE, EDIT_DISTANCE_DP):
        trace = default_run(source, 'edit_distance("GATTIC", "GALTIC")', "edit_distance")
        assert (trace.status, trace.error, trace.return_value) == ("complete", None, "1")
        assert halting_problems(source, trace, "edit_distance") == []
    assert len(trace.frames) < len(default_run(EDIT_DISTANCE_RECURSIVE, 'edit_distance("GATTIC", "GALTIC")',
                                               "edit_distance").frames) == 84_549


def test_a_halting_run_out_of_budget_is_stopped_early_not_may_not_halt() -> None:
    settings = Settings(max_frames=3000)
    trace = default_run(LONG_LOOP, "long_loop(15000)", "long_loop", settings)
    assert (trace.status, trace.stop, len(trace.frames)) == ("truncated", "frame-budget", 3000)
    assert trace.stopped_early and not trace.may_not_halt
    assert trace.error == "stopped after 3000 frames, the frame budget, with the program still running"
    assert halting_problems(LONG_LOOP, trace, "long_loop") == [("stopped-early", "information")]
    assert trace.to_json()["stop"] == "frame-budget" and Trace.from_json(trace.to_json()).stopped_early


@pytest.mark.parametrize("source, call", [
    ("def spin():\n    while True:\n        pass\n", "spin()"),
    ("def spin(x):\n    while x:\n        x = x\n", "spin(1)"),
    ("def spin(x, k):\n    while x != 0:\n        x = x * k % 7\n", "spin(1, 3)"),  # 1, 3, 2, 6, 4, 5, 1, ...
])
def test_an_exact_cycle_still_says_may_not_halt(source: str, call: str) -> None:
    trace = default_run(source, call, "spin")
    assert (trace.status, trace.stop) == ("truncated", "cycle") and trace.may_not_halt
    assert "came back to an earlier state exactly" in (trace.error or "")
    assert halting_problems(source, trace, "spin") == [("may-not-halt", "warning")]


@pytest.mark.parametrize("source, call", [
    # the state is in an attribute: the object's repr stays the same
    ("class C:\n    def __init__(self):\n        self.n = 10**9\n    def spin(self):\n"
     "        while self.n:\n            self.n -= 1\n", "C().spin()"),
    # the state is the iterator on the stack: the loop variable repeats
    ("def spin():\n    for _ in [0] * 10**6:\n        pass\n", "spin()"),
    # the state is in a global changed by a call
    ("N = [0]\ndef bump():\n    N[0] += 1\ndef spin():\n    while N[0] < 10**9:\n        bump()\n", "spin()"),
    # the state is the clock
    ("import time\ndef spin():\n    end = time.time() + 60\n    while time.time() < end:\n        pass\n", "spin()"),
    # a repr cut short proves nothing: here the tail past the cut alternates
    ("def spin():\n    s = 'a' * 1000 + 'b'\n    while s:\n        s = s[:999] + 'ab'[s[-1] == 'a']\n", "spin()"),
])
def test_a_repeated_repr_that_is_not_the_whole_state_is_no_cycle(source: str, call: str) -> None:
    trace = run_trace(source, call, function="spin", limits=Limits(max_frames=3000))
    assert (trace.status, trace.stop, len(trace.frames)) == ("truncated", "frame-budget", 3000), trace.error


def test_the_time_limit_still_says_may_not_halt() -> None:
    source = "def spin():\n    i = 0\n    while True:\n        i += 1\n"
    limits = Limits(wall_seconds=0.5, max_frames=10**8)
    trace = run_trace(source, "spin()", function="spin", limits=limits)
    assert (trace.status, trace.stop) == ("truncated", "time-limit") and trace.may_not_halt, trace.error
    sim = Simulation(ExecEngine(trace), function="spin", call="spin()", max_frames=10**8).run_to_end()
    assert halting_problems(source, sim, "spin") == [("may-not-halt", "warning")]


def test_a_30000_frame_trace_is_held_compactly() -> None:
    """Unchanged reprs are one string, unchanged locals one dict; the whole
    trace of 30,006 frames holds under 10 MiB (17 MiB when each frame had
    its own copy of every repr)."""
    gc.collect()
    tracemalloc.start()
    try:
        trace = run_trace(LONG_LOOP, "long_loop(15000)", function="long_loop", limits=Limits(max_frames=100_000))
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert trace.status == "complete" and len(trace.frames) == 30_006
    notes = {id(f.locals["note"]) for f in trace.frames if "note" in f.locals}
    assert len(notes) == 1
    line_frames = [f for f in trace.frames if f.event == "line" and f.line == 4]
    assert line_frames[5].locals["i"] == "5"
    assert held < 10 * 1024 * 1024, f"{held / 2**20:.1f} MiB held for {len(trace.frames)} frames"
