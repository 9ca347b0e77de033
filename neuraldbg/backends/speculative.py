"""Rolling a KV cache back by a few positions after a rejected draft.

transformers' ``DynamicCache.crop`` also shrinks sliding-window layers to the
bare window, which would throw away the rollback margin the context pool keeps
(see :mod:`neuraldbg.backends.kv_cache`); this drops only the last positions.
"""

from __future__ import annotations

from typing import Any


def drop_last(cache: Any, n: int) -> None:
    """Remove the last ``n`` positions from every layer of ``cache``."""
    from transformers.cache_utils import DynamicSlidingWindowLayer

    if n <= 0:
        return
    for layer in cache.layers:
        if not layer.is_initialized or layer.keys is None:
            continue
        if layer.keys.shape[-2] < n:
            raise ValueError(f"cannot drop {n} positions from a layer holding {layer.keys.shape[-2]}")
        layer.keys = layer.keys[..., :-n, :]
        layer.values = layer.values[..., :-n, :]
        if type(layer) is DynamicSlidingWindowLayer:
            layer.cumulative_length -= n
