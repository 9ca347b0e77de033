"""The executed tracer: exact frames for small programs, reprs, errors, API."""

from __future__ import annotations

import pytest

from neuraldbg.trace import Frame, Trace
from neuraldbg.tracer import Limits, run_trace, run_traces

Row = tuple[str, int, str, int, dict[str, str], "str | None"]


def rows(trace: Trace) -> list[Row]:
    return [(f.event, f.line, f.function, f.depth, f.locals, f.value) for f in trace.frames]


def assert_complete(trace: Trace) -> None:
    assert trace.status == "complete", trace.error
    assert trace.backend == "exec"
    assert trace.predicted is False


LOOP = """\
def total(xs):
    s = 0
    for x in xs:
        s += x
    return s
"""


def test_loop_frames_are_exact() -> None:
    trace = run_trace(LOOP, "total([3, 4])")
    assert_complete(trace)
    assert trace.error is None
    assert trace.function == "total"
    assert trace.call == "total([3, 4])"
    xs = {"xs": "[3, 4]"}
    assert rows(trace) == [
        ("call", 1, "total", 0, xs, None),
        ("line", 2, "total", 0, xs, None),
        ("line", 3, "total", 0, {**xs, "s": "0"}, None),
        ("line", 4, "total", 0, {**xs, "s": "0", "x": "3"}, None),
        ("line", 3, "total", 0, {**xs, "s": "3", "x": "3"}, None),
        ("line", 4, "total", 0, {**xs, "s": "3", "x": "4"}, None),
        ("line", 3, "total", 0, {**xs, "s": "7", "x": "4"}, None),
        ("line", 5, "total", 0, {**xs, "s": "7", "x": "4"}, None),
        ("return", 5, "total", 0, {**xs, "s": "7", "x": "4"}, "7"),
    ]
    assert [f.source for f in trace.frames[:3]] == ["def total(xs):", "    s = 0", "    for x in xs:"]
    assert trace.return_value == "7"
    assert trace.raised is None


FACT = """\
def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)
"""


def test_recursion_has_depths() -> None:
    trace = run_trace(FACT, "fact(2)")
    assert_complete(trace)
    assert rows(trace) == [
        ("call", 1, "fact", 0, {"n": "2"}, None),
        ("line", 2, "fact", 0, {"n": "2"}, None),
        ("line", 4, "fact", 0, {"n": "2"}, None),
        ("call", 1, "fact", 1, {"n": "1"}, None),
        ("line", 2, "fact", 1, {"n": "1"}, None),
        ("line", 3, "fact", 1, {"n": "1"}, None),
        ("return", 3, "fact", 1, {"n": "1"}, "1"),
        ("return", 4, "fact", 0, {"n": "2"}, "2"),
    ]
    assert trace.stack_at(5) == [0, 3]


STACK = """\
class Stack:
    def __init__(self, items):
        self.items = list(items)

    def push(self, item):
        self.items.append(item)
        return len(self.items)
"""


def test_method_call_constructs_the_receiver_untraced() -> None:
    trace = run_trace(STACK, "Stack([1]).push(2)", path="stack.py")
    assert_complete(trace)
    assert trace.function == "Stack.push"  # derived from the real callee
    me = {"self": "<stack.Stack object at 0x1>", "item": "2"}
    assert rows(trace) == [
        ("call", 5, "Stack.push", 0, me, None),
        ("line", 6, "Stack.push", 0, me, None),
        ("line", 7, "Stack.push", 0, me, None),
        ("return", 7, "Stack.push", 0, me, "2"),
    ]


SAFE_DIV = """\
def safe_div(a, b):
    try:
        return a / b
    except ZeroDivisionError as exc:
        return None
"""


def test_caught_exception_continues_with_a_line() -> None:
    trace = run_trace(SAFE_DIV, "safe_div(1, 0)")
    assert_complete(trace)
    assert trace.error is None
    ab = {"a": "1", "b": "0"}
    err = "ZeroDivisionError('division by zero')"
    assert rows(trace) == [
        ("call", 1, "safe_div", 0, ab, None),
        ("line", 2, "safe_div", 0, ab, None),
        ("line", 3, "safe_div", 0, ab, None),
        ("exception", 3, "safe_div", 0, ab, err),
        ("line", 4, "safe_div", 0, ab, None),
        ("line", 5, "safe_div", 0, {**ab, "exc": err}, None),
        ("return", 5, "safe_div", 0, ab, "None"),  # `except ... as exc` deletes exc on the way out
    ]
    assert trace.raised is None
    assert trace.return_value == "None"


CHECK = """\
def helper(x):
    raise ValueError("negative")

def check(x):
    if x < 0:
        helper(x)
    return x
"""


