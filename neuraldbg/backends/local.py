"""The local backend: CWM on this host's GPUs (or CPU) through transformers.

Loading goes through the Auto classes (``AutoModelForCausalLM`` resolves
``CwmForCausalLM``), with accelerate's ``device_map`` over every visible GPU
and a per-GPU ``max_memory`` from the profile, bf16 on GPU (float32 on CPU),
optional bitsandbytes 8-bit / 4-bit NF4 and a choice of attention kernel.
Progress is reported per checkpoint shard (through transformers' tqdm hook)
with the memory in use on each device.

Generation is a manual decode loop over the model's forward with a KV cache,
so that the cache outlives a request: the contexts of recent requests are
kept (:mod:`neuraldbg.backends.kv_cache`) and a new prompt prefills only what
it does not share with one of them.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuraldbg.backends.base import (
    BackendError,
    BackendStats,
    CancelToken,
    LoadProgress,
    ProgressCallback,
    Sampling,
    TokenScore,
)
from neuraldbg.backends.kv_cache import CachedContext, ContextPool
from neuraldbg.backends.prompt_lookup import draft
from neuraldbg.backends.speculative import drop_last
from neuraldbg.backends.profiles import QUANTIZATIONS, Profile, ProfileError, load_profile

# transformers' LogitsProcessor contract: (input_ids [batch, seq], scores [batch, vocab]) -> scores
LogitsProcessor = Callable[[Any, Any], Any]

log = logging.getLogger(__name__)

GIB = 1024**3
PREFILL_CHUNK = 2048  # tokens per prefill forward: bounds activation memory on long prompts
SCORE_CHUNK = 256  # positions whose full-vocabulary logits one scoring forward keeps
DRAFT_NGRAM = 4  # longest n-gram a draft is looked up by
ROLLBACK_TOKENS = 2048  # sliding layers keep this much past beyond the window (see kv_cache)

# transformers' tqdm hook is process-wide: one load at a time installs it.
_LOAD_LOCK = threading.Lock()


# --------------------------------------------------------------------------- memory


def memory_per_device() -> dict[str, float]:
    """GiB allocated by torch on each GPU, or the process RSS on a CPU host."""
    import torch

    if torch.cuda.is_available():
        return {f"cuda:{i}": torch.cuda.memory_allocated(i) / GIB for i in range(torch.cuda.device_count())}
    try:
        import psutil

        return {"cpu": psutil.Process().memory_info().rss / GIB}
    except ImportError:
        return {}


# --------------------------------------------------------------------------- loading progress


@dataclass(frozen=True)
class CheckpointFiles:
    """What a local checkpoint folder holds (for honest progress messages)."""

    shards: tuple[str, ...]
    total_bytes: int
    weight_map: dict[str, str]  # tensor name -> shard file

    @classmethod
    def scan(cls, folder: Path) -> "CheckpointFiles | None":
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (OSError, ValueError, KeyError):
                return None
            shards = tuple(sorted(set(weight_map.values())))
        elif (folder / "model.safetensors").is_file():
            shards, weight_map = ("model.safetensors",), {}
        else:
            return None
        total = sum((folder / s).stat().st_size for s in shards if (folder / s).is_file())
        return cls(shards=shards, total_bytes=total, weight_map=weight_map)


class _ShardProgress:
    """Stands in for the "Loading weights" tqdm bar of transformers: counts
    the tensors as they are placed and reports each completed shard."""

    def __init__(self, iterable: Any, files: CheckpointFiles | None, report: ProgressCallback,
                 start: float, end: float) -> None:
        self._iterable = iterable
        self._report = report
        self._start, self._end = start, end
        self._files = files
        self._left: dict[str, int] = {}
        if files is not None:
            for shard in files.weight_map.values():
                self._left[shard] = self._left.get(shard, 0) + 1
        self._done_shards = 0

    def __iter__(self) -> Iterator[Any]:
        total = max(1, len(self._iterable)) if hasattr(self._iterable, "__len__") else 0
        n_shards = len(self._files.shards) if self._files else 0
        last_fraction = 0.0
        for i, item in enumerate(self._iterable, 1):
            yield item
            name = item[0] if isinstance(item, tuple) and item else None
            fraction = i / total if total else None
            shard = self._files.weight_map.get(name) if (self._files and isinstance(name, str)) else None
            if shard is not None and shard in self._left:
                self._left[shard] -= 1
                if self._left[shard] == 0:
                    self._done_shards += 1
                    self._emit(f"loaded shard {self._done_shards}/{n_shards}", fraction)
                    continue
            # without a shard map, report every 10%
            if fraction is not None and (not self._left) and fraction - last_fraction >= 0.1:
                last_fraction = fraction
                self._emit(f"loading weights: {i}/{total} tensors", fraction)

    def _emit(self, message: str, fraction: float | None) -> None:
        f = None if fraction is None else self._start + (self._end - self._start) * fraction
        self._report(LoadProgress(message, f, memory_per_device()))

    def __enter__(self) -> "_ShardProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __getattr__(self, _name: str) -> Any:  # update/close/set_postfix...: nothing to draw
        return lambda *a, **k: None


class _LoadingHook:
    """Installs a transformers tqdm hook for the duration of one load."""

    def __init__(self, files: CheckpointFiles | None, report: ProgressCallback) -> None:
        self._files = files
        self._report = report
        self._previous: Any = None

    def __call__(self, factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("desc") == "Loading weights" and args:
            return _ShardProgress(args[0], self._files, self._report, 0.1, 0.9)
        if self._previous is not None:
            return self._previous(factory, args, kwargs)
        return factory(*args, **kwargs)

    def __enter__(self) -> "_LoadingHook":
        from transformers.utils import logging as hf_logging

        self._previous = hf_logging.set_tqdm_hook(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_tqdm_hook(self._previous)


class _DropInt8CastNotice(logging.Filter):
    """bitsandbytes logs "inputs will be cast ... to float16" at every int8
    matmul of every token; it is expected for LLM.int8, so keep it out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast" not in record.getMessage()


