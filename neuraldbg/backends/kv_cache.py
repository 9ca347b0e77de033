"""KV caches of recent contexts, so that a request prefills only what is new.

The trace protocol re-sends the whole prefix at every step (source, then every
frame so far). A :class:`ContextPool` keeps the transformers ``DynamicCache``
of the last few contexts (LRU) with the token ids each one holds; a request
takes the context that can serve the most of its prompt:

- the context is a prefix of the prompt (the usual step): it is extended in
  place;
- the prompt diverges inside it (step back, an edited frame, a re-sample):
  a copy cropped to the common prefix is made (tensor views: no copy until
  the new tokens are appended), and the original stays cached.

The context sharing the longest prefix may be unable to serve (its sliding
layers dropped the past a crop needs); a shorter one that can is taken then,
checked from the layer shapes before any copy is made.

Sliding-window layers (3 of every 4 in CWM) normally drop keys older than the
window, which makes a rollback past the window impossible. Here they record
their past and are trimmed after each forward to ``window - 1 + rollback``
tokens: a rollback of up to ``rollback`` tokens still works beyond the window;
a deeper one takes another context, or prefills from scratch when none can
serve (counted in ``rebuilds``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class KvCacheStats:
    hits: int = 0  # requests that reused a cached prefix
    misses: int = 0  # requests prefilled from scratch (nothing shared)
    forks: int = 0  # prompts that diverged inside a cached context: served from a cropped copy
    rebuilds: int = 0  # no context could serve (sliding layers had dropped the needed past): from scratch
    detours: int = 0  # the longest shared context could not serve; one sharing less did
    evictions: int = 0


@dataclass
class CachedContext:
    """A KV cache and the ids whose keys/values it holds, in order."""

    cache: Any  # transformers.DynamicCache
    tokens: list[int] = field(default_factory=list)
    # False while a forward is running: a failure then leaves the cache
    # half-updated, and the context must be dropped rather than reused.
    valid: bool = True


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _layer_can_crop(layer: Any, keep: int) -> bool:
    """Whether ``layer`` still holds what its first ``keep`` positions need."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    if not layer.is_initialized or layer.keys is None:
        return True
    if type(layer) is DynamicSlidingWindowLayer:
        dropped = layer.cumulative_length - layer.keys.shape[-2]
        # the window ending at position keep - 1 starts at keep - window + 1
        return dropped <= max(0, keep - layer.sliding_window + 1)
    return type(layer) is DynamicLayer


def can_crop(cache: Any, keep: int) -> bool:
    """Whether :func:`cropped_copy` can keep ``keep`` positions of ``cache``,
    from the layer shapes alone (no copy is made)."""
    return all(_layer_can_crop(layer, keep) for layer in cache.layers)


