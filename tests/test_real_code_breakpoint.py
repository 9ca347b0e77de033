"""``breakpoint()`` in traced code never starts pdb: through the real tracer
the call is a no-op seen as a normal line, and the run goes on to the end."""

from __future__ import annotations

from neuraldbg.tracer import run_trace

# Two breakpoint() calls per iteration. The program counts reads of its stdin
# (pdb reads its commands there) and tries to re-enable pdb the way a user's
# environment would (PYTHONBREAKPOINT), so the test sees both failure modes
# in the values it returns rather than only in the status.
LOOP = """\
import os
import sys

READS = []


class SpyStdin:
    def readline(self, *args):
        READS.append("readline")
        return "c\\n"

    def read(self, *args):
        READS.append("read")
        return "c\\n"


def walk(n):
    sys.stdin = SpyStdin()
    os.environ["PYTHONBREAKPOINT"] = "pdb.set_trace"
    total = 0
    for i in range(n):
        total += i
        breakpoint()
        doubled = total * 2
        breakpoint()
    pdb_loaded = "pdb" in sys.modules
    return (total, len(READS), pdb_loaded)
"""

BP_LINES = [n for n, text in enumerate(LOOP.splitlines(), 1) if text.strip() == "breakpoint()"]
FIRST_BP, SECOND_BP = BP_LINES  # 1-based


def test_loop_with_two_breakpoints_runs_to_the_end() -> None:
    trace = run_trace(LOOP, "walk(3)", path="/tmp/bp_loop.py")
    assert trace.status == "complete", trace.error
    assert trace.error is None
    assert "BdbQuit" not in (trace.error or "")
    assert "(Pdb)" not in trace.stdout
    # the result: total 0+1+2, no read of stdin, pdb never imported
    returns = [f for f in trace.frames if f.event == "return" and f.function == "walk"]
    assert [f.value for f in returns] == ["(3, 0, False)"]
    # only frames of the traced function: pdb's own code never ran under the tracer
    assert {f.function for f in trace.frames} == {"walk"}
    first = [f for f in trace.frames if f.event == "line" and f.line == FIRST_BP]
    second = [f for f in trace.frames if f.event == "line" and f.line == SECOND_BP]
    assert [(f.locals["i"], f.locals["total"]) for f in first] == [("0", "0"), ("1", "1"), ("2", "3")]
    assert [(f.locals["i"], f.locals["doubled"]) for f in second] == [("0", "0"), ("1", "2"), ("2", "6")]
    # every visit after the first breakpoint is still there: the last lines ran
    lines = [f.line for f in trace.frames if f.event == "line"]
    assert lines[-2:] == [FIRST_BP + 3, FIRST_BP + 4]


def test_breakpoint_with_arguments_is_a_no_op_too() -> None:
    source = "def f(x):\n    breakpoint(x, header='stop')\n    y = x + 1\n    return y\n"
    trace = run_trace(source, "f(1)", path="/tmp/bp_args.py")
    assert trace.status == "complete", trace.error
    assert trace.error is None
    assert [(f.event, f.line) for f in trace.frames] == [("call", 1), ("line", 2), ("line", 3), ("line", 4), ("return", 4)]
    assert trace.frames[-1].value == "2"
