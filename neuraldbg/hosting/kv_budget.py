"""The local backend's KV-cache memory, as ``neuraldbg doctor`` budgets it.

What is counted is what the code allocates (transformers 5's ``DynamicCache``
and ``sdpa_attention``, neuraldbg's ``ContextPool``), per GPU, for contexts of
T tokens:

- a global (full-attention) layer keeps all T tokens: T x 2 (K, V) x KV heads
  x head_dim x dtype bytes;
- a sliding layer records its past and is trimmed after each forward to
  ``window - 1 + rollback`` tokens (``kv_cache.trim``). Trim slices a view, so
  the storage of that forward's ``torch.cat`` stays allocated: up to one
  prefill chunk more, min(T, window - 1 + rollback + chunk) tokens;
- the pool keeps ``cached_contexts`` contexts, and a request that misses or
  forks builds one more before the oldest is evicted at release: that many
  + 1 contexts at once, sharing nothing (a fork is views only until its first
  forward appends);
- a prefill chunk of q tokens after a past runs attention with a boolean
  (1, 1, q, kv) mask per layer kind, alive for the whole forward. With SDPA,
  ``repeat_kv`` copies K and V to every attention head (2 x heads x kv x
  head_dim x dtype bytes, both alive during the call) and PyTorch's
  memory-efficient kernel turns the mask into an additive one in the compute
  dtype (q x kv, plus a padded copy when kv is not a multiple of 8). Only the
  layer being run on a GPU holds these: a per-GPU peak, not a per-layer sum.
  Decoding (q = 1) packs the query heads instead (``pack_gqa``): no copy.
- the fused SDPA kernels never hold the q x kv scores; eager attention (and
  SDPA's math fallback) does: bf16 scores, their float32 softmax and its bf16
  cast. flash_attention_2 needs neither the copy nor a mask.

No torch here: the constants come from the backend modules, which import it
only inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuraldbg.backends.local import PREFILL_CHUNK, ROLLBACK_TOKENS
from neuraldbg.backends.profiles import Profile

KV_DTYPE_BYTES = 2  # the KV cache is kept in the compute dtype (bf16)
EAGER_SCORE_BYTES = 2 + 4 + 2  # bf16 scores, float32 softmax, bf16 cast: alive together
MASK_PAD_COPIES = 2  # the additive mask and its padded copy (memory-efficient kernel)


@dataclass(frozen=True)
class ModelShape:
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_positions: int
    sliding_window: int | None
    layer_types: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Any) -> "ModelShape":
        layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers)
        return cls(
            num_layers=config.num_hidden_layers,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
            vocab_size=config.vocab_size,
            max_positions=config.max_position_embeddings,
            sliding_window=getattr(config, "sliding_window", None),
            layer_types=layer_types,
        )

    def kv_token_bytes(self, dtype_bytes: int = KV_DTYPE_BYTES) -> int:
        """K and V of one token in one layer: 2 x 8 x 128 x 2 = 4 KiB for CWM in bf16."""
        return 2 * self.num_kv_heads * self.head_dim * dtype_bytes

    @property
    def kv_bytes_per_token_per_layer(self) -> int:
        return self.kv_token_bytes()

    def is_sliding(self, layer: int) -> bool:
        return self.sliding_window is not None and self.layer_types[layer] == "sliding_attention"

    @property
    def num_sliding(self) -> int:
        return sum(1 for i in range(self.num_layers) if self.is_sliding(i))


@dataclass(frozen=True)
class KvAssumptions:
    """The backend settings the budget assumes (shown by the doctor, kept in its JSON)."""

    cached_contexts: int = 4
    rollback_tokens: int = ROLLBACK_TOKENS
    prefill_chunk: int = PREFILL_CHUNK
    attn_implementation: str = "sdpa"
    dtype_bytes: int = KV_DTYPE_BYTES

    @property
    def contexts_at_once(self) -> int:
        return self.cached_contexts + 1  # the pool's, and the one a request is building


@dataclass(frozen=True)
class KvBudget:
    """A plan's KV assumptions with the numbers they give, for the report and its JSON."""

    assumptions: KvAssumptions
    contexts_at_once: int
    sliding_kept_tokens: int | None  # after trim: window - 1 + rollback
    sliding_storage_tokens: int | None  # allocated: + the last forward's chunk
    context_tokens: int
    context_bytes: int  # one context of context_tokens, every layer
    transient_bytes: int  # the attention peak of a prefill chunk at context_tokens, on a GPU with a global layer
    summary: str


