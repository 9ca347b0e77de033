"""The local backend on a tiny random CWM: the real loading path (Auto
classes, device_map, shards, tokenizer), the decode loop, and KV reuse."""

from __future__ import annotations

import pytest

from neuraldbg.backends.base import BackendError, Cancelled, CancelToken, Sampling, TokenBackend
from neuraldbg.backends.local import LocalBackend
from neuraldbg.testing.tiny_model import TINY_SLIDING_WINDOW

BOS, CONTEXT_START, FRAME_SEP, CALL_SEP, LINE_SEP = 128000, 128107, 128100, 128103, 128104
GREEDY = Sampling(temperature=0.0, max_tokens=8)


@pytest.fixture(scope="module")
def backend(tiny_cwm_dir) -> LocalBackend:
    return LocalBackend.load(tiny_cwm_dir, device_map="auto")


def cold(backend: LocalBackend, **kwargs) -> LocalBackend:
    """A second backend over the same weights with an empty KV pool."""
    return LocalBackend(backend.model, backend.hf_tokenizer, name="cold", context_tokens=backend.context_tokens, **kwargs)


def source_prompt(backend: LocalBackend, source: str) -> list[int]:
    return [BOS, CONTEXT_START, *backend.tokenizer.encode(source), FRAME_SEP]


SOURCE_A = "def f(xs):  # << START_OF_TRACE\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
SOURCE_B = "def g(text):  # << START_OF_TRACE\n    return text.upper()\n"


def test_load_goes_through_auto_classes_and_reports_progress(tiny_cwm_dir) -> None:
    events = []
    b = LocalBackend.load(tiny_cwm_dir, progress=events.append, device_map="auto")
    assert isinstance(b, TokenBackend)
    assert type(b.model).__name__ == "CwmForCausalLM"
    assert b.name == tiny_cwm_dir.name
    messages = [e.message for e in events]
    assert messages[0].startswith("reading config")
    assert messages[1].startswith("weights: 2 shard(s)")
    assert "loaded shard 1/2" in messages and "loaded shard 2/2" in messages
    assert messages.index("loaded shard 1/2") < messages.index("loaded shard 2/2")
    assert any(m.startswith("placed on devices: all on cpu") for m in messages)
    assert messages[-1] == "ready"
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(e.memory_per_device.get("cpu", 0) > 0 for e in events)
    # the codec's tokenizer adapter keeps special text out of ordinary ids
    assert all(i < 128000 for i in b.tokenizer.encode("<|frame_sep|>"))
    b.close()


def test_generation_stops_right_after_a_stop_id(backend) -> None:
    prompt = source_prompt(backend, SOURCE_A)
    free = list(backend.generate(prompt, stop_ids=[], sampling=GREEDY))
    assert len(free) == GREEDY.max_tokens
    # the first position from the 3rd on whose id did not occur before it
    k = next(i for i in range(2, len(free)) if free[i] not in free[:i])
    stopped = list(backend.generate(prompt, stop_ids=[free[k]], sampling=GREEDY))
    assert stopped == free[: k + 1]


def test_max_tokens_caps_the_request(backend) -> None:
    before = backend.stats.generated_tokens
    out = list(backend.generate(source_prompt(backend, SOURCE_B), stop_ids=[], sampling=Sampling(max_tokens=5)))
    assert len(out) == 5
    assert backend.stats.generated_tokens - before == 5
    assert list(backend.generate(source_prompt(backend, SOURCE_B), stop_ids=[], sampling=Sampling(max_tokens=0))) == []


def test_cancel_between_tokens_raises_cancelled_and_frees_the_backend(backend) -> None:
    cancel = CancelToken()
    prompt = source_prompt(backend, SOURCE_A)
    it = backend.generate(prompt, stop_ids=[], sampling=GREEDY, cancel=cancel)
    got = [next(it), next(it)]
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(it)
    # the lock is free again and the cancelled request's cache is reusable
    reused_before = backend.stats.reused_tokens
    again = list(backend.generate(prompt + got, stop_ids=[], sampling=Sampling(max_tokens=3)))
    assert len(again) == 3
    assert backend.stats.reused_tokens - reused_before >= len(prompt)


def test_a_cancelled_token_stops_before_prefill(backend) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(backend.generate(source_prompt(backend, SOURCE_A), stop_ids=[], sampling=GREEDY, cancel=cancel))


def test_one_generation_at_a_time(backend) -> None:
    it = backend.generate(source_prompt(backend, SOURCE_B), stop_ids=[], sampling=GREEDY)
    next(it)
    assert backend._lock.locked()
    it.close()
    assert not backend._lock.locked()


