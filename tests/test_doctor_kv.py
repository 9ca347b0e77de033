"""The doctor's KV memory model against what a real cache allocates.

A tiny CWM (sliding window 24) runs on the CPU in bf16 through a
``DynamicCache`` prepared the way the local backend's ``ContextPool`` does
(``fresh()``, a forward per prefill chunk, ``extended()`` which trims); the
bytes its layers' keys/values hold are compared with the doctor's estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from transformers import CwmForCausalLM, DynamicCache
from transformers.integrations import sdpa_attention
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from neuraldbg.backends.kv_cache import CachedContext, ContextPool
from neuraldbg.backends.local import PREFILL_CHUNK, ROLLBACK_TOKENS
from neuraldbg.testing.tiny_model import TINY_SLIDING_WINDOW, tiny_cwm_config
from neuraldbg.hosting.doctor import plan
from neuraldbg.hosting.gpus import parse_gpus
from neuraldbg.hosting.kv_budget import KvAssumptions, KvModel, ModelShape
from neuraldbg.backends.profiles import load_profile

# Three full prefill chunks: past the window + rollback + one chunk, so that
# the sliding layers really are trimmed.
LONG = 3 * PREFILL_CHUNK


def _model(max_positions: int = 4096) -> Any:
    config = tiny_cwm_config()
    config.max_position_embeddings = max_positions
    torch.manual_seed(0)
    model = CwmForCausalLM(config).to(torch.bfloat16).eval()
    assert model.config._attn_implementation == "sdpa"
    return model


def _run(model: Any, pool: ContextPool, ids: Sequence[int], chunk: int) -> CachedContext:
    """What LocalBackend does for a prompt: acquire, one forward per chunk, extended()."""
    ctx, reused = pool.acquire(ids)
    assert reused == 0
    rest = list(ids)
    with torch.inference_mode():
        for start in range(0, len(rest), chunk):
            part = rest[start : start + chunk]
            model(input_ids=torch.tensor([part]), past_key_values=ctx.cache, use_cache=True, logits_to_keep=1)
            pool.extended(ctx, part)
    return ctx


def _allocated(*contexts: CachedContext) -> int:
    """Bytes of the storages behind every layer's keys and values (a view counts its whole storage once)."""
    storages = {}
    for ctx in contexts:
        for layer in ctx.cache.layers:
            for t in (layer.keys, layer.values):
                storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values())


def _viewed(ctx: CachedContext) -> int:
    return sum(t.nbytes for layer in ctx.cache.layers for t in (layer.keys, layer.values))


def _prompt(first: int, n: int) -> list[int]:
    return [first] + [1000 + i % 500 for i in range(n - 1)]


def test_the_plan_counts_what_a_trimmed_cache_allocates(tmp_path) -> None:
    """The plan's per-context estimate (real ROLLBACK_TOKENS and PREFILL_CHUNK)
    equals the bytes of a real cache after a 6,144-token prompt, exactly:
    the prompt ends on a full chunk, the worst case the doctor budgets."""
    model = _model(max_positions=2 * LONG)
    profile_file = tmp_path / "tiny.toml"
    profile_file.write_text(f'checkpoint = "tiny"\ncontext_tokens = {LONG}\ncached_contexts = 2\n')
    p = plan(load_profile(str(profile_file)), parse_gpus("1x4"), config=model.config)
    assert p.kv is not None and p.kv.context_tokens == LONG

    pool = ContextPool(lambda: DynamicCache(config=model.config), capacity=2, rollback_tokens=ROLLBACK_TOKENS)
    ctx = _run(model, pool, _prompt(7, LONG), PREFILL_CHUNK)

    per = 2 * 2 * 16 * 2  # K+V x 2 KV heads x head_dim 16 x bf16
    kept = TINY_SLIDING_WINDOW - 1 + ROLLBACK_TOKENS  # 2,071 (10,239 for CWM)
    assert p.kv.sliding_kept_tokens == kept
    # what the layers hold (views): 1 global layer of 6,144 tokens, 3 sliding of 2,071
    assert _viewed(ctx) == (LONG + 3 * kept) * per
    # what is allocated: trim keeps a view of the last cat, one chunk longer
    assert p.kv.sliding_storage_tokens == kept + PREFILL_CHUNK
    assert _allocated(ctx) == (LONG + 3 * (kept + PREFILL_CHUNK)) * per == p.kv.context_bytes


