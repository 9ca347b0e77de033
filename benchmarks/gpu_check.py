"""One GPU check of the local backend on a full-size random CWM, in under 8 minutes on one H200.

It builds ``CwmForCausalLM`` with transformers' ``CwmConfig`` defaults (64
layers, hidden 6144, 48 heads, 8 KV heads, vocab 128,256), bf16, random
weights materialised straight on the GPU (``gpu_decode.build_random_model``:
meta device, then one ``normal_`` per tensor; nothing is saved or loaded),
and measures through ``neuraldbg.backends.local.LocalBackend``:

1. batch-1 decode on a real trace (CruxEval sample_732, embedded below, its
   call frame in the prompt and the real run's remaining 551 tokens to
   write) with and without prompt-lookup speculation (k=8), every token
   forced by the oracle (``OracleLogitsProcessor(TraceOracle(...))`` with the
   Llama-3 BPE carrying CWM's specials) inside the backend's own decode loop:
   ``gpu.decode_tokens_per_s_k0``, ``gpu.decode_tokens_per_s_k8``,
   ``gpu.speculation_speedup``, ``gpu.tokens_per_forward_k8`` (and the
   prompt-lookup bound of that trace, the oracle's own time per token);
2. the cost of verifying 8 drafted tokens: one forward of 9 new tokens
   against one of 1 new token after a 2,048-token context (median of
   repeats, the KV of each rolled back): ``gpu.verify8_over_1``;
3. ``LocalBackend.score`` over a 2,048-token trace (CruxEval sample_794, cut
   at 2,048 tokens), cold: ``gpu.scoring_ms_2k``, and against writing the
   same tokens one decode step at a time (scored tokens x the k=0 per-token
   decode time, the oracle's share taken out): ``gpu.scoring_speedup_vs_generate``;
4. ``torch.cuda.max_memory_allocated`` while a 32,768-token prompt (that
   trace, tiled) is prefilled through the backend's chunked prefill into an
   empty pool, against ``neuraldbg doctor``'s estimate (``doctor.plan``:
   weights + ``kv_budget`` for one context of 32,768 tokens):
   ``gpu.peak_gib``, ``gpu.doctor_estimate_gib``, ``gpu.peak_over_estimate``
   (and ``gpu.kv_held_over_doctor``: the KV storage the context holds after
   the prefill against kv_budget's bytes for one context).

Each part checks the time left first (``--budget-s``, 450 s by default; the
decode loops stop at their share too): a part that would not fit prints its
figures as ``FIGURE name | skipped | why``, and a part that fails prints
``FIGURE name | failed | why`` and the run goes on. The exit status is 1 when
any part failed, was skipped or the forced decode left the real run.

Requirements. Here: the project's venv (``.venv``), and ``models/llama3-bpe``
(``make llama3-tokenizer``). On the device machine (nvidia-h200): its image's
``python3`` has torch 2.11 (CUDA 13), accelerate 1.15, tokenizers, safetensors
and huggingface_hub, but transformers 5.17 (the project pins 5.23.0) and no
tree-sitter (the oracle indexes the source with it). Those three travel as
wheels in ``.whl/``, with the tokenizer folder (``carry``: about 23 MB of the
64 MiB the working tree may take); what transformers 5.23 needs besides is
the image's (huggingface_hub 1.33 >= 1.31, tokenizers 0.23.2, safetensors
0.8.0, regex as its transformers 5.17 needs it). bitsandbytes is not needed
(bf16 only).

Prepare once, here (pip downloads the pinned wheels for the device's CPython
3.12 and adds ``/.whl/`` to ``.git/info/exclude``):

    make llama3-tokenizer
    .venv/bin/python benchmarks/gpu_check.py --fetch-wheels

Then one call of the device tool's ``run``, with ``timeout_s`` 540 and
``carry`` ``[".whl", "models/llama3-bpe"]``, and this ``command``:

    set -o pipefail; python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT/gpu.txt 2>&1 | tee $OUT/log.txt

``$OUT/gpu.txt`` holds the report (written as it comes, so a killed run
still returns what it measured); each part prints its own seconds, so a
first run sizes the next. Both carried folders must be in the checkout the
session was started in (that is the tree the tool sends).

    python benchmarks/gpu_check.py --smoke   # a tiny CWM on the CPU, short contexts: the same code (the tests run it)
"""