def test_seeded_sampling_is_reproducible(backend) -> None:
    prompt = source_prompt(backend, SOURCE_A)
    hot = Sampling(temperature=0.8, top_p=0.95, max_tokens=6, seed=7)
    # Two cold starts compute bit-identical logits. (A reused cache gives
    # logits equal to ~1e-6, which is enough to move a sample when the
    # nucleus holds thousands of near-equal ids, as in this random model.)
    first = list(cold(backend).generate(prompt, stop_ids=[], sampling=hot))
    second = list(cold(backend).generate(prompt, stop_ids=[], sampling=hot))
    assert first == second and len(first) == 6
    very_hot = [Sampling(temperature=3.0, top_p=1.0, max_tokens=4, seed=s) for s in range(3)]
    runs = {tuple(backend.generate(prompt, stop_ids=[], sampling=s)) for s in very_hot}
    assert len(runs) > 1  # different seeds do sample differently


def test_a_tiny_top_p_keeps_only_the_most_likely_id(backend) -> None:
    prompt = source_prompt(backend, SOURCE_B)
    greedy = list(backend.generate(prompt, stop_ids=[], sampling=GREEDY))
    nucleus = list(backend.generate(prompt, stop_ids=[], sampling=Sampling(temperature=1.0, top_p=1e-9, max_tokens=8, seed=3)))
    assert nucleus == greedy


def _requests(backend: LocalBackend) -> list[list[int]]:
    """Trace-like prompts: a shared source, diverging frames, an extension,
    a strict prefix, and enough tokens to run past the sliding window."""
    base = source_prompt(backend, SOURCE_A)
    frame1 = [CALL_SEP, *backend.tokenizer.encode('{"xs": "[3, 4]"}'), FRAME_SEP]
    frame2 = [LINE_SEP, *backend.tokenizer.encode('{"xs": ".."}    total = 0\n'), FRAME_SEP]
    other = [CALL_SEP, *backend.tokenizer.encode('{"xs": "[]"}'), FRAME_SEP]
    return [
        base,
        base + frame1,  # extends the first context
        base + frame1 + frame2,  # strict extension again
        base + other,  # diverges after the source (a re-sample with other inputs)
        base + frame1 + [LINE_SEP],  # step back to frame 1, then a forced event
        base[:-3],  # a strict prefix of what is cached
        source_prompt(backend, SOURCE_B),  # another program
        base + frame1 + frame2 + frame1,  # back to the first one
    ]


def test_kv_reuse_gives_the_same_greedy_ids_as_a_cold_start(backend) -> None:
    warm = cold(backend, cached_contexts=4)
    prompts = _requests(backend)
    assert max(len(p) for p in prompts) > 2 * TINY_SLIDING_WINDOW
    for prompt in prompts:
        expected = list(cold(backend).generate(prompt, stop_ids=[], sampling=GREEDY))
        assert list(warm.generate(prompt, stop_ids=[], sampling=GREEDY)) == expected
    s = warm.stats
    assert s.requests == len(prompts)
    assert s.prompt_tokens == sum(len(p) for p in prompts)
    assert s.reused_tokens > 0
    assert s.prefilled_tokens + s.reused_tokens == s.prompt_tokens
    assert s.prefilled_tokens < s.prompt_tokens // 2
    assert s.generated_tokens == len(prompts) * GREEDY.max_tokens
    assert warm.cache_stats.forks >= 2 and warm.cache_stats.rebuilds == 0


def test_rollback_past_the_window_without_a_margin_rebuilds_and_stays_correct(backend) -> None:
    warm = cold(backend, rollback_tokens=0)
    long = _requests(backend)[2]
    assert len(long) > TINY_SLIDING_WINDOW + 10
    list(warm.generate(long, stop_ids=[], sampling=GREEDY))
    back = long[: len(long) - 10] + [LINE_SEP]  # diverges 10 tokens back: beyond what the window kept
    expected = list(cold(backend).generate(back, stop_ids=[], sampling=GREEDY))
    assert list(warm.generate(back, stop_ids=[], sampling=GREEDY)) == expected
    assert warm.cache_stats.rebuilds == 1
    # with the default margin the same rollback reuses the prefix
    margin = cold(backend)
    list(margin.generate(long, stop_ids=[], sampling=GREEDY))
    assert list(margin.generate(back, stop_ids=[], sampling=GREEDY)) == expected
    assert margin.cache_stats.rebuilds == 0 and margin.stats.reused_tokens == len(back) - 1


