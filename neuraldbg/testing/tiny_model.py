"""A tiny random CWM checkpoint for tests and demos (no hub access needed).

Same architecture and vocabulary as the released model (``CwmForCausalLM``,
vocab 128,256, llama3 rope, sliding-window layers with a global layer every
four), shrunk to a few million parameters. Saved like a real checkpoint:
bf16 safetensors in two shards plus the tiny byte-level tokenizer (or, with
``tokenizer="llama3"``, the Llama-3 BPE with CWM's specials), so that the
loading path (Auto classes, shard index, progress) is the real one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

# Bump when the layout below changes so that cached copies are rebuilt.
TINY_CWM_VERSION = 1
_MARKER = "neuraldbg_tiny_cwm.json"

TokenizerChoice = Literal["tiny", "llama3"]

# Small enough that a test can run well past the window, as a long trace
# runs past the real model's 8192.
TINY_SLIDING_WINDOW = 24
TINY_NUM_LAYERS = 4


@dataclass(frozen=True)
class RandomCwmSize:
    """The shape of a random CWM. The default is the tiny test model; benchmarks
    use larger ones so that a prefill costs something on a CPU."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = TINY_NUM_LAYERS
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16


TINY = RandomCwmSize()
# ~8M parameters besides the 2 x 33M of embeddings and lm_head: prefill is no longer free on a CPU.
SMALL = RandomCwmSize(hidden_size=256, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=64)


def tiny_cwm_config(size: RandomCwmSize = TINY) -> "object":
    """The ``CwmConfig`` of the tiny model (returned as a transformers config)."""
    from transformers import CwmConfig

    return CwmConfig(
        vocab_size=128256,
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        head_dim=size.head_dim,
        max_position_embeddings=4096,
        sliding_window=TINY_SLIDING_WINDOW,
        # As the release: a global layer every four, the rest sliding.
        layer_types=[
            "full_attention" if i % 4 == 0 else "sliding_attention" for i in range(size.num_hidden_layers)
        ],
        rope_parameters={
            "rope_theta": 1_000_000.0,
            "factor": 16.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 256,
            "rope_type": "llama3",
        },
        bos_token_id=128000,
        eos_token_id=[128001, 128008, 128009],
        tie_word_embeddings=False,
        dtype="bfloat16",
    )


def _marker(size: RandomCwmSize, tokenizer: TokenizerChoice = "tiny") -> dict:
    return {"version": TINY_CWM_VERSION, "size": asdict(size), "tokenizer": tokenizer}


def is_tiny_cwm(out_dir: Path, size: RandomCwmSize = TINY, tokenizer: TokenizerChoice = "tiny") -> bool:
    """True when ``out_dir`` holds a complete tiny CWM of the current version
    with that size and tokenizer."""
    marker = out_dir / _MARKER
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    # markers written before the tokenizer choice existed are tiny-tokenizer folders
    found = {"version": data.get("version"), "size": data.get("size"), "tokenizer": data.get("tokenizer", "tiny")}
    return found == _marker(size, tokenizer)


def build_tiny_cwm(out_dir: Path, seed: int = 0, size: RandomCwmSize = TINY,
                   tokenizer: TokenizerChoice = "tiny") -> Path:
    """Build (or reuse) a tiny random CWM checkpoint with its tokenizer in ``out_dir``.

    Returns ``out_dir``. A folder that already holds one (same version, size
    and tokenizer) is returned at once; the marker file is written last, so
    an interrupted build is redone. ``tokenizer="llama3"`` saves the Llama-3
    BPE with CWM's specials (:mod:`neuraldbg.backends.llama3_tokenizer`; its
    file must have been fetched) instead of the tiny byte-level one.
    """
    out_dir = Path(out_dir)
    if is_tiny_cwm(out_dir, size, tokenizer):
        return out_dir

    import torch
    from transformers import CwmForCausalLM

    from neuraldbg.testing.tiny_tokenizer import build_tiny_tokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / _MARKER).unlink(missing_ok=True)  # a rebuild is incomplete until the new marker is written
    torch.manual_seed(seed)
    config = tiny_cwm_config(size)
    model = CwmForCausalLM(config)
    # Random init at std 0.02 gives nearly flat logits; a larger scale makes
    # greedy decoding decisive, so that cached and uncached runs cannot
    # disagree on near-ties.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.2 if "embed" in name or "lm_head" in name else 0.08)
    model = model.to(torch.bfloat16)
    # Two shards, as a real checkpoint has several: the loader's shard
    # progress is exercised.
    model.save_pretrained(out_dir, max_shard_size="20MB")
    if tokenizer == "llama3":
        from neuraldbg.backends.llama3_tokenizer import save_llama3_tokenizer

        save_llama3_tokenizer(out_dir)
    else:
        build_tiny_tokenizer(out_dir)
    (out_dir / _MARKER).write_text(json.dumps({**_marker(size, tokenizer), "seed": seed}))
    log.info("built tiny CWM in %s", out_dir)
    return out_dir
