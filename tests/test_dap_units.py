"""The debug adapter's pure parts: safe evaluation, breakpoint lines and hit
counts, variables from reprs, and the wire framing."""

from __future__ import annotations

import io
import json

import pytest

from neuraldbg.dap import variables as dapvars
from neuraldbg.dap.breakpoints import EvalError as BpEvalError
from neuraldbg.dap.breakpoints import line_table, make_breakpoint, parse_hit_condition, reached
from neuraldbg.dap.protocol import BadMessage, Connection, PollingReader, ProtocolError, encode_message, read_message
from neuraldbg.dap.safe_eval import EvalError, evaluate, interpolate, parse_new_value
from neuraldbg.source.index import index_text

NAMES = {"xs": "[3, 1, 2]", "s": "'abc'", "d": "{'a': 1, 'b': [2, 3]}", "n": "7", "obj": "<Point object at 0x7f>",
         "t": "(1, 'x')", "e": "set()"}


@pytest.mark.parametrize("expr, value", [
    ("xs[0] + n", 10), ("len(xs) == 3 and s[-1] == 'c'", True), ("d['b'][1] * 2", 6), ("sorted(xs)", [1, 2, 3]),
    ("max(xs) if xs else None", 3), ("s * 2", "abcabc"), ("t[1] in s + 'xyz'", True), ("n // 2, n % 2", (3, 1)),
    ("not e", True), ("-n ** 2", -49), ("list(reversed(xs))", [2, 1, 3]), ("sum(range(5))", 10),
    ("{'k': n}", {"k": 7}), ("type(d)", "dict"), ("1 < n <= 7", True),
    ("sorted(xs, reverse=True)[0]", 3), ("xs[1:]", [1, 2]),
])
def test_expressions_over_predicted_values(expr: str, value: object) -> None:
    assert evaluate(expr, NAMES) == value


@pytest.mark.parametrize("expr, message", [
    ("obj", "its repr is not a literal"),
    ("xs.append(4)", "attribute access is not allowed"),
    ("s.upper", "attribute access is not allowed"),
    ("__import__('os')", "calling __import__ is not allowed"),
    ("eval('1')", "calling eval is not allowed"),
    ("[x for x in xs]", "ListComp is not allowed"),
    ("{k: 1 for k in xs}", "DictComp is not allowed"),
    ("lambda: 1", "Lambda is not allowed"),
    ("(y := 3)", "NamedExpr is not allowed"),
    ("f'{n}'", "f-strings are not allowed"),
    ("'a' * 10 ** 9", "too large"),
    ("2 ** 10 ** 8", "too large"),
    ("1 << 10 ** 7", "too large"),
    ("'%0999999999d' % 1", "%-formatting is not allowed"),
    ("list(range(10 ** 9))", "too long"),
    ("xs[10]", "IndexError"),
    ("n / 0", "ZeroDivisionError"),
    ("missing", "name 'missing' is not defined"),
    ("sorted(xs, key=len)", "keyword argument key is not allowed"),
    ("x" * 3000, "longer than"),
    ("[" * 200 + "]" * 200, "nested too deeply"),
    ("1 +", "syntax error"),
    ("", "empty expression"),
])
def test_refused_or_failing_expressions_are_clear(expr: str, message: str) -> None:
    with pytest.raises(EvalError, match=None) as info:
        evaluate(expr, NAMES)
    assert message in str(info.value)


def test_log_message_interpolation() -> None:
    assert interpolate("n={n} s={s} first={xs[0]} {{x}} {nope} {unclosed", NAMES) == (
        "n=7 s=abc first=3 {x} <error: name 'nope' is not defined at this step> {unclosed")
    assert interpolate("{ {'k': n}['k'] }", NAMES) == "7"


def test_new_values_must_be_literals() -> None:
    assert parse_new_value(" [1,2] ") == "[1, 2]"
    assert parse_new_value('"it\'s"') == '"it\'s"'
    assert parse_new_value("{'a': (1, None)}") == "{'a': (1, None)}"
    for bad in ("foo()", "x", "[1,", "__import__('os')", ""):
        with pytest.raises(EvalError):
            parse_new_value(bad)


def test_hit_conditions() -> None:
    assert [parse_hit_condition("3").met(i) for i in range(1, 5)] == [False, False, True, False]
    assert [parse_hit_condition(">= 2").met(i) for i in range(1, 5)] == [False, True, True, True]
    assert [parse_hit_condition("%2").met(i) for i in range(1, 5)] == [False, True, False, True]
    assert [parse_hit_condition("<3").met(i) for i in range(1, 5)] == [True, True, False, False]
    for bad in ("often", "%", ">= x", "-1"):
        with pytest.raises(BpEvalError):
            parse_hit_condition(bad)


PROGRAM = '''\
import functools


class Stack:
    def __init__(self):
        self.items = []

    def push(self, x):
        self.items.append(x)
        return self


def helper(v):
    return v * 2


def unused():
    return 0


@functools.lru_cache
def entry(n):
    """Docstring."""
    def inner(k):
        return helper(k)

    s = Stack()
    for i in range(n):
        s.push(inner(i))
    return s
'''


def test_breakable_lines_are_those_of_every_function() -> None:
    # Any function of the file may run (a callback is reached through a value, not a call by name).
    table = line_table(PROGRAM, index_text(PROGRAM).functions, "entry")
    assert set(table.ranges) == {"entry", "entry.inner", "helper", "unused", "Stack.__init__", "Stack.push"}
    assert table.resolve(27) == (27, None)
    assert table.resolve(21) == (22, None)  # a decorator line moves to the def line, where the call event is
    assert table.resolve(22) == (22, None)
    assert table.resolve(23) == (24, None)  # docstring: moves to the next line with code
    assert table.resolve(25) == (25, None) and table.lines[25] == "entry.inner"
    assert table.resolve(26) == (27, None)
    assert table.resolve(6) == (6, None) and table.lines[6] == "Stack.__init__"
    assert table.resolve(13) == (13, None)
    assert table.resolve(18) == (18, None)
    line, problem = table.resolve(1)
    assert line is None and "not inside a function" in problem