def cropped_copy(cache: Any, keep: int, new_cache: Callable[[], Any]) -> Any | None:
    """A new cache holding the first ``keep`` positions of ``cache``, or None
    when that is impossible (a layer no longer holds what is needed, or a
    layer type this function does not know)."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    if not can_crop(cache, keep):
        return None
    out = new_cache()
    if len(out.layers) != len(cache.layers):
        return None
    for old, dst in zip(cache.layers, out.layers):
        if type(old) is not type(dst):
            return None
        if not old.is_initialized or old.keys is None:
            continue
        if type(old) is DynamicSlidingWindowLayer:
            held = old.keys.shape[-2]
            end = held - (old.cumulative_length - keep)
            keys, values = old.keys[..., :end, :], old.values[..., :end, :]
            dst.lazy_initialization(keys, values)
            dst.keys, dst.values = keys, values
            dst.cumulative_length = keep
            dst.activate_past_recording()
        elif type(old) is DynamicLayer:
            keys, values = old.keys[..., :keep, :], old.values[..., :keep, :]
            dst.lazy_initialization(keys, values)
            dst.keys, dst.values = keys, values
    return out


def keep_past(cache: Any) -> None:
    """Let sliding layers keep their past until :func:`trim` (call on a fresh
    cache), so that a rollback within the margin needs no re-prefill."""
    from transformers.cache_utils import DynamicSlidingWindowLayer

    for layer in cache.layers:
        if type(layer) is DynamicSlidingWindowLayer:
            layer.activate_past_recording()


def trim(cache: Any, rollback: int) -> None:
    """Drop what sliding layers no longer need beyond the rollback margin."""
    from transformers.cache_utils import DynamicSlidingWindowLayer

    for layer in cache.layers:
        if type(layer) is DynamicSlidingWindowLayer and layer.is_initialized and layer.keys is not None:
            limit = layer.sliding_window - 1 + rollback
            if layer.keys.shape[-2] > limit:
                layer.keys = layer.keys[..., -limit:, :]
                layer.values = layer.values[..., -limit:, :]


class ContextPool:
    """An LRU of :class:`CachedContext`; not thread-safe (the backend's lock
    serialises requests)."""

    def __init__(self, new_cache: Callable[[], Any], *, capacity: int = 4, rollback_tokens: int = 2048) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._new_cache = new_cache
        self.capacity = capacity
        self.rollback_tokens = max(0, rollback_tokens)
        self._contexts: list[CachedContext] = []  # most recent first
        self.stats = KvCacheStats()

    def __len__(self) -> int:
        return len(self._contexts)

    @property
    def cached_tokens(self) -> int:
        return sum(len(c.tokens) for c in self._contexts)

    def fresh(self) -> CachedContext:
        cache = self._new_cache()
        keep_past(cache)
        return CachedContext(cache=cache)

    def acquire(self, prompt: Sequence[int]) -> tuple[CachedContext, int]:
        """A context holding ``prompt[:n]`` and that ``n``, with ``n < len(prompt)``
        (the last prompt token must run to give the next token's logits).
        The context leaves the pool until :meth:`release`."""
        limit = len(prompt) - 1
        shared = [(n, ctx) for ctx in self._contexts if (n := min(common_prefix(ctx.tokens, prompt), limit)) > 0]
        if not shared:
            self.stats.misses += 1
            return self.fresh(), 0
        # Most reused tokens first; at a tie an in-place extension (no copy),
        # then the most recent (the sort is stable).
        shared.sort(key=lambda s: (-s[0], s[0] != len(s[1].tokens)))
        longest = shared[0][0]
        for n, ctx in shared:
            served = self._serve(ctx, n, prompt)
            if served is not None:
                self.stats.hits += 1
                self.stats.detours += int(n < longest)
                return served, n
        self.stats.rebuilds += 1
        log.debug("no cached context can serve %d shared tokens: prefilling from scratch", longest)
        return self.fresh(), 0

    def _serve(self, ctx: CachedContext, n: int, prompt: Sequence[int]) -> CachedContext | None:
        """``ctx`` itself when it holds exactly ``prompt[:n]`` (taken out of the
        pool), a copy cropped to ``n`` when that is possible, else None."""
        if n == len(ctx.tokens):
            self._contexts.remove(ctx)
            return ctx
        cache = cropped_copy(ctx.cache, n, self._new_cache)  # checks can_crop before building anything
        if cache is None:
            return None
        self.stats.forks += 1
        return CachedContext(cache=cache, tokens=list(prompt[:n]))

    def extended(self, ctx: CachedContext, ids: Sequence[int]) -> None:
        """Record that ``ids`` were appended to ``ctx``'s cache by a forward."""
        ctx.tokens.extend(ids)
        trim(ctx.cache, self.rollback_tokens)

    def release(self, ctx: CachedContext) -> None:
        """Put a context back as the most recent (dropped if it is invalid)."""
        if not ctx.valid or not ctx.tokens:
            return
        # a context that is a prefix of the returned one is now redundant
        self._contexts = [
            c for c in self._contexts if not (len(c.tokens) <= len(ctx.tokens) and ctx.tokens[: len(c.tokens)] == c.tokens)
        ]
        self._contexts.insert(0, ctx)
        while len(self._contexts) > self.capacity:
            self._contexts.pop()
            self.stats.evictions += 1

    def clear(self) -> None:
        self._contexts.clear()
