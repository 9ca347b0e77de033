"""``neuraldbg doctor``: will this model profile fit on these GPUs, and how?

The plan is computed, not guessed: the real ``CwmConfig`` (the released 32B
shape by default, or the checkpoint's own config.json) is instantiated on the
meta device to count parameters exactly; bytes are computed per parameter for
the profile's dtype/quantization (bitsandbytes quantizes the decoder's Linear
weights and keeps embeddings, norms and lm_head in bf16); transformers' own
balancing and accelerate's ``infer_auto_device_map`` place the layers on the
GPUs exactly as ``from_pretrained(device_map=...)`` would; what is left on each
GPU becomes the KV-cache budget: the longest context that every context the
pool holds at once, and the attention transient of a prefill chunk, fit in
(the memory model is :mod:`neuraldbg.hosting.doctor_kv`).

torch / transformers / accelerate are imported inside functions: importing
this module (and listing GPUs from ``nvidia-smi``) needs none of them.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from neuraldbg.hosting.doctor_kv import KvAssumptions, KvBudget, KvModel, ModelShape
from neuraldbg.backends.profiles import (
    QUANTIZATIONS,
    Profile,
    ProfileError,
    list_profiles,
    load_profile,
)

log = logging.getLogger(__name__)

GIB = 1024**3
# Per GPU, on top of weights and KV: the CUDA context, allocator slack and the
# activations of a 2048-token prefill chunk (the MLP's 2048 x 21504 bf16
# intermediates are ~90 MB each; logits are kept for one position only). The
# attention's K/V copies and masks grow with the context: doctor_kv counts them.
RUNTIME_OVERHEAD_GIB = 1.5
# bitsandbytes NF4: blocks of 64 weights share an absmax; with double
# quantization the absmaxes are 8-bit in blocks of 256 with a float32 scale.
NF4_BLOCK = 64
NF4_NESTED_BLOCK = 256
# transformers keeps 10% of max_memory free when it places quantized models
# (HfQuantizer.adjust_max_memory for bitsandbytes); the plan mirrors that.
BNB_MAX_MEMORY_FACTOR = 0.90


class DoctorError(ValueError):
    """Bad doctor input (one clear line for the user)."""


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_gib: float
    free_gib: float | None = None


# --------------------------------------------------------------------------- GPUs


_GPU_ENTRY = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+(?:\.\d+)?)\s*(?:gib|gb|g)?\s*$", re.IGNORECASE)


def parse_gpus(spec: str) -> list[GpuInfo]:
    """Parse ``COUNTxGIB[,COUNTxGIB...]`` (e.g. ``2x80``, ``4x40,1x80``).

    ``none`` / ``cpu`` / ``0`` mean a host without GPUs. The size is the
    total memory per GPU in GiB, as nvidia-smi reports it (an "80 GB" card
    is about 80).
    """
    text = (spec or "").strip()
    if text.lower() in ("none", "cpu", "0"):
        return []
    if not text:
        raise DoctorError("empty --gpus: expected COUNTxGIB, e.g. 2x80 or 4x40,1x80 (or 'none')")
    gpus: list[GpuInfo] = []
    for entry in text.split(","):
        m = _GPU_ENTRY.match(entry)
        if not m:
            raise DoctorError(f"bad --gpus entry {entry.strip()!r}: expected COUNTxGIB, e.g. 2x80 or 4x40,1x80")
        count, size = int(m.group(1)), float(m.group(2))
        if count < 1 or count > 64:
            raise DoctorError(f"bad --gpus entry {entry.strip()!r}: the count must be 1..64")
        if size <= 0 or size > 4096:
            raise DoctorError(f"bad --gpus entry {entry.strip()!r}: the memory must be 0..4096 GiB")
        for _ in range(count):
            gpus.append(GpuInfo(index=len(gpus), name=f"{size:g} GiB GPU", total_gib=size))
    return gpus


def detect_gpus() -> list[GpuInfo]:
    """This host's GPUs: torch.cuda when it sees any, else nvidia-smi, else []."""
    gpus = _gpus_from_torch()
    if gpus:
        return gpus
    return _gpus_from_nvidia_smi()


def _gpus_from_torch() -> list[GpuInfo]:
    try:
        import torch
    except ImportError:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            try:
                free, _total = torch.cuda.mem_get_info(i)
                free_gib: float | None = free / GIB
            except RuntimeError:
                free_gib = None
            out.append(GpuInfo(index=i, name=props.name, total_gib=props.total_memory / GIB, free_gib=free_gib))
        return out
    except RuntimeError as exc:  # a broken driver must not break the doctor
        log.warning("torch.cuda failed: %s", exc)
        return []