@dataclass(frozen=True)
class KvModel:
    shape: ModelShape
    assumptions: KvAssumptions

    @property
    def sliding_kept(self) -> int | None:
        """Tokens a sliding layer keeps after trim (10,239 for CWM)."""
        w = self.shape.sliding_window
        return None if w is None else w - 1 + self.assumptions.rollback_tokens

    def sliding_tokens(self, tokens: int) -> int:
        """Tokens a sliding layer's storage holds: what it keeps, plus the last forward's chunk."""
        kept = self.sliding_kept
        return tokens if kept is None else min(tokens, kept + self.assumptions.prefill_chunk)

    def context_bytes(self, tokens: int, full_layers: int, sliding_layers: int) -> int:
        """One context of ``tokens`` tokens on these layers."""
        per = self.shape.kv_token_bytes(self.assumptions.dtype_bytes)
        return (full_layers * tokens + sliding_layers * self.sliding_tokens(tokens)) * per

    def transient_bytes(self, tokens: int, full_layers: int, sliding_layers: int) -> int:
        """The largest attention transient of a prefill chunk on a GPU with these layers."""
        a, s = self.assumptions, self.shape
        q = min(a.prefill_chunk, tokens)
        if q <= 1 or full_layers + sliding_layers == 0:
            return 0
        window_kv = tokens if s.sliding_window is None else min(tokens, s.sliding_window - 1 + q)
        kv = tokens if full_layers else window_kv  # the longest keys a layer here attends to
        # torch.cat in the cache update: the layer's old K (or V) and the new one, briefly together
        cat = (kv - q) * s.num_kv_heads * s.head_dim * a.dtype_bytes
        if a.attn_implementation == "flash_attention_2":
            return cat
        eager = a.attn_implementation == "eager"
        # the forward's masks, one per layer kind: bool for SDPA, additive in the dtype for eager
        masks = q * ((tokens if s.num_sliding < s.num_layers else 0) + (window_kv if s.num_sliding else 0))
        masks *= a.dtype_bytes if eager else 1
        repeat = 2 * s.num_heads * kv * s.head_dim * a.dtype_bytes if s.num_heads > s.num_kv_heads else 0
        if eager:
            extra = s.num_heads * q * kv * EAGER_SCORE_BYTES  # the scores
        else:
            extra = MASK_PAD_COPIES * q * kv * a.dtype_bytes  # the kernel's additive mask
        return masks + max(cat, repeat + extra)

    def device_bytes(self, tokens: int, full_layers: int, sliding_layers: int) -> int:
        """What the KV needs on a GPU: every context at once, and the attention transient."""
        if full_layers + sliding_layers == 0:
            return 0
        contexts = self.assumptions.contexts_at_once * self.context_bytes(tokens, full_layers, sliding_layers)
        return contexts + self.transient_bytes(tokens, full_layers, sliding_layers)

    def tokens_that_fit(self, free_bytes: float, full_layers: int, sliding_layers: int, cap: int) -> int:
        """The longest context (at most ``cap``) whose pool fits in ``free_bytes`` (0: none)."""
        if self.device_bytes(cap, full_layers, sliding_layers) <= free_bytes:
            return cap
        lo, hi = 0, cap  # device_bytes grows with the tokens: bisect
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.device_bytes(mid, full_layers, sliding_layers) <= free_bytes:
                lo = mid
            else:
                hi = mid
        return lo

    def contexts_that_fit(self, free_bytes: float, full_layers: int, sliding_layers: int, tokens: int) -> int:
        """How many contexts of ``tokens`` tokens fit next to the attention transient."""
        one = self.context_bytes(tokens, full_layers, sliding_layers)
        room = free_bytes - self.transient_bytes(tokens, full_layers, sliding_layers)
        return max(0, int(room // one)) if one else self.assumptions.contexts_at_once

    def budget(self, context_tokens: int) -> KvBudget:
        s = self.shape
        sliding, full = s.num_sliding, s.num_layers - s.num_sliding
        kept = self.sliding_kept
        return KvBudget(
            assumptions=self.assumptions, contexts_at_once=self.assumptions.contexts_at_once,
            sliding_kept_tokens=kept, sliding_storage_tokens=None if kept is None else self.sliding_tokens(s.max_positions),
            context_tokens=context_tokens, context_bytes=self.context_bytes(context_tokens, full, sliding),
            transient_bytes=self.transient_bytes(context_tokens, full, sliding), summary=self.describe(context_tokens),
        )

    def describe(self, context_tokens: int) -> str:
        """The assumptions in one line of the report."""
        a, s = self.assumptions, self.shape
        kept, sliding = self.sliding_kept, s.num_sliding
        window = (
            f"{sliding} sliding layers keep window {s.sliding_window:,} - 1 + rollback {a.rollback_tokens:,} = "
            f"{kept:,} tokens (+ up to one {a.prefill_chunk:,}-token chunk of storage), "
            if kept is not None else ""
        )
        window += f"{s.num_layers - sliding} global layers the whole context; "
        q = min(a.prefill_chunk, context_tokens)
        scores = s.num_heads * q * context_tokens * a.dtype_bytes / 1024**3
        attn = {
            "sdpa": f"SDPA repeats K/V to {s.num_heads} heads for the layer being run, in a fused kernel (SDPA's "
                    f"math fallback would add at least the {s.num_heads} x {q:,} x {context_tokens:,} scores: "
                    f"{scores:.1f} GiB)",
            "eager": "eager attention: K/V repeated and the chunk x context scores materialised",
            "flash_attention_2": "flash-attention 2: no K/V copy, no mask",
        }.get(a.attn_implementation, a.attn_implementation)
        return (
            f"{window}{a.contexts_at_once} contexts at once (cached_contexts {a.cached_contexts} + the one being "
            f"built), sharing nothing; prefill chunk {a.prefill_chunk:,}: {attn}"
        )


def kv_model(shape: ModelShape, profile: Profile) -> KvModel:
    """The KV memory model for the backend this profile loads."""
    return KvModel(shape, KvAssumptions(cached_contexts=profile.cached_contexts,
                                        attn_implementation=profile.attn_implementation))
