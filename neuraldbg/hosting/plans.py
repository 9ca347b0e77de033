"""A profile's plan on some GPUs: what ``neuraldbg doctor`` prints, and dumps with ``--json``."""

from __future__ import annotations

from dataclasses import dataclass, field

from neuraldbg.hosting.gpus import GpuInfo
from neuraldbg.hosting.kv_budget import KvBudget, ModelShape
from neuraldbg.hosting.placement import DevicePlan
from neuraldbg.hosting.sizing import WeightsEstimate


@dataclass(frozen=True)
class Plan:
    profile: str
    kind: str
    quantization: str
    dtype: str
    gpus: tuple[GpuInfo, ...]
    shape: ModelShape | None
    param_count: int
    weights: WeightsEstimate | None
    devices: tuple[DevicePlan, ...]
    offloaded: tuple[str, ...]  # modules no GPU had room for
    weights_fit: bool
    kv_tokens: int  # tokens per context, with every context the pool holds at once (0 if none fits)
    kv_bytes_per_token_per_layer: int
    context_tokens: int
    fits: bool
    recommendation: str  # "bf16" | "8bit" | "4bit-nf4" | "remote"
    recommended_profile: str | None
    reason: str
    checkpoint: str
    checkpoint_present: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    kv: KvBudget | None = None  # what the KV budget assumes (None for a remote profile)