def _quiet_int8_cast_notice() -> None:
    logger = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _DropInt8CastNotice) for f in logger.filters):
        logger.addFilter(_DropInt8CastNotice())


# --------------------------------------------------------------------------- settings


def _resolve(profile_or_path: Profile | str | os.PathLike[str]) -> tuple[Profile, str]:
    """(profile, checkpoint) from a profile, a profile name/file, or a checkpoint folder."""
    if isinstance(profile_or_path, Profile):
        profile = profile_or_path
    else:
        text = str(profile_or_path)
        path = Path(text).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise BackendError(f"{path} is not a model folder (no config.json)")
            profile = Profile(name=path.resolve().name, checkpoint=str(path.resolve()))
        else:
            try:
                profile = load_profile(text)
            except ProfileError as exc:
                raise BackendError(str(exc)) from None
    if not profile.is_local:
        raise BackendError(f"profile {profile.name!r} is a remote profile: use the remote backend with it")
    try:
        return profile, profile.resolve_checkpoint()
    except ProfileError as exc:
        raise BackendError(str(exc)) from None


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def _quantization_config(quantization: str, compute_dtype: Any, double_quant: bool) -> Any:
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=double_quant,
    )


def gpu_max_memory(profile: Profile) -> dict[int, int] | None:
    """Per visible GPU, the bytes weights may take (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    caps = {}
    for i in range(torch.cuda.device_count()):
        total = torch.cuda.get_device_properties(i).total_memory / GIB
        cap = profile.max_memory_per_gpu_gib if profile.max_memory_per_gpu_gib is not None else total - profile.reserve_gib
        caps[i] = int(max(0.0, min(cap, total)) * GIB)
    return caps


def describe_placement(model: Any) -> str:
    """"cuda:0 layers 0-31, cuda:1 layers 32-63 ..." from the model's device map."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        try:
            return f"all on {next(model.parameters()).device}"
        except StopIteration:
            return "no parameters"
    per: dict[str, list[str]] = {}
    for module, dev in device_map.items():
        label = f"cuda:{dev}" if isinstance(dev, int) else str(dev)
        per.setdefault(label, []).append(module or "(all)")
    parts = []
    for label, modules in per.items():
        layers = sorted(int(m.rsplit(".", 1)[-1]) for m in modules if m.rsplit(".", 1)[-1].isdigit() and ".layers." in f".{m}")
        others = [m.rsplit(".", 1)[-1] for m in modules if not (m.rsplit(".", 1)[-1].isdigit() and ".layers." in f".{m}")]
        text = label
        if layers:
            text += f" layers {layers[0]}-{layers[-1]}" if len(layers) > 1 else f" layer {layers[0]}"
        if others:
            text += (" +" if layers else "") + " " + ", ".join(others)
        parts.append(text)
    return "; ".join(parts)


