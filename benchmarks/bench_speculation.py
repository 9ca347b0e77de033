"""Prompt-lookup speculative decoding on the oracle-forced CWM over CruxEval.

Each CruxEval sample ``f(input)`` is debugged to its end (step in until the
trace ends) through the Simulation on the local backend with
``speculative_tokens=k``: a random CwmForCausalLM (Llama-3 BPE) whose logits
the trace oracle masks to the real run's next token, so every drafted token
is verified by a real forward and the frames are the real run's (checked
against the exec tracer, and every request must return one complete frame).

Figures:

- speculation.tokens_per_forward: generated tokens / decode forwards at k
  (TINY CWM), over as many samples as fit in --budget seconds (at least
  --min-samples). Decode forwards are the forwards after each request's
  prefill; the prefill forward also yields a token (the first of a frame),
  so speculation.tokens_per_forward_all divides by decode forwards plus one
  prefill forward per request: comparable to the perfect-model bound of
  benchmarks/bench_tokens.py (3.69 at k=8), which counts every forward of
  one uninterrupted stream;
- speculation.wall_gain_small: wall time at k=0 / at k on the SMALL CWM,
  batch 1, over the first --wall-samples samples; both runs must write the
  same frames.

What they do not measure: CWM's acceptance rate (the oracle is a perfect
model: these are upper figures for this draft rule and these traces), GPU
speed-ups (on a CPU a forward of k+1 positions costs little more than one,
as there), or the oracle's time (printed; it is in both wall times).

    python benchmarks/bench_speculation.py [--quick] [--k 8] [--budget 90] [--threads 1]
"""

# bench: timeout 900
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _oracle_session import (  # noqa: E402
    CheckedBackend,
    Program,
    TimedProcessor,
    oracle_folder,
    simulation,
    snapshot,
    stats_delta,
)

from neuraldbg.backends.base import BackendStats, Sampling  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cruxeval.jsonl"
CONTEXT_ROOM = 3800  # prompt + trace tokens a sample may take (the random CWM's context is 4096)
GREEDY = Sampling(temperature=0.0)


@dataclass
class Totals:
    samples: int = 0
    wall_s: float = 0.0
    requests: int = 0
    generated: int = 0
    decode_forwards: int = 0
    draft: int = 0
    accepted: int = 0

    def add(self, stats: BackendStats, wall: float) -> None:
        self.samples += 1
        self.wall_s += wall
        self.requests += stats.requests
        self.generated += stats.generated_tokens
        self.decode_forwards += stats.decode_forwards
        self.draft += stats.draft_tokens
        self.accepted += stats.accepted_tokens


def programs(data: str, tok: Any, limit: int) -> list[tuple[Program, Any]]:
    """Of the first ``limit`` CruxEval samples, those whose real run completes and fits the context, with their truth."""
    from neuraldbg.trace.cwm_encode import encode_trace
    from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
    from neuraldbg.tracer import Limits, run_traces

    with open(data, encoding="utf-8") as fh:
        samples = [json.loads(line) for line in fh if line.strip()][:limit]
    progs = [Program(s["code"], "f", f"f({s['input']})") for s in samples]
    truths = run_traces([(p.source, p.call, "f", "<cruxeval>") for p in progs], Limits(), workers=2)
    out = []
    for prog, truth in zip(progs, truths):
        if truth.status != "complete" or not truth.frames:
            continue
        def_line = truth.frames[0].line
        size = len(trace_prompt_ids(tok, mark_entry(prog.source, def_line))) + len(encode_trace(tok, truth))
        if size <= CONTEXT_ROOM:
            out.append((prog, truth))
    return out


def twin(base: Any, k: int) -> Any:
    """A LocalBackend on ``base``'s model with its own oracle and draft size."""
    from neuraldbg.backends.local import LocalBackend
    from neuraldbg.backends.oracle import OracleLogitsProcessor, TraceOracle

    processor = TimedProcessor(OracleLogitsProcessor(TraceOracle(base.tokenizer)))
    return LocalBackend(base.model, base.hf_tokenizer, name=f"oracle k={k}", context_tokens=base.context_tokens,
                        speculative_tokens=k, logits_processor=processor)


