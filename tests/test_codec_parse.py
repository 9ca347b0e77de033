"""The streaming parser: frames as soon as they close, malformed output flagged, never an exception."""

from __future__ import annotations

import random

from codec_support import SUM_SRC, frames, functions_of, sum_trace

from neuraldbg.trace.cwm_decode import decode_trace
from neuraldbg.trace.cwm_encode import encode_trace
from neuraldbg.trace.cwm_parse import RawFrame, StreamParser, parse_ids, parse_text
from neuraldbg.trace.cwm_tokens import (
    ACTION_SEP,
    EOM_ID,
    EOT,
    EOT_ID,
    FRAME_SEP,
    LINE_SEP,
    SPECIAL_NAMES,
    VOCAB_SIZE,
    ids_from_text,
    render,
)
from neuraldbg.trace.linemap import LineMapper
from neuraldbg.trace.tokenizer import TextTokenizer

TOK = TextTokenizer()


def parse(text: str) -> list[RawFrame]:
    """Parse ``text`` (special names written out) as ids."""
    return parse_ids(TOK, ids_from_text(TOK, text))


def one(text: str) -> RawFrame:
    out = [r for r in parse(text) if not r.end]
    assert len(out) == 1, out
    return out[0]


def test_well_formed_frames() -> None:
    ids = encode_trace(TOK, sum_trace())
    raws = parse_ids(TOK, ids)
    assert [r.event for r in raws] == ["call"] + ["line"] * 7 + ["return", None]
    assert raws[-1].end and all(r.problem is None for r in raws)
    assert raws[0].locals_raw == {"xs": "[3, 4]"} and raws[0].source_line == "def f(xs):\n"
    assert raws[4].locals_raw == {"xs": "..", "total": "3", "x": ".."}
    assert raws[8].value == "7" and raws[8].source_line == "    return total\n"


def test_streaming_one_id_at_a_time() -> None:
    ids = encode_trace(TOK, sum_trace())
    parser = StreamParser(TOK)
    seen: list[tuple[int, RawFrame]] = []
    for pos, token_id in enumerate(ids):
        for raw in parser.feed_ids([token_id]):
            seen.append((pos, raw))
    assert parser.close() == []
    closing = [i for i, t in enumerate(ids) if t in (FRAME_SEP, EOT)]
    assert [pos for pos, _ in seen] == closing
    assert [r for _, r in seen] == parse_ids(TOK, ids)


def test_multibyte_character_split_across_ids() -> None:
    text = '<|line_sep|>{"s": "\'é🎉\'"}<|action_sep|>    s = "é🎉"\n<|frame_sep|>'
    ids = ids_from_text(TOK, text)
    parser = StreamParser(TOK)
    out = []
    for token_id in ids:
        out += parser.feed_ids([token_id])
    assert out == [RawFrame("line", {"s": "'é🎉'"}, '    s = "é🎉"\n', None, None)]


def test_feed_text_with_names_split_anywhere() -> None:
    text = render(TOK, encode_trace(TOK, sum_trace()))
    expected = parse_text(text)
    assert expected == parse_ids(TOK, encode_trace(TOK, sum_trace()))
    rng = random.Random(7)
    for _ in range(30):
        parser = StreamParser(None)
        out: list[RawFrame] = []
        pos = 0
        while pos < len(text):
            step = rng.randint(1, 9)
            out += parser.feed_text(text[pos : pos + step])
            pos += step
        out += parser.close()
        assert out == expected


def test_text_that_only_looks_special_stays_text() -> None:
    raw = one('<|line_sep|>{"s": "\'<|nope|>\'"}<|action_sep|>    s = "<|nope|> <|"\n<|frame_sep|>')
    assert raw.problem is None and raw.locals_raw == {"s": "'<|nope|>'"}
    parser = StreamParser(None)
    out = parser.feed_text('<|line_sep|>{}<|action_sep|>a <') + parser.feed_text("| b\n<|frame_sep|>")
    assert out == [RawFrame("line", {}, "a <| b\n")]


def test_forced_event() -> None:
    parser = StreamParser(TOK)
    assert parser.parse_forced("return") == []
    out = parser.feed_ids(ids_from_text(TOK, '<|action_sep|>    return total\n<|arg_sep|>"7"<|frame_sep|>'))
    assert out == [RawFrame("return", {}, "    return total\n", "7")]
    # forcing while a frame is open closes it, flagged
    parser.feed_ids(ids_from_text(TOK, '<|line_sep|>{"a": "1"}'))
    cut = parser.parse_forced("line")
    assert len(cut) == 1 and "forced" in (cut[0].problem or "")
    assert parser.feed_ids(ids_from_text(TOK, "{}<|action_sep|>x\n<|frame_sep|>")) == [RawFrame("line", {}, "x\n")]


def test_end_tokens() -> None:
    for end in (EOT, EOM_ID, EOT_ID):
        out = parse_ids(TOK, [end])
        assert out == [RawFrame(None, end=True)]
    out = parse(f'<|line_sep|>{{}}<|action_sep|>x\n{SPECIAL_NAMES[EOT]}')
    assert out[0].event == "line" and "cut off" in (out[0].problem or "") and out[1].end


