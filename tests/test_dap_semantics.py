"""The stepping, breakpoint and exception semantics a Python user expects
(pdb's and debugpy's), through the real DAP client over stdio, on the exec
backend and on the replay backend (a model backend: the real run fed back
through the model path, so a step over a call is a forced return unless a
breakpoint may be inside). One test per divergence that issue 13 found
side by side with debugpy; each fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from dap_client.pyclient import DapClient
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import run_trace

BACKENDS = ["exec", "replay"]

PROGRAM = '''\
def sq(x):
    y = x * x
    return y


def both(a, b):
    s = sq(a) + sq(b)
    return s


def leaf(n):
    m = n + 1
    return m


def mid(n):
    k = leaf(n)
    k = k * 2
    return k


def top(n):
    v = mid(n)
    return v + 1


def keyf(w):
    k = len(w)
    return k


def sort_words(ws):
    out = sorted(ws, key=keyf)
    n = len(out)
    return out


def gen(n):
    i = 0
    while i < n:
        yield i
        i += 1


def use_gen(n):
    total = 0
    for v in gen(n):
        total += v
    return total


def multi(a):
    r = max(
        a,
        sq(a),
    )
    return r


def boom(x):
    if x > 1:
        raise ValueError("too big: %d" % x)
    return x


def catches(x):
    try:
        boom(x)
    except ValueError:
        x = 0
    return x


def uncaught(x):
    y = boom(x)
    return y


def counter(n):
    count = 1
    count = count + n
    return count


def relay(x):
    z = boom(x)
    return z


def catches_far(x):
    try:
        relay(x)
    except ValueError:
        x = 0
    return x
'''


def line_of(text: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of PROGRAM that is exactly ``text`` (stripped)."""
    hits = [i for i, line in enumerate(PROGRAM.splitlines(), 1) if line.strip() == text]
    return hits[nth - 1]


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "semantics.py"
    path.write_text(PROGRAM)
    return path


def truth_of(path: Path, call: str) -> Trace:
    trace = run_trace(path.read_text(), call, function=call.split("(")[0], path=str(path))
    assert trace.frames, trace.error
    return trace


def start(dap: DapClient, program: Path, call: str, backend: str, *, filters: list[str] | None = None,
          breakpoints: list[dict] | None = None, stop_on_entry: bool = False) -> dict:
    dap.req("initialize", {"adapterID": "neuraldbg", "linesStartAt1": True, "columnsStartAt1": True})
    dap.req("launch", {"program": str(program), "function": call.split("(")[0], "args": call, "backend": backend,
                       "allowExecution": True, "stopOnEntry": stop_on_entry}, timeout=120)
    dap.wait_event("initialized")
    if breakpoints is not None:
        dap.set_breakpoints(program, breakpoints)
    if filters is not None:
        dap.req("setExceptionBreakpoints", {"filters": filters})
    dap.req("configurationDone")
    return dap.wait_stop()


def frames_of(dap: DapClient) -> list[tuple[str, int]]:
    return [(f["name"], f["line"]) for f in dap.stack()]


def run_to(dap: DapClient, program: Path, line: int) -> dict:
    """Continue to ``line`` with a breakpoint that is removed again."""
    dap.set_breakpoints(program, [{"line": line}])
    stop = dap.step("continue")
    dap.set_breakpoints(program, [])
    return stop


# -- Step Out from a (return) stop: the caller, not the grand-caller ------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_step_out_from_a_return_stop_goes_to_the_caller(dap: DapClient, program: Path, backend: str) -> None:
    ret = line_of("return m")
    start(dap, program, "top(3)", backend, breakpoints=[{"line": ret}])
    assert frames_of(dap) == [("leaf", ret), ("mid", line_of("k = leaf(n)")), ("top", line_of("v = mid(n)"))]
    assert dap.step("next")["reason"] == "step"  # leaf's return event: a stop in leaf, with its value
    assert frames_of(dap)[0] == ("leaf", ret)
    assert dap.locals()["(return)"] == "4"
    assert dap.step("stepOut")["reason"] == "step"
    # in mid, on the line that called leaf (the rest of mid is still to run), not in top
    assert frames_of(dap) == [("mid", line_of("k = leaf(n)")), ("top", line_of("v = mid(n)"))]
    assert dap.locals()["(return) leaf"] == "4"
    assert dap.step("next")["reason"] == "step"
    assert frames_of(dap)[0] == ("mid", line_of("k = k * 2"))
    assert dap.where()[1] == {"n": "3", "k": "4"}


