"""The debug adapter over stdio (``python -m neuraldbg.dap``), on the exec
backend and on the replay backend (a real run fed back through the model
path), checked against the ground-truth trace of neuraldbg.tracer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dap_client.pyclient import EXAMPLES, DapClient
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import run_trace

BACKENDS = ["exec", "replay"]
STRAWBERRY = EXAMPLES / "strawberry.py"
STRAWBERRY_CALL = 'count_letter("strawberry", "r")'
RECURSION = EXAMPLES / "recursion.py"
RAISES = EXAMPLES / "raises.py"


def truth_of(path: Path, function: str, call: str) -> Trace:
    trace = run_trace(path.read_text(), call, function=function, path=str(path))
    assert trace.frames, trace.error
    return trace


def steps_on(truth: Trace, line: int) -> list[int]:
    return [i for i, f in enumerate(truth.frames) if f.line == line and f.event in ("line", "call")]


def assert_at(dap: DapClient, truth: Trace, step: int) -> None:
    line, names = dap.where()
    assert line == truth.frames[step].line, f"expected line {truth.frames[step].line} (step {step}), stopped at {line}"
    assert names == truth.locals_at(step)


@pytest.mark.parametrize("backend", BACKENDS)
def test_breakpoints_stop_where_the_real_run_is(dap: DapClient, backend: str) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    expected = steps_on(truth, 13)
    assert len(expected) == 3
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                     breakpoints=[{"line": 13}])
    for n, step in enumerate(expected):
        if n:
            stop = dap.step("continue")
        assert stop["reason"] == "breakpoint"
        assert len(stop["hitBreakpointIds"]) == 1
        assert_at(dap, truth, step)
        assert dap.trace()["step"] == step  # continue steps into everything: frames line up with the truth
    assert dap.step("continue") == {"terminated": True, "exitCode": 0}
    assert f"{backend} backend" in dap.outputs("console")[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conditional_breakpoints_use_the_predicted_locals(dap: DapClient, backend: str) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    condition = "ch == letter and len(word) > 5 and count >= 1"

    def holds(step: int) -> bool:
        names = {k: ast.literal_eval(v) for k, v in truth.locals_at(step).items()}
        return names["ch"] == names["letter"] and len(names["word"]) > 5 and names["count"] >= 1

    expected = [i for i in steps_on(truth, 12) if holds(i)]
    assert len(expected) == 2
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                     breakpoints=[{"line": 12, "condition": condition}])
    for n, step in enumerate(expected):
        if n:
            stop = dap.step("continue")
        assert stop["reason"] == "breakpoint"
        assert_at(dap, truth, step)
    assert dap.step("continue")["terminated"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hit_counts(dap: DapClient, backend: str) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    loop, inc = steps_on(truth, 11), steps_on(truth, 13)
    assert len(loop) == 11
    # every 4th visit of the loop header; the increment from its 2nd time on
    expected = sorted([loop[3], loop[7]] + inc[1:])
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                     breakpoints=[{"line": 11, "hitCondition": "%4"}, {"line": 13, "hitCondition": ">=2"}])
    for n, step in enumerate(expected):
        if n:
            stop = dap.step("continue")
        assert stop["reason"] == "breakpoint", stop
        assert_at(dap, truth, step)
    assert dap.step("continue")["terminated"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_points_print_instead_of_stopping(dap: DapClient, backend: str) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    expected = []
    for step in steps_on(truth, 12):
        names = {k: ast.literal_eval(v) for k, v in truth.locals_at(step).items()}
        expected.append(f"ch={names['ch']} count={names['count']} {{braces}} <error: name 'nope' is not defined at this step>\n")
    end = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                    breakpoints=[{"line": 12, "logMessage": "ch={ch} count={count} {{braces}} {nope}"}])
    assert end == {"terminated": True, "exitCode": 0}
    logs = [o for o in dap.outputs("console") if o.startswith("ch=")]
    assert logs == expected


def expect_next(truth: Trace, t: int) -> int:
    depth = truth.frames[t].depth
    return next(i for i in range(t + 1, len(truth.frames)) if truth.frames[i].depth <= depth)


def expect_step_in(truth: Trace, t: int) -> int:
    i = t + 1
    return i + 1 if truth.frames[i].event == "call" and truth.frames[i].depth > 0 else i


def expect_step_out(truth: Trace, t: int) -> int:
    """The return of the current frame: the stop is then in the caller, on
    the calling line (debugpy's step out)."""
    depth = truth.frames[t].depth
    return next(i for i in range(t + 1, len(truth.frames)) if truth.frames[i].event == "return" and truth.frames[i].depth <= depth)


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_in_over_out_and_back(dap: DapClient, backend: str) -> None:
    truth = truth_of(RECURSION, "fib_list", "fib_list(3)")
    stop = dap.start(RECURSION, allowExecution=True, function="fib_list", args="fib_list(3)", backend=backend, stopOnEntry=True)
    assert stop["reason"] == "entry"
    t = 0
    assert_at(dap, truth, t)
    threads = dap.req("threads")["threads"]
    assert threads == [{"id": 1, "name": "simulated fib_list"}]

    for _ in range(3):  # out = [] / for i in range(k) / out.append(fib(i))
        assert dap.step("next")["reason"] == "step"
        t = expect_next(truth, t)
        assert_at(dap, truth, t)
    assert truth.frames[t].line == 17

    # into fib: its first line, with the caller below it on the stack
    assert dap.step("stepIn")["reason"] == "step"
    t = expect_step_in(truth, t)
    assert_at(dap, truth, t)
    stack = dap.stack()
    assert [(f["name"], f["line"]) for f in stack] == [("fib", 22), ("fib_list", 17)]
    caller = dap.locals(stack[1]["id"])
    assert caller == truth.locals_at(3)
    assert all(f["source"]["path"] == str(RECURSION) for f in stack)

    # back out of the callee's entry: the caller's line again
    before_in = 3
    assert dap.step("stepBack")["reason"] == "step"
    assert_at(dap, truth, before_in)
    assert len(dap.stack()) == 1
    assert dap.step("stepIn")["reason"] == "step"  # forward again, served from the simulation's memory
    assert_at(dap, truth, t)

    assert dap.step("next")["reason"] == "step"
    t = expect_next(truth, t)
    assert_at(dap, truth, t)

    assert dap.step("stepOut")["reason"] == "step"
    r = expect_step_out(truth, t)
    assert dap.trace()["step"] == r
    # in the caller on the calling line, mid-way: its locals before the line, the callee's result beside them
    assert [(f["name"], f["line"]) for f in dap.stack()] == [("fib_list", 17)]
    assert dap.where() == (17, truth.locals_at(3))
    assert dap.locals()["(return) fib"] == truth.frames[r].value
    assert dap.step("next")["reason"] == "step"  # the rest of the line: the loop header
    t = r + 1
    assert_at(dap, truth, t)

    # next over the second call: the result is there without entering fib
    assert dap.step("next")["reason"] == "step"
    t = expect_next(truth, t)
    assert truth.frames[t].line == 17
    assert_at(dap, truth, t)
    assert dap.step("next")["reason"] == "step"
    t = expect_next(truth, t)
    assert_at(dap, truth, t)
    assert truth.locals_at(t)["out"] == "[0, 1]"

    # step back over a stepped-over call lands on the calling line
    assert dap.step("stepBack")["reason"] == "step"
    assert dap.where()[0] == 17
    assert dap.step("next")["reason"] == "step"
    assert_at(dap, truth, t)

    # step out of the entry function runs to the end
    assert dap.step("stepOut") == {"terminated": True, "exitCode": 0}


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_continue_and_step_back(dap: DapClient, backend: str) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    hits = steps_on(truth, 13)
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                     breakpoints=[{"line": 13}])
    dap.step("continue")
    dap.step("continue")
    assert_at(dap, truth, hits[2])

    assert dap.step("stepBack")["reason"] == "step"
    assert_at(dap, truth, hits[2] - 1)
    assert dap.step("next")["reason"] == "breakpoint"  # a step onto a breakpoint's line hits it (debugpy says so too)
    assert_at(dap, truth, hits[2])

    stop = dap.step("reverseContinue")
    assert stop["reason"] == "breakpoint"
    assert_at(dap, truth, hits[1])
    stop = dap.step("reverseContinue")
    assert stop["reason"] == "breakpoint"
    assert_at(dap, truth, hits[0])
    stop = dap.step("reverseContinue")
    assert stop["reason"] == "entry"
    assert_at(dap, truth, 0)
    # forward again: the same stops, the same locals
    for step in hits:
        assert dap.step("continue")["reason"] == "breakpoint"
        assert_at(dap, truth, step)
    assert dap.step("continue") == {"terminated": True, "exitCode": 0}