# --------------------------------------------------------------------------- sampling


class _Sampler:
    """Greedy at temperature 0, else temperature + top-p with a seeded CPU
    generator (the same seed gives the same ids on any device)."""

    def __init__(self, sampling: Sampling) -> None:
        import torch

        self.temperature = sampling.temperature
        self.top_p = sampling.top_p
        self.generator = torch.Generator(device="cpu")
        if sampling.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(sampling.seed)

    def __call__(self, logits: Any) -> int:
        import torch

        if self.temperature <= 0:
            return int(torch.argmax(logits).item())
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if 0 < self.top_p < 1:
            sorted_p, order = torch.sort(probs, descending=True)
            # keep the smallest head whose mass reaches top_p (the first id always)
            keep = int(((torch.cumsum(sorted_p, 0) - sorted_p) < self.top_p).sum().item())
            head, ids = sorted_p[:keep].cpu(), order[:keep].cpu()
            pick = int(torch.multinomial(head, 1, generator=self.generator).item())
            return int(ids[pick].item())
        return int(torch.multinomial(probs.cpu(), 1, generator=self.generator).item())


# --------------------------------------------------------------------------- the backend


class LocalBackend:
    """A :class:`~neuraldbg.backends.base.TokenBackend` over a transformers model."""

    def __init__(self, model: Any, hf_tokenizer: Any, *, name: str, context_tokens: int,
                 cached_contexts: int = 4, rollback_tokens: int = ROLLBACK_TOKENS,
                 prefill_chunk: int = PREFILL_CHUNK, profile: Profile | None = None,
                 logits_processor: LogitsProcessor | None = None, speculative_tokens: int = 0) -> None:
        from transformers import DynamicCache

        from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter

        self.model = model
        self.hf_tokenizer = hf_tokenizer
        self.tokenizer = HFTokenizerAdapter(hf_tokenizer)
        self.name = name
        self.profile = profile
        self.stats = BackendStats()
        config = model.config
        self.vocab_size: int = config.vocab_size
        self.context_tokens = min(context_tokens, config.max_position_embeddings)
        self.prefill_chunk = max(1, prefill_chunk)
        self.contexts = ContextPool(lambda: DynamicCache(config=config), capacity=cached_contexts,
                                    rollback_tokens=rollback_tokens)
        self._input_device = model.get_input_embeddings().weight.device
        if "bitsandbytes" in sys.modules:
            _quiet_int8_cast_notice()
        # Applied to every next-token distribution before sampling, with the
        # ids it conditions on (transformers' LogitsProcessor contract).
        self.logits_processor = logits_processor
        # Prompt-lookup drafts verified per forward (0: plain decoding).
        self.speculative_tokens = max(0, speculative_tokens)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def cache_stats(self) -> Any:
        return self.contexts.stats

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        profile_or_path: Profile | str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        device_map: str | dict[str, Any] | None = None,
        quantization: str | None = None,
        dtype: str | None = None,
        attn_implementation: str | None = None,
        max_memory: dict[Any, Any] | None = None,
        cached_contexts: int | None = None,
        speculative_tokens: int | None = None,
    ) -> "LocalBackend":
        """Load a profile (by object, name or TOML path) or a checkpoint folder.

        Keyword arguments override the profile. ``max_memory`` defaults to
        each GPU's total minus the profile's reserve; without CUDA the model
        runs on the CPU in float32 (bf16 matmuls are slow there).
        """
        import torch

        profile, checkpoint = _resolve(profile_or_path)
        report: ProgressCallback = progress or (lambda p: log.info("%s", p.message))
        quantization = quantization or profile.quantization
        if quantization not in QUANTIZATIONS:
            raise BackendError(f"unknown quantization {quantization!r}; one of {', '.join(QUANTIZATIONS)}")
        cuda = torch.cuda.is_available()
        dtype_name = dtype or (profile.dtype if cuda else "float32")
        try:
            torch_dtype = _torch_dtype(dtype_name)
        except KeyError:
            raise BackendError(f"unknown dtype {dtype_name!r}; one of bfloat16, float16, float32") from None
        attn = attn_implementation or profile.attn_implementation
        if attn == "flash_attention_2" and not _has_module("flash_attn"):
            raise BackendError("attn_implementation flash_attention_2 needs the flash-attn package; use sdpa")
        if quantization != "none" and not _has_module("bitsandbytes"):
            raise BackendError(f"quantization {quantization} needs the bitsandbytes package")
        if quantization == "8bit":
            _quiet_int8_cast_notice()
        device_map = device_map or profile.device_map
        if max_memory is None and cuda and isinstance(device_map, str) and device_map in ("auto", "balanced", "balanced_low_0", "sequential"):
            max_memory = gpu_max_memory(profile)

        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        report(LoadProgress(f"reading config of {checkpoint}", 0.0, memory_per_device()))
        try:
            config = AutoConfig.from_pretrained(checkpoint)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot read the model config from {checkpoint}: {_one_line(exc)}") from None
        if getattr(config, "model_type", None) != "cwm":
            log.warning("%s is a %r model, not CWM: trace prompts may mean nothing to it", checkpoint, config.model_type)

        local = Path(checkpoint)
        files = CheckpointFiles.scan(local) if local.is_dir() else None
        quant_text = "" if quantization == "none" else f", quantized {quantization} on load"
        if files is not None:
            report(LoadProgress(
                f"weights: {len(files.shards)} shard(s), {files.total_bytes / GIB:.2f} GiB ({dtype_name}{quant_text})",
                0.05, memory_per_device(),
            ))
        else:
            report(LoadProgress(f"weights from the hub ({checkpoint}): downloading if not cached{quant_text}", 0.05,
                                memory_per_device()))

        kwargs: dict[str, Any] = {
            "dtype": torch_dtype,
            "device_map": device_map,
            "attn_implementation": attn,
        }
        if max_memory is not None:
            kwargs["max_memory"] = max_memory
        qconfig = _quantization_config(quantization, torch_dtype, profile.double_quant)
        if qconfig is not None:
            kwargs["quantization_config"] = qconfig
        try:
            with _LOAD_LOCK, _LoadingHook(files, report):
                model = AutoModelForCausalLM.from_pretrained(checkpoint, **kwargs)
        except torch.cuda.OutOfMemoryError:
            raise BackendError(
                f"out of GPU memory loading {profile.name}: run `neuraldbg doctor --profile {profile.name}` "
                "or use a quantized profile"
            ) from None
        except (OSError, ValueError, RuntimeError, ImportError) as exc:
            msg = _one_line(exc)
            if "offload" in msg or "disk" in msg:
                msg = (f"the weights do not fit in the GPUs' memory (max_memory {_gib(max_memory)}): "
                       f"run `neuraldbg doctor --profile {profile.name}` or use a quantized profile")
            raise BackendError(f"cannot load {checkpoint}: {msg}") from None
        model.eval()
        report(LoadProgress(f"placed on devices: {describe_placement(model)}", 0.92, memory_per_device()))

        try:
            hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load the tokenizer from {checkpoint}: {_one_line(exc)}") from None
        backend = cls(
            model, hf_tokenizer, name=profile.name, context_tokens=profile.context_tokens,
            cached_contexts=cached_contexts or profile.cached_contexts, profile=profile,
            speculative_tokens=profile.speculative_tokens if speculative_tokens is None else speculative_tokens,
        )
        report(LoadProgress("ready", 1.0, memory_per_device()))
        return backend

    # ---------------------------------------------------------------- generation

    def generate(
        self,
        prompt: Sequence[int],
        *,
        stop_ids: Sequence[int],
        sampling: Sampling,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        """See :meth:`TokenBackend.generate`. One request at a time: a second
        caller waits at its first ``next()`` until the first iterator ends."""
        return self._generate(list(prompt), frozenset(stop_ids), sampling, cancel)

    def _check(self, prompt: list[int]) -> None:
        if not prompt:
            raise BackendError("empty prompt")
        bad = next((t for t in prompt if not isinstance(t, int) or not 0 <= t < self.vocab_size), None)
        if bad is not None:
            raise BackendError(f"token id {bad!r} is outside the vocabulary (0..{self.vocab_size - 1})")
        if len(prompt) >= self.context_tokens:
            raise BackendError(f"the prompt has {len(prompt):,} tokens; the context holds {self.context_tokens:,}")

    def _generate(self, prompt: list[int], stops: frozenset[int], sampling: Sampling,
                  cancel: CancelToken | None) -> Iterator[int]:
        self._check(prompt)
        with self._lock:
            if self._closed:
                raise BackendError(f"the {self.name} backend is closed")
            if cancel is not None:
                cancel.raise_if_cancelled()
            ctx, reused = self.contexts.acquire(prompt)
            self.stats.requests += 1
            self.stats.prompt_tokens += len(prompt)
            self.stats.reused_tokens += reused
            self.stats.prefilled_tokens += len(prompt) - reused
            try:
                if sampling.max_tokens <= 0:
                    return
                logits = self._prefill(ctx, prompt[reused:], cancel)
                yield from self._decode(ctx, logits, stops, sampling, cancel)
            finally:
                self.contexts.release(ctx)

    def score(self, ids: Sequence[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        """See :class:`~neuraldbg.backends.base.ScoringBackend`: one teacher-forced
        pass over ``ids`` (the KV pool serves the prefix before ``start``), the
        logits of each scored position read in chunks of ``SCORE_CHUNK`` rows
        so that a long trace never holds sequence x vocab floats at once."""
        import torch

        ids = list(ids)
        if not 1 <= start <= len(ids):
            raise BackendError(f"scoring starts at {start}, outside 1..{len(ids)}")
        self._check(ids[:-1] or ids)
        if len(ids) > self.context_tokens:
            raise BackendError(f"the sequence to score has {len(ids):,} tokens; the context holds {self.context_tokens:,}")
        with self._lock:
            if self._closed:
                raise BackendError(f"the {self.name} backend is closed")
            ctx, reused = self.contexts.acquire(ids[:start])
            self.stats.requests += 1
            # The last id is only scored, never run: the pass covers len(ids) - 1 positions.
            self.stats.prompt_tokens += len(ids) - 1
            self.stats.reused_tokens += reused
            self.stats.prefilled_tokens += len(ids) - 1 - reused
            out: list[TokenScore] = []
            try:
                if reused < start - 1:
                    self._prefill(ctx, ids[reused : start - 1], cancel)
                pos = start - 1  # the position whose logits predict ids[start]
                while pos < len(ids) - 1:
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    chunk = ids[pos : min(pos + SCORE_CHUNK, len(ids) - 1)]
                    rows = self._forward(ctx, chunk, keep=len(chunk))
                    rows = rows[None] if rows.dim() == 1 else rows
                    with torch.inference_mode():
                        if self.logits_processor is not None:
                            for i in range(len(chunk)):  # each row after the ids before it
                                rows[i] = self._processed(ids[: pos + i + 1], rows[i])
                        logp = torch.log_softmax(rows.float(), dim=-1)
                        given = torch.tensor(ids[pos + 1 : pos + 1 + len(chunk)], device=logp.device)
                        given_lp = logp.gather(1, given[:, None])[:, 0].tolist()
                        top_lp, top = (t.tolist() for t in logp.max(dim=-1))
                    out += [TokenScore(t, g, b, bl) for t, g, b, bl in zip(given.tolist(), given_lp, top, top_lp)]
                    pos += len(chunk)
            finally:
                self.contexts.release(ctx)
            return out

    def _decode(self, ctx: CachedContext, logits: Any, stops: frozenset[int], sampling: Sampling,
                cancel: CancelToken | None) -> Iterator[int]:
        """Decode after a prefill. With ``speculative_tokens`` > 0, each forward
        also verifies a prompt-lookup draft (the longest recent n-gram match in
        the context): the model's own pick at every drafted position decides,
        so the ids are those of plain decoding (greedy: identical; sampled: the
        same distribution), and the KV of rejected drafts is dropped."""
        sample = _Sampler(sampling)
        room = lambda: self.context_tokens - 1 - len(ctx.tokens)  # noqa: E731 - read after every forward
        produced = 0
        token = self._pick(sample, self._processed(ctx.tokens, logits))
        while True:
            produced += 1
            self.stats.generated_tokens += 1
            yield token
            if token in stops or produced >= sampling.max_tokens:
                return
            if room() <= 0:
                log.warning("%s: context of %d tokens is full; generation stopped", self.name, self.context_tokens)
                return
            if cancel is not None:
                cancel.raise_if_cancelled()
            guess = self._draft(ctx.tokens + [token], min(sampling.max_tokens - produced, room() - 1), stops)
            self.stats.decode_forwards += 1
            self.stats.draft_tokens += len(guess)
            if not guess:
                logits = self._forward(ctx, [token])
                token = self._pick(sample, self._processed(ctx.tokens, logits))
                continue
            rows = self._forward(ctx, [token, *guess], keep=len(guess) + 1)
            base = len(ctx.tokens) - len(guess)  # the ids before the first drafted position
            for i, expected in enumerate([*guess, None]):
                token = self._pick(sample, self._processed(ctx.tokens[: base + i], rows[i]))
                if token != expected:
                    break
                self.stats.accepted_tokens += 1
                produced += 1
                self.stats.generated_tokens += 1
                yield token
                if token in stops or produced >= sampling.max_tokens:
                    return
            rejected = len(guess) - i
            if rejected:
                drop_last(ctx.cache, rejected)
                del ctx.tokens[-rejected:]

    def _draft(self, ids: list[int], limit: int, stops: frozenset[int]) -> list[int]:
        """Up to ``speculative_tokens`` (and ``limit``) drafted ids, cut after a stop id."""
        k = min(self.speculative_tokens, limit)
        if k <= 0:
            return []
        guess = draft(ids, k, max_ngram=DRAFT_NGRAM)
        stop_at = next((i for i, t in enumerate(guess) if t in stops), None)
        return guess if stop_at is None else guess[: stop_at + 1]

    def _prefill(self, ctx: CachedContext, ids: list[int], cancel: CancelToken | None) -> Any:
        logits = None
        for start in range(0, len(ids), self.prefill_chunk):
            if start and cancel is not None:
                cancel.raise_if_cancelled()
            logits = self._forward(ctx, ids[start : start + self.prefill_chunk])
        return logits

    def _forward(self, ctx: CachedContext, ids: list[int], keep: int = 1) -> Any:
        """Run ``ids`` after ``ctx``; return the next-token logits (1-D), or
        with ``keep`` > 1 those of the last ``keep`` positions (keep x vocab)."""
        import torch

        ctx.valid = False
        self.stats.forwards += 1
        try:
            with torch.inference_mode():
                input_ids = torch.tensor([ids], dtype=torch.long, device=self._input_device)
                out = self.model(input_ids=input_ids, past_key_values=ctx.cache, use_cache=True, logits_to_keep=keep)
                logits = out.logits[0, -1] if keep == 1 else out.logits[0, -keep:]
        except torch.cuda.OutOfMemoryError:
            self.contexts.clear()
            torch.cuda.empty_cache()
            raise BackendError(
                f"out of GPU memory at {len(ctx.tokens) + len(ids):,} tokens of context: cached contexts were "
                "dropped; retry, or lower context_tokens / cached_contexts in the profile"
            ) from None
        except RuntimeError as exc:
            raise BackendError(f"model forward failed: {_one_line(exc)}") from None
        self.contexts.extended(ctx, ids)
        ctx.valid = True
        return logits

    def _processed(self, before: Sequence[int], logits: Any) -> Any:
        """``logits`` after the logits processor, given the ids they follow."""
        if self.logits_processor is None:
            return logits
        import torch

        with torch.inference_mode():
            seen = [list(before)]
            ids = seen if getattr(self.logits_processor, "takes_id_lists", False) else torch.tensor(seen, dtype=torch.long)
            # A processor may edit the row in place: it is this step's own copy of the forward's output.
            return self.logits_processor(ids, logits[None])[0]

    @staticmethod
    def _pick(sample: _Sampler, logits: Any) -> int:
        import torch

        with torch.inference_mode():
            return sample(logits)

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.contexts.clear()
            self.model = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _gib(max_memory: dict[Any, Any] | None) -> str:
    if not max_memory:
        return "default"
    return ", ".join(f"{k}: {v / GIB:.1f} GiB" if isinstance(v, (int, float)) else f"{k}: {v}" for k, v in max_memory.items())
