"""How big a profile's model is: the real config on the meta device, and the
bytes each parameter takes once loaded with the profile's dtype/quantization.

bitsandbytes quantizes the decoder's Linear weights and keeps embeddings,
norms and lm_head in the compute dtype. torch / transformers / accelerate are
imported inside functions: importing this module needs none of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from neuraldbg.backends.profiles import Profile
from neuraldbg.hosting.gpus import GIB

# bitsandbytes NF4: blocks of 64 weights share an absmax; with double
# quantization the absmaxes are 8-bit in blocks of 256 with a float32 scale.
NF4_BLOCK = 64
NF4_NESTED_BLOCK = 256

_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class WeightsEstimate:
    quantization: str
    dtype: str
    total_bytes: float
    quantized_params: int  # Linear weights bitsandbytes converts
    kept_params: int  # embeddings, norms, lm_head: kept in the compute dtype
    quantized_bytes: float
    kept_bytes: float

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    @property
    def bytes_per_param(self) -> float:
        return self.total_bytes / max(1, self.quantized_params + self.kept_params)


def quantized_weight_bytes(numel: int, out_features: int, quantization: str, double_quant: bool) -> float:
    """Bytes bitsandbytes stores for one Linear weight of ``numel`` elements."""
    if quantization == "8bit":
        # int8 weights plus one float32 scale per output row (SCB).
        return numel + 4 * out_features
    if quantization == "4bit-nf4":
        blocks = math.ceil(numel / NF4_BLOCK)
        if double_quant:
            absmax = blocks + 4 * math.ceil(blocks / NF4_NESTED_BLOCK) + 4  # uint8 absmax, fp32 nested scales, offset
        else:
            absmax = 4 * blocks
        return numel / 2 + absmax
    raise ValueError(f"not a bitsandbytes quantization: {quantization}")


def param_sizes(model: Any, quantization: str, dtype: str, double_quant: bool) -> tuple[dict[str, float], WeightsEstimate]:
    """Bytes per parameter/buffer name, as the loaded model will hold them."""
    import torch

    dtype_bytes = _DTYPE_BYTES[dtype]
    skip = _modules_not_quantized(model)
    sizes: dict[str, float] = {}
    q_params = k_params = 0
    q_bytes = k_bytes = 0.0
    for mod_name, module in model.named_modules():
        for p_name, param in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            numel = param.numel()
            if (
                quantization != "none"
                and isinstance(module, torch.nn.Linear)
                and p_name == "weight"
                and mod_name not in skip
            ):
                size = quantized_weight_bytes(numel, module.out_features, quantization, double_quant)
                q_params += numel
                q_bytes += size
            else:
                size = float(numel * dtype_bytes)
                k_params += numel
                k_bytes += size
            sizes[full] = size
        for b_name, buf in module.named_buffers(recurse=False):
            full = f"{mod_name}.{b_name}" if mod_name else b_name
            sizes[full] = float(buf.numel() * buf.element_size())
    est = WeightsEstimate(
        quantization=quantization, dtype=dtype, total_bytes=q_bytes + k_bytes,
        quantized_params=q_params, kept_params=k_params, quantized_bytes=q_bytes, kept_bytes=k_bytes,
    )
    return sizes, est


def _modules_not_quantized(model: Any) -> set[str]:
    """What transformers' bitsandbytes integration leaves unquantized (lm_head, tied)."""
    from transformers.quantizers.base import get_keys_to_not_convert

    return set(get_keys_to_not_convert(model))


def build_config(profile: Profile | None = None, config: Any = None) -> Any:
    """The CwmConfig to plan for: given, the checkpoint's own, or the release's."""
    if config is not None:
        return config
    from transformers import AutoConfig, CwmConfig

    local = profile.local_checkpoint_dir() if profile is not None else None
    if local is not None and (local / "config.json").is_file():
        return AutoConfig.from_pretrained(str(local))
    return CwmConfig()


def meta_model(config: Any) -> Any:
    """The model with no storage (meta device): shapes only, built in seconds."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config)
