"""``neuraldbg doctor``: will this model profile fit on these GPUs, and how?

The plan is computed, not guessed: the real ``CwmConfig`` (the released 32B
shape by default, or the checkpoint's own config.json) is instantiated on the
meta device to count parameters exactly (:mod:`~neuraldbg.hosting.sizing`);
the layers are placed on the GPUs as ``from_pretrained(device_map=...)``
would (:mod:`~neuraldbg.hosting.placement`); what is left on each GPU is the
KV-cache budget (:mod:`~neuraldbg.hosting.kv_budget`); every quantization is
tried to say which profile to use (:mod:`~neuraldbg.hosting.recommend`); the
text is :mod:`~neuraldbg.hosting.report`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neuraldbg.backends.profiles import Profile, ProfileError, list_profiles, load_profile
from neuraldbg.hosting.gpus import DoctorError, GpuInfo, detect_gpus, parse_gpus
from neuraldbg.hosting.kv_budget import ModelShape
from neuraldbg.hosting.placement import Placement, place_profile
from neuraldbg.hosting.plans import Plan
from neuraldbg.hosting.recommend import recommend
from neuraldbg.hosting.report import format_report, plans_json
from neuraldbg.hosting.sizing import build_config, meta_model


def _remote_plan(profile: Profile, gpus: tuple[GpuInfo, ...]) -> Plan:
    return Plan(
        profile=profile.name, kind=profile.kind, quantization="", dtype="", gpus=gpus, shape=None, param_count=0,
        weights=None, devices=(), offloaded=(), weights_fit=True, kv_tokens=0, kv_bytes_per_token_per_layer=0,
        context_tokens=profile.context_tokens, fits=True, recommendation="remote", recommended_profile=profile.name,
        reason=f"the model runs on the server at {profile.url}; this host needs no GPU",
        checkpoint=profile.model, checkpoint_present=False,
        notes=(f"API key from ${profile.api_key_env}" if profile.api_key_env else "no API key configured",),
    )


def _notes(profile: Profile, chosen: Placement, gpus: Sequence[GpuInfo]) -> list[str]:
    """Why ``profile`` (placed as ``chosen``) may not run well here."""
    notes: list[str] = []
    context = chosen.context
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
    return notes


def plan(profile: Profile | str, gpus: Sequence[GpuInfo], *, config: Any = None) -> Plan:
    """Plan ``profile`` on ``gpus`` (see the module doc)."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    gpus = tuple(gpus)
    if not profile.is_local:
        return _remote_plan(profile, gpus)

    cfg = build_config(profile, config)
    shape = ModelShape.from_config(cfg)
    model = meta_model(cfg)
    chosen = place_profile(model, shape, profile, profile.quantization, gpus)
    rec = recommend(model, shape, profile, chosen, gpus)
    # Every context the pool holds at once must reach context_tokens: the
    # backend accepts prompts up to it, so a shorter budget is an OOM to come.
    fits = chosen.weights_fit and chosen.kv_tokens >= chosen.context
    try:
        checkpoint = profile.resolve_checkpoint()
    except ProfileError:
        checkpoint = profile.checkpoint
    return Plan(
        profile=profile.name, kind=profile.kind, quantization=profile.quantization, dtype=profile.dtype, gpus=gpus,
        shape=shape, param_count=sum(p.numel() for p in model.parameters()), weights=chosen.weights,
        devices=chosen.devices, offloaded=chosen.offloaded, weights_fit=chosen.weights_fit, kv_tokens=chosen.kv_tokens,
        kv_bytes_per_token_per_layer=shape.kv_bytes_per_token_per_layer, context_tokens=chosen.context, fits=fits,
        recommendation=rec.label, recommended_profile=rec.profile, reason=rec.reason, checkpoint=checkpoint,
        checkpoint_present=profile.local_checkpoint_dir() is not None, notes=tuple(_notes(profile, chosen, gpus)),
        kv=chosen.kv.budget(chosen.context),
    )


def doctor_plans(profile_name: str | None, gpus: Sequence[GpuInfo]) -> list[Plan]:
    """``profile_name`` (default: every local profile) planned on ``gpus``.

    Raises :class:`DoctorError` / :class:`ProfileError` on bad input.
    """
    names = [profile_name] if profile_name else [n for n in list_profiles() if load_profile(n).is_local]
    if not names:
        raise DoctorError("no model profiles found (set NEURALDBG_MODELS_DIR or run from a checkout)")
    return [plan(load_profile(n), gpus) for n in names]


@dataclass(frozen=True)
class DoctorRun:
    """What ``neuraldbg doctor`` found: its plans, and this host's GPUs when it planned for them."""

    plans: tuple[Plan, ...]
    host_gpus: tuple[GpuInfo, ...] | None  # None: planned for a --gpus spec, not this host

    @property
    def fits(self) -> bool:
        return all(p.fits for p in self.plans)

    def text(self) -> str:
        return format_report(self.plans, self.host_gpus)

    def json(self) -> str:
        return plans_json(self.plans)


def run_doctor(profile_name: str | None, gpu_spec: str | None) -> DoctorRun:
    """``neuraldbg doctor [--profile P] [--gpus SPEC]``: without ``gpu_spec``, for this host's GPUs."""
    if gpu_spec is None:
        host: tuple[GpuInfo, ...] | None = tuple(detect_gpus())
        gpus = host
    else:
        host, gpus = None, tuple(parse_gpus(gpu_spec))
    return DoctorRun(plans=tuple(doctor_plans(profile_name, gpus)), host_gpus=host)


def doctor_report(profile_name: str | None, gpu_spec: str | None) -> str:
    """The text ``neuraldbg doctor`` prints, one block per profile."""
    return run_doctor(profile_name, gpu_spec).text()