def test_uncaught_exception_propagates_with_return_frames() -> None:
    trace = run_trace(CHECK, "check(-1)")
    assert trace.status == "complete"
    assert trace.error == "ValueError: negative"
    x = {"x": "-1"}
    err = "ValueError('negative')"
    assert rows(trace) == [
        ("call", 4, "check", 0, x, None),
        ("line", 5, "check", 0, x, None),
        ("line", 6, "check", 0, x, None),
        ("call", 1, "helper", 1, x, None),
        ("line", 2, "helper", 1, x, None),
        ("exception", 2, "helper", 1, x, err),
        ("return", 2, "helper", 1, x, "None"),
        ("exception", 6, "check", 0, x, err),
        ("return", 6, "check", 0, x, "None"),
    ]
    raised = trace.raised
    assert raised is not None and raised.depth == 0 and raised.value == err
    assert trace.return_value is None


ORDER = """\
def key(word):
    return len(word)

def order(words):
    return sorted(words, key=key)
"""


def test_user_function_called_back_by_the_standard_library_is_traced() -> None:
    trace = run_trace(ORDER, "order(['bb', 'a'])")
    assert_complete(trace)
    words = {"words": "['bb', 'a']"}
    assert rows(trace) == [
        ("call", 4, "order", 0, words, None),
        ("line", 5, "order", 0, words, None),
        ("call", 1, "key", 1, {"word": "'bb'"}, None),
        ("line", 2, "key", 1, {"word": "'bb'"}, None),
        ("return", 2, "key", 1, {"word": "'bb'"}, "2"),
        ("call", 1, "key", 1, {"word": "'a'"}, None),
        ("line", 2, "key", 1, {"word": "'a'"}, None),
        ("return", 2, "key", 1, {"word": "'a'"}, "1"),
        ("return", 5, "order", 0, words, "['a', 'bb']"),
    ]


NESTED = """\
import functools

def outer(k):
    def inner(v):
        return v + k
    squares = [i * i for i in range(k)]
    return inner(len(squares))

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper

@logged
def double(n):
    return 2 * n
"""


def test_comprehensions_are_skipped_and_closures_named_without_locals() -> None:
    trace = run_trace(NESTED, "outer(2)")
    assert_complete(trace)
    assert [(f.event, f.line, f.function, f.depth) for f in trace.frames] == [
        ("call", 3, "outer", 0),
        ("line", 4, "outer", 0),
        ("line", 6, "outer", 0),  # the list comprehension runs here, with no frames of its own
        ("line", 7, "outer", 0),
        ("call", 4, "outer.inner", 1),
        ("line", 5, "outer.inner", 1),
        ("return", 5, "outer.inner", 1),
        ("return", 7, "outer", 0),
    ]
    assert trace.frames[3].locals["squares"] == "[0, 1]"
    assert trace.frames[4].locals == {"v": "2", "k": "2"}
    assert trace.return_value == "4"


def test_decorated_function_call_frame_points_at_its_def_line() -> None:
    trace = run_trace(NESTED, "double(4)")
    assert_complete(trace)
    assert trace.function == "logged.wrapper"  # the callee that really runs first
    calls = [(f.line, f.function, f.depth, f.source) for f in trace.frames if f.event == "call"]
    # co_firstlineno of a decorated def is its first decorator; the frame shows the def line
    assert calls == [
        (11, "logged.wrapper", 0, "    def wrapper(*args):"),
        (16, "double", 1, "def double(n):"),
    ]
    assert trace.return_value == "8"


def test_explicit_function_name_is_kept() -> None:
    trace = run_trace(NESTED, "outer(1)", function="outer")
    assert trace.function == "outer"


# -- reprs ------------------------------------------------------------------

OBJECTS = """\
class Box:
    pass

class Loud:
    def __repr__(self):
        raise ValueError("no")

def make():
    b = Box()
    c = Box()
    return [b, c, b]

def loud():
    x = Loud()
    return x

def long_text(n):
    return "x" * n
"""


def test_default_reprs_are_deterministic() -> None:
    first = run_trace(OBJECTS, "make()", path="objects.py")
    second = run_trace(OBJECTS, "make()", path="objects.py")
    assert_complete(first)
    expected = "[<objects.Box object at 0x1>, <objects.Box object at 0x2>, <objects.Box object at 0x1>]"
    assert first.return_value == expected
    assert first.to_json() == second.to_json()
    assert [f.locals for f in first.frames] == [f.locals for f in second.frames]


def test_a_failing_repr_is_reported_not_raised() -> None:
    trace = run_trace(OBJECTS, "loud()")
    assert_complete(trace)
    assert trace.frames[-1].locals["x"] == "<repr failed: ValueError>"
    assert trace.return_value == "<repr failed: ValueError>"


