"""Which profile to use on these GPUs: the highest precision whose own
profile fits, weights and KV, else a remote model server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from neuraldbg.backends.profiles import QUANTIZATIONS, Profile, ProfileError, list_profiles, load_profile
from neuraldbg.hosting.gpus import GpuInfo
from neuraldbg.hosting.kv_budget import ModelShape
from neuraldbg.hosting.placement import RUNTIME_OVERHEAD_GIB, Placement, place_profile

_LABEL = {"none": "bf16", "8bit": "8bit", "4bit-nf4": "4bit-nf4"}


@dataclass(frozen=True)
class Recommendation:
    label: str  # "bf16" | "8bit" | "4bit-nf4" | "remote"
    profile: str | None
    reason: str


def profile_for(quantization: str, n_gpus: int) -> str | None:
    """A profile in the models folder that matches (quantization, GPU count)."""
    best: str | None = None
    for name in list_profiles():
        try:
            p = load_profile(name)
        except ProfileError:
            continue
        if p.kind == "local" and p.quantization == quantization and p.min_gpus <= n_gpus:
            if best is None or p.min_gpus > 1:  # prefer the multi-GPU profile where it applies
                best = name
    return best


def profile_for_remote() -> str | None:
    names = list_profiles()
    return "vllm-remote" if "vllm-remote" in names else next((n for n in names if "remote" in n), None)


def _alternatives(model: Any, shape: ModelShape, profile: Profile, chosen: Placement,
                  gpus: Sequence[GpuInfo]) -> dict[str, tuple[Placement, str | None]]:
    """Every quantization placed, with the profile that would be recommended for it.

    Each is judged with that profile's settings (its reserve, its caps), not
    ``profile``'s; without one, with ``profile``'s and no extra reserve.
    """
    options: dict[str, tuple[Placement, str | None]] = {}
    for q in QUANTIZATIONS:
        name = profile_for(q, len(gpus))
        settings = load_profile(name) if name else replace(profile, quantization=q, reserve_gib=RUNTIME_OVERHEAD_GIB,
                                                           max_memory_per_gpu_gib=None)
        options[q] = (chosen if settings == profile else place_profile(model, shape, settings, q, gpus), name)
    return options


def recommend(model: Any, shape: ModelShape, profile: Profile, chosen: Placement,
              gpus: Sequence[GpuInfo]) -> Recommendation:
    """What to run on ``gpus`` (``chosen`` is ``profile`` placed there)."""
    if not gpus:
        return Recommendation("remote", profile_for_remote(),
                              "no GPU on this host: use a model server (vLLM/SGLang) on a GPU host")
    options = _alternatives(model, shape, profile, chosen, gpus)
    total = sum(g.total_gib for g in gpus)
    bf16_gib = options["none"][0].weights.total_gib
    for q in QUANTIZATIONS:  # highest precision first
        opt, name = options[q]
        if opt.weights_fit and opt.kv_tokens >= opt.context:  # the option's own profile fits
            why = (
                f"{opt.weights.total_gib:.1f} GiB of weights fit on {len(gpus)} GPU(s) ({total:g} GiB) "
                f"with KV room for {opt.kv.assumptions.contexts_at_once} contexts of {opt.kv_tokens:,} tokens"
            )
            if q != "none":
                why += f"; bf16 would need {bf16_gib:.1f} GiB of weights"
            return Recommendation(_LABEL[q], name, why)
    smallest = options["4bit-nf4"][0]
    return Recommendation(
        "remote",
        profile_for_remote(),
        f"even 4-bit NF4 ({smallest.weights.total_gib:.1f} GiB of weights) leaves KV room for only "
        f"{smallest.kv.assumptions.contexts_at_once} contexts of {smallest.kv_tokens:,} tokens "
        f"(context_tokens {smallest.context:,}) on {total:g} GiB of GPU memory",
    )
