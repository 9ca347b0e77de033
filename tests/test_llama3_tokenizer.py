"""The Llama-3 BPE with CWM's specials (models/llama3-bpe, fetched by `make
test`): CWM's special layout, special names that stay ordinary text in the
codec, exact round trips on CruxEval, and a tiny CWM checkpoint that carries
it through LocalBackend.load and the trace codec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codec_support import functions_of

from neuraldbg.backends.base import BackendError
from neuraldbg.backends.llama3_tokenizer import (
    FETCH_COMMAND,
    LLAMA3_DIR_ENV,
    Llama3TokenizerError,
    load_llama3_tokenizer,
)
from neuraldbg.testing.tiny_model import build_tiny_cwm, is_tiny_cwm
from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.trace.cwm_encode import encode_trace
from neuraldbg.trace.cwm_parse import StreamParser
from neuraldbg.trace.cwm_prompt import mark_entry, trace_context, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import SPECIAL_NAMES
from neuraldbg.trace.linemap import LineMapper
from neuraldbg.tracer import Limits, run_traces

# Llama 3.1's ids (its tokenizer_config.json), written out rather than taken from cwm_tokens
LLAMA31_IDS = {
    "<|begin_of_text|>": 128000,
    "<|end_of_text|>": 128001,
    "<|start_header_id|>": 128006,
    "<|end_header_id|>": 128007,
    "<|eom_id|>": 128008,
    "<|eot_id|>": 128009,
}
# CWM's trace tokens (cwm/text/tokenizers.py: 128000 + 100..107)
CWM_TRACE_IDS = {
    "<|frame_sep|>": 128100,
    "<|action_sep|>": 128101,
    "<|return_sep|>": 128102,
    "<|call_sep|>": 128103,
    "<|line_sep|>": 128104,
    "<|exception_sep|>": 128105,
    "<|arg_sep|>": 128106,
    "<|trace_context_start|>": 128107,
}


@pytest.fixture(scope="module")
def llama3():
    return load_llama3_tokenizer()


@pytest.fixture(scope="module")
def adapter(llama3) -> HFTokenizerAdapter:
    return HFTokenizerAdapter(llama3)


def test_cwm_special_layout_on_llama3_ranks(llama3) -> None:
    assert len(llama3) == 128256
    assert llama3.backend_tokenizer.get_vocab_size(with_added_tokens=False) == 128000
    for name, token_id in {**LLAMA31_IDS, **CWM_TRACE_IDS}.items():
        assert llama3.convert_tokens_to_ids(name) == token_id, name
    assert llama3.convert_ids_to_tokens(list(range(128000, 128256))) == [SPECIAL_NAMES[i] for i in range(128000, 128256)]
    assert (llama3.bos_token_id, llama3.eos_token_id, llama3.pad_token_id) == (128000, 128001, 128004)


def test_ordinary_ranks_are_llama3s(adapter) -> None:
    # well-known Llama 3 encodings: the ranks are the real BPE, not a stand-in
    assert adapter.encode("Hello world") == [9906, 1917]
    assert adapter.encode("hello world") == [15339, 1917]


def test_special_names_in_text_stay_ordinary(llama3, adapter) -> None:
    text = "x = '" + "".join(SPECIAL_NAMES.values()) + "'  # <|frame_sep|>\n"
    ids = adapter.encode(text)
    assert ids and max(ids) < 128000
    assert adapter.decode(ids) == text
    # the plain tokenizer would match the name: the adapter is what keeps user text ordinary
    assert llama3.encode("<|frame_sep|>", add_special_tokens=False) == [128100]
    assert adapter.encode("<|frame_sep|>") != [128100]


def test_round_trip_on_every_cruxeval_source(adapter, cruxeval_samples) -> None:
    assert len(cruxeval_samples) == 800
    bad = []
    for sample in cruxeval_samples:
        for text in (sample["code"], f"f({sample['input']})", sample["output"]):
            if adapter.decode(adapter.encode(text)) != text:
                bad.append(sample["id"])
    assert not bad, bad[:10]


def test_missing_file_names_the_fetch_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(LLAMA3_DIR_ENV, str(tmp_path))
    with pytest.raises(Llama3TokenizerError, match=FETCH_COMMAND) as info:
        load_llama3_tokenizer()
    assert isinstance(info.value, BackendError)
    assert str(tmp_path / "tokenizer.json") in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read"),
        (json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": []}), "not a BPE with ranks"),
    ],
)
def test_a_wrong_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(Llama3TokenizerError, match=message):
        load_llama3_tokenizer(tmp_path)


def test_specials_must_be_exactly_the_reserved_block(tmp_path: Path, llama3) -> None:
    data = json.loads(llama3.backend_tokenizer.to_str())
    data["added_tokens"] = data["added_tokens"][:-1]  # 255 specials
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(Llama3TokenizerError, match="exactly the specials 128000..128255"):
        load_llama3_tokenizer(tmp_path)


def test_marker_records_the_tokenizer(tmp_path: Path) -> None:
    marker = tmp_path / "neuraldbg_tiny_cwm.json"
    size = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16}
    marker.write_text(json.dumps({"version": 1, "size": size, "seed": 0}))  # written before the choice existed
    assert is_tiny_cwm(tmp_path) and not is_tiny_cwm(tmp_path, tokenizer="llama3")
    marker.write_text(json.dumps({"version": 1, "size": size, "tokenizer": "llama3", "seed": 0}))
    assert is_tiny_cwm(tmp_path, tokenizer="llama3") and not is_tiny_cwm(tmp_path)


@pytest.fixture(scope="module")
def llama3_cwm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cwm(tmp_path_factory.mktemp("tiny_cwm_llama3"), tokenizer="llama3")


def test_local_backend_loads_a_tiny_cwm_with_the_llama3_tokenizer(llama3_cwm_dir: Path, cruxeval_samples) -> None:
    from neuraldbg.backends.local import LocalBackend

    assert is_tiny_cwm(llama3_cwm_dir, tokenizer="llama3") and not is_tiny_cwm(llama3_cwm_dir)
    backend = LocalBackend.load(llama3_cwm_dir, device_map="cpu")
    try:
        tok = backend.tokenizer
        assert backend.hf_tokenizer.convert_ids_to_tokens([128000, 128009, 128100, 128107]) == [
            "<|begin_of_text|>", "<|eot_id|>", "<|frame_sep|>", "<|trace_context_start|>"]
        assert tok.encode("Hello world") == [9906, 1917]
        # real traces of CruxEval functions, through prompt + frames and back through the streaming parser
        samples = cruxeval_samples[:40]
        traces = run_traces([(s["code"], f"f({s['input']})", "f", "<cruxeval>") for s in samples], Limits(), workers=2)
        checked = 0
        for sample, trace in zip(samples, traces):
            assert trace.status == "complete", (sample["id"], trace.error)
            fns = functions_of(sample["code"])
            source = mark_entry(sample["code"], next(fn for fn in fns if fn.qualname == "f").def_line)
            prompt = trace_prompt_ids(tok, source)
            assert prompt[:2] == [128000, 128107] and prompt[-1] == 128100
            assert max(prompt[2:-1]) < 128000 and tok.decode(prompt[2:-1]) == trace_context(source)
            ids = encode_trace(tok, trace)
            parser, mapper = StreamParser(tok), LineMapper(source, fns)
            raws = [raw for token in ids for raw in parser.feed_ids([token])] + parser.close()  # one id at a time
            assert raws[-1].end and not any(r.flagged for r in raws), sample["id"]
            assert cwm_view(mapper.push(r) for r in raws[:-1]) == cwm_view(trace.frames), sample["id"]
            checked += len(trace.frames)
        assert checked > 200
    finally:
        backend.close()