def _gpus_from_nvidia_smi() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed: %s", exc)
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total,memory.free --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            gpus.append(GpuInfo(int(parts[0]), parts[1], float(parts[2]) / 1024, float(parts[3]) / 1024))
        except ValueError:
            continue
    return gpus


# --------------------------------------------------------------------------- model shape and bytes


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


_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


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


def _param_sizes(model: Any, quantization: str, dtype: str, double_quant: bool) -> tuple[dict[str, float], WeightsEstimate]:
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


# --------------------------------------------------------------------------- the plan


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
        full, sliding = _layer_kinds(shape, layers)
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


@dataclass(frozen=True)
class _Option:
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


def kv_model(shape: ModelShape, profile: Profile) -> KvModel:
    """The KV memory model for the backend this profile loads."""
    return KvModel(shape, KvAssumptions(cached_contexts=profile.cached_contexts,
                                        attn_implementation=profile.attn_implementation))


def _evaluate(model: Any, shape: ModelShape, profile: Profile, quantization: str, gpus: Sequence[GpuInfo]) -> _Option:
    sizes, est = _param_sizes(model, quantization, profile.dtype, profile.double_quant)
    kv = kv_model(shape, profile)
    context = min(profile.context_tokens, shape.max_positions)
    if not gpus:
        return _Option(quantization, est, (), ("(whole model: no GPU)",), 0, kv, context, 0)
    caps = _max_memory_bytes(profile, gpus)
    device_map = place(model, sizes, caps, profile.device_map if profile.device_map in ("auto", "balanced", "balanced_low_0", "sequential") else "auto",
                       quantized=quantization != "none")
    devices, offloaded = _summarise(model, device_map, sizes, kv, context, gpus, caps)
    gpu_plans = [d for d in devices if d.device.startswith("cuda:") and d.layers]
    if offloaded or not gpu_plans:
        return _Option(quantization, est, tuple(devices), tuple(offloaded), 0, kv, context, 0)
    counts = [kv.contexts_that_fit(d.free_for_kv_gib * GIB, *_layer_kinds(shape, d.layers), context) for d in gpu_plans]
    return _Option(quantization, est, tuple(devices), tuple(offloaded), min(d.kv_tokens for d in gpu_plans), kv, context,
                   min(counts))


def _layer_kinds(shape: ModelShape, layers: Sequence[int]) -> tuple[int, int]:
    """(global, sliding) layers among ``layers``."""
    sliding = sum(1 for layer in layers if shape.is_sliding(layer))
    return len(layers) - sliding, sliding


def _profile_for(quantization: str, n_gpus: int) -> str | None:
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


_LABEL = {"none": "bf16", "8bit": "8bit", "4bit-nf4": "4bit-nf4"}