GROUPING = '''\
def group(words):
    by_len = {}
    seen = set()
    for w in words:
        by_len.setdefault(len(w), []).append(w)
        seen.add(w[0])
    pairs = [(k, v) for k, v in sorted(by_len.items())]
    return pairs
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_variables_expand_and_evaluate_safely(dap: DapClient, backend: str, tmp_path: Path) -> None:
    program = tmp_path / "grouping.py"
    program.write_text(GROUPING)
    call = "group(['ab', 'c', 'de'])"
    truth = truth_of(program, "group", call)
    step = steps_on(truth, 8)[0]
    stop = dap.start(program, allowExecution=True, function="group", args=call, backend=backend, breakpoints=[{"line": 8}])
    assert stop["reason"] == "breakpoint"
    assert_at(dap, truth, step)
    frame_id = dap.stack()[0]["id"]
    scope = dap.req("scopes", {"frameId": frame_id})["scopes"][0]
    assert scope["name"] == "Locals"
    variables = {v["name"]: v for v in dap.req("variables", {"variablesReference": scope["variablesReference"]})["variables"]}
    assert variables["by_len"]["value"] == "{2: ['ab', 'de'], 1: ['c']}"
    assert variables["by_len"]["type"] == "dict"

    def kids(var: dict) -> dict[str, dict]:
        assert var["variablesReference"] > 0, var
        return {v["name"]: v for v in dap.req("variables", {"variablesReference": var["variablesReference"]})["variables"]}

    by_len = kids(variables["by_len"])
    assert {k: v["value"] for k, v in by_len.items()} == {"2": "['ab', 'de']", "1": "['c']"}
    inner = kids(by_len["2"])
    assert {k: v["value"] for k, v in inner.items()} == {"0": "'ab'", "1": "'de'"}
    assert inner["1"]["evaluateName"] == "by_len[2][1]"
    assert inner["1"]["variablesReference"] == 0
    pairs = kids(variables["pairs"])
    assert pairs["0"]["value"] == "(1, ['c'])"
    assert kids(pairs["0"])["1"]["value"] == "['c']"
    assert sorted(v["value"] for v in kids(variables["seen"]).values()) == ["'a'", "'c'", "'d'"]
    assert variables["w"]["variablesReference"] == 0  # a string does not expand

    def ev(expr: str, context: str = "watch") -> dict:
        return dap.req("evaluate", {"expression": expr, "frameId": frame_id, "context": context})

    assert ev("by_len", "hover")["result"] == "{2: ['ab', 'de'], 1: ['c']}"
    assert ev("by_len", "hover")["variablesReference"] > 0
    assert ev("by_len[2][1]")["result"] == "'de'"
    assert ev("len(seen) + len(pairs) * 10")["result"] == "23"
    assert ev("sorted(seen)")["result"] == "['a', 'c', 'd']"
    assert ev("pairs[0][1] == ['c'] and w in words")["result"] == "True"
    assert ev("words[::-1]")["result"] == "['de', 'c', 'ab']"
    assert "attribute access is not allowed" in dap.fail("evaluate", {"expression": "by_len.keys()", "frameId": frame_id})
    assert "not defined" in dap.fail("evaluate", {"expression": "nope + 1", "frameId": frame_id})
    marker = tmp_path / "owned"
    message = dap.fail("evaluate", {"expression": f"open({str(marker)!r}, 'w')", "frameId": frame_id})
    assert "calling open is not allowed" in message
    assert "not allowed" in dap.fail("evaluate", {"expression": "__import__('os').system('true')", "frameId": frame_id})
    assert "calling __import__ is not allowed" in dap.fail("evaluate", {"expression": "__import__('os')", "frameId": frame_id})
    assert "too large" in dap.fail("evaluate", {"expression": "'x' * 10 ** 12", "frameId": frame_id})
    assert "syntax error" in dap.fail("evaluate", {"expression": "w +", "frameId": frame_id})
    assert not marker.exists()
    assert dap.step("continue")["terminated"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_predicted_exception_stops_when_asked(dap: DapClient, backend: str) -> None:
    truth = truth_of(RAISES, "average", "average([])")
    exc = next(i for i, f in enumerate(truth.frames) if f.event == "exception")
    stop = dap.start(RAISES, allowExecution=True, function="average", args="average([])", backend=backend, exceptions=True)
    assert stop["reason"] == "exception"
    assert "ZeroDivisionError" in stop["text"]
    assert dap.where() == (truth.frames[exc].line, truth.locals_at(exc))
    assert "ZeroDivisionError" in dap.locals()["(exception)"]
    assert dap.step("continue") == {"terminated": True, "exitCode": 1}


def test_exception_filter_off_runs_to_the_end(dap: DapClient) -> None:
    # the file's own __main__ call is the input: parse_port("70000") raises
    end = dap.start(RAISES, allowExecution=True, function="parse_port", exceptions=False)
    assert end == {"terminated": True, "exitCode": 1}


def test_restart_runs_again(dap: DapClient) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    hits = steps_on(truth, 13)
    dap.start(STRAWBERRY, allowExecution=True, function="count_letter", breakpoints=[{"line": 13}])  # doctest input
    dap.step("continue")
    assert_at(dap, truth, hits[1])
    dap.req("restart", {})
    assert dap.wait_stop()["reason"] == "breakpoint"
    assert_at(dap, truth, hits[0])  # hit counts and position start over


def test_what_the_real_run_printed_is_output(dap: DapClient, tmp_path: Path) -> None:
    program = tmp_path / "shout.py"
    program.write_text("def shout(x):\n    print('hi', x)\n    print('bye')\n    return x\n")
    assert dap.start(program, allowExecution=True, function="shout", args="shout(3)") == {"terminated": True, "exitCode": 0}
    assert "".join(dap.outputs("stdout")) == "hi 3\nbye\n"
