"""Model profiles: one TOML file per deployment, selected by name (file stem).

A profile says which checkpoint to load and how (dtype, quantization, how to
spread it over the host's GPUs, attention kernel, context, sampling defaults,
stop ids), or, for ``kind = "remote"``, which server to talk to. The folder is
``<repo>/models`` next to the package, or ``$NEURALDBG_MODELS_DIR``.

No torch here: the CLI lists and validates profiles without loading a model.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MODELS_DIR_ENV = "NEURALDBG_MODELS_DIR"

KINDS = ("local", "remote")
QUANTIZATIONS = ("none", "8bit", "4bit-nf4")
DTYPES = ("bfloat16", "float16", "float32")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")

# CWM's end-of-turn ids (end_of_text, eom, eot). Trace mode also stops at
# <|frame_sep|> (128100) per step; the simulation adds that per request.
DEFAULT_STOP_IDS = (128001, 128008, 128009)


class ProfileError(ValueError):
    """A profile is unknown or malformed (one clear line for the user)."""


@dataclass(frozen=True)
class SamplingDefaults:
    """The release's recommended settings: temperature 0.2-0.6, top_p 0.95.
    Stepping takes the low end (frames stay close to the likely execution);
    imagined inputs take the high end, so that a resample gives new ones."""

    temperature: float = 0.2  # every predicted frame
    input_temperature: float = 0.6  # the imagined call frame (its inputs), also on a resample
    top_p: float = 0.95
    max_tokens: int | None = None  # per request (one frame); None: the engine's frame cap


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str = "local"
    description: str = ""
    source: Path | None = None  # the TOML file it was read from
    # --- local ---
    checkpoint: str = ""  # a folder (relative: under models/weights/) or a hub id
    hub_id: str = ""  # used when the local folder is absent (HF cache / download)
    dtype: str = "bfloat16"
    quantization: str = "none"
    double_quant: bool = True  # nf4 only: quantize the quantization constants too
    device_map: str = "auto"  # "auto" | "balanced" | "sequential" | "cpu" | "cuda:0" ...
    max_memory_per_gpu_gib: float | None = None  # weights cap per GPU; None: total - reserve
    reserve_gib: float = 4.0  # per GPU, kept free of weights for the KV cache and activations
    min_gpus: int = 0
    attn_implementation: str = "sdpa"
    cached_contexts: int = 4  # KV caches kept (LRU) so that alternating prompts reuse theirs
    speculative_tokens: int = 0  # prompt-lookup draft tokens verified per decode forward (0: off)
    # --- both ---
    context_tokens: int = 32768
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    stop_ids: tuple[int, ...] = DEFAULT_STOP_IDS
    # --- remote ---
    url: str = ""
    api_key_env: str = ""  # name of the environment variable holding the key
    model: str = ""  # the served model name

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def resolve_checkpoint(self, models_root: Path | None = None) -> str:
        """The folder to load from, or the hub id when no local copy exists.

        Absolute paths are used as they are; relative ones resolve against
        ``<models>/weights/``. Raises :class:`ProfileError` when neither a
        folder nor a hub id is available.
        """
        if not self.is_local:
            raise ProfileError(f"profile {self.name!r} is remote: it has no checkpoint")
        candidates: list[Path] = []
        if self.checkpoint:
            path = Path(self.checkpoint).expanduser()
            if not path.is_absolute():
                path = weights_dir(models_root) / path
            if path.is_dir():
                return str(path)
            candidates.append(path)
        if self.hub_id:
            return self.hub_id
        where = ", ".join(str(p) for p in candidates) or "(no checkpoint set)"
        raise ProfileError(
            f"profile {self.name!r}: checkpoint folder not found: {where}; see models/README.md to get the weights"
        )

    def local_checkpoint_dir(self, models_root: Path | None = None) -> Path | None:
        """The local checkpoint folder if it exists (else None)."""
        if not self.is_local or not self.checkpoint:
            return None
        path = Path(self.checkpoint).expanduser()
        if not path.is_absolute():
            path = weights_dir(models_root) / path
        return path if path.is_dir() else None


def models_dir() -> Path:
    """The profile folder: ``$NEURALDBG_MODELS_DIR`` or ``<repo>/models``."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "models"


def weights_dir(models_root: Path | None = None) -> Path:
    return (models_root or models_dir()) / "weights"