def test_a_decode_step_stays_within_the_estimate_and_every_context_of_the_pool_is_counted() -> None:
    """Small margins (rollback 8, chunk 16) to run several contexts: the pool
    holds cached_contexts + 1 caches while a request misses, each as large as
    one alone; after a decode step a context is below the estimate by the
    chunk's slack only (the estimate bounds it, tightly)."""
    model = _model()
    chunk, rollback, length = 16, 8, 96
    kv = KvModel(ModelShape.from_config(model.config),
                 KvAssumptions(cached_contexts=2, rollback_tokens=rollback, prefill_chunk=chunk))
    one = kv.context_bytes(length, 1, 3)
    pool = ContextPool(lambda: DynamicCache(config=model.config), capacity=2, rollback_tokens=rollback)
    done = []
    for first in (11, 12):
        ctx = _run(model, pool, _prompt(first, length), chunk)
        assert _allocated(ctx) == one
        pool.release(ctx)
        done.append(ctx)
    building = _run(model, pool, _prompt(13, length), chunk)  # a miss: both cached contexts stay
    assert len(pool) == 2 and kv.assumptions.contexts_at_once == 3
    assert _allocated(*done, building) == kv.assumptions.contexts_at_once * one

    with torch.inference_mode():
        model(input_ids=torch.tensor([[5]]), past_key_values=building.cache, use_cache=True, logits_to_keep=1)
    pool.extended(building, [5])
    per = kv.shape.kv_token_bytes()
    estimate = kv.context_bytes(length + 1, 1, 3)
    assert estimate - _allocated(building) == 3 * (chunk - 1) * per


def test_the_sdpa_transient_is_what_a_prefill_chunk_allocates(monkeypatch) -> None:
    """repeat_kv's copies of K and V and the forward's boolean masks, seen on
    a real prefill chunk after a past; the estimate adds the additive mask
    PyTorch's memory-efficient CUDA kernel makes (not run on a CPU)."""
    model = _model()
    chunk, length = 16, 96
    repeats: list[int] = []
    masks: dict[int, int] = {}
    real_repeat, real_sdpa = sdpa_attention.repeat_kv, ALL_ATTENTION_FUNCTIONS["sdpa"]

    def repeat_kv(hidden: torch.Tensor, n_rep: int) -> torch.Tensor:
        out = real_repeat(hidden, n_rep)
        repeats.append(out.nbytes)
        return out

    def sdpa(module: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any, **kw: Any) -> Any:
        if mask is not None:
            masks[mask.data_ptr()] = mask.nbytes
        return real_sdpa(module, q, k, v, mask, **kw)

    monkeypatch.setattr(sdpa_attention, "repeat_kv", repeat_kv)
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS, "sdpa", sdpa)
    pool = ContextPool(lambda: DynamicCache(config=model.config), capacity=1, rollback_tokens=8)
    ctx = pool.fresh()
    with torch.inference_mode():
        for start in range(0, length, chunk):
            repeats.clear()
            masks.clear()
            part = list(range(1000 + start, 1000 + start + chunk))
            model(input_ids=torch.tensor([part]), past_key_values=ctx.cache, use_cache=True, logits_to_keep=1)
            pool.extended(ctx, part)
    # the last chunk: layer 0 (global) repeats K and V over the whole context first
    copies = repeats[0] + repeats[1]
    assert copies == 2 * 4 * length * 16 * 2  # K and V x 4 heads x 96 x 16 x bf16
    assert sorted(masks.values()) == [chunk * (TINY_SLIDING_WINDOW - 1 + chunk), chunk * length]
    kv = KvModel(ModelShape.from_config(model.config), KvAssumptions(prefill_chunk=chunk))
    kernel_mask = 2 * chunk * length * 2  # additive bf16, and its padded copy
    assert kv.transient_bytes(length, 1, 3) == sum(masks.values()) + copies + kernel_mask


def _cwm() -> ModelShape:
    from transformers import CwmConfig

    return ModelShape.from_config(CwmConfig())


def test_cwm_sliding_layers_keep_window_minus_one_plus_rollback() -> None:
    kv = KvModel(_cwm(), KvAssumptions())
    assert kv.sliding_kept == 8192 - 1 + 2048 == 10239
    assert kv.sliding_tokens(131072) == 10239 + 2048  # + the last chunk's storage
    assert kv.sliding_tokens(5000) == 5000


@pytest.mark.parametrize(("attn", "expected"), [
    # repeat_kv: K and V x 48 heads x 131,072 x 128 x bf16 = 3 GiB; the kernel's
    # additive mask and padded copy: 2 x 2,048 x 131,072 x 2 = 1 GiB; the bool
    # masks: 2,048 x (131,072 + 10,239)
    ("sdpa", 2 * 48 * 131072 * 128 * 2 + 2 * 2048 * 131072 * 2 + 2048 * (131072 + 10239)),
    # no copy, no mask: only the cache's torch.cat (the old K next to the new)
    ("flash_attention_2", (131072 - 2048) * 8 * 128 * 2),
])
def test_cwm_attention_transient_at_131k(attn: str, expected: int) -> None:
    kv = KvModel(_cwm(), KvAssumptions(attn_implementation=attn))
    assert kv.transient_bytes(131072, 16, 48) == expected
    assert kv.transient_bytes(131072, 0, 48) < kv.transient_bytes(131072, 1, 0)  # sliding layers attend to 10,239
