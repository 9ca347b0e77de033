"""One-prefill scoring of a real run against generating the same trace.

On the oracle-forced CWM (the tiny random CwmForCausalLM in the real local
decode loop, its logits masked to the real run: every token below is written
or rated by the model's forward passes), a function whose real run has about
500 frames is

- generated frame by frame through the simulation (one request per frame,
  one forward per token, KV reuse on, no speculation), as a user stepping to
  the end would get it;
- scored in one teacher-forced pass over context + real frames
  (``engines.scoring.score_trace``), on a cold backend (no KV to reuse).

Figures: ``scoring.frames``, ``scoring.generate_s``, ``scoring.score_s`` and
``scoring.speedup_vs_generate`` (generate_s / score_s), plus the forward
passes each made. Both give the same frames (asserted: scoring must agree on
every frame, generation must equal the real run). The oracle's own work
(aligning the prompt with the real run) is in both timings; on the tiny model
it is a real share of the time, so the ratio is for this model on this host,
not CWM's. On this model the output layer (128,256 logits per position, each
of which scoring must normalise) is most of a forward, so the wall ratio on a
CPU stays far below the forward ratio; on a GPU, where a batch-1 decode step
costs about as much as a 256-token chunk, the forward ratio is what the
wall time follows (benchmarks/gpu_check.py measures it there).

    python benchmarks/bench_scoring.py [--quick]
"""
# bench: timeout 900

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.local import LocalBackend
from neuraldbg.backends.oracle import OracleLogitsProcessor, TraceOracle
from neuraldbg.testing.tiny_model import build_tiny_cwm
from neuraldbg.simulation.model_engine import ModelEngine
from neuraldbg.simulation.scoring import score_trace
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.tracer import run_trace

PROGRAM = '''\
def collatz_steps(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps
'''
LONG_CONTEXT = 32_768
TINY_CACHE = Path(tempfile.gettempdir()) / "neuraldbg-bench-tiny-cwm"


def fresh(model_dir: Path, base: LocalBackend | None) -> LocalBackend:
    """An oracle-forced backend with an empty KV pool (over shared weights)."""
    if base is None:
        base = LocalBackend.load(str(model_dir))
    backend = LocalBackend(base.model, base.hf_tokenizer, name="oracle", context_tokens=base.context_tokens)
    backend.logits_processor = OracleLogitsProcessor(TraceOracle(backend.tokenizer))
    return backend


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a ~100-frame run (the tests)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steady on a shared host)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    call = "collatz_steps(7)" if args.quick else "collatz_steps(27)"  # 27: 111 steps, about 500 frames
    model_dir = build_tiny_cwm(TINY_CACHE)
    index = index_text(PROGRAM)
    fn = index.function("collatz_steps")
    truth = run_trace(PROGRAM, call, function=fn.qualname)
    base = LocalBackend.load(str(model_dir))
    # The tiny config says 4,096 positions; its rope has no such limit, and a 500-frame trace needs more.
    base.context_tokens = LONG_CONTEXT

    gen = fresh(model_dir, base)
    gen.context_tokens = base.context_tokens
    engine = ModelEngine(gen, gen.tokenizer, source=PROGRAM, function=fn, functions=index.functions, call=call,
                         sampling=Sampling(temperature=0.0), backend_kind="local")
    t0 = time.perf_counter()
    got = Simulation(engine, function=fn.qualname, call=call, max_frames=len(truth.frames) + 10).run_to_end()
    generate_s = time.perf_counter() - t0
    if got.status != "complete" or cwm_view(got.frames) != cwm_view(truth.frames):
        print(f"generation did not reproduce the real run: {got.status} {got.error}", file=sys.stderr)
        return 1

    scorer = fresh(model_dir, base)
    scorer.context_tokens = base.context_tokens
    t0 = time.perf_counter()
    scored = score_trace(scorer, scorer.tokenizer, source=PROGRAM, function=fn, trace=truth)
    score_s = time.perf_counter() - t0
    if scored.first_divergence is not None:
        print(f"scoring disagrees at frame {scored.first_divergence}", file=sys.stderr)
        return 1

    print(f"FIGURE scoring.frames | {len(truth.frames)} | frames of the real run ({call})")
    print(f"FIGURE scoring.generate_s | {generate_s:.2f} | s to generate them frame by frame (oracle-forced tiny CWM, KV reuse)")
    print(f"FIGURE scoring.generate_forwards | {gen.stats.forwards} | forward passes (prefills + decode)")
    print(f"FIGURE scoring.score_s | {score_s:.2f} | s to score them in one teacher-forced pass (cold KV)")
    print(f"FIGURE scoring.score_tokens | {scored.tokens} | tokens scored")
    print(f"FIGURE scoring.score_forwards | {scorer.stats.forwards} | forward passes (context prefill + scoring chunks)")
    print(f"FIGURE scoring.speedup_vs_generate | {generate_s / score_s:.1f} | x (generate_s / score_s, same frames)")
    print(f"FIGURE scoring.forward_ratio | {gen.stats.forwards / scorer.stats.forwards:.0f} | x fewer forward passes than generating")
    return 0


if __name__ == "__main__":
    sys.exit(main())