def test_malformed_cases_are_flagged() -> None:
    cases = {
        "invalid JSON": '<|line_sep|>{"a": "1",<|action_sep|>x\n<|frame_sep|>',
        "not a JSON object": "<|line_sep|>[1, 2]<|action_sep|>x\n<|frame_sep|>",
        "non-string value": '<|line_sep|>{"a": 1}<|action_sep|>x\n<|frame_sep|>',
        "missing <|action_sep|>": '<|line_sep|>{"a": "1"}x\n<|frame_sep|>',
        "unexpected <|call_sep|>": '<|line_sep|>{"a": "1"}<|call_sep|><|action_sep|>x\n<|frame_sep|>',
        "unexpected <|begin_of_text|>": "<|line_sep|>{}<|action_sep|>x<|begin_of_text|>\n<|frame_sep|>",
        "missing event token": '{"a": "1"}<|action_sep|>x\n<|frame_sep|>',
        "empty frame": "<|frame_sep|>",
        "without a value": "<|return_sep|><|action_sep|>    return x\n<|frame_sep|>",
        "value is not JSON": "<|return_sep|><|action_sep|>    return x\n<|arg_sep|>7]<|frame_sep|>",
        "value is not a JSON string": "<|return_sep|><|action_sep|>    return x\n<|arg_sep|>7<|frame_sep|>",
        "value on a line frame": '<|line_sep|>{}<|action_sep|>x\n<|arg_sep|>"1"<|frame_sep|>',
        "unexpected <|reserved_special_token_50|>": "<|line_sep|>{}<|reserved_special_token_50|><|frame_sep|>",
    }
    for expected, text in cases.items():
        raw = one(text)
        assert raw.problem is not None and expected in raw.problem, (expected, raw)


def test_salvaged_content_of_malformed_frames() -> None:
    raw = one('<|line_sep|>{"a": 1}<|action_sep|>x\n<|frame_sep|>')
    assert raw.locals_raw == {"a": "1"} and raw.source_line == "x\n"
    raw = one("<|line_sep|>    total = 0\n<|frame_sep|>")  # locals and action_sep missing: the text is the line
    assert raw.locals_raw == {} and raw.source_line == "    total = 0\n"
    raw = one("<|return_sep|><|action_sep|>    return x\n<|arg_sep|>7<|frame_sep|>")
    assert raw.value == "7"


def test_resync_at_next_frame_sep() -> None:
    out = parse(
        '<|line_sep|>{"a": "1"}<|line_sep|>junk<|action_sep|>more\n<|frame_sep|>'
        '<|line_sep|>{"a": "2"}<|action_sep|>y\n<|frame_sep|>'
    )
    assert len(out) == 2 and out[0].problem and out[1] == RawFrame("line", {"a": "2"}, "y\n")


def test_cut_off_by_close_and_text_after_end() -> None:
    parser = StreamParser(TOK)
    assert parser.feed_ids(ids_from_text(TOK, '<|line_sep|>{"a": "1"}<|action_sep|>x')) == []
    assert parser.in_frame
    cut = parser.close()
    assert len(cut) == 1 and "cut off" in (cut[0].problem or "") and cut[0].source_line == "x"
    out = parse("<|end_of_text|><|line_sep|>{}<|action_sep|>x\n<|frame_sep|>tail")
    assert out[0].end
    assert all("after end" in (r.problem or "") for r in out[1:]) and len(out) == 3


def test_fuzz_random_ids_never_raise(tiny_tokenizer) -> None:
    from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter

    src = SUM_SRC
    fns = functions_of(src)
    valid = encode_trace(TOK, sum_trace())
    specials = list(SPECIAL_NAMES)
    frequent = [FRAME_SEP, ACTION_SEP, LINE_SEP, 128101, 128102, 128103, 128105, 128106, EOT]
    rng = random.Random(1234)
    for tok in (TOK, HFTokenizerAdapter(tiny_tokenizer)):
        for trial in range(150):
            ids: list[int] = []
            for _ in range(rng.randint(0, 120)):
                r = rng.random()
                if r < 0.25:
                    ids.append(rng.choice(frequent))
                elif r < 0.3:
                    ids.append(rng.choice(specials))
                elif r < 0.35:
                    ids.append(rng.choice([-1, VOCAB_SIZE, VOCAB_SIZE + 10**6, 127999]))
                elif r < 0.5 and valid:
                    start = rng.randrange(len(valid))
                    ids.extend(valid[start : start + rng.randint(1, 30)])
                else:
                    ids.append(rng.randrange(0, 300 if tok is TOK else 128000))
            parser = StreamParser(tok)
            raws: list[RawFrame] = []
            pos = 0
            while pos < len(ids):
                step = rng.randint(1, 5)
                raws += parser.feed_ids(ids[pos : pos + step])
                pos += step
            raws += parser.close()
            for raw in raws:
                assert raw.end or raw.event in ("call", "line", "return", "exception")
            mapper = LineMapper(src, fns)
            for f in mapper.push_all(raws):
                assert f.line >= 0 and f.depth >= 0
            decode_trace(tok, ids, src, fns)


def test_fuzz_random_text_never_raises() -> None:
    rng = random.Random(99)
    alphabet = ['{"a": "1"}', "x\n", "<|", "|>", "<|frame_sep|>", "<|line_sep|>", "<|action_sep|>", "<|arg_sep|>",
                '"v"', "<|return_sep|>", "<|end_of_text|>", "<|frame", "_sep|>", "é", "}", "{"]
    fns = functions_of(SUM_SRC)
    for _ in range(300):
        parser = StreamParser(None)
        raws: list[RawFrame] = []
        for _ in range(rng.randint(0, 40)):
            raws += parser.feed_text(rng.choice(alphabet))
        raws += parser.close()
        LineMapper(SUM_SRC, fns).push_all(raws)


def test_frames_helper_matches_source() -> None:
    fs = frames(SUM_SRC, [("call", 1, "f", 0, {"xs": "[]"}, None)])
    assert fs[0].source == "def f(xs):"
