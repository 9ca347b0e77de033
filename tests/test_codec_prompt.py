"""Special tokens and trace-mode prompts."""

from __future__ import annotations

import pytest

from neuraldbg.trace.cwm_prompt import mark_entry, split_lines_keepends, strip_marker, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import (
    BOS,
    EVENT_TOKEN,
    FRAME_SEP,
    SPECIAL_IDS,
    SPECIAL_NAMES,
    START_MARKER,
    TOKEN_EVENT,
    TRACE_CONTEXT_START,
    TRACE_STOP_IDS,
    ids_from_text,
    render,
    split_special_text,
)
from neuraldbg.trace.tokenizer import TextTokenizer


def test_special_ids_and_names() -> None:
    expected = {
        128000: "<|begin_of_text|>",
        128001: "<|end_of_text|>",
        128006: "<|start_header_id|>",
        128007: "<|end_header_id|>",
        128008: "<|eom_id|>",
        128009: "<|eot_id|>",
        128100: "<|frame_sep|>",
        128101: "<|action_sep|>",
        128102: "<|return_sep|>",
        128103: "<|call_sep|>",
        128104: "<|line_sep|>",
        128105: "<|exception_sep|>",
        128106: "<|arg_sep|>",
        128107: "<|trace_context_start|>",
        128002: "<|reserved_special_token_2|>",
        128255: "<|reserved_special_token_255|>",
    }
    for token_id, name in expected.items():
        assert SPECIAL_NAMES[token_id] == name and SPECIAL_IDS[name] == token_id
    assert len(SPECIAL_NAMES) == 256 and len(SPECIAL_IDS) == 256
    assert set(TRACE_STOP_IDS) == {128100, 128001, 128008, 128009}
    assert EVENT_TOKEN == {"call": 128103, "line": 128104, "return": 128102, "exception": 128105}
    assert {v: k for k, v in TOKEN_EVENT.items()} == EVENT_TOKEN
    assert START_MARKER == "  # << START_OF_TRACE"


def test_split_special_text_and_render_round_trip() -> None:
    tok = TextTokenizer()
    text = '<|line_sep|>{"a": "<|nope|>"}<|action_sep|>x = "é"\n<|frame_sep|>'
    pieces = split_special_text(text)
    assert pieces == [128104, '{"a": "<|nope|>"}', 128101, 'x = "é"\n', 128100]
    assert render(tok, ids_from_text(tok, text)) == text


def test_mark_entry_appends_marker() -> None:
    src = "import os\n\ndef f(x):\n    return x\n"
    assert mark_entry(src, 3) == "import os\n\ndef f(x):  # << START_OF_TRACE\n    return x\n"


def test_mark_entry_is_idempotent_and_moves_other_markers() -> None:
    src = "def g():  # << START_OF_TRACE\n    pass\ndef f(x):\n    return x\n"
    once = mark_entry(src, 3)
    assert once == "def g():\n    pass\ndef f(x):  # << START_OF_TRACE\n    return x\n"
    assert mark_entry(once, 3) == once


def test_mark_entry_after_trailing_comment_and_crlf() -> None:
    src = "def f(x):  # the entry   \r\n\treturn x\r\n"
    assert mark_entry(src, 1) == "def f(x):  # the entry  # << START_OF_TRACE\r\n\treturn x\r\n"
    assert mark_entry("def f(): pass", 1) == "def f(): pass  # << START_OF_TRACE"


def test_mark_entry_rejects_bad_line() -> None:
    with pytest.raises(ValueError, match="outside the source"):
        mark_entry("def f():\n    pass\n", 3)
    with pytest.raises(ValueError):
        mark_entry("def f():\n    pass\n", 0)


def test_strip_marker_is_a_suffix_strip() -> None:
    # rstrip("  # << START_OF_TRACE") would also eat these trailing characters
    assert strip_marker("x = 'TRACE'") == "x = 'TRACE'"
    assert strip_marker("return ACE_T") == "return ACE_T"
    assert strip_marker("def f():  # << START_OF_TRACE\n") == "def f():\n"


def test_split_lines_like_python() -> None:
    assert split_lines_keepends("a\r\nb\rc\nd") == ["a\r\n", "b\r", "c\n", "d"]
    # form feed and U+2028 are not line ends for Python (str.splitlines says they are)
    assert split_lines_keepends("a\x0cb\u2028c\n") == ["a\x0cb\u2028c\n"]


def test_prompt_ids() -> None:
    tok = TextTokenizer()
    src = mark_entry("def f(x):\n    return x\n", 1)
    ids = trace_prompt_ids(tok, src)
    assert ids[:2] == [BOS, TRACE_CONTEXT_START] and ids[-1] == FRAME_SEP
    assert tok.decode(ids[2:-1]) == src
    # a missing final newline is added so the separator follows a complete line
    assert tok.decode(trace_prompt_ids(tok, src.rstrip("\n"))[2:-1]) == src
    # user text that spells a special token stays ordinary text
    sneaky = 'def f():  # << START_OF_TRACE\n    return "<|frame_sep|><|end_of_text|>"\n'
    assert trace_prompt_ids(tok, sneaky).count(FRAME_SEP) == 1
