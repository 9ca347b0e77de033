"""The debugger features a trace makes cheap, through the real DAP client
(``python -m neuraldbg.dap`` over stdio): data breakpoints (forwards and in
reverse), function breakpoints, step-in targets, Debug Console completions,
and evaluate refusing side effects. Expected stops come from the ground-truth
trace of neuraldbg.tracer."""

from __future__ import annotations

from pathlib import Path

import pytest

from dap_client.pyclient import DapClient
from neuraldbg.trace.frames import Trace
from test_dap_stepping import RECURSION, STRAWBERRY, STRAWBERRY_CALL, steps_on, truth_of

BACKENDS = ["exec", "replay"]

CALLBACK = """\
def by_len(word):
    size = len(word)
    return size


def order(words):
    ranked = sorted(words, key=by_len)
    return ranked[0]
"""
CALLBACK_CALL = "order(['ccc', 'a', 'bb'])"

NESTED = """\
def g(x):
    return x + 1


def h(y):
    return y * 2


def f(a, b):
    return a - b


def main(x, y):
    total = f(g(x), h(y))
    both = g(x) + g(y)
    size = len([total, both])
    return total + both + size
"""
NESTED_CALL = "main(3, 4)"


def top_frame_id(dap: DapClient) -> int:
    return dap.stack()[0]["id"]


