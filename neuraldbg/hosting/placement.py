"""Where a profile's weights go on the GPUs, and what KV room that leaves.

transformers' own balancing and accelerate's ``infer_auto_device_map`` place
the layers exactly as ``from_pretrained(device_map=...)`` would; what is left
on each GPU becomes its KV budget (:mod:`neuraldbg.hosting.kv_budget`).
transformers is imported inside functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from neuraldbg.backends.profiles import Profile
from neuraldbg.hosting.gpus import GIB, GpuInfo
from neuraldbg.hosting.kv_budget import KvModel, ModelShape, kv_model
from neuraldbg.hosting.sizing import WeightsEstimate, param_sizes

# Per GPU, on top of weights and KV: the CUDA context, allocator slack and the
# activations of a 2048-token prefill chunk (the MLP's 2048 x 21504 bf16
# intermediates are ~90 MB each; logits are kept for one position only). The
# attention's K/V copies and masks grow with the context: kv_budget counts them.
RUNTIME_OVERHEAD_GIB = 1.5
# transformers keeps 10% of max_memory free when it places quantized models
# (HfQuantizer.adjust_max_memory for bitsandbytes); the plan mirrors that.
BNB_MAX_MEMORY_FACTOR = 0.90
_DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class DevicePlan:
    device: str  # "cuda:0", or "cpu" / "disk" for what did not fit
    total_gib: float
    weights_cap_gib: float  # max_memory given to placement
    weights_gib: float
    layers: tuple[int, ...]
    other_modules: tuple[str, ...]  # embed_tokens, norm, lm_head ...
    free_for_kv_gib: float
    kv_tokens: int  # every context the pool holds at once can be this long on this device
    kv_need_gib: float = 0.0  # what the KV needs here at the profile's context_tokens (contexts + transient)


@dataclass(frozen=True)
class Placement:
    """One quantization of a profile placed on the GPUs."""

    quantization: str
    weights: WeightsEstimate
    devices: tuple[DevicePlan, ...]
    offloaded: tuple[str, ...]
    kv_tokens: int
    kv: KvModel
    context: int  # the profile's context_tokens, within the model's positions
    contexts_at_context: int  # contexts of the profile's length that would fit (the pool needs cached_contexts + 1)

    @property
    def weights_fit(self) -> bool:
        return not self.offloaded and bool(self.devices)


class _Sizer:
    """Looks like an HfQuantizer to transformers' placement helpers, which
    only ask it for each parameter's element size."""

    def __init__(self, sizes: dict[str, float]) -> None:
        self._sizes = sizes

    def param_element_size(self, model: Any, param_name: str, param: Any) -> float:
        size = self._sizes.get(param_name)
        if size is None:
            return param.element_size()
        return size / max(1, param.numel())

    def adjust_max_memory(self, max_memory: dict) -> dict:
        return max_memory


class _DropPlanningNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return "is not available" not in msg and "buffer for offloaded layers" not in msg


