"""The doctor's text: one block per plan, and what this host runs the code in."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from neuraldbg.hosting.gpus import GIB, GpuInfo
from neuraldbg.hosting.placement import RUNTIME_OVERHEAD_GIB
from neuraldbg.hosting.plans import Plan
from neuraldbg.tracer import isolation


def format_plan(p: Plan) -> str:
    """A readable report of a plan (what ``neuraldbg doctor`` prints)."""
    lines: list[str] = []
    lines.append(f"profile      {p.profile} ({p.kind})")
    lines.append(f"GPUs         {_gpu_list(p.gpus)}")
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
        lines.extend(_device_table(p))
    lines.append("")
    lines.append(_fits_line(p))
    lines.extend(f"note         {n}" for n in p.notes)
    rec = p.recommendation + (f" (profile {p.recommended_profile})" if p.recommended_profile else "")
    lines.append(f"recommended  {rec}: {p.reason}")
    return "\n".join(lines)


def _device_table(p: Plan) -> list[str]:
    """The shard plan: one line per device, with its layers and KV room."""
    lines = [f"{'device':<8} {'total':>7} {'cap':>7} {'weights':>8} {'KV room':>8} {'KV need':>8} "
             f"{'tokens/ctx':>10}  layers"]
    for d in p.devices:
        other = f" + {', '.join(d.other_modules)}" if d.other_modules else ""
        lines.append(
            f"{d.device:<8} {d.total_gib:>6.1f}G {d.weights_cap_gib:>6.1f}G {d.weights_gib:>7.2f}G "
            f"{d.free_for_kv_gib:>7.2f}G {d.kv_need_gib:>7.2f}G {d.kv_tokens:>10,}  {_ranges(d.layers)}{other}"
        )
    lines.append(
        f"(cap: max_memory for weights = total - reserve; KV room = total - weights - {RUNTIME_OVERHEAD_GIB:g} GiB "
        "for the CUDA context and activations; KV need: every context at context_tokens + the attention peak; "
        "tokens/ctx: the longest context when all of them are that long)"
    )
    return lines


def _fits_line(p: Plan) -> str:
    at_once = p.kv.contexts_at_once if p.kv is not None else 1
    if p.fits:
        return (f"fits         yes: weights fit, KV room for {at_once} contexts of {p.kv_tokens:,} tokens "
                f"(context_tokens {p.context_tokens:,})")
    if not p.gpus:
        return "fits         NO: no GPU on this host"
    if not p.weights_fit:
        return "fits         NO: the weights do not fit on these GPUs"
    return (f"fits         NO: KV room for {at_once} contexts of only {p.kv_tokens:,} tokens "
            f"(context_tokens {p.context_tokens:,})")


def _gpu_list(gpus: Sequence[GpuInfo]) -> str:
    return ", ".join(f"{g.name} ({g.total_gib:.1f} GiB)" for g in gpus) or "none"


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


def sandbox_report() -> str:
    """Which isolation the exec tracer gets here, and what it leaves open."""
    level = isolation.current()
    lines = [f"Exec tracer sandbox: {level.level}: {level.detail}", f"  does not stop: {level.weaknesses()}"]
    lines += [f"  not used: {why}" for why in level.skipped]
    return "\n".join(lines)


def format_report(plans: Sequence[Plan], host_gpus: Sequence[GpuInfo] | None) -> str:
    """Every plan's block; planned for this host (``host_gpus`` given), its GPUs and sandbox first."""
    blocks = "\n\n".join(format_plan(p) for p in plans)
    if host_gpus is None:  # planned for another host (--gpus): this one's GPUs and sandbox are beside the point
        return blocks
    return f"GPUs on this host: {_gpu_list(host_gpus)}\n{sandbox_report()}\n\n{blocks}"


def plans_json(plans: Sequence[Plan]) -> str:
    """``neuraldbg doctor --json``: every plan's fields."""
    return json.dumps([dataclasses.asdict(p) for p in plans], default=str, indent=2)