# bench: timeout 600
from __future__ import annotations

import argparse
import ast
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):  # the device machine runs the checkout without installing it
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import gpu_decode  # noqa: E402 - beside this file: the random model is built as it builds it
from _oracle_session import TimedProcessor  # noqa: E402 - the oracle's time, as the other model benchmarks count it

GIB = 1024**3
K = 8  # draft tokens per verifying forward
WHEELS_DIR = ROOT / ".whl"
# The device image lacks these (tree-sitter) or has another version (transformers 5.17): the project's pins.
WHEELS = ("transformers==5.23.0", "tree-sitter==0.26.1", "tree-sitter-python==0.25.0")
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "manylinux1_x86_64")


@dataclass(frozen=True)
class Program:
    """A CruxEval sample: ``f`` and the input it is called with."""

    id: str
    code: str
    input: str


# Copied from ../shared/data/cruxeval.jsonl, which does not travel to the device machine.
# sample_732: a 595-token trace whose prompt-lookup bound at k=8 (3.56 tokens per forward)
# is the corpus's pooled one (3.58); sample_794: prompt + trace 2,418 tokens.
DECODE_PROGRAM = Program(
    "sample_732",
    "def f(char_freq):\n    result = {}\n    for k, v in char_freq.copy().items():\n        result[k] = v // 2\n"
    "    return result",
    "{'u': 20, 'v': 5, 'b': 7, 'w': 3, 'x': 3}",
)
SCORING_PROGRAM = Program(
    "sample_794",
    "def f(line):\n    a = []\n    for c in line:\n        if c.isalnum():\n            a.append(c)\n    return ''.join(a)",
    "\"\\\"\\\\%$ normal chars $%~ qwet42'\"",
)


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: the real one, or the smoke run's (tiny model, short contexts)."""

    device: str
    decode_tokens: int  # at most this many tokens written per decode run
    verify_context: int  # tokens of context before the 1- and 9-token forwards
    verify_repeats: int
    scoring_tokens: int  # length of the scored sequence
    long_context: int  # tokens prefilled for the memory peak
    decode_cap_s: float  # a decode run stops after this long


REAL = Settings("cuda:0", decode_tokens=1024, verify_context=2048, verify_repeats=10, scoring_tokens=2048,
                long_context=32768, decode_cap_s=75.0)
SMOKE = Settings("cpu", decode_tokens=64, verify_context=256, verify_repeats=3, scoring_tokens=512,
                 long_context=2100, decode_cap_s=60.0)  # 2,100 tokens: two prefill chunks


# --------------------------------------------------------------------------- output and time


@dataclass
class Report:
    """FIGURE lines (and notes) to stdout and, as they come, to ``--out``."""

    out: TextIO | None = None
    problems: list[str] = field(default_factory=list)
    printed: set[str] = field(default_factory=set)  # figures with a value

    def line(self, text: str) -> None:
        print(text, flush=True)
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def figure(self, name: str, value: float | str, unit: str) -> None:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        self.printed.add(name)
        self.line(f"FIGURE gpu.{name} | {text} | {unit}")

    def unmeasured(self, names: Sequence[str], verdict: str, why: str) -> None:
        """``verdict`` is "skipped" or "failed" for each of ``names`` that has no value yet: never a silent gap."""
        missing = [name for name in names if name not in self.printed]
        self.problems.append(f"{', '.join(missing)}: {verdict} ({why})")
        for name in missing:
            self.line(f"FIGURE gpu.{name} | {verdict} | {why}")


