"""Prefix-cache hit rate and decode throughput over a debug session.

Runs a 50-step debug session (step in / over / out / back) through
ModelEngine + LocalBackend on one function and prints, from the backend's
stats: requests, prompt tokens sent, tokens served from the KV/prefix cache
(reused / prompt = the hit rate), tokens prefilled, tokens generated, and
generated tokens per second of session wall time.

On a GPU host, give the real model (a profile name or checkpoint folder):

    python benchmarks/gpu_prefix_cache.py --model cwm [--steps 50] [--frame-tokens 256]

Without --model it runs the tiny random CWM (built once into a cache
folder); on a CPU that is only a smoke test of the same path: its frames are
noise, so the session restarts whenever the noise ends the trace.
"""
# bench: cpu-ok
# bench: timeout 900

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.local import LocalBackend
from neuraldbg.backends.tiny_model import build_tiny_cwm
from neuraldbg.engines.model_engine import ModelEngine
from neuraldbg.simulation import Simulation
from neuraldbg.source.index import index_text

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "examples" / "binary_search.py"
FUNCTION, CALL = "binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)"
# 50 moves: mostly step in, with step over / out / back as a user mixes them.
MOVES = "iiiioiibiiuoobbiiiioiiiiibiiioooiiiibiiiiuiiiiiiii"
TINY_CACHE = Path(tempfile.gettempdir()) / "neuraldbg-bench-tiny-cwm"  # shared with bench_kv_reuse.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="profile name or checkpoint folder (default: the tiny random CWM)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--frame-tokens", type=int, default=None,
                        help="tokens one frame may take (default 256; 32 on the tiny model)")
    args = parser.parse_args()
    tiny = args.model is None
    folder = str(build_tiny_cwm(TINY_CACHE)) if tiny else args.model
    cap = args.frame_tokens or (32 if tiny else 256)
    moves_text = (MOVES * (args.steps // len(MOVES) + 1))[: args.steps]

    t_load = time.perf_counter()
    backend = LocalBackend.load(folder)
    load_s = time.perf_counter() - t_load
    source = PROGRAM.read_text()
    index = index_text(source)
    fn = index.function(FUNCTION)
    assert fn is not None
    engine = ModelEngine(backend, backend.tokenizer, source=source, function=fn, functions=index.functions, call=CALL,
                         sampling=Sampling(temperature=0.0), backend_kind="local", frame_token_cap=cap)
    sim = Simulation(engine, function=FUNCTION, call=CALL, max_frames=10_000)
    moves = {"i": sim.step_in, "o": sim.step_over, "u": sim.step_out, "b": sim.step_back}
    restarts = 0
    t0 = time.perf_counter()
    sim.start()
    for move in moves_text:
        if sim.done:  # the trace ended (or the tiny model's noise ended it): debug it again
            sim.start()
            restarts += 1
        moves[move]()
    wall = time.perf_counter() - t0
    s = backend.stats
    backend.close()

    hit = s.reused_tokens / s.prompt_tokens if s.prompt_tokens else 0.0
    model = "the tiny random CWM (CPU smoke test)" if tiny else args.model
    print(f"{args.steps}-step debug session of {PROGRAM.name}::{FUNCTION} on {model}; "
          f"frame cap {cap} tokens; model loaded in {load_s:.1f} s")
    print(f"requests {s.requests}, restarts {restarts}; prompt tokens {s.prompt_tokens:,}, reused {s.reused_tokens:,}, "
          f"prefilled {s.prefilled_tokens:,}, generated {s.generated_tokens:,}; wall {wall:.2f} s")
    name = "prefix_cache_tiny" if tiny else "prefix_cache"
    print(f"FIGURE {name}.hit_rate | {hit:.3f} | reused / prompt tokens")
    print(f"FIGURE {name}.prefilled_tokens | {s.prefilled_tokens} | tokens over {s.requests} requests")
    print(f"FIGURE {name}.decode_throughput | {s.generated_tokens / wall if wall else 0.0:.1f} | generated tokens/s (session wall)")
    print(f"FIGURE {name}.session_wall | {wall:.2f} | s for {args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
