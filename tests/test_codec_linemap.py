"""Line mapping by scope and order, ".." resolution and depths."""

from __future__ import annotations

from codec_support import frames, functions_of

from neuraldbg.trace.cwm_decode import cwm_view, decode_trace, frames_from_trace_text
from neuraldbg.trace.cwm_encode import encode_trace
from neuraldbg.trace.cwm_prompt import mark_entry
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.trace.tokenizer import TextTokenizer

TOK = TextTokenizer()


def round_trip(src: str, rows: list[tuple]) -> tuple[list[Frame], list[Frame]]:
    fs = frames(src, rows)
    ids = encode_trace(TOK, Trace(fs[0].function, "", "exec", fs))
    return fs, decode_trace(TOK, ids, src, functions_of(src))


def assert_round_trip(src: str, rows: list[tuple]) -> list[Frame]:
    fs, out = round_trip(src, rows)
    assert cwm_view(out) == cwm_view(fs)
    assert all(f.problem is None for f in out), [f.problem for f in out]
    return out


def test_same_line_twice_in_sequence() -> None:
    src = "def f(x):\n    x += 1\n    x += 1\n    return x\n"
    assert_round_trip(
        src,
        [
            ("call", 1, "f", 0, {"x": "0"}, None),
            ("line", 2, "f", 0, {"x": "0"}, None),
            ("line", 3, "f", 0, {"x": "1"}, None),
            ("line", 4, "f", 0, {"x": "2"}, None),
            ("return", 4, "f", 0, None, "2"),
        ],
    )


def test_loop_going_back_over_duplicate_lines() -> None:
    src = "def f(n):\n    i = 0\n    while i < n:\n        i += 1\n        i += 1\n    return i\n"
    rows = [("call", 1, "f", 0, {"n": "3"}, None), ("line", 2, "f", 0, {"n": "3"}, None)]
    i = 0
    while True:
        rows.append(("line", 3, "f", 0, {"n": "3", "i": str(i)}, None))
        if not i < 3:
            break
        rows.append(("line", 4, "f", 0, {"n": "3", "i": str(i)}, None))
        rows.append(("line", 5, "f", 0, {"n": "3", "i": str(i + 1)}, None))
        i += 2
    rows += [("line", 6, "f", 0, {"n": "3", "i": "4"}, None), ("return", 6, "f", 0, None, "4")]
    assert_round_trip(src, rows)


def test_identical_lines_in_two_functions() -> None:
    src = (
        "def g(a):\n"
        "    a = a * 2\n"
        "    return a\n"
        "\n"
        "def f(a):\n"
        "    a = a * 2\n"
        "    a = g(a)\n"
        "    return a\n"
    )
    out = assert_round_trip(
        src,
        [
            ("call", 5, "f", 0, {"a": "5"}, None),
            ("line", 6, "f", 0, {"a": "5"}, None),
            ("line", 7, "f", 0, {"a": "10"}, None),
            ("call", 1, "g", 1, {"a": "10"}, None),
            ("line", 2, "g", 1, {"a": "10"}, None),
            ("line", 3, "g", 1, {"a": "20"}, None),
            ("return", 3, "g", 1, None, "20"),
            ("line", 8, "f", 0, {"a": "20"}, None),
            ("return", 8, "f", 0, None, "20"),
        ],
    )
    assert [f.line for f in out] == [5, 6, 7, 1, 2, 3, 3, 8, 8]