def test_long_reprs_are_cut_with_a_visible_marker() -> None:
    trace = run_trace(OBJECTS, "long_text(50)", limits=Limits(max_repr=10))
    assert_complete(trace)
    assert trace.return_value == "'xxxxxxxxx…<+42 chars>"  # repr is 52 characters


def test_same_program_traced_twice_is_identical_including_sets() -> None:
    source = "def f(words):\n    seen = set(words)\n    return seen\n"
    traces = run_traces([(source, "f(['pear', 'fig', 'kiwi', 'lime'])", "f", "s.py")] * 2)
    assert traces[0].to_json() == traces[1].to_json()
    assert traces[0].status == "complete"


# -- output -----------------------------------------------------------------


def test_printing_is_captured_and_does_not_corrupt_the_result() -> None:
    source = (
        "import os, sys\n"
        "def f():\n"
        "    print('hello', 42)\n"
        "    print('{\"frames\": [], \"status\": \"error\"}')\n"
        "    sys.__stdout__.write('garbage\\n'); sys.__stdout__.flush()\n"
        "    os.write(1, b'raw bytes on fd 1')\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    return 1\n"
    )
    trace = run_trace(source, "f()")
    assert_complete(trace)
    assert trace.return_value == "1"
    assert trace.stdout == 'hello 42\n{"frames": [], "status": "error"}\n'
    assert trace.to_json()["stdout"] == trace.stdout


def test_huge_output_is_capped() -> None:
    source = "def f():\n    for _ in range(30):\n        print('x' * 10000)\n    return 2\n"
    trace = run_trace(source, "f()")
    assert_complete(trace)
    assert trace.return_value == "2"
    assert len(trace.stdout) < 110_000
    assert trace.stdout.endswith("chars>")


# -- errors -----------------------------------------------------------------


def test_syntax_error_in_the_file() -> None:
    trace = run_trace("def f(:\n    pass\n", "f()")
    assert trace.status == "error"
    assert trace.error == "syntax error at line 1: invalid syntax"
    assert trace.frames == []


def test_import_error_in_the_file() -> None:
    trace = run_trace("import nope\n\ndef f():\n    return 1\n", "f()")
    assert trace.status == "error"
    assert trace.error == "ModuleNotFoundError: No module named 'nope'"


def test_main_block_does_not_run() -> None:
    source = "def f():\n    return __name__\n\nif __name__ == '__main__':\n    raise SystemExit('ran main')\n"
    trace = run_trace(source, "f()", path="/somewhere/prog.py")
    assert_complete(trace)
    assert trace.return_value == "'prog'"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("total(", "invalid call 'total(': '(' was never closed"),
        ("1 + 2", "invalid call '1 + 2': expected one function call, like f(1, 2)"),
        ("total([1]); total([2])", "invalid call 'total([1]); total([2])': invalid syntax"),
        ("nope(1)", "NameError: name 'nope' is not defined (while evaluating 'nope' of the call)"),
        ("total(1 / 0)", "ZeroDivisionError: division by zero (while evaluating '1 / 0' of the call)"),
    ],
)
def test_bad_calls_give_a_clear_error(call: str, message: str) -> None:
    trace = run_trace(LOOP, call)
    assert trace.status == "error"
    assert trace.error == message
    assert trace.frames == []


def test_exception_while_preparing_the_receiver() -> None:
    source = "class Foo:\n    def __init__(self, n):\n        raise RuntimeError('bad n')\n    def bar(self):\n        return 1\n"
    trace = run_trace(source, "Foo(0).bar()")
    assert trace.status == "error"
    assert trace.error == "RuntimeError: bad n (while evaluating 'Foo(0).bar' of the call)"


def test_call_that_runs_no_user_code() -> None:
    trace = run_trace(LOOP, "len([1, 2])")
    assert trace.status == "error"
    assert trace.error == "the call len([1, 2]) ran no function defined in <string>"


def test_starred_and_keyword_arguments_keep_python_semantics() -> None:
    source = "def f(a, b, *rest, c=0, **kw):\n    return (a, b, rest, c, kw)\n"
    trace = run_trace(source, "f(*[1, 2], 3, c=4, **{'d': 5})")
    assert_complete(trace)
    assert trace.frames[0].locals == {"a": "1", "b": "2", "c": "4", "rest": "(3,)", "kw": "{'d': 5}"}
    assert trace.return_value == "(1, 2, (3,), 4, {'d': 5})"


def test_lambdas_in_the_call_are_not_traced() -> None:
    source = "def apply(fn, x):\n    return fn(x)\n"
    trace = run_trace(source, "apply(lambda v: v * 3, 2)")
    assert_complete(trace)
    assert {f.function for f in trace.frames} == {"apply"}
    assert trace.return_value == "6"