def test_a_file_with_a_hole_allows_every_function_line() -> None:
    text = "def f(x):\n    y = ??\n    return y\n"
    table = line_table(text, index_text(text).functions, "f")
    assert table.resolve(2) == (2, None) and table.resolve(3) == (3, None)


def test_breakpoint_hits_count_consistently_when_going_back() -> None:
    table = line_table(PROGRAM, index_text(PROGRAM).functions, "entry")
    bp = make_breakpoint(1, "/p.py", {"line": 29, "condition": "i >= 1", "hitCondition": "2"}, table)
    assert bp.verified
    assert reached(bp, 5, {"i": "0"}) is None  # condition false: not a hit
    assert reached(bp, 9, {"i": "1"}) is None  # first hit
    hit = reached(bp, 13, {"i": "2"})
    assert hit is not None and hit.stop  # second hit
    # back in time to before the second hit, then forward again: still the second
    hit = reached(bp, 13, {"i": "2"})
    assert hit is not None and hit.stop and bp.hits == [9, 13]
    bad = make_breakpoint(2, "/p.py", {"line": 29, "condition": "i.real"}, table)
    assert not bad.verified and "attribute access" in (bad.message or "")
    erring = make_breakpoint(3, "/p.py", {"line": 29, "condition": "missing > 1"}, table)
    hit = reached(erring, 4, {"i": "0"})
    assert hit is not None and hit.stop and "missing" in (hit.error or "")  # stop and say why
    log = make_breakpoint(4, "/p.py", {"line": 29, "logMessage": "i is {i}"}, table)
    hit = reached(log, 4, {"i": "0"})
    assert hit is not None and not hit.stop and hit.log == "i is 0"


def test_variables_expand_literal_containers_only() -> None:
    kids = dapvars.children("{'a': [1, 2], 3: (4,)}", "d")
    assert [(c.name, c.text, c.evaluate_name) for c in kids] == [("'a'", "[1, 2]", "d['a']"), ("3", "(4,)", "d[3]")]
    assert [c.text for c in dapvars.children("{1.5, 'x'}", "s")] == ["1.5", "'x'"]
    assert dapvars.children("[Point(1, 2)]", "p") is None  # not a literal: shown as text
    assert dapvars.children("'abc'", "s") is None
    assert dapvars.children("[1, 2", "s") is None
    assert dapvars.count_children("[]") == 0 and dapvars.count_children("[[1], 2]") == 2
    assert dapvars.type_name("(1,)") == "tuple" and dapvars.type_name("<object>") is None


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_framing_reads_messages_and_reports_garbage() -> None:
    good = json.dumps({"seq": 1, "type": "request", "command": "threads"}).encode()
    stream = io.BytesIO(frame(good) + b"\r\n" + frame(b"[1, 2]") + frame(b"{bad") + frame(good))
    assert read_message(stream)["command"] == "threads"
    with pytest.raises(BadMessage, match="JSON object"):
        read_message(stream)
    with pytest.raises(BadMessage, match="not JSON"):
        read_message(stream)
    assert read_message(stream)["seq"] == 1
    assert read_message(stream) is None
    with pytest.raises(ProtocolError, match="bad Content-Length"):
        read_message(io.BytesIO(b"Content-Length: lots\r\n\r\n"))
    with pytest.raises(ProtocolError, match="out of range"):
        read_message(io.BytesIO(b"Content-Length: 999999999999\r\n\r\n"))
    with pytest.raises(ProtocolError, match="malformed header"):
        read_message(io.BytesIO(b"hello\r\n\r\n"))
    assert encode_message({"a": "é"}) == b'Content-Length: 10\r\n\r\n{"a":"\xc3\xa9"}'


def test_connection_numbers_messages_and_answers_bad_requests() -> None:
    out = io.BytesIO()
    conn = Connection(io.BytesIO(), out)
    conn.respond({"seq": 7, "command": "next"}, {"x": 1})
    conn.respond({"command": 5}, error="boom")
    conn.event("stopped", {"reason": "step"})
    msgs = []
    stream = io.BytesIO(out.getvalue())
    while (m := read_message(stream)) is not None:
        msgs.append(m)
    assert [m["seq"] for m in msgs] == [1, 2, 3]
    assert msgs[0] == {"seq": 1, "type": "response", "request_seq": 7, "command": "next", "success": True, "body": {"x": 1}}
    assert msgs[1]["success"] is False and msgs[1]["message"] == "boom" and msgs[1]["request_seq"] == 0
    assert msgs[2]["event"] == "stopped"


def test_polling_reader_reads_a_pipe_and_stops() -> None:
    import os
    import threading

    r, w = os.pipe()
    reader = PollingReader(r, poll_seconds=0.05)
    body = json.dumps({"seq": 3}).encode()
    os.write(w, frame(body)[:10])
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(read_message(reader)))
    t.start()
    os.write(w, frame(body)[10:])
    t.join(5)
    assert got == [{"seq": 3}]
    # a reader waiting for input gives up when stopped
    t = threading.Thread(target=lambda: got.append(read_message(reader)))
    t.start()
    reader.stop()
    t.join(5)
    assert not t.is_alive() and got[-1] is None
    os.close(r)
    os.close(w)