def test_two_init_methods_with_different_params() -> None:
    src = (
        "class A:\n"
        "    def __init__(self, x):\n"
        "        self.x = x\n"
        "\n"
        "class B:\n"
        "    def __init__(self, y, z):\n"
        "        self.x = y + z\n"
        "\n"
        "def f(n):\n"
        "    b = B(n, 1)\n"
        "    a = A(n)\n"
        "    return a.x + b.x\n"
    )
    b_obj, a_obj = "<__main__.B object at 0x1>", "<__main__.A object at 0x2>"
    out = assert_round_trip(
        src,
        [
            ("call", 9, "f", 0, {"n": "1"}, None),
            ("line", 10, "f", 0, {"n": "1"}, None),
            ("call", 6, "B.__init__", 1, {"self": b_obj, "y": "1", "z": "1"}, None),
            ("line", 7, "B.__init__", 1, {"self": b_obj, "y": "1", "z": "1"}, None),
            ("return", 7, "B.__init__", 1, None, "None"),
            ("line", 11, "f", 0, {"n": "1", "b": b_obj}, None),
            ("call", 2, "A.__init__", 1, {"self": a_obj, "x": "1"}, None),
            ("line", 3, "A.__init__", 1, {"self": a_obj, "x": "1"}, None),
            ("return", 3, "A.__init__", 1, None, "None"),
            ("line", 12, "f", 0, {"n": "1", "b": b_obj, "a": a_obj}, None),
            ("return", 12, "f", 0, None, "3"),
        ],
    )
    assert [f.function for f in out if f.event == "call"] == ["f", "B.__init__", "A.__init__"]