def test_infinite_recursion_ends_in_a_recursion_error_chain() -> None:
    trace = run_trace("def down(n):\n    return down(n + 1)\n", "down(0)")
    assert trace.status == "complete"
    assert trace.error is not None and trace.error.startswith("RecursionError: maximum recursion depth exceeded")
    raised = trace.raised
    assert raised is not None and raised.value is not None and raised.value.startswith("RecursionError(")
    last = trace.frames[-1]
    assert (last.event, last.depth, last.locals) == ("return", 0, {"n": "0"})
    assert max(f.depth for f in trace.frames) > 900


def test_program_switching_tracing_off_is_reported() -> None:
    source = "import sys\ndef f():\n    sys.settrace(None)\n    x = 1\n    return x\n"
    trace = run_trace(source, "f()")
    assert trace.status == "truncated"
    assert trace.error is not None and "tracing stopped early" in trace.error


def test_run_traces_keeps_job_order() -> None:
    jobs = [(FACT, f"fact({n})", "fact", "fact.py") for n in (1, 3, 5)]
    traces = run_traces(jobs, Limits(), workers=2)
    assert [t.return_value for t in traces] == ["1", "6", "120"]
    assert [t.call for t in traces] == ["fact(1)", "fact(3)", "fact(5)"]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_frames"):
        Limits(max_frames=0)
    with pytest.raises(ValueError, match="workers"):
        run_traces([], workers=0)


def test_frames_round_trip_through_json() -> None:
    trace = run_trace(FACT, "fact(2)")
    again = Trace.from_json(trace.to_json())
    assert [Frame.to_json(f) for f in again.frames] == [Frame.to_json(f) for f in trace.frames]


GENERATORS = """\
def evens(n):
    for i in range(n):
        yield i * 2

def collect(n):
    return list(evens(n))
"""


def test_generator_frames_resume_at_their_yield() -> None:
    trace = run_trace(GENERATORS, "collect(2)")
    assert_complete(trace)
    assert [(f.event, f.line, f.function, f.depth) for f in trace.frames] == [
        ("call", 5, "collect", 0),
        ("line", 6, "collect", 0),
        ("call", 1, "evens", 1),
        ("line", 2, "evens", 1),
        ("line", 3, "evens", 1),
        ("return", 3, "evens", 1),  # the first yield
        ("call", 3, "evens", 1),  # resumed at the yield
        ("line", 2, "evens", 1),
        ("line", 3, "evens", 1),
        ("return", 3, "evens", 1),
        ("call", 3, "evens", 1),
        ("line", 2, "evens", 1),
        ("return", 2, "evens", 1),  # exhausted
        ("return", 6, "collect", 0),
    ]
    assert [f.value for f in trace.frames if f.event == "return"] == ["0", "2", "None", "[0, 2]"]


def test_calling_a_generator_function_directly_says_it_did_not_run() -> None:
    trace = run_trace(GENERATORS, "evens(2)")
    assert trace.status == "error"
    assert trace.error == "the call evens(2) returned a generator without running it"
    assert trace.frames == []


def test_recorder_keeps_the_unwinding_when_its_own_trace_function_hits_the_recursion_limit() -> None:
    # In-process on purpose (no sandbox needed): on CPython 3.11 the trace
    # function is the first to hit the limit, CPython switches tracing off,
    # and the recorder rebuilds the exception/return frames from the traceback.
    from neuraldbg.tracer.recorder import Recorder
    from neuraldbg.tracer.reprs import Renderer

    namespace: dict[str, object] = {}
    exec(compile("def down(n):\n    return down(n + 1)\n", "<down>", "exec"), namespace)
    recorder = Recorder("<down>", 100_000, Renderer(300).render, {})
    recorder.start()
    try:
        namespace["down"](0)  # type: ignore[operator]
    except RecursionError as exc:
        raised: BaseException = exc
    alive = recorder.stop()
    if not alive:
        assert recorder.unwind_from(raised)
    assert not recorder.active
    frames = recorder.frames
    deepest = max(f[3] for f in frames)
    unwinding = [f for f in frames if f[0] in ("exception", "return")]
    # every frame that was entered and recorded leaves with exception + return, innermost first
    recorded_depths = sorted({f[3] for f in frames if f[0] == "call"}, reverse=True)
    assert [(f[0], f[3]) for f in unwinding[-4:]] == [("exception", 1), ("return", 1), ("exception", 0), ("return", 0)]
    assert {f[3] for f in unwinding} == set(recorded_depths)
    assert deepest > 900
    assert unwinding[-2][5] is not None and unwinding[-2][5].startswith("RecursionError(")