# -- sq(a) + sq(b): Step Out of the first sq stops on the calling line ---------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_step_out_of_the_first_of_two_calls_on_a_line(dap: DapClient, program: Path, backend: str) -> None:
    calls = line_of("s = sq(a) + sq(b)")
    start(dap, program, "both(2, 3)", backend, stop_on_entry=True)
    assert dap.step("next")["reason"] == "step"
    assert frames_of(dap) == [("both", calls)]
    assert dap.step("stepIn")["reason"] == "step"
    assert frames_of(dap) == [("sq", line_of("y = x * x")), ("both", calls)]
    assert dap.step("stepOut")["reason"] == "step"
    assert frames_of(dap) == [("both", calls)]  # not the def line of the second sq
    assert dap.locals()["(return) sq"] == "4"
    assert dap.step("stepIn")["reason"] == "step"  # into the second call, its first line
    assert frames_of(dap) == [("sq", line_of("y = x * x")), ("both", calls)]
    assert dap.where()[1] == {"x": "3"}
    assert dap.step("stepOut")["reason"] == "step"
    assert dap.step("next")["reason"] == "step"
    assert dap.where() == (line_of("return s"), {"a": "2", "b": "3", "s": "13"})


# -- next after a callback returns: the next callback's first line, no call skipped ---------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_next_after_a_callback_returns(dap: DapClient, program: Path, backend: str) -> None:
    ret = line_of("return k", 2)  # keyf's (mid has one too)
    start(dap, program, "sort_words(['ab', 'c'])", backend, breakpoints=[{"line": ret}])
    assert dap.where() == (ret, {"w": "'ab'", "k": "2"})
    dap.set_breakpoints(program, [])
    assert dap.step("next")["reason"] == "step"  # keyf's return event
    assert frames_of(dap)[0] == ("keyf", ret)
    # debugpy: a step over that leaves its frame becomes a step in (the next line anywhere):
    # sorted calls keyf again, and the step stops on that call's first line, not on its def line
    assert dap.step("next")["reason"] == "step"
    assert dap.where() == (line_of("k = len(w)"), {"w": "'c'"})
    assert frames_of(dap)[1] == ("sort_words", line_of("out = sorted(ws, key=keyf)"))