def debug_to_end(backend: Any, prog: Program, truth: Any) -> tuple[list[Any], BackendStats, float, list[str]]:
    """Step in until the trace ends; (frames, the backend's counters for this
    run, wall seconds, what went wrong)."""
    from neuraldbg.trace.cwm_decode import cwm_view

    checked = CheckedBackend(backend)
    before = snapshot(backend.stats)
    sim, engine = simulation(checked, prog, GREEDY)
    t0 = time.perf_counter()
    got = sim.run_to_end()
    wall = time.perf_counter() - t0
    stats = stats_delta(backend.stats, before)
    errors = [f"{prog.call}: {bad}" for bad in checked.log.bad]
    if got.status != "complete" or cwm_view(got.frames) != cwm_view(truth.frames):
        errors.append(f"{prog.call}: the model's trace is not the real run ({got.status}: {got.error})")
    if engine.new_frames != checked.log.complete_frames:
        errors.append(f"{prog.call}: {engine.new_frames} new frames, {checked.log.complete_frames} complete")
    return got.frames, stats, wall, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NEURALDBG_CRUXEVAL", str(DEFAULT_DATA)))
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--limit", type=int, default=200, help="CruxEval samples traced (the pool drawn from)")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of sessions for tokens_per_forward")
    parser.add_argument("--min-samples", type=int, default=50)
    parser.add_argument("--wall-samples", type=int, default=6, help="samples timed at k=0 and k on SMALL")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: see bench_kv_reuse.py)")
    parser.add_argument("--quick", action="store_true", help="5 samples, 2 timed on TINY (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.budget, args.min_samples, args.wall_samples, args.limit = 0.0, 5, 2, 10
    import torch

    from neuraldbg.backends.local import LocalBackend
    from neuraldbg.trace.cwm_decode import cwm_view

    torch.set_num_threads(args.threads)
    base = LocalBackend.load(oracle_folder("tiny"), speculative_tokens=0)
    pool = programs(args.data, base.tokenizer, args.limit)
    errors: list[str] = []

    fast = twin(base, args.k)
    spec = Totals()
    for prog, truth in pool:
        if spec.samples >= args.min_samples and spec.wall_s >= args.budget:
            break
        _, stats, wall, bad = debug_to_end(fast, prog, truth)
        spec.add(stats, wall)
        errors += bad
    oracle_s = fast.logits_processor.seconds

    size = "tiny" if args.quick else "small"
    timed = base if args.quick else LocalBackend.load(oracle_folder("small"), speculative_tokens=0)
    walls: dict[int, Totals] = {}
    frames: dict[int, list[Any]] = {}
    for k in (0, args.k):
        backend = twin(timed, k)
        debug_to_end(backend, *pool[0])  # warm up torch and this oracle on one sample
        walls[k] = Totals()
        frames[k] = []
        for prog, truth in pool[: args.wall_samples]:
            got, stats, wall, bad = debug_to_end(backend, prog, truth)
            walls[k].add(stats, wall)
            frames[k] += cwm_view(got)
            errors += bad
    if frames[0] != frames[args.k]:
        errors.append(f"k=0 and k={args.k} wrote different frames")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1

    per_forward = spec.generated / spec.decode_forwards
    per_forward_all = spec.generated / (spec.decode_forwards + spec.requests)
    print(f"{spec.samples} CruxEval samples debugged to their end on the oracle-forced tiny CWM, k={args.k}, "
          f"{spec.wall_s:.1f} s (oracle {oracle_s:.1f} s)")
    print(f"  {spec.requests} requests (frames), {spec.generated:,} tokens generated, {spec.decode_forwards:,} decode "
          f"forwards; drafts {spec.draft:,} tokens, {spec.accepted:,} accepted "
          f"({spec.accepted / max(spec.draft, 1):.0%})")
    print(f"  tokens per forward: {per_forward:.2f} per decode forward, {per_forward_all:.2f} counting each "
          f"request's prefill forward (perfect-model bound, one stream: 3.69)")
    w0, wk = walls[0], walls[args.k]
    print(f"{w0.samples} samples on the {size} CWM, batch 1: k=0 {w0.wall_s:.2f} s ({w0.decode_forwards:,} forwards), "
          f"k={args.k} {wk.wall_s:.2f} s ({wk.decode_forwards:,} forwards), same {len(frames[0])} frames")
    print(f"FIGURE speculation.tokens_per_forward | {per_forward:.2f} | generated tokens per decode forward "
          f"(k={args.k}, {spec.samples} CruxEval traces, oracle-forced CWM)")
    print(f"FIGURE speculation.tokens_per_forward_all | {per_forward_all:.2f} | generated tokens per forward, "
          "each request's prefill forward counted")
    print(f"FIGURE speculation.wall_gain_{size} | {w0.wall_s / wk.wall_s:.2f} | x wall time k=0 / k={args.k} "
          f"({w0.samples} traces, {size} random CWM, CPU, {args.threads} thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