def test_alternating_programs_reuse_both_contexts(backend) -> None:
    warm = cold(backend, cached_contexts=2)
    a, b = source_prompt(backend, SOURCE_A), source_prompt(backend, SOURCE_B)
    out_a = list(warm.generate(a, stop_ids=[], sampling=GREEDY))
    out_b = list(warm.generate(b, stop_ids=[], sampling=GREEDY))
    reused = warm.stats.reused_tokens
    list(warm.generate(a + out_a, stop_ids=[], sampling=GREEDY))
    list(warm.generate(b + out_b, stop_ids=[], sampling=GREEDY))
    # each continuation reused its own prompt and all but the last generated id
    assert warm.stats.reused_tokens - reused == len(a) + len(out_a) - 1 + len(b) + len(out_b) - 1
    list(warm.generate(source_prompt(backend, "x = 1\n"), stop_ids=[], sampling=GREEDY))
    assert len(warm.contexts) == 2 and warm.cache_stats.evictions == 1


def test_bad_prompts_are_clear_errors(backend) -> None:
    with pytest.raises(BackendError, match="empty prompt"):
        next(backend.generate([], stop_ids=[], sampling=GREEDY))
    with pytest.raises(BackendError, match="outside the vocabulary"):
        next(backend.generate([BOS, 128256], stop_ids=[], sampling=GREEDY))
    small = LocalBackend(backend.model, backend.hf_tokenizer, name="small", context_tokens=20)
    with pytest.raises(BackendError, match="context holds 20"):
        next(small.generate([BOS] * 25, stop_ids=[], sampling=GREEDY))
    # generation stops when the context is full
    assert len(list(small.generate([BOS] * 15, stop_ids=[], sampling=GREEDY))) == 5


@pytest.mark.parametrize("quantization, module", [("8bit", "Linear8bitLt"), ("4bit-nf4", "Linear4bit")])
def test_bitsandbytes_loads_and_decodes_on_cpu(tiny_cwm_dir, quantization: str, module: str) -> None:
    b = LocalBackend.load(tiny_cwm_dir, quantization=quantization)
    assert type(b.model.model.layers[0].mlp.up_proj).__name__ == module
    assert type(b.model.lm_head).__name__ == "Linear"  # lm_head stays unquantized
    # bitsandbytes' CPU kernels are slow: a few tokens are enough here
    short = Sampling(temperature=0.0, max_tokens=3)
    prompts = _requests(b)[:2]
    for prompt in prompts:
        expected = list(cold(b).generate(prompt, stop_ids=[], sampling=short))
        assert len(expected) == short.max_tokens
        assert list(b.generate(prompt, stop_ids=[], sampling=short)) == expected
    assert b.stats.reused_tokens == len(prompts[0])
    b.close()


def test_load_by_profile_name(tiny_cwm_dir, tmp_path, monkeypatch) -> None:
    (tmp_path / "tiny.toml").write_text(
        f'name = "tiny"\nkind = "local"\ncheckpoint = "{tiny_cwm_dir}"\ndtype = "bfloat16"\n'
        'attn_implementation = "eager"\ncontext_tokens = 256\ncached_contexts = 3\n'
    )
    monkeypatch.setenv("NEURALDBG_MODELS_DIR", str(tmp_path))
    b = LocalBackend.load("tiny")
    assert b.name == "tiny" and b.context_tokens == 256 and b.contexts.capacity == 3
    assert b.model.config._attn_implementation == "eager"
    assert len(list(b.generate(source_prompt(b, SOURCE_B), stop_ids=[], sampling=Sampling(max_tokens=3)))) == 3
    b.close()
    with pytest.raises(BackendError, match="is closed"):
        next(b.generate([BOS], stop_ids=[], sampling=GREEDY))


def test_load_errors_are_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NEURALDBG_MODELS_DIR", str(tmp_path))
    (tmp_path / "remote.toml").write_text('kind = "remote"\nurl = "http://localhost:8000"\n')
    with pytest.raises(BackendError, match="unknown model profile 'nope'; available: remote"):
        LocalBackend.load("nope")
    with pytest.raises(BackendError, match="remote profile"):
        LocalBackend.load("remote")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match="no config.json"):
        LocalBackend.load(empty)
    (tmp_path / "missing.toml").write_text('checkpoint = "not-there"\n')
    with pytest.raises(BackendError, match="checkpoint folder not found"):
        LocalBackend.load("missing")