def test_two_init_methods_with_identical_def_lines() -> None:
    """Same text, same params: the receiver's repr names the class; failing
    that, the body's lines show which method ran."""
    src = (
        "class A:\n"
        "    def __init__(self, v):\n"
        "        self.v = v\n"
        "\n"
        "class B:\n"
        "    def __init__(self, v):\n"
        "        self.w = v * 2\n"
        "\n"
        "def f(n):\n"
        "    b = B(n)\n"
        "    return b\n"
    )
    b_obj = "<__main__.B object at 0x1>"
    out = assert_round_trip(
        src,
        [
            ("call", 9, "f", 0, {"n": "1"}, None),
            ("line", 10, "f", 0, {"n": "1"}, None),
            ("call", 6, "B.__init__", 1, {"self": b_obj, "v": "1"}, None),
            ("line", 7, "B.__init__", 1, {"self": b_obj, "v": "1"}, None),
            ("return", 7, "B.__init__", 1, None, "None"),
            ("line", 11, "f", 0, {"n": "1", "b": b_obj}, None),
            ("return", 11, "f", 0, None, b_obj),
        ],
    )
    assert out[2].line == 6
    # a receiver repr that names no class: the call frame is ambiguous, the body decides
    text = (
        '<|call_sep|>{"n": "1"}<|action_sep|>def f(n):\n<|frame_sep|>'
        '<|line_sep|>{"n": ".."}<|action_sep|>    b = B(n)\n<|frame_sep|>'
        '<|call_sep|>{"self": "obj", "v": "1"}<|action_sep|>    def __init__(self, v):\n<|frame_sep|>'
        '<|line_sep|>{"self": "..", "v": ".."}<|action_sep|>        self.w = v * 2\n<|frame_sep|>'
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert got[3].function == "B.__init__" and got[3].line == 7 and got[3].problem is None
    assert got[3].locals == {"self": "obj", "v": "1"}


def test_decorated_function_call_frame() -> None:
    src = (
        "def deco(fn):\n"
        "    return fn\n"
        "\n"
        "@deco\n"
        "def g(x):\n"
        "    return x + 1\n"
        "\n"
        "def f(x):  # << START_OF_TRACE\n"
        "    return g(x) * 2\n"
    )
    # the tracer reports a decorated function's call on its def line (CWM's action is the def line)
    out = assert_round_trip(
        src,
        [
            ("call", 8, "f", 0, {"x": "1"}, None),
            ("line", 9, "f", 0, {"x": "1"}, None),
            ("call", 5, "g", 1, {"x": "1"}, None),
            ("line", 6, "g", 1, {"x": "1"}, None),
            ("return", 6, "g", 1, None, "2"),
            ("return", 9, "f", 0, None, "4"),
        ],
    )
    assert out[0].source == "def f(x):"  # the model never sees the marker in a frame
    # the model may write the decorator line instead (what sys.settrace reports): same function, def line
    text = (
        '<|call_sep|>{"x": "1"}<|action_sep|>def f(x):\n<|frame_sep|>'
        '<|line_sep|>{"x": ".."}<|action_sep|>    return g(x) * 2\n<|frame_sep|>'
        '<|call_sep|>{"x": "1"}<|action_sep|>@deco\n<|frame_sep|>'
        '<|line_sep|>{"x": ".."}<|action_sep|>    return x + 1\n<|frame_sep|>'
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert [(f.line, f.function, f.depth) for f in got] == [(8, "f", 0), (9, "f", 0), (5, "g", 1), (6, "g", 1)]
    assert got[3].locals == {"x": "1"} and all(f.problem is None for f in got)


def test_lambda_and_class_body_scopes() -> None:
    src = (
        "def f(n):\n"
        "    h = lambda a: a + 1\n"
        "    class K:\n"
        "        size = 2\n"
        "    return h(n) * K.size\n"
    )
    fn_repr = "<function f.<locals>.<lambda> at 0x1>"
    k_repr = "<class '__main__.f.<locals>.K'>"
    assert_round_trip(
        src,
        [
            ("call", 1, "f", 0, {"n": "1"}, None),
            ("line", 2, "f", 0, {"n": "1"}, None),
            ("line", 3, "f", 0, {"n": "1", "h": fn_repr}, None),
            ("call", 3, "f.K", 1, {}, None),
            ("line", 3, "f.K", 1, {"__module__": "'__main__'", "__qualname__": "'f.<locals>.K'"}, None),
            ("line", 4, "f.K", 1, {"__module__": "'__main__'", "__qualname__": "'f.<locals>.K'"}, None),
            ("return", 4, "f.K", 1, None, "None"),
            ("line", 5, "f", 0, {"n": "1", "h": fn_repr, "K": k_repr}, None),
            ("call", 2, "f.<lambda>", 1, {"a": "1"}, None),
            ("line", 2, "f.<lambda>", 1, {"a": "1"}, None),
            ("return", 2, "f.<lambda>", 1, None, "2"),
            ("return", 5, "f", 0, None, "4"),
        ],
    )


def test_nested_function_lines_stay_in_their_scope() -> None:
    src = (
        "def f(n):\n"
        "    def inner(k):\n"
        "        return k + 1\n"
        "    k = inner(n)\n"
        "    return k + 1\n"
    )
    out = assert_round_trip(
        src,
        [
            ("call", 1, "f", 0, {"n": "1"}, None),
            ("line", 2, "f", 0, {"n": "1"}, None),
            ("line", 4, "f", 0, {"n": "1", "inner": "<function f.<locals>.inner at 0x1>"}, None),
            ("call", 2, "f.inner", 1, {"k": "1"}, None),
            ("line", 3, "f.inner", 1, {"k": "1"}, None),
            ("return", 3, "f.inner", 1, None, "2"),
            ("line", 5, "f", 0, {"n": "1", "inner": "<function f.<locals>.inner at 0x1>", "k": "2"}, None),
            ("return", 5, "f", 0, None, "3"),
        ],
    )
    assert out[3].function == "f.inner"


def test_recursion_depths_and_return_lines() -> None:
    src = (
        "def fact(n):\n"
        "    if n <= 1:\n"
        "        return 1\n"
        "    return n * fact(n - 1)\n"
    )
    rows = [
        ("call", 1, "fact", 0, {"n": "2"}, None),
        ("line", 2, "fact", 0, {"n": "2"}, None),
        ("line", 4, "fact", 0, {"n": "2"}, None),
        ("call", 1, "fact", 1, {"n": "1"}, None),
        ("line", 2, "fact", 1, {"n": "1"}, None),
        ("line", 3, "fact", 1, {"n": "1"}, None),
        ("return", 3, "fact", 1, None, "1"),
        ("return", 4, "fact", 0, None, "2"),
    ]
    out = assert_round_trip(src, rows)
    assert [f.depth for f in out] == [0, 0, 0, 1, 1, 1, 1, 0]


def test_exception_frames() -> None:
    src = (
        "def g(x):\n"
        "    return 1 / x\n"
        "\n"
        "def f(x):\n"
        "    try:\n"
        "        y = g(x)\n"
        "    except ZeroDivisionError:\n"
        "        y = -1\n"
        "    return y\n"
    )
    err = "ZeroDivisionError('division by zero')"
    assert_round_trip(
        src,
        [
            ("call", 4, "f", 0, {"x": "0"}, None),
            ("line", 5, "f", 0, {"x": "0"}, None),
            ("line", 6, "f", 0, {"x": "0"}, None),
            ("call", 1, "g", 1, {"x": "0"}, None),
            ("line", 2, "g", 1, {"x": "0"}, None),
            ("exception", 2, "g", 1, None, err),
            ("return", 2, "g", 1, None, "None"),
            ("exception", 6, "f", 0, None, err),
            ("line", 7, "f", 0, {"x": "0"}, None),
            ("line", 8, "f", 0, {"x": "0"}, None),
            ("line", 9, "f", 0, {"x": "0", "y": "-1"}, None),
            ("return", 9, "f", 0, None, "-1"),
        ],
    )


def test_unicode_tabs_and_crlf_source() -> None:
    src = 'def f(s):  # << START_OF_TRACE\r\n\tt = s + "é🎉"\r\n\tif t:\r\n\t\tt = t.upper()\r\n\treturn t\r\n'
    out = assert_round_trip(
        src,
        [
            ("call", 1, "f", 0, {"s": "'ß'"}, None),
            ("line", 2, "f", 0, {"s": "'ß'"}, None),
            ("line", 3, "f", 0, {"s": "'ß'", "t": "'ßé🎉'"}, None),
            ("line", 4, "f", 0, {"s": "'ß'", "t": "'ßé🎉'"}, None),
            ("line", 5, "f", 0, {"s": "'ß'", "t": "'SSÉ🎉'"}, None),
            ("return", 5, "f", 0, None, "'SSÉ🎉'"),
        ],
    )
    assert out[1].source == '\tt = s + "é🎉"'
    assert mark_entry(src, 1) == src


def test_generator_and_comprehension_call_frames() -> None:
    """Call frames whose line is not a def line: a comprehension on the
    caller's line, a generator resuming at its yield (what sys.settrace reports)."""
    src = (
        "def gen(n):\n"
        "    yield n\n"
        "    yield n + 1\n"
        "\n"
        "def f(n):\n"
        "    ys = [y * 2 for y in gen(n)]\n"
        "    return ys\n"
    )
    text = (
        '<|call_sep|>{"n": "1"}<|action_sep|>def f(n):\n<|frame_sep|>'
        '<|line_sep|>{"n": ".."}<|action_sep|>    ys = [y * 2 for y in gen(n)]\n<|frame_sep|>'
        '<|call_sep|>{".0": "<generator object gen at 0x1>"}<|action_sep|>    ys = [y * 2 for y in gen(n)]\n<|frame_sep|>'
        '<|call_sep|>{"n": "1"}<|action_sep|>def gen(n):\n<|frame_sep|>'
        '<|line_sep|>{"n": ".."}<|action_sep|>    yield n\n<|frame_sep|>'
        '<|return_sep|><|action_sep|>    yield n\n<|arg_sep|>"1"<|frame_sep|>'
        '<|call_sep|>{"n": "1"}<|action_sep|>    yield n\n<|frame_sep|>'
        '<|line_sep|>{"n": ".."}<|action_sep|>    yield n + 1\n<|frame_sep|>'
        '<|return_sep|><|action_sep|>    yield n + 1\n<|arg_sep|>"2"<|frame_sep|>'
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert [(f.event, f.line, f.depth) for f in got] == [
        ("call", 5, 0), ("line", 6, 0), ("call", 6, 1), ("call", 1, 2), ("line", 2, 2), ("return", 2, 2),
        ("call", 2, 2), ("line", 3, 2), ("return", 3, 2),
    ]
    assert got[6].function == "gen" and got[7].locals == {"n": "1"}
    assert all(f.problem is None for f in got)


def test_unmappable_line_and_unresolved_diff() -> None:
    src = "def f(x):\n    y = x\n    return y\n"
    text = (
        '<|call_sep|>{"x": "1"}<|action_sep|>def f(x):\n<|frame_sep|>'
        '<|line_sep|>{"x": "..", "z": ".."}<|action_sep|>    nope = 1\n<|frame_sep|>'
        '<|line_sep|>{"x": ".."}<|action_sep|>    y = x\n<|frame_sep|>'
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert got[1].line == 0 and "line not in source: '    nope = 1'" in (got[1].problem or "")
    assert "unresolved '..' for 'z'" in (got[1].problem or "")
    assert got[1].locals == {"x": "1", "z": ".."}
    # the scope's position is kept: the next line still maps
    assert got[2].line == 2 and got[2].problem is None


def test_scope_fallback_resolves_across_a_callee() -> None:
    """The demo stops at the callee's return; the same scope's last frame still holds the value."""
    src = "def g():\n    return 1\n\ndef f(a):\n    b = g()\n    return a + b\n"
    text = (
        '<|call_sep|>{"a": "5"}<|action_sep|>def f(a):\n<|frame_sep|>'
        '<|line_sep|>{"a": ".."}<|action_sep|>    b = g()\n<|frame_sep|>'
        "<|call_sep|>{}<|action_sep|>def g():\n<|frame_sep|>"
        "<|line_sep|>{}<|action_sep|>    return 1\n<|frame_sep|>"
        '<|return_sep|><|action_sep|>    return 1\n<|arg_sep|>"1"<|frame_sep|>'
        '<|line_sep|>{"a": "..", "b": "1"}<|action_sep|>    return a + b\n<|frame_sep|>'
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert got[5].locals == {"a": "5", "b": "1"} and got[5].problem is None and got[5].depth == 0


def test_line_outside_current_function_is_flagged() -> None:
    src = "def g():\n    return 1\n\ndef f():\n    return 2\n"
    text = (
        "<|call_sep|>{}<|action_sep|>def f():\n<|frame_sep|>"
        "<|line_sep|>{}<|action_sep|>    return 1\n<|frame_sep|>"
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert got[1].line == 2 and "outside f" in (got[1].problem or "")


def test_return_without_call_and_model_past_the_end() -> None:
    src = "def f():\n    return 2\n"
    text = (
        '<|return_sep|><|action_sep|>    return 2\n<|arg_sep|>"2"<|frame_sep|>'
        "<|line_sep|>{}<|action_sep|>    return 2\n<|frame_sep|>"
    )
    got = frames_from_trace_text(text, src, functions_of(src))
    assert got[0].depth == 0 and "outside any call" in (got[0].problem or "")
    assert got[1].line == 2 and "outside any call" in (got[1].problem or "")


def test_control_flow_tells_identical_lines_apart() -> None:
    """After ``if`` on line 3 the else branch's ``a.append(w)`` (line 7) runs,
    not the one inside the if body (line 5): order alone would pick line 5."""
    src = (
        "def f(r, w):\n"
        "    a = []\n"
        "    if r == w:\n"
        "        a.append(r)\n"
        "        a.append(w)\n"
        "    else:\n"
        "        a.append(w)\n"
        "        a.append(r)\n"
        "    return a\n"
    )
    out = assert_round_trip(
        src,
        [
            ("call", 1, "f", 0, {"r": "1", "w": "2"}, None),
            ("line", 2, "f", 0, {"r": "1", "w": "2"}, None),
            ("line", 3, "f", 0, {"r": "1", "w": "2", "a": "[]"}, None),
            ("line", 7, "f", 0, {"r": "1", "w": "2", "a": "[]"}, None),
            ("line", 8, "f", 0, {"r": "1", "w": "2", "a": "[2]"}, None),
            ("line", 9, "f", 0, {"r": "1", "w": "2", "a": "[2, 1]"}, None),
            ("return", 9, "f", 0, None, "[2, 1]"),
        ],
    )
    assert [f.line for f in out] == [1, 2, 3, 7, 8, 9, 9]


def test_control_flow_second_identical_loop_header() -> None:
    src = "def f(xs):\n    for x in xs:\n        pass\n    n = 0\n    for x in xs:\n        n += x\n    return n\n"
    rows = [
        ("call", 1, "f", 0, {"xs": "[1]"}, None),
        ("line", 2, "f", 0, {"xs": "[1]"}, None),
        ("line", 3, "f", 0, {"xs": "[1]", "x": "1"}, None),
        ("line", 2, "f", 0, {"xs": "[1]", "x": "1"}, None),
        ("line", 4, "f", 0, {"xs": "[1]", "x": "1"}, None),
        ("line", 5, "f", 0, {"xs": "[1]", "x": "1", "n": "0"}, None),
        ("line", 6, "f", 0, {"xs": "[1]", "x": "1", "n": "0"}, None),
        ("line", 5, "f", 0, {"xs": "[1]", "x": "1", "n": "1"}, None),
        ("line", 7, "f", 0, {"xs": "[1]", "x": "1", "n": "1"}, None),
        ("return", 7, "f", 0, None, "1"),
    ]
    assert [f.line for f in assert_round_trip(src, rows)] == [r[1] for r in rows]


def test_line_flow_of_source_that_does_not_compile() -> None:
    from neuraldbg.trace.lineflow import LineFlow

    assert LineFlow("def f(:\n").successors(1) == frozenset() and not LineFlow("x = ??\n").available
    flow = LineFlow("def f(x):\n    while x:\n        x -= 1\n    return x\n")
    assert flow.successors(2) >= {3, 4} and 2 in flow.successors(3)
    # a loop on one line can follow itself
    assert 2 in LineFlow("def f(x):\n    while x: x -= 1\n    return x\n").successors(2)
    # still mapped by order when the source does not compile
    src = "def f(x):\n    x += 1\n    x += 1\n    y = ??\n"
    text = (
        '<|call_sep|>{"x": "0"}<|action_sep|>def f(x):\n<|frame_sep|>'
        '<|line_sep|>{"x": ".."}<|action_sep|>    x += 1\n<|frame_sep|>'
        '<|line_sep|>{"x": "1"}<|action_sep|>    x += 1\n<|frame_sep|>'
    )
    fns = [fn for fn in functions_of("def f(x):\n    x += 1\n    x += 1\n    y = 0\n")]
    assert [f.line for f in frames_from_trace_text(text, src, fns)] == [1, 2, 3]


def test_without_a_function_index() -> None:
    """A stale or failed index: lines still map by text and order, names come from the def lines."""
    src = "def f(x):\n    x += 1\n    x += 1\n    return x\n"
    text = (
        '<|call_sep|>{"x": "0"}<|action_sep|>def f(x):\n<|frame_sep|>'
        '<|line_sep|>{"x": ".."}<|action_sep|>    x += 1\n<|frame_sep|>'
        '<|line_sep|>{"x": "1"}<|action_sep|>    x += 1\n<|frame_sep|>'
        '<|return_sep|><|action_sep|>    x += 1\n<|arg_sep|>"2"<|frame_sep|>'
    )
    got = frames_from_trace_text(text, src, [])
    assert [(f.line, f.function) for f in got] == [(1, "f"), (2, "f"), (3, "f"), (3, "f")]
    assert got[1].locals == {"x": "0"} and all(f.problem is None for f in got)