# -- Step In from a (return) stop: the caller on the calling line, as pydevd stops a step in on a return --
@pytest.mark.parametrize("backend", BACKENDS)
def test_step_in_from_a_return_stop_goes_to_the_caller(dap: DapClient, program: Path, backend: str) -> None:
    ret = line_of("return m")
    start(dap, program, "top(3)", backend, breakpoints=[{"line": ret}])
    dap.set_breakpoints(program, [])
    assert dap.step("stepIn")["reason"] == "step"  # leaf's return event
    assert frames_of(dap)[0] == ("leaf", ret) and dap.locals()["(return)"] == "4"
    assert dap.step("stepIn")["reason"] == "step"
    assert frames_of(dap) == [("mid", line_of("k = leaf(n)")), ("top", line_of("v = mid(n)"))]
    assert dap.locals()["(return) leaf"] == "4"
    assert dap.step("stepIn")["reason"] == "step"
    assert dap.where() == (line_of("k = k * 2"), {"n": "3", "k": "4"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_in_from_a_callbacks_return_stops_on_the_calling_line(dap: DapClient, program: Path,
                                                                 backend: str) -> None:
    ret = line_of("return k", 2)  # keyf's
    start(dap, program, "sort_words(['ab', 'c'])", backend, breakpoints=[{"line": ret, "hitCondition": "2"}])
    dap.set_breakpoints(program, [])
    assert dap.where() == (ret, {"w": "'c'", "k": "1"})  # the last call sorted makes
    assert dap.step("stepIn")["reason"] == "step"
    assert dap.step("stepIn")["reason"] == "step"
    # in sort_words on the sorted(...) line, not past it on the next line
    assert frames_of(dap) == [("sort_words", line_of("out = sorted(ws, key=keyf)"))]
    assert dap.locals()["(return) keyf"] == "1"


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_in_from_a_yield_goes_to_the_consumers_next_line(dap: DapClient, program: Path, backend: str) -> None:
    start(dap, program, "use_gen(2)", backend, breakpoints=[{"line": line_of("yield i")}])
    dap.set_breakpoints(program, [])
    assert dap.step("stepIn")["reason"] == "step"  # the yield's return event
    assert frames_of(dap)[0] == ("gen", line_of("yield i"))
    assert dap.step("stepIn")["reason"] == "step"
    # pydevd makes no stop on a yield: the consumer's next line, with the item bound
    assert dap.where() == (line_of("total += v"), {"n": "2", "total": "0", "v": "0"})


# -- Step Over and Step Out stop at breakpoints inside the code they pass ----------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_step_over_stops_at_a_breakpoint_inside_the_call(dap: DapClient, program: Path, backend: str) -> None:
    calls = line_of("s = sq(a) + sq(b)")
    start(dap, program, "both(2, 3)", backend, stop_on_entry=True)
    assert dap.step("next")["reason"] == "step"
    assert frames_of(dap) == [("both", calls)]
    dap.set_breakpoints(program, [{"line": line_of("return y")}])
    stop = dap.step("next")
    assert stop["reason"] == "breakpoint"
    assert frames_of(dap) == [("sq", line_of("return y")), ("both", calls)]
    assert dap.where()[1] == {"x": "2", "y": "4"}
    assert dap.step("stepOut")["reason"] == "step"  # the calling line, before the second sq runs
    assert frames_of(dap) == [("both", calls)]
    stop = dap.step("next")  # the second sq has the breakpoint too: step over stops there
    assert stop["reason"] == "breakpoint"
    assert dap.where()[1] == {"x": "3", "y": "9"}
    dap.set_breakpoints(program, [])
    assert dap.step("stepOut")["reason"] == "step"
    assert frames_of(dap) == [("both", calls)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_out_stops_at_a_breakpoint_in_a_callee(dap: DapClient, program: Path, backend: str) -> None:
    start(dap, program, "top(3)", backend, breakpoints=[{"line": line_of("k = leaf(n)")}])
    assert frames_of(dap)[0] == ("mid", line_of("k = leaf(n)"))
    dap.set_breakpoints(program, [{"line": line_of("m = n + 1")}])
    assert dap.step("stepOut")["reason"] == "breakpoint"
    assert frames_of(dap)[0] == ("leaf", line_of("m = n + 1"))
    dap.set_breakpoints(program, [])
    # without a breakpoint inside, step over a call is the caller's next line
    stop = dap.step("stepOut")
    assert stop["reason"] == "step" and frames_of(dap)[0] == ("mid", line_of("k = leaf(n)"))
    assert dap.step("next")["reason"] == "step"
    assert frames_of(dap)[0] == ("mid", line_of("k = k * 2"))


# -- breakpoints and log points in callbacks are verified and fire ------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_breakpoints_in_a_callback_fire(dap: DapClient, program: Path, backend: str) -> None:
    dap.req("initialize", {"adapterID": "neuraldbg"})
    dap.req("launch", {"program": str(program), "function": "sort_words", "args": "sort_words(['ab', 'c'])",
                       "backend": backend, "allowExecution": True}, timeout=120)
    dap.wait_event("initialized")
    bps = dap.set_breakpoints(program, [{"line": line_of("k = len(w)")}, {"line": line_of("return k", 2), "logMessage": "k={k}"}])
    assert [b["verified"] for b in bps] == [True, True]
    dap.req("configurationDone")
    stop = dap.wait_stop()
    assert stop["reason"] == "breakpoint" and stop["hitBreakpointIds"] == [bps[0]["id"]]
    assert dap.where() == (line_of("k = len(w)"), {"w": "'ab'"})
    assert dap.step("continue")["reason"] == "breakpoint"
    assert dap.where() == (line_of("k = len(w)"), {"w": "'c'"})
    assert dap.step("continue")["terminated"]
    assert [o for o in dap.outputs("console") if o.startswith("k=")] == ["k=2\n", "k=1\n"]


# -- a breakpoint on a yield line: once per item, current locals, true hit counts ---------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_breakpoint_on_a_yield_stops_once_per_item(dap: DapClient, program: Path, backend: str) -> None:
    yield_line = line_of("yield i")
    stop = start(dap, program, "use_gen(3)", backend, breakpoints=[{"line": yield_line}])
    seen = []
    while "reason" in stop:
        assert stop["reason"] == "breakpoint"
        assert frames_of(dap)[0] == ("gen", yield_line)
        seen.append(dap.where()[1]["i"])
        stop = dap.step("continue")
    assert seen == ["0", "1", "2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hit_counts_on_a_yield_line(dap: DapClient, program: Path, backend: str) -> None:
    stop = start(dap, program, "use_gen(3)", backend, breakpoints=[{"line": line_of("yield i"), "hitCondition": "2"}])
    assert stop["reason"] == "breakpoint"
    assert dap.where()[1] == {"n": "3", "i": "1"}  # the second item, not the first one's resumption
    assert dap.step("continue")["terminated"]


# -- a breakpoint on a continuation line of a multi-line call --------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_breakpoint_on_a_continuation_line(dap: DapClient, program: Path, backend: str, tmp_path: Path) -> None:
    arg_line = line_of("sq(a),")
    truth = truth_of(program, "multi(3)")
    # what CPython reports: a line event on the argument's own line, before sq runs
    at = [i for i, f in enumerate(truth.frames) if f.line == arg_line and f.event == "line"]
    assert len(at) == 1 and truth.frames[at[0] + 1].function == "sq"
    dap.req("initialize", {"adapterID": "neuraldbg"})
    dap.req("launch", {"program": str(program), "function": "multi", "args": "multi(3)", "backend": backend,
                       "allowExecution": True}, timeout=120)
    dap.wait_event("initialized")
    [bp] = dap.set_breakpoints(program, [{"line": arg_line}])
    assert bp["verified"] and bp["line"] == arg_line
    dap.req("configurationDone")
    assert dap.wait_stop()["reason"] == "breakpoint"
    assert frames_of(dap) == [("multi", arg_line)]
    assert dap.where()[1] == {"a": "3"}  # before the call, not after the statement (r unset)
    assert dap.trace()["step"] == at[0]


def test_a_continuation_line_without_line_events_binds_to_its_statement(dap: DapClient, tmp_path: Path) -> None:
    program = tmp_path / "consts.py"
    program.write_text("def f():\n    xs = [\n        1,\n        2,\n    ]\n    return xs\n")
    dap.req("initialize", {"adapterID": "neuraldbg"})
    dap.req("launch", {"program": str(program), "function": "f", "args": "f()", "allowExecution": True}, timeout=120)
    dap.wait_event("initialized")
    truth = truth_of(program, "f()")
    lines = {f.line for f in truth.frames if f.event == "line"}
    [bp] = dap.set_breakpoints(program, [{"line": 4}])
    assert bp["verified"]
    assert bp["line"] == (4 if 4 in lines else 2)  # the line the interpreter reports, else the statement's
    dap.req("configurationDone")
    assert dap.wait_stop()["reason"] == "breakpoint"
    assert dap.where()[0] == bp["line"]


# -- exceptions: debugpy's filters, the uncaught stop, exceptionInfo, the traceback --------------
def test_exception_filters_are_debugpys(dap: DapClient) -> None:
    caps = dap.req("initialize", {"adapterID": "neuraldbg"})
    filters = {f["filter"]: (f["label"], f["default"]) for f in caps["exceptionBreakpointFilters"]}
    assert filters == {"raised": ("Raised Exceptions", False), "uncaught": ("Uncaught Exceptions", True)}
    assert caps["supportsExceptionInfoRequest"] is True


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_uncaught_exception_stops_before_the_end(dap: DapClient, program: Path, backend: str) -> None:
    raise_line = line_of('raise ValueError("too big: %d" % x)')
    stop = start(dap, program, "uncaught(5)", backend, filters=["uncaught"])
    assert stop["reason"] == "exception"
    assert stop["text"] == "ValueError"
    assert frames_of(dap) == [("boom", raise_line), ("uncaught", line_of("y = boom(x)"))]
    info = dap.req("exceptionInfo", {"threadId": 1})
    assert info["exceptionId"] == "ValueError" and info["breakMode"] == "unhandled"
    predicted = backend != "exec"
    assert info["description"] == ("predicted: too big: 5" if predicted else "too big: 5")
    assert stop["description"] == info["description"]
    trace_text = info["details"]["stackTrace"]
    assert trace_text.startswith("Traceback (most recent call last):\n")
    assert f'line {line_of("y = boom(x)")}, in uncaught\n    y = boom(x)\n' in trace_text
    assert trace_text.endswith(f'line {raise_line}, in boom\n    raise ValueError("too big: %d" % x)\nValueError: too big: 5\n')
    assert dap.step("continue") == {"terminated": True, "exitCode": 1}
    assert "".join(dap.outputs("stderr")).endswith("ValueError: too big: 5\n")  # in the Debug Console


@pytest.mark.parametrize("backend", BACKENDS)
def test_uncaught_is_on_by_default_and_a_caught_exception_does_not_stop(dap: DapClient, program: Path, backend: str) -> None:
    assert start(dap, program, "catches(5)", backend) == {"terminated": True, "exitCode": 0}  # no filters sent: the defaults
    dap.shutdown()
    other = DapClient.spawn()
    try:
        stop = start(other, program, "uncaught(5)", backend)
        assert stop["reason"] == "exception"
        assert "exceptionInfo" and other.req("exceptionInfo", {"threadId": 1})["breakMode"] == "unhandled"
        assert other.step("continue")["exitCode"] == 1
    finally:
        other.shutdown()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_uncaught_filter_off_ends_with_the_traceback(dap: DapClient, program: Path, backend: str) -> None:
    assert start(dap, program, "uncaught(5)", backend, filters=[]) == {"terminated": True, "exitCode": 1}
    err = "".join(dap.outputs("stderr"))
    assert "Traceback (most recent call last):" in err and err.endswith("ValueError: too big: 5\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_raised_stops_where_raised_and_where_it_arrives(dap: DapClient, program: Path, backend: str) -> None:
    # as debugpy does: the raise, then each frame the exception passes through, not where it was not raised
    stop = start(dap, program, "catches(5)", backend, filters=["raised"])
    assert stop["reason"] == "exception"
    assert frames_of(dap)[0] == ("boom", line_of('raise ValueError("too big: %d" % x)'))
    assert dap.req("exceptionInfo", {"threadId": 1})["breakMode"] == "always"
    stop = dap.step("continue")
    assert stop["reason"] == "exception" and stop["text"] == "ValueError"
    assert frames_of(dap) == [("catches", line_of("boom(x)"))]
    assert dap.step("continue") == {"terminated": True, "exitCode": 0}  # caught there: the call returns 0


# -- stepping through an exception: no stop on its events, the frames it leaves show their callers ---
@pytest.mark.parametrize("backend", BACKENDS)
def test_next_from_a_raising_line_lands_where_the_exception_arrives(dap: DapClient, program: Path, backend: str) -> None:
    raise_line = line_of('raise ValueError("too big: %d" % x)')
    start(dap, program, "catches_far(5)", backend, breakpoints=[{"line": raise_line}])
    assert frames_of(dap)[0] == ("boom", raise_line)
    dap.set_breakpoints(program, [])
    # boom and relay are left by the exception: not their exception events, not a (return) None,
    # but catches_far on the line that called relay (debugpy's stop there), then the handler
    assert dap.step("next")["reason"] == "step"
    assert frames_of(dap) == [("catches_far", line_of("relay(x)"))]
    assert dap.locals()["(return) relay"] == "None"  # what debugpy shows for a frame an exception left
    assert dap.step("next")["reason"] == "step"
    assert frames_of(dap) == [("catches_far", line_of("except ValueError:", 2))]
    assert dap.step("next")["reason"] == "step"
    assert dap.where() == (line_of("x = 0", 2), {"x": "5"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_next_from_an_uncaught_raise_goes_to_the_uncaught_stop(dap: DapClient, program: Path, backend: str) -> None:
    raise_line = line_of('raise ValueError("too big: %d" % x)')
    start(dap, program, "uncaught(5)", backend, filters=["uncaught"], breakpoints=[{"line": raise_line}])
    dap.set_breakpoints(program, [])
    stop = dap.step("next")
    assert stop["reason"] == "exception" and stop["text"] == "ValueError"
    assert frames_of(dap)[0] == ("boom", raise_line)
    assert dap.step("next") == {"terminated": True, "exitCode": 1}


# -- thread ids ---------------------------------------------------------------------------
def test_an_unknown_thread_is_an_error(dap: DapClient, program: Path) -> None:
    start(dap, program, "both(2, 3)", "exec", stop_on_entry=True)
    for command in ("stackTrace", "continue", "next", "stepIn", "stepOut", "stepBack", "exceptionInfo"):
        assert "no thread 7" in dap.fail(command, {"threadId": 7})
    assert frames_of(dap) == [("both", line_of("def both(a, b):"))]  # nothing moved
    assert dap.step("next")["reason"] == "step"


# -- setVariable on a real run's backends: a new call where it can, a one-line refusal where not ----
@pytest.mark.parametrize("backend", BACKENDS)
def test_set_variable_at_the_call_runs_the_call_again(dap: DapClient, program: Path, backend: str) -> None:
    start(dap, program, "counter(1)", backend, stop_on_entry=True)
    ref = dap.req("scopes", {"frameId": dap.stack()[0]["id"]})["scopes"][0]["variablesReference"]
    body = dap.req("setVariable", {"variablesReference": ref, "name": "n", "value": "100"})
    assert body["value"] == "100"
    said = [o for o in dap.outputs("console") if "ran counter(n=100)" in o]
    assert len(said) == 1 and f"for real on the {backend} backend" in said[0]
    assert dap.locals() == {"n": "100"}
    dap.set_breakpoints(program, [{"line": line_of("return count", 1)}])
    assert dap.step("continue")["reason"] == "breakpoint"
    assert dap.where()[1] == {"n": "100", "count": "101"}  # the edited run's value, not the real run's 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_variable_past_the_call_is_refused_on_a_real_run(dap: DapClient, program: Path, backend: str) -> None:
    start(dap, program, "counter(1)", backend, breakpoints=[{"line": line_of("count = count + n")}])
    ref = dap.req("scopes", {"frameId": dap.stack()[0]["id"]})["scopes"][0]["variablesReference"]
    message = dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": "100"})
    assert f"not supported on the {backend} backend" in message and "cannot be resumed" in message
    assert "\n" not in message
    assert dap.step("next")["reason"] == "step"
    assert dap.where()[1] == {"n": "1", "count": "2"}


def test_set_variable_of_an_item_is_refused(dap: DapClient, program: Path) -> None:
    start(dap, program, "sort_words(['ab', 'c'])", "replay", breakpoints=[{"line": line_of("n = len(out)")}])
    ref = dap.req("scopes", {"frameId": dap.stack()[0]["id"]})["scopes"][0]["variablesReference"]
    out = next(v for v in dap.req("variables", {"variablesReference": ref})["variables"] if v["name"] == "out")
    assert "item inside it" in dap.fail("setVariable", {"variablesReference": out["variablesReference"], "name": "0",
                                                        "value": "'x'"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_raised_and_uncaught_together(dap: DapClient, program: Path, backend: str) -> None:
    # debugpy: each frame the exception passes through, then the uncaught stop where it was raised, then the end
    raise_line = line_of('raise ValueError("too big: %d" % x)')
    stop = start(dap, program, "uncaught(5)", backend, filters=["raised", "uncaught"])
    assert stop["reason"] == "exception" and frames_of(dap)[0] == ("boom", raise_line)
    assert dap.req("exceptionInfo", {"threadId": 1})["breakMode"] == "always"
    assert dap.step("continue")["reason"] == "exception"
    assert frames_of(dap) == [("uncaught", line_of("y = boom(x)"))]
    assert dap.step("continue")["reason"] == "exception"
    assert frames_of(dap)[0] == ("boom", raise_line)
    assert dap.req("exceptionInfo", {"threadId": 1})["breakMode"] == "unhandled"
    assert dap.step("continue") == {"terminated": True, "exitCode": 1}
