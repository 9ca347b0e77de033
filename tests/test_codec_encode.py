"""Frame encoding: the exact CWM text and token ids, and the diff rule."""

from __future__ import annotations

import json

from codec_support import SUM_SRC, SUM_TEXT, frames, functions_of, sum_trace

from neuraldbg.trace.cwm_encode import encode_frame, encode_trace, reference_index
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import (
    ACTION_SEP,
    ARG_SEP,
    BOS,
    CALL_SEP,
    EOT,
    FRAME_SEP,
    LINE_SEP,
    RETURN_SEP,
    TRACE_CONTEXT_START,
    render,
)
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.trace.tokenizer import TextTokenizer

def test_worked_example_exact_text() -> None:
    tok = TextTokenizer()
    ids = trace_prompt_ids(tok, mark_entry(SUM_SRC, 1)) + encode_trace(tok, sum_trace())
    assert render(tok, ids) == SUM_TEXT


def test_worked_example_exact_ids() -> None:
    tok = TextTokenizer()
    enc = tok.encode
    trace = sum_trace()
    prompt = trace_prompt_ids(tok, mark_entry(SUM_SRC, 1))
    assert prompt == [BOS, TRACE_CONTEXT_START, *enc(mark_entry(SUM_SRC, 1)), FRAME_SEP]
    ids = encode_trace(tok, trace)
    expected_first = [CALL_SEP, *enc('{"xs": "[3, 4]"}'), ACTION_SEP, *enc("def f(xs):\n"), FRAME_SEP]
    expected_second = [LINE_SEP, *enc('{"xs": ".."}'), ACTION_SEP, *enc("    total = 0\n"), FRAME_SEP]
    expected_last = [RETURN_SEP, ACTION_SEP, *enc("    return total\n"), ARG_SEP, *enc('"7"'), FRAME_SEP, EOT]
    assert ids[: len(expected_first)] == expected_first
    assert ids[len(expected_first) : len(expected_first) + len(expected_second)] == expected_second
    assert ids[-len(expected_last) :] == expected_last
    assert ids.count(FRAME_SEP) == len(trace.frames)


def test_incomplete_trace_has_no_end_token() -> None:
    tok = TextTokenizer()
    trace = sum_trace()
    trace.frames = trace.frames[:3]
    trace.status = "truncated"
    ids = encode_trace(tok, trace)
    assert ids[-1] == FRAME_SEP and EOT not in ids


def test_json_is_python_default_settings() -> None:
    """ensure_ascii=True and ", "/": " separators, byte for byte as json.dumps."""
    tok = TextTokenizer()
    locals_ = {"s": "'héllo 🎉'", "d": "{'a': [1, 2]}", "q": "'say \"hi\"'"}
    frame = Frame("call", 1, "f", 0, locals_, None, "def f(s, d, q):")
    text = render(tok, encode_frame(tok, frame, None))
    assert text == "<|call_sep|>" + json.dumps(locals_) + "<|action_sep|>def f(s, d, q):\n<|frame_sep|>"
    assert "\\u00e9" in text and "\\ud83c\\udf89" in text and '\\"hi\\"' in text


def test_exception_value_and_no_locals_on_return() -> None:
    tok = TextTokenizer()
    exc = Frame("exception", 3, "f", 0, {"x": "1"}, "ZeroDivisionError('division by zero')", "    return 1 / x")
    text = render(tok, encode_frame(tok, exc, {"x": "1"}))
    assert text == (
        "<|exception_sep|><|action_sep|>    return 1 / x\n"
        "<|arg_sep|>\"ZeroDivisionError('division by zero')\"<|frame_sep|>"
    )


def test_marker_and_line_end_never_reach_the_action() -> None:
    tok = TextTokenizer()
    frame = Frame("call", 1, "f", 0, {}, None, "def f():  # << START_OF_TRACE\r\n")
    assert render(tok, encode_frame(tok, frame, None)) == "<|call_sep|>{}<|action_sep|>def f():\n<|frame_sep|>"


CALLEE_SRC = """\
def g(a):
    a = a + 1
    return a

def f(n):
    k = 2
    m = g(n)
    return m + k
"""
CALLEE_ROWS = [
    ("call", 5, "f", 0, {"n": "1"}, None),
    ("line", 6, "f", 0, {"n": "1"}, None),
    ("line", 7, "f", 0, {"n": "1", "k": "2"}, None),
    ("call", 1, "g", 1, {"a": "1"}, None),
    ("line", 2, "g", 1, {"a": "1"}, None),
    ("line", 3, "g", 1, {"a": "2"}, None),
    ("return", 3, "g", 1, None, "2"),
    ("line", 8, "f", 0, {"n": "1", "k": "2", "m": "2"}, None),
    ("return", 8, "f", 0, None, "4"),
]


def test_diff_across_a_callee() -> None:
    """The caller's frame after the callee returns is written in full; the
    callee's call frame too; within a scope unchanged values become ".."."""
    tok = TextTokenizer()
    fs = frames(CALLEE_SRC, CALLEE_ROWS)
    chunks = render(tok, encode_trace(tok, Trace("f", "f(1)", "exec", fs))).split("<|frame_sep|>")
    assert chunks[2] == '<|line_sep|>{"n": "..", "k": "2"}<|action_sep|>    m = g(n)\n'
    assert chunks[3] == '<|call_sep|>{"a": "1"}<|action_sep|>def g(a):\n'
    assert chunks[4] == '<|line_sep|>{"a": ".."}<|action_sep|>    a = a + 1\n'
    assert chunks[7] == '<|line_sep|>{"n": "1", "k": "2", "m": "2"}<|action_sep|>    return m + k\n'
    assert [reference_index(fs, i) for i in range(len(fs))] == [None, 0, 1, None, 3, 4, 5, None, 7]


def test_reference_skips_same_scope_exceptions_only() -> None:
    src = """\
def g():
    raise ValueError('x')

def f():
    try:
        g()
    except ValueError:
        y = 1
    return y
"""
    rows = [
        ("call", 4, "f", 0, {}, None),
        ("line", 5, "f", 0, {}, None),
        ("line", 6, "f", 0, {}, None),
        ("call", 1, "g", 1, {}, None),
        ("line", 2, "g", 1, {}, None),
        ("exception", 2, "g", 1, None, "ValueError('x')"),
        ("return", 2, "g", 1, None, "None"),
        ("exception", 6, "f", 0, None, "ValueError('x')"),
        ("line", 7, "f", 0, {}, None),
        ("exception", 7, "f", 0, None, "ValueError('x')"),
        ("line", 8, "f", 0, {}, None),
    ]
    fs = frames(src, rows)
    refs = [reference_index(fs, i) for i in range(len(fs))]
    # after the callee's return: no reference (even past the caller's exception frame)
    assert refs[8] is None
    # an exception frame of the same scope is skipped
    assert refs[10] == 8
    assert functions_of(src)[0].qualname == "g"