@dataclass
class Budget:
    """The wall-clock seconds the whole run may take, counted from the start."""

    total_s: float
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.total_s - (time.perf_counter() - self.start)

    def deadline(self, cap_s: float, keep_s: float, floor_s: float = 5.0) -> float:
        """A perf_counter time: at most ``cap_s`` from now and ``keep_s`` before the end
        (but ``floor_s`` from now at least, and never past the end)."""
        share = max(floor_s, min(cap_s, self.left() - keep_s))
        return time.perf_counter() + min(share, max(0.0, self.left()))


@dataclass(frozen=True)
class Part:
    names: tuple[str, ...]
    need_s: float  # what it needs at least (estimated from what was measured before it)
    run: Callable[[], None]


def run_part(part: Part, budget: Budget, report: Report) -> None:
    left = budget.left()
    if left < part.need_s:
        report.unmeasured(part.names, "skipped", f"for time: {left:.0f} s left of the budget, needs ~{part.need_s:.0f} s")
        return
    t0 = time.perf_counter()
    try:
        part.run()
    except Exception as exc:  # noqa: BLE001 - one part's failure (an OOM, say) must not cost the others
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        report.unmeasured(part.names, "failed", f"{type(exc).__name__}: {first[:200]}")
    report.line(f"({part.names[0]}...: {time.perf_counter() - t0:.1f} s, {budget.left():.0f} s of the budget left)")


# --------------------------------------------------------------------------- traces


@dataclass(frozen=True)
class TraceIds:
    prompt: list[int]  # BOS, <|trace_context_start|>, source, <|frame_sep|>, then the call frame
    rest: list[int]  # the real run's other frames, then <|end_of_text|>

    @property
    def all(self) -> list[int]:
        return self.prompt + self.rest


def trace_ids(tok: Any, program: Program) -> TraceIds:
    """The CWM prompt and trace of a real run of ``program``."""
    from neuraldbg.trace.cwm_encode import encode_frame, encode_trace
    from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
    from neuraldbg.tracer import run_trace

    truth = run_trace(program.code, f"f({program.input})", function="f", path="<cruxeval>")
    if truth.status != "complete":
        raise SystemExit(f"gpu_check: {program.id} did not run to the end: {truth.error or truth.status}")
    def_line = next(n.lineno for n in ast.walk(ast.parse(program.code)) if isinstance(n, ast.FunctionDef) and n.name == "f")
    call_frame = encode_frame(tok, truth.frames[0], None)
    trace = encode_trace(tok, truth)
    assert trace[: len(call_frame)] == call_frame
    return TraceIds(trace_prompt_ids(tok, mark_entry(program.code, def_line)) + call_frame, trace[len(call_frame):])


