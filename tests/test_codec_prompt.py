"""Special tokens and trace-mode prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
from codec_support import functions_of

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.replay import ReplayBackend
from neuraldbg.simulation.model_engine import ModelEngine
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_prompt import (
    mark_entry,
    marked_lines,
    split_lines_keepends,
    strip_marker,
    trace_context,
    trace_prompt_ids,
)
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
from neuraldbg.tracer import run_trace


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
    # user text that spells a special token stays ordinary text
    sneaky = 'def f():  # << START_OF_TRACE\n    return "<|frame_sep|><|end_of_text|>"\n'
    assert trace_prompt_ids(tok, sneaky).count(FRAME_SEP) == 1


# -- the context as the release builds it ---------------------------------------
# The release (facebookresearch/cwm, demos/cwmdbg.py) reads the file with
# open() in text mode (universal newlines), encodes it as read and puts the
# START marker nowhere itself: the user writes it on the entry's def line.

MARK = "<<M>>"  # where the user of the release writes the marker (the entry's def line)


def _release_context_text(path: Path) -> str:
    """demos/cwmdbg.py, main(): ``with open(context) as f: src = f.read()``.
    (The release uses the locale's encoding; these files are UTF-8.)"""
    with open(path, encoding="utf-8") as f:
        return f.read()


def _release_prompt_ids(tok: TextTokenizer, src: str) -> list[int]:
    """demos/cwmdbg.py, CWMDebugger._step(): ``[bos_id, trace_context_start_id]
    + tokenizer.encode(self.source) + [frame_sep_id]``."""
    return [BOS, TRACE_CONTEXT_START, *tok.encode(src), FRAME_SEP]


RELEASE_CASES: dict[str, str] = {
    "lf": "import os\n\n\ndef f(x):<<M>>\n    return os.sep + x\n",
    "crlf": "import os\r\n\r\ndef f(x):  # the entry<<M>>\r\n    return x + 1\r\n",
    "lone-cr": "def f(x):<<M>>\r    y = x * 2\r    return y\r",
    "mixed-ends": "def g():\n    pass\r\ndef f(x):<<M>>\r\n    return x\r\r\n",
    "no-final-newline": "def f(x):<<M>>\n    return x",
    "crlf-no-final-newline": "def f(x):<<M>>\r\n    return x",
    "marker-in-strings": (
        'DOC = """\n'
        "an example:  # << START_OF_TRACE\n"
        '"""\n'
        "\n"
        "def f(x):<<M>>\n"
        "    s = '''\n"
        "    def g():  # << START_OF_TRACE\n"
        "    '''\n"
        '    t = "# << START_OF_TRACE"  # not a marker either\n'
        "    return s + t + x\n"
    ),
    "decorators": (
        "import functools\n"
        "\n"
        "\n"
        "@functools.lru_cache(maxsize=None)  # cached\n"
        "@functools.wraps(len)\n"
        "def fib(n: int) -> int:<<M>>\n"
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
    ),
    "method": (
        "class Counter:\r\n"
        "    def __init__(self):\r\n"
        "        self.n = 0\r\n"
        "\r\n"
        "    @property\r\n"
        "    def double(self) -> int:  # é<<M>>\r\n"
        "        return self.n * 2\r\n"
    ),
}


def _def_line(template: str) -> int:
    (number,) = [n for n, line in enumerate(split_lines_keepends(template), start=1) if MARK in line]
    return number


@pytest.mark.parametrize("name", sorted(RELEASE_CASES))
def test_context_is_what_the_release_reads(name: str, tmp_path: Path) -> None:
    template = RELEASE_CASES[name]
    release_file = tmp_path / "code.py"
    release_file.write_bytes(template.replace(MARK, START_MARKER).encode("utf-8"))
    expected = _release_context_text(release_file)
    tok = TextTokenizer()
    def_line = _def_line(template)
    unmarked = template.replace(MARK, "")
    # the index puts the entry where the release's user puts the marker (the def keyword's line)
    entry = next(fn for fn in functions_of(unmarked) if fn.def_line == def_line)
    for source in (unmarked, template.replace(MARK, START_MARKER)):
        marked = mark_entry(source, entry.def_line)
        assert trace_context(marked) == expected
        assert trace_prompt_ids(tok, marked) == _release_prompt_ids(tok, expected)
    # one line end per line: line N of the file is line N of the context
    assert len(split_lines_keepends(expected)) == len(split_lines_keepends(unmarked))


def test_context_turns_crlf_and_cr_into_lf_keeping_line_numbers() -> None:
    src = "def f(x):\r\n    y = x\r    return y\r\n"
    context = trace_context(mark_entry(src, 1))
    assert context == "def f(x):  # << START_OF_TRACE\n    y = x\n    return y\n"
    assert len(split_lines_keepends(context)) == len(split_lines_keepends(src))


def test_context_adds_no_final_newline() -> None:
    tok = TextTokenizer()
    ids = trace_prompt_ids(tok, "def f():  # << START_OF_TRACE\n    return 1")
    assert tok.decode(ids[2:-1]) == "def f():  # << START_OF_TRACE\n    return 1"


def test_marker_looking_string_content_is_left_as_it_is() -> None:
    src = 'def g():\n    s = """\n    x  # << START_OF_TRACE\n    """\n    return s\n\ndef f():\n    return 1\n'
    marked = mark_entry(src, 7)
    lines = split_lines_keepends(marked)
    assert lines[2] == "    x  # << START_OF_TRACE\n"  # string content, byte for byte
    assert lines[6] == "def f():  # << START_OF_TRACE\n"
    assert marked.replace("def f():  # << START_OF_TRACE", "def f():") == src


def test_marked_lines_are_real_comments_only() -> None:
    src = 'def g():\n    s = """\n    x  # << START_OF_TRACE\n    """\n    return s\n\ndef f():\n    return 1\n'
    assert marked_lines(trace_context(mark_entry(src, 7))) == [7]
    assert marked_lines("def f():  # << START_OF_TRACE\r\n    pass\r\n") == [1]
    assert marked_lines("def f():\n    pass\n") == []


def test_only_real_marker_comments_elsewhere_are_removed() -> None:
    src = "def g():  # old  # << START_OF_TRACE\n    return '# << START_OF_TRACE'\ndef f():\n    pass\n"
    assert mark_entry(src, 3) == (
        "def g():  # old\n    return '# << START_OF_TRACE'\ndef f():  # << START_OF_TRACE\n    pass\n"
    )


def test_text_python_cannot_tokenize_is_left_past_the_error() -> None:
    # an unindent that matches no level stops tokenize at line 3: from there on
    # nothing is known, so nothing is removed, and the entry's own marker is
    # recognised by its text (not doubled)
    src = (
        "def g():  # << START_OF_TRACE\n      x = 1\n  y = 2  # << START_OF_TRACE\n"
        "def f():  # << START_OF_TRACE\n    pass\n"
    )
    assert mark_entry(src, 4) == src.replace("def g():  # << START_OF_TRACE", "def g():", 1)
    # an unclosed bracket stops it only at the end: the comment inside was seen
    broken = "def f():\n    x = (1,\n  y = 2  # << START_OF_TRACE\n"
    assert mark_entry(broken, 1) == "def f():  # << START_OF_TRACE\n    x = (1,\n  y = 2\n"


def test_crlf_file_through_the_model_path_maps_to_its_own_lines() -> None:
    """The model sees LF lines and writes them back with ``\\n``; the mapper
    reads the CRLF document: frames land on the document's line numbers."""
    src = (
        "def helper(v):\r\n"
        "    return v + 1\r\n"
        "\r\n"
        "def f(xs):\r\n"
        "    total = 0\r"
        "    for x in xs:\r\n"
        "        total = helper(total)\r\n"
        "        total = helper(total)\r\n"
        "    return total\r\n"
    )
    tok = TextTokenizer()
    truth = run_trace(src, "f([1, 2])", function="f")
    index = index_text(src)
    backend = ReplayBackend.for_trace(truth, tok, source=src, functions=index.functions)
    engine = ModelEngine(backend, tok, source=src, function=index.function("f"), functions=index.functions,
                         call="f([1, 2])", sampling=Sampling(), backend_kind="replay",
                         call_locals=dict(truth.frames[0].locals))
    assert "\r" not in tok.decode(engine.context[2:-1])
    got = Simulation(engine, function="f", call="f([1, 2])").run_to_end()
    assert got.status == "complete" and truth.status == "complete"
    assert [(f.event, f.line, f.function, f.source) for f in got.frames] == [
        (f.event, f.line, f.function, f.source) for f in truth.frames
    ]
    assert [f.line for f in got.frames if f.function == "f" and f.event == "line"] == [5, 6, 7, 8, 6, 7, 8, 6, 9]
    assert all("\r" not in f.source and f.problem is None for f in got.frames)