@contextmanager
def _quiet_placement_warnings() -> Iterator[None]:
    """accelerate warns for every planned GPU this host lacks, and
    transformers about buffers when a plan does not fit; the plan reports
    both itself."""
    loggers = [logging.getLogger("accelerate.utils.modeling"), logging.getLogger("transformers.integrations.accelerate")]
    filt = _DropPlanningNoise()
    for logger in loggers:
        logger.addFilter(filt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(filt)


def _max_memory_bytes(profile: Profile, gpus: Sequence[GpuInfo]) -> dict[int, int]:
    caps: dict[int, int] = {}
    for i, gpu in enumerate(gpus):
        cap = profile.max_memory_per_gpu_gib if profile.max_memory_per_gpu_gib is not None else gpu.total_gib - profile.reserve_gib
        caps[i] = max(0, int(min(cap, gpu.total_gib) * GIB))
    return caps


def place(model: Any, sizes: dict[str, float], max_memory: dict[int, int], device_map: str, quantized: bool) -> dict[str, Any]:
    """The device map transformers would compute for ``from_pretrained``."""
    from transformers.integrations.accelerate import get_balanced_memory, infer_auto_device_map

    sizer = _Sizer(sizes)
    no_split = model._no_split_modules
    memory: dict[Any, int] = dict(max_memory)
    with _quiet_placement_warnings():
        if device_map in ("auto", "balanced", "balanced_low_0"):
            memory = get_balanced_memory(
                model, max_memory=memory, no_split_module_classes=no_split, hf_quantizer=sizer,  # type: ignore[arg-type]
                low_zero=device_map == "balanced_low_0",
            )
        if quantized:
            memory = {k: v * BNB_MAX_MEMORY_FACTOR for k, v in memory.items()}
        return dict(infer_auto_device_map(model, max_memory=memory, no_split_module_classes=no_split, hf_quantizer=sizer))  # type: ignore[arg-type]


def _summarise(model: Any, device_map: dict[str, Any], sizes: dict[str, float], kv: KvModel, context: int,
               gpus: Sequence[GpuInfo], caps: dict[int, int]) -> tuple[list[DevicePlan], list[str]]:
    shape = kv.shape
    by_device: dict[Any, dict[str, Any]] = {}
    offloaded: list[str] = []
    layer_re = re.compile(r"(?:^|\.)layers\.(\d+)(?:\.|$)")
    for module_name, dev in device_map.items():
        entry = by_device.setdefault(dev, {"bytes": 0.0, "layers": set(), "other": []})
        prefix = module_name + "." if module_name else ""
        entry["bytes"] += sum(v for k, v in sizes.items() if k == module_name or k.startswith(prefix))
        m = layer_re.search(module_name)
        if m:
            entry["layers"].add(int(m.group(1)))
        elif module_name.endswith(".layers") or module_name == "model.layers":
            entry["layers"].update(range(shape.num_layers))
        elif module_name in ("", "model"):
            entry["layers"].update(range(shape.num_layers))
            entry["other"].extend(n for n in _outside_layers(model) if module_name == "" or n != "lm_head")
        else:
            entry["other"].append(module_name.rsplit(".", 1)[-1])
        if not isinstance(dev, int):
            offloaded.append(module_name or "(whole model)")
    plans: list[DevicePlan] = []
    for i, gpu in enumerate(gpus):
        entry = by_device.get(i, {"bytes": 0.0, "layers": set(), "other": []})
        layers = tuple(sorted(entry["layers"]))
        weights_gib = entry["bytes"] / GIB
        free = gpu.total_gib - weights_gib - RUNTIME_OVERHEAD_GIB
        full, sliding = layer_kinds(shape, layers)
        plans.append(DevicePlan(
            device=f"cuda:{i}", total_gib=gpu.total_gib, weights_cap_gib=caps.get(i, 0) / GIB, weights_gib=weights_gib,
            layers=layers, other_modules=tuple(entry["other"]), free_for_kv_gib=max(0.0, free),
            kv_tokens=kv.tokens_that_fit(free * GIB, full, sliding, shape.max_positions),
            kv_need_gib=kv.device_bytes(context, full, sliding) / GIB,
        ))
    for dev, entry in by_device.items():
        if not isinstance(dev, int):
            plans.append(DevicePlan(
                device="unplaced", total_gib=0.0, weights_cap_gib=0.0, weights_gib=entry["bytes"] / GIB,
                layers=tuple(sorted(entry["layers"])), other_modules=tuple(entry["other"]), free_for_kv_gib=0.0, kv_tokens=0,
            ))
    return plans, offloaded


def _outside_layers(model: Any) -> list[str]:
    """Short names of the modules with weights outside the decoder layers."""
    names = []
    for name, module in model.named_modules():
        if ".layers." in f".{name}." or not name:
            continue
        if any(True for _ in module.parameters(recurse=False)):
            names.append(name.rsplit(".", 1)[-1])
    return names


def layer_kinds(shape: ModelShape, layers: Sequence[int]) -> tuple[int, int]:
    """(global, sliding) layers among ``layers``."""
    sliding = sum(1 for layer in layers if shape.is_sliding(layer))
    return len(layers) - sliding, sliding


def place_profile(model: Any, shape: ModelShape, profile: Profile, quantization: str, gpus: Sequence[GpuInfo]) -> Placement:
    """``profile``'s model, quantized as ``quantization``, placed on ``gpus``."""
    sizes, est = param_sizes(model, quantization, profile.dtype, profile.double_quant)
    kv = kv_model(shape, profile)
    context = min(profile.context_tokens, shape.max_positions)
    if not gpus:
        return Placement(quantization, est, (), ("(whole model: no GPU)",), 0, kv, context, 0)
    caps = _max_memory_bytes(profile, gpus)
    device_map = place(model, sizes, caps, profile.device_map if profile.device_map in _DEVICE_MAPS else "auto",
                       quantized=quantization != "none")
    devices, offloaded = _summarise(model, device_map, sizes, kv, context, gpus, caps)
    gpu_plans = [d for d in devices if d.device.startswith("cuda:") and d.layers]
    if offloaded or not gpu_plans:
        return Placement(quantization, est, tuple(devices), tuple(offloaded), 0, kv, context, 0)
    counts = [kv.contexts_that_fit(d.free_for_kv_gib * GIB, *layer_kinds(shape, d.layers), context) for d in gpu_plans]
    return Placement(quantization, est, tuple(devices), tuple(offloaded), min(d.kv_tokens for d in gpu_plans), kv,
                     context, min(counts))