def tiled(ids: Sequence[int], n: int) -> list[int]:
    """``n`` ids: BOS, then ``ids`` (BOS dropped) over and over. Memory does not read the content."""
    body = list(ids[1:])
    return [ids[0], *(body * (n // len(body) + 1))[: n - 1]]


# --------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class DecodeRun:
    tokens: int  # written after the first (which the prefill gives)
    seconds: float  # from the first token to the last
    forwards: int  # decode forwards
    oracle_s: float  # of ``seconds``, spent in the oracle
    exact: bool  # every token the real run's

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def model_s_per_token(self) -> float:
        return (self.seconds - self.oracle_s) / self.tokens


def forced_decode(model: Any, hf_tok: Any, oracle: Any, trace: TraceIds, k: int, s: Settings,
                  deadline: float) -> DecodeRun:
    """Write ``trace.rest`` after ``trace.prompt`` through LocalBackend.generate, ``oracle`` forcing each token."""
    from neuraldbg.backends.base import Sampling
    from neuraldbg.backends.local import LocalBackend
    from neuraldbg.backends.oracle import OracleLogitsProcessor
    from neuraldbg.trace.cwm_tokens import EOT

    backend = LocalBackend(model, hf_tok, name=f"random-cwm k={k}", context_tokens=len(trace.all) + 16,
                           speculative_tokens=k)
    timed = TimedProcessor(OracleLogitsProcessor(oracle))
    backend.logits_processor = timed
    greedy = Sampling(temperature=0.0, max_tokens=min(len(trace.rest), s.decode_tokens))
    # warm-up: kernels, and the oracle's real run of the program (cached for the measured run)
    list(backend.generate(trace.prompt, stop_ids=[EOT], sampling=Sampling(temperature=0.0, max_tokens=4)))
    backend.contexts.clear()
    forwards_before = backend.stats.decode_forwards
    got: list[int] = []
    stamps: list[tuple[float, float]] = []  # (time, oracle seconds so far) at each token
    stream = backend.generate(trace.prompt, stop_ids=[EOT], sampling=greedy)
    for token in stream:
        got.append(token)
        stamps.append((time.perf_counter(), timed.seconds))
        if stamps[-1][0] > deadline:
            break
    stream.close()
    if len(got) < 2:
        raise RuntimeError(f"the decode wrote {len(got)} token(s) before its deadline")
    backend.contexts.clear()
    return DecodeRun(tokens=len(got) - 1, seconds=stamps[-1][0] - stamps[0][0],
                     forwards=backend.stats.decode_forwards - forwards_before,
                     oracle_s=stamps[-1][1] - stamps[0][1], exact=got == trace.rest[: len(got)])


def verify_cost(model: Any, context: Sequence[int], s: Settings) -> tuple[float, float]:
    """Median seconds of a forward of 1 and of 9 new tokens after ``context`` (each rolled back)."""
    import torch
    from transformers import DynamicCache

    from neuraldbg.backends.kv_cache import keep_past, trim
    from neuraldbg.backends.local import PREFILL_CHUNK, ROLLBACK_TOKENS
    from neuraldbg.backends.speculative import drop_last

    # the backend's cache discipline: sliding layers keep a rollback margin, trimmed after each forward
    cache = DynamicCache(config=model.config)
    keep_past(cache)
    where = model.get_input_embeddings().weight.device

    def forward(ids: Sequence[int], keep: int) -> float:
        gpu_decode.sync(s.device)
        t0 = time.perf_counter()
        model(input_ids=torch.tensor([list(ids)], device=where), past_key_values=cache, use_cache=True,
              logits_to_keep=keep)
        gpu_decode.sync(s.device)
        seconds = time.perf_counter() - t0
        trim(cache, ROLLBACK_TOKENS)
        return seconds

    with torch.inference_mode():
        for start in range(0, len(context), PREFILL_CHUNK):
            forward(context[start : start + PREFILL_CHUNK], 1)
        times: dict[int, list[float]] = {1: [], K + 1: []}
        for repeat in range(s.verify_repeats + 1):  # the first round warms up
            for n in times:
                seconds = forward(context[-n:], n)
                drop_last(cache, n)
                if repeat:
                    times[n].append(seconds)
    return statistics.median(times[1]), statistics.median(times[K + 1])


def cache_storage_bytes(cache: Any) -> int:
    """Bytes of the storages behind a DynamicCache's keys and values (views counted once)."""
    seen: dict[int, int] = {}
    for layer in cache.layers:
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if t is not None and t.numel():
                storage = t.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


@dataclass(frozen=True)
class Memory:
    peak_bytes: int  # max_memory_allocated during the prefill (CPU: weights + KV held, no transient)
    weights_bytes: int
    kv_held_bytes: int  # the context's KV storage after the prefill


def long_prefill_memory(model: Any, hf_tok: Any, ids: list[int], s: Settings) -> Memory:
    """Prefill ``ids`` into an empty pool through LocalBackend.generate (chunked prefill, one token out)."""
    import torch

    from neuraldbg.backends.base import Sampling
    from neuraldbg.backends.local import LocalBackend

    cuda = s.device.startswith("cuda")
    backend = LocalBackend(model, hf_tok, name="random-cwm long", context_tokens=len(ids) + 8, cached_contexts=1)
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    weights = torch.cuda.memory_allocated() if cuda else gpu_decode.resident_bytes(model)
    list(backend.generate(ids, stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=1)))
    gpu_decode.sync(s.device)
    ctx, reused = backend.contexts.acquire([*ids, 0])  # the context just built, taken out of the pool
    if reused != len(ids):
        raise RuntimeError(f"the pool holds {reused} of the {len(ids)} prefilled tokens")
    held = cache_storage_bytes(ctx.cache)
    backend.contexts.release(ctx)
    peak = torch.cuda.max_memory_allocated() if cuda else weights + held
    backend.close()
    return Memory(peak, weights, held)


def doctor_estimate(config: Any, tokens: int, s: Settings) -> Any:
    """``neuraldbg doctor``'s plan for this model on this GPU: one context (the pool was emptied) of ``tokens``."""
    from neuraldbg.hosting.doctor import plan
    from neuraldbg.hosting.gpus import detect_gpus, parse_gpus
    from neuraldbg.backends.profiles import Profile

    gpus = (detect_gpus() if s.device.startswith("cuda") else []) or parse_gpus("1x141")
    profile = Profile(name="gpu-check", context_tokens=tokens, cached_contexts=0, attn_implementation="sdpa")
    return plan(profile, gpus[:1], config=config)


# --------------------------------------------------------------------------- the parts


@dataclass
class Check:
    """The run's shared state: the model, the traces, and what earlier parts measured."""

    model: Any
    config: Any
    hf_tok: Any
    decode: TraceIds
    scoring: TraceIds
    s: Settings
    budget: Budget
    report: Report
    per_token_s: float | None = None  # k=0 model time per decoded token (the oracle's share out)
    prefill_tokens_per_s: float | None = None

    def part_decode(self) -> None:
        from neuraldbg.backends.local import DRAFT_NGRAM
        from neuraldbg.backends.oracle import TraceOracle
        from neuraldbg.backends.prompt_lookup import perfect_model_forwards
        from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter

        r, s = self.report, self.s
        oracle = TraceOracle(HFTokenizerAdapter(self.hf_tok))  # one for both runs: the program is run for real once
        runs: dict[int, DecodeRun] = {}
        for k, keep_s in ((0, 200.0), (K, 140.0)):  # the k=0 run leaves time for k=8 and the other parts
            deadline = self.budget.deadline(s.decode_cap_s, keep_s)
            runs[k] = forced_decode(self.model, self.hf_tok, oracle, self.decode, k, s, deadline)
            run = runs[k]
            r.line(f"decode k={k}: {run.tokens} tokens in {run.seconds:.2f} s, {run.forwards} forwards, oracle "
                   f"{run.oracle_s * 1000 / run.tokens:.2f} ms/token, real run {'kept' if run.exact else 'LEFT'}")
            if not run.exact:
                r.problems.append(f"decode k={k}: the oracle-forced tokens left the real run")
        plain, fast = runs[0], runs[K]
        self.per_token_s = plain.model_s_per_token
        written = min(len(self.decode.rest), s.decode_tokens)
        bound = written / perfect_model_forwards(self.decode.prompt, self.decode.rest[:written], K, DRAFT_NGRAM)
        r.figure("decode_tokens_per_s_k0", plain.tokens_per_s, f"tokens/s (batch 1, oracle-forced trace of {plain.tokens} tokens)")
        r.figure("decode_tokens_per_s_k8", fast.tokens_per_s, f"tokens/s (batch 1, prompt lookup k={K}, {fast.tokens} tokens)")
        r.figure("speculation_speedup", fast.tokens_per_s / plain.tokens_per_s, f"x (k={K} / k=0 tokens/s)")
        r.figure("tokens_per_forward_k8", fast.tokens / fast.forwards, f"tokens per decode forward (bound {bound:.2f})")
        r.figure("oracle_ms_per_token_k0", plain.oracle_s * 1000 / plain.tokens, "ms per token inside the decode (not a model's)")

    def part_verify(self) -> None:
        one, nine = verify_cost(self.model, self.scoring.all[: self.s.verify_context], self.s)
        self.report.line(f"verify at {self.s.verify_context} tokens of context: 1 new token {one * 1000:.2f} ms, "
                         f"{K + 1} new tokens {nine * 1000:.2f} ms")
        self.report.figure("verify8_over_1", nine / one, f"x (forward of {K + 1} new tokens / of 1, {self.s.verify_context}-token context)")
        if self.per_token_s is None:  # part 1 did not measure one: a 1-token forward is a decode step's model time
            self.per_token_s = one

    def part_scoring(self) -> None:
        from neuraldbg.backends.local import LocalBackend

        ids = self.scoring.all[: self.s.scoring_tokens]
        start = len(self.scoring.prompt)
        backend = LocalBackend(self.model, self.hf_tok, name="random-cwm score", context_tokens=len(ids) + 8)
        backend.score(ids[: start + 64], start=start)  # warm-up
        backend.contexts.clear()
        gpu_decode.sync(self.s.device)
        t0 = time.perf_counter()
        scores = backend.score(ids, start=start)
        gpu_decode.sync(self.s.device)
        seconds = time.perf_counter() - t0
        backend.close()
        self.prefill_tokens_per_s = len(ids) / seconds
        self.report.figure("scoring_ms_2k", seconds * 1000, f"ms (LocalBackend.score, {len(ids)} tokens, {len(scores)} scored, cold)")
        if self.per_token_s is None:
            self.report.unmeasured(["scoring_speedup_vs_generate"], "skipped", "no per-token decode time was measured")
            return
        generate_s = len(scores) * self.per_token_s
        self.report.figure("scoring_speedup_vs_generate", generate_s / seconds,
                           f"x ({len(scores)} tokens x {self.per_token_s * 1000:.2f} ms decode = {generate_s:.2f} s)")

    def part_memory(self) -> None:
        tokens = self.s.long_context
        mem = long_prefill_memory(self.model, self.hf_tok, tiled(self.scoring.all, tokens), self.s)
        est = doctor_estimate(self.config, tokens, self.s)
        gpu = est.devices[0]
        estimate = gpu.weights_gib + gpu.kv_need_gib
        peak = mem.peak_bytes / GIB
        what = "max_memory_allocated" if self.s.device.startswith("cuda") else "CPU: weights + KV held, no transient"
        self.report.line(f"memory at {tokens:,} tokens: weights {mem.weights_bytes / GIB:.2f} GiB (doctor "
                         f"{gpu.weights_gib:.2f}), KV held {mem.kv_held_bytes / GIB:.3f} GiB (doctor "
                         f"{est.kv.context_bytes / GIB:.3f}), doctor transient {est.kv.transient_bytes / GIB:.3f} GiB")
        self.report.figure("peak_gib", peak, f"GiB ({what}, {tokens:,}-token prefill, 1 context)")
        self.report.figure("doctor_estimate_gib", estimate, "GiB (doctor: weights + KV of 1 context + transient)")
        self.report.figure("peak_over_estimate", peak / estimate, "x (measured / doctor)")
        self.report.figure("kv_held_over_doctor", mem.kv_held_bytes / est.kv.context_bytes, "x (KV storage held / doctor's context bytes)")

    def parts(self) -> list[Part]:
        decode_s = 30.0 if self.s.device.startswith("cuda") else 5.0
        prefill = self.prefill_tokens_per_s
        # estimated from the 2k scoring prefill when it ran: attention grows with the context, hence x2
        long_s = 10.0 + (2 * self.s.long_context / prefill if prefill else 60.0)
        return [
            Part(("decode_tokens_per_s_k0", "decode_tokens_per_s_k8", "speculation_speedup", "tokens_per_forward_k8",
                  "oracle_ms_per_token_k0"), decode_s, self.part_decode),
            Part(("verify8_over_1",), 5.0, self.part_verify),
            Part(("scoring_ms_2k", "scoring_speedup_vs_generate"), 10.0, self.part_scoring),
            Part(("peak_gib", "doctor_estimate_gib", "peak_over_estimate", "kv_held_over_doctor"), long_s, self.part_memory),
        ]

    def run(self) -> None:
        for i in range(len(self.parts())):
            run_part(self.parts()[i], self.budget, self.report)  # rebuilt each time: estimates use what came before


# --------------------------------------------------------------------------- setup


def fetch_wheels() -> int:
    """Download the wheels the device machine lacks into .whl/ and keep git from seeing them."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", *(f"--platform={p}" for p in PIP_PLATFORMS), "-d", str(WHEELS_DIR), *WHEELS]
    if subprocess.run(cmd, check=False).returncode != 0:
        return 2
    exclude = Path(subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout.strip())
    exclude = exclude if exclude.is_absolute() else ROOT / exclude
    exclude.parent.mkdir(parents=True, exist_ok=True)
    if "/.whl/" not in (exclude.read_text().splitlines() if exclude.is_file() else []):
        with exclude.open("a") as fh:
            fh.write("/.whl/\n")
    print(f"wheels in {WHEELS_DIR}: {', '.join(sorted(p.name for p in WHEELS_DIR.glob('*.whl')))}")
    return 0


def build(s: Settings, report: Report) -> tuple[Any, Any]:
    """(model, config): the full-size random CWM on the GPU, or the tiny one on the CPU."""
    import torch

    if s.device.startswith("cuda"):
        from transformers import CwmConfig

        config = CwmConfig()
        props = torch.cuda.get_device_properties(0)
        report.line(f"device: {props.name} ({props.total_memory / GIB:.1f} GiB), torch {torch.__version__}")
    else:
        from neuraldbg.testing.tiny_model import tiny_cwm_config

        config = tiny_cwm_config()
        report.line(f"device: cpu (smoke run: tiny CWM, short contexts), torch {torch.__version__}")
    t0 = time.perf_counter()
    model = gpu_decode.build_random_model(config, "bf16", s.device)
    if not s.device.startswith("cuda"):
        torch.set_num_threads(1)  # a smoke run shares a few busy cores: more threads contend (x10 slower seen)
    gpu_decode.sync(s.device)
    report.line(f"model: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
                f"{gpu_decode.resident_bytes(model) / GIB:.2f} GiB {str(model.dtype).removeprefix('torch.')}, built in {time.perf_counter() - t0:.1f} s")
    return model, config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CWM on the CPU, short contexts (what the tests run)")
    ap.add_argument("--budget-s", type=float, default=450.0, help="wall-clock seconds the whole run may take")
    ap.add_argument("--out", type=Path, default=None, help="also write the FIGURE lines here, as they come")
    ap.add_argument("--fetch-wheels", action="store_true", help="download the device machine's missing wheels to .whl/")
    args = ap.parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels()
    budget = Budget(args.budget_s)
    import torch
    import transformers

    s = SMOKE if args.smoke else REAL
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (run it on a GPU host, or --smoke)", file=sys.stderr)
        return 2
    from neuraldbg.backends.llama3_tokenizer import Llama3TokenizerError, load_llama3_tokenizer
    from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter

    try:
        hf_tok = load_llama3_tokenizer()
    except Llama3TokenizerError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    out = args.out.open("w") if args.out else None
    report = Report(out)
    try:
        report.line(f"transformers {transformers.__version__}, budget {args.budget_s:.0f} s")
        tok = HFTokenizerAdapter(hf_tok)
        decode, scoring = trace_ids(tok, DECODE_PROGRAM), trace_ids(tok, SCORING_PROGRAM)
        report.line(f"traces: {DECODE_PROGRAM.id} {len(decode.prompt)} + {len(decode.rest)} tokens, {SCORING_PROGRAM.id} "
                    f"{len(scoring.prompt)} + {len(scoring.rest)}; {time.perf_counter() - budget.start:.1f} s in")
        model, config = build(s, report)
        Check(model, config, hf_tok, decode, scoring, s, budget, report).run()
        report.line(f"total {time.perf_counter() - budget.start:.0f} s")
        for problem in report.problems:
            report.line(f"problem: {problem}")
    finally:
        if out is not None:
            out.close()
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