def line_of(source: str, text: str) -> int:
    """The 1-based line whose stripped text is ``text``."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if line.strip() == text)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def watch(dap: DapClient, name: str) -> int:
    """A data breakpoint on local ``name`` of the top frame; its id."""
    scope = dap.req("scopes", {"frameId": top_frame_id(dap)})["scopes"][0]["variablesReference"]
    info = dap.req("dataBreakpointInfo", {"variablesReference": scope, "name": name})
    assert info["dataId"] and info["accessTypes"] == ["write"], info
    bps = dap.req("setDataBreakpoints", {"breakpoints": [{"dataId": info["dataId"]}]})["breakpoints"]
    assert len(bps) == 1 and bps[0]["verified"], bps
    return bps[0]["id"]


def changes_in_leaf(truth: Trace, function: str, name: str) -> list[int]:
    """Steps where local ``name`` of ``function`` (which calls nothing) shows a
    new value: its frames of one call are consecutive."""
    frames = truth.frames
    return [i for i in range(1, len(frames))
            if frames[i].function == function and frames[i].event != "call" and frames[i - 1].function == function
            and truth.locals_at(i).get(name) != truth.locals_at(i - 1).get(name)]


# -- capabilities ------------------------------------------------------------------
def test_the_features_are_advertised(dap: DapClient) -> None:
    caps = dap.req("initialize", {"adapterID": "neuraldbg"})
    for name in ("supportsDataBreakpoints", "supportsFunctionBreakpoints", "supportsStepInTargetsRequest",
                 "supportsCompletionsRequest"):
        assert caps.get(name) is True, name


# -- data breakpoints --------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_data_breakpoint_stops_at_each_change_forwards_and_in_reverse(dap: DapClient, backend: str) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    changes = changes_in_leaf(truth, "count_letter", "ch")
    first = steps_on(truth, 12)[0]
    assert len(changes) == 9 and changes[0] == first  # bound to 's', then 8 new letters (r, r is no change)
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                     breakpoints=[{"line": 12}])
    assert stop["reason"] == "breakpoint" and dap.trace()["step"] == first
    bp_id = watch(dap, "ch")
    dap.set_breakpoints(STRAWBERRY, [])
    for step in changes[1:]:
        stop = dap.step("continue")
        assert stop["reason"] == "data breakpoint" and stop["hitBreakpointIds"] == [bp_id], stop
        assert dap.trace()["step"] == step
        before = truth.locals_at(step - 1)["ch"]
        assert stop["description"] == f"ch changed: {before} -> {truth.locals_at(step)['ch']}"
        assert dap.where() == (truth.frames[step].line, truth.locals_at(step))
    for step in reversed(changes[:-1]):
        stop = dap.step("reverseContinue")
        assert stop["reason"] == "data breakpoint", stop
        assert dap.trace()["step"] == step
        assert dap.where() == (truth.frames[step].line, truth.locals_at(step))
    assert dap.step("reverseContinue")["reason"] == "entry"
    # Forwards again from the start: the same stops (the frames are reused, hit counts agree).
    for step in changes:
        assert dap.step("continue")["reason"] == "data breakpoint"
        assert dap.trace()["step"] == step
    assert dap.step("continue") == {"terminated": True, "exitCode": 0}


def test_a_data_breakpoint_watches_every_call_of_its_function(dap: DapClient) -> None:
    truth = truth_of(RECURSION, "fib_list", "fib_list(5)")
    changes = changes_in_leaf(truth, "fib", "a")
    source = RECURSION.read_text()
    start = steps_on(truth, line_of(source, "a, b = b, a + b"))[0]
    later = [i for i in changes if i > start]
    calls = {i: sum(1 for f in truth.frames[: i + 1] if f.event == "call" and f.function == "fib") for i in later}
    assert len(set(calls.values())) >= 3  # the changes are in several calls of fib
    stop = dap.start(RECURSION, allowExecution=True, function="fib_list", args="fib_list(5)", backend="exec",
                     breakpoints=[{"line": line_of(source, "a, b = b, a + b")}])
    assert stop["reason"] == "breakpoint" and dap.trace()["step"] == start
    watch(dap, "a")
    dap.set_breakpoints(RECURSION, [])
    for step in later:
        stop = dap.step("continue")
        assert stop["reason"] == "data breakpoint", stop
        assert dap.trace()["step"] == step
        assert [f["name"] for f in dap.stack()] == ["fib", "fib_list"]
        if "a" not in truth.locals_at(step - 1):
            assert stop["description"] == f"a = {truth.locals_at(step)['a']}"  # bound at the start of a call
    assert dap.step("continue")["terminated"]


def test_a_data_breakpoint_has_a_condition_and_a_hit_count(dap: DapClient) -> None:
    truth = truth_of(STRAWBERRY, "count_letter", STRAWBERRY_CALL)
    counted = changes_in_leaf(truth, "count_letter", "count")
    assert len(counted) == 4  # bound to 0, then 1, 2, 3
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend="exec",
                     breakpoints=[{"line": 11}])
    scope = dap.req("scopes", {"frameId": top_frame_id(dap)})["scopes"][0]["variablesReference"]
    data_id = dap.req("dataBreakpointInfo", {"variablesReference": scope, "name": "count"})["dataId"]
    bps = dap.req("setDataBreakpoints", {"breakpoints": [
        {"dataId": data_id, "condition": "count >= 2"},
        {"dataId": data_id, "hitCondition": "==2"},
        {"dataId": data_id, "condition": "count.bit_length()"},
    ]})["breakpoints"]
    assert [b["verified"] for b in bps] == [True, True, False]
    assert "attribute access is not allowed" in bps[2]["message"]
    dap.set_breakpoints(STRAWBERRY, [])
    # From the stop (count just bound to 0): 0 -> 1 is the first hit, 1 -> 2 the second (==2) and the
    # first where count >= 2; 2 -> 3 passes the condition only.
    seen = []
    while True:
        stop = dap.step("continue")
        if stop.get("terminated"):
            break
        seen.append((dap.trace()["step"], sorted(stop["hitBreakpointIds"])))
    assert seen == [(counted[2], sorted([bps[0]["id"], bps[1]["id"]])), (counted[3], [bps[0]["id"]])]


# -- evaluate refuses side effects --------------------------------------------------
@pytest.mark.parametrize("expression, says", [
    ("count = 1", "count = 1 assigns count"),
    ("count += 1", "count += 1 changes count"),
    ("del count", "del removes count"),
    ("import os", "import os imports a module"),
    ("word, letter = 'a', 'b'", "assigns word, letter"),
    ("(n := 3)", "assigns n"),
    ("print(count)", "print(...) may have side effects"),
])
def test_evaluate_refuses_side_effects_and_says_so(dap: DapClient, expression: str, says: str) -> None:
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend="exec",
                     breakpoints=[{"line": 13}])
    assert stop["reason"] == "breakpoint"
    frame_id = top_frame_id(dap)
    message = dap.fail("evaluate", {"expression": expression, "frameId": frame_id, "context": "repl"})
    assert message.startswith("evaluate does not run code with side effects: "), message
    assert says in message and "\n" not in message and "syntax error" not in message
    # Nothing changed: the local still has the traced value.
    assert dap.req("evaluate", {"expression": "count", "frameId": frame_id})["result"] == "0"
    assert "syntax error" in dap.fail("evaluate", {"expression": "count +", "frameId": frame_id})


# -- function breakpoints ------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_function_breakpoint_stops_in_a_key_callback(dap: DapClient, backend: str, tmp_path: Path) -> None:
    program = write(tmp_path, "callback.py", CALLBACK)
    truth = truth_of(program, "order", CALLBACK_CALL)
    first_line = line_of(CALLBACK, "size = len(word)")
    expected = steps_on(truth, first_line)
    assert len(expected) == 3
    dap.req("initialize", {"adapterID": "neuraldbg", "linesStartAt1": True})
    dap.req("launch", {"program": str(program), "allowExecution": True, "function": "order", "args": CALLBACK_CALL,
                       "backend": backend}, timeout=120)
    dap.wait_event("initialized")
    bps = dap.req("setFunctionBreakpoints", {"breakpoints": [{"name": "by_len"}, {"name": "nope"}]})["breakpoints"]
    assert bps[0]["verified"] and bps[0]["line"] == first_line
    assert not bps[1]["verified"] and bps[1]["message"] == "no function 'nope' in callback.py"
    dap.req("setExceptionBreakpoints", {"filters": []})
    dap.req("configurationDone")
    for n, step in enumerate(expected):
        stop = dap.wait_stop() if n == 0 else dap.step("continue")
        assert stop["reason"] == "function breakpoint" and stop["hitBreakpointIds"] == [bps[0]["id"]], stop
        assert dap.trace()["step"] == step
        assert [f["name"] for f in dap.stack()] == ["by_len", "order"]
        assert dap.where() == (first_line, truth.locals_at(step))
    assert dap.step("reverseContinue")["reason"] == "function breakpoint"
    assert dap.trace()["step"] == expected[1]
    dap.req("setFunctionBreakpoints", {"breakpoints": []})
    assert dap.step("continue") == {"terminated": True, "exitCode": 0}


def test_function_breakpoints_have_conditions_and_hit_counts(dap: DapClient, tmp_path: Path) -> None:
    program = write(tmp_path, "callback.py", CALLBACK)
    truth = truth_of(program, "order", CALLBACK_CALL)
    steps = steps_on(truth, line_of(CALLBACK, "size = len(word)"))
    words = [truth.locals_at(i)["word"] for i in steps]
    assert words == ["'ccc'", "'a'", "'bb'"]
    dap.req("initialize", {"adapterID": "neuraldbg"})
    dap.req("launch", {"program": str(program), "allowExecution": True, "function": "order", "args": CALLBACK_CALL,
                       "backend": "exec"}, timeout=120)
    dap.wait_event("initialized")
    bps = dap.req("setFunctionBreakpoints", {"breakpoints": [
        {"name": "by_len", "condition": "word == 'bb'"}, {"name": "by_len", "hitCondition": "==2"},
        {"name": "by_len", "condition": "word =="}]})["breakpoints"]
    assert [b["verified"] for b in bps] == [True, True, False] and "syntax error" in bps[2]["message"]
    dap.req("configurationDone")
    stop = dap.wait_stop()
    assert stop["hitBreakpointIds"] == [bps[1]["id"]] and dap.trace()["step"] == steps[1]
    stop = dap.step("continue")
    assert stop["hitBreakpointIds"] == [bps[0]["id"]] and dap.trace()["step"] == steps[2]
    assert dap.step("continue")["terminated"]


# -- step-in targets -------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("label, function, params", [
    ("h", "h", {"y": "4"}), ("f", "f", {"a": "4", "b": "8"}), ("g", "g", {"x": "3"}),
])
def test_step_in_targets_list_the_callees_and_step_in_lands_in_the_chosen_one(
        dap: DapClient, backend: str, tmp_path: Path, label: str, function: str, params: dict[str, str]) -> None:
    program = write(tmp_path, "nested.py", NESTED)
    line = line_of(NESTED, "total = f(g(x), h(y))")
    stop = dap.start(program, allowExecution=True, function="main", args=NESTED_CALL, backend=backend,
                     breakpoints=[{"line": line}])
    assert stop["reason"] == "breakpoint"
    targets = dap.req("stepInTargets", {"frameId": top_frame_id(dap)})["targets"]
    assert [t["label"] for t in targets] == ["g", "h", "f"]  # the order Python calls them in
    assert all(t["line"] == line for t in targets)
    assert [NESTED.splitlines()[line - 1][t["column"] - 1:t["endColumn"] - 1] for t in targets] == \
        ["g(x)", "h(y)", "f(g(x), h(y))"]
    chosen = next(t["id"] for t in targets if t["label"] == label)
    dap.req("stepIn", {"threadId": 1, "targetId": chosen})
    assert dap.wait_stop()["reason"] == "step"
    stack = dap.stack()
    assert [f["name"] for f in stack] == [function, "main"]
    assert dap.where() == (line_of(NESTED, {"g": "return x + 1", "h": "return y * 2", "f": "return a - b"}[function]),
                           params)
    assert "stale" in dap.fail("stepIn", {"threadId": 1, "targetId": chosen})


def test_step_in_targets_tell_same_named_calls_apart(dap: DapClient, tmp_path: Path) -> None:
    program = write(tmp_path, "nested.py", NESTED)
    stop = dap.start(program, allowExecution=True, function="main", args=NESTED_CALL, backend="exec",
                     breakpoints=[{"line": line_of(NESTED, "both = g(x) + g(y)")}])
    assert stop["reason"] == "breakpoint"
    targets = dap.req("stepInTargets", {"frameId": top_frame_id(dap)})["targets"]
    assert [t["label"] for t in targets] == ["g (call 1)", "g (call 2)"]
    dap.req("stepIn", {"threadId": 1, "targetId": targets[1]["id"]})
    dap.wait_stop()
    assert dap.where() == (line_of(NESTED, "return x + 1"), {"x": "4"})  # the second call: g(y)
    # A line whose only call is a builtin has nothing to step into; a target not called stops as step over.
    dap.set_breakpoints(program, [{"line": line_of(NESTED, "size = len([total, both])")}])
    assert dap.step("continue")["reason"] == "breakpoint"
    assert dap.req("stepInTargets", {"frameId": top_frame_id(dap)})["targets"] == []


def test_step_in_to_a_callback_target(dap: DapClient, tmp_path: Path) -> None:
    program = write(tmp_path, "callback.py", CALLBACK)
    stop = dap.start(program, allowExecution=True, function="order", args=CALLBACK_CALL, backend="exec",
                     breakpoints=[{"line": line_of(CALLBACK, "ranked = sorted(words, key=by_len)")}])
    assert stop["reason"] == "breakpoint"
    targets = dap.req("stepInTargets", {"frameId": top_frame_id(dap)})["targets"]
    assert [t["label"] for t in targets] == ["by_len (passed to sorted)"]
    dap.req("stepIn", {"threadId": 1, "targetId": targets[0]["id"]})
    dap.wait_stop()
    assert dap.where() == (line_of(CALLBACK, "size = len(word)"), {"word": "'ccc'"})


# -- completions ------------------------------------------------------------------------
def test_completions_offer_the_frames_names(dap: DapClient) -> None:
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend="exec",
                     breakpoints=[{"line": 13}])
    assert stop["reason"] == "breakpoint"
    frame_id = top_frame_id(dap)

    def complete(text: str, column: int | None = None) -> list[dict]:
        column = len(text) + 1 if column is None else column
        return dap.req("completions", {"frameId": frame_id, "text": text, "column": column})["targets"]

    got = complete("co")
    assert [t["label"] for t in got] == ["count", "count_letter"]
    assert [t["type"] for t in got] == ["variable", "function"]
    assert all(t["start"] == 1 and t["length"] == 2 for t in got)
    assert [(t["label"], t["start"], t["length"]) for t in complete("len(wo")] == [("word", 5, 2)]
    labels = [t["label"] for t in complete("")]
    assert labels[:4] == ["word", "letter", "count", "ch"] and "len" in labels and "True" in labels
    assert "print" not in labels  # only what evaluate can call
    upper = complete("word.up")
    assert [(t["label"], t["type"], t["start"]) for t in upper] == [("upper", "method", 6)]
    assert [t["label"] for t in complete("len(w) + co", 6)] == ["word"]  # the cursor, not the end, decides
    assert "\n" not in dap.fail("completions", {"frameId": frame_id, "text": "co", "column": 3, "line": 5})


# -- bad requests ------------------------------------------------------------------------
def test_bad_feature_requests_get_one_line_errors(dap: DapClient) -> None:
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend="exec",
                     breakpoints=[{"line": 13}])
    assert stop["reason"] == "breakpoint"
    messages = [
        dap.fail("dataBreakpointInfo", {"variablesReference": 424242, "name": "count"}),
        dap.fail("dataBreakpointInfo", {"frameId": top_frame_id(dap)}),
        dap.fail("setDataBreakpoints", {"breakpoints": [{"dataId": "bogus"}]}),
        dap.fail("setDataBreakpoints", {"breakpoints": [{"dataId": "local:no_such_function:x"}]}),
        dap.fail("setDataBreakpoints", {"breakpoints": "count"}),
        dap.fail("setFunctionBreakpoints", {"breakpoints": [1, 2]}),
        dap.fail("stepInTargets", {"frameId": 424242}),
        dap.fail("stepIn", {"threadId": 1, "targetId": 424242}),
        dap.fail("completions", {"frameId": top_frame_id(dap)}),
    ]
    assert "no variables reference 424242" in messages[0]
    assert "unknown dataId 'bogus'" in messages[2]
    assert "no function no_such_function" in messages[3]
    assert "no step-in target 424242" in messages[7]
    assert all("\n" not in m and "internal error" not in m for m in messages), messages
    # A local that is not there is no data breakpoint, and not an error either (DAP's dataId null).
    info = dap.req("dataBreakpointInfo", {"frameId": top_frame_id(dap), "name": "nope"})
    assert info["dataId"] is None and "nope is not a local variable of count_letter" in info["description"]
    # The session goes on.
    assert dap.step("continue")["reason"] == "breakpoint"


def test_step_back_over_a_call_stops_at_a_data_breakpoint_inside_it(dap: DapClient) -> None:
    truth = truth_of(RECURSION, "fib_list", "fib_list(5)")
    source = RECURSION.read_text()
    changes = changes_in_leaf(truth, "fib", "a")
    stop = dap.start(RECURSION, allowExecution=True, function="fib_list", args="fib_list(5)", backend="exec",
                     breakpoints=[{"line": line_of(source, "a, b = b, a + b")}])
    scope = dap.req("scopes", {"frameId": top_frame_id(dap)})["scopes"][0]["variablesReference"]
    data_id = dap.req("dataBreakpointInfo", {"variablesReference": scope, "name": "a"})["dataId"]
    end = steps_on(truth, line_of(source, "return out"))[0]
    dap.set_breakpoints(RECURSION, [{"line": line_of(source, "return out")}])
    assert dap.step("continue")["reason"] == "breakpoint" and dap.trace()["step"] == end
    dap.req("setDataBreakpoints", {"breakpoints": [{"dataId": data_id}]})
    assert dap.step("stepBack")["reason"] == "step"  # the loop's last test: no call in between
    here = dap.trace()["step"]
    assert truth.frames[here].function == "fib_list" and truth.frames[here - 1].function == "fib"
    # The next step back passes fib(4): it stops at a's last change in there, not on the calling line.
    stop = dap.step("stepBack")
    assert stop["reason"] == "data breakpoint", stop
    assert dap.trace()["step"] == max(c for c in changes if c < here)
    assert [f["name"] for f in dap.stack()] == ["fib", "fib_list"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_over_stops_at_data_and_function_breakpoints_in_the_call_it_passes(
        dap: DapClient, backend: str, tmp_path: Path) -> None:
    program = write(tmp_path, "callback.py", CALLBACK)
    truth = truth_of(program, "order", CALLBACK_CALL)
    call_line = line_of(CALLBACK, "ranked = sorted(words, key=by_len)")
    first = steps_on(truth, line_of(CALLBACK, "size = len(word)"))[0]
    stop = dap.start(program, allowExecution=True, function="order", args=CALLBACK_CALL, backend=backend,
                     breakpoints=[{"line": call_line}])
    assert stop["reason"] == "breakpoint"
    fn = dap.req("setFunctionBreakpoints", {"breakpoints": [{"name": "by_len"}]})["breakpoints"][0]
    stop = dap.step("next")
    assert stop["reason"] == "function breakpoint" and stop["hitBreakpointIds"] == [fn["id"]]
    assert dap.trace()["step"] == first
    # In by_len: watch size once it is bound, then step out: the next calls of by_len run before the caller
    # goes on, and size is set in the first of them.
    scope = dap.req("scopes", {"frameId": top_frame_id(dap)})["scopes"][0]["variablesReference"]
    assert dap.req("dataBreakpointInfo", {"variablesReference": scope, "name": "size"})["dataId"] is None  # not bound yet
    dap.req("setFunctionBreakpoints", {"breakpoints": []})
    assert dap.step("next")["reason"] == "step"
    bound = dap.trace()["step"]
    scope = dap.req("scopes", {"frameId": top_frame_id(dap)})["scopes"][0]["variablesReference"]
    data_id = dap.req("dataBreakpointInfo", {"variablesReference": scope, "name": "size"})["dataId"]
    dap.req("setDataBreakpoints", {"breakpoints": [{"dataId": data_id}]})
    stop = dap.step("stepOut")
    if stop["reason"] == "step" and truth.frames[dap.trace()["step"]].event == "return":
        stop = dap.step("stepOut")  # neuraldbg stops on the return event first (pdb's --Return--)
    assert stop["reason"] == "data breakpoint", stop
    step = dap.trace()["step"]
    assert truth.frames[step].function == "by_len" and truth.locals_at(step)["word"] == "'a'"
    assert stop["description"] == f"size = {truth.locals_at(step)['size']}"
    assert dap.step("reverseContinue")["reason"] == "data breakpoint"
    assert dap.trace()["step"] == bound