def plan(profile: Profile | str, gpus: Sequence[GpuInfo], *, config: Any = None) -> Plan:
    """Plan ``profile`` on ``gpus`` (see the module doc)."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    gpus = tuple(gpus)
    if not profile.is_local:
        return Plan(
            profile=profile.name, kind=profile.kind, quantization="", dtype="", gpus=gpus, shape=None, param_count=0,
            weights=None, devices=(), offloaded=(), weights_fit=True, kv_tokens=0, kv_bytes_per_token_per_layer=0,
            context_tokens=profile.context_tokens, fits=True, recommendation="remote", recommended_profile=profile.name,
            reason=f"the model runs on the server at {profile.url}; this host needs no GPU",
            checkpoint=profile.model, checkpoint_present=False,
            notes=(f"API key from ${profile.api_key_env}" if profile.api_key_env else "no API key configured",),
        )

    cfg = build_config(profile, config)
    shape = ModelShape.from_config(cfg)
    model = meta_model(cfg)
    param_count = sum(p.numel() for p in model.parameters())

    chosen = _evaluate(model, shape, profile, profile.quantization, gpus)
    # Each alternative is judged with the settings of the profile that would
    # be recommended for it (its reserve, its caps), not this profile's.
    options: dict[str, tuple[_Option, str | None]] = {}
    for q in QUANTIZATIONS:
        name = _profile_for(q, len(gpus))
        settings = load_profile(name) if name else replace(profile, quantization=q, reserve_gib=RUNTIME_OVERHEAD_GIB,
                                                           max_memory_per_gpu_gib=None)
        options[q] = (chosen if settings == profile else _evaluate(model, shape, settings, q, gpus), name)
    notes: list[str] = []
    context = chosen.context
    # Every context the pool holds at once must reach context_tokens: the
    # backend accepts prompts up to it, so a shorter budget is an OOM to come.
    fits = chosen.weights_fit and chosen.kv_tokens >= context

    if not gpus:
        notes.append("no GPU: the local backend would run on the CPU, far too slow for a 32B model")
    if gpus and len(gpus) < profile.min_gpus:
        notes.append(f"profile {profile.name} expects at least {profile.min_gpus} GPUs; this host has {len(gpus)}")
    if chosen.offloaded and gpus:
        need = chosen.weights.total_gib
        have = sum(d.weights_cap_gib for d in chosen.devices if d.device.startswith("cuda:"))
        notes.append(
            f"DOES NOT FIT: {need:.1f} GiB of weights, {have:.1f} GiB allowed for weights on the GPUs "
            f"(total - reserve {profile.reserve_gib:g} GiB each); not placed: {', '.join(chosen.offloaded[:6])}"
            + (" ..." if len(chosen.offloaded) > 6 else "")
        )
    elif gpus and chosen.kv_tokens < context:
        k = chosen.contexts_at_context
        fix = f"cached_contexts = {k - 1} would fit, or " if k >= 2 else ""
        notes.append(
            f"KV room holds {chosen.kv_tokens:,} tokens per context for the {chosen.kv.assumptions.contexts_at_once} "
            f"contexts held at once, less than context_tokens {context:,}: long traces will run out of memory; "
            f"{fix}lower context_tokens" + (" or use a smaller quantization" if profile.quantization != "4bit-nf4" else "")
        )

    rec, rec_profile, reason = _recommend(options, gpus)
    try:
        checkpoint = profile.resolve_checkpoint()
    except ProfileError:
        checkpoint = profile.checkpoint
    present = profile.local_checkpoint_dir() is not None
    return Plan(
        profile=profile.name, kind=profile.kind, quantization=profile.quantization, dtype=profile.dtype, gpus=gpus,
        shape=shape, param_count=param_count, weights=chosen.weights, devices=chosen.devices,
        offloaded=chosen.offloaded, weights_fit=chosen.weights_fit, kv_tokens=chosen.kv_tokens,
        kv_bytes_per_token_per_layer=shape.kv_bytes_per_token_per_layer, context_tokens=context, fits=fits,
        recommendation=rec, recommended_profile=rec_profile, reason=reason, checkpoint=checkpoint,
        checkpoint_present=present, notes=tuple(notes), kv=chosen.kv.budget(context),
    )


def _recommend(options: dict[str, tuple[_Option, str | None]], gpus: Sequence[GpuInfo]) -> tuple[str, str | None, str]:
    if not gpus:
        return "remote", _profile_for_remote(), "no GPU on this host: use a model server (vLLM/SGLang) on a GPU host"
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
            return _LABEL[q], name, why
    smallest = options["4bit-nf4"][0]
    return (
        "remote",
        _profile_for_remote(),
        f"even 4-bit NF4 ({smallest.weights.total_gib:.1f} GiB of weights) leaves KV room for only "
        f"{smallest.kv.assumptions.contexts_at_once} contexts of {smallest.kv_tokens:,} tokens "
        f"(context_tokens {smallest.context:,}) on {total:g} GiB of GPU memory",
    )


def _profile_for_remote() -> str | None:
    names = list_profiles()
    return "vllm-remote" if "vllm-remote" in names else next((n for n in names if "remote" in n), None)


# --------------------------------------------------------------------------- text


def format_plan(p: Plan) -> str:
    """A readable report of a plan (what ``neuraldbg doctor`` prints)."""
    lines: list[str] = []
    gpus = ", ".join(f"{g.name} ({g.total_gib:.1f} GiB)" for g in p.gpus) or "none"
    lines.append(f"profile      {p.profile} ({p.kind})")
    lines.append(f"GPUs         {gpus}")
    if p.kind != "local":
        lines.append(f"server       {p.reason}")
        lines.extend(f"note         {n}" for n in p.notes)
        return "\n".join(lines)
    assert p.weights is not None and p.shape is not None
    s = p.shape
    where = "local copy" if p.checkpoint_present else "no local copy under models/weights/: see models/README.md"
    lines.append(f"checkpoint   {p.checkpoint} ({where})")
    lines.append(
        f"model        {p.param_count:,} parameters ({p.param_count / 1e9:.2f}B): {s.num_layers} layers, hidden {s.hidden_size}, "
        f"{s.num_heads} heads / {s.num_kv_heads} KV heads x {s.head_dim}, vocab {s.vocab_size:,}"
    )
    w = p.weights
    quant = "none (bf16)" if p.quantization == "none" else p.quantization
    lines.append(
        f"weights      {w.total_gib:.2f} GiB ({w.total_bytes / 1e9:.1f} GB) with quantization {quant}: "
        f"{w.bytes_per_param:.3f} bytes/param"
    )
    if p.quantization != "none":
        lines.append(
            f"             {w.quantized_params / 1e9:.2f}B quantized Linear params: {w.quantized_bytes / GIB:.2f} GiB; "
            f"{w.kept_params / 1e9:.2f}B kept in {p.dtype} (embeddings, norms, lm_head): {w.kept_bytes / GIB:.2f} GiB"
        )
    kib = p.kv_bytes_per_token_per_layer / 1024
    lines.append(f"KV cache     {kib:g} KiB per token per layer (bf16 K+V, {s.num_kv_heads} KV heads x {s.head_dim})")
    if p.kv is not None:
        kv = p.kv
        lines.append(
            f"             one context of {kv.context_tokens:,} tokens: {kv.context_bytes / GIB:.2f} GiB, "
            f"{kv.contexts_at_once} at once; a prefill chunk's attention peak: {kv.transient_bytes / GIB:.2f} GiB per GPU"
        )
        lines.append(f"KV assumes   {kv.summary}")
    if p.devices:
        lines.append("")
        lines.append(f"{'device':<8} {'total':>7} {'cap':>7} {'weights':>8} {'KV room':>8} {'KV need':>8} "
                     f"{'tokens/ctx':>10}  layers")
        for d in p.devices:
            layers = _ranges(d.layers)
            other = f" + {', '.join(d.other_modules)}" if d.other_modules else ""
            lines.append(
                f"{d.device:<8} {d.total_gib:>6.1f}G {d.weights_cap_gib:>6.1f}G {d.weights_gib:>7.2f}G "
                f"{d.free_for_kv_gib:>7.2f}G {d.kv_need_gib:>7.2f}G {d.kv_tokens:>10,}  {layers}{other}"
            )
        lines.append(
            f"(cap: max_memory for weights = total - reserve; KV room = total - weights - {RUNTIME_OVERHEAD_GIB:g} GiB "
            "for the CUDA context and activations; KV need: every context at context_tokens + the attention peak; "
            "tokens/ctx: the longest context when all of them are that long)"
        )
    lines.append("")
    at_once = p.kv.contexts_at_once if p.kv is not None else 1
    if p.fits:
        lines.append(
            f"fits         yes: weights fit, KV room for {at_once} contexts of {p.kv_tokens:,} tokens "
            f"(context_tokens {p.context_tokens:,})"
        )
    elif not p.gpus:
        lines.append("fits         NO: no GPU on this host")
    elif not p.weights_fit:
        lines.append("fits         NO: the weights do not fit on these GPUs")
    else:
        lines.append(
            f"fits         NO: KV room for {at_once} contexts of only {p.kv_tokens:,} tokens "
            f"(context_tokens {p.context_tokens:,})"
        )
    lines.extend(f"note         {n}" for n in p.notes)
    rec = p.recommendation + (f" (profile {p.recommended_profile})" if p.recommended_profile else "")
    lines.append(f"recommended  {rec}: {p.reason}")
    return "\n".join(lines)


def _ranges(values: Sequence[int]) -> str:
    if not values:
        return "-"
    out, start, prev = [], values[0], values[0]
    for v in list(values[1:]) + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return "layers " + ", ".join(out)


def doctor_plans(profile_name: str | None, gpu_spec: str | None) -> list[Plan]:
    """The plans ``neuraldbg doctor [--profile P] [--gpus SPEC]`` shows.

    Without ``gpu_spec`` the host's GPUs are detected; without
    ``profile_name`` every local profile is planned. Raises
    :class:`DoctorError` / :class:`ProfileError` on bad input.
    """
    gpus = parse_gpus(gpu_spec) if gpu_spec is not None else detect_gpus()
    names = [profile_name] if profile_name else [n for n in list_profiles() if load_profile(n).is_local]
    if not names:
        raise DoctorError("no model profiles found (set NEURALDBG_MODELS_DIR or run from a checkout)")
    return [plan(load_profile(n), gpus) for n in names]


def doctor_report(profile_name: str | None, gpu_spec: str | None) -> str:
    """The text of :func:`doctor_plans`, one block per profile."""
    return "\n\n".join(format_plan(p) for p in doctor_plans(profile_name, gpu_spec))