def list_profiles(directory: Path | None = None) -> list[str]:
    """Profile names (file stems) in the profile folder, sorted."""
    directory = directory or models_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_profile(name_or_path: str | Path, directory: Path | None = None) -> Profile:
    """Read a profile by name (file stem in the profile folder) or by path."""
    directory = directory or models_dir()
    text = str(name_or_path)
    as_path = Path(text).expanduser()
    if text.endswith(".toml") or os.sep in text:
        if not as_path.is_file():
            raise ProfileError(f"profile file not found: {as_path}")
        path = as_path
    else:
        path = directory / f"{text}.toml"
        if not path.is_file():
            available = ", ".join(list_profiles(directory)) or "none"
            raise ProfileError(f"unknown model profile {text!r}; available: {available} (in {directory})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path} is not valid TOML: {exc}") from None
    return profile_from_dict(data, source=path, default_name=path.stem)


def profile_from_dict(data: dict[str, Any], *, source: Path | None = None, default_name: str = "") -> Profile:
    """Validate a parsed profile table; unknown keys and bad values are errors."""
    where = str(source) if source else "profile"
    known = {f.name for f in fields(Profile)} - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(data)
    values.setdefault("name", default_name)
    sampling_data = values.pop("sampling", {})
    if not isinstance(sampling_data, dict):
        raise ProfileError(f"{where}: [sampling] must be a table")
    sampling_known = {f.name for f in fields(SamplingDefaults)}
    bad = sorted(set(sampling_data) - sampling_known)
    if bad:
        raise ProfileError(f"{where}: unknown sampling key(s) {', '.join(bad)}; known: {', '.join(sorted(sampling_known))}")

    def typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...], prefix: str = "") -> None:
        value = table.get(key)
        if value is None:
            return
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int subclass: only accept it where a bool is wanted.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ProfileError(f"{where}: {prefix}{key} has a bad value {value!r}")

    for key in ("name", "kind", "description", "checkpoint", "hub_id", "dtype", "quantization", "device_map",
                "attn_implementation", "url", "api_key_env", "model"):
        typed(values, key, str)
    for key in ("min_gpus", "cached_contexts", "context_tokens", "speculative_tokens"):
        typed(values, key, int)
    for key in ("max_memory_per_gpu_gib", "reserve_gib"):
        typed(values, key, (int, float))
    typed(values, "double_quant", bool)
    for key in ("temperature", "input_temperature", "top_p"):
        typed(sampling_data, key, (int, float), "sampling.")
    typed(sampling_data, "max_tokens", int, "sampling.")

    stop = values.get("stop_ids")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in stop):
            raise ProfileError(f"{where}: stop_ids must be a list of token ids, got {stop!r}")
        values["stop_ids"] = tuple(stop)

    profile = Profile(sampling=SamplingDefaults(**sampling_data), source=source, **values)
    _check_choices(profile, where)
    return profile


def _check_choices(p: Profile, where: str) -> None:
    def choice(label: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise ProfileError(f"{where}: {label} must be one of {', '.join(allowed)}; got {value!r}")

    if not p.name:
        raise ProfileError(f"{where}: name is empty")
    choice("kind", p.kind, KINDS)
    if p.kind == "local":
        choice("dtype", p.dtype, DTYPES)
        choice("quantization", p.quantization, QUANTIZATIONS)
        choice("attn_implementation", p.attn_implementation, ATTN_IMPLEMENTATIONS)
        if not (p.checkpoint or p.hub_id):
            raise ProfileError(f"{where}: a local profile needs checkpoint or hub_id")
        if p.reserve_gib < 0 or (p.max_memory_per_gpu_gib is not None and p.max_memory_per_gpu_gib <= 0):
            raise ProfileError(f"{where}: memory limits must be positive")
        if p.speculative_tokens < 0:
            raise ProfileError(f"{where}: speculative_tokens must be 0 or more")
        if p.cached_contexts < 1:
            raise ProfileError(f"{where}: cached_contexts must be at least 1")
    else:
        if not p.url.startswith(("http://", "https://")):
            raise ProfileError(f"{where}: a remote profile needs url = \"http(s)://host:port\"; got {p.url!r}")
    if p.context_tokens < 16:
        raise ProfileError(f"{where}: context_tokens is too small ({p.context_tokens})")
    s = p.sampling
    if min(s.temperature, s.input_temperature) < 0 or not (0 < s.top_p <= 1) or (s.max_tokens or 1) < 1:
        raise ProfileError(f"{where}: sampling needs temperatures >= 0, 0 < top_p <= 1, max_tokens >= 1")
